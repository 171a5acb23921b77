import { randomBytes } from 'node:crypto';
import type { Clock, Version } from '../core/types.ts';
import { EntryArena } from './arena.ts';
import type { EntryArenaOptions, EntryArenaStats } from './arena.ts';
import { hashBytes, hashLatin1, KeyIndex } from './key-index.ts';
import type { KeyIndexStats } from './key-index.ts';
import {
  EXP,
  F64_STRIDE,
  FREE,
  I32_STRIDE,
  KIND_MASK,
  MAX_SLOTS,
  META,
  PAGE_MASK,
  PAGE_SHIFT,
  PART_SHIFT,
  PNEXT,
  PPREV,
  SlotTable,
  TICK,
  TOMB,
  TYPE_SHIFT,
  UTF8_KEY,
  VALUE,
  VER,
} from './slots.ts';

/**
 * Bytes charged per key held (a value or a tombstone) on top of its key and value bytes: what an
 * entry costs this process besides its bytes. Its slot record (40, see slots.ts), its share of
 * the key index (4 bytes a bucket at a load between 3/8 and 3/4, and both tables during a
 * resize: ~8), its record header in the arena (2) and the slack of segments and pages. Measured
 * by bench/scenarios/memory.ts (RSS growth of a whole node per entry, 14-byte keys, runs J and K
 * in BENCHMARKS.md): 170-171 bytes for 1M 100-byte values, i.e. 56-57 besides the key and value;
 * 80 for 10M 16-byte values, 50 besides them. It keeps a budget honest for many tiny values,
 * where the payload alone would undercount. Segment garbage not yet compacted (at most
 * EntryArena's maxDeadShare, 25% by default) is not charged.
 */
export const ENTRY_OVERHEAD_BYTES = 64;

/** Default bound on remembered tombstones; the oldest is dropped first. */
export const DEFAULT_MAX_TOMBSTONES = 100_000;

/** Default time a tombstone is remembered: longer than any replication or migration lag. */
export const DEFAULT_TOMBSTONE_TTL_MS = 10 * 60_000;

/** Default number of entries one {@link GroupStore.purgeExpired} call examines. */
export const DEFAULT_PURGE_LIMIT = 1000;

/**
 * Default share of the byte budget past which tombstones, rather than values, make room (see
 * {@link GroupStoreOptions.tombstoneShare}).
 */
export const DEFAULT_TOMBSTONE_SHARE = 0.25;

/**
 * peekHead()'s `value` for a live value: a shared empty Buffer standing for bytes not read. Never
 * store or send it; it only says "a value is held" (compare with `===`).
 */
export const UNREAD: Buffer = Buffer.alloc(0);

/** Entry types (a u8 in the slot record). The bytes of a hash are an encoding made elsewhere. */
export const TYPE_STRING = 0;
export const TYPE_HASH = 1;
/** 0..255; see TYPE_STRING, TYPE_HASH. */
export type EntryType = number;

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
  /** What the bytes are (TYPE_STRING, TYPE_HASH); 0 for a tombstone. */
  type: EntryType;
}

/**
 * Where a read copies a value to without a Buffer of its own (GroupStore.getInto): the Redis
 * reply batch, which writes it straight after the reply's header.
 */
export interface ValueSink {
  /** A value of `length` bytes: `source.copyValueTo(target, at)` writes them, once, synchronously. */
  fromSource(length: number, source: ValueSource): void;
  /** A value that already is a Buffer (a mirror's copy). */
  fromBuffer(value: Buffer): void;
}

/** A value's bytes, for a ValueSink to copy where it wants them. Valid only during the sink's call. */
export interface ValueSource {
  copyValueTo(target: Uint8Array, at: number): void;
}

/** What getInto() found, written into the caller's object (no allocation per read). */
export interface HitHead {
  type: EntryType;
  partition: number;
  /** The value's length in bytes. */
  length: number;
}

/** One write as it travels between nodes (client write, replication, migration). */
export interface WriteRecord {
  /** The bytes, or null for a delete. */
  value: Buffer | null;
  version: Version;
  /**
   * Absolute expiry in ms since the epoch, 0 = never. Ignored for a delete. Kept as given,
   * fractions included: a positive expiresAt is never rounded to 0.
   */
  expiresAt: number;
  /** What the bytes are: an integer 0..255. Default TYPE_STRING (0). */
  type?: EntryType;
}

/** One page of a cursor walk (see {@link GroupStore.scan}). */
export interface ScanPage {
  /** Where the next call resumes; 0 when the walk is complete. */
  cursor: number;
  keys: string[];
}

export interface GroupStoreOptions {
  /** Group name, for stats and logs. Required, non-empty. */
  name: string;
  /**
   * Byte budget of values and tombstones together: key bytes + value bytes +
   * {@link ENTRY_OVERHEAD_BYTES} per value, key bytes + ENTRY_OVERHEAD_BYTES per tombstone.
   * Required, a positive integer.
   */
  maxBytes: number;
  /** Source of "now" for expiry. Required (pass systemClock in production). */
  clock: Clock;
  /**
   * Partition of a key: an integer 0..65535. Called once when a key enters the store. Required.
   */
  partitionOf: (key: string) => number;
  /** Most tombstones remembered; the oldest is dropped first. Default 100_000; 0 disables them. */
  maxTombstones?: number;
  /**
   * How long a tombstone is remembered, in ms. Tombstones stop a delete from being undone by a
   * late replica or migration carrying an older version. Default 10 minutes.
   */
  tombstoneTtlMs?: number;
  /**
   * Tombstones count against maxBytes. When the budget is exceeded and tombstones hold more than
   * this share of it, the oldest tombstone is dropped; otherwise a value is evicted. So deletes
   * alone can displace at most this share of the values, while tombstones may use any room the
   * values leave free. In (0, 1]. Default 0.25.
   */
  tombstoneShare?: number;
  /**
   * Called when an entry is dropped to keep a bound: a value evicted to stay within maxBytes
   * (also on resize), or a tombstone dropped before its time by the byte budget or by
   * maxTombstones (`entry.value` null). Not on overwrite, delete, expiry, flush or forgetting a
   * tombstone after tombstoneTtlMs. Runs synchronously inside the store operation that caused it:
   * it must not call back into this store. Default: none.
   */
  onEvict?: (key: string, entry: StoredEntry) => void;
  /**
   * Write hooks (persistence): see {@link StoreWriteHooks}. Can also be set after construction
   * with {@link GroupStore.setWriteHooks}. Default: none, and then they cost one check per write.
   */
  writeHooks?: StoreWriteHooks;
  /** Layout of the key and value segments (see EntryArena). Default: the arena's defaults. */
  arena?: EntryArenaOptions;
  /** Seed of the key index's hash. Default: random per store (keys chosen to collide for one store do not collide for another). */
  hashSeed?: number;
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
  /**
   * After flush() dropped everything: `floor` is the flush floor now (see
   * {@link GroupStore.flushFloor}), to be stored and given back to flush() on a restart.
   */
  onFlush?(floor: Version): void;
}

const NONE = -1;
// slots 0 and 1 are never handed out: KeyIndex uses bucket values 0 and 1 as marks
const FIRST_SLOT = 2;
// eviction: each eviction looks at the next SAMPLE_SLOTS slots from a rotating hand and keeps
// the POOL oldest values it has seen (see the class comment)
const SAMPLE_SLOTS = 32;
const POOL = 16;
// the use counter is 32 bits: an age past this is clamped so it cannot wrap round to "young"
const MAX_AGE = 0x7fffffff;
// the seed of scanPartition's order: the same on every node, so a cursor survives a move
const SCAN_SEED = 0x5ca1ab1e;

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
 * The entries of one group on one node: a byte-bounded cache of values plus a bounded set of
 * tombstones, merged by the last-writer-wins rule so every replica converges whatever order
 * writes arrive in.
 *
 * Keys are byte strings: JS strings whose every char code is 0..255, one char per byte (the front
 * ends convert; RESP keys are binary). They are stored as latin1, and the *Bytes methods look
 * keys up straight from a byte range without making a string. A string with a char above 255 is
 * not a byte string; until every caller converts, such a key is stored by its UTF-8 bytes and
 * handed back as it was given (so its bytes, not its chars, are its identity).
 *
 * Expiry is ours: it reads the injected clock (fake clocks work) and expiresAt is absolute, so
 * it replicates unchanged. An expired value is removed lazily (on access or by purgeExpired)
 * and turned into a tombstone at its version, so an older write arriving late (e.g. one without
 * a TTL) cannot bring the key back; a write that arrives already expired counts as a delete at
 * its version for the same reason. flush() raises a floor under which no write applies.
 *
 * Every key held (value or tombstone) is listed in a per-partition index, so migration and
 * replication can enumerate a partition without scanning the whole group.
 *
 * Eviction approximates LRU the way Redis does, by sampling: every read or write stamps the value
 * with a use counter; each eviction looks at the next SAMPLE_SLOTS (32) slots from a hand that
 * goes round the slot table, keeps the POOL (16) oldest values it has seen so far in a pool
 * carried from one eviction to the next, and evicts the oldest one in the pool that is still as
 * it was seen. So the value evicted is the least recently used of a sample that grows with every
 * eviction; while the table has at most 32 slots the sample is the whole store and eviction is
 * exact LRU. Tombstones are kept in the order they were made (a ring of slot numbers) and the
 * oldest goes first.
 *
 * Memory layout (a million small values is the case to optimise: bookkeeping dwarfs the bytes
 * otherwise). No per-entry JS object or string: a key's version, expiry, kind, type, partition,
 * use stamp, partition links and the location of its bytes are a 40-byte slot record in
 * typed-array pages (SlotTable), its key and value bytes a record in an {@link EntryArena}
 * segment, and the key -> slot map an open-addressing {@link KeyIndex} of 4 bytes a bucket.
 * get() and peek() build a StoredEntry with a copy of the bytes on the way out.
 *
 * The index hashes keys with FNV-1a under a random seed per store (hashSeed): keys computed to
 * collide in one store do not collide in another. It is not a keyed PRF such as SipHash, so it
 * does not claim to resist an attacker who can learn a store's seed through timing.
 */
export class GroupStore {
  readonly name: string;

  private readonly clock: Clock;
  private readonly partitionOf: (key: string) => number;
  private readonly maxTombstones: number;
  private readonly tombstoneTtlMs: number;
  private readonly tombstoneShare: number;
  private readonly onEvict: ((key: string, entry: StoredEntry) => void) | undefined;
  private hooks: StoreWriteHooks | undefined;
  private readonly arenaOptions: EntryArenaOptions | undefined;
  private readonly seed: number;

  private maxBytes: number;
  private tombShareBytes = 0;
  private slots!: SlotTable;
  private arena!: EntryArena;
  private index!: KeyIndex;
  private freeHead = NONE; // free slots chained through TICK
  private highWater = FIRST_SLOT; // slots below it have been handed out at least once

  // partition -> its slots. Invariant: a slot is in its partition's list iff it is a VALUE or
  // a TOMB; no list is empty.
  private readonly parts = new Map<number, PartitionList>();
  private bytes = 0; // charged to values
  private tombBytes = 0; // charged to tombstones
  private valueCount = 0;
  private tombCount = 0;
  private evictions = 0;
  // versions at or under it are refused (flush); -Infinity: never flushed
  private floor = -Infinity;

  // eviction: use counter, hand, and the pool of candidates (slot, its TICK when seen)
  private tick = 0;
  private hand = FIRST_SLOT;
  private readonly poolSlot = new Int32Array(POOL);
  private readonly poolTick = new Int32Array(POOL);
  private poolSize = 0;
  private poolYoungest = 0; // index in the pool of the most recently used candidate

  // tombstones in the order they were made: slot and the EXP it had then (a ring; an entry
  // whose slot no longer holds that tombstone is skipped). Every tombstone has an entry.
  private ring = new Int32Array(64);
  private ringExp = new Float64Array(64);
  private ringHead = 0;
  private ringLen = 0;

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
    const share = opts.tombstoneShare ?? DEFAULT_TOMBSTONE_SHARE;
    if (!(share > 0 && share <= 1)) throw new RangeError(`GroupStore tombstoneShare must be in (0, 1]. Got: ${share}`);
    this.name = opts.name;
    this.clock = opts.clock;
    this.partitionOf = opts.partitionOf;
    this.maxTombstones = maxTombstones;
    this.tombstoneTtlMs = tombstoneTtlMs;
    this.tombstoneShare = share;
    this.onEvict = opts.onEvict;
    this.hooks = opts.writeHooks;
    this.maxBytes = opts.maxBytes;
    this.tombShareBytes = Math.floor(opts.maxBytes * share);
    this.arenaOptions = opts.arena;
    this.seed = opts.hashSeed ?? randomBytes(4).readInt32LE(0);
    this.reset();
  }

  /**
   * Attach (or with undefined, detach) the write hooks. The node builds its groups first and
   * attaches persistence afterwards, so this is a setter rather than only an option.
   */
  setWriteHooks(hooks: StoreWriteHooks | undefined): void {
    this.hooks = hooks;
  }

  // ---- reads ---------------------------------------------------------------------------------

  /**
   * The live value of `key`: not a tombstone, not expired. Marks it used (eviction).
   * An expired value found here is removed (and becomes a tombstone).
   */
  get(key: string): StoredEntry | undefined {
    const s = this.findKey(key);
    return s === NONE ? undefined : this.hit(s);
  }

  /**
   * get() without a copy: when `key` has a live value, fills `head` and returns true; a string
   * value's bytes go straight into `sink` (a value of another type is not written: the caller
   * answers WRONGTYPE). Marks the key used, as get() does. With `may`, the key's partition (as
   * recorded when it entered the store) is first handed to it, and false from it is a miss that
   * changes nothing: the caller decides whether this copy may answer without hashing the key
   * for its partition itself. The GET hit's hot path: get() copied the value out of the arena
   * and the reply batch copied it again (bench/profile.ts --kind heap: hit() and its copy were
   * 308 of a GET's 722 bytes).
   */
  getInto(key: string, sink: ValueSink, head: HitHead, may?: (partition: number) => boolean): boolean {
    const s = this.findKey(key);
    if (s === NONE) return false;
    const meta = this.slots.i(s, META);
    // asked before the key is marked used: a read refused here leaves the store as it was
    if (may !== undefined && !may(meta >>> PART_SHIFT)) return false;
    if (!this.touchLive(s)) return false;
    head.type = (meta >>> TYPE_SHIFT) & 0xff;
    head.partition = meta >>> PART_SHIFT;
    head.length = this.arena.valueLength(s);
    if (head.type === TYPE_STRING) {
      const src = this.source;
      src.arena = this.arena;
      src.slot = s;
      sink.fromSource(head.length, src);
    }
    return true;
  }

  /** getInto()'s view of a slot's value, reused for every read (the arena is set at each: a reset replaces it). */
  private readonly source = new SlotSource();

  /** get() of the key whose bytes are buf[start, end), without making a string of it. */
  getBytes(buf: Uint8Array, start = 0, end = buf.length): StoredEntry | undefined {
    const s = this.findBytes(buf, start, end);
    return s === NONE ? undefined : this.hit(s);
  }

  /** The value or tombstone of `key`, without marking it used. Expired values are not returned. */
  peek(key: string): StoredEntry | undefined {
    const s = this.settled(this.findKey(key));
    return s === NONE ? undefined : this.entryOf(s);
  }

  /**
   * peek() without copying the value out: a live value's `value` is UNREAD, a tombstone's null.
   * For a caller that needs the version, expiry, type and whether a value is held (a plain SET
   * or DEL is decided on that alone), not the bytes. With `into`, that object is filled and
   * returned instead of a new one (the SET's hot path: the head was 96 of its 658 bytes).
   */
  peekHead(key: string, into?: StoredEntry): StoredEntry | undefined {
    const s = this.remembered(key);
    return s === NONE ? undefined : this.entryOf(s, false, into);
  }

  /**
   * The partition the store recorded for `key` when it entered (value or tombstone), or -1 when
   * it holds nothing for it, not marking it used. The slot is remembered as peekHead()'s is, so
   * the peekHead() and apply() of the write that usually follows find it without a probe: a
   * router placing a write of a held key needs no hash of it (Router.writeLocal: the CRC16 was
   * 8% of a SET at pipeline 16, bench/profile.ts).
   */
  partitionHeld(key: string): number {
    const s = this.remembered(key);
    return s === NONE ? -1 : this.partOf(s);
  }

  /** The settled slot of `key` (NONE: nothing held), found through memoKey or looked up, and remembered there. */
  private remembered(key: string): number {
    const s = this.settled(this.memoKey === key ? this.memoSlot : this.findKey(key));
    if (s !== NONE) {
      this.memoKey = key;
      this.memoSlot = s;
    }
    return s;
  }

  /**
   * The slot peekHead() or partitionHeld() found for memoKey, for the peekHead() and apply() of
   * the same key that usually follow (LocalData.write decides a write on the head, then applies
   * it): one hash and probe of the key per SET, not two or three. Forgotten by apply(), and
   * whenever a slot is dropped or the store reset.
   */
  private memoKey: string | null = null;
  private memoSlot = NONE;

  /** peek() of the key whose bytes are buf[start, end). */
  peekBytes(buf: Uint8Array, start = 0, end = buf.length): StoredEntry | undefined {
    const s = this.settled(this.findBytes(buf, start, end));
    return s === NONE ? undefined : this.entryOf(s);
  }

  /** Whether `key` has a live value (not marked used). */
  has(key: string): boolean {
    const s = this.settled(this.findKey(key));
    return s !== NONE && this.kindOf(s) === VALUE;
  }

  /** has() of the key whose bytes are buf[start, end). */
  hasBytes(buf: Uint8Array, start = 0, end = buf.length): boolean {
    const s = this.settled(this.findBytes(buf, start, end));
    return s !== NONE && this.kindOf(s) === VALUE;
  }

  // ---- writes --------------------------------------------------------------------------------

  /**
   * Merge one write by last-writer-wins ({@link compareWrites}) against the current value or
   * tombstone; returns true if the write won and is now held. A winning delete removes the value
   * and records a tombstone. Exact ties (same version and bytes) keep the later expiry, so the
   * result does not depend on arrival order. A write at or under the flush floor is refused.
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
    if (rec.version <= this.floor) return false;
    const type = rec.type ?? TYPE_STRING;
    if (type !== TYPE_STRING && !(Number.isInteger(type) && type >= 0 && type <= 0xff)) {
      throw new RangeError(`GroupStore write type must be an integer in [0, 255]. Got: ${type}`);
    }
    const now = this.clock.now();
    // the slot peekHead() just found for this key (a coordinated write: decided, then applied)
    const memo = this.memoKey === key;
    let s = NONE;
    if (memo) {
      s = this.settled(this.memoSlot, now);
      this.memoKey = null;
    }
    let h = 0;
    let kb: Buffer | null = null;
    if (s === NONE) {
      // a key to look up, or a new one (the memo's tombstone expired meanwhile): its hash places it
      h = hashLatin1(this.seed, key);
      if (h === 0) {
        kb = Buffer.from(key, 'utf8');
        h = hashBytes(this.seed, kb, 0, kb.length);
      }
      if (!memo) s = this.settled(kb === null ? this.probeLatin1(h, key) : this.probeBytes(h, kb, 0, kb.length), now);
    }
    // A write that is already expired is a delete at its version: stored as a value it would
    // vanish and let older writes back in.
    const value = rec.value !== null && rec.expiresAt !== 0 && rec.expiresAt <= now ? null : rec.value;
    let prev: StoredEntry | undefined;
    if (s !== NONE) {
      const order = this.compareTo(s, rec.version, value);
      if (order < 0) return false;
      if (order === 0 && (value === null || expiryRank(rec.expiresAt) <= expiryRank(this.slots.f(s, EXP)))) return false;
      if (this.hooks !== undefined) prev = this.entryOf(s);
    }
    const partition = s !== NONE ? this.partOf(s) : this.partitionFor(key);
    if (value !== null) {
      const keyBytes = s !== NONE ? this.arena.keyLength(s) : kb === null ? key.length : kb.length;
      const charge = keyBytes + value.length + ENTRY_OVERHEAD_BYTES;
      if (charge <= this.maxBytes) {
        if (s === NONE) s = this.take(h, key, kb, partition, value);
        else {
          const kind = this.kindOf(s);
          if (kind === VALUE) {
            this.bytes -= keyBytes + this.arena.valueLength(s) + ENTRY_OVERHEAD_BYTES;
            this.valueCount--;
          } else if (kind === TOMB) {
            this.tombBytes -= keyBytes + ENTRY_OVERHEAD_BYTES;
            this.tombCount--;
          }
          this.arena.setValue(s, value);
        }
        this.setMeta(s, VALUE, type);
        this.slots.setF(s, VER, rec.version);
        this.slots.setF(s, EXP, rec.expiresAt);
        this.slots.setI(s, TICK, (this.tick = (this.tick + 1) | 0));
        this.bytes += charge;
        this.valueCount++;
        this.makeRoom(s);
        // the caller's Buffer, not a copy: the hook may keep it (persistence queues it)
        this.hooks?.onApply(key, { value, version: rec.version, expiresAt: rec.expiresAt, partition, type }, prev);
        return true;
      }
    }
    if (s === NONE) s = this.take(h, key, kb, partition, null);
    this.recordTombstone(s, rec.version, now);
    // maxTombstones 0 drops it at once; the hook still learns of the delete
    this.hooks?.onApply(key, { value: null, version: rec.version, expiresAt: now + this.tombstoneTtlMs, partition, type: TYPE_STRING }, prev);
    return value === null;
  }

  /**
   * FLUSHALL / FLUSHDB: drop every value and tombstone, and refuse from now on any write at or
   * under `version` (the flush's own version), so a late replica or migration batch cannot bring
   * flushed data back. The floor only rises. Calls the onFlush hook with it. Not reported as
   * evictions. A restarted node passes the persisted floor to flush() to restore it. Returns the
   * number of keys dropped.
   */
  flush(version: Version): number {
    if (typeof version !== 'number' || Number.isNaN(version)) throw new RangeError(`GroupStore flush version must be a number. Got: ${version}`);
    const n = this.valueCount + this.tombCount;
    if (version > this.floor) this.floor = version;
    this.reset();
    this.hooks?.onFlush?.(this.floor);
    return n;
  }

  /** Versions at or under it are refused by apply() (see flush()); undefined until a flush. */
  get flushFloor(): Version | undefined {
    return this.floor === -Infinity ? undefined : this.floor;
  }

  // ---- partitions and cursors ----------------------------------------------------------------

  /**
   * Values and tombstones of one partition, for migration and replication. Iterates a snapshot
   * of the partition's keys and looks each up as it goes, so the store may change meanwhile
   * (entries removed since are skipped, changed ones are yielded as they are now). Expired
   * values are yielded as the tombstones they become. No recency update.
   */
  *partitionEntries(partition: number): IterableIterator<[string, StoredEntry]> {
    const list = this.parts.get(partition);
    if (list === undefined) return;
    const keys: string[] = new Array(list.count);
    const at = new Int32Array(list.count);
    for (let i = 0, s = list.head; i < list.count; i++, s = this.slots.i(s, PNEXT)) {
      keys[i] = this.keyOf(s);
      at[i] = s;
    }
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      // most often the key is still in the slot it was seen in: no need to look it up
      const seen = at[i]!;
      const still = this.kindOf(seen) !== FREE && this.arena.keyEqualsLatin1(seen, key);
      const s = this.settled(still ? seen : this.findKey(key));
      if (s !== NONE && this.partOf(s) === partition) yield [key, this.entryOf(s)];
    }
  }

  /** Keys (values and tombstones) held for a partition; expired values count until noticed. */
  partitionKeyCount(partition: number): number {
    return this.parts.get(partition)?.count ?? 0;
  }

  /** Live values (not tombstones, not expired) of a partition, counted without copying them. */
  liveCount(partition: number): number {
    const list = this.parts.get(partition);
    if (list === undefined) return 0;
    const now = this.clock.now();
    let n = 0;
    for (let i = 0, s = list.head; i < list.count; i++, s = this.slots.i(s, PNEXT)) if (this.isLive(s, now)) n++;
    return n;
  }

  /**
   * Live values of a partition, how many of them expire, and the sum of their time left (INFO
   * keyspace's keys, expires and avg_ttl), counted in place.
   */
  liveStats(partition: number): { live: number; expiring: number; ttlSumMs: number } {
    const out = { live: 0, expiring: 0, ttlSumMs: 0 };
    const list = this.parts.get(partition);
    if (list === undefined) return out;
    const now = this.clock.now();
    for (let i = 0, s = list.head; i < list.count; i++, s = this.slots.i(s, PNEXT)) {
      if (!this.isLive(s, now)) continue;
      out.live++;
      const exp = this.slots.f(s, EXP);
      if (exp > 0) {
        out.expiring++;
        out.ttlSumMs += exp - now;
      }
    }
    return out;
  }

  /** Partitions holding any value or tombstone, ascending. */
  partitions(): number[] {
    return Array.from(this.parts.keys()).sort((a, b) => a - b);
  }

  /** Remove every value and tombstone of a partition (it moved away). Returns how many. */
  dropPartition(partition: number): number {
    const list = this.parts.get(partition);
    if (list === undefined) return 0;
    const n = list.count;
    // drop() unlinks from this very list: always take its head
    for (let i = 0; i < n; i++) this.drop(list.head);
    this.hooks?.onDropPartition?.(partition);
    return n;
  }

  /**
   * A page of the whole store's live keys (SCAN): start with cursor 0, pass back the cursor each
   * page returns, stop when it returns 0. Every key that holds a live value for the whole walk is
   * returned at least once, however the store grows, shrinks or resizes its index meanwhile: the
   * cursor is a slot number, and a key keeps its slot for as long as it is held. A key written
   * during the walk may or may not be returned. A page holds at most `count` keys and may hold
   * fewer, even none, before the walk is complete (it looks at no more than 8 x count + 64
   * slots). `type`: only keys of that type.
   */
  scan(cursor: number, count: number, type?: EntryType): ScanPage {
    requireInt('scan cursor', cursor, 0);
    requireInt('scan count', count, 1);
    const now = this.clock.now();
    const keys: string[] = [];
    let s = cursor < FIRST_SLOT ? FIRST_SLOT : cursor;
    for (let budget = count * 8 + 64; s < this.highWater && keys.length < count && budget > 0; s++, budget--) {
      if (this.isLive(s, now) && (type === undefined || this.typeOf(s) === type)) keys.push(this.keyOf(s));
    }
    return { cursor: s >= this.highWater ? 0 : s, keys };
  }

  /**
   * A page of one partition's live keys, in the order of a fixed hash of their bytes (the same on
   * every node, so a cursor taken on one node stays meaningful on the node a partition moves
   * to). Start with cursor 0; the cursor returned is the next hash to return (0: complete). Every
   * key that holds a live value for the whole walk is returned at least once; keys whose hashes
   * tie are returned on one page, so a page may exceed `count`. Costs a walk of the partition per
   * page (a partition holds a 1/partitionCount share of the keys). `type`: only keys of that type.
   */
  scanPartition(partition: number, cursor: number, count: number, type?: EntryType): ScanPage {
    requireInt('scanPartition cursor', cursor, 0);
    requireInt('scanPartition count', count, 1);
    const list = this.parts.get(partition);
    if (list === undefined) return { cursor: 0, keys: [] };
    const now = this.clock.now();
    const hs: number[] = [];
    const ss: number[] = [];
    for (let i = 0, s = list.head; i < list.count; i++, s = this.slots.i(s, PNEXT)) {
      if (!this.isLive(s, now) || (type !== undefined && this.typeOf(s) !== type)) continue;
      const h = this.arena.hashKey(s, SCAN_SEED) >>> 0;
      if (h >= cursor) {
        hs.push(h);
        ss.push(s);
      }
    }
    const order = Array.from(hs.keys()).sort((a, b) => hs[a]! - hs[b]!);
    let n = Math.min(count, order.length);
    while (n < order.length && hs[order[n]!] === hs[order[n - 1]!]) n++;
    const keys = order.slice(0, n).map((i) => this.keyOf(ss[i]!));
    return { cursor: n === order.length ? 0 : hs[order[n - 1]!]! + 1, keys };
  }

  // ---- maintenance ---------------------------------------------------------------------------

  /**
   * Incremental expiry sweep: forgets tombstones past their time and turns expired values into
   * tombstones, examining at most `limit` entries (default 1000) per call. Call it periodically;
   * it resumes where the previous call stopped. Returns the number of entries removed
   * (forgotten tombstones + expired values).
   *
   * It also moves an index resize along and compacts the segments a little (up to `limit` x 256
   * bytes walked): both otherwise ride on operations, and a store that only sees deletes would
   * keep their dead space.
   */
  purgeExpired(limit: number = DEFAULT_PURGE_LIMIT): number {
    const now = this.clock.now();
    let work = 0;
    let removed = 0;
    // tombstones are recorded in order, so the expired ones are at the front
    for (let t = this.ringFront(); t !== NONE && work < limit; t = this.ringFront()) {
      if (this.slots.f(t, EXP) > now) break;
      work++;
      removed++;
      this.ringPop();
      this.drop(t);
    }
    // then walk the slots, at most one round per call
    const span = this.highWater - FIRST_SLOT;
    for (let seen = 0; work < limit && seen < span; seen++) {
      if (this.sweepSlot >= this.highWater) this.sweepSlot = FIRST_SLOT;
      const s = this.sweepSlot++;
      const kind = this.kindOf(s);
      if (kind === FREE) continue;
      work++;
      const expiresAt = this.slots.f(s, EXP);
      if (kind === TOMB) {
        if (expiresAt <= now) {
          this.drop(s);
          removed++;
        }
        continue;
      }
      this.ageOf(s); // clamps an ancient use stamp
      if (expiresAt !== 0 && expiresAt <= now) {
        this.expire(s, now);
        removed++;
      }
    }
    this.index.step(limit);
    this.arena.maintain(limit * 256);
    return removed;
  }

  /**
   * Change the byte budget (hot reload of cache_bytes). Shrinking evicts values that alone exceed
   * the new budget first, least recently used first, then the least recently used (sampled, see
   * the class comment) until the rest fits, reporting each through onEvict.
   */
  resize(maxBytes: number): void {
    requireInt('maxBytes', maxBytes, 1);
    if (maxBytes === this.maxBytes) return;
    this.maxBytes = maxBytes;
    this.tombShareBytes = Math.floor(maxBytes * this.tombstoneShare);
    if (this.bytes + this.tombBytes <= maxBytes) return;
    const big: number[] = [];
    for (let s = FIRST_SLOT; s < this.highWater; s++) if (this.kindOf(s) === VALUE && this.chargeOf(s) > maxBytes) big.push(s);
    const ages = big.map((s) => this.ageOf(s));
    for (const i of Array.from(big.keys()).sort((a, b) => ages[b]! - ages[a]!)) this.evict(big[i]!);
    this.makeRoom(NONE);
  }

  /**
   * Whether apply() may keep the value's Buffer itself rather than a copy of its bytes: a large
   * entry (EntryArena), or any value when write hooks are set (persistence queues it). A caller
   * whose Buffer is reused afterwards copies it first when this says so.
   */
  keepsGiven(keyBytes: number, valueBytes: number): boolean {
    return this.hooks !== undefined || this.arena.keepsGiven(keyBytes, valueBytes);
  }

  /** Whether a value of `valueBytes` under a key of `keyBytes` fits the budget at all (a larger one is never stored). */
  fits(keyBytes: number, valueBytes: number): boolean {
    return keyBytes + valueBytes + ENTRY_OVERHEAD_BYTES <= this.maxBytes;
  }

  stats(): { bytes: number; entries: number; tombstones: number; tombstoneBytes: number; maxBytes: number; evictions: number } {
    return {
      bytes: this.bytes,
      entries: this.valueCount,
      tombstones: this.tombCount,
      tombstoneBytes: this.tombBytes,
      maxBytes: this.maxBytes,
      evictions: this.evictions,
    };
  }

  /** How the key and value bytes are laid out (segments, dead bytes, compaction counters). */
  arenaStats(): EntryArenaStats {
    return this.arena.stats();
  }

  /**
   * The store is about to hold `keys` keys (values and tombstones) in all: a migration's
   * receiver, told by its sources what they will send. The key index is sized for them now
   * instead of resizing while they arrive (KeyIndex.reserve). A hint: nothing is refused or
   * held back if fewer or more come; and never more keys than the byte budget can hold (each
   * is charged at least ENTRY_OVERHEAD_BYTES), whatever a peer says.
   */
  reserve(keys: number): void {
    this.index.reserve(Math.min(keys, Math.floor(this.maxBytes / ENTRY_OVERHEAD_BYTES)));
  }

  /** Keys held, values and tombstones (what reserve() counts). */
  get keyCount(): number {
    return this.index.size;
  }

  /** The key index: buckets, deleted marks, whether a resize is under way. */
  indexStats(): KeyIndexStats {
    return this.index.stats();
  }

  /** Drop every value and tombstone. Not reported as evictions; the flush floor stays. */
  clear(): void {
    this.reset();
  }

  // ---- lookups -------------------------------------------------------------------------------

  private findKey(key: string): number {
    const h = hashLatin1(this.seed, key);
    if (h !== 0) return this.probeLatin1(h, key);
    const kb = Buffer.from(key, 'utf8');
    return this.probeBytes(hashBytes(this.seed, kb, 0, kb.length), kb, 0, kb.length);
  }

  private findBytes(buf: Uint8Array, start: number, end: number): number {
    if (!(start >= 0 && end >= start && end <= buf.length)) {
      throw new RangeError(`GroupStore key range [${start}, ${end}) is not within a buffer of ${buf.length} bytes`);
    }
    return this.probeBytes(hashBytes(this.seed, buf, start, end), buf, start, end);
  }

  private probeLatin1(h: number, key: string): number {
    const index = this.index;
    for (let s = index.first(h); s !== NONE; s = index.next()) if (this.arena.keyEqualsLatin1(s, key)) return s;
    return NONE;
  }

  private probeBytes(h: number, buf: Uint8Array, start: number, end: number): number {
    const index = this.index;
    for (let s = index.first(h); s !== NONE; s = index.next()) if (this.arena.keyEqualsBytes(s, buf, start, end)) return s;
    return NONE;
  }

  /** get()'s answer for a found slot: a live value, marked used. */
  private hit(s: number): StoredEntry | undefined {
    return this.touchLive(s) ? this.entryOf(s) : undefined;
  }

  /**
   * A read of a found slot (get(), getInto()): true when it holds a live value, which is then
   * marked used; an expired one becomes a tombstone. The hot path: the slot's record fetched once
   * (see slots.ts).
   */
  private touchLive(s: number): boolean {
    const fp = this.slots.fp[s >>> PAGE_SHIFT]!;
    const ip = this.slots.ip[s >>> PAGE_SHIFT]!;
    const ii = (s & PAGE_MASK) * I32_STRIDE;
    if ((ip[ii + META]! & KIND_MASK) !== VALUE) return false;
    const expiresAt = fp[(s & PAGE_MASK) * F64_STRIDE + EXP]!;
    if (expiresAt !== 0) {
      const now = this.clock.now();
      if (expiresAt <= now) {
        this.expire(s, now);
        return false;
      }
    }
    ip[ii + TICK] = this.tick = (this.tick + 1) | 0;
    return true;
  }

  /** A found slot as it stands now: an expired value becomes a tombstone, a stale tombstone goes. */
  private settled(s: number, now = s === NONE ? 0 : this.clock.now()): number {
    if (s === NONE) return NONE;
    const expiresAt = this.slots.f(s, EXP);
    if (this.kindOf(s) === VALUE) {
      if (expiresAt === 0 || expiresAt > now) return s;
      return this.expire(s, now);
    }
    if (expiresAt > now) return s;
    this.drop(s);
    return NONE;
  }

  private isLive(s: number, now: number): boolean {
    if (this.kindOf(s) !== VALUE) return false;
    const expiresAt = this.slots.f(s, EXP);
    return expiresAt === 0 || expiresAt > now;
  }

  private partitionFor(key: string): number {
    const p = this.partitionOf(key);
    if (!(Number.isInteger(p) && p >= 0 && p <= 0xffff)) {
      const shown = key.length > 40 ? `${JSON.stringify(key.slice(0, 40))}...` : JSON.stringify(key);
      throw new RangeError(`GroupStore partitionOf must return an integer in [0, 65535]. Got: ${p} for key ${shown}`);
    }
    return p;
  }

  // ---- slots ---------------------------------------------------------------------------------

  /** Empty tables at the initial capacity. */
  private reset(): void {
    this.memoKey = null;
    this.slots = new SlotTable();
    this.slots.addPage();
    // compaction finds each record's slot by its key (arena.ts, Layout): a probe of the index,
    // which changes nothing (no expiry, no use, no memo)
    this.arena = new EntryArena(this.slots, (buf, start, end) => this.probeBytes(hashBytes(this.seed, buf, start, end), buf, start, end), this.arenaOptions);
    const arena = this.arena;
    const seed = this.seed;
    this.index = new KeyIndex(this.slots, (s) => arena.hashKey(s, seed));
    this.parts.clear();
    this.freeHead = NONE;
    this.highWater = FIRST_SLOT;
    this.bytes = 0;
    this.tombBytes = 0;
    this.valueCount = 0;
    this.tombCount = 0;
    this.hand = FIRST_SLOT;
    this.poolSize = 0;
    this.ring = new Int32Array(64);
    this.ringExp = new Float64Array(64);
    this.ringHead = 0;
    this.ringLen = 0;
    this.sweepSlot = FIRST_SLOT;
  }

  /**
   * A slot for a key entering the store: its record written (key, and `value` or none), named in
   * the index and its partition's list. Kind FREE until the caller fills it.
   */
  private take(h: number, key: string, kb: Buffer | null, partition: number, value: Buffer | null): number {
    // the index addresses MAX_SLOTS slots: past that, a key must go before another comes in
    if (this.freeHead === NONE && this.highWater >= MAX_SLOTS) {
      if (!this.dropOldestTombstone()) this.evict(this.pickVictim(NONE));
    }
    let s = this.freeHead;
    if (s !== NONE) this.freeHead = this.slots.i(s, TICK);
    else {
      s = this.highWater++;
      if (s >>> PAGE_SHIFT >= this.slots.fp.length) this.slots.addPage();
    }
    this.slots.setI(s, META, (partition << PART_SHIFT) | (kb === null ? 0 : UTF8_KEY));
    if (kb === null) this.arena.putLatin1(s, key, value);
    else this.arena.putBytes(s, kb, 0, kb.length, value);
    this.index.insert(h, s);
    const list = this.parts.get(partition);
    if (list === undefined) {
      this.slots.setI(s, PNEXT, s);
      this.slots.setI(s, PPREV, s);
      this.parts.set(partition, { head: s, count: 1 });
    } else {
      // at the back, so a partition lists its keys in the order they arrived
      const first = list.head;
      const last = this.slots.i(first, PPREV);
      this.slots.setI(last, PNEXT, s);
      this.slots.setI(s, PPREV, last);
      this.slots.setI(s, PNEXT, first);
      this.slots.setI(first, PPREV, s);
      list.count++;
    }
    return s;
  }

  /** Forget a slot's key entirely (value or tombstone) and put the slot on the free chain. */
  private drop(s: number): void {
    this.memoKey = null;
    const kind = this.kindOf(s);
    const keyBytes = this.arena.keyLength(s);
    if (kind === VALUE) {
      this.bytes -= keyBytes + this.arena.valueLength(s) + ENTRY_OVERHEAD_BYTES;
      this.valueCount--;
    } else if (kind === TOMB) {
      this.tombBytes -= keyBytes + ENTRY_OVERHEAD_BYTES;
      this.tombCount--;
    }
    this.index.remove(this.arena.hashKey(s, this.seed), s);
    this.arena.free(s);
    const p = this.partOf(s);
    const list = this.parts.get(p) as PartitionList;
    if (--list.count === 0) this.parts.delete(p);
    else {
      const before = this.slots.i(s, PPREV);
      const after = this.slots.i(s, PNEXT);
      this.slots.setI(before, PNEXT, after);
      this.slots.setI(after, PPREV, before);
      if (list.head === s) list.head = after;
    }
    this.slots.setI(s, META, FREE);
    this.slots.setI(s, TICK, this.freeHead);
    this.freeHead = s;
  }

  private kindOf(s: number): number {
    return this.slots.i(s, META) & KIND_MASK;
  }

  private typeOf(s: number): number {
    return (this.slots.i(s, META) >>> TYPE_SHIFT) & 0xff;
  }

  private partOf(s: number): number {
    return this.slots.i(s, META) >>> PART_SHIFT;
  }

  /** Set kind and type, keeping the partition and the UTF-8 mark. */
  private setMeta(s: number, kind: number, type: number): void {
    const m = this.slots.i(s, META);
    this.slots.setI(s, META, (m & ~0xff03) | kind | (type << TYPE_SHIFT));
  }

  private keyOf(s: number): string {
    return this.arena.keyString(s, (this.slots.i(s, META) & UTF8_KEY) !== 0);
  }

  /** Bytes a VALUE slot is charged. */
  private chargeOf(s: number): number {
    return this.arena.keyLength(s) + this.arena.valueLength(s) + ENTRY_OVERHEAD_BYTES;
  }

  // ---- entries -------------------------------------------------------------------------------

  /**
   * The StoredEntry a slot holds now (a copy of the bytes; `read` false: UNREAD instead), in a
   * new object or written into `into`.
   */
  private entryOf(s: number, read = true, into?: StoredEntry): StoredEntry {
    const meta = this.slots.i(s, META);
    const isValue = (meta & KIND_MASK) === VALUE;
    const value = isValue ? (read ? this.arena.readValue(s) : UNREAD) : null;
    const version = this.slots.f(s, VER);
    const expiresAt = this.slots.f(s, EXP);
    const partition = meta >>> PART_SHIFT;
    const type = isValue ? (meta >>> TYPE_SHIFT) & 0xff : TYPE_STRING;
    if (into === undefined) return { value, version, expiresAt, partition, type };
    into.value = value;
    into.version = version;
    into.expiresAt = expiresAt;
    into.partition = partition;
    into.type = type;
    return into;
  }

  /** compareWrites({version, value}, what slot s holds), without copying the held bytes. */
  private compareTo(s: number, version: Version, value: Buffer | null): number {
    const held = this.slots.f(s, VER);
    if (version !== held) return version - held;
    const heldNull = this.kindOf(s) !== VALUE;
    if (value === null || heldNull) {
      if (value === null && heldNull) return 0;
      return value === null ? -1 : 1;
    }
    const c = this.arena.compareValue(s, value); // held vs value
    return c === 0 ? 0 : -c;
  }

  /** Replace an expired value by a tombstone at its version (see the class comment). */
  private expire(s: number, now: number): number {
    return this.recordTombstone(s, this.slots.f(s, VER), now);
  }

  /**
   * Make slot `s` (a value, a tombstone, or a slot just taken) a tombstone at `version`. Returns
   * it, or NONE when a bound dropped it at once (maxTombstones 0, or a budget too small for it).
   */
  private recordTombstone(s: number, version: Version, now: number): number {
    if (this.maxTombstones === 0) {
      // none are kept: no record to write only to drop it
      this.drop(s);
      return NONE;
    }
    const kind = this.kindOf(s);
    const keyBytes = this.arena.keyLength(s);
    const expiresAt = now + this.tombstoneTtlMs;
    if (kind === VALUE) {
      this.bytes -= keyBytes + this.arena.valueLength(s) + ENTRY_OVERHEAD_BYTES;
      this.valueCount--;
      this.arena.setValue(s, null);
    }
    const renewed = kind === TOMB && this.slots.f(s, EXP) === expiresAt;
    if (kind !== TOMB) {
      this.tombBytes += keyBytes + ENTRY_OVERHEAD_BYTES;
      this.tombCount++;
    }
    this.setMeta(s, TOMB, TYPE_STRING);
    this.slots.setF(s, VER, version);
    this.slots.setF(s, EXP, expiresAt);
    // renewed: moves to the back of the age order (the older ring entry no longer matches)
    if (!renewed) this.ringPush(s, expiresAt);
    while (this.tombCount > this.maxTombstones && this.dropOldestTombstone());
    this.makeRoom(NONE);
    return this.kindOf(s) === TOMB ? s : NONE;
  }

  // ---- bounds --------------------------------------------------------------------------------

  /**
   * Bring values + tombstones back within maxBytes: the oldest tombstone goes while tombstones
   * hold more than their share (or nothing else can go), otherwise a value is evicted. `keep`: a
   * value just written, never the one evicted.
   */
  private makeRoom(keep: number): void {
    while (this.bytes + this.tombBytes > this.maxBytes) {
      const others = this.valueCount - (keep !== NONE && this.kindOf(keep) === VALUE ? 1 : 0);
      if (this.tombCount > 0 && (this.tombBytes > this.tombShareBytes || others === 0)) {
        if (!this.dropOldestTombstone()) return; // cannot happen: every tombstone is in the ring
      } else if (others > 0) this.evict(this.pickVictim(keep));
      else return; // only `keep`, which fits by itself
    }
  }

  private evict(s: number): void {
    const onEvict = this.onEvict;
    const key = onEvict !== undefined ? this.keyOf(s) : '';
    const entry = onEvict !== undefined ? this.entryOf(s) : undefined;
    this.drop(s);
    this.evictions++;
    if (entry !== undefined) onEvict?.(key, entry);
  }

  /** Drop the oldest tombstone (a bound), reporting it through onEvict. False if there is none. */
  private dropOldestTombstone(): boolean {
    const s = this.ringFront();
    if (s === NONE) return false;
    this.ringPop();
    const onEvict = this.onEvict;
    const key = onEvict !== undefined ? this.keyOf(s) : '';
    const entry = onEvict !== undefined ? this.entryOf(s) : undefined;
    this.drop(s);
    if (entry !== undefined) onEvict?.(key, entry);
    return true;
  }

  /** Use counter ticks since `s` was last read or written; clamps an age about to wrap. */
  private ageOf(s: number): number {
    const age = (this.tick - this.slots.i(s, TICK)) >>> 0;
    if (age <= MAX_AGE) return age;
    this.slots.setI(s, TICK, (this.tick - MAX_AGE) | 0);
    return MAX_AGE;
  }

  /** The value to evict: the oldest of the pool after sampling more (see the class comment). */
  private pickVictim(keep: number): number {
    for (;;) {
      this.sample(keep);
      let best = -1;
      let bestAge = -1;
      for (let i = 0; i < this.poolSize; i++) {
        const s = this.poolSlot[i]!;
        if (s === keep || this.kindOf(s) !== VALUE || this.slots.i(s, TICK) !== this.poolTick[i]) {
          // gone or used since it was seen: out of the pool
          this.poolSize--;
          this.poolSlot[i] = this.poolSlot[this.poolSize]!;
          this.poolTick[i] = this.poolTick[this.poolSize]!;
          i--;
          continue;
        }
        const age = (this.tick - this.poolTick[i]!) >>> 0;
        if (age > bestAge) {
          best = i;
          bestAge = age;
        }
      }
      if (best >= 0) {
        const s = this.poolSlot[best]!;
        this.poolSize--;
        this.poolSlot[best] = this.poolSlot[this.poolSize]!;
        this.poolTick[best] = this.poolTick[this.poolSize]!;
        this.findYoungest();
        return s;
      }
      // every candidate was stale: sample again (terminates: a value other than keep exists)
    }
  }

  /** Look at the next SAMPLE_SLOTS slots from the hand and offer their values to the pool. */
  private sample(keep: number): void {
    const n = Math.min(SAMPLE_SLOTS, this.highWater - FIRST_SLOT);
    for (let k = 0; k < n; k++) {
      if (this.hand >= this.highWater) this.hand = FIRST_SLOT;
      const s = this.hand++;
      if (s === keep || this.kindOf(s) !== VALUE) continue;
      const age = this.ageOf(s);
      if (this.poolSize === POOL && age <= ((this.tick - this.poolTick[this.poolYoungest]!) >>> 0)) continue;
      let at = -1;
      for (let i = 0; i < this.poolSize; i++) if (this.poolSlot[i] === s) at = i;
      if (at < 0) at = this.poolSize < POOL ? this.poolSize++ : this.poolYoungest;
      this.poolSlot[at] = s;
      this.poolTick[at] = this.slots.i(s, TICK);
      this.findYoungest();
    }
  }

  private findYoungest(): void {
    let y = 0;
    for (let i = 1; i < this.poolSize; i++) {
      if ((this.tick - this.poolTick[i]!) >>> 0 < (this.tick - this.poolTick[y]!) >>> 0) y = i;
    }
    this.poolYoungest = y;
  }

  // ---- the tombstone ring --------------------------------------------------------------------

  private ringPush(s: number, expiresAt: number): void {
    if (this.ringLen === this.ring.length) this.ringRoom();
    const i = (this.ringHead + this.ringLen) & (this.ring.length - 1);
    this.ring[i] = s;
    this.ringExp[i] = expiresAt;
    this.ringLen++;
  }

  /** The oldest tombstone (stale entries before it are discarded), or NONE. */
  private ringFront(): number {
    const mask = this.ring.length - 1;
    while (this.ringLen > 0) {
      const s = this.ring[this.ringHead]!;
      if (this.kindOf(s) === TOMB && this.slots.f(s, EXP) === this.ringExp[this.ringHead]) return s;
      this.ringHead = (this.ringHead + 1) & mask;
      this.ringLen--;
    }
    return NONE;
  }

  /**
   * Remove the front entry (ringFront() just returned it). At once, not lazily: the slot may be
   * reused by a tombstone with the same EXP (same millisecond), which the entry would then name.
   */
  private ringPop(): void {
    this.ringHead = (this.ringHead + 1) & (this.ring.length - 1);
    this.ringLen--;
  }

  /** A full ring: drop its stale entries if they are most of it, else double it. */
  private ringRoom(): void {
    const mask = this.ring.length - 1;
    const size = this.ringLen > 2 * this.tombCount + 16 ? this.ring.length : this.ring.length * 2;
    const ring = new Int32Array(size);
    const exp = new Float64Array(size);
    let n = 0;
    for (let k = 0; k < this.ringLen; k++) {
      const i = (this.ringHead + k) & mask;
      const s = this.ring[i]!;
      if (size > this.ring.length || (this.kindOf(s) === TOMB && this.slots.f(s, EXP) === this.ringExp[i])) {
        ring[n] = s;
        exp[n] = this.ringExp[i]!;
        n++;
      }
    }
    this.ring = ring;
    this.ringExp = exp;
    this.ringHead = 0;
    this.ringLen = n;
  }
}

/** A slot's value as a ValueSource (GroupStore.getInto). */
class SlotSource implements ValueSource {
  arena: EntryArena | null = null;
  slot = 0;

  copyValueTo(target: Uint8Array, at: number): void {
    this.arena!.copyValue(this.slot, target, at);
  }
}
