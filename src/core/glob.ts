/**
 * Redis's glob patterns (KEYS, SCAN MATCH, HSCAN MATCH, CONFIG GET), matched as Redis's
 * stringmatchlen does, over byte strings (one char per byte):
 *
 *   *        any run of bytes, the empty one included
 *   ?        exactly one byte
 *   [abc]    one of the bytes listed; [^abc] one byte not listed; [a-z] a range (either order);
 *            \x inside brackets is x itself; an unclosed [ runs to the end of the pattern
 *   \x       the byte x itself
 *
 * Pure. Backtracking is bounded: a run of stars is one star, and a star that failed at every
 * position does not retry from an earlier one, so a pattern cannot take exponential time.
 */

/** Whether `text` matches `pattern`. `nocase`: ASCII letters compare without case. */
export function globMatch(pattern: string, text: string, nocase = false): boolean {
  return matchFrom(pattern, 0, text, 0, nocase) === MATCH;
}

const MATCH = 1;
const NO = 0;
/** No match here, and none possible for any later start of the enclosing star. */
const NEVER = -1;

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
}

function matchFrom(p: string, pi: number, s: string, si: number, nocase: boolean): number {
  const plen = p.length;
  const slen = s.length;
  while (pi < plen) {
    const pc = p.charCodeAt(pi);
    if (pc === 0x2a /* * */) {
      while (pi + 1 < plen && p.charCodeAt(pi + 1) === 0x2a) pi++;
      if (pi + 1 === plen) return MATCH; // a trailing star takes the rest
      for (let k = si; k <= slen; k++) {
        const r = matchFrom(p, pi + 1, s, k, nocase);
        if (r === MATCH) return MATCH;
        if (r === NEVER) return NEVER;
      }
      return NEVER; // the rest did not match anywhere: an earlier star cannot help
    }
    if (si >= slen) return NO;
    const sc = s.charCodeAt(si);
    if (pc === 0x3f /* ? */) {
      pi++;
      si++;
      continue;
    }
    if (pc === 0x5b /* [ */) {
      pi++;
      const not = pi < plen && p.charCodeAt(pi) === 0x5e; /* ^ */
      if (not) pi++;
      let hit = false;
      while (pi < plen) {
        let c = p.charCodeAt(pi);
        if (c === 0x5d /* ] */) break;
        if (c === 0x5c /* \ */ && pi + 1 < plen) {
          pi++;
          c = p.charCodeAt(pi);
          if (c === sc || (nocase && lower(c) === lower(sc))) hit = true;
        } else if (pi + 2 < plen && p.charCodeAt(pi + 1) === 0x2d /* - */) {
          let a = c;
          let b = p.charCodeAt(pi + 2);
          if (a > b) [a, b] = [b, a];
          const x = nocase ? lower(sc) : sc;
          if ((sc >= a && sc <= b) || (nocase && x >= lower(a) && x <= lower(b))) hit = true;
          pi += 2;
        } else if (c === sc || (nocase && lower(c) === lower(sc))) {
          hit = true;
        }
        pi++;
      }
      // pi is at the closing ] (or the end of an unclosed class)
      if (pi < plen) pi++;
      if (hit === not) return NO;
      si++;
      continue;
    }
    let want = pc;
    if (pc === 0x5c /* \ */ && pi + 1 < plen) {
      pi++;
      want = p.charCodeAt(pi);
    }
    if (!(want === sc || (nocase && lower(want) === lower(sc)))) return NO;
    pi++;
    si++;
  }
  return si === slen ? MATCH : NO;
}
