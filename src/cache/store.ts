import type { Clock, Version } from '../core/types.ts';
import { ValueArena } from './arena.ts';
import type { ValueArenaOptions, ValueArenaStats } from './arena.ts';

/**
 * Bytes charged per stored value on top of its key (UTF-8) and value bytes. An estimate of the
 * bookkeeping a value costs in this process: the key string's header, its Map entry and the
 * slot's reference to it (~55 bytes of V8 heap), the slot record and the value's location (52,
 * see F64_STRIDE and ValueArena) and the value's record header (6), with some slack for the
 * Map's growth. Measured by bench/scenarios/memory.ts: ~242 bytes of RSS per 100-byte value with
 * 14-byte keys at 1M entries, the process's own slack included. It keeps a budget honest for many
 * tiny values, where the payload alone would undercount. Segment garbage not yet compacted (at
 * most ValueArena's maxDeadShare, 25% by default) is not charged.
 */
export const ENTRY_OVERHEAD_BYTES = 128;

/** Default bound on remembered tombstones; the oldest is dropped first. */
export const DEFAULT_MAX_TOMBSTONES = 100_000;

/** Default time a tombstone is remembered: longer than any replication or migration lag. */
export const DEFAULT_TOMBSTONE_TTL_MS = 10 * 60_000;

/** Default number of entries one {@link GroupStore.purgeExpired} call examines. */
export const DEFAULT_PURGE_LIMIT = 1000;

/**
 * What the store holds for a key: a value or a tombstone. A snapshot: the store hands out a fresh
 * object with its own copy of the value bytes (values are packed in shared segments inside the
 * store), so a caller may keep it, send it or queue it for as long as it likes. Treat it as
 * read-only all the same: a large value (above the arena's largeValueBytes) is the very Buffer
 * that was applied, not a copy.
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
  /** Layout of the value segments (see ValueArena). Default: the arena's defaults. */
  arena?: ValueArenaOptions;
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


// Slot kinds. A slot is FREE (on the free chain, or just taken and not yet filled), holds a
// VALUE (in the LRU list, bytes in the arena) or a TOMBstone (in the tombstone age list).
const FREE = 0;
const VALUE = 1;
const TOMB = 2;
// Sentinel slots of the two circular lists threaded through next/prev: the LRU (next of the
// sentinel is the least recently used) and the tombstones (next is the oldest).
const LRU = 0;
const TOMBS = 1;
const FIRST_SLOT = 2;
const NONE = -1;
// Slot tables grow by pages of this many slots rather than by doubling: no copy, no slack
// beyond one page, and no freed generations left in the process's RSS (measured: ~50 bytes an
// entry at 200k entries with doubling).
const PAGE_SHIFT = 12;
const PAGE_SLOTS = 1 << PAGE_SHIFT;
const PAGE_MASK = PAGE_SLOTS - 1;

// A slot's state is one 40-byte record (5 float64 = 10 int32) in a page's ArrayBuffer, viewed
// both ways, so a random get touches one cache line for it rather than one per field.
const F64_STRIDE = 5;
const I32_STRIDE = 10;
// float64 fields: version, expiresAt (value: expiry, 0 = never; tombstone: when it is forgotten)
const VER = 0;
const EXP = 1;
// int32 fields (0-3 are under the float64s): partition; LRU or tombstone-age links (NEXT also
// chains the free slots); partition-list links; (key UTF-8 bytes << 2) | kind
const PART = 4;
const NEXT = 5;
const PREV = 6;
const PNEXT = 7;
const PPREV = 8;
const META = 9;

/** Partition index entry: a circular list of slots threaded through pnext/pprev. */
interface PartitionList {
  head: number;
  count: number;
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
 * Expiry is ours: it reads the injected clock (fake clocks work) and expiresAt is absolute, so
 * it replicates unchanged. An expired value is removed lazily (on access or by purgeExpired)
 * and turned into a tombstone at its version, so an older write arriving late (e.g. one without
 * a TTL) cannot bring the key back; a write that arrives already expired counts as a delete at
 * its version for the same reason.
 *
 * Every key held (value or tombstone) is listed in a per-partition index, so migration and
 * replication can enumerate a partition without scanning the whole group.
 *
 * Memory layout (a million small values is the case to optimise: bookkeeping dwarfs the bytes
 * otherwise). One Map from key to slot number; everything else about a key lives in a 40-byte
 * record for its slot, in typed-array pages: version, expiry, partition, key length and kind,
 * the LRU / tombstone-age links and the partition-list links. The value bytes are packed in a
 * {@link ValueArena}. No per-entry JS object exists besides the key string; get() and peek()
 * build a StoredEntry with a copy of the bytes on the way out.
 */
export class GroupStore {
  readonly name: string;

  private readonly clock: Clock;
  private readonly partitionOf: (key: string) => number;
  private readonly maxTombstones: number;
  private readonly tombstoneTtlMs: number;
  private readonly onEvict: ((key: string, entry: StoredEntry) => void) | undefined;
  private hooks: StoreWriteHooks | undefined;
  private readonly arenaOptions: ValueArenaOptions | undefined;

  private maxBytes: number;
  // key -> slot, for values and tombstones alike. Invariant: slots.get(keyOf[s]) === s for
  // every slot of kind VALUE or TOMB, and no other slot is named here.
  private readonly slots = new Map<string, number>();
  private keyOf: Array<string | undefined> = [];
  // slot records (see F64_STRIDE) by page: fp[n] and ip[n] view the same ArrayBuffer
  private fp: Float64Array[] = [];
  private ip: Int32Array[] = [];
  private arena: ValueArena;
  private freeHead = NONE;
  private highWater = FIRST_SLOT; // slots below it have been handed out at least once

  // partition -> its slots. Invariant: a slot is in its partition's list iff it is a VALUE or
  // a TOMB; no list is empty.
  private readonly index = new Map<number, PartitionList>();
  private bytes = 0;
  private valueCount = 0;
  private tombCount = 0;
  private evictions = 0;
  // purgeExpired resumes its walk over the slots here
  private sweepSlot = FIRST_SLOT;

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
    this.arenaOptions = opts.arena;
    this.arena = new ValueArena({ ...opts.arena, initialSlots: PAGE_SLOTS });
    this.reset();
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
    const s = this.slots.get(key);
    if (s === undefined) return undefined;
    // the hot path: the slot's record fetched once (see F64_STRIDE)
    const fp = this.fp[s >>> PAGE_SHIFT]!;
    const ip = this.ip[s >>> PAGE_SHIFT]!;
    const fi = (s & PAGE_MASK) * F64_STRIDE;
    const ii = (s & PAGE_MASK) * I32_STRIDE;
    if ((ip[ii + META]! & 3) !== VALUE) return undefined;
    const expiresAt = fp[fi + EXP]!;
    if (expiresAt !== 0) {
      const now = this.clock.now();
      if (expiresAt <= now) {
        this.expire(s, now);
        return undefined;
      }
    }
    if (this.i(LRU, PREV) !== s) {
      this.unlink(s);
      this.linkBack(LRU, s);
    }
    return { value: this.arena.read(s), version: fp[fi + VER]!, expiresAt, partition: ip[ii + PART]! };
  }


  /** The value or tombstone of `key`, without touching recency. Expired values are not returned. */
  peek(key: string): StoredEntry | undefined {
    const s = this.lookup(key, this.clock.now());
    return s === NONE ? undefined : this.entryOf(s);
  }

  /** Whether `key` has a live value (no recency update). */
  has(key: string): boolean {
    const s = this.lookup(key, this.clock.now());
    return s !== NONE && this.kindOf(s) === VALUE;
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
   *
   * The value's bytes are copied into the store (a large one, above the arena's largeValueBytes,
   * is kept as given unless it is a small view into a larger buffer: do not modify a Buffer after
   * applying it).
   */
  apply(key: string, rec: WriteRecord): boolean {
    const now = this.clock.now();
    let s = this.lookup(key, now);
    // A write that is already expired is a delete at its version: stored as a value it would
    // vanish and let older writes back in.
    const value = rec.value !== null && rec.expiresAt !== 0 && rec.expiresAt <= now ? null : rec.value;
    let prev: StoredEntry | undefined;
    if (s !== NONE) {
      const order = this.compareTo(s, rec.version, value);
      if (order < 0) return false;
      if (order === 0 && (value === null || expiryRank(rec.expiresAt) <= expiryRank(this.f(s, EXP)))) return false;
      if (this.hooks !== undefined) prev = this.entryOf(s);
    }
    const partition = s !== NONE ? (this.i(s, PART)) : this.partitionOf(key);
    if (value !== null) {
      const keyBytes = s === NONE ? Buffer.byteLength(key) : this.i(s, META) >>> 2;
      const charge = keyBytes + value.length + ENTRY_OVERHEAD_BYTES;
      if (charge <= this.maxBytes) {
        if (s === NONE) s = this.take(key, partition, keyBytes);
        else if (this.kindOf(s) === VALUE) {
          this.bytes -= this.chargeOf(s);
          this.valueCount--;
          this.unlink(s);
        } else if (this.kindOf(s) === TOMB) {
          this.tombCount--;
          this.unlink(s); // the key stays indexed
        }
        this.arena.write(s, value);
        this.setKind(s, VALUE);
        this.setF(s, VER, rec.version);
        this.setF(s, EXP, rec.expiresAt);
        this.bytes += charge;
        this.valueCount++;
        this.linkBack(LRU, s);
        while (this.bytes > this.maxBytes) this.evictOldest();
        // the caller's Buffer, not a copy: the hook may keep it (persistence queues it)
        this.hooks?.onApply(key, { value, version: rec.version, expiresAt: rec.expiresAt, partition }, prev);
        return true;
      }
    }
    if (s === NONE) s = this.take(key, partition, Buffer.byteLength(key));
    else if (this.kindOf(s) === VALUE) this.removeValue(s);
    this.recordTombstone(s, rec.version, now);
    // maxTombstones 0 drops it at once; the hook still learns of the delete
    this.hooks?.onApply(key, { value: null, version: rec.version, expiresAt: now + this.tombstoneTtlMs, partition }, prev);
    return value === null;
  }

  /**
   * Values and tombstones of one partition, for migration and replication. Iterates a snapshot
   * of the partition's keys and looks each up as it goes, so the store may change meanwhile
   * (entries removed since are skipped, changed ones are yielded as they are now). Expired
   * values are yielded as the tombstones they become. No recency update.
   */
  *partitionEntries(partition: number): IterableIterator<[string, StoredEntry]> {
    const list = this.index.get(partition);
    if (list === undefined) return;
    const keys: string[] = new Array(list.count);
    for (let i = 0, s = list.head; i < list.count; i++, s = this.i(s, PNEXT)) keys[i] = this.keyOf[s] as string;
    for (const key of keys) {
      const s = this.lookup(key, this.clock.now());
      if (s !== NONE && this.i(s, PART) === partition) yield [key, this.entryOf(s)];
    }
  }

  /** Keys (values and tombstones) held for a partition; expired values count until noticed. */
  partitionKeyCount(partition: number): number {
    return this.index.get(partition)?.count ?? 0;
  }

  /** Partitions holding any value or tombstone, ascending. */
  partitions(): number[] {
    return Array.from(this.index.keys()).sort((a, b) => a - b);
  }

  /** Remove every value and tombstone of a partition (it moved away). Returns how many. */
  dropPartition(partition: number): number {
    const list = this.index.get(partition);
    if (list === undefined) return 0;
    const n = list.count;
    // drop() unlinks from this very list: always take its head
    for (let i = 0; i < n; i++) this.drop(list.head);
    this.hooks?.onDropPartition?.(partition);
    return n;
  }

  /**
   * Incremental expiry sweep: forgets tombstones past their time and turns expired values into
   * tombstones, examining at most `limit` entries (default 1000) per call. Call it periodically;
   * it resumes where the previous call stopped. Returns the number of entries removed
   * (forgotten tombstones + expired values).
   *
   * It also compacts the value segments a little (up to `limit` x 256 bytes walked): compaction
   * otherwise rides on writes, and a store that only sees deletes would keep their dead space.
   */
  purgeExpired(limit: number = DEFAULT_PURGE_LIMIT): number {
    const now = this.clock.now();
    let work = 0;
    let removed = 0;
    // tombstones are recorded in order, so the expired ones are at the front
    for (let t = this.i(TOMBS, NEXT); t !== TOMBS && work < limit; t = this.i(TOMBS, NEXT)) {
      if ((this.f(t, EXP)) > now) break;
      work++;
      removed++;
      this.drop(t);
    }
    // then walk the slots, at most one round per call
    const span = this.highWater - FIRST_SLOT;
    for (let seen = 0; work < limit && seen < span; seen++) {
      if (this.sweepSlot >= this.highWater) this.sweepSlot = FIRST_SLOT;
      const s = this.sweepSlot++;
      if (this.kindOf(s) !== VALUE) continue;
      work++;
      const expiresAt = this.f(s, EXP);
      if (expiresAt !== 0 && expiresAt <= now) {
        this.expire(s, now);
        removed++;
      }
    }
    this.arena.maintain(limit * 256);
    return removed;
  }

  /**
   * Change the byte budget (hot reload of cache_bytes). Shrinking evicts least recently used
   * values until the rest fits, reporting each through onEvict. Recency order is kept.
   */
  resize(maxBytes: number): void {
    requireInt('maxBytes', maxBytes, 1);
    if (maxBytes === this.maxBytes) return;
    this.maxBytes = maxBytes;
    if (this.bytes <= maxBytes) return;
    // values that alone exceed the new budget go first, least recently used first; then the
    // least recently used until the rest fits: what is kept is the longest fitting suffix of
    // the recency order
    for (let s = this.i(LRU, NEXT); s !== LRU; ) {
      const after = this.i(s, NEXT);
      if (this.chargeOf(s) > maxBytes) this.evict(s);
      s = after;
    }
    while (this.bytes > maxBytes) this.evictOldest();
  }

  stats(): { bytes: number; entries: number; tombstones: number; maxBytes: number; evictions: number } {
    return {
      bytes: this.bytes,
      entries: this.valueCount,
      tombstones: this.tombCount,
      maxBytes: this.maxBytes,
      evictions: this.evictions,
    };
  }

  /** How the value bytes are laid out (segments, dead bytes, compaction counters). */
  arenaStats(): ValueArenaStats {
    return this.arena.stats();
  }

  /** Drop every value and tombstone. Not reported as evictions. */
  clear(): void {
    this.arena = new ValueArena({ ...this.arenaOptions, initialSlots: PAGE_SLOTS });
    this.reset();
  }

  // ---- slots ----------------------------------------------------------------------------

  /** Empty tables at the initial capacity (the arena is already empty). */
  private reset(): void {
    this.slots.clear();
    this.index.clear();
    this.keyOf = [];
    this.fp = [];
    this.ip = [];
    this.addPage();
    for (const sentinel of [LRU, TOMBS]) {
      this.setI(sentinel, NEXT, sentinel);
      this.setI(sentinel, PREV, sentinel);
    }
    this.freeHead = NONE;
    this.highWater = FIRST_SLOT;
    this.bytes = 0;
    this.valueCount = 0;
    this.tombCount = 0;
    this.sweepSlot = FIRST_SLOT;
  }

  /** A slot for a key entering the store, named in the map and its partition's list. */
  private take(key: string, partition: number, keyBytes: number): number {
    let s = this.freeHead;
    if (s !== NONE) this.freeHead = this.i(s, NEXT);
    else {
      s = this.highWater++;
      if (s >>> PAGE_SHIFT >= this.fp.length) this.addPage();
    }
    this.setI(s, META, keyBytes << 2); // kind FREE until filled
    this.keyOf[s] = key;
    this.setI(s, PART, partition);
    this.slots.set(key, s);
    const list = this.index.get(partition);
    if (list === undefined) {
      this.setI(s, PNEXT, s);
      this.setI(s, PPREV, s);
      this.index.set(partition, { head: s, count: 1 });
    } else {
      // at the back, so a partition lists its keys in the order they arrived
      const first = list.head;
      const last = this.i(first, PPREV);
      this.setI(last, PNEXT, s);
      this.setI(s, PPREV, last);
      this.setI(s, PNEXT, first);
      this.setI(first, PPREV, s);
      list.count++;
    }
    return s;
  }

  /** Forget a slot's key entirely (value or tombstone) and put the slot on the free chain. */
  private drop(s: number): void {
    if (this.kindOf(s) === VALUE) this.removeValue(s);
    else if (this.kindOf(s) === TOMB) {
      this.unlink(s);
      this.tombCount--;
    }
    this.slots.delete(this.keyOf[s] as string);
    this.keyOf[s] = undefined;
    const p = this.i(s, PART);
    const list = this.index.get(p) as PartitionList;
    if (--list.count === 0) this.index.delete(p);
    else {
      const before = this.i(s, PPREV);
      const after = this.i(s, PNEXT);
      this.setI(before, PNEXT, after);
      this.setI(after, PPREV, before);
      if (list.head === s) list.head = after;
    }
    this.setKind(s, FREE);
    this.setI(s, NEXT, this.freeHead);
    this.freeHead = s;
  }

  /** Take the value out of a VALUE slot; the slot stays named (kind FREE until refilled). */
  private removeValue(s: number): void {
    this.bytes -= this.chargeOf(s);
    this.arena.free(s);
    this.unlink(s);
    this.valueCount--;
    this.setKind(s, FREE);
  }

  private addPage(): void {
    const f64 = new Float64Array(PAGE_SLOTS * F64_STRIDE);
    this.fp.push(f64);
    this.ip.push(new Int32Array(f64.buffer));
    this.arena.grow(this.fp.length * PAGE_SLOTS);
  }

  /** Float64 field of slot s. */
  private f(s: number, field: number): number {
    return this.fp[s >>> PAGE_SHIFT]![(s & PAGE_MASK) * F64_STRIDE + field]!;
  }

  private setF(s: number, field: number, value: number): void {
    this.fp[s >>> PAGE_SHIFT]![(s & PAGE_MASK) * F64_STRIDE + field] = value;
  }

  /** Int32 field of slot s. */
  private i(s: number, field: number): number {
    return this.ip[s >>> PAGE_SHIFT]![(s & PAGE_MASK) * I32_STRIDE + field]!;
  }

  private setI(s: number, field: number, value: number): void {
    this.ip[s >>> PAGE_SHIFT]![(s & PAGE_MASK) * I32_STRIDE + field] = value;
  }

  private kindOf(s: number): number {
    return this.i(s, META) & 3;
  }

  private setKind(s: number, kind: number): void {
    const page = this.ip[s >>> PAGE_SHIFT]!;
    const i = (s & PAGE_MASK) * I32_STRIDE + META;
    page[i] = (page[i]! & ~3) | kind;
  }

  /** Bytes a VALUE slot is charged (entrySize of its key and value). */
  private chargeOf(s: number): number {
    return (this.i(s, META) >>> 2) + this.arena.length(s) + ENTRY_OVERHEAD_BYTES;
  }

  private linkBack(list: number, s: number): void {
    const last = this.i(list, PREV);
    this.setI(last, NEXT, s);
    this.setI(s, PREV, last);
    this.setI(s, NEXT, list);
    this.setI(list, PREV, s);
  }

  private unlink(s: number): void {
    const before = this.i(s, PREV);
    const after = this.i(s, NEXT);
    this.setI(before, NEXT, after);
    this.setI(after, PREV, before);
  }

  // ---- entries ----------------------------------------------------------------------------

  /** The StoredEntry a slot holds now (a copy of the bytes). */
  private entryOf(s: number): StoredEntry {
    return {
      value: this.kindOf(s) === VALUE ? this.arena.read(s) : null,
      version: this.f(s, VER),
      expiresAt: this.f(s, EXP),
      partition: this.i(s, PART),
    };
  }

  /** compareWrites({version, value}, what slot s holds), without copying the held bytes. */
  private compareTo(s: number, version: Version, value: Buffer | null): number {
    const held = this.f(s, VER);
    if (version !== held) return version - held;
    const heldNull = this.kindOf(s) !== VALUE;
    if (value === null || heldNull) {
      if (value === null && heldNull) return 0;
      return value === null ? -1 : 1;
    }
    const c = this.arena.compare(s, value); // held vs value
    return c === 0 ? 0 : -c;
  }

  /** Current slot of a key; an expired value becomes a tombstone, a stale tombstone goes. */
  private lookup(key: string, now: number): number {
    const s = this.slots.get(key);
    if (s === undefined) return NONE;
    const expiresAt = this.f(s, EXP);
    if (this.kindOf(s) === VALUE) {
      if (expiresAt === 0 || expiresAt > now) return s;
      return this.expire(s, now);
    }
    if (expiresAt > now) return s;
    this.drop(s);
    return NONE;
  }

  /** Replace an expired value by a tombstone at its version (see the class comment). */
  private expire(s: number, now: number): number {
    this.removeValue(s);
    return this.recordTombstone(s, this.f(s, VER), now);
  }

  /**
   * Make slot `s` (holding no value) a tombstone at `version`. Returns it, or NONE when the
   * count bound dropped it at once (maxTombstones 0).
   */
  private recordTombstone(s: number, version: Version, now: number): number {
    if (this.kindOf(s) === TOMB) {
      // renewed: moves to the back of the age order
      this.unlink(s);
      this.tombCount--;
    }
    this.setKind(s, TOMB);
    this.setF(s, VER, version);
    this.setF(s, EXP, now + this.tombstoneTtlMs);
    this.linkBack(TOMBS, s);
    this.tombCount++;
    while (this.tombCount > this.maxTombstones) this.drop(this.i(TOMBS, NEXT));
    return this.kindOf(s) === TOMB ? s : NONE;
  }

  private evictOldest(): void {
    this.evict(this.i(LRU, NEXT));
  }

  private evict(s: number): void {
    const key = this.keyOf[s] as string;
    const entry = this.onEvict !== undefined ? this.entryOf(s) : undefined;
    this.drop(s);
    this.evictions++;
    if (entry !== undefined) this.onEvict?.(key, entry);
  }
}
