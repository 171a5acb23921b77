/**
 * Binary codec for batches of writes between nodes (replication, hinted handoff, migration).
 *
 * Frame per record, little-endian:
 *   u16 groupLen | group utf8 | u16 keyLen | key utf8 | f64 version | f64 expiresAt |
 *   i32 valueLen (-1 = tombstone) | value bytes
 * A batch is the concatenation of frames preceded by a u32 record count.
 */
import type { Version } from '../core/types.ts';
import { keyFromBytes } from '../core/keys.ts';

export interface WireRecord {
  group: string;
  key: string;
  /** null = tombstone (a delete). */
  value: Buffer | null;
  version: Version;
  expiresAt: number;
  /** What the bytes are (cache/engine/types.ts STRING, HASH); absent = a string. */
  type?: number;
}

export class CodecError extends Error {
  readonly code = 'CODEC_INVALID';
}

export function isCodecError(e: unknown): e is CodecError {
  return e instanceof CodecError;
}

/** group length (u16), key length (u32), version and expiry (f64), type (u8), value length (i32). Keys are byte strings: latin1. */
const FIXED = 2 + 4 + 8 + 8 + 1 + 4;

/** The longest key a record may carry (cache.max_key_bytes is at most this). */
export const MAX_KEY_BYTES = 65536;

export function encodeRecords(records: readonly WireRecord[]): Buffer {
  let size = 4;
  const groups: Buffer[] = [];
  const keys: Buffer[] = [];
  for (const r of records) {
    const g = Buffer.from(r.group, 'utf8');
    const k = Buffer.from(r.key, 'latin1');
    groups.push(g);
    keys.push(k);
    size += FIXED + g.length + k.length + (r.value?.length ?? 0);
  }
  const out = Buffer.allocUnsafe(size);
  let o = out.writeUInt32LE(records.length, 0);
  records.forEach((r, i) => {
    const g = groups[i]!;
    const k = keys[i]!;
    o = out.writeUInt16LE(g.length, o);
    o += g.copy(out, o);
    o = out.writeUInt32LE(k.length, o);
    o += k.copy(out, o);
    o = out.writeDoubleLE(r.version, o);
    o = out.writeDoubleLE(r.expiresAt, o);
    o = out.writeUInt8(r.type ?? 0, o);
    if (r.value === null) {
      o = out.writeInt32LE(-1, o);
    } else {
      o = out.writeInt32LE(r.value.length, o);
      o += r.value.copy(out, o);
    }
  });
  return out;
}

/**
 * Reads a batch one record at a time, validating every length against the buffer and the limits
 * as it goes; `next()` returns undefined after the last record (and throws if bytes are left).
 * Values are copied out of the batch (a store must not pin the whole request buffer).
 * Consecutive records nearly always share their group: its name is decoded once per run.
 */
export class RecordReader {
  /** Records the batch says it holds. */
  readonly count: number;
  private readonly buf: Buffer;
  private readonly maxValueBytes: number;
  private o = 4;
  private i = 0;
  private group = '';
  private groupStart = -1;
  private groupLen = -1;

  constructor(buf: Buffer, limits: { maxRecords: number; maxValueBytes: number }) {
    if (buf.length < 4) throw new CodecError('truncated batch at byte 0');
    this.buf = buf;
    this.maxValueBytes = limits.maxValueBytes;
    this.count = buf.readUInt32LE(0);
    if (this.count > limits.maxRecords) throw new CodecError(`batch of ${this.count} records exceeds the limit of ${limits.maxRecords}`);
  }

  next(): WireRecord | undefined {
    const buf = this.buf;
    let o = this.o;
    if (this.i >= this.count) {
      if (o !== buf.length) throw new CodecError(`${buf.length - o} trailing bytes after ${this.count} records`);
      return undefined;
    }
    const i = this.i++;
    if (o + 2 > buf.length) throw new CodecError(`truncated batch at byte ${o}`);
    const gl = buf.readUInt16LE(o);
    o += 2;
    if (o + gl + 4 > buf.length) throw new CodecError(`truncated batch at byte ${o}`);
    if (gl !== this.groupLen || !sameBytes(buf, this.groupStart, o, gl)) {
      this.group = buf.toString('utf8', o, o + gl);
      this.groupLen = gl;
    }
    this.groupStart = o;
    o += gl;
    const kl = buf.readUInt32LE(o);
    o += 4;
    if (kl > MAX_KEY_BYTES || o + kl + 21 > buf.length) throw new CodecError(`truncated batch at byte ${o}`);
    const key = keyFromBytes(buf, o, o + kl);
    o += kl;
    const version = buf.readDoubleLE(o);
    const expiresAt = buf.readDoubleLE(o + 8);
    const type = buf[o + 16]!;
    const vl = buf.readInt32LE(o + 17);
    o += 21;
    if (!Number.isFinite(version) || !Number.isFinite(expiresAt)) throw new CodecError(`record ${i}: bad version or expiry`);
    let value: Buffer | null = null;
    if (vl >= 0) {
      if (vl > this.maxValueBytes) throw new CodecError(`record ${i}: value of ${vl} bytes exceeds ${this.maxValueBytes}`);
      if (o + vl > buf.length) throw new CodecError(`truncated batch at byte ${o}`);
      value = Buffer.allocUnsafe(vl); // pooled for small values
      buf.copy(value, 0, o, o + vl);
      o += vl;
    } else if (vl !== -1) {
      throw new CodecError(`record ${i}: bad value length ${vl}`);
    }
    this.o = o;
    return type === 0 ? { group: this.group, key, value, version, expiresAt } : { group: this.group, key, value, version, expiresAt, type };
  }
}

/** Decode a whole batch (see RecordReader). */
export function decodeRecords(buf: Buffer, limits: { maxRecords: number; maxValueBytes: number }): WireRecord[] {
  const reader = new RecordReader(buf, limits);
  const out: WireRecord[] = [];
  for (let r = reader.next(); r !== undefined; r = reader.next()) out.push(r);
  return out;
}

/** buf[a, a+n) equals buf[b, b+n) (short names: a loop beats Buffer#compare's call overhead). */
function sameBytes(buf: Buffer, a: number, b: number, n: number): boolean {
  if (a < 0) return false;
  for (let i = 0; i < n; i++) if (buf[a + i] !== buf[b + i]) return false;
  return true;
}
