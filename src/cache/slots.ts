/**
 * The slot table of a GroupStore: one fixed-size record per key held (a value or a tombstone),
 * in typed-array pages, addressed by slot number. Everything the store knows about a key lives
 * here or in the bytes the record points at (EntryArena); there is no per-key JS object.
 *
 * A record is 40 bytes, 5 float64 viewed also as 10 int32, so a lookup touches one or two cache
 * lines for it rather than one per field:
 *
 *   f64 0  VER    version (last-writer-wins, see core/version.ts)
 *   f64 1  EXP    value: absolute expiry in ms, 0 = never; tombstone: when it is forgotten
 *   i32 4  META   kind (bits 0-1) | key-is-UTF-8 (bit 2) | which KeyIndex table (bit 3) |
 *                 type (bits 8-15) | partition (bits 16-31)
 *   i32 5  TICK   value: the store's use counter when last read or written (eviction age);
 *                 free slot: the next free slot
 *   i32 6  PNEXT  partition list (circular, every key of a partition)
 *   i32 7  PPREV
 *   i32 8  SEG    where the key and value bytes are: segment id, LARGE or NOWHERE (EntryArena)
 *   i32 9  OFF    offset of the record in that segment
 *
 * Pages are added, never reallocated: no copy when the table grows, no slack beyond one page,
 * and no freed generations left in the process's RSS (measured: ~50 bytes an entry at 200k
 * entries when the old store doubled its arrays). A slot keeps its number for as long as its key
 * is held, which is what makes a slot-number cursor safe (GroupStore.scan).
 */

export const PAGE_SHIFT = 12;
export const PAGE_SLOTS = 1 << PAGE_SHIFT;
export const PAGE_MASK = PAGE_SLOTS - 1;

export const F64_STRIDE = 5;
export const I32_STRIDE = 10;
export const VER = 0;
export const EXP = 1;
export const META = 4;
export const TICK = 5;
export const PNEXT = 6;
export const PPREV = 7;
export const SEG = 8;
export const OFF = 9;

// META
export const KIND_MASK = 3;
export const FREE = 0;
export const VALUE = 1;
export const TOMB = 2;
export const UTF8_KEY = 4;
export const INDEXED = 8;
export const TYPE_SHIFT = 8;
export const PART_SHIFT = 16;

/** Highest slot number + 1 (KeyIndex packs a slot in 27 bits). */
export const MAX_SLOTS = 1 << 27;

export class SlotTable {
  /** f64 view of each page; ip[n] views the same ArrayBuffer as fp[n]. */
  fp: Float64Array[] = [];
  ip: Int32Array[] = [];

  /** Slots the table can address now (whole pages). */
  get capacity(): number {
    return this.fp.length * PAGE_SLOTS;
  }

  addPage(): void {
    const f64 = new Float64Array(PAGE_SLOTS * F64_STRIDE);
    this.fp.push(f64);
    this.ip.push(new Int32Array(f64.buffer));
  }

  /** Float64 field of slot s. */
  f(s: number, field: number): number {
    return this.fp[s >>> PAGE_SHIFT]![(s & PAGE_MASK) * F64_STRIDE + field]!;
  }

  setF(s: number, field: number, value: number): void {
    this.fp[s >>> PAGE_SHIFT]![(s & PAGE_MASK) * F64_STRIDE + field] = value;
  }

  /** Int32 field of slot s. */
  i(s: number, field: number): number {
    return this.ip[s >>> PAGE_SHIFT]![(s & PAGE_MASK) * I32_STRIDE + field]!;
  }

  setI(s: number, field: number, value: number): void {
    this.ip[s >>> PAGE_SHIFT]![(s & PAGE_MASK) * I32_STRIDE + field] = value;
  }
}
