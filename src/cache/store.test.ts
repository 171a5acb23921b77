import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareWrites } from '../core/version.ts';
import { ENTRY_OVERHEAD_BYTES, GroupStore, UNREAD } from './store.ts';
import type { GroupStoreOptions, StoredEntry, ValueSink, ValueSource, WriteRecord } from './store.ts';

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
  assert.deepEqual(store.get('k1'), { value: val('a'), version: 10, expiresAt: 0, partition: 1, type: 0 });
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

test('peekHead: what peek says, but a live value as UNREAD, an expired one absent, and no use marked', () => {
  const { store, clock } = makeStore();
  assert.equal(store.peekHead('k1'), undefined);
  store.apply('k1', rec('a', 10, clock.t + 100));
  assert.deepEqual(store.peekHead('k1'), { value: UNREAD, version: 10, expiresAt: clock.t + 100, partition: 1, type: 0 });
  assert.equal(store.peekHead('k1')!.value, UNREAD);
  store.apply('k2', rec(null, 7));
  assert.deepEqual(store.peekHead('k2'), store.peek('k2'));
  clock.t += 100;
  // expired: a tombstone at its version, as peek() reports it
  assert.deepEqual(store.peekHead('k1'), store.peek('k1'));
  assert.equal(store.peekHead('k1')!.value, null);
});

test('partitionHeld: the partition recorded for a held value or tombstone, -1 for none; a write after it finds the same entry', () => {
  const { store, clock } = makeStore({ maxBytes: 3 * sizeOf('k1', val('aaaa')) });
  assert.equal(store.partitionHeld('k5'), -1);
  store.apply('k5', rec('a', 10));
  store.apply('k6', rec(null, 11));
  assert.equal(store.partitionHeld('k5'), 1);
  assert.equal(store.partitionHeld('k6'), 2);
  // the remembered slot serves the peekHead and apply of the same key that follow
  assert.equal(store.partitionHeld('k5'), 1);
  assert.deepEqual(store.peekHead('k5'), { value: UNREAD, version: 10, expiresAt: 0, partition: 1, type: 0 });
  assert.equal(store.apply('k5', rec('b', 12)), true);
  assert.equal(store.get('k5')!.value!.toString(), 'b');
  // a slot dropped in between is forgotten: k5 evicted by others' writes is not found through it
  assert.equal(store.partitionHeld('k5'), 1);
  for (let i = 7; i < 12; i++) store.apply(`k${i}`, rec('aaaa', 20 + i));
  assert.equal(store.peek('k5'), undefined);
  assert.equal(store.peekHead('k5'), undefined);
  assert.equal(store.partitionHeld('k5'), -1);
  // an expired value is a tombstone at its version, as peek() says
  store.apply('k13', rec('c', 40, clock.t + 5));
  clock.t += 5;
  assert.equal(store.partitionHeld('k13'), 1);
  assert.equal(store.peek('k13')!.value, null);
});

/** A ValueSink that keeps what it was given (tests). */
class CapturingSink implements ValueSink {
  got: Buffer[] = [];
  fromSource(length: number, source: ValueSource): void {
    // written at an offset into a larger buffer, as the reply batch does
    const target = Buffer.alloc(length + 5, 0xee);
    source.copyValueTo(target, 3);
    this.got.push(target.subarray(3, 3 + length));
  }
  fromBuffer(value: Buffer): void {
    this.got.push(value);
  }
}

/** Two stores made alike, moved in lockstep: one takes the path under test, the other the plain one. */
function twinStores(opts: Partial<GroupStoreOptions>) {
  const a = makeStore(opts);
  const b = makeStore(opts);
  return {
    a,
    b,
    tick(ms: number): void {
      a.clock.t += ms;
      b.clock.t += ms;
    },
    /** Keys k0..k{last} look the same in both. */
    assertSameKeys(last: number): void {
      for (let k = 0; k <= last; k++) assert.deepEqual(view(b.store.peek(`k${k}`)), view(a.store.peek(`k${k}`)), `k${k}`);
    },
  };
}

test('property: getInto gives what get() gives, without a copy, and marks the same uses', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('set' as const), k: fc.nat(12), size: fc.nat(3000), ttl: fc.option(fc.integer({ min: 1, max: 50 })), type: fc.constantFrom(0, 0, 1) }),
          fc.record({ op: fc.constant('del' as const), k: fc.nat(12) }),
          fc.record({ op: fc.constant('read' as const), k: fc.nat(12) }),
          fc.record({ op: fc.constant('tick' as const), ms: fc.nat(30) }),
        ),
        { maxLength: 120 },
      ),
      (ops) => {
        // small budget and segments: reads decide what the LRU evicts, and values span large ones
        const t = twinStores({ maxBytes: 12_000, arena: { segmentBytes: 4096, largeValueBytes: 1024 } });
        const { a, b } = t;
        let version = 0;
        for (const o of ops) {
          if (o.op === 'tick') {
            t.tick(o.ms);
          } else if (o.op === 'read') {
            const key = `k${o.k}`;
            const want = a.store.get(key);
            const sink = new CapturingSink();
            const head = { type: -1, partition: -1, length: -1 };
            const found = b.store.getInto(key, sink, head);
            assert.equal(found, want !== undefined);
            if (want === undefined) continue;
            assert.deepEqual(head, { type: want.type, partition: want.partition, length: want.value!.length });
            // a string's bytes are written, a hash's are not (the caller answers WRONGTYPE)
            if (want.type === 0) assert.deepEqual(sink.got, [want.value]);
            else assert.deepEqual(sink.got, []);
          } else {
            const key = `k${o.k}`;
            const r: WriteRecord =
              o.op === 'del'
                ? { value: null, version: ++version, expiresAt: 0 }
                : { value: Buffer.alloc(o.size, o.k + 1), version: ++version, expiresAt: o.ttl === null ? 0 : a.clock.t + o.ttl, type: o.type };
            assert.equal(a.store.apply(key, r), b.store.apply(key, r));
          }
        }
        // the same reads marked the same keys used: the same survivors, evictions and all
        t.assertSameKeys(12);
      },
    ),
    { numRuns: 200 },
  );
});

test('property: apply() after peekHead() (one probe, the memo) ends in the state apply() alone does', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('write' as const), k: fc.nat(10), size: fc.nat(2500), del: fc.boolean(), ttl: fc.option(fc.integer({ min: 1, max: 40 })), peekFirst: fc.boolean(), other: fc.option(fc.nat(10)) }),
          fc.record({ op: fc.constant('tick' as const), ms: fc.nat(30) }),
          fc.record({ op: fc.constant('drop' as const), p: fc.nat(PARTITIONS - 1) }),
        ),
        { maxLength: 120 },
      ),
      (ops) => {
        // a small budget: writes evict (and drop the memo's slot); tombstones expire fast
        const t = twinStores({ maxBytes: 10_000, tombstoneTtlMs: 25, arena: { segmentBytes: 4096, largeValueBytes: 1024 } });
        const { a, b } = t;
        let version = 0;
        for (const o of ops) {
          if (o.op === 'tick') {
            t.tick(o.ms);
          } else if (o.op === 'drop') {
            a.store.dropPartition(o.p);
            b.store.dropPartition(o.p);
          } else {
            const key = `k${o.k}`;
            const r: WriteRecord = o.del ? { value: null, version: ++version, expiresAt: 0 } : { value: Buffer.alloc(o.size, o.k + 1), version: ++version, expiresAt: o.ttl === null ? 0 : a.clock.t + o.ttl };
            if (o.peekFirst) {
              // peekHead() finds what peek() does, and leaves its slot for the apply() below
              const head = b.store.peekHead(key);
              assert.deepEqual(view(head === undefined ? undefined : b.store.peek(key)), view(a.store.peek(key)));
              // another key's write in between must not use this key's slot
              if (o.other !== null) {
                const r2: WriteRecord = { value: Buffer.alloc(300, 9), version: ++version, expiresAt: 0 };
                assert.equal(b.store.apply(`k${o.other}`, r2), a.store.apply(`k${o.other}`, r2));
              }
            }
            assert.equal(b.store.apply(key, r), a.store.apply(key, r));
          }
          t.assertSameKeys(10);
          assert.deepEqual(b.store.stats(), a.store.stats());
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('a slot peekHead() found and an eviction freed is not used by the apply() after it', () => {
  const size = sizeOf('k0', Buffer.alloc(100));
  const { store } = makeStore({ maxBytes: 3 * size });
  for (let k = 0; k < 3; k++) store.apply(`k${k}`, { value: Buffer.alloc(100, k), version: k + 1, expiresAt: 0 });
  assert.notEqual(store.peekHead('k0'), undefined);
  // k0 is the least recently used: this write evicts it, and the next one takes its slot
  store.apply('k3', { value: Buffer.alloc(100, 3), version: 4, expiresAt: 0 });
  store.apply('k4', { value: Buffer.alloc(100, 4), version: 5, expiresAt: 0 });
  assert.equal(store.peek('k0'), undefined);
  assert.equal(store.apply('k0', { value: Buffer.alloc(100, 7), version: 6, expiresAt: 0 }), true);
  assert.deepEqual(store.peek('k0')?.value, Buffer.alloc(100, 7));
  assert.deepEqual(store.peek('k4')?.value, Buffer.alloc(100, 4), 'the slot\'s new key keeps its value');
});

test('getInto marks the key used: the LRU evicts another', () => {
  const { store } = makeStore({ maxBytes: 3 * sizeOf('k0', Buffer.alloc(100)) });
  for (let k = 0; k < 3; k++) store.apply(`k${k}`, { value: Buffer.alloc(100, k), version: k + 1, expiresAt: 0 });
  // k0 is the oldest; read it, and the next write evicts k1 instead
  assert.equal(store.getInto('k0', new CapturingSink(), { type: 0, partition: 0, length: 0 }), true);
  store.apply('k3', { value: Buffer.alloc(100, 3), version: 4, expiresAt: 0 });
  assert.notEqual(store.peek('k0'), undefined);
  assert.equal(store.peek('k1'), undefined);
});

test('getInto asks `may` for the key\'s recorded partition first: refused, it writes nothing and leaves the key unused', () => {
  const { store } = makeStore({ maxBytes: 3 * sizeOf('k0', Buffer.alloc(100)) });
  for (let k = 0; k < 3; k++) store.apply(`k${k}`, { value: Buffer.alloc(100, k), version: k + 1, expiresAt: 0 });
  const asked: number[] = [];
  const sink = new CapturingSink();
  assert.equal(store.getInto('k0', sink, { type: 0, partition: 0, length: 0 }, (p) => (asked.push(p), false)), false);
  assert.deepEqual(asked, [store.peek('k0')!.partition], 'the partition the store recorded for the key');
  assert.equal(sink.got.length, 0, 'nothing written');
  // k0 was not marked used: it is still the oldest, and the next write evicts it
  store.apply('k3', { value: Buffer.alloc(100, 3), version: 4, expiresAt: 0 });
  assert.equal(store.peek('k0'), undefined);
  const head = { type: 0, partition: -1, length: 0 };
  assert.equal(store.getInto('k1', sink, head, () => true), true);
  assert.equal(head.partition, store.peek('k1')!.partition);
  assert.equal(sink.got.length, 1);
  assert.equal(store.getInto('nope', sink, head, () => assert.fail('not asked for a key the store does not hold')), false);
});

test('peekHead(key, into) fills `into` with what peekHead(key) returns', () => {
  const { store } = makeStore();
  store.apply('k1', { value: Buffer.from('abc'), version: 7, expiresAt: 123_456_789_000, type: 1 });
  store.apply('k2', rec(null, 9));
  const into = { value: null, version: -1, expiresAt: -1, partition: -1, type: -1 } as StoredEntry;
  for (const key of ['k1', 'k2']) {
    const fresh = store.peekHead(key);
    assert.equal(store.peekHead(key, into), into);
    assert.deepEqual({ ...into }, fresh);
  }
  assert.equal(store.peekHead('k3', into), undefined);
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
  assert.deepEqual(store.peek('k1'), { value: null, version: 20, expiresAt: clock.t + 10 * 60_000, partition: 1, type: 0 });
  // the older, TTL-less write arriving late (replication, migration) must not come back
  assert.equal(store.apply('k1', rec('v1', 10)), false);
  assert.equal(store.get('k1'), undefined);
  assert.deepEqual(store.stats(), { bytes: 0, entries: 0, tombstones: 1, tombstoneBytes: sizeOf('k1', Buffer.alloc(0)), maxBytes: 1 << 20, evictions: 0 });
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
  assert.deepEqual(store.stats(), { bytes: one * 4, entries: 4, tombstones: 0, tombstoneBytes: 0, maxBytes: one * 4, evictions: 6 });
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
  assert.deepEqual(store.stats(), { bytes: 0, entries: 0, tombstones: 0, tombstoneBytes: 0, maxBytes: 1 << 20, evictions: 0 });
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
    return e === undefined ? undefined : view({ ...e, partition: 0, type: 0 });
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
  assert.deepEqual(seen[0], ['k1', { value: val('a'), version: 10, expiresAt: 0, partition: 1, type: 0 }, undefined]);

  assert.equal(store.apply('k1', rec('old', 5)), false); // lost: no hook
  assert.equal(seen.length, 1);

  assert.equal(store.apply('k1', rec(null, 11)), true); // delete: the tombstone with its forget time
  assert.deepEqual(seen[1], ['k1', { value: null, version: 11, expiresAt: clock.t + 10 * 60_000, partition: 1, type: 0 }, seen[0]![1]]);

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
  // what stays live: 200 values, and the 1800 tombstones' keys (a tombstone keeps its key bytes
  // in the segments); dead space may stay at up to a quarter of the segments held
  const live = 200 * (6 + 4 + 100) + 1800 * (6 + 4);
  const bound = Math.ceil(live / 4096 / 0.75) + 1;
  for (let i = 0; i < 200 && store.purgeExpired(10) >= 0 && store.arenaStats().segments > bound; i++);
  assert.ok(store.arenaStats().segments <= bound, `segments ${store.arenaStats().segments} of ${full}, bound ${bound}`);
  assert.ok(bound < full / 3);
  for (let k = 0; k < 2000; k += 10) assert.equal(store.get(`k${k}`)?.value?.toString(), 'v'.repeat(100));
});

// ---- byte keys, types, budgets, flush, cursors (issues 13, 14, 18) ----

test('keys are byte strings: every byte value, the empty key, and lookups straight from bytes', () => {
  const { store } = makeStore({ partitionOf: () => 0 });
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const key = all.toString('latin1');
  assert.equal(store.apply(key, rec('all', 1)), true);
  assert.equal(store.apply('', rec('empty', 1)), true);
  assert.equal(store.get(key)?.value?.toString(), 'all');
  assert.equal(store.get('')?.value?.toString(), 'empty');
  // from a view of a larger buffer, without a string
  const parse = Buffer.concat([Buffer.from('*2\r\n$3\r\nGET\r\n$256\r\n'), all, Buffer.from('\r\n')]);
  const at = parse.indexOf(all);
  assert.equal(store.getBytes(parse, at, at + 256)?.value?.toString(), 'all');
  assert.equal(store.peekBytes(parse, at, at + 256)?.version, 1);
  assert.equal(store.hasBytes(parse, at, at + 256), true);
  assert.equal(store.hasBytes(parse, at, at + 255), false);
  assert.equal(store.getBytes(parse, 0, 0)?.value?.toString(), 'empty');
  assert.equal(store.getBytes(all)?.value?.toString(), 'all');
  assert.throws(() => store.getBytes(parse, 10, parse.length + 1), /not within a buffer/);
  // iteration and cursors hand the byte string back as it was given
  assert.deepEqual([...store.partitionEntries(0)].map(([k]) => k).sort(), ['', key].sort());
  assert.deepEqual(store.scan(0, 10).keys.sort(), ['', key].sort());
  // distinct byte strings are distinct keys, even where UTF-8 would merge them
  assert.equal(store.apply('\u00e9', rec('latin1 e-acute', 1)), true);
  assert.equal(store.apply('\u00c3\u00a9', rec('its utf-8 bytes', 1)), true);
  assert.equal(store.get('\u00e9')?.value?.toString(), 'latin1 e-acute');
  assert.equal(store.getBytes(Buffer.from([0xe9]))?.value?.toString(), 'latin1 e-acute');
});

test('a key that is not a byte string is stored by its UTF-8 bytes and handed back as given', () => {
  const evicted: string[] = [];
  const one = 'ключ'.length * 2 + 1 + ENTRY_OVERHEAD_BYTES;
  const { store } = makeStore({ partitionOf: () => 3, maxBytes: one * 2, onEvict: (k) => evicted.push(k) });
  assert.equal(store.apply('ключ', rec('v', 1)), true);
  assert.equal(store.get('ключ')?.value?.toString(), 'v');
  assert.equal(store.getBytes(Buffer.from('ключ', 'utf8'))?.value?.toString(), 'v');
  // its bytes are its identity: the byte string of the same bytes is the same key
  assert.equal(store.peek(Buffer.from('ключ', 'utf8').toString('latin1'))?.value?.toString(), 'v');
  assert.deepEqual([...store.partitionEntries(3)].map(([k]) => k), ['ключ']);
  assert.deepEqual(store.scanPartition(3, 0, 10).keys, ['ключ']);
  assert.equal(store.stats().bytes, one); // charged its 8 UTF-8 bytes
  store.apply('b', rec('v', 2));
  store.apply('c', rec('v', 3));
  assert.deepEqual(evicted, ['ключ']);
});

test('entries carry a type: stored, returned, default string, validated', () => {
  const seen: StoredEntry[] = [];
  const { store } = makeStore({ writeHooks: { onApply: (_k, e) => seen.push(e) } });
  assert.equal(store.apply('k1', { value: val('h'), version: 1, expiresAt: 0, type: 1 }), true);
  assert.equal(store.get('k1')?.type, 1);
  assert.equal(store.peek('k1')?.type, 1);
  assert.equal([...store.partitionEntries(1)][0]![1].type, 1);
  assert.equal(seen[0]!.type, 1);
  assert.deepEqual(store.scan(0, 10, 1).keys, ['k1']);
  assert.deepEqual(store.scan(0, 10, 0).keys, []);
  assert.deepEqual(store.scanPartition(1, 0, 10, 1).keys, ['k1']);
  // a newer write of another type replaces it; omitted means string
  assert.equal(store.apply('k1', rec('s', 2)), true);
  assert.equal(store.get('k1')?.type, 0);
  assert.equal(store.apply('k1', { value: val('h2'), version: 3, expiresAt: 0, type: 255 }), true);
  assert.equal(store.get('k1')?.type, 255);
  // a tombstone has type 0
  store.apply('k1', rec(null, 4));
  assert.equal(store.peek('k1')?.type, 0);
  assert.throws(() => store.apply('k2', { value: val('x'), version: 1, expiresAt: 0, type: 256 }), /type.*Got: 256/);
  assert.throws(() => store.apply('k2', { value: val('x'), version: 1, expiresAt: 0, type: 1.5 }), /type.*Got: 1.5/);
});

test('partitionOf must give an integer in [0, 65535]', () => {
  const { store } = makeStore({ partitionOf: (k) => (k === 'big' ? 65536 : k === 'neg' ? -1 : 65535) });
  assert.equal(store.apply('ok', rec('v', 1)), true);
  assert.equal(store.get('ok')?.partition, 65535);
  assert.throws(() => store.apply('big', rec('v', 1)), /partitionOf.*Got: 65536/);
  assert.throws(() => store.apply('neg', rec('v', 1)), /partitionOf.*Got: -1/);
});

test('a tiny positive TTL stays a TTL: expiresAt is kept to the fraction of a ms, never turned into "never"', () => {
  const { store, clock } = makeStore();
  // how callers compute it: now + ttlMs (src/cluster/local-data.ts), here ttlMs = 0.4
  const expiresAt = clock.now() + 0.4;
  assert.equal(store.apply('k1', rec('v', 1, expiresAt)), true);
  assert.equal(store.get('k1')?.expiresAt, expiresAt);
  clock.t += 0.3;
  assert.equal(store.get('k1')?.value?.toString(), 'v');
  clock.t += 0.1;
  assert.equal(store.get('k1'), undefined, 'expired at now + 0.4');
  assert.equal(store.peek('k1')?.value, null);
  // a positive expiresAt in the past (epoch + 1 ms) is already expired: a delete, not "never"
  assert.equal(store.apply('k2', rec('v', 1, 1)), true);
  assert.equal(store.get('k2'), undefined);
  assert.equal(store.peek('k2')?.version, 1);
});

test('tombstones count against maxBytes: a flood of deletes of absent keys stays within the budget', () => {
  const budget = 64 * 1024;
  const { store } = makeStore({ maxBytes: budget, partitionOf: () => 0 });
  const key = (i: number): string => `k${i}:`.padEnd(1024, 'x');
  // half the budget in values
  const values = Math.floor(budget / 2 / (1024 + 100 + ENTRY_OVERHEAD_BYTES));
  for (let i = 0; i < values; i++) store.apply(key(i), rec('v'.repeat(100), 1));
  // then 20x the budget of deletes of 1 KB keys never stored
  for (let i = 0; i < 20 * (budget / 1024); i++) {
    store.apply(key(100_000 + i), rec(null, 2));
    const s = store.stats();
    assert.ok(s.bytes + s.tombstoneBytes <= budget, `${s.bytes} + ${s.tombstoneBytes} > ${budget}`);
  }
  const s = store.stats();
  // tombstones used the free half, and displaced values only down to their share (1/4)
  assert.ok(s.tombstoneBytes <= budget * 0.75, `tombstones hold ${s.tombstoneBytes}`);
  assert.ok(s.tombstoneBytes >= budget * 0.25 - 2 * (1024 + ENTRY_OVERHEAD_BYTES), `tombstones hold ${s.tombstoneBytes}`);
  assert.ok(s.entries >= values / 2, `${s.entries} of ${values} values left`);
  // and the newest deletes are the ones remembered
  assert.equal(store.peek(key(100_000 + 20 * (budget / 1024) - 1))?.value, null);
  assert.equal(store.peek(key(100_000)), undefined);
  // values written later win the room back from tombstones down to the share
  for (let i = 0; i < 200; i++) store.apply(key(200_000 + i), rec('v'.repeat(100), 3));
  const after = store.stats();
  assert.ok(after.tombstoneBytes <= budget / 4, `tombstones hold ${after.tombstoneBytes}`);
  assert.ok(after.bytes + after.tombstoneBytes <= budget);
});

test('the tombstone count bound still holds under the byte budget', () => {
  const { store } = makeStore({ maxTombstones: 10 });
  for (let i = 0; i < 100; i++) store.apply(`k${i}`, rec(null, 1));
  assert.equal(store.stats().tombstones, 10);
  assert.equal(store.stats().tombstoneBytes, Array.from({ length: 10 }, (_, j) => `k${90 + j}`.length + ENTRY_OVERHEAD_BYTES).reduce((a, b) => a + b));
});

test('flush drops everything and refuses writes at or under its version, so nothing flushed comes back', () => {
  const floors: number[] = [];
  const { store } = makeStore({ writeHooks: { onApply: () => {}, onFlush: (f) => floors.push(f) } });
  assert.equal(store.flushFloor, undefined);
  store.apply('k1', rec('a', 10));
  store.apply('k2', rec(null, 12));
  store.apply('k3', rec('c', 25));
  assert.equal(store.flush(20), 3);
  assert.deepEqual(floors, [20]);
  assert.equal(store.flushFloor, 20);
  assert.deepEqual(store.stats(), { bytes: 0, entries: 0, tombstones: 0, tombstoneBytes: 0, maxBytes: 1 << 20, evictions: 0 });
  assert.deepEqual(store.partitions(), []);
  // a late replica or migration batch of what was flushed: refused, values and deletes alike
  assert.equal(store.apply('k1', rec('a', 10)), false);
  assert.equal(store.apply('k1', rec('a', 20)), false);
  assert.equal(store.apply('k4', rec(null, 19)), false);
  assert.equal(store.peek('k1'), undefined);
  assert.equal(store.peek('k4'), undefined);
  // a write after the flush applies
  assert.equal(store.apply('k1', rec('new', 21)), true);
  assert.equal(store.get('k1')?.value?.toString(), 'new');
  // the floor only rises; a restart gives the persisted floor back the same way
  store.flush(5);
  assert.equal(store.flushFloor, 20);
  assert.equal(store.apply('k1', rec('x', 20)), false);
  const { store: restarted } = makeStore();
  restarted.flush(20);
  assert.equal(restarted.apply('k3', rec('c', 25)), true);
  assert.equal(restarted.apply('k1', rec('a', 10)), false);
  // clear() is not a flush: the floor stays
  restarted.clear();
  assert.equal(restarted.flushFloor, 20);
});

test('liveCount counts live values of a partition without copying them', () => {
  const { store, clock } = makeStore();
  store.apply('k1', rec('a', 1));
  store.apply('k5', rec('b', 1, clock.t + 10));
  store.apply('k9', rec(null, 1));
  store.apply('k2', rec('c', 1));
  assert.equal(store.liveCount(1), 2);
  assert.equal(store.partitionKeyCount(1), 3);
  clock.t += 10;
  assert.equal(store.liveCount(1), 1);
  assert.equal(store.liveCount(3), 0);
});

test('property: scan and scanPartition never miss a key live throughout, while the store grows, shrinks and resizes', () => {
  const opArb = fc.oneof(
    { weight: 3, arbitrary: fc.record({ op: fc.constant('add' as const), from: fc.nat(4000), n: fc.integer({ min: 1, max: 1500 }) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('del' as const), from: fc.nat(4000), n: fc.integer({ min: 1, max: 1500 }) }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('page' as const), count: fc.integer({ min: 1, max: 200 }) }) },
  );
  fc.assert(
    fc.property(fc.array(fc.nat(4000), { maxLength: 300 }), fc.array(opArb, { minLength: 1, maxLength: 60 }), (initial, ops) => {
      const { store } = makeStore({ maxBytes: 1 << 26 });
      let version = 1;
      for (const k of initial) store.apply(`k${k}`, rec('v', version++));
      const walks = [
        { part: undefined as number | undefined, cursor: 0, seen: new Set<string>(), done: false },
        { part: 2, cursor: 0, seen: new Set<string>(), done: false },
      ];
      // keys live from the start and never deleted during the walk must all be returned
      const throughout = new Set(initial.map((k) => `k${k}`));
      const pageAll = (count: number) => {
        for (const w of walks) {
          if (w.done) continue;
          const page = w.part === undefined ? store.scan(w.cursor, count) : store.scanPartition(w.part, w.cursor, count);
          for (const k of page.keys) w.seen.add(k);
          w.cursor = page.cursor;
          w.done = page.cursor === 0;
        }
      };
      for (const o of ops) {
        if (o.op === 'page') pageAll(o.count);
        else {
          for (let k = o.from; k < o.from + o.n; k++) {
            store.apply(`k${k}`, o.op === 'add' ? rec('v', version++) : rec(null, version++));
            if (o.op === 'del') throughout.delete(`k${k}`);
          }
        }
      }
      for (let i = 0; i < 100_000 && walks.some((w) => !w.done); i++) pageAll(50);
      for (const key of throughout) {
        assert.ok(walks[0]!.seen.has(key), `scan missed ${key}`);
        if (partitionOf(key) === 2) assert.ok(walks[1]!.seen.has(key), `scanPartition missed ${key}`);
      }
      // nothing but live keys of the right partition
      for (const key of walks[1]!.seen) assert.equal(partitionOf(key), 2);
    }),
    { numRuns: 60 },
  );
});

test('scan pages are bounded and resume; scanPartition keeps hash ties on one page', () => {
  const { store } = makeStore({ maxBytes: 1 << 24 });
  for (let i = 0; i < 1000; i++) store.apply(`k${i * 4 + 1}`, rec('v', 1)); // all in partition 1
  for (let i = 0; i < 900; i++) store.apply(`k${i * 4 + 1}`, rec(null, 2)); // most deleted: pages skip them
  const seen: string[] = [];
  let pages = 0;
  for (let cursor = 0, first = true; first || cursor !== 0; first = false, pages++) {
    const page = store.scan(cursor, 10);
    assert.ok(page.keys.length <= 10);
    seen.push(...page.keys);
    cursor = page.cursor;
  }
  assert.equal(new Set(seen).size, 100);
  assert.ok(pages > 10);
  const byHash: string[] = [];
  for (let cursor = 0, first = true; first || cursor !== 0; first = false) {
    const page = store.scanPartition(1, cursor, 7);
    byHash.push(...page.keys);
    cursor = page.cursor;
  }
  assert.deepEqual([...byHash].sort(), [...seen].sort());
  assert.equal(new Set(byHash).size, byHash.length, 'no key twice in a walk with no writes');
  assert.deepEqual(store.scanPartition(0, 0, 10), { cursor: 0, keys: [] });
  assert.throws(() => store.scan(-1, 10), /cursor/);
  assert.throws(() => store.scan(0, 0), /count/);
});

test('the order of scanPartition is the same on every store: a cursor survives a move to another node', () => {
  const a = makeStore({ hashSeed: 1 }).store;
  const b = makeStore({ hashSeed: 2 }).store;
  for (let i = 0; i < 300; i++) a.apply(`k${i * 4}`, rec('v', 1));
  for (let i = 299; i >= 0; i--) b.apply(`k${i * 4}`, rec('v', 1));
  const half = a.scanPartition(0, 0, 150);
  const restA = a.scanPartition(0, half.cursor, 1000);
  const restB = b.scanPartition(0, half.cursor, 1000);
  assert.deepEqual(restB.keys, restA.keys);
  assert.equal(half.keys.length + restA.keys.length, 300);
});

test('a large store: exact through index resizes, and eviction approximates LRU (a used working set survives)', () => {
  const N = 20_000;
  const one = sizeOf('k00000', Buffer.alloc(50));
  const evicted = new Set<string>();
  const { store } = makeStore({ maxBytes: one * N, onEvict: (k) => evicted.add(k), partitionOf: () => 0 });
  const key = (i: number): string => `k${String(i).padStart(5, '0')}`;
  for (let i = 0; i < N; i++) store.apply(key(i), rec(`${i}`.padEnd(50, '.'), 1));
  assert.equal(store.stats().entries, N);
  for (let i = 0; i < N; i += 7) assert.equal(store.get(key(i))?.value?.toString(), `${i}`.padEnd(50, '.'));
  assert.ok(store.indexStats().resizes >= 4);
  // a working set of 10% is read between every batch of new writes
  const hot = Array.from({ length: N / 10 }, (_, j) => key(j * 10));
  for (let batch = 0; batch < 20; batch++) {
    for (const k of hot) store.get(k);
    for (let i = 0; i < N / 20; i++) store.apply(`n${batch}:${i}`.padEnd(6, '_'), rec('x'.repeat(50), 2));
  }
  // N new values went in: nearly all of the unused old ones went out, none of the working set
  const lostHot = hot.filter((k) => evicted.has(k)).length;
  assert.equal(lostHot, 0, `${lostHot} of the working set evicted`);
  const oldLeft = Array.from({ length: N }, (_, i) => key(i)).filter((k, i) => i % 10 !== 0 && store.has(k)).length;
  assert.ok(oldLeft < N * 0.05, `${oldLeft} unused old values survived`);
  assert.ok(store.stats().bytes <= store.stats().maxBytes);
});

test('property: a store of at most 32 slots evicts exactly the least recently used', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 5, max: 28 }),
      fc.array(fc.record({ set: fc.boolean(), k: fc.nat(29) }), { minLength: 50, maxLength: 400 }),
      (fits, ops) => {
        const evicted: string[] = [];
        const one = sizeOf('k10', Buffer.alloc(20));
        const { store } = makeStore({ maxBytes: one * fits, onEvict: (k) => evicted.push(k) });
        const recency: string[] = []; // least recent first
        let version = 1;
        for (const o of ops) {
          const key = `k${String(o.k).padStart(2, '0')}`;
          if (o.set) {
            const before = evicted.length;
            store.apply(key, rec('x'.repeat(20), version++));
            const at = recency.indexOf(key);
            if (at >= 0) recency.splice(at, 1);
            recency.push(key);
            // the evictions of this write took the least recently used, in order
            const gone = evicted.slice(before);
            assert.deepEqual(gone, recency.slice(0, gone.length));
            recency.splice(0, gone.length);
          } else if (store.get(key) !== undefined) {
            recency.splice(recency.indexOf(key), 1);
            recency.push(key);
          }
          assert.equal(store.stats().entries, recency.length);
          assert.ok(recency.length <= fits);
        }
      },
    ),
    { numRuns: 100 },
  );
});

test('deletes and rewrites of many keys across index resizes and the tombstone bound stay exact', () => {
  // 26k keys: the index doubled at 24.6k and is still moving keys when the deletes begin, so
  // deletes, drops and lookups meet both tables
  const N = 26_000;
  const { store } = makeStore({ maxBytes: 1 << 28, maxTombstones: 100, partitionOf: () => 0 });
  const key = (i: number): string => `key:${(i * 7919) % N}`;
  let version = 1;
  for (let i = 0; i < N; i++) store.apply(key(i), rec('a'.repeat(50), version));
  assert.equal(store.indexStats().resizing, true);
  for (let round = 0; round < 3; round++) {
    version++;
    for (let i = 0; i < N; i++) {
      store.apply(key(i), rec(null, version));
      // misses probe the old table too, past the buckets of keys moved and dropped since
      assert.equal(store.get(`absent:${i}`), undefined);
    }
    assert.equal(store.stats().tombstones, 100);
    assert.equal(store.stats().entries, 0);
    version++;
    for (let i = 0; i < N; i++) store.apply(key(i), rec(`${round}`.repeat(50), version));
    assert.equal(store.stats().entries, N);
    for (let i = 0; i < N; i += 13) assert.equal(store.get(key(i))?.value?.toString(), `${round}`.repeat(50));
  }
  assert.equal(store.indexStats().keys, N);
});

test('a long random run with compaction on every few writes reads back exactly what a Map model holds (byte-string and UTF-8 keys, tombstones, expiry, large values)', () => {
  // small segments and values of changing lengths: the arena compacts all along, finding each
  // live record's slot through the index by its key (arena.ts, Layout)
  const { store, clock } = makeStore({ maxBytes: 64 << 20, partitionOf: (k) => k.charCodeAt(k.length - 1) & 3, arena: { segmentBytes: 4096, largeValueBytes: 1024 } });
  let seed = 12345;
  const rnd = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const model = new Map<string, { value: Buffer | null; expiresAt: number }>();
  let version = 1;
  let reads = 0;
  for (let i = 0; i < 60_000; i++) {
    const key = `key:${rnd(1500)}${rnd(10) === 0 ? '\u00e9\u4e2d' : ''}`;
    const r = rnd(100);
    if (r < 55) {
      const value = Buffer.alloc(rnd(10) === 0 ? 1000 + rnd(2000) : rnd(200), i & 0xff);
      const expiresAt = rnd(5) === 0 ? clock.t + 500 + rnd(3000) : 0;
      store.apply(key, { value, version: version++, expiresAt });
      model.set(key, { value, expiresAt });
    } else if (r < 70) {
      store.apply(key, { value: null, version: version++, expiresAt: 0 });
      model.set(key, { value: null, expiresAt: 0 });
    } else {
      const want = model.get(key);
      const live = want !== undefined && want.value !== null && (want.expiresAt === 0 || want.expiresAt > clock.t) ? want.value : undefined;
      const got = store.get(key)?.value ?? undefined;
      assert.deepEqual(got, live, `op ${i}: ${key}`);
      reads++;
    }
    if (i % 1000 === 0) clock.t += 37;
  }
  const stats = store.arenaStats();
  assert.ok(stats.compactedSegments > 1000 && stats.movedRecords > 10_000, `compaction ran: ${JSON.stringify(stats)}`);
  assert.ok(reads > 15_000);
});
