import { afterEach, beforeEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENTRY_OVERHEAD_BYTES, GroupStore } from '../cache/store.ts';
import type { Version } from '../core/types.ts';
import type { LoadAnswer, LoadResult, PersistRecord } from './leveldb.ts';
import { Persister, RETRY_DELAY_MS, type PersistTarget } from './persist.ts';
import type { StorageRecord } from './record.ts';

class FakeClock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
}

// keys "k<n>" live in partition n % 4
const partitionOf = (key: string): number => Number(key.slice(1)) % 4;

/** An in-memory stand-in for LevelStorage that records every call. */
class FakeDisk implements PersistTarget {
  readonly data = new Map<string, StorageRecord>();
  readonly calls: string[] = [];
  batches: PersistRecord[][] = [];
  failWrites = 0;
  reads = 0;

  async writeBatch(records: readonly PersistRecord[]): Promise<void> {
    this.calls.push(`write:${records.length}`);
    if (this.failWrites > 0) {
      this.failWrites--;
      throw new Error('disk full');
    }
    this.batches.push([...records]);
    for (const r of records) this.data.set(`${r.group}/${r.key}`, { ...r, partition: r.partition ?? partitionOf(r.key) });
  }
  async get(group: string, key: string): Promise<StorageRecord | undefined> {
    this.reads++;
    return this.data.get(`${group}/${key}`);
  }
  async getMany(group: string, items: ReadonlyArray<{ key: string }>): Promise<Array<StorageRecord | undefined>> {
    this.reads += items.length;
    return items.map((i) => this.data.get(`${group}/${i.key}`));
  }
  async forgetTombstones(group: string, items: ReadonlyArray<{ key: string; version: Version }>): Promise<number> {
    let n = 0;
    for (const it of items) {
      const r = this.data.get(`${group}/${it.key}`);
      if (r !== undefined && r.value === null && r.version === it.version) {
        this.data.delete(`${group}/${it.key}`);
        n++;
      }
    }
    this.calls.push(`forget:${n}`);
    return n;
  }
  async dropPartition(group: string, partition: number): Promise<void> {
    this.calls.push(`drop:${group}:${partition}`);
    for (const [id, r] of this.data) if (r.group === group && r.partition === partition) this.data.delete(id);
  }
  async load(onRecord: (r: StorageRecord) => LoadAnswer): Promise<LoadResult> {
    let records = 0;
    let skip: string | undefined;
    for (const id of [...this.data.keys()].sort()) {
      const r = this.data.get(id)!;
      if (r.group === skip) continue;
      records++;
      if (onRecord(r) === 'skip-group') skip = r.group;
    }
    return { records, purged: 0, rekeyed: 0, ms: 0 };
  }
  watermark(): Version {
    return 0;
  }
  highWatermark(): Version {
    return 0;
  }
}

const v = (s: string): Buffer => Buffer.from(s);
const settle = (): Promise<void> => new Promise((r) => setImmediate(r)); // setImmediate is not mocked

function setup(opts: { maxBytes?: number; maxBatch?: number } = {}) {
  const clock = new FakeClock();
  const disk = new FakeDisk();
  const store = new GroupStore({ name: 'g', maxBytes: opts.maxBytes ?? 1 << 20, clock, partitionOf });
  const p = new Persister({ storage: disk, clock, maxBatch: opts.maxBatch ?? 1000, flushIntervalMs: 5 });
  p.attach('g', store);
  return { clock, disk, store, p };
}

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval'] }));
afterEach(() => mock.timers.reset());

test('group commit: writes within the interval go in one batch, a key written twice once', async () => {
  const { disk, store } = setup();
  store.apply('k1', { value: v('a'), version: 1, expiresAt: 0 });
  store.apply('k2', { value: v('b'), version: 2, expiresAt: 0 });
  store.apply('k1', { value: v('c'), version: 3, expiresAt: 0 });
  store.apply('k2', { value: v('old'), version: 1, expiresAt: 0 }); // lost LWW: not persisted
  await settle();
  assert.deepEqual(disk.calls, [], 'nothing written before the interval');
  mock.timers.tick(4);
  await settle();
  assert.deepEqual(disk.calls, []);
  mock.timers.tick(1);
  await settle();
  assert.deepEqual(disk.calls, ['write:2']);
  assert.deepEqual(disk.data.get('g/k1')?.value, v('c'));
  assert.equal(disk.data.get('g/k1')?.version, 3);
  assert.deepEqual(disk.data.get('g/k2')?.value, v('b'));
});

test('a full buffer flushes at once, without waiting for the timer', async () => {
  const { disk, store } = setup({ maxBatch: 10 });
  for (let i = 0; i < 25; i++) store.apply(`k${i}`, { value: v(`v${i}`), version: i + 1, expiresAt: 0 });
  await settle();
  // the first 10 trigger a flush; writes made before it ran joined it; the rest wait for a timer
  assert.ok(disk.calls.length >= 1);
  assert.equal(disk.calls[0], 'write:25', 'the queued flush took everything buffered when it ran');
  assert.equal(disk.data.size, 25);
});

test('deletes persist as tombstones with their forget time; expiry times are kept', async () => {
  const { clock, disk, store, p } = setup();
  store.apply('k1', { value: v('a'), version: 1, expiresAt: clock.t + 60_000 });
  store.apply('k2', { value: v('b'), version: 2, expiresAt: 0 });
  store.apply('k2', { value: null, version: 3, expiresAt: 0 });
  await p.flush();
  assert.equal(disk.data.get('g/k1')?.expiresAt, clock.t + 60_000);
  const t = disk.data.get('g/k2')!;
  assert.deepEqual([t.key, t.partition, t.value, t.version, t.expiresAt], ['k2', 2, null, 3, clock.t + 10 * 60_000]);
});

test('a failed flush keeps the records and retries; a newer write is not overwritten', async () => {
  const { disk, store, p } = setup();
  disk.failWrites = 1;
  store.apply('k1', { value: v('a'), version: 1, expiresAt: 0 });
  await assert.rejects(p.flush(), /disk full/);
  assert.equal(p.stats().failures, 1);
  assert.equal(p.stats().pending, 1);
  store.apply('k1', { value: v('b'), version: 2, expiresAt: 0 });
  mock.timers.tick(RETRY_DELAY_MS);
  await settle();
  await settle();
  assert.deepEqual(disk.data.get('g/k1')?.value, v('b'));
  assert.equal(disk.data.get('g/k1')?.version, 2);
  assert.equal(p.stats().pending, 0);
});

test('while the disk fails (full), no write is acknowledged: backpressure waits for a flush that succeeds', async () => {
  const { disk, store, p } = setup();
  disk.failWrites = 1;
  store.apply('k1', { value: v('a'), version: 1, expiresAt: 0 });
  await assert.rejects(p.flush(), /disk full/);
  // one record buffered, far below maxPending: a write would pass without the failure
  const wait = p.backpressure();
  assert.ok(wait !== undefined, 'a writer must wait while the last flush failed');
  let released = false;
  void wait.then(() => (released = true));
  await settle();
  assert.equal(released, false);
  mock.timers.tick(RETRY_DELAY_MS);
  await settle();
  await settle();
  assert.equal(released, true, 'released once a flush succeeded');
  assert.equal(p.backpressure(), undefined);
});

test('dropPartition: buffered writes of it are discarded, the drop runs before later writes', async () => {
  const { disk, store, p } = setup();
  store.apply('k1', { value: v('a'), version: 1, expiresAt: 0 });
  await p.flush();
  store.apply('k5', { value: v('b'), version: 2, expiresAt: 0 }); // partition 1, buffered
  store.apply('k2', { value: v('c'), version: 3, expiresAt: 0 }); // partition 2
  store.dropPartition(1);
  store.apply('k9', { value: v('d'), version: 4, expiresAt: 0 }); // partition 1 again, after the drop
  await p.flush();
  assert.deepEqual(disk.calls, ['write:1', 'drop:g:1', 'write:2']);
  assert.equal(disk.data.has('g/k1'), false);
  assert.equal(disk.data.has('g/k5'), false);
  assert.deepEqual(disk.data.get('g/k9')?.value, v('d'));
  assert.deepEqual(disk.data.get('g/k2')?.value, v('c'));
});

test('evicted entries stay on disk and come back on a miss; no disk read before any eviction', async () => {
  const one = 'k1'.length + 1 + ENTRY_OVERHEAD_BYTES;
  const { disk, store, p } = setup({ maxBytes: one * 2 });
  store.apply('k1', { value: v('a'), version: 1, expiresAt: 0 });
  assert.equal(await p.readThrough('g', 'k2'), undefined);
  assert.equal(disk.reads, 0, 'memory holds everything: the miss is answered without disk');
  store.apply('k2', { value: v('b'), version: 2, expiresAt: 0 });
  store.apply('k3', { value: v('c'), version: 3, expiresAt: 0 }); // evicts k1
  assert.equal(store.peek('k1'), undefined);
  await p.flush();
  const back = await p.readThrough('g', 'k1');
  assert.deepEqual(back?.value, v('a'));
  assert.equal(back?.version, 1);
  assert.deepEqual(store.peek('k1')?.value, v('a'), 'put back into the store');
  assert.equal(p.stats().diskHits, 1);
  assert.equal(disk.calls.filter((c) => c.startsWith('write')).length, 1, 'the read-through wrote nothing back');
});

test('a write older than an evicted disk record loses at flush and the disk record returns', async () => {
  const one = 'k1'.length + 1 + ENTRY_OVERHEAD_BYTES;
  const { disk, store, p } = setup({ maxBytes: one * 2 });
  store.apply('k1', { value: v('N'), version: 10, expiresAt: 0 });
  store.apply('k2', { value: v('b'), version: 2, expiresAt: 0 });
  store.apply('k3', { value: v('c'), version: 3, expiresAt: 0 }); // evicts k1
  await p.flush();
  // a late replica of k1 at an older version: the store no longer knows k1, so it wins there
  assert.equal(store.apply('k1', { value: v('O'), version: 5, expiresAt: 0 }), true);
  await p.flush();
  assert.equal(disk.data.get('g/k1')?.version, 10, 'disk keeps the newer record');
  assert.equal(p.stats().reconciled, 1);
  assert.deepEqual(store.peek('k1')?.value, v('N'), 'the store is corrected to the newer record');
  // a newer write for an evicted key passes the check and is written
  store.apply('k2', { value: v('x'), version: 1, expiresAt: 0 }); // loses in memory: no write
  store.apply('k3', { value: v('y'), version: 30, expiresAt: 0 });
  await p.flush();
  assert.equal(disk.data.get('g/k3')?.version, 30);
});

test('load fills the store without writing back, stopping a group at its byte budget', async () => {
  const disk = new FakeDisk();
  for (let i = 0; i < 10; i++) disk.data.set(`g/k${i}`, { group: 'g', key: `k${i}`, partition: partitionOf(`k${i}`), value: v('x'), version: i + 1, expiresAt: 0 });
  disk.data.set('g/k10', { group: 'g', key: 'k10', partition: 2, value: null, version: 50, expiresAt: 2_000_000 });
  disk.data.set('other/k1', { group: 'other', key: 'k1', partition: 1, value: v('y'), version: 1, expiresAt: 0 });
  const clock = new FakeClock();
  // room for four of the values and the tombstone (tombstones count against the budget)
  const store = new GroupStore({ name: 'g', maxBytes: 4 * ('k1'.length + 1 + ENTRY_OVERHEAD_BYTES) + 'k10'.length + ENTRY_OVERHEAD_BYTES, clock, partitionOf });
  const p = new Persister({ storage: disk, clock });
  p.attach('g', store);
  const r = await p.load();
  assert.equal(r.perGroup['g']?.truncated, true);
  assert.equal(r.perGroup['other'], undefined, 'groups not attached are left alone');
  assert.equal(store.stats().entries, 4);
  await p.flush();
  assert.equal(disk.calls.length, 0, 'nothing written back');
  // what did not fit is read through
  const missing = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9'].find((k) => store.peek(k) === undefined)!;
  assert.deepEqual((await p.readThrough('g', missing))?.value, v('x'));

  // a store large enough loads everything, tombstones included
  const big = new GroupStore({ name: 'g', maxBytes: 1 << 20, clock, partitionOf });
  const p2 = new Persister({ storage: disk, clock });
  p2.attach('g', big);
  const r2 = await p2.load();
  assert.equal(r2.perGroup['g']?.truncated, false);
  assert.equal(big.stats().entries, 10);
  assert.equal(big.peek('k10')?.value, null);
  assert.equal(big.peek('k10')?.version, 50);
});

test('tombstones are deleted from disk once their forget time passed, unless rewritten', async () => {
  const clock = new FakeClock();
  const disk = new FakeDisk();
  const store = new GroupStore({ name: 'g', maxBytes: 1 << 20, clock, partitionOf, tombstoneTtlMs: 1000 });
  const p = new Persister({ storage: disk, clock, sweepIntervalMs: 500, tombstoneTtlMs: 1000 });
  p.attach('g', store);
  p.start();
  store.apply('k1', { value: null, version: 1, expiresAt: 0 });
  store.apply('k2', { value: null, version: 2, expiresAt: 0 });
  await p.flush();
  store.apply('k2', { value: v('back'), version: 3, expiresAt: 0 });
  await p.flush();
  mock.timers.tick(500);
  await settle();
  assert.equal(disk.data.has('g/k1'), true, 'not due yet');
  clock.t += 1000;
  mock.timers.tick(500);
  await settle();
  await settle();
  assert.equal(disk.data.has('g/k1'), false);
  assert.deepEqual(disk.data.get('g/k2')?.value, v('back'));
  assert.equal(p.stats().tombstonesForgotten, 1);
  await p.stop();
});

test('stop writes what is buffered and detaches from the stores', async () => {
  const { disk, store, p } = setup();
  store.apply('k1', { value: v('a'), version: 1, expiresAt: 0 });
  await p.stop();
  assert.equal(disk.data.size, 1);
  store.apply('k2', { value: v('b'), version: 2, expiresAt: 0 });
  mock.timers.tick(100);
  await settle();
  assert.equal(disk.data.size, 1);
  assert.equal(p.stats().pending, 0);
});

test('backpressure: above maxPending buffered records writers wait until a flush drains them', async () => {
  const clock = new FakeClock();
  const disk = new FakeDisk();
  const store = new GroupStore({ name: 'g', maxBytes: 1 << 20, clock, partitionOf });
  const p = new Persister({ storage: disk, clock, maxBatch: 100, maxPending: 5, flushIntervalMs: 5 });
  p.attach('g', store);
  for (let i = 0; i < 4; i++) store.apply(`k${i}`, { value: v('x'), version: i + 1, expiresAt: 0 });
  assert.equal(p.backpressure(), undefined, 'below the mark: no promise, no cost');
  store.apply('k4', { value: v('x'), version: 5, expiresAt: 0 });
  const wait = p.backpressure();
  assert.ok(wait !== undefined);
  let released = false;
  void wait.then(() => (released = true));
  await settle();
  assert.equal(released, false);
  mock.timers.tick(5);
  await settle();
  await settle();
  assert.equal(released, true);
  assert.equal(disk.data.size, 5);
  // a failing disk keeps writers waiting; stop() releases them
  disk.failWrites = 100;
  for (let i = 5; i < 10; i++) store.apply(`k${i}`, { value: v('x'), version: i + 1, expiresAt: 0 });
  const stuck = p.backpressure()!;
  let out = false;
  void stuck.then(() => (out = true));
  mock.timers.tick(5);
  await settle();
  assert.equal(out, false);
  await p.stop().catch(() => {});
  await settle();
  assert.equal(out, true);
});

test('options are validated', () => {
  const disk = new FakeDisk();
  assert.throws(() => new Persister({ storage: disk, maxBatch: 0 }), /maxBatch.*Got: 0/);
  assert.throws(() => new Persister({ storage: disk, flushIntervalMs: 1.5 }), /flushIntervalMs.*Got: 1.5/);
});
