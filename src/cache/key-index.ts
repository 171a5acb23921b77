/**
 * Key -> slot index of a GroupStore: open addressing with linear probing over one Int32Array,
 * 4 bytes a bucket, resized incrementally.
 *
 * A bucket holds `tag << 27 | slot`: the slot number (27 bits, see MAX_SLOTS) and the top 5 bits
 * of the key's hash, so a probe that meets another key's bucket rejects it 31 times in 32 without
 * touching that key's record or bytes. The index does not know keys: `first(hash)` / `next()`
 * hand the caller each candidate slot whose tag matches, and the caller compares the key bytes.
 * 0 is an empty bucket and 1 a deleted one (slots 0 and 1 are never handed out): a removal
 * leaves a deleted mark, which probes step over and an insert reuses, because moving the rest of
 * the run back (backward-shift deletion) would need each moved key's hash, i.e. its bytes.
 *
 * Load. The table doubles when live + deleted buckets pass 3/4 of it (or is rebuilt at its size
 * when most of those are deleted marks), and halves when live ones fall under 1/10 (never below
 * the initial size).
 *
 * Incremental resize. A resize allocates the new table and keeps the old one; from then on
 * inserts go to the new table and lookups try the new one and then the old one. Keys move over in
 * slot order, a few slots per operation (`stepsPerOp`, chosen when the resize starts so every slot
 * is walked before the new table can fill): moving a key costs a hash of its bytes (`hashOf`, the
 * store's), and walking the slot records and their segments in order reads memory front to back
 * where walking the old table would jump to a random record per key (measured: 3x faster). Which
 * table holds a slot is one bit of its record (INDEXED), whose meaning flips at each resize: a
 * slot whose bit matches `gen` is in the current table. A moved key leaves its old bucket behind,
 * so a lookup in the old table skips a candidate whose slot is free or in the current table. No
 * operation pays for more than its share: there is no pause when a table of millions doubles.
 */

import { FREE, INDEXED, KIND_MASK, MAX_SLOTS, META, SlotTable } from './slots.ts';

const SLOT_BITS = 27;
const SLOT_MASK = MAX_SLOTS - 1;
const EMPTY = 0;
const DELETED = 1;

/** log2 of the initial (and smallest) table: 1024 buckets, 4 KiB. */
const MIN_BITS = 10;

/**
 * FNV-1a over bytes with a seed, finished with MurmurHash3's fmix32 so the low bits (the bucket)
 * and the high bits (the tag) are both well mixed. Never 0: see hashLatin1.
 */
export function hashBytes(seed: number, buf: Uint8Array, start: number, end: number): number {
  let h = (seed ^ 0x811c9dc5) | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return finish(h);
}

/**
 * hashBytes of a byte string (every char code 0..255, one char per byte) without encoding it.
 * Returns 0 when the string is not a byte string (a char above 255): the caller hashes its UTF-8
 * bytes instead. That is why no hash is 0.
 */
export function hashLatin1(seed: number, key: string): number {
  let h = (seed ^ 0x811c9dc5) | 0;
  let all = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    all |= c;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return all > 0xff ? 0 : finish(h);
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h === 0 ? 1 : h;
}

export interface KeyIndexStats {
  /** Buckets of the current table. */
  buckets: number;
  /** Keys indexed (in either table). */
  keys: number;
  /** Deleted marks in the current table. */
  deleted: number;
  /** Whether a resize is moving keys from an old table. */
  resizing: boolean;
  /** Resizes started since construction. */
  resizes: number;
  /** Bytes of the tables (both during a resize). */
  bytes: number;
}

export class KeyIndex {
  // the current table: every insert goes here
  private cur: Int32Array;
  private mask: number;
  private live = 0;
  private deleted = 0;
  // the table being emptied into cur, or null; slots below `walk` have been moved (up to `walkEnd`)
  private old: Int32Array | null = null;
  private oldMask = 0;
  private oldLive = 0;
  private walk = 0;
  private walkEnd = 0;
  private stepsPerOp = 0;
  // 1 + the highest slot ever inserted: the walk's end
  private slotEnd = 0;
  // a slot is in `cur` iff its INDEXED bit equals gen (during a resize; always, otherwise)
  private gen = 0;
  private resizes = 0;
  // reserve(): no shrinking below this many buckets until half the keys it was made for are in (0: none)
  private floor = 0;
  private reserved = 0;

  // probe state of first()/next(): table, mask, position, tag, hash, whether in the old table
  private pt: Int32Array;
  private pm = 0;
  private pi = 0;
  private ptag = 0;
  private ph = 0;
  private inOld = false;

  private readonly slots: SlotTable;
  private readonly hashOf: (slot: number) => number;

  /** `hashOf(slot)`: the hash of the key held in `slot` (used to move keys when resizing). */
  constructor(slots: SlotTable, hashOf: (slot: number) => number) {
    this.slots = slots;
    this.hashOf = hashOf;
    this.cur = new Int32Array(1 << MIN_BITS);
    this.mask = this.cur.length - 1;
    this.pt = this.cur;
  }

  /** Keys indexed. */
  get size(): number {
    return this.live + this.oldLive;
  }

  stats(): KeyIndexStats {
    return {
      buckets: this.cur.length,
      keys: this.size,
      deleted: this.deleted,
      resizing: this.old !== null,
      resizes: this.resizes,
      bytes: this.cur.byteLength + (this.old?.byteLength ?? 0),
    };
  }

  /**
   * First slot whose bucket matches `hash`'s tag, or -1. The caller checks the slot's key and
   * calls next() for the following candidate. Moves a resize along by a slot.
   */
  first(hash: number): number {
    if (this.old !== null) this.step(1);
    this.ph = hash;
    this.ptag = hash >>> SLOT_BITS;
    this.pt = this.cur;
    this.pm = this.mask;
    this.pi = hash & this.mask;
    this.inOld = false;
    return this.scan();
  }

  /** The next candidate after the one first() or next() returned, or -1. */
  next(): number {
    this.pi = (this.pi + 1) & this.pm;
    return this.scan();
  }

  private scan(): number {
    const tag = this.ptag;
    let t = this.pt;
    let m = this.pm;
    let i = this.pi;
    for (;;) {
      const v = t[i]!;
      if (v === EMPTY) {
        const old = this.old;
        if (this.inOld || old === null) {
          this.pi = i;
          return -1;
        }
        // then the old table (a key found there has not moved yet)
        this.inOld = true;
        t = old;
        m = this.oldMask;
        this.pt = t;
        this.pm = m;
        i = this.ph & m;
        continue;
      }
      if (v !== DELETED && v >>> SLOT_BITS === tag) {
        const slot = v & SLOT_MASK;
        // in the old table, a slot already moved (or freed, or reused by a key indexed in the
        // current table since) left a stale bucket behind: skip it
        if (!this.inOld || this.isOld(slot)) {
          this.pi = i;
          return slot;
        }
      }
      i = (i + 1) & m;
    }
  }

  /** Whether `slot` holds a key still indexed in the old table (during a resize). */
  private isOld(slot: number): boolean {
    const meta = this.slots.i(slot, META);
    return (meta & KIND_MASK) !== FREE && (meta & INDEXED) !== this.gen;
  }

  /** Index `slot` under `hash`. The caller has checked that its key is not indexed yet. */
  insert(hash: number, slot: number): void {
    // indexed (and marked so) before the walk moves on: the walk must not take it for an old key
    this.put(hash, slot);
    this.live++;
    if (slot >= this.slotEnd) this.slotEnd = slot + 1;
    const m = this.slots.i(slot, META);
    this.slots.setI(slot, META, (m & ~INDEXED) | this.gen);
    if (this.old !== null) this.step(this.stepsPerOp);
    else if ((this.live + this.deleted) * 4 > this.cur.length * 3) this.resizeTo(this.live * 2 > this.cur.length ? this.cur.length * 2 : this.cur.length);
  }

  /** Remove `slot`, indexed under `hash`. Returns whether it was found. */
  remove(hash: number, slot: number): boolean {
    if (this.old !== null) this.step(this.stepsPerOp);
    const want = ((hash >>> SLOT_BITS) << SLOT_BITS) | slot;
    const inCur = this.old === null || (this.slots.i(slot, META) & INDEXED) === this.gen;
    const t = inCur ? this.cur : (this.old as Int32Array);
    const m = inCur ? this.mask : this.oldMask;
    // at the bucket that holds it, a deleted mark (see the class comment)
    for (let i = hash & m; ; i = (i + 1) & m) {
      const v = t[i]!;
      if (v === EMPTY) return false;
      if (v !== want) continue;
      t[i] = DELETED;
      if (!inCur) {
        this.oldLive--;
        return true;
      }
      this.live--;
      this.deleted++;
      if (this.old === null && this.mayShrink()) this.resizeTo(this.cur.length / 2);
      return true;
    }
  }

  /** Move up to `n` slots of a resize in progress (background work). Returns whether one still is. */
  step(n: number): boolean {
    const old = this.old;
    if (old === null) return false;
    const slots = this.slots;
    const gen = this.gen;
    let s = this.walk;
    const end = Math.min(this.walkEnd, s + n);
    for (; s < end; s++) {
      const m = slots.i(s, META);
      if ((m & KIND_MASK) === FREE || (m & INDEXED) === gen) continue;
      this.put(this.hashOf(s), s);
      slots.setI(s, META, m ^ INDEXED);
      this.live++;
      this.oldLive--;
    }
    this.walk = s;
    if (s < this.walkEnd) return true;
    this.old = null;
    this.oldLive = 0;
    this.pt = this.cur;
    if ((this.live + this.deleted) * 4 > this.cur.length * 3) this.resizeTo(this.live * 2 > this.cur.length ? this.cur.length * 2 : this.cur.length);
    else if (this.mayShrink()) this.resizeTo(this.cur.length / 2);
    return this.old !== null;
  }

  /** Into the current table, at the first empty or deleted bucket of the run. */
  private put(hash: number, slot: number): void {
    const t = this.cur;
    const m = this.mask;
    let i = hash & m;
    for (;;) {
      const v = t[i]!;
      if (v === EMPTY) break;
      if (v === DELETED) {
        this.deleted--;
        break;
      }
      i = (i + 1) & m;
    }
    t[i] = ((hash >>> SLOT_BITS) << SLOT_BITS) | slot;
  }

  /**
   * Grow now, if needed, to a table that holds `keys` keys (values and tombstones) under the 3/4
   * load, for inserts known to be coming (a migration's receiver: resizing as they arrived was a
   * quarter of applying them, bench/profile). Until half of them are in, the table does not
   * shrink below that size; so a reservation whose keys never come holds its buckets (4 bytes
   * each) until keys fill it or are removed below a tenth of it after it was met.
   */
  reserve(keys: number): void {
    const want = Math.min(Math.max(0, Math.floor(keys)), MAX_SLOTS);
    if (want * 4 <= this.cur.length * 3) return;
    while (this.old !== null) this.step(Infinity); // at most the keys of one table; a resize it ends may start another
    let size = this.cur.length;
    while ((want + this.deleted) * 4 > size * 3) size *= 2;
    if (size <= this.cur.length) return;
    this.floor = size;
    this.reserved = want;
    this.resizeTo(size);
  }

  /** The table is mostly empty and no reservation holds it: halve it. */
  private mayShrink(): boolean {
    if (this.floor > 0 && this.live * 2 >= this.reserved) this.floor = 0; // half the reserved keys are in
    return this.cur.length > Math.max(1 << MIN_BITS, this.floor) && this.live * 10 < this.cur.length;
  }

  /** Start moving every key to a table of `size` buckets (a power of two). */
  private resizeTo(size: number): void {
    // cannot happen at the rates chosen below (reserve() ends any resize first); bounded anyway
    while (this.old !== null) this.step(Infinity);
    const old = this.cur;
    this.cur = new Int32Array(size);
    this.mask = size - 1;
    this.old = old;
    this.oldMask = old.length - 1;
    this.oldLive = this.live;
    this.live = 0;
    this.deleted = 0;
    this.gen ^= INDEXED; // every slot is now in the old table
    this.walk = 0;
    this.walkEnd = this.slotEnd; // slots above it are inserted from now on: into the new table
    this.resizes++;
    // walk every slot before inserts can fill the new table to 3/4, with a margin (removals and
    // lookups walk some too)
    const room = Math.max(1, Math.floor((size * 3) / 4) - this.oldLive);
    this.stepsPerOp = Math.ceil((this.walkEnd * 2) / room);
    this.pt = this.cur;
  }
}
