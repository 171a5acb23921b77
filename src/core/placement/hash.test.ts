import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isPlacementError } from './errors.ts';
import { DEFAULT_PARTITION_COUNT, defaultHash, fmix32, murmur3, partitionOf } from './hash.ts';

describe('defaultHash (murmur3_32, seed 0, UTF-8)', () => {
  it('matches published MurmurHash3 x86_32 vectors', () => {
    const vectors: [string, number][] = [
      ['', 0x00000000],
      ['a', 0x3c2569b2],
      ['test', 0xba6bd213],
      ['hello', 0x248bfa47],
      ['Hello, world!', 0xc0363e43],
      ['The quick brown fox jumps over the lazy dog', 0x2e4ff723],
    ];
    for (const [input, want] of vectors) {
      assert.equal(defaultHash(input), want, `hash of ${JSON.stringify(input)}`);
    }
  });

  it('honours the seed like the reference (empty input)', () => {
    assert.equal(murmur3(new Uint8Array(0), 0, 1), 0x514e28b7);
    assert.equal(murmur3(new Uint8Array(0), 0, 0xffffffff), 0x81f16f39);
  });

  it('hashes the UTF-8 bytes: equal to murmur3 of Buffer.from(s, "utf8") for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        const bytes = Buffer.from(s, 'utf8');
        assert.equal(defaultHash(s), murmur3(bytes));
      }),
      { numRuns: 500 },
    );
    // lone surrogates encode as U+FFFD, as Buffer and TextEncoder do
    for (const s of ['\ud800', 'x\udc00y', '\udbff\udfff', 'a\ud83d', '😀']) {
      assert.equal(defaultHash(s), murmur3(Buffer.from(s, 'utf8')), JSON.stringify(s));
    }
  });

  it('handles keys longer than the scratch buffer', () => {
    const long = 'k'.repeat(10_000) + 'é'.repeat(3000);
    assert.equal(defaultHash(long), murmur3(Buffer.from(long, 'utf8')));
    assert.equal(defaultHash('short'), murmur3(Buffer.from('short')));
  });

  it('returns unsigned 32-bit integers', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const h = defaultHash(s);
        assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
      }),
      { numRuns: 300 },
    );
  });

  it('spreads sequential keys evenly (chi-square over 64 buckets)', () => {
    const buckets = 64;
    const keys = 64_000;
    const counts = new Array<number>(buckets).fill(0);
    for (let i = 0; i < keys; i++) counts[defaultHash(`user:${i}`) % buckets]!++;
    const expected = keys / buckets;
    const chi2 = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    // 63 degrees of freedom: P(chi2 > 110) < 0.0002 for a uniform hash
    assert.ok(chi2 < 110, `chi-square ${chi2.toFixed(1)}`);
  });

  it('avalanches: one flipped input bit flips about half the output bits', () => {
    let flipped = 0;
    let trials = 0;
    for (let i = 0; i < 2000; i++) {
      const base = Buffer.from(`key-${i}-abcdef`);
      const h = murmur3(base);
      const bit = i % (base.length * 8);
      base[bit >> 3]! ^= 1 << (bit & 7);
      let x = (h ^ murmur3(base)) >>> 0;
      while (x !== 0) {
        flipped += x & 1;
        x >>>= 1;
      }
      trials++;
    }
    const mean = flipped / trials;
    assert.ok(mean > 15 && mean < 17, `mean flipped bits ${mean}`);
  });

  it('fmix32 is a bijection-like mixer (no collisions on a sample)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) seen.add(fmix32(i));
    assert.equal(seen.size, 10_000);
  });
});

describe('partitionOf', () => {
  it('defaults to 4096 partitions', () => {
    assert.equal(DEFAULT_PARTITION_COUNT, 4096);
  });

  it('is hash(key) mod partitionCount, with an injected hash', () => {
    const numeric = (s: string): number => Number.parseInt(s, 10);
    assert.equal(partitionOf('10', 4, numeric), 2);
    assert.equal(partitionOf('4097', 4096, numeric), 1);
    assert.equal(partitionOf('hello', 4096), 0x248bfa47 % 4096);
  });

  it('always lands in range', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 100_000 }), (key, count) => {
        const p = partitionOf(key, count);
        assert.ok(Number.isInteger(p) && p >= 0 && p < count);
      }),
      { numRuns: 300 },
    );
  });

  it('fills 4096 partitions evenly from 400k keys', () => {
    const counts = new Uint32Array(4096);
    for (let i = 0; i < 409_600; i++) counts[partitionOf(`k${i}`, 4096)]!++;
    // expected 100 per partition, sd 10: 6 sd either side never happens by chance here
    assert.ok(Math.max(...counts) < 160 && Math.min(...counts) > 40, `min ${Math.min(...counts)} max ${Math.max(...counts)}`);
  });

  it('rejects a bad partition count, naming it', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 32]) {
      assert.throws(
        () => partitionOf('k', bad),
        (e: unknown) => isPlacementError(e) && e.code === 'INVALID_OPTION' && e.message.includes(String(bad)),
      );
    }
  });
});
