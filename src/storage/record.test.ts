import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isStorageError } from './errors.ts';
import {
  ALL_DATA,
  dataKey,
  decodeRecord,
  decodeVersion,
  encodeRecord,
  encodeVersion,
  groupRange,
  isDead,
  parseDataKey,
  parseWatermarkKey,
  partitionRange,
  RECORD_HEADER_BYTES,
  watermarkKey,
} from './record.ts';

const groupArb = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
const within = (k: Buffer, r: { gte: Buffer; lt: Buffer }): boolean => Buffer.compare(k, r.gte) >= 0 && Buffer.compare(k, r.lt) < 0;

test('record round trip: value, empty value, tombstone', () => {
  const v = decodeRecord(encodeRecord({ value: Buffer.from('hello'), version: 123456789 * 1024 + 7, expiresAt: 1_700_000_000_000 }));
  assert.deepEqual(v, { value: Buffer.from('hello'), version: 123456789 * 1024 + 7, expiresAt: 1_700_000_000_000 });
  const e = decodeRecord(encodeRecord({ value: Buffer.alloc(0), version: 1, expiresAt: 0 }));
  assert.deepEqual(e, { value: Buffer.alloc(0), version: 1, expiresAt: 0 });
  const t = encodeRecord({ value: null, version: 9, expiresAt: 55 });
  assert.equal(t.length, RECORD_HEADER_BYTES);
  assert.deepEqual(decodeRecord(t), { value: null, version: 9, expiresAt: 55 });
});

test('property: records and keys round trip', () => {
  fc.assert(
    fc.property(
      groupArb,
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')), // a byte string, NUL included
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: 0, max: 2 ** 45 }),
      (group, key, partition, bytes, version, expiresAt) => {
        const value = bytes === null ? null : Buffer.from(bytes);
        assert.deepEqual(decodeRecord(encodeRecord({ value, version, expiresAt })), { value, version, expiresAt });
        const k = dataKey(group, partition, key);
        assert.deepEqual(parseDataKey(k), { group, partition, key });
        // the key's bytes are the byte string's chars
        assert.deepEqual(k.subarray(k.length - key.length), Buffer.from(key, 'latin1'));
        assert.ok(within(k, partitionRange(group, partition)));
        assert.ok(within(k, groupRange(group)));
        assert.ok(within(k, ALL_DATA));
        assert.deepEqual(parseWatermarkKey(watermarkKey(group, partition)), { group, partition });
        assert.equal(decodeVersion(encodeVersion(version)), version);
      },
    ),
    { numRuns: 300 },
  );
});

test('property: a partition range holds exactly its own keys, whatever the neighbours', () => {
  fc.assert(
    fc.property(groupArb, groupArb, fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 5 }), fc.string({ maxLength: 8 }), (g1, g2, p1, p2, key) => {
      const k = dataKey(g2, p2, key);
      assert.equal(within(k, partitionRange(g1, p1)), g1 === g2 && p1 === p2);
      assert.equal(within(k, groupRange(g1)), g1 === g2);
    }),
    { numRuns: 500 },
  );
  // the last partition number has a range too
  assert.ok(within(dataKey('g', 0xffffffff, 'x'), partitionRange('g', 0xffffffff)));
  assert.ok(!within(dataKey('g', 0xfffffffe, 'x'), partitionRange('g', 0xffffffff)));
});

test('a key that is not a byte string is refused, not truncated to its low bytes', () => {
  assert.throws(() => dataKey('g', 0, 'ключ'), (e: unknown) => isStorageError(e) && e.code === 'STORAGE_BAD_KEY');
  // what an older build wrote for the text key "ключ" (its UTF-8 bytes) reads back as its byte string
  const old = Buffer.concat([Buffer.from('dg\0'), Buffer.from([0, 0, 0, 3]), Buffer.from('ключ', 'utf8')]);
  assert.equal(parseDataKey(old).key, Buffer.from('ключ', 'utf8').toString('latin1'));
});

test('malformed bytes are STORAGE_CORRUPT, not garbage', () => {
  const bad = [
    () => decodeRecord(Buffer.alloc(3)),
    () => decodeRecord(Buffer.concat([Buffer.from([9]), Buffer.alloc(16)])),
    () => decodeRecord(Buffer.concat([encodeRecord({ value: null, version: 1, expiresAt: 0 }), Buffer.from('x')])),
    () => parseDataKey(Buffer.from('dgroup-without-nul')),
    () => parseDataKey(Buffer.from('xg\0abcd')),
    () => parseDataKey(Buffer.from('dg\0ab')),
    () => decodeVersion(Buffer.alloc(4)),
  ];
  for (const f of bad) assert.throws(f, (e: unknown) => isStorageError(e) && e.code === 'STORAGE_CORRUPT');
  const nan = encodeRecord({ value: null, version: 1, expiresAt: 0 });
  nan.writeDoubleLE(NaN, 1);
  assert.throws(() => decodeRecord(nan), /bad version/);
});

test('isDead: tombstones after their forget time, values a tombstone TTL after expiry', () => {
  const ttl = 1000;
  assert.equal(isDead({ value: null, expiresAt: 500 }, 499, ttl), false);
  assert.equal(isDead({ value: null, expiresAt: 500 }, 500, ttl), true);
  assert.equal(isDead({ value: Buffer.from('v'), expiresAt: 0 }, 1e15, ttl), false);
  assert.equal(isDead({ value: Buffer.from('v'), expiresAt: 500 }, 1499, ttl), false);
  assert.equal(isDead({ value: Buffer.from('v'), expiresAt: 500 }, 1500, ttl), true);
});
