/**
 * Persister: mirrors every write a node's GroupStores apply into LevelStorage, by group commit.
 *
 * Write path. GroupStore calls onApply synchronously for every write that changed a key (local
 * put/delete/expire, replication, hinted handoff, migration batches: they all go through
 * store.apply). The hook only records the entry in a buffer keyed by group+key (a key written
 * twice within a window is written once). The buffer is flushed as one LevelDB batch when it
 * holds `maxBatch` records or `flushIntervalMs` after its first record, whichever comes first.
 *
 * Durability window (chosen: throughput first, like Redis `appendfsync everysec` but in ms):
 * an acknowledged write is in LevelDB's log at most flushIntervalMs (default 5 ms) plus the
 * time to write what is buffered ahead of it, event loop permitting. That backlog is bounded
 * only if writers respect backpressure(): above `maxPending` buffered records (default 4000,
 * a few ms of LevelDB writes) it hands out a promise the write path awaits before acknowledging.
 * The log is written without fsync, so it then survives the process being killed (crash,
 * SIGKILL, OOM), not a power loss (LevelStorage `sync: true` would fsync each batch). Anyone who
 * must know a write is on disk awaits flush(): a migration target should do so before
 * confirming a batch, because the source drops its copy once confirmed.
 *
 * Evictions: the disk is the authority and the store its cache. An entry the LRU evicts stays on
 * disk; readThrough() brings it back on a miss (a persistent node stays warm beyond its memory
 * budget). That creates one hazard: a write arriving for a key the store no longer holds was
 * applied without the last-writer-wins comparison against the evicted, possibly newer, disk
 * record. So such writes are flagged, and the flush compares them with disk first: when disk is
 * newer the write is not persisted and the disk record is applied back into the store (where it
 * wins). Until a store has evicted anything (or a load was cut short by its budget), memory holds
 * everything disk does and neither readThrough nor the flush reads disk at all.
 *
 * Partitions that move away (GroupStore.dropPartition) are deleted from disk, so a restarted node
 * does not resurrect data it gave up. Tombstones are kept on disk until the store would have
 * forgotten them (their expiresAt), then deleted by a periodic sweep; dead records the sweep
 * missed (its queue is bounded) are deleted at the next load.
 *
 * Restart: load() streams the disk into the stores (muted: nothing is written back) until each
 * store's byte budget is full; the rest stays on disk for readThrough. Afterwards the node
 * catches up from peers what they hold above watermark(group, partition) (see catchUpFrom).
 */
import type { GroupStore, StoredEntry } from '../cache/store.ts';
import { DEFAULT_TOMBSTONE_TTL_MS } from '../cache/store.ts';
import { LOGICAL_BITS, compareWrites } from '../core/version.ts';
import { systemClock, type Clock, type Version } from '../core/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { LoadAnswer, LoadResult, PersistRecord } from './leveldb.ts';
import { isDead, type StorageRecord } from './record.ts';

/** The part of LevelStorage the persister uses (tests pass a fake). */
export interface PersistTarget {
  writeBatch(records: readonly PersistRecord[]): Promise<void>;
  get(group: string, key: string, partition?: number): Promise<StorageRecord | undefined>;
  getMany(group: string, items: ReadonlyArray<{ key: string; partition: number }>): Promise<Array<StorageRecord | undefined>>;
  forgetTombstones(group: string, items: ReadonlyArray<{ key: string; partition: number; version: Version }>): Promise<number>;
  dropPartition(group: string, partition: number): Promise<void>;
  /** FLUSHALL: remember `floor` for the group, then remove its records and watermarks. Optional (tests' fakes). */
  flushGroup?(group: string, floor: Version): Promise<void>;
  /** The flush floor of each group flushed so far. Optional (tests' fakes). */
  floors?(): Promise<Map<string, Version>>;
  load(onRecord: (r: StorageRecord) => LoadAnswer): Promise<LoadResult>;
  watermark(group: string, partition: number): Version;
  highWatermark(): Version;
}

export const DEFAULT_MAX_BATCH = 1000;
export const DEFAULT_FLUSH_INTERVAL_MS = 5;
/** Buffered + in-flight records above which backpressure() asks writers to wait. */
export const DEFAULT_MAX_PENDING = 4 * DEFAULT_MAX_BATCH;
/** Records per LevelDB batch when a backlog is flushed: bounds one native call's memory. */
export const MAX_WRITE_BATCH = 10_000;
export const DEFAULT_SWEEP_INTERVAL_MS = 10_000;
export const DEFAULT_MAX_TOMBSTONE_QUEUE = 100_000;
/** After a failed flush, the next attempt waits this long (the records stay buffered). */
export const RETRY_DELAY_MS = 200;
/**
 * Default margin below a watermark for the catch-up: versions are HLC readings, so a peer whose
 * clock lagged ours may have issued writes we never saw with versions a little below ours.
 * 1 s of skew, in version units.
 */
export const DEFAULT_CATCH_UP_MARGIN: Version = 1000 * LOGICAL_BITS;

export interface PersisterOptions {
  /** Where records go (a LevelStorage). Required. */
  storage: PersistTarget;
  /** Source of "now" (tombstone sweep). Default systemClock. */
  clock?: Clock;
  /** Flush as soon as this many records are buffered. Default 1000. */
  maxBatch?: number;
  /** Flush at most this long after the first buffered record, in ms. Default 5. */
  flushIntervalMs?: number;
  /** Buffered + in-flight records above which backpressure() asks writers to wait. Default 4000. */
  maxPending?: number;
  /** How often tombstones due to be forgotten are deleted from disk, in ms. Default 10 s. */
  sweepIntervalMs?: number;
  /** Most tombstones remembered for the sweep; beyond, the next load deletes them. Default 100_000. */
  maxTombstoneQueue?: number;
  /** The stores' tombstone TTL, for dead-record checks. Default 10 minutes. */
  tombstoneTtlMs?: number;
  /** Default: silent. */
  logger?: Logger;
}

interface Pending extends PersistRecord {
  partition: number;
  /** The store held nothing for the key when this was applied: compare with disk before writing. */
  check: boolean;
}

interface Attached {
  name: string;
  store: GroupStore;
  /** The last load stopped at the store's budget: disk holds entries memory does not. */
  truncated: boolean;
  /** key -> latest buffered write of that key. */
  pending: Map<string, Pending>;
  /** What the running flush took from `pending`, until it is on disk (readThrough looks here too). */
  inflight: Map<string, Pending>;
}

export interface PersisterStats {
  /** Records buffered, not yet handed to LevelDB. */
  pending: number;
  /** Records written to LevelDB. */
  written: number;
  flushes: number;
  failures: number;
  /** Buffered writes dropped because disk held a newer record of the key. */
  reconciled: number;
  /** Misses answered from disk by readThrough. */
  diskHits: number;
  tombstonesForgotten: number;
  lastFlushMs: number;
}

export class Persister {
  private readonly storage: PersistTarget;
  private readonly clock: Clock;
  private readonly maxBatch: number;
  private readonly flushIntervalMs: number;
  private readonly maxPending: number;
  private readonly sweepIntervalMs: number;
  private readonly maxTombstoneQueue: number;
  private readonly tombstoneTtlMs: number;
  private readonly logger: Logger | undefined;

  private readonly groups = new Map<string, Attached>();
  // records buffered over all groups (sum of their pending sizes), and being written
  private buffered = 0;
  private inflightCount = 0;
  // the last flush failed: writers wait until one succeeds (see backpressure)
  private failing = false;
  // writers waiting in backpressure() for the backlog to drain
  private drainWaiters: Array<() => void> = [];
  // partition drops buffered with the records: run before the records of the same flush
  private drops: Array<{ group: string; partition: number }> = [];
  // tombstones to forget, in the order written (so roughly by forget time)
  // FLUSHALLs not yet on disk (each before any buffered write that followed it)
  private groupFlushes: Array<{ group: string; floor: Version }> = [];
  private tombQueue: Array<{ group: string; key: string; partition: number; version: Version; forgetAt: number }> = [];
  private tombQueueDropped = false;
  // every disk operation runs on this chain, one at a time, in order
  private tail: Promise<void> = Promise.resolve();
  private flushQueued = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  // > 0 while applying records read from disk into a store: those are not written back
  private muted = 0;
  private stopped = false;
  private readonly counters: Omit<PersisterStats, 'pending'> = { written: 0, flushes: 0, failures: 0, reconciled: 0, diskHits: 0, tombstonesForgotten: 0, lastFlushMs: 0 };

  constructor(opts: PersisterOptions) {
    this.storage = opts.storage;
    this.clock = opts.clock ?? systemClock;
    this.maxBatch = positiveInt('maxBatch', opts.maxBatch ?? DEFAULT_MAX_BATCH);
    this.flushIntervalMs = positiveInt('flushIntervalMs', opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS);
    this.maxPending = positiveInt('maxPending', opts.maxPending ?? DEFAULT_MAX_PENDING);
    this.sweepIntervalMs = positiveInt('sweepIntervalMs', opts.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
    this.maxTombstoneQueue = positiveInt('maxTombstoneQueue', opts.maxTombstoneQueue ?? DEFAULT_MAX_TOMBSTONE_QUEUE);
    this.tombstoneTtlMs = opts.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS;
    this.logger = opts.logger;
  }

  /** Mirror this store's writes to disk from now on. */
  attach(group: string, store: GroupStore): void {
    if (this.groups.has(group)) throw new Error(`Persister: group "${group}" is already attached`);
    const a: Attached = { name: group, store, truncated: false, pending: new Map(), inflight: new Map() };
    this.groups.set(group, a);
    store.setWriteHooks({
      onApply: (key, entry, prev) => this.onApply(a, key, entry, prev),
      onDropPartition: (partition) => this.onDrop(a, partition),
      onFlush: (floor) => this.onFlush(a, floor),
    });
  }

  /** Start the periodic tombstone sweep. Writes are mirrored from attach() on, started or not. */
  start(): void {
    if (this.sweepTimer !== undefined) return;
    this.sweepTimer = setInterval(() => {
      this.enqueue(() => this.sweep()).catch((e: unknown) => this.logger?.warn({ err: e }, 'tombstone sweep failed'));
    }, this.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Detach from the stores and write what is buffered. Close the storage after this. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const { store } of this.groups.values()) store.setWriteHooks(undefined);
    try {
      await this.flush();
    } finally {
      this.releaseWaiters();
    }
  }

  /**
   * Undefined while the backlog (buffered + being written) is below maxPending; otherwise a
   * promise that resolves once it drained below. A write path awaits it before acknowledging,
   * which keeps the durability window at a few ms even when writes outpace the disk. While the
   * disk fails the promise stays pending (writers time out), and stop() releases it.
   */
  backpressure(): Promise<void> | undefined {
    if (this.stopped || (!this.failing && this.buffered + this.inflightCount < this.maxPending)) return undefined;
    // while the disk fails (full, read-only), no write is acknowledged: writers wait for a flush
    // that succeeds, and time out at their deadline meanwhile
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Load the disk into the attached stores, each until its byte budget is full (the rest stays
   * on disk for readThrough). Call before the node serves: writes applied meanwhile still win by
   * version, but loading is fastest alone. Records of groups not attached stay on disk untouched.
   */
  async load(): Promise<LoadResult & { perGroup: Record<string, { loaded: number; truncated: boolean }> }> {
    const perGroup: Record<string, { loaded: number; truncated: boolean }> = {};
    const evictionsAtStart = new Map([...this.groups].map(([g, a]) => [g, a.store.stats().evictions]));
    // a group flushed before the restart refuses what the flush dropped, whatever is still on disk
    for (const [group, floor] of (await this.storage.floors?.()) ?? []) {
      const a = this.groups.get(group);
      if (a === undefined) continue;
      this.muted++;
      try {
        a.store.flush(floor);
      } finally {
        this.muted--;
      }
    }
    const result = await this.storage.load((r) => {
      const a = this.groups.get(r.group);
      if (a === undefined) return 'skip-group';
      const stats = (perGroup[r.group] ??= { loaded: 0, truncated: false });
      this.muted++;
      try {
        a.store.apply(r.key, { value: r.value, version: r.version, expiresAt: r.value === null ? 0 : r.expiresAt, ...(r.type !== undefined ? { type: r.type } : {}) });
      } finally {
        this.muted--;
      }
      stats.loaded++;
      if (a.store.stats().evictions > (evictionsAtStart.get(r.group) ?? 0)) {
        // full: what is left of this group stays on disk
        a.truncated = true;
        stats.truncated = true;
        return 'skip-group';
      }
      return undefined;
    });
    return { ...result, perGroup };
  }

  /**
   * The entry of `key` from memory, else from disk when memory may have lost it (eviction or a
   * load cut short); a disk hit is put back into the store. Undefined when neither holds it.
   * Tombstones are returned as such (value null). Call on a miss before asking the origin.
   */
  async readThrough(group: string, key: string): Promise<StoredEntry | undefined> {
    const a = this.groups.get(group);
    if (a === undefined) return undefined;
    const inMemory = a.store.peek(key);
    if (inMemory !== undefined || !this.diskMayHoldMore(a)) return inMemory;
    // buffered writes are newer than disk; these were evicted before reaching it
    const buffered = a.pending.get(key) ?? a.inflight.get(key);
    const rec = buffered ?? (await this.storage.get(group, key));
    if (rec === undefined || isDead(rec, this.clock.now(), this.tombstoneTtlMs)) return a.store.peek(key);
    if (buffered === undefined) this.counters.diskHits++;
    this.restore(a.store, key, rec);
    return a.store.peek(key);
  }

  /**
   * Resolves when every write applied before the call is on disk (in LevelDB's log). Rejects
   * when that flush failed (the records stay buffered and are retried).
   */
  flush(): Promise<void> {
    this.clearTimer();
    this.flushQueued = true;
    return this.enqueue(() => this.doFlush());
  }

  /** Largest version on disk for a partition of a group (0: none); see catchUpFrom. */
  watermark(group: string, partition: number): Version {
    return this.storage.watermark(group, partition);
  }

  highWatermark(): Version {
    return this.storage.highWatermark();
  }

  /**
   * The version above which a peer should send this node the records of a partition after a
   * restart: its watermark minus `margin` (default 1 s of clock skew), or 0 when nothing of it
   * is on disk (send everything). Re-sent records are harmless: the store keeps the newest.
   */
  catchUpFrom(group: string, partition: number, margin: Version = DEFAULT_CATCH_UP_MARGIN): Version {
    const w = this.storage.watermark(group, partition);
    return w === 0 ? 0 : Math.max(0, w - margin);
  }

  stats(): PersisterStats {
    return { pending: this.buffered, ...this.counters };
  }

  // ---- hooks (synchronous, inside store operations) ----------------------------------------

  private onApply(a: Attached, key: string, entry: StoredEntry, prev: StoredEntry | undefined): void {
    if (this.muted > 0 || this.stopped) return;
    const check = prev === undefined && this.diskMayHoldMore(a);
    const before = a.pending.get(key);
    if (before === undefined) this.buffered++;
    a.pending.set(key, {
      group: a.name,
      key,
      partition: entry.partition,
      value: entry.value,
      version: entry.version,
      expiresAt: entry.expiresAt,
      ...(entry.type !== 0 ? { type: entry.type } : {}),
      // a buffered write that needed the disk comparison still does after being overwritten
      check: check || (before?.check ?? false),
    });
    if (entry.value === null) this.queueTombstone(a.name, key, entry);
    if (this.buffered >= this.maxBatch) {
      if (!this.flushQueued) this.flush().catch(() => {}); // failures are logged and retried by doFlush
    } else if (this.timer === undefined && !this.flushQueued) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush().catch(() => {});
      }, this.flushIntervalMs);
    }
  }

  private onFlush(a: Attached, floor: Version): void {
    if (this.muted > 0 || this.stopped) return;
    // buffered writes of the group are gone from memory too; later ones follow the flush
    this.buffered -= a.pending.size;
    a.pending.clear();
    this.drops = this.drops.filter((d) => d.group !== a.name);
    this.groupFlushes.push({ group: a.name, floor });
    if (!this.flushQueued) this.flush().catch(() => {});
  }

  private onDrop(a: Attached, partition: number): void {
    if (this.stopped) return;
    // buffered writes of that partition are gone from memory too; later ones follow the drop
    for (const [key, p] of a.pending) {
      if (p.partition === partition) {
        a.pending.delete(key);
        this.buffered--;
      }
    }
    this.drops.push({ group: a.name, partition });
    if (!this.flushQueued) this.flush().catch(() => {});
  }

  // ---- disk side (one job at a time on the chain) --------------------------------------------

  private enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.tail.then(job);
    this.tail = run.catch(() => {});
    return run;
  }

  private async doFlush(): Promise<void> {
    this.flushQueued = false;
    const drops = this.drops;
    this.drops = [];
    const groupFlushes = this.groupFlushes;
    this.groupFlushes = [];
    if (this.buffered === 0 && drops.length === 0 && groupFlushes.length === 0) return;
    const taken: Attached[] = [];
    const all: Pending[] = [];
    for (const a of this.groups.values()) {
      if (a.pending.size === 0) continue;
      a.inflight = a.pending;
      a.pending = new Map();
      taken.push(a);
      for (const p of a.inflight.values()) all.push(p);
    }
    this.buffered = 0;
    this.inflightCount = all.length;
    const t0 = performance.now();
    try {
      while (groupFlushes.length > 0) {
        const f = groupFlushes[0]!;
        await this.storage.flushGroup?.(f.group, f.floor);
        groupFlushes.shift(); // done: not retried
      }
      for (let i = 0; i < drops.length; i++) {
        const d = drops[i]!;
        await this.storage.dropPartition(d.group, d.partition);
        drops[i] = { group: '', partition: -1 }; // done: not retried
      }
      const records = await this.reconcile(all);
      for (let i = 0; i < records.length; i += MAX_WRITE_BATCH) {
        await this.storage.writeBatch(records.slice(i, i + MAX_WRITE_BATCH));
      }
      this.counters.written += records.length;
      this.counters.flushes++;
      this.failing = false;
      this.counters.lastFlushMs = performance.now() - t0;
    } catch (e) {
      this.counters.failures++;
      this.failing = true;
      // put everything back unless a newer write of the key arrived meanwhile; retry later
      for (const a of taken) {
        for (const [key, p] of a.inflight) {
          if (a.pending.has(key)) continue;
          a.pending.set(key, p);
          this.buffered++;
        }
      }
      this.drops = [...drops.filter((d) => d.partition >= 0), ...this.drops];
      this.groupFlushes = [...groupFlushes, ...this.groupFlushes];
      this.logger?.error({ err: e, records: all.length }, 'persisting writes failed; kept buffered, retrying');
      if (!this.stopped && this.timer === undefined) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.flush().catch(() => {});
        }, RETRY_DELAY_MS);
      }
      throw e;
    } finally {
      for (const a of taken) a.inflight = new Map();
      this.inflightCount = 0;
    }
    if (this.buffered < this.maxPending) this.releaseWaiters();
  }

  /**
   * Drop the flagged writes that disk holds a newer record of, and give that record back to the
   * store (see the file comment). Returns what to write.
   */
  private async reconcile(records: Pending[]): Promise<Pending[]> {
    const byGroup = new Map<string, Pending[]>();
    for (const r of records) {
      if (!r.check) continue;
      let list = byGroup.get(r.group);
      if (list === undefined) byGroup.set(r.group, (list = []));
      list.push(r);
    }
    if (byGroup.size === 0) return records;
    const stale = new Set<Pending>();
    const now = this.clock.now();
    for (const [group, list] of byGroup) {
      const onDisk = await this.storage.getMany(group, list);
      const a = this.groups.get(group);
      onDisk.forEach((d, i) => {
        const mine = list[i]!;
        if (d === undefined || isDead(d, now, this.tombstoneTtlMs) || compareWrites(d, mine) <= 0) return;
        stale.add(mine);
        if (a !== undefined) this.restore(a.store, mine.key, d);
      });
    }
    this.counters.reconciled += stale.size;
    return stale.size === 0 ? records : records.filter((r) => !stale.has(r));
  }

  /** Apply a record read from disk (or the buffer) to a store without writing it back. */
  private restore(store: GroupStore, key: string, rec: { value: Buffer | null; version: Version; expiresAt: number; type?: number }): void {
    this.muted++;
    try {
      store.apply(key, { value: rec.value, version: rec.version, expiresAt: rec.value === null ? 0 : rec.expiresAt, ...(rec.type !== undefined ? { type: rec.type } : {}) });
    } finally {
      this.muted--;
    }
  }

  private queueTombstone(group: string, key: string, entry: StoredEntry): void {
    if (this.tombQueue.length >= this.maxTombstoneQueue) {
      if (!this.tombQueueDropped) this.logger?.warn({ max: this.maxTombstoneQueue }, 'tombstone sweep queue full; the rest are deleted at the next load');
      this.tombQueueDropped = true;
      return;
    }
    this.tombQueue.push({ group, key, partition: entry.partition, version: entry.version, forgetAt: entry.expiresAt });
  }

  /** Delete from disk the tombstones whose forget time passed (if disk still holds them). */
  private async sweep(): Promise<void> {
    const now = this.clock.now();
    let due = 0;
    while (due < this.tombQueue.length && this.tombQueue[due]!.forgetAt <= now) due++;
    if (due === 0) return;
    const items = this.tombQueue.splice(0, due);
    const byGroup = new Map<string, typeof items>();
    for (const it of items) {
      let list = byGroup.get(it.group);
      if (list === undefined) byGroup.set(it.group, (list = []));
      list.push(it);
    }
    for (const [group, list] of byGroup) {
      for (let i = 0; i < list.length; i += MAX_WRITE_BATCH) {
        this.counters.tombstonesForgotten += await this.storage.forgetTombstones(group, list.slice(i, i + MAX_WRITE_BATCH));
      }
    }
  }

  private releaseWaiters(): void {
    if (this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private diskMayHoldMore(a: Attached): boolean {
    return a.truncated || a.store.stats().evictions > 0;
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`Persister ${name} must be a positive integer. Got: ${v}`);
  return v;
}
