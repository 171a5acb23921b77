import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { globMatchBytes as globMatch } from './glob.ts';

const m = (pattern: string, s: string) => globMatch(Buffer.from(pattern, 'latin1'), Buffer.from(s, 'latin1'));

describe('globMatch (Redis stringmatchlen)', () => {
  it('matches * ? [sets] [^sets] ranges and escapes', () => {
    const yes: [string, string][] = [
      ['*', 'anything'], ['f*', 'field'], ['f?', 'f1'], ['*1', 'f1'], ['a*d', 'abcd'], ['a*d', 'ad'], ['[a-f]*', 'c9'], ['[z-a]*', 'm'],
      ['[^f]*', 'x1'], ['f[0-1]', 'f1'], ['\\*', '*'], ['\\f*', 'foo'], ['h[\\]]llo', 'h]llo'], ['**x', 'x'], ['*a*b*', 'xaxbx'],
    ];
    const no: [string, string][] = [
      ['f?', 'f'], ['f?', 'f12'], ['a*d', 'abc'], ['[^f]*', 'f1'], ['f[0-1]', 'f2'], ['\\*', 'a'], ['?', ''], ['', 'a'], ['a', ''], ['abc', 'ab'],
    ];
    for (const [p, s] of yes) assert.equal(m(p, s), true, `${p} ~ ${s}`);
    for (const [p, s] of no) assert.equal(m(p, s), false, `${p} !~ ${s}`);
    assert.equal(m('', ''), true);
  });

  it('does not match an empty string with a star, as Redis (HSCAN MATCH ** skips the empty field)', () => {
    assert.equal(m('*', ''), false);
    assert.equal(m('**', ''), false);
  });

  it('keeps Redis’s quirks: an unclosed [ runs to the end, bytes are signed chars', () => {
    assert.equal(m('[', ''), false);
    assert.equal(m('[ab', 'a'), true);
    assert.equal(m('[ab', 'c'), false);
    // 0xff is -1 as a signed char: inside [\x00-a]... no; [\x80-\x7f] is the range -128..127.
    assert.equal(m('[\x80-\x7f]', '\xff'), true);
    assert.equal(m('[a-\xff]', 'b'), false); // 'a'..-1 swapped: -1..97, 'b' (98) is outside
  });

  it('a pattern without special bytes matches exactly itself', () => {
    const plain = fc.uint8Array({ maxLength: 10 }).map((a) => Buffer.from(a.filter((c) => !'*?[]\\'.includes(String.fromCharCode(c)))));
    fc.assert(
      fc.property(plain, plain, (p, s) => {
        assert.equal(globMatch(p, s), p.equals(s));
        assert.equal(globMatch(p, p), true);
        // p* matches p followed by anything; only an empty string is never matched by a star
        assert.equal(globMatch(Buffer.concat([p, Buffer.from('*')]), Buffer.concat([p, s])), p.length + s.length > 0);
      }),
    );
  });
});
