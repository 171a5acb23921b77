/**
 * On-disk layout of the LevelDB store. Pure: byte encoding only, no I/O.
 *
 * Keys (all bytes, compared byte-wise by LevelDB):
 *   data       'd' | group utf8 | 0x00 | u32BE partition | key bytes  -> record
 *   watermark  'w' | group utf8 | 0x00 | u32BE partition             -> f64LE version
 *   meta       'm' | name utf8                                         -> utf8 text
 *
 * The partition sits between the group and the key (rather than `${group}\0${key}`) so that
 * everything a partition holds is one contiguous key range: dropping a partition that moved away
 * is one range delete, and a partition can be read on its own. Group names never contain 0x00
 * (config NAME_PATTERN), so the first 0x00 ends the group; the key is whatever follows the fixed
 * four partition bytes, so keys may contain any byte, 0x00 included. Keys are byte strings (one
 * char per byte, SPEC §2) and are written as those bytes (latin1). Databases written before
 * keys were byte strings hold the UTF-8 bytes of text keys, which read back as the byte string
 * of that text: the same key the front ends make of it now.
 *
 * Record (value of a data key), little-endian:
 *   u8 kind | f64 version | f64 expiresAt | value bytes (values only)
 * kind: 1 = a string value, 2 = a tombstone, 0x10 + t = a value of entry type t > 0 (a hash is
 * 0x11; cache/engine/types.ts). Databases from before typed entries hold kinds 1 and 2 only.
 * For a tombstone, expiresAt is when it may be forgotten (the store's recorded time + its
 * tombstone TTL), exactly as GroupStore holds it.
 */
import type { Version } from '../core/types.ts';
import { StorageError } from './errors.ts';

/** A persisted write of one key: a value or a tombstone. */
export interface StorageRecord {
  group: string;
  key: string;
  partition: number;
  /** The bytes, or null for a tombstone. */
  value: Buffer | null;
  version: Version;
  /** Value: absolute expiry (0 = never). Tombstone: when it may be forgotten. */
  expiresAt: number;
  /** What the bytes are (cache/engine/types.ts); absent = a string. */
  type?: number;
}

export const KIND_VALUE = 1;
export const KIND_TOMBSTONE = 2;
/** A value of entry type t > 0 is kind KIND_TYPED + t. */
export const KIND_TYPED = 0x10;
/** Bytes of a record before its value. */
export const RECORD_HEADER_BYTES = 1 + 8 + 8;

const DATA = 0x64; // 'd'
const WATERMARK = 0x77; // 'w'
const META = 0x6d; // 'm'

function groupPrefix(tag: number, group: string, extra: number): { buf: Buffer; at: number } {
  const glen = Buffer.byteLength(group);
  const buf = Buffer.allocUnsafe(1 + glen + 1 + extra);
  buf[0] = tag;
  buf.write(group, 1, 'utf8');
  buf[1 + glen] = 0;
  return { buf, at: 2 + glen };
}

/** Key of a record. Throws StorageError('STORAGE_BAD_KEY') for a key that is not a byte string. */
export function dataKey(group: string, partition: number, key: string): Buffer {
  const klen = key.length;
  // latin1 would silently keep only the low byte of a wider char: refuse instead.
  for (let i = 0; i < klen; i++) {
    if (key.charCodeAt(i) > 0xff) throw new StorageError('STORAGE_BAD_KEY', `key ${JSON.stringify(key.slice(0, 40))} is not a byte string (char ${i} above 255)`);
  }
  const { buf, at } = groupPrefix(DATA, group, 4 + klen);
  buf.writeUInt32BE(partition, at);
  buf.write(key, at + 4, 'latin1');
  return buf;
}

/** [gte, lt) bounds of every record of a group. */
export function groupRange(group: string): { gte: Buffer; lt: Buffer } {
  const { buf: gte } = groupPrefix(DATA, group, 0);
  const lt = Buffer.from(gte);
  lt[lt.length - 1] = 1; // 0x00 -> 0x01: just past every key of this group
  return { gte, lt };
}

/** [gte, lt) bounds of every watermark of a group. */
export function groupWatermarkRange(group: string): { gte: Buffer; lt: Buffer } {
  const { buf: gte } = groupPrefix(WATERMARK, group, 0);
  const lt = Buffer.from(gte);
  lt[lt.length - 1] = 1;
  return { gte, lt };
}

/** [gte, lt) bounds of the records of one partition of a group. */
export function partitionRange(group: string, partition: number): { gte: Buffer; lt: Buffer } {
  const a = groupPrefix(DATA, group, 4);
  a.buf.writeUInt32BE(partition, a.at);
  if (partition === 0xffffffff) return { gte: a.buf, lt: groupRange(group).lt };
  const b = groupPrefix(DATA, group, 4);
  b.buf.writeUInt32BE(partition + 1, b.at);
  return { gte: a.buf, lt: b.buf };
}

/** [gte, lt) bounds of every record of every group. */
export const ALL_DATA: { gte: Buffer; lt: Buffer } = { gte: Buffer.from([DATA]), lt: Buffer.from([DATA + 1]) };
/** [gte, lt) bounds of every watermark. */
export const ALL_WATERMARKS: { gte: Buffer; lt: Buffer } = { gte: Buffer.from([WATERMARK]), lt: Buffer.from([WATERMARK + 1]) };

/** Group, partition and key of a data key. Throws StorageError('STORAGE_CORRUPT') when malformed. */
export function parseDataKey(buf: Uint8Array): { group: string; partition: number; key: string } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const { group, at } = parseGroup(b, DATA);
  if (b.length < at + 4) throw new StorageError('STORAGE_CORRUPT', `data key of ${b.length} bytes is truncated`);
  return { group, partition: b.readUInt32BE(at), key: b.toString('latin1', at + 4) };
}

function parseGroup(b: Buffer, tag: number): { group: string; at: number } {
  if (b[0] !== tag) throw new StorageError('STORAGE_CORRUPT', `key tag ${b[0]} where ${tag} was expected`);
  const nul = b.indexOf(0, 1);
  if (nul < 0) throw new StorageError('STORAGE_CORRUPT', 'key without a group terminator');
  return { group: b.toString('utf8', 1, nul), at: nul + 1 };
}

/** Encode a record's value. The value bytes are copied once, into the encoded buffer. */
export function encodeRecord(rec: { value: Buffer | null; version: Version; expiresAt: number; type?: number }): Buffer {
  const vlen = rec.value === null ? 0 : rec.value.length;
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + vlen);
  const type = rec.type ?? 0;
  if (!(Number.isInteger(type) && type >= 0 && type < 0x100 - KIND_TYPED)) throw new StorageError('STORAGE_CORRUPT', `entry type ${type} cannot be stored`);
  out[0] = rec.value === null ? KIND_TOMBSTONE : type === 0 ? KIND_VALUE : KIND_TYPED + type;
  out.writeDoubleLE(rec.version, 1);
  out.writeDoubleLE(rec.expiresAt, 9);
  if (rec.value !== null) rec.value.copy(out, RECORD_HEADER_BYTES);
  return out;
}

/**
 * Decode a record's value. The returned value is a view into `buf` (no copy): pass a buffer
 * nobody reuses (LevelDB hands out a fresh one per entry).
 */
export function decodeRecord(buf: Uint8Array): { value: Buffer | null; version: Version; expiresAt: number; type?: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < RECORD_HEADER_BYTES) throw new StorageError('STORAGE_CORRUPT', `record of ${b.length} bytes is truncated`);
  const kind = b[0]!;
  const version = b.readDoubleLE(1);
  const expiresAt = b.readDoubleLE(9);
  if (!Number.isFinite(version) || !Number.isFinite(expiresAt)) throw new StorageError('STORAGE_CORRUPT', 'record with a bad version or expiry');
  if (kind === KIND_TOMBSTONE) {
    if (b.length !== RECORD_HEADER_BYTES) throw new StorageError('STORAGE_CORRUPT', 'tombstone with trailing bytes');
    return { value: null, version, expiresAt };
  }
  if (kind > KIND_TYPED) return { value: b.subarray(RECORD_HEADER_BYTES), version, expiresAt, type: kind - KIND_TYPED };
  if (kind !== KIND_VALUE) throw new StorageError('STORAGE_CORRUPT', `unknown record kind ${kind}`);
  return { value: b.subarray(RECORD_HEADER_BYTES), version, expiresAt };
}

export function watermarkKey(group: string, partition: number): Buffer {
  const { buf, at } = groupPrefix(WATERMARK, group, 4);
  buf.writeUInt32BE(partition, at);
  return buf;
}

export function parseWatermarkKey(buf: Uint8Array): { group: string; partition: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const { group, at } = parseGroup(b, WATERMARK);
  if (b.length !== at + 4) throw new StorageError('STORAGE_CORRUPT', 'malformed watermark key');
  return { group, partition: b.readUInt32BE(at) };
}

export function encodeVersion(v: Version): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeDoubleLE(v, 0);
  return out;
}

export function decodeVersion(buf: Uint8Array): Version {
  if (buf.byteLength !== 8) throw new StorageError('STORAGE_CORRUPT', `watermark of ${buf.byteLength} bytes`);
  return Buffer.from(buf.buffer, buf.byteOffset, 8).readDoubleLE(0);
}

export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.from([META]), Buffer.from(name, 'utf8')]);
}

/**
 * Whether a persisted record can be deleted from disk: a tombstone past the time the store would
 * have forgotten it, or a value expired for at least a tombstone TTL (the store would have turned
 * it into a tombstone at expiry and forgotten that tombstone by now).
 */
export function isDead(rec: { value: Buffer | null; expiresAt: number }, now: number, tombstoneTtlMs: number): boolean {
  if (rec.value === null) return rec.expiresAt <= now;
  return rec.expiresAt !== 0 && rec.expiresAt + tombstoneTtlMs <= now;
}
