import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareWrites } from '../core/version.ts';
import { ENTRY_OVERHEAD_BYTES, GroupStore } from './store.ts';
import type { GroupStoreOptions, StoredEntry, WriteRecord } from './store.ts';

/** A clock the test moves by hand. */
class FakeClock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
}

// keys "k<n>" live in partition n % 4, so expectations can be worked out by hand
const PARTITIONS = 4;
const partitionOf = (key: string): number => Number(key.slice(1)) % PARTITIONS;

function makeStore(over: Partial<GroupStoreOptions> = {}): { store: GroupStore; clock: FakeClock } {
  const clock = new FakeClock();
  const store = new GroupStore({ name: 'g', maxBytes: 1 << 20, clock, partitionOf, ...over });
  return { store, clock };
}

const val = (s: string): Buffer => Buffer.from(s);
const rec = (value: string | null, version: number, expiresAt = 0): WriteRecord => ({
  value: value === null ? null : val(value),
  version,
  expiresAt,
});
const sizeOf = (key: string, value: Buffer): number => Buffer.byteLength(key) + value.length + ENTRY_OVERHEAD_BYTES;

test('constructor names a bad option', () => {
  const clock = new FakeClock();
  assert.throws(() => new GroupStore({ name: 'g', maxBytes: 0, clock, partitionOf }), /maxBytes.*Got: 0/);
  assert.throws(() => new GroupStore({ name: 'g', maxBytes: 10, clock, partitionOf, maxTombstones: -1 }), /maxTombstones.*Got: -1/);
  assert.throws(() => new GroupStore({ name: '', maxBytes: 10, clock, partitionOf }), /name/);
});

test('apply, get, peek, has: the higher version wins', () => {
  const { store } = makeStore();
  assert.equal(store.apply('k1', rec('a', 10)), true);
  assert.deepEqual(store.get('k1'), { value: val('a'), version: 10, expiresAt: 0, partition: 1 });
  assert.equal(store.apply('k1', rec('old', 5)), false);
  assert.equal(store.get('k1')?.value?.toString(), 'a');
  assert.equal(store.apply('k1', rec('b', 11)), true);
  assert.equal(store.peek('k1')?.value?.toString(), 'b');
  assert.equal(store.has('k1'), true);
  assert.equal(store.has('k2'), false);
  // exact tie: the byte-wise greater value wins, the same write again is not applied
  assert.equal(store.apply('k1', rec('a', 11)), false);
  assert.equal(store.apply('k1', rec('c', 11)), true);
  assert.equal(store.apply('k1', rec('c', 11)), false);
  assert.equal(store.get('k1')?.value?.toString(), 'c');
});

test('a tombstone removes the value and stops an older version resurrecting it', () => {
  const { store } = makeStore();
  store.apply('k1', rec('a', 10));
  assert.equal(store.apply('k1', rec(null, 20)), true);
  assert.equal(store.get('k1'), undefined);
  assert.equal(store.has('k1'), false);
  assert.deepEqual(store.peek('k1')?.value, null);
  assert.equal(store.peek('k1')?.version, 20);
  // a late replica of the old write, or one just before the delete: both lose
  assert.equal(store.apply('k1', rec('a', 10)), false);
  assert.equal(store.apply('k1', rec('z', 19)), false);
  assert.equal(store.get('k1'), undefined);
  // at the same version a value beats a tombstone (compareWrites); a newer write wins
  assert.equal(store.apply('k1', rec('n', 21)), true);
  assert.equal(store.get('k1')?.value?.toString(), 'n');
  assert.equal(store.stats().tombstones, 0);
  assert.equal(store.partitionKeyCount(1), 1);
});

test('a delete of an unknown key records a tombstone that still blocks older writes', () => {
  const { store } = makeStore();
  assert.equal(store.apply('k2', rec(null, 7)), true);
  assert.equal(store.apply('k2', rec('x', 6)), false);
  assert.deepEqual(store.partitions(), [2]);
  assert.deepEqual([...store.partitionEntries(2)].map(([k, e]) => [k, e.value, e.version]), [['k2', null, 7]]);
});

test('TTL follows the injected clock; an expired value becomes a tombstone at its version', () => {
  const { store, clock } = makeStore();
  store.apply('k1', rec('v1', 10)); // no TTL
  store.apply('k1', rec('v2', 20, clock.t + 1000));
  clock.t += 999;
  assert.equal(store.get('k1')?.value?.toString(), 'v2');
  clock.t += 1;
  assert.equal(store.get('k1'), undefined);
  assert.equal(store.has('k1'), false);
  assert.deepEqual(store.peek('k1'), { value: null, version: 20, expiresAt: clock.t + 10 * 60_000, partition: 1 });
  // the older, TTL-less write arriving late (replication, migration) must not come back
  assert.equal(store.apply('k1', rec('v1', 10)), false);
  assert.equal(store.get('k1'), undefined);
  assert.deepEqual(store.stats(), { bytes: 0, entries: 0, tombstones: 1, maxBytes: 1 << 20, evictions: 0 });
});

test('a write that arrives already expired acts as a delete at its version', () => {
  const { store, clock } = makeStore();
  store.apply('k1', rec('live', 10));
  assert.equal(store.apply('k1', rec('gone', 20, clock.t - 1)), true);
  assert.equal(store.get('k1'), undefined);
  assert.equal(store.peek('k1')?.version, 20);
  assert.equal(store.apply('k1', rec('live', 10)), false);
});

test('tombstones are forgotten after tombstoneTtlMs, then older writes apply again', () => {
  const { store, clock } = makeStore({ tombstoneTtlMs: 5000 });
  store.apply('k1', rec(null, 20));
  clock.t += 4999;
  assert.equal(store.apply('k1', rec('old', 10)), false);
  clock.t += 1;
  assert.equal(store.peek('k1'), undefined);
  assert.equal(store.partitionKeyCount(1), 0);
  assert.equal(store.apply('k1', rec('old', 10)), true);
});

test('tombstones are bounded by count, oldest dropped first', () => {
  const { store } = makeStore({ maxTombstones: 3 });
  for (let i = 0; i < 5; i++) store.apply(`k${i}`, rec(null, 100 + i));
  assert.equal(store.stats().tombstones, 3);
  assert.equal(store.peek('k0'), undefined);
  assert.equal(store.peek('k1'), undefined);
  assert.equal(store.peek('k4')?.version, 104);
  // k0's index entry went with it: partition 0 still holds k4 only
  assert.deepEqual([...store.partitionEntries(0)].map(([k]) => k), ['k4']);
  assert.equal(store.partitionKeyCount(1), 0);
});

test('purgeExpired sweeps incrementally with bounded work and resumes', () => {
  const { store, clock } = makeStore({ tombstoneTtlMs: 1000 });
  for (let i = 0; i < 40; i++) store.apply(`k${i}`, rec('v', 1, i < 30 ? clock.t + 10 : 0));
  store.apply('k100', rec(null, 5));
  clock.t += 10;
  // nothing read yet: the 30 expired values are still held
  assert.equal(store.stats().entries, 40);
  let removed = 0;
  let calls = 0;
  while (removed < 30 && calls < 100) {
    const n = store.purgeExpired(7);
    assert.ok(n <= 7);
    removed += n;
    calls++;
  }
  assert.equal(removed, 30);
  assert.ok(calls >= 5);
  assert.equal(store.stats().entries, 10);
  assert.equal(store.stats().tombstones, 31); // 30 expired values + the delete
  clock.t += 1000;
  assert.equal(store.purgeExpired(), 31);
  assert.equal(store.stats().tombstones, 0);
  assert.deepEqual(store.partitions(), [0, 1, 2, 3]);
  assert.equal([0, 1, 2, 3].reduce((n, p) => n + store.partitionKeyCount(p), 0), 10);
  assert.equal(store.purgeExpired(), 0);
});

test('byte budget: LRU evicts least recently used; onEvict sees evictions only', () => {
  const evicted: string[] = [];
  const v = Buffer.alloc(100);
  const one = sizeOf('k1', v);
  const { store } = makeStore({ maxBytes: one * 3, onEvict: (k) => evicted.push(k) });
  store.apply('k1', rec('x'.repeat(100), 1));
  store.apply('k2', rec('x'.repeat(100), 1));
  store.apply('k3', rec('x'.repeat(100), 1));
  assert.equal(store.stats().bytes, one * 3);
  store.get('k1'); // k2 is now the least recently used
  store.apply('k4', rec('x'.repeat(100), 1));
  assert.deepEqual(evicted, ['k2']);
  assert.equal(store.get('k2'), undefined);
  assert.equal(store.partitionKeyCount(2), 0);
  // overwrite and delete are not evictions
  store.apply('k1', rec('y'.repeat(100), 2));
  store.apply('k3', rec(null, 2));
  assert.deepEqual(evicted, ['k2']);
  assert.equal(store.stats().evictions, 1);
});

test('a value larger than the whole budget is not held but still supersedes older writes', () => {
  const { store } = makeStore({ maxBytes: 200 });
  store.apply('k1', rec('small', 1));
  assert.equal(store.apply('k1', rec('x'.repeat(500), 2)), false);
  assert.equal(store.get('k1'), undefined);
  assert.equal(store.apply('k1', rec('small', 1)), false);
  assert.equal(store.stats().bytes, 0);
  assert.equal(store.partitionKeyCount(1), 1); // the tombstone
});

test('resize shrinks by evicting the least recently used, keeps order, grows without loss', () => {
  const evicted: string[] = [];
  const one = sizeOf('k1', Buffer.alloc(10));
  const { store } = makeStore({ maxBytes: one * 10, onEvict: (k) => evicted.push(k) });
  for (let i = 0; i < 10; i++) store.apply(`k${i}`, rec('x'.repeat(10), 1));
  store.get('k0');
  store.resize(one * 4);
  assert.deepEqual(evicted, ['k1', 'k2', 'k3', 'k4', 'k5', 'k6']);
  assert.deepEqual(store.stats(), { bytes: one * 4, entries: 4, tombstones: 0, maxBytes: one * 4, evictions: 6 });
  assert.equal([0, 1, 2, 3].reduce((n, p) => n + store.partitionKeyCount(p), 0), 4);
  // recency survived the move: k7 is now the oldest
  store.apply('k1', rec('x'.repeat(10), 2));
  assert.equal(evicted.at(-1), 'k7');
  store.resize(one * 100);
  assert.equal(store.stats().entries, 4);
  assert.throws(() => store.resize(0), /maxBytes/);
});

test('dropPartition removes values and tombstones of that partition only', () => {
  const { store } = makeStore();
  store.apply('k1', rec('a', 1));
  store.apply('k5', rec('b', 1));
  store.apply('k9', rec(null, 1));
  store.apply('k2', rec('c', 1));
  assert.equal(store.partitionKeyCount(1), 3);
  assert.equal(store.dropPartition(1), 3);
  assert.equal(store.dropPartition(1), 0);
  assert.deepEqual(store.partitions(), [2]);
  assert.equal(store.peek('k9'), undefined);
  assert.equal(store.apply('k9', rec('old', 0)), true); // the tombstone went too
  assert.deepEqual(store.stats().tombstones, 0);
});

test('partitionEntries is safe against modification during iteration', () => {
  const { store } = makeStore();
  for (let i = 0; i < 20; i += 4) store.apply(`k${i}`, rec('v', 1));
  const seen: string[] = [];
  for (const [key] of store.partitionEntries(0)) {
    seen.push(key);
    if (key === 'k0') {
      store.apply('k8', rec(null, 2)); // yielded later as a tombstone
      store.dropPartition(0); // then everything is gone: the rest is skipped
      store.apply('k12', rec('again', 3));
    }
  }
  assert.deepEqual(seen, ['k0', 'k12']);
});

test('clear drops everything', () => {
  const { store } = makeStore();
  store.apply('k1', rec('a', 1));
  store.apply('k2', rec(null, 1));
  store.clear();
  assert.deepEqual(store.partitions(), []);
  assert.deepEqual(store.stats(), { bytes: 0, entries: 0, tombstones: 0, maxBytes: 1 << 20, evictions: 0 });
  assert.equal(store.apply('k2', rec('a', 0)), true);
});

// ---- properties ----

test('property: bytes never exceed maxBytes and the held keys are the most recently used', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 200, max: 2000 }),
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('set' as const), k: fc.nat(30), size: fc.nat(400) }),
          fc.record({ op: fc.constant('get' as const), k: fc.nat(30) }),
        ),
        { maxLength: 200 },
      ),
      (maxBytes, ops) => {
        const { store } = makeStore({ maxBytes });
        const recency: string[] = []; // least recent first, of keys ever stored and not overwritten-too-big
        let version = 0;
        for (const o of ops) {
          const key = `k${o.k}`;
          let stored: string | undefined;
          if (o.op === 'set') {
            const value = Buffer.alloc(o.size, 1);
            const fits = sizeOf(key, value) <= maxBytes;
            assert.equal(store.apply(key, { value, version: ++version, expiresAt: 0 }), fits);
            if (fits) stored = key;
            const at = recency.indexOf(key);
            if (at >= 0) recency.splice(at, 1);
            if (fits) recency.push(key);
          } else if (store.get(key) !== undefined) {
            recency.splice(recency.indexOf(key), 1);
            recency.push(key);
          }
          const { bytes, entries } = store.stats();
          assert.ok(bytes <= maxBytes, `bytes ${bytes} > maxBytes ${maxBytes}`);
          // what is held is a suffix of the recency order (LRU evicts from the old end only),
          // it always includes the value just stored, and bytes account for it exactly
          const held = recency.filter((k) => store.peek(k)?.value != null);
          assert.deepEqual(held, recency.slice(recency.length - held.length));
          assert.equal(entries, held.length);
          if (stored !== undefined) assert.equal(held.at(-1), stored);
          const sum = held.reduce((n, k) => n + sizeOf(k, store.peek(k)!.value!), 0);
          assert.equal(bytes, sum);
        }
      },
    ),
    { numRuns: 150 },
  );
});

/** What a store shows for a key, for comparing states. Tombstones compare by version. */
function view(e: StoredEntry | undefined): unknown {
  if (e === undefined) return undefined;
  if (e.value === null) return { tombstone: e.version };
  return { value: e.value.toString('hex'), version: e.version, expiresAt: e.expiresAt };
}

test('property: LWW converges: any arrival order gives the same final state, tombstones included', () => {
  const now = 1_000_000;
  const recordArb = fc.record({
    k: fc.nat(3),
    // few versions and values so ties, tombstone-vs-value ties and duplicates all happen
    version: fc.integer({ min: 1, max: 6 }),
    value: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null }),
    // 0 = never, or already expired, or still live
    expiresAt: fc.constantFrom(0, now - 1, now + 1000, now + 2000),
  });
  fc.assert(
    fc.property(
      fc.array(recordArb, { minLength: 1, maxLength: 25 }).chain((recs) =>
        fc.tuple(fc.constant(recs), fc.shuffledSubarray(recs, { minLength: recs.length, maxLength: recs.length })),
      ),
      ([inOrder, shuffled]) => {
        const states = [inOrder, shuffled, [...inOrder].reverse()].map((list) => {
          const { store, clock } = makeStore();
          clock.t = now;
          for (const r of list) {
            store.apply(`k${r.k}`, { value: r.value === null ? null : val(r.value), version: r.version, expiresAt: r.expiresAt });
          }
          return [0, 1, 2, 3].map((k) => view(store.peek(`k${k}`)));
        });
        assert.deepEqual(states[1], states[0]);
        assert.deepEqual(states[2], states[0]);
        // and the state is the maximum under compareWrites, an expired write counting as a delete
        for (let k = 0; k < 4; k++) {
          let best: { value: Buffer | null; version: number; expiresAt: number } | undefined;
          for (const r of inOrder.filter((x) => x.k === k)) {
            const eff = {
              value: r.value === null || (r.expiresAt !== 0 && r.expiresAt <= now) ? null : val(r.value),
              version: r.version,
              expiresAt: r.expiresAt,
            };
            if (best === undefined) best = eff;
            else {
              const c = compareWrites(eff, best);
              const later = (eff.expiresAt || Infinity) > (best.expiresAt || Infinity);
              if (c > 0 || (c === 0 && eff.value !== null && later)) best = eff;
            }
          }
          const expected =
            best === undefined ? undefined
            : best.value === null ? { tombstone: best.version }
            : { value: best.value.toString('hex'), version: best.version, expiresAt: best.expiresAt };
          assert.deepEqual(states[0]![k], expected);
        }
      },
    ),
    { numRuns: 400 },
  );
});

/**
 * Reference model: last-writer-wins per key without any byte bound. Evictions reported by the
 * store are applied to it, so afterwards it must match the store exactly, key by key.
 */
class ModelStore {
  readonly m = new Map<string, { value: Buffer | null; version: number; expiresAt: number }>();
  lookup(key: string, now: number) {
    const e = this.m.get(key);
    if (e !== undefined && e.value !== null && e.expiresAt !== 0 && e.expiresAt <= now) {
      const tomb = { value: null, version: e.version, expiresAt: 0 };
      this.m.set(key, tomb);
      return tomb;
    }
    return e;
  }
  apply(key: string, r: WriteRecord, now: number): void {
    const cur = this.lookup(key, now);
    const value = r.value !== null && r.expiresAt !== 0 && r.expiresAt <= now ? null : r.value;
    if (cur !== undefined) {
      const c = compareWrites({ value, version: r.version }, cur);
      if (c < 0) return;
      if (c === 0 && (value === null || (r.expiresAt || Infinity) <= (cur.expiresAt || Infinity))) return;
    }
    this.m.set(key, { value, version: r.version, expiresAt: value === null ? 0 : r.expiresAt });
  }
  view(key: string, now: number): unknown {
    const e = this.lookup(key, now);
    return e === undefined ? undefined : view({ ...e, partition: 0 });
  }
}

test('property: the partition index stays exact through sets, overwrites, evictions, deletes, drops, expiry, resize', () => {
  const KEYS = 24;
  const opArb = fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant('set' as const), k: fc.nat(KEYS - 1), size: fc.nat(120), ttl: fc.constantFrom(0, 0, 5, 50), dv: fc.integer({ min: -2, max: 3 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('del' as const), k: fc.nat(KEYS - 1), dv: fc.integer({ min: -2, max: 3 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('get' as const), k: fc.nat(KEYS - 1) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('drop' as const), p: fc.nat(PARTITIONS - 1) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.nat(30) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('purge' as const), limit: fc.integer({ min: 1, max: 10 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('resize' as const), bytes: fc.integer({ min: 300, max: 3000 }) }) },
  );
  fc.assert(
    fc.property(fc.integer({ min: 300, max: 3000 }), fc.array(opArb, { maxLength: 120 }), (maxBytes, ops) => {
      const model = new ModelStore();
      const clock = new FakeClock();
      const store = new GroupStore({
        name: 'g',
        maxBytes,
        clock,
        partitionOf,
        tombstoneTtlMs: 1e9, // not forgotten during the run (tested above), so the model ignores it
        onEvict: (key) => model.m.delete(key),
      });
      let version = 100;
      for (const o of ops) {
        const now = clock.t;
        switch (o.op) {
          case 'set': {
            const key = `k${o.k}`;
            version += 3;
            const r: WriteRecord = { value: Buffer.alloc(o.size, o.k), version: version + o.dv, expiresAt: o.ttl ? now + o.ttl : 0 };
            if (sizeOf(key, r.value!) > store.stats().maxBytes) continue; // the oversize guard is tested above
            model.apply(key, r, now);
            store.apply(key, r);
            break;
          }
          case 'del': {
            version += 3;
            const r: WriteRecord = { value: null, version: version + o.dv, expiresAt: 0 };
            model.apply(`k${o.k}`, r, now);
            store.apply(`k${o.k}`, r);
            break;
          }
          case 'get':
            store.get(`k${o.k}`);
            break;
          case 'drop':
            store.dropPartition(o.p);
            for (const key of [...model.m.keys()]) if (partitionOf(key) === o.p) model.m.delete(key);
            break;
          case 'tick':
            clock.t += o.ms;
            break;
          case 'purge':
            store.purgeExpired(o.limit);
            break;
          case 'resize':
            store.resize(o.bytes);
            break;
        }
        // contents match the model key by key
        const held = new Map<number, string[]>();
        for (let k = 0; k < KEYS; k++) {
          const key = `k${k}`;
          const seen = view(store.peek(key));
          assert.deepEqual(seen, model.view(key, clock.t), `${key} after ${JSON.stringify(o)}`);
          if (seen !== undefined) held.set(partitionOf(key), [...(held.get(partitionOf(key)) ?? []), key]);
        }
        // and the index lists exactly what is held, nothing else
        assert.deepEqual(store.partitions(), [...held.keys()].sort((a, b) => a - b));
        for (let p = 0; p < PARTITIONS; p++) {
          const expected = (held.get(p) ?? []).sort();
          assert.deepEqual([...store.partitionEntries(p)].map(([k]) => k).sort(), expected);
          assert.equal(store.partitionKeyCount(p), expected.length);
        }
        const s = store.stats();
        assert.ok(s.bytes <= s.maxBytes);
        assert.equal(s.entries + s.tombstones, [...held.values()].reduce((n, ks) => n + ks.length, 0));
      }
    }),
    { numRuns: 200 },
  );
});

test('write hooks: onApply sees every change with the entry now held and the one before', () => {
  const seen: Array<[string, StoredEntry, StoredEntry | undefined]> = [];
  const dropped: number[] = [];
  const { store, clock } = makeStore({ maxBytes: sizeOf('k1', val('12345')) + 1 });
  store.setWriteHooks({ onApply: (k, e, p) => seen.push([k, e, p]), onDropPartition: (p) => dropped.push(p) });

  assert.equal(store.apply('k1', rec('a', 10)), true);
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0], ['k1', { value: val('a'), version: 10, expiresAt: 0, partition: 1 }, undefined]);

  assert.equal(store.apply('k1', rec('old', 5)), false); // lost: no hook
  assert.equal(seen.length, 1);

  assert.equal(store.apply('k1', rec(null, 11)), true); // delete: the tombstone with its forget time
  assert.deepEqual(seen[1], ['k1', { value: null, version: 11, expiresAt: clock.t + 10 * 60_000, partition: 1 }, seen[0]![1]]);

  // oversized value: apply() returns false but the key changed (a tombstone at its version)
  assert.equal(store.apply('k1', rec('x'.repeat(100), 12)), false);
  assert.equal(seen.length, 3);
  assert.equal(seen[2]![1].value, null);
  assert.equal(seen[2]![1].version, 12);

  // lazy expiry, purge and eviction do not call it
  store.apply('k5', rec('b', 20, clock.t + 5));
  const n = seen.length;
  clock.t += 10;
  assert.equal(store.get('k5'), undefined);
  store.purgeExpired();
  assert.equal(seen.length, n);

  store.dropPartition(1);
  assert.deepEqual(dropped, [1]);
  store.dropPartition(3); // nothing held there: no hook
  assert.deepEqual(dropped, [1]);

  store.setWriteHooks(undefined);
  store.apply('k2', rec('c', 30));
  assert.equal(seen.length, n);
});

test('write hooks given as an option also see tombstones when maxTombstones is 0', () => {
  const seen: StoredEntry[] = [];
  const { store } = makeStore({ maxTombstones: 0, writeHooks: { onApply: (_k, e) => seen.push(e) } });
  store.apply('k1', rec('a', 1));
  store.apply('k1', rec(null, 2));
  assert.equal(seen.length, 2);
  assert.equal(seen[1]!.value, null);
  assert.equal(seen[1]!.version, 2);
});

// ---- value segments (ValueArena) seen through the store ----

test('values handed out are copies: in-place overwrites and compaction do not change them', () => {
  const { store } = makeStore({ arena: { segmentBytes: 4096 } });
  store.apply('k1', rec('a'.repeat(100), 1));
  const got = store.get('k1')!.value!;
  const peeked = store.peek('k1')!.value!;
  const fromIndex = [...store.partitionEntries(1)][0]![1].value!;
  store.apply('k1', rec('b'.repeat(100), 2)); // same size: written in place
  for (let i = 0; i < 300; i++) store.apply(`k${i + 2}`, rec(String(i).repeat(40 + (i % 30)), 1)); // fill and churn segments
  for (let i = 0; i < 300; i++) store.apply(`k${i + 2}`, rec(null, 2));
  for (let i = 0; i < 300; i++) store.apply(`k${i + 400}`, rec('z'.repeat(90), 1));
  assert.ok(store.arenaStats().compactedSegments > 0, 'compaction ran');
  for (const v of [got, peeked, fromIndex]) assert.equal(v.toString(), 'a'.repeat(100));
  assert.equal(store.get('k1')?.value?.toString(), 'b'.repeat(100));
  // a caller changing its copy does not change the store
  got.fill(0);
  assert.equal(store.peek('k1')?.value?.toString(), 'b'.repeat(100));
});

test('the store stays exact while its segments are compacted and reused', () => {
  const { store } = makeStore({ maxBytes: 1 << 22, arena: { segmentBytes: 4096 } });
  const expected = new Map<string, string>();
  let version = 1;
  for (let round = 0; round < 40; round++) {
    for (let k = 0; k < 200; k++) {
      const key = `k${k}`;
      if ((k + round) % 7 === 0) {
        store.apply(key, rec(null, ++version));
        expected.delete(key);
      } else {
        // sizes change every round, so most overwrites cannot be written in place
        const v = `${round}:${k}:`.padEnd(10 + ((k * 13 + round * 29) % 120), 'x');
        store.apply(key, rec(v, ++version));
        expected.set(key, v);
      }
    }
  }
  for (let k = 0; k < 200; k++) assert.equal(store.get(`k${k}`)?.value?.toString(), expected.get(`k${k}`), `k${k}`);
  const a = store.arenaStats();
  assert.ok(a.compactedSegments > 10, `compacted ${a.compactedSegments}`);
  // live data is under 200 x 136 bytes (7 segments); garbage is bounded by the dead share
  assert.ok(a.segments <= 14, `segments ${a.segments}`);
  assert.equal(store.stats().entries, expected.size);
  // clear gives the segments back
  store.clear();
  assert.equal(store.arenaStats().segments, 0);
});

test('a value above the large-value size is kept as given and counted like any other', () => {
  const { store } = makeStore({ arena: { segmentBytes: 4096, largeValueBytes: 256 } });
  const big = Buffer.alloc(1000, 7);
  assert.equal(store.apply('k1', { value: big, version: 1, expiresAt: 0 }), true);
  assert.equal(store.get('k1')?.value, big);
  assert.equal(store.stats().bytes, sizeOf('k1', big));
  assert.equal(store.apply('k1', rec('small', 2)), true);
  assert.equal(store.get('k1')?.value?.toString(), 'small');
  assert.equal(store.arenaStats().largeBytes, 0);
});

test('purgeExpired also reclaims the dead space of deletes when no writes come', () => {
  const { store } = makeStore({ maxBytes: 1 << 24, arena: { segmentBytes: 4096 } });
  for (let k = 0; k < 2000; k++) store.apply(`k${k}`, rec('v'.repeat(100), 1));
  const full = store.arenaStats().segments;
  for (let k = 0; k < 2000; k++) if (k % 10 !== 0) store.apply(`k${k}`, rec(null, 2));
  assert.equal(store.arenaStats().segments, full); // deletes alone do not compact
  for (let i = 0; i < 100 && store.purgeExpired(10) >= 0 && store.arenaStats().segments > full / 4; i++);
  assert.ok(store.arenaStats().segments <= full / 4, `segments ${store.arenaStats().segments} of ${full}`);
  for (let k = 0; k < 2000; k += 10) assert.equal(store.get(`k${k}`)?.value?.toString(), 'v'.repeat(100));
});
