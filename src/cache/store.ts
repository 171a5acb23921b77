import { LRUCache } from 'lru-cache';
import type { Clock, Version } from '../core/types.ts';
import { compareWrites } from '../core/version.ts';

/**
 * Bytes charged per stored value on top of its key (UTF-8) and value bytes. An estimate of the
 * bookkeeping a value costs in this process: the StoredEntry object and the Buffer header
 * (~80 bytes), lru-cache's map entry and link/size slots (~40), the partition-index slot (~8).
 * It keeps a budget honest for many tiny values, where the payload alone would undercount.
 */
export const ENTRY_OVERHEAD_BYTES = 128;

/** Default bound on remembered tombstones; the oldest is dropped first. */
export const DEFAULT_MAX_TOMBSTONES = 100_000;

/** Default time a tombstone is remembered: longer than any replication or migration lag. */
export const DEFAULT_TOMBSTONE_TTL_MS = 10 * 60_000;

/** Default number of entries one {@link GroupStore.purgeExpired} call examines. */
export const DEFAULT_PURGE_LIMIT = 1000;

/**
 * What the store holds for a key: a value or a tombstone. Treat as read-only: the store never
 * mutates an entry after handing it out, it replaces it.
 */
export interface StoredEntry {
  /** The bytes, or null for a tombstone (the key was deleted at `version`). */
  value: Buffer | null;
  version: Version;
  /**
   * Value: absolute expiry in ms since the epoch, 0 = never.
   * Tombstone: when this store forgets it (recorded time + tombstoneTtlMs).
   */
  expiresAt: number;
  /** partitionOf(key), computed once when the key enters the store. */
  partition: number;
}

/** One write as it travels between nodes (client write, replication, migration). */
export interface WriteRecord {
  /** The bytes, or null for a delete. */
  value: Buffer | null;
  version: Version;
  /** Absolute expiry in ms since the epoch, 0 = never. Ignored for a delete. */
  expiresAt: number;
}

export interface GroupStoreOptions {
  /** Group name, for stats and logs. Required, non-empty. */
  name: string;
  /**
   * Byte budget of the values: key UTF-8 bytes + value bytes + {@link ENTRY_OVERHEAD_BYTES}
   * per entry. Required, a positive integer. Tombstones are bounded by count instead.
   */
  maxBytes: number;
  /** Source of "now" for expiry. Required (pass systemClock in production). */
  clock: Clock;
  /** Partition of a key; called once when a key enters the store. Required. */
  partitionOf: (key: string) => number;
  /** Most tombstones remembered; the oldest is dropped first. Default 100_000; 0 disables them. */
  maxTombstones?: number;
  /**
   * How long a tombstone is remembered, in ms. Tombstones stop a delete from being undone by a
   * late replica or migration carrying an older version. Default 10 minutes.
   */
  tombstoneTtlMs?: number;
  /**
   * Called when the LRU evicts a value to stay within maxBytes (also on resize), not on
   * overwrite, delete or expiry. Runs synchronously inside the store operation that caused the
   * eviction: it must not call back into this store. Default: none.
   */
  onEvict?: (key: string, entry: StoredEntry) => void;
  /**
   * Write hooks (persistence): see {@link StoreWriteHooks}. Can also be set after construction
   * with {@link GroupStore.setWriteHooks}. Default: none, and then they cost one check per write.
   */
  writeHooks?: StoreWriteHooks;
}

/**
 * What a persistence layer needs to mirror the store's writes. Both run synchronously inside the
 * store operation: they must not call back into this store, and should only buffer.
 */
export interface StoreWriteHooks {
  /**
   * After apply() changed what the store holds for `key`: `entry` is what it holds now (a value,
   * or a tombstone whose expiresAt is when the store forgets it), `prev` what it held before
   * (undefined: nothing, e.g. never seen, evicted or a forgotten tombstone). Called when apply()
   * returns true, and also in the guard case where an oversized value replaced the entry by a
   * tombstone (apply() returns false there but the key did change). Not called for lazy expiry,
   * evictions or the tombstone bounds: a reader of the persisted records derives those itself.
   */
  onApply(key: string, entry: StoredEntry, prev: StoredEntry | undefined): void;
  /** After dropPartition() removed a partition's values and tombstones (it moved away). */
  onDropPartition?(partition: number): void;
}

/** A stored value: in the LRU, `value` is never null. */
type LiveEntry = StoredEntry & { value: Buffer };

function entrySize(key: string, value: Buffer): number {
  return Buffer.byteLength(key) + value.length + ENTRY_OVERHEAD_BYTES;
}

/** Expiry as a rank for tie-breaking: 0 (never) outlives everything. */
function expiryRank(expiresAt: number): number {
  return expiresAt === 0 ? Infinity : expiresAt;
}

function requireInt(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`GroupStore ${name} must be an integer >= ${min}. Got: ${value}`);
  }
}

/**
 * The entries of one group on one node: a byte-bounded LRU of values plus a bounded set of
 * tombstones, merged by the last-writer-wins rule so every replica converges whatever order
 * writes arrive in.
 *
 * Expiry is ours, not lru-cache's: it reads the injected clock (fake clocks work) and expiresAt
 * is absolute, so it replicates unchanged. An expired value is removed lazily (on access or by
 * purgeExpired) and turned into a tombstone at its version, so an older write arriving late
 * (e.g. one without a TTL) cannot bring the key back; a write that arrives already expired
 * counts as a delete at its version for the same reason.
 *
 * Every key held (value or tombstone) is listed in a per-partition index, kept exact through
 * lru-cache's dispose hook, so migration and replication can enumerate a partition without
 * scanning the whole group.
 */
export class GroupStore {
  readonly name: string;

  private readonly clock: Clock;
  private readonly partitionOf: (key: string) => number;
  private readonly maxTombstones: number;
  private readonly tombstoneTtlMs: number;
  private readonly onEvict: ((key: string, entry: StoredEntry) => void) | undefined;
  private hooks: StoreWriteHooks | undefined;

  private maxBytes: number;
  // values only; replaced wholesale by resize() and clear()
  private values: LRUCache<string, LiveEntry>;
  // in the order recorded, oldest first, so both bounds (count and age) drop from the front
  private readonly tombstones = new Map<string, StoredEntry>();
  // partition -> keys held there. Invariant: a key is in exactly one set iff it is in `values`
  // or in `tombstones` (never both); no set is empty.
  private readonly index = new Map<number, Set<string>>();
  private evictions = 0;

  // purgeExpired resumes where it stopped: partitions still to visit, and a snapshot of the
  // keys of the partition being visited
  private sweepPartitions: number[] = [];
  private sweepKeys: string[] = [];
  private sweepPos = 0;

  constructor(opts: GroupStoreOptions) {
    if (typeof opts.name !== 'string' || opts.name === '') {
      throw new TypeError(`GroupStore name must be a non-empty string. Got: ${JSON.stringify(opts.name)}`);
    }
    requireInt('maxBytes', opts.maxBytes, 1);
    const maxTombstones = opts.maxTombstones ?? DEFAULT_MAX_TOMBSTONES;
    requireInt('maxTombstones', maxTombstones, 0);
    const tombstoneTtlMs = opts.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS;
    requireInt('tombstoneTtlMs', tombstoneTtlMs, 0);
    this.name = opts.name;
    this.clock = opts.clock;
    this.partitionOf = opts.partitionOf;
    this.maxTombstones = maxTombstones;
    this.tombstoneTtlMs = tombstoneTtlMs;
    this.onEvict = opts.onEvict;
    this.hooks = opts.writeHooks;
    this.maxBytes = opts.maxBytes;
    this.values = this.makeLru(opts.maxBytes);
  }

  private makeLru(maxBytes: number): LRUCache<string, LiveEntry> {
    return new LRUCache<string, LiveEntry>({
      maxSize: maxBytes,
      sizeCalculation: (entry, key) => entrySize(key, entry.value),
      // Every way a value leaves the LRU passes here, which keeps the index exact. 'set' is an
      // overwrite of a key that stays (apply() never lets lru-cache refuse an oversized value,
      // the other source of 'set').
      dispose: (entry, key, reason) => {
        if (reason === 'set') return;
        this.unindex(key, entry.partition);
        if (reason === 'evict') {
          this.evictions++;
          this.onEvict?.(key, entry);
        }
      },
    });
  }

  /**
   * Attach (or with undefined, detach) the write hooks. The node builds its groups first and
   * attaches persistence afterwards, so this is a setter rather than only an option.
   */
  setWriteHooks(hooks: StoreWriteHooks | undefined): void {
    this.hooks = hooks;
  }

  /**
   * The live value of `key`: not a tombstone, not expired. Marks it most recently used.
   * An expired value found here is removed (and becomes a tombstone).
   */
  get(key: string): StoredEntry | undefined {
    const entry = this.values.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== 0) {
      const now = this.clock.now();
      if (entry.expiresAt <= now) {
        this.expire(key, entry, now);
        return undefined;
      }
    }
    return entry;
  }

  /** The value or tombstone of `key`, without touching recency. Expired values are not returned. */
  peek(key: string): StoredEntry | undefined {
    return this.lookup(key, this.clock.now());
  }

  /** Whether `key` has a live value (no recency update). */
  has(key: string): boolean {
    const entry = this.lookup(key, this.clock.now());
    return entry !== undefined && entry.value !== null;
  }

  /**
   * Merge one write by last-writer-wins ({@link compareWrites}) against the current value or
   * tombstone; returns true if the write won and is now held. A winning delete removes the value
   * and records a tombstone. Exact ties (same version and bytes) keep the later expiry, so the
   * result does not depend on arrival order.
   *
   * A value larger than the whole budget cannot be held: it still supersedes what was there (a
   * tombstone at its version is recorded) and apply returns false. Callers enforce a value size
   * limit far below the budget, so this is a guard, not a path.
   */
  apply(key: string, rec: WriteRecord): boolean {
    const now = this.clock.now();
    const cur = this.lookup(key, now);
    // A write that is already expired is a delete at its version: stored as a value it would
    // vanish and let older writes back in.
    const value = rec.value !== null && rec.expiresAt !== 0 && rec.expiresAt <= now ? null : rec.value;
    if (cur !== undefined) {
      const order = compareWrites(value === rec.value ? rec : { version: rec.version, value }, cur);
      if (order < 0) return false;
      if (order === 0 && (value === null || expiryRank(rec.expiresAt) <= expiryRank(cur.expiresAt))) return false;
    }
    const partition = cur !== undefined ? cur.partition : this.partitionOf(key);
    if (value !== null && entrySize(key, value) <= this.maxBytes) {
      if (cur === undefined) this.reindex(key, partition);
      else if (cur.value === null) this.tombstones.delete(key); // the key stays indexed
      const entry: LiveEntry = { value, version: rec.version, expiresAt: rec.expiresAt, partition };
      this.values.set(key, entry);
      this.hooks?.onApply(key, entry, cur);
      return true;
    }
    if (cur !== undefined && cur.value !== null) this.values.delete(key);
    const tomb = this.recordTombstone(key, rec.version, partition, now);
    // maxTombstones 0 drops it at once; the hook still learns of the delete
    this.hooks?.onApply(key, tomb ?? { value: null, version: rec.version, expiresAt: now + this.tombstoneTtlMs, partition }, cur);
    return value === null;
  }

  /**
   * Values and tombstones of one partition, for migration and replication. Iterates a snapshot
   * of the partition's keys and looks each up as it goes, so the store may change meanwhile
   * (entries removed since are skipped, changed ones are yielded as they are now). Expired
   * values are yielded as the tombstones they become. No recency update.
   */
  *partitionEntries(partition: number): IterableIterator<[string, StoredEntry]> {
    const keys = this.index.get(partition);
    if (keys === undefined) return;
    for (const key of Array.from(keys)) {
      const entry = this.lookup(key, this.clock.now());
      if (entry !== undefined && entry.partition === partition) yield [key, entry];
    }
  }

  /** Keys (values and tombstones) held for a partition; expired values count until noticed. */
  partitionKeyCount(partition: number): number {
    return this.index.get(partition)?.size ?? 0;
  }

  /** Partitions holding any value or tombstone, ascending. */
  partitions(): number[] {
    return Array.from(this.index.keys()).sort((a, b) => a - b);
  }

  /** Remove every value and tombstone of a partition (it moved away). Returns how many. */
  dropPartition(partition: number): number {
    const keys = this.index.get(partition);
    if (keys === undefined) return 0;
    const snapshot = Array.from(keys);
    for (const key of snapshot) {
      // a value's dispose unindexes it; tombstones are unindexed wholesale below
      if (!this.values.delete(key)) this.tombstones.delete(key);
    }
    this.index.delete(partition);
    this.hooks?.onDropPartition?.(partition);
    return snapshot.length;
  }

  /**
   * Incremental expiry sweep: forgets tombstones past their time and turns expired values into
   * tombstones, examining at most `limit` entries (default 1000) per call plus one snapshot of a
   * partition's keys. Call it periodically; it resumes where the previous call stopped.
   * Returns the number of entries removed (forgotten tombstones + expired values).
   */
  purgeExpired(limit: number = DEFAULT_PURGE_LIMIT): number {
    const now = this.clock.now();
    let work = 0;
    let removed = 0;
    // tombstones are recorded in order, so the expired ones are at the front
    for (const [key, tomb] of this.tombstones) {
      if (work >= limit || tomb.expiresAt > now) break;
      work++;
      removed++;
      this.tombstones.delete(key);
      this.unindex(key, tomb.partition);
    }
    let refilled = false;
    while (work < limit) {
      if (this.sweepPos >= this.sweepKeys.length) {
        const next = this.sweepPartitions.pop();
        if (next === undefined) {
          if (refilled) break; // a whole round done within this call
          this.sweepPartitions = this.partitions();
          refilled = true;
          continue;
        }
        this.sweepKeys = Array.from(this.index.get(next) ?? []);
        this.sweepPos = 0;
        continue;
      }
      const key = this.sweepKeys[this.sweepPos++] as string;
      work++;
      const entry = this.values.peek(key);
      if (entry !== undefined && entry.expiresAt !== 0 && entry.expiresAt <= now) {
        this.expire(key, entry, now);
        removed++;
      }
    }
    return removed;
  }

  /**
   * Change the byte budget (hot reload of cache_bytes). Shrinking evicts least recently used
   * values until the rest fits, reporting each through onEvict. Recency order is kept.
   */
  resize(maxBytes: number): void {
    requireInt('maxBytes', maxBytes, 1);
    if (maxBytes === this.maxBytes) return;
    // lru-cache's maxSize is fixed at construction: move the values to a new cache, least
    // recently used first, so the new one evicts exactly the ones the old order says.
    const old = this.values;
    this.maxBytes = maxBytes;
    this.values = this.makeLru(maxBytes);
    // rentries() is typed as (K | V)[] upstream; it yields [key, value] pairs
    for (const [key, entry] of old.rentries() as Iterable<[string, LiveEntry]>) {
      if (entrySize(key, entry.value) > maxBytes) {
        this.unindex(key, entry.partition);
        this.evictions++;
        this.onEvict?.(key, entry);
        continue;
      }
      this.values.set(key, entry);
    }
    // `old` is dropped without clear(): its dispose must not unindex the moved keys
  }

  stats(): { bytes: number; entries: number; tombstones: number; maxBytes: number; evictions: number } {
    return {
      bytes: this.values.calculatedSize,
      entries: this.values.size,
      tombstones: this.tombstones.size,
      maxBytes: this.maxBytes,
      evictions: this.evictions,
    };
  }

  /** Drop every value and tombstone. Not reported as evictions. */
  clear(): void {
    // a fresh cache instead of values.clear(): no per-entry dispose work, the index goes anyway
    this.values = this.makeLru(this.maxBytes);
    this.tombstones.clear();
    this.index.clear();
    this.sweepPartitions = [];
    this.sweepKeys = [];
    this.sweepPos = 0;
  }

  /** Current value or tombstone; an expired value becomes a tombstone, a stale tombstone goes. */
  private lookup(key: string, now: number): StoredEntry | undefined {
    const entry = this.values.peek(key);
    if (entry !== undefined) {
      if (entry.expiresAt === 0 || entry.expiresAt > now) return entry;
      return this.expire(key, entry, now);
    }
    const tomb = this.tombstones.get(key);
    if (tomb === undefined) return undefined;
    if (tomb.expiresAt > now) return tomb;
    this.tombstones.delete(key);
    this.unindex(key, tomb.partition);
    return undefined;
  }

  /** Replace an expired value by a tombstone at its version (see the class comment). */
  private expire(key: string, entry: LiveEntry, now: number): StoredEntry | undefined {
    this.values.delete(key); // dispose unindexes
    return this.recordTombstone(key, entry.version, entry.partition, now);
  }

  /**
   * Record a tombstone for a key that holds no value (any value was removed by the caller).
   * Returns it, or undefined when the count bound dropped it at once (maxTombstones 0).
   */
  private recordTombstone(key: string, version: Version, partition: number, now: number): StoredEntry | undefined {
    // delete first so a renewed tombstone moves to the back of the age order
    if (!this.tombstones.delete(key)) this.reindex(key, partition);
    const tomb: StoredEntry = { value: null, version, expiresAt: now + this.tombstoneTtlMs, partition };
    this.tombstones.set(key, tomb);
    while (this.tombstones.size > this.maxTombstones) {
      const oldest = this.tombstones.entries().next().value;
      if (oldest === undefined) break;
      this.tombstones.delete(oldest[0]);
      this.unindex(oldest[0], oldest[1].partition);
    }
    return this.tombstones.get(key);
  }

  private reindex(key: string, partition: number): void {
    let keys = this.index.get(partition);
    if (keys === undefined) {
      keys = new Set();
      this.index.set(partition, keys);
    }
    keys.add(key);
  }

  private unindex(key: string, partition: number): void {
    const keys = this.index.get(partition);
    if (keys === undefined) return;
    keys.delete(key);
    if (keys.size === 0) this.index.delete(partition);
  }
}
