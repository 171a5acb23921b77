import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { globMatch } from './glob.ts';

test('the pattern forms Redis documents for KEYS', () => {
  const yes: [string, string][] = [
    ['h?llo', 'hello'], ['h?llo', 'hallo'], ['h*llo', 'hllo'], ['h*llo', 'heeeello'], ['h[ae]llo', 'hello'],
    ['h[^e]llo', 'hallo'], ['h[a-b]llo', 'hbllo'], ['h[b-a]llo', 'hallo'], ['*', 'anything'],
    ['a\\*b', 'a*b'], ['[\\]]', ']'], ['user:*:name', 'user:42:name'], ['[abc', 'a'], ['**a', 'xa'],
  ];
  const no: [string, string][] = [
    ['h[ae]llo', 'hillo'], ['h[^e]llo', 'hello'], ['h?llo', 'hllo'], ['a\\*b', 'axb'], ['abc', 'ab'], ['ab', 'abc'], ['', 'a'],
  ];
  for (const [p, s] of yes) assert.equal(globMatch(p, s), true, `${p} ~ ${s}`);
  // as stringmatchlen: an empty string matches only the empty pattern (KEYS and SCAN treat a
  // lone * as "everything" before matching, so the empty key is still listed)
  assert.equal(globMatch('*', ''), false);
  assert.equal(globMatch('', ''), true);
  for (const [p, s] of no) assert.equal(globMatch(p, s), false, `${p} !~ ${s}`);
  assert.equal(globMatch('HELLO', 'hello', true), true);
  assert.equal(globMatch('[A-C]x', 'bx', true), true);
});

/** The same patterns without classes and escapes, as a regular expression (a reference model). */
function reference(p: string, s: string): boolean {
  const re = new RegExp(`^${[...p].map((c) => (c === '*' ? '[\\s\\S]*' : c === '?' ? '[\\s\\S]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('')}$`);
  return re.test(s);
}

test('property: stars and question marks match a non-empty string as the regular expression they stand for', () => {
  const alpha = fc.constantFrom('a', 'b', '*', '?');
  fc.assert(
    fc.property(fc.array(alpha, { maxLength: 8 }).map((a) => a.join('')), fc.array(fc.constantFrom('a', 'b'), { minLength: 1, maxLength: 10 }).map((a) => a.join('')), (p, s) => {
      assert.equal(globMatch(p, s), reference(p, s));
    }),
    { numRuns: 2000 },
  );
});

test('a pathological pattern takes linear time, not exponential', () => {
  const t = performance.now();
  assert.equal(globMatch('*a*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000)), false);
  assert.ok(performance.now() - t < 500, `${(performance.now() - t).toFixed(0)} ms`);
});
