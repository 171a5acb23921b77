/**
 * Redis's glob matching (util.c stringmatchlen), byte for byte, for KEYS, SCAN MATCH, HSCAN MATCH
 * and CONFIG GET: `*`, `?`,
 * `[abc]`, `[^a-z]`, `\` escapes. Its quirks are kept on purpose, since clients see them:
 * a `[` without its `]` matches to the end of the pattern; a range may be given backwards
 * (`[z-a]`); bytes are C `char`s, signed, so in a range 0x80-0xff sort below 0x00; the
 * pattern is read as a C string, so a byte past its end reads as NUL.
 */

/** The pattern byte at `i`, as the C code reads it: a signed char, NUL past the end. */
function at(p: Uint8Array, i: number): number {
  if (i >= p.length) return 0;
  const c = p[i]!;
  return c >= 0x80 ? c - 256 : c;
}

function signed(c: number): number {
  return c >= 0x80 ? c - 256 : c;
}

/** Does `s` match `pattern`, as Redis's stringmatchlen(pattern, s, nocase = 0)? */
export function globMatchBytes(pattern: Uint8Array, s: Uint8Array): boolean {
  const skip = { longer: false };
  return match(pattern, 0, pattern.length, s, 0, s.length, skip);
}

function match(p: Uint8Array, pi: number, plen: number, s: Uint8Array, si: number, slen: number, skip: { longer: boolean }): boolean {
  while (plen > 0 && slen > 0) {
    const c = at(p, pi);
    if (c === 0x2a /* * */) {
      while (plen > 0 && at(p, pi + 1) === 0x2a) {
        pi++;
        plen--;
      }
      if (plen === 1) return true;
      while (slen > 0) {
        if (match(p, pi + 1, plen - 1, s, si, slen, skip)) return true;
        if (skip.longer) return false;
        si++;
        slen--;
      }
      // No match for the rest anywhere in the rest of the string: earlier stars cannot help.
      skip.longer = true;
      return false;
    } else if (c === 0x3f /* ? */) {
      si++;
      slen--;
    } else if (c === 0x5b /* [ */) {
      pi++;
      plen--;
      const not = at(p, pi) === 0x5e; /* ^ */
      if (not) {
        pi++;
        plen--;
      }
      let matched = false;
      const sc = signed(s[si]!);
      for (;;) {
        if (at(p, pi) === 0x5c /* \ */ && plen >= 2) {
          pi++;
          plen--;
          if (at(p, pi) === sc) matched = true;
        } else if (at(p, pi) === 0x5d /* ] */) {
          break;
        } else if (plen === 0) {
          pi--;
          plen++;
          break;
        } else if (plen >= 3 && at(p, pi + 1) === 0x2d /* - */) {
          let start = at(p, pi);
          let end = at(p, pi + 2);
          if (start > end) [start, end] = [end, start];
          pi += 2;
          plen -= 2;
          if (sc >= start && sc <= end) matched = true;
        } else if (at(p, pi) === sc) {
          matched = true;
        }
        pi++;
        plen--;
      }
      if (not) matched = !matched;
      if (!matched) return false;
      si++;
      slen--;
    } else {
      if (c === 0x5c /* \ */ && plen >= 2) {
        pi++;
        plen--;
      }
      if (at(p, pi) !== signed(s[si]!)) return false;
      si++;
      slen--;
    }
    pi++;
    plen--;
    if (slen === 0) {
      while (at(p, pi) === 0x2a) {
        pi++;
        plen--;
      }
      break;
    }
  }
  return plen === 0 && slen === 0;
}

/**
 * The same over byte strings (keys: one char per byte). `nocase`: ASCII letters compare without
 * case, as stringmatchlen's nocase (it lowers both sides, range bounds included).
 */
export function globMatch(pattern: string, text: string, nocase = false): boolean {
  const p = Buffer.from(nocase ? lowerAscii(pattern) : pattern, 'latin1');
  const s = Buffer.from(nocase ? lowerAscii(text) : text, 'latin1');
  return globMatchBytes(p, s);
}

function lowerAscii(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}
