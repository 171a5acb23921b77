/**
 * A Redis hash as one value: the bytes a hash entry holds in the store, replicated, migrated
 * and persisted like any string.
 *
 *   byte 0            format tag, 0x01
 *   varint            n, the number of fields (n >= 1: an empty hash is never stored)
 *   n times           varint field length, the field's bytes, varint value length, the value's bytes
 *
 * Varints are LEB128 (7 bits a byte, low bits first): a field or value under 128 bytes costs one
 * length byte, so a hash of short fields is little more than its payload.
 *
 * Fields are kept in insertion order; setting an existing field keeps its place, a deleted field
 * leaves no gap. That is exactly what Redis 7 does for a small hash (a listpack: up to
 * hash-max-listpack-entries = 512 fields, each field and value up to hash-max-listpack-value = 64
 * bytes), so HGETALL, HKEYS, HVALS and HSCAN answer in Redis's order. A larger hash Redis keeps
 * in a hash table and lists in its table's order, which depends on a per-process random seed:
 * there jincache's order (still insertion order) is as good as any, but not Redis's.
 *
 * The engine reads and edits the encoded bytes directly (hashGet, hashSet, hashDelete): HGET on a
 * small hash compares bytes in place and allocates nothing but the reply's view.
 */

const FORMAT = 0x01;

export class HashCodecError extends Error {
  readonly code = 'HASH_CODEC';
  override name = 'HashCodecError';
}

export function isHashCodecError(e: unknown): e is HashCodecError {
  return e instanceof HashCodecError;
}

/** Where the last readVarint stopped: a module-level cursor so reading allocates nothing. */
let next = 0;

function readVarint(b: Uint8Array, at: number): number {
  let v = 0;
  let scale = 1;
  for (;;) {
    if (at >= b.length) throw new HashCodecError(`hash truncated at byte ${at} of ${b.length}`);
    const c = b[at++]!;
    v += (c & 0x7f) * scale;
    if (c < 0x80) break;
    scale *= 128;
    if (scale > 2 ** 49) throw new HashCodecError(`hash length too long at byte ${at}`);
  }
  next = at;
  return v;
}

function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(b: Uint8Array, at: number, v: number): number {
  while (v >= 128) {
    b[at++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  b[at++] = v;
  return at;
}

/** The number of fields, from the header alone. */
export function hashLength(b: Uint8Array): number {
  if (b[0] !== FORMAT) throw new HashCodecError(`not a hash (format byte ${b[0] ?? 'missing'})`);
  return readVarint(b, 1);
}

function sameBytes(b: Buffer, at: number, field: Uint8Array): boolean {
  const n = field.length;
  if (n > 16) return at + n <= b.length && b.compare(field, 0, n, at, at + n) === 0;
  for (let i = 0; i < n; i++) if (b[at + i] !== field[i]) return false;
  return true;
}

/** The value of `field`, a view into `b` (not a copy), or undefined. */
export function hashGet(b: Buffer, field: Uint8Array): Buffer | undefined {
  const n = hashLength(b);
  let at = next;
  const want = field.length;
  for (let i = 0; i < n; i++) {
    const fl = readVarint(b, at);
    const fs = next;
    const vl = readVarint(b, fs + fl);
    const vs = next;
    if (fl === want && sameBytes(b, fs, field)) return b.subarray(vs, vs + vl);
    at = vs + vl;
  }
  return undefined;
}

/** The fields and values in order, as views into `b`: [field, value, field, value, ...]. */
export function hashPairs(b: Buffer): Buffer[] {
  const n = hashLength(b);
  let at = next;
  const out = new Array<Buffer>(2 * n);
  for (let i = 0; i < n; i++) {
    const fl = readVarint(b, at);
    const fs = next;
    const vl = readVarint(b, fs + fl);
    const vs = next;
    if (vs + vl > b.length) throw new HashCodecError(`hash truncated in field ${i}`);
    out[2 * i] = b.subarray(fs, fs + fl);
    out[2 * i + 1] = b.subarray(vs, vs + vl);
    at = vs + vl;
  }
  if (at !== b.length) throw new HashCodecError(`hash has ${b.length - at} bytes after its last field`);
  return out;
}

/** Encode [field, value, ...] pairs, in order (fields must be distinct). */
export function encodePairs(pairs: readonly Uint8Array[]): Buffer {
  const n = pairs.length >> 1;
  let size = 1 + varintSize(n);
  for (const p of pairs) size += varintSize(p.length) + p.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = FORMAT;
  let at = writeVarint(out, 1, n);
  for (const p of pairs) {
    at = writeVarint(out, at, p.length);
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Size of the encoding of `pairs`, without building it. */
function encodedSize(pairs: readonly Uint8Array[]): number {
  let size = 1 + varintSize(pairs.length >> 1);
  for (const p of pairs) size += varintSize(p.length) + p.length;
  return size;
}

/** Past this many fields, fields are matched through a Map instead of a scan per argument. */
const SCAN_LIMIT = 16;

/** Index of each field in [field, value, ...] `pairs` (by latin1 text), for large hashes. */
function fieldIndex(pairs: readonly Buffer[]): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < pairs.length; i += 2) m.set(pairs[i]!.toString('latin1'), i);
  return m;
}

function findPair(pairs: readonly Buffer[], index: Map<string, number> | null, field: Buffer): number {
  if (index !== null) return index.get(field.toString('latin1')) ?? -1;
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i]!.equals(field)) return i;
  return -1;
}

/** Set by locate(): where the found pair's value length starts, and where the pair ends. */
let valueLenAt = 0;
let pairEnd = 0;

/** Offset of the pair holding `field` (its field length byte), or -1. */
function locate(b: Buffer, field: Uint8Array): number {
  const n = hashLength(b);
  let at = next;
  const want = field.length;
  for (let i = 0; i < n; i++) {
    const fl = readVarint(b, at);
    const fs = next;
    const vl = readVarint(b, fs + fl);
    if (fl === want && sameBytes(b, fs, field)) {
      valueLenAt = fs + fl;
      pairEnd = next + vl;
      return at;
    }
    at = next + vl;
  }
  return -1;
}

export interface HashEdit {
  /** The new encoding; null when no field is left (the key is deleted). */
  readonly value: Buffer | null;
  /** Fields added (HSET's reply) or removed (HDEL's). */
  readonly count: number;
}

/**
 * One field set in place: the bytes around it are copied once, nothing is decoded (HSET's
 * common case). Null when the result would exceed `maxBytes`.
 */
function setOne(b: Buffer, field: Buffer, value: Buffer, maxBytes: number): HashEdit | null {
  if (locate(b, field) >= 0) {
    const size = valueLenAt + varintSize(value.length) + value.length + (b.length - pairEnd);
    if (size > maxBytes) return null;
    const out = Buffer.allocUnsafe(size);
    b.copy(out, 0, 0, valueLenAt);
    let at = writeVarint(out, valueLenAt, value.length);
    out.set(value, at);
    at += value.length;
    b.copy(out, at, pairEnd);
    return { value: out, count: 0 };
  }
  const n = hashLength(b);
  const bodyAt = next;
  const header = 1 + varintSize(n + 1);
  const size = header + (b.length - bodyAt) + varintSize(field.length) + field.length + varintSize(value.length) + value.length;
  if (size > maxBytes) return null;
  const out = Buffer.allocUnsafe(size);
  out[0] = FORMAT;
  let at = writeVarint(out, 1, n + 1);
  at += b.copy(out, at, bodyAt);
  at = writeVarint(out, at, field.length);
  out.set(field, at);
  at += field.length;
  at = writeVarint(out, at, value.length);
  out.set(value, at);
  return { value: out, count: 1 };
}

/**
 * Set fields: `args[from]`, `args[from+1]` is the first field and value, and so on to the end.
 * `b` is the current hash or undefined for a new one. An existing field keeps its place; new
 * fields go last, in argument order (a field given twice: its last value, its first place).
 * Returns null without building anything when the result would exceed `maxBytes`.
 */
export function hashSet(b: Buffer | undefined, args: readonly Buffer[], from: number, maxBytes: number): HashEdit | null {
  if (b !== undefined && args.length - from === 2) return setOne(b, args[from]!, args[from + 1]!, maxBytes);
  const pairs = b === undefined ? [] : hashPairs(b);
  const index = pairs.length > 2 * SCAN_LIMIT || args.length - from > 2 * SCAN_LIMIT ? fieldIndex(pairs) : null;
  let added = 0;
  for (let i = from; i + 1 < args.length; i += 2) {
    const field = args[i]!;
    const at = findPair(pairs, index, field);
    if (at >= 0) {
      pairs[at + 1] = args[i + 1]!;
    } else {
      index?.set(field.toString('latin1'), pairs.length);
      pairs.push(field, args[i + 1]!);
      added++;
    }
  }
  if (encodedSize(pairs) > maxBytes) return null;
  return { value: encodePairs(pairs), count: added };
}

/** Remove fields `args[from..]`; the count removed, and null once the hash is empty. */
export function hashDelete(b: Buffer, args: readonly Buffer[], from: number): HashEdit {
  if (args.length - from === 1) {
    const at = locate(b, args[from]!);
    if (at < 0) return { value: b, count: 0 };
    const n = hashLength(b);
    if (n === 1) return { value: null, count: 1 };
    const bodyAt = next;
    const header = 1 + varintSize(n - 1);
    const out = Buffer.allocUnsafe(header + (b.length - bodyAt) - (pairEnd - at));
    out[0] = FORMAT;
    let o = writeVarint(out, 1, n - 1);
    o += b.copy(out, o, bodyAt, at);
    b.copy(out, o, pairEnd);
    return { value: out, count: 1 };
  }
  const pairs = hashPairs(b);
  const gone = new Set<string>();
  for (let i = from; i < args.length; i++) gone.add(args[i]!.toString('latin1'));
  const kept: Buffer[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    if (!gone.has(pairs[i]!.toString('latin1'))) kept.push(pairs[i]!, pairs[i + 1]!);
  }
  const removed = (pairs.length - kept.length) >> 1;
  if (removed === 0) return { value: b, count: 0 };
  return { value: kept.length === 0 ? null : encodePairs(kept), count: removed };
}

/** A hash from fields (latin1 byte strings) and values, in the Map's order. */
export function encodeHash(fields: ReadonlyMap<string, Uint8Array>): Buffer {
  const pairs: Uint8Array[] = [];
  for (const [f, v] of fields) pairs.push(Buffer.from(f, 'latin1'), v);
  return encodePairs(pairs);
}

/** The fields (latin1 byte strings) and values of a hash, in order; values are copies. */
export function decodeHash(b: Buffer): Map<string, Buffer> {
  const pairs = hashPairs(b);
  const out = new Map<string, Buffer>();
  for (let i = 0; i < pairs.length; i += 2) out.set(pairs[i]!.toString('latin1'), Buffer.from(pairs[i + 1]!));
  return out;
}
