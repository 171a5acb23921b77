import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeRecords, encodeRecords, isCodecError, RecordReader, type WireRecord } from './codec.ts';

const LIMITS = { maxRecords: 1000, maxValueBytes: 4096 };

/** Keys are byte strings (one char per byte, core/keys.ts), the empty key included. */
const byteKey = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a).toString('latin1'));

const record: fc.Arbitrary<WireRecord> = fc
  .record({
    group: fc.constantFrom('a', 'scores', 'ключ'),
    key: byteKey,
    value: fc.option(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), { nil: null }),
    version: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    expiresAt: fc.integer({ min: 0, max: 2 ** 45 }),
    type: fc.constantFrom(0, 1),
  }, { noNullPrototype: true })
  // a string (type 0) carries no type field, as the decoder returns it
  .map(({ type, ...r }) => (type === 0 ? r : { ...r, type }));

test('a batch decodes to the records encoded, whole and record by record', () => {
  fc.assert(
    fc.property(fc.array(record, { maxLength: 30 }), (records) => {
      const buf = encodeRecords(records);
      assert.deepEqual(decodeRecords(buf, LIMITS), records);
      const reader = new RecordReader(buf, LIMITS);
      assert.equal(reader.count, records.length);
      for (const r of records) assert.deepEqual(reader.next(), r);
      assert.equal(reader.next(), undefined);
    }),
  );
});

test('a damaged batch (cut, extended or with any byte changed) is rejected with a CodecError, or decodes within the limits', () => {
  fc.assert(
    fc.property(
      fc.array(record, { minLength: 1, maxLength: 10 }),
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      fc.constantFrom('cut', 'extend', 'flip'),
      (records, at, byte, how) => {
        const good = encodeRecords(records);
        const i = at % good.length;
        const bad = how === 'cut' ? good.subarray(0, i) : how === 'extend' ? Buffer.concat([good, Buffer.from([byte])]) : Buffer.from(good);
        if (how === 'flip') bad[i] = byte;
        try {
          const out = decodeRecords(bad, LIMITS);
          // a changed byte inside a key, a value or a version can still be a valid batch
          assert.ok(out.length <= LIMITS.maxRecords);
          for (const r of out) assert.ok(r.value === null || r.value.length <= LIMITS.maxValueBytes);
        } catch (e) {
          assert.ok(isCodecError(e), `not a CodecError: ${String(e)}`);
        }
      },
    ),
  );
});

test('decoded values are copies: the request buffer is not retained', () => {
  const buf = encodeRecords([{ group: 'a', key: 'k', value: Buffer.from('value'), version: 1, expiresAt: 0 }]);
  const [r] = decodeRecords(buf, LIMITS);
  buf.fill(0);
  assert.equal(r!.value!.toString(), 'value');
});

test('limits: record count and value size', () => {
  const buf = encodeRecords([{ group: 'a', key: 'k', value: Buffer.alloc(10), version: 1, expiresAt: 0 }]);
  assert.throws(() => decodeRecords(buf, { maxRecords: 0, maxValueBytes: 100 }), /exceeds the limit of 0/);
  assert.throws(() => decodeRecords(buf, { maxRecords: 10, maxValueBytes: 9 }), /exceeds 9/);
  assert.throws(() => decodeRecords(Buffer.alloc(2), LIMITS), isCodecError);
});
