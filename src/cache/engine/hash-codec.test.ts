import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HashCodecError, decodeHash, encodeHash, hashDelete, hashGet, hashLength, hashPairs, hashSet } from './hash-codec.ts';

const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));
/** Field names as byte strings, few enough that edits meet existing fields. */
const fieldName = fc.oneof(fc.constantFrom('a', 'b', 'c', '', '\x00', '\xff'), fc.uint8Array({ maxLength: 6 }).map((a) => Buffer.from(a).toString('latin1')));
const hashMap = fc.array(fc.tuple(fieldName, bytes(40)), { minLength: 1, maxLength: 40 }).map((ps) => new Map(ps.map(([f, v]) => [f, v] as const)));
const latin = (s: string) => Buffer.from(s, 'latin1');

describe('hash codec', () => {
  it('round-trips any hash, in insertion order', () => {
    fc.assert(
      fc.property(hashMap, (m) => {
        const enc = encodeHash(m);
        const back = decodeHash(enc);
        assert.deepEqual([...back.keys()], [...m.keys()]);
        for (const [f, v] of m) assert.ok(back.get(f)!.equals(v));
        assert.equal(hashLength(enc), m.size);
      }),
    );
  });

  it('is compact: a format byte, a count, one length byte per short field and value', () => {
    const enc = encodeHash(new Map([['name', latin('jin')], ['age', latin('7')]]));
    assert.equal(enc.length, 1 + 1 + (1 + 4 + 1 + 3) + (1 + 3 + 1 + 1));
    // Long lengths take more bytes (LEB128).
    assert.equal(encodeHash(new Map([['f', Buffer.alloc(200)]])).length, 1 + 1 + 1 + 1 + 2 + 200);
  });

  it('edits in place as a Map would: set keeps a field’s place, new ones go last, deletes leave no gap', () => {
    const edit = fc.oneof(
      fc.array(fc.tuple(fieldName, bytes(10)), { minLength: 1, maxLength: 4 }).map((ps) => ({ op: 'set' as const, ps })),
      fc.array(fieldName, { minLength: 1, maxLength: 3 }).map((fs) => ({ op: 'del' as const, fs })),
    );
    fc.assert(
      fc.property(fc.array(edit, { maxLength: 30 }), (edits) => {
        const model = new Map<string, Buffer>();
        let enc: Buffer | undefined;
        for (const e of edits) {
          if (e.op === 'set') {
            let added = 0;
            for (const [f, v] of e.ps) {
              if (!model.has(f)) added++;
              model.set(f, v);
            }
            const r = hashSet(enc, e.ps.flatMap(([f, v]) => [latin(f), v]), 0, Infinity)!;
            assert.equal(r.count, added);
            enc = r.value!;
          } else if (enc !== undefined) {
            let removed = 0;
            for (const f of new Set(e.fs)) if (model.delete(f)) removed++;
            const r = hashDelete(enc, e.fs.map(latin), 0);
            assert.equal(r.count, removed);
            enc = r.value ?? undefined;
            assert.equal(r.value === null, model.size === 0);
          }
          if (enc !== undefined) {
            const back = decodeHash(enc);
            assert.deepEqual([...back.keys()], [...model.keys()]);
            for (const [f, v] of model) {
              assert.ok(back.get(f)!.equals(v));
              assert.ok(hashGet(enc, latin(f))!.equals(v));
            }
          }
        }
      }),
    );
  });

  it('finds fields with many fields and long names (the map path and the compare path)', () => {
    const m = new Map<string, Buffer>();
    for (let i = 0; i < 300; i++) m.set(`field-with-a-long-name-${i}`, latin(String(i)));
    let enc = encodeHash(m);
    assert.equal(hashGet(enc, latin('field-with-a-long-name-299'))!.toString(), '299');
    assert.equal(hashGet(enc, latin('field-with-a-long-name-300')), undefined);
    const args = Array.from({ length: 40 }, (_, i) => [latin(`field-with-a-long-name-${i * 10}`), latin('x')]).flat();
    const r = hashSet(enc, args, 0, Infinity)!;
    assert.equal(r.count, 10); // 30 of the 40 exist; 300..390 are new
    enc = r.value!;
    assert.equal(hashLength(enc), 310);
    assert.equal(hashPairs(enc)[2 * 299 + 1]!.toString(), '299');
    assert.equal(hashPairs(enc)[2 * 300]!.toString(), 'field-with-a-long-name-300');
  });

  it('refuses a result over the size limit without building it', () => {
    const enc = encodeHash(new Map([['a', latin('1')]]));
    assert.equal(hashSet(enc, [latin('a'), Buffer.alloc(100)], 0, 50), null);
    assert.equal(hashSet(enc, [latin('b'), Buffer.alloc(100)], 0, 50), null);
    assert.equal(hashSet(undefined, [latin('b'), Buffer.alloc(100)], 0, 50), null);
    assert.ok(hashSet(enc, [latin('a'), Buffer.alloc(40)], 0, 50) !== null);
  });

  it('throws a HashCodecError on bytes that are not a hash', () => {
    assert.throws(() => hashLength(latin('plain string')), HashCodecError);
    assert.throws(() => hashPairs(Buffer.from([1, 2, 3, 0x61])), HashCodecError);
    assert.throws(() => hashPairs(Buffer.concat([encodeHash(new Map([['a', latin('1')]])), Buffer.from([0])])), HashCodecError);
  });
});
