import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hashBytes, hashLatin1, KeyIndex } from './key-index.ts';
import { META, SlotTable, VALUE } from './slots.ts';

/**
 * A KeyIndex over a real SlotTable, with keys kept in a Map by the test: the owner's side of the
 * contract (hashOf, kind in META, compare the key of each candidate).
 */
class Harness {
  readonly slots = new SlotTable();
  readonly index: KeyIndex;
  readonly keyOf = new Map<number, string>();
  readonly slotOf = new Map<string, number>();
  private free: number[] = [];
  private next = 2;
  hashCalls = 0;
  private readonly seed: number;

  constructor(seed: number) {
    this.seed = seed;
    this.slots.addPage();
    this.index = new KeyIndex(this.slots, (s) => {
      this.hashCalls++;
      return hashLatin1(this.seed, this.keyOf.get(s)!);
    });
  }

  find(key: string): number {
    const h = hashLatin1(this.seed, key);
    for (let s = this.index.first(h); s !== -1; s = this.index.next()) {
      // a candidate is always a slot that holds a key: the owner reads its record
      assert.ok(this.keyOf.has(s), `the index handed out slot ${s}, which holds no key`);
      if (this.keyOf.get(s) === key) return s;
    }
    return -1;
  }

  insert(key: string): void {
    const s = this.free.pop() ?? this.next++;
    while (s >= this.slots.capacity) this.slots.addPage();
    this.slots.setI(s, META, VALUE);
    this.keyOf.set(s, key);
    this.slotOf.set(key, s);
    this.index.insert(hashLatin1(this.seed, key), s);
  }

  remove(key: string): void {
    const s = this.slotOf.get(key)!;
    assert.equal(this.index.remove(hashLatin1(this.seed, key), s), true);
    this.slots.setI(s, META, 0);
    this.keyOf.delete(s);
    this.slotOf.delete(key);
    this.free.push(s);
  }
}

test('hashLatin1 of a byte string equals hashBytes of its bytes, and flags a string that is not one', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer(), (bytes, seed) => {
      const key = Buffer.from(bytes).toString('latin1');
      assert.equal(hashLatin1(seed, key), hashBytes(seed, bytes, 0, bytes.length));
      assert.notEqual(hashLatin1(seed, key), 0);
    }),
  );
  assert.equal(hashLatin1(1, 'ключ'), 0);
  assert.equal(hashLatin1(1, 'ab\u0100'), 0);
  assert.notEqual(hashLatin1(1, ''), 0);
  // the seed matters
  assert.notEqual(hashLatin1(1, 'bench:00000001'), hashLatin1(2, 'bench:00000001'));
});

test('property: lookups match a Map through inserts, removes, growth, shrinking, rebuilds and reservations', () => {
  const KEYS = 5000;
  fc.assert(
    fc.property(
      fc.integer(),
      // runs of consecutive keys added or removed, so the table swings through resizes both ways;
      // some runs start with a reservation (a migration announced), often in the middle of a resize
      fc.array(fc.record({ add: fc.boolean(), from: fc.nat(KEYS - 1), n: fc.integer({ min: 1, max: 2000 }), reserve: fc.option(fc.nat(3 * KEYS), { freq: 3 }) }), { minLength: 1, maxLength: 30 }),
      (seed, runs) => {
        const h = new Harness(seed);
        let checks = 0;
        for (const { add, from, n, reserve } of runs) {
          if (reserve !== null) {
            h.index.reserve(reserve);
            assert.ok(h.index.stats().buckets * 3 >= Math.min(reserve, 1 << 27) * 4, 'room for the keys reserved');
          }
          for (let k = from; k < Math.min(KEYS, from + n); k++) {
            const key = `k${k}`;
            const held = h.slotOf.has(key);
            if (add && !held) h.insert(key);
            else if (!add && held) h.remove(key);
            // spot checks while a resize is under way
            if (h.index.stats().resizing && checks++ % 50 === 0) {
              const probe = `k${(k * 7919) % KEYS}`;
              assert.equal(h.find(probe), h.slotOf.get(probe) ?? -1, probe);
            }
          }
        }
        assert.equal(h.index.size, h.slotOf.size);
        for (let k = 0; k < KEYS; k++) {
          const key = `k${k}`;
          assert.equal(h.find(key), h.slotOf.get(key) ?? -1, key);
        }
      },
    ),
    { numRuns: 100 },
  );
});

test('reserve() sizes the table once for the keys announced: no resize while they arrive, no shrink before half are in', () => {
  const h = new Harness(7);
  h.index.reserve(100_000);
  const after = h.index.stats();
  assert.equal(after.buckets, 1 << 18, 'the smallest power of two that holds 100k keys at 3/4 load');
  for (let k = 0; k < 100_000; k++) h.insert(`k${k}`);
  assert.equal(h.index.stats().resizes, after.resizes, 'no resize while the reserved keys arrive');
  assert.equal(h.index.stats().buckets, 1 << 18);
  assert.equal(h.find('k99999'), h.slotOf.get('k99999'));
  h.index.reserve(10); // already room: nothing happens
  assert.equal(h.index.stats().resizes, after.resizes);

  // a reservation whose keys do not come yet keeps the table through removals of others
  const g = new Harness(8);
  for (let k = 0; k < 200; k++) g.insert(`k${k}`);
  g.index.reserve(50_000);
  const held = g.index.stats().buckets;
  for (let k = 0; k < 150; k++) g.remove(`k${k}`);
  assert.equal(g.index.stats().buckets, held, 'not halved: the reserved keys are still to come');
  for (let k = 200; k < 30_000; k++) g.insert(`k${k}`);
  for (let k = 150; k < 29_500; k++) g.remove(`k${k}`);
  while (g.index.stats().resizing) g.find('k1');
  assert.ok(g.index.stats().buckets < held, `shrinks once half the reserved keys came and most left: ${g.index.stats().buckets} buckets`);
  for (let k = 29_500; k < 30_000; k++) assert.equal(g.find(`k${k}`), g.slotOf.get(`k${k}`));
});

test('a resize is spread over operations: no insert moves more than a few keys', () => {
  const h = new Harness(7);
  let most = 0;
  let resizingInserts = 0;
  for (let i = 0; i < 200_000; i++) {
    const before = h.hashCalls;
    h.insert(`key:${i}`);
    const moved = h.hashCalls - before;
    if (h.index.stats().resizing) resizingInserts++;
    most = Math.max(most, moved);
  }
  // doubling: 2-3 slots walked per insert, so at most 3 keys moved; never the whole table
  assert.ok(most <= 4, `an insert moved ${most} keys`);
  assert.ok(resizingInserts > 50_000, `resizes overlapped ${resizingInserts} inserts`);
  assert.ok(h.index.stats().resizes >= 8);
  for (let i = 0; i < 200_000; i += 997) assert.equal(h.find(`key:${i}`), h.slotOf.get(`key:${i}`));
  // and down again: removals shrink the table, also a little at a time
  most = 0;
  for (let i = 0; i < 199_000; i++) {
    const before = h.hashCalls;
    h.remove(`key:${i}`);
    most = Math.max(most, h.hashCalls - before);
  }
  assert.ok(most <= 12, `a removal moved ${most} keys`);
  while (h.index.step(1000));
  assert.ok(h.index.stats().buckets <= 16_384, `buckets ${h.index.stats().buckets} for 1000 keys`);
  for (let i = 199_000; i < 200_000; i++) assert.equal(h.find(`key:${i}`), h.slotOf.get(`key:${i}`));
  assert.equal(h.find('key:5'), -1);
});

test('deleted marks are reused and cleared: churn at a steady size does not grow the table', () => {
  const h = new Harness(3);
  for (let i = 0; i < 5000; i++) h.insert(`a${i}`);
  while (h.index.step(1000));
  const buckets = h.index.stats().buckets;
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 5000; i++) h.remove(`${round % 2 ? 'b' : 'a'}${i}`);
    for (let i = 0; i < 5000; i++) h.insert(`${round % 2 ? 'a' : 'b'}${i}`);
  }
  while (h.index.step(1000));
  assert.equal(h.index.stats().buckets, buckets);
  assert.ok(h.index.stats().deleted < buckets / 2);
  for (let i = 0; i < 5000; i++) assert.equal(h.find(`a${i}`), h.slotOf.get(`a${i}`));
});
