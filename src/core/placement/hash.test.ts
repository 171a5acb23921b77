import { keyFromText } from '../keys.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isPlacementError } from './errors.ts';
import { RespClient, startRedisServer } from '../../../test/helpers/redis-oracle.ts';
import {
  DEFAULT_PARTITION_COUNT,
  PARTITION_COUNTS,
  SLOT_COUNT,
  crc16,
  defaultHash,
  fmix32,
  isPartitionCount,
  murmur3,
  partitionOf,
  partitionOfSlot,
  slotOf,
  slotOfBytes,
  slotRange,
} from './hash.ts';

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

describe('hash slots (Redis Cluster: CRC16-XMODEM mod 16384, hash tags)', () => {
  it('crc16 is CRC16-XMODEM: check value and a few published vectors', () => {
    assert.equal(crc16(Buffer.from('123456789')), 0x31c3);
    assert.equal(crc16(Buffer.from('')), 0);
    assert.equal(crc16(Buffer.from('A')), 0x58e5);
    assert.equal(crc16(Buffer.from('123456789'), 1, 4), crc16(Buffer.from('234')));
  });

  it('matches the slots redis-server 7 answers to CLUSTER KEYSLOT (documented examples)', () => {
    // The redis.io cluster specification's examples, checked against redis-server 7.0.15.
    assert.equal(slotOf('foo'), 12182);
    assert.equal(slotOf('{user1000}.following'), slotOf('{user1000}.followers'));
    assert.equal(slotOf('{user1000}.following'), slotOf('user1000'));
    assert.equal(slotOf('foo{}{bar}'), crc16(Buffer.from('foo{}{bar}')) & 16383); // first tag empty: whole key
    assert.equal(slotOf('foo{{bar}}zap'), slotOf('{bar')); // the tag is "{bar"
    assert.equal(slotOf('foo{bar}{zap}'), slotOf('bar')); // only the first tag counts
    assert.equal(slotOf('{'), crc16(Buffer.from('{')) & 16383); // unclosed: whole key
    assert.equal(slotOf(''), 0);
  });

  it('agrees with a live redis-server on random binary keys', async () => {
    const redis = await startRedisServer({ cluster: true });
    const client = await RespClient.connect(redis.port);
    try {
      const brace = fc.constantFrom('{', '}', '{}', 'a', '\x00', '\xff', '\r\n');
      const keys = fc.sample(
        fc.oneof(
          fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 30 }),
          fc.array(fc.oneof(brace, fc.string({ maxLength: 4 })), { maxLength: 8 }).map((parts) => parts.join('')),
        ),
        { numRuns: 400, seed: 13 },
      );
      const answers = await Promise.all(keys.map((k) => client.call('CLUSTER', 'KEYSLOT', k)));
      keys.forEach((k, i) => {
        const a = answers[i]!;
        assert.ok(a.type === 'integer', `KEYSLOT ${JSON.stringify(k)}: ${a.type}`);
        assert.equal(slotOf(k), a.value, `slotOf(${JSON.stringify(k)})`);
        const bytes = Buffer.from(k, 'latin1');
        const padded = Buffer.concat([Buffer.from('xx{'), bytes, Buffer.from('}')]);
        assert.equal(slotOfBytes(padded, 2 + 1, 3 + bytes.length), a.value, `slotOfBytes(${JSON.stringify(k)})`);
      });
    } finally {
      client.close();
      await redis.stop();
    }
  });

  it('slotOf(string) equals slotOfBytes of its bytes for every byte string', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (a) => {
        const b = Buffer.from(a);
        assert.equal(slotOf(b.toString('latin1')), slotOfBytes(b));
      }),
      { numRuns: 500 },
    );
  });

  it('keys sharing a hash tag share a slot and so a partition', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 10 }).filter((t) => !t.includes('}')),
        fc.string({ maxLength: 10 }).filter((p) => !p.includes('{')),
        fc.string({ maxLength: 10 }),
        fc.string({ maxLength: 10 }),
        fc.constantFrom(...PARTITION_COUNTS),
        (tag, prefix, a, b, count) => {
          const k1 = keyFromText(`${prefix}{${tag}}${a}`);
          const k2 = keyFromText(`{${tag}}${b}`);
          assert.equal(slotOf(k1), slotOf(k2));
          assert.equal(partitionOf(k1, count), partitionOf(k2, count));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a key that is not a byte string, naming the char', () => {
    assert.throws(() => slotOf('ключ'), (e: unknown) => isPlacementError(e) && e.code === 'INVALID_KEY' && e.message.includes('U+043A'));
    assert.throws(() => slotOf('{a}\u20ac'), (e: unknown) => isPlacementError(e) && e.code === 'INVALID_KEY');
    assert.equal(slotOf(keyFromText('ключ')), slotOfBytes(Buffer.from('ключ', 'utf8')));
    assert.equal(keyFromText('plain'), 'plain');
  });
});

describe('slots to partitions', () => {
  it('the allowed partition counts are the divisors of 16384', () => {
    assert.deepEqual(PARTITION_COUNTS, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]);
    for (let n = 0; n <= 20_000; n++) assert.equal(isPartitionCount(n), n >= 1 && SLOT_COUNT % n === 0, String(n));
    assert.equal(isPartitionCount(1.5), false);
    assert.equal(isPartitionCount(Number.NaN), false);
  });

  it('every slot maps to exactly one partition; the ranges are contiguous and cover 0..16383', () => {
    for (const count of PARTITION_COUNTS) {
      let next = 0;
      for (let p = 0; p < count; p++) {
        const { first, last } = slotRange(p, count);
        assert.equal(first, next, `partition ${p} of ${count} starts where ${p - 1} ended`);
        assert.equal(last - first + 1, SLOT_COUNT / count);
        next = last + 1;
      }
      assert.equal(next, SLOT_COUNT);
    }
    fc.assert(
      fc.property(fc.integer({ min: 0, max: SLOT_COUNT - 1 }), fc.constantFrom(...PARTITION_COUNTS), (slot, count) => {
        const p = partitionOfSlot(slot, count);
        assert.equal(p, Math.floor((slot * count) / SLOT_COUNT));
        const { first, last } = slotRange(p, count);
        assert.ok(first <= slot && slot <= last);
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects bad slots, partitions and counts, naming them', () => {
    assert.throws(() => partitionOfSlot(16384, 4096), /slot must be an integer from 0 to 16383. Got: 16384/);
    assert.throws(() => slotRange(4096, 4096), (e: unknown) => isPlacementError(e) && e.code === 'BAD_PARTITION');
    assert.throws(() => slotRange(0, 3), /divisor of 16384 .*Got: 3/);
  });
});

describe('partitionOf', () => {
  it('defaults to 4096 partitions', () => {
    assert.equal(DEFAULT_PARTITION_COUNT, 4096);
  });

  it('is the partition of the key\'s slot, with an injected slot function', () => {
    const numeric = (s: string): number => Number.parseInt(s, 10);
    assert.equal(partitionOf('8192', 4, numeric), 2);
    assert.equal(partitionOf('4095', 4, numeric), 0);
    assert.equal(partitionOf('16383', 4096, numeric), 4095);
    assert.equal(partitionOf('foo', 4096), Math.floor(12182 / 4));
    assert.equal(partitionOf('foo', 16384), 12182);
    assert.equal(partitionOf('foo', 1), 0);
  });

  it('always lands in range', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii' }), fc.constantFrom(...PARTITION_COUNTS), (key, count) => {
        const p = partitionOf(key, count);
        assert.ok(Number.isInteger(p) && p >= 0 && p < count);
      }),
      { numRuns: 300 },
    );
  });

  it('fills 4096 partitions evenly from 400k keys', () => {
    const counts = new Uint32Array(4096);
    for (let i = 0; i < 409_600; i++) counts[partitionOf(`k${i}`, 4096)]!++;
    // expected 100 per partition; CRC16 of sequential keys is far from random but stays in bounds
    assert.ok(Math.max(...counts) < 200 && Math.min(...counts) > 20, `min ${Math.min(...counts)} max ${Math.max(...counts)}`);
  });

  it('rejects a bad partition count, naming it and the allowed values', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 32, 3, 4095, 32768]) {
      assert.throws(
        () => partitionOf('k', bad),
        (e: unknown) => isPlacementError(e) && e.code === 'INVALID_OPTION' && e.message.includes(String(bad)) && e.message.includes('1, 2, 4, 8'),
      );
    }
  });
});
