/**
 * Key and value bytes of a GroupStore, packed into large segment Buffers instead of one string
 * and one Buffer object per entry. A JS string key costs its header and a Map entry (~55 bytes of
 * V8 heap, and GC work); a Buffer per value costs a JS object (~80-100 bytes) plus its share of
 * the 8 KiB pool it was cut from. Here an entry costs its key and value bytes plus a 2-byte
 * header (for keys under 32 bytes and values under 128), and its location lives in the store's
 * slot record (SEG, OFF: see slots.ts).
 *
 * Layout. A segment is filled front to back (bump allocation); each record is
 *   [key length * 4 + record dead * 2 + value dead: varint][value length: varint][key][value]
 * (varint: 7 bits a byte, low first, high bit = more: the two flags are the low bits of the
 * first byte). A tombstone's record has no value bytes. A record does not name its slot: a
 * record freed or replaced is marked dead where it stands, and compaction, walking a segment,
 * skips the dead ones and finds the slot of each live one through the owner's index (`locate`,
 * the store's lookup by key bytes), checking that the slot points at it (SEG === segment && OFF
 * === record start). (The record used to start with its slot number, u32: 4 of an entry's
 * bytes, 2% of a 100-byte entry.)
 *
 * Reuse. An overwrite with a value of the same length is written in place: fixed-size values,
 * the common case, never create garbage. A value becoming a tombstone stays where it is, its
 * value bytes marked dead, and compaction moves the key alone. Anything else (a value of another
 * length) appends a new record with the key copied over and frees the old one (its bytes count
 * as dead in its segment).
 *
 * Compaction. When dead bytes exceed `maxDeadShare` of the segments held (and two segments' worth),
 * the segment with the most dead bytes is compacted incrementally: each write that appends also
 * moves a few live records from that segment to the head (about 4x the bytes written), and once
 * walked the segment is released. The work per write is bounded and there is no pause.
 *
 * Large entries (a value above `largeValueBytes`, or a record that would take over half a
 * segment) are kept outside the segments: the value as the caller's own Buffer (its header is
 * noise and copying it would cost more than it saves) and the key in a Buffer of its own.
 *
 * Reads copy: a caller may keep a value (send it on a socket, queue it for disk, replicate it)
 * while the slot is overwritten or its record moved, so a view into a segment would be a
 * use-after-free. The copy is a pooled Buffer.allocUnsafe plus a memcpy; copyValue() writes into
 * the caller's buffer instead.
 *
 * Keys come as byte strings (every char code 0..255: one char, one byte, written with latin1) or
 * as bytes (a view of a parse buffer, or the UTF-8 of a key that is not a byte string).
 */

import { hashBytes } from './key-index.ts';
import { OFF, SEG, SlotTable } from './slots.ts';

/** Default segment size: big enough that a segment is a rare allocation, small enough to move. */
export const DEFAULT_SEGMENT_BYTES = 256 * 1024;
/** Default size above which a value is kept as its own Buffer. */
export const DEFAULT_LARGE_VALUE_BYTES = 8 * 1024;
/** Default share of segment bytes allowed to be dead before compaction starts. */
export const DEFAULT_MAX_DEAD_SHARE = 0.25;

/** Bytes of a record header for a key under 32 bytes and a value under 128: two one-byte varints. */
export const RECORD_HEADER_BYTES = 2;

// SEG markers: no bytes held / held outside the segments
const NOWHERE = -1;
const LARGE = -2;
// compaction moves this many bytes per byte appended (see the class comment)
const COMPACT_WORK_FACTOR = 4;
/**
 * The slot of the key whose bytes are buf[start, end) as the owner's index has it, or -1: how
 * compaction tells a live record from a dead one (see Layout). Must not change anything.
 */
export type KeyLocator = (buf: Uint8Array, start: number, end: number) => number;

// the flags in the low bits of a record's first byte (see Layout)
const VALUE_DEAD = 1;
const RECORD_DEAD = 2;
/** The first varint is key length * FLAGS + flags. */
const FLAGS = 4;

export interface EntryArenaOptions {
  /** Segment size in bytes. Default 256 KiB; at least 4 KiB. */
  segmentBytes?: number;
  /**
   * Values longer than this are kept as their own Buffer. Default 8 KiB; at most segmentBytes / 4.
   */
  largeValueBytes?: number;
  /** Dead share of segment bytes that starts compaction, in (0, 1). Default 0.25. */
  maxDeadShare?: number;
}

export interface EntryArenaStats {
  /** Segments held (each segmentBytes). */
  segments: number;
  /** Bytes of freed records and sealed segment tails not yet reclaimed. */
  deadBytes: number;
  /** Bytes held as large values (their own Buffers). */
  largeBytes: number;
  /** Segments released by compaction since construction. */
  compactedSegments: number;
  /** Live records moved by compaction since construction. */
  movedRecords: number;
}

/** A large entry: key and value in Buffers of their own (value null: a tombstone). */
interface Large {
  key: Buffer;
  value: Buffer | null;
}

function requireInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`EntryArena ${name} must be an integer in [${min}, ${max}]. Got: ${value}`);
  }
}

function varintBytes(n: number): number {
  let b = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    b++;
  }
  return b;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[at++] = n;
  return at;
}

/** Key and value bytes by slot number; the owner keeps the slot table and the slot numbers. */
export class EntryArena {
  readonly segmentBytes: number;
  readonly largeValueBytes: number;
  private readonly maxDeadShare: number;
  private readonly slots: SlotTable;
  private readonly locate: KeyLocator;

  private readonly large = new Map<number, Large>();
  private largeTotal = 0;

  // per segment id; a released id has segs[id] undefined and is listed in freeIds
  private readonly segs: Array<Buffer | undefined> = [];
  private readonly used: number[] = [];
  private readonly dead: number[] = [];
  private readonly freeIds: number[] = [];
  // one released segment kept for the next head, so a steady state allocates nothing
  private spare: Buffer | undefined;
  private held = 0; // segments in segs
  private deadTotal = 0;
  private head = -1; // segment being filled, -1 none
  private headBuf: Buffer | undefined;

  // incremental compaction: the segment being walked and the next record in it
  private victim = -1;
  private vpos = 0;
  private compacted = 0;
  private moved = 0;

  // the header parse() read last: key length, value length, where the key bytes start, and
  // whether the value bytes are dead
  private kl = 0;
  private vl = 0;
  private kp = 0;
  private valueDead = false;
  private recordDead = false;

  /** `locate`: the owner's lookup of a key's slot (see KeyLocator). */
  constructor(slots: SlotTable, locate: KeyLocator, opts: EntryArenaOptions = {}) {
    const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    requireInt('segmentBytes', segmentBytes, 4096, 0x40000000);
    const largeValueBytes = opts.largeValueBytes ?? Math.min(DEFAULT_LARGE_VALUE_BYTES, segmentBytes >>> 2);
    requireInt('largeValueBytes', largeValueBytes, 0, segmentBytes >>> 2);
    const share = opts.maxDeadShare ?? DEFAULT_MAX_DEAD_SHARE;
    if (!(share > 0 && share < 1)) throw new RangeError(`EntryArena maxDeadShare must be in (0, 1). Got: ${share}`);
    this.segmentBytes = segmentBytes;
    this.largeValueBytes = largeValueBytes;
    this.maxDeadShare = share;
    this.slots = slots;
    this.locate = locate;
  }

  /** Mark a slot as holding nothing (a slot the owner has just taken from its table). */
  init(slot: number): void {
    this.slots.setI(slot, SEG, NOWHERE);
  }

  /** Whether `slot` holds a record. */
  has(slot: number): boolean {
    return this.slots.i(slot, SEG) !== NOWHERE;
  }

  // ---- writing -----------------------------------------------------------------------------

  /** A record for `slot` (holding none) with a byte-string key and `value` (null: key only). */
  putLatin1(slot: number, key: string, value: Uint8Array | null): void {
    const vlen = value === null ? 0 : value.length;
    if (this.isLarge(key.length, vlen)) {
      this.putLarge(slot, Buffer.from(key, 'latin1'), value);
      return;
    }
    const buf = this.reserve(slot, key.length, vlen);
    const kp = this.kp;
    buf.write(key, kp, 'latin1');
    if (value !== null) buf.set(value, kp + key.length);
    this.compactStep(COMPACT_WORK_FACTOR * (kp - this.slots.i(slot, OFF) + key.length + vlen));
  }

  /** A record for `slot` (holding none) with the key bytes buf[start, end) and `value`. */
  putBytes(slot: number, buf: Uint8Array, start: number, end: number, value: Uint8Array | null): void {
    const klen = end - start;
    const vlen = value === null ? 0 : value.length;
    if (this.isLarge(klen, vlen)) {
      this.putLarge(slot, Buffer.from(buf.subarray(start, end)), value);
      return;
    }
    const seg = this.reserve(slot, klen, vlen);
    const kp = this.kp;
    seg.set(buf.subarray(start, end), kp);
    if (value !== null) seg.set(value, kp + klen);
    this.compactStep(COMPACT_WORK_FACTOR * (kp - this.slots.i(slot, OFF) + klen + vlen));
  }

  /**
   * Replace the value of `slot`; the key stays. null (a tombstone): the record stays where it is,
   * its value bytes dead. A value of the length held is written in place; anything else is a new
   * record with the key copied.
   */
  setValue(slot: number, value: Uint8Array | null): void {
    const s = this.slots.i(slot, SEG);
    const vlen = value === null ? 0 : value.length;
    if (s === LARGE) {
      const l = this.large.get(slot) as Large;
      if (this.isLarge(l.key.length, vlen)) {
        this.largeTotal -= l.value === null ? 0 : l.value.length;
        l.value = value === null ? null : this.keepLarge(value);
        this.largeTotal += vlen;
        return;
      }
      this.freeLarge(slot);
      this.putBytes(slot, l.key, 0, l.key.length, value);
      return;
    }
    const buf = this.segs[s] as Buffer;
    const off = this.slots.i(slot, OFF);
    this.parse(buf, off);
    const klen = this.kl;
    const dead = this.valueDead;
    if (value === null) {
      if (dead) return;
      // a tombstone: the record stays, its value bytes are dead
      buf[off] = buf[off]! | VALUE_DEAD;
      this.retire(s, this.vl);
      return;
    }
    if (vlen === this.vl) {
      buf.set(value, this.kp + klen);
      if (dead) {
        buf[off] = buf[off]! & ~VALUE_DEAD;
        this.retire(s, -vlen);
      }
      return;
    }
    const kp = this.kp;
    // what is still live of the old record (its value bytes were counted dead already)
    const size = kp - off + klen + (dead ? 0 : this.vl);
    if (this.isLarge(klen, vlen)) {
      const key = Buffer.from(buf.subarray(kp, kp + klen));
      this.retire(s, size);
      buf[off] = buf[off]! | RECORD_DEAD;
      this.putLarge(slot, key, value);
      return;
    }
    // reserve first (it may open a segment, never release one), then copy the key across
    const head = this.reserve(slot, klen, vlen);
    buf.copy(head, this.kp, kp, kp + klen);
    head.set(value, this.kp + klen);
    this.retire(s, size);
    buf[off] = buf[off]! | RECORD_DEAD;
    this.compactStep(COMPACT_WORK_FACTOR * (this.kp - this.slots.i(slot, OFF) + klen + vlen));
  }

  /** Forget the record of `slot`; its bytes become dead space. No-op if it holds none. */
  free(slot: number): void {
    const s = this.slots.i(slot, SEG);
    if (s === NOWHERE) return;
    this.slots.setI(slot, SEG, NOWHERE);
    if (s === LARGE) {
      this.freeLarge(slot);
      return;
    }
    const buf = this.segs[s] as Buffer;
    const off = this.slots.i(slot, OFF);
    this.parse(buf, off);
    this.retire(s, this.kp - off + this.kl + (this.valueDead ? 0 : this.vl));
    buf[off] = buf[off]! | RECORD_DEAD;
  }

  // ---- reading -----------------------------------------------------------------------------

  /** Length of the key of `slot`. */
  keyLength(slot: number): number {
    const s = this.slots.i(slot, SEG);
    if (s === LARGE) return (this.large.get(slot) as Large).key.length;
    this.parse(this.segs[s] as Buffer, this.slots.i(slot, OFF));
    return this.kl;
  }

  /** Length of the value of `slot` (0 for a key-only record). */
  valueLength(slot: number): number {
    const s = this.slots.i(slot, SEG);
    if (s === LARGE) return (this.large.get(slot) as Large).value?.length ?? 0;
    const buf = this.segs[s] as Buffer;
    const off = this.slots.i(slot, OFF);
    if ((buf[off]! & VALUE_DEAD) !== 0) return 0;
    this.parse(buf, off);
    return this.vl;
  }

  /** A copy of the value of `slot` (a large value: the Buffer itself, never modified). */
  readValue(slot: number): Buffer {
    const s = this.slots.i(slot, SEG);
    if (s === LARGE) return (this.large.get(slot) as Large).value ?? Buffer.alloc(0);
    const buf = this.segs[s] as Buffer;
    this.parse(buf, this.slots.i(slot, OFF));
    const at = this.kp + this.kl;
    const n = this.vl;
    const out = Buffer.allocUnsafe(n); // pooled below 4 KiB
    // copy(), not set(subarray()): as fast for 100-byte values on Node 24 (~40 ns each, 5M
    // copies), and no view object for the young generation (set(subarray()): 496 scavenges for
    // 5M copies, copy(): none)
    buf.copy(out, 0, at, at + n);
    return out;
  }

  /** Copy the value of `slot` into target at `at`; returns its length. */
  copyValue(slot: number, target: Uint8Array, at: number): number {
    const s = this.slots.i(slot, SEG);
    if (s === LARGE) {
      const v = (this.large.get(slot) as Large).value;
      if (v === null) return 0;
      target.set(v, at);
      return v.length;
    }
    const buf = this.segs[s] as Buffer;
    this.parse(buf, this.slots.i(slot, OFF));
    const from = this.kp + this.kl;
    buf.copy(target, at, from, from + this.vl); // no view object (see readValue)
    return this.vl;
  }

  /** Buffer.compare(value of slot, other) without copying. */
  compareValue(slot: number, other: Uint8Array): number {
    const s = this.slots.i(slot, SEG);
    if (s === LARGE) return Buffer.compare((this.large.get(slot) as Large).value ?? Buffer.alloc(0), other);
    const buf = this.segs[s] as Buffer;
    this.parse(buf, this.slots.i(slot, OFF));
    const from = this.kp + this.kl;
    // buf.compare(target, tStart, tEnd, sStart, sEnd) orders the source range against the target
    return buf.compare(other, 0, other.length, from, from + this.vl);
  }

  /** Whether the key of `slot` is the byte string `key`. */
  keyEqualsLatin1(slot: number, key: string): boolean {
    const s = this.slots.i(slot, SEG);
    let buf: Uint8Array;
    let at: number;
    if (s === LARGE) {
      buf = (this.large.get(slot) as Large).key;
      if (buf.length !== key.length) return false;
      at = 0;
    } else {
      buf = this.segs[s] as Buffer;
      this.parse(buf, this.slots.i(slot, OFF));
      if (this.kl !== key.length) return false;
      at = this.kp;
    }
    for (let i = 0; i < key.length; i++) if (buf[at + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  /** Whether the key of `slot` is the bytes key[start, end). */
  keyEqualsBytes(slot: number, key: Uint8Array, start: number, end: number): boolean {
    const s = this.slots.i(slot, SEG);
    const n = end - start;
    let buf: Uint8Array;
    let at: number;
    if (s === LARGE) {
      buf = (this.large.get(slot) as Large).key;
      if (buf.length !== n) return false;
      at = 0;
    } else {
      buf = this.segs[s] as Buffer;
      this.parse(buf, this.slots.i(slot, OFF));
      if (this.kl !== n) return false;
      at = this.kp;
    }
    if (n > 32) return Buffer.compare(buf.subarray(at, at + n), key.subarray(start, end)) === 0;
    for (let i = 0; i < n; i++) if (buf[at + i] !== key[start + i]) return false;
    return true;
  }

  /** The key of `slot` as a string: latin1 (a byte string), or decoded as UTF-8 when `utf8`. */
  keyString(slot: number, utf8: boolean): string {
    const s = this.slots.i(slot, SEG);
    if (s === LARGE) {
      const k = (this.large.get(slot) as Large).key;
      return k.toString(utf8 ? 'utf8' : 'latin1');
    }
    const buf = this.segs[s] as Buffer;
    this.parse(buf, this.slots.i(slot, OFF));
    return buf.toString(utf8 ? 'utf8' : 'latin1', this.kp, this.kp + this.kl);
  }

  /** hashBytes(seed, key of slot). */
  hashKey(slot: number, seed: number): number {
    const s = this.slots.i(slot, SEG);
    if (s === LARGE) {
      const k = (this.large.get(slot) as Large).key;
      return hashBytes(seed, k, 0, k.length);
    }
    const buf = this.segs[s] as Buffer;
    this.parse(buf, this.slots.i(slot, OFF));
    return hashBytes(seed, buf, this.kp, this.kp + this.kl);
  }

  // ---- housekeeping ------------------------------------------------------------------------

  /** Drop every record and segment (the owner resets its slot table). */
  clear(): void {
    this.large.clear();
    this.largeTotal = 0;
    this.segs.length = 0;
    this.used.length = 0;
    this.dead.length = 0;
    this.freeIds.length = 0;
    this.spare = undefined;
    this.held = 0;
    this.deadTotal = 0;
    this.head = -1;
    this.headBuf = undefined;
    this.victim = -1;
    this.vpos = 0;
  }

  stats(): EntryArenaStats {
    return {
      segments: this.held,
      deadBytes: this.deadTotal,
      largeBytes: this.largeTotal,
      compactedSegments: this.compacted,
      movedRecords: this.moved,
    };
  }

  /**
   * Background work for when no writes come (compaction otherwise rides on appends, so dead
   * space left by deletes alone would stay): walks up to `budgetBytes` of the current victim, if
   * dead space is over the bound. Returns whether there was anything to do.
   */
  maintain(budgetBytes: number): boolean {
    if (this.victim < 0 && !this.startCompaction(false)) return false;
    this.compactStep(budgetBytes);
    return true;
  }

  /**
   * Run compaction until no segment is worth compacting (tests and idle maintenance). Returns
   * the segments released.
   */
  compactAll(): number {
    const before = this.compacted;
    // each round walks one whole segment; bounded by the segments held
    for (let rounds = this.held * 2 + 2; rounds > 0; rounds--) {
      if (this.victim < 0 && !this.startCompaction(true)) break;
      this.compactStep(Infinity);
    }
    return this.compacted - before;
  }

  // ---- internals ---------------------------------------------------------------------------

  /** Read the header at `off` of `buf` into kl, vl, kp, valueDead, recordDead. */
  private parse(buf: Uint8Array, off: number): void {
    let p = off;
    let b = buf[p++]!;
    let kd = b & 0x7f;
    for (let shift = 128; b & 0x80; shift *= 128) {
      b = buf[p++]!;
      kd += (b & 0x7f) * shift;
    }
    this.valueDead = (kd & VALUE_DEAD) !== 0;
    this.recordDead = (kd & RECORD_DEAD) !== 0;
    const kl = (kd - (kd & (FLAGS - 1))) / FLAGS;
    b = buf[p++]!;
    let vl = b & 0x7f;
    for (let shift = 128; b & 0x80; shift *= 128) {
      b = buf[p++]!;
      vl += (b & 0x7f) * shift;
    }
    this.kl = kl;
    this.vl = vl;
    this.kp = p;
  }

  /** Whether a value of `vlen` bytes under a key of `klen` is kept as the caller's Buffer (a large entry) rather than copied into a segment. */
  keepsGiven(klen: number, vlen: number): boolean {
    return this.isLarge(klen, vlen);
  }

  private isLarge(klen: number, vlen: number): boolean {
    return vlen > this.largeValueBytes || 14 + klen + vlen > this.segmentBytes >>> 1;
  }

  /**
   * Append a record header for `slot` at the head, point the slot at it, and return the head
   * segment; this.kp is where the key bytes go (the value follows them).
   */
  private reserve(slot: number, klen: number, vlen: number): Buffer {
    const size = varintBytes(FLAGS * klen) + varintBytes(vlen) + klen + vlen;
    const at = this.append(slot, size);
    const buf = this.headBuf as Buffer;
    this.kp = writeVarint(buf, writeVarint(buf, at, FLAGS * klen), vlen);
    return buf;
  }

  /** Room for a record of `size` bytes at the head, the slot pointed at it; returns its offset. */
  private append(slot: number, size: number): number {
    let buf = this.headBuf;
    if (buf === undefined || (this.used[this.head] as number) + size > this.segmentBytes) buf = this.openSegment();
    const h = this.head;
    const at = this.used[h] as number;
    this.used[h] = at + size;
    this.slots.setI(slot, SEG, h);
    this.slots.setI(slot, OFF, at);
    return at;
  }

  /** A record of `size` bytes in segment `s` is dead. */
  private retire(s: number, size: number): void {
    this.dead[s] = (this.dead[s] as number) + size;
    this.deadTotal += size;
  }

  private putLarge(slot: number, key: Buffer, value: Uint8Array | null): void {
    this.large.set(slot, { key, value: value === null ? null : this.keepLarge(value) });
    this.largeTotal += value === null ? 0 : value.length;
    this.slots.setI(slot, SEG, LARGE);
  }

  private freeLarge(slot: number): void {
    const l = this.large.get(slot) as Large;
    this.largeTotal -= l.value === null ? 0 : l.value.length;
    this.large.delete(slot);
  }

  /**
   * The Buffer to keep for a large value: the caller's own, except a small view into a much larger
   * buffer (a decoded replication or migration batch), copied so the batch is not kept alive.
   */
  private keepLarge(bytes: Uint8Array): Buffer {
    const n = bytes.length;
    if (bytes.buffer.byteLength > 2 * n) return Buffer.from(bytes);
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, n);
  }

  /** Seal the head (its unused tail is dead) and start a new one. */
  private openSegment(): Buffer {
    if (this.head >= 0) this.retire(this.head, this.segmentBytes - (this.used[this.head] as number));
    const id = this.freeIds.pop() ?? this.segs.length;
    const buf = this.spare ?? Buffer.allocUnsafeSlow(this.segmentBytes);
    this.spare = undefined;
    this.segs[id] = buf;
    this.used[id] = 0;
    this.dead[id] = 0;
    this.held++;
    this.head = id;
    this.headBuf = buf;
    return buf;
  }

  /**
   * Pick a victim if dead space is over the bound (or, with `any`, if any sealed segment has
   * dead bytes). The victim is the sealed segment with the most dead bytes.
   */
  private startCompaction(any: boolean): boolean {
    if (!any) {
      const total = this.held * this.segmentBytes;
      if (this.deadTotal < 2 * this.segmentBytes || this.deadTotal <= this.maxDeadShare * total) return false;
    }
    let best = -1;
    let bestDead = 0;
    for (let id = 0; id < this.segs.length; id++) {
      if (id === this.head || this.segs[id] === undefined) continue;
      const d = this.dead[id] as number;
      if (d > bestDead) {
        best = id;
        bestDead = d;
      }
    }
    if (best < 0) return false;
    this.victim = best;
    this.vpos = 0;
    return true;
  }

  /** Walk up to `budget` bytes of the victim, moving its live records to the head. */
  private compactStep(budget: number): void {
    if (this.victim < 0 && !this.startCompaction(false)) return;
    const v = this.victim;
    const buf = this.segs[v] as Buffer;
    const end = this.used[v] as number;
    let pos = this.vpos;
    const stop = pos + budget;
    while (pos < end && pos < stop) {
      this.parse(buf, pos);
      const kp = this.kp;
      const klen = this.kl;
      const dead = this.valueDead;
      const size = kp - pos + klen + this.vl;
      // a live record's slot, by its key: no lookup for one freed or replaced
      const slot = this.recordDead ? -1 : this.locate(buf, kp, kp + klen);
      if (slot >= 0 && this.slots.i(slot, SEG) === v && this.slots.i(slot, OFF) === pos) {
        if (!dead) {
          const at = this.append(slot, size); // may open a segment; never the victim
          buf.copy(this.headBuf as Buffer, at, pos, pos + size);
        } else {
          // a tombstone's record: the key alone moves
          const head = this.reserve(slot, klen, 0);
          buf.copy(head, this.kp, kp, kp + klen);
        }
        this.moved++;
      }
      pos += size;
    }
    this.vpos = pos;
    if (pos < end) return;
    // walked: nothing live is left in it
    this.deadTotal -= this.dead[v] as number;
    if (this.spare === undefined) this.spare = buf;
    this.segs[v] = undefined;
    this.used[v] = 0;
    this.dead[v] = 0;
    this.freeIds.push(v);
    this.held--;
    this.victim = -1;
    this.vpos = 0;
    this.compacted++;
  }
}
