/**
 * Binary codec for batches of writes between nodes (replication, hinted handoff, migration).
 *
 * Frame per record, little-endian:
 *   u16 groupLen | group utf8 | u16 keyLen | key utf8 | f64 version | f64 expiresAt |
 *   i32 valueLen (-1 = tombstone) | value bytes
 * A batch is the concatenation of frames preceded by a u32 record count.
 */
import type { Version } from '../core/types.ts';

export interface WireRecord {
  group: string;
  key: string;
  /** null = tombstone (a delete). */
  value: Buffer | null;
  version: Version;
  expiresAt: number;
}

export class CodecError extends Error {
  readonly code = 'CODEC_INVALID';
}

export function isCodecError(e: unknown): e is CodecError {
  return e instanceof CodecError;
}

const FIXED = 2 + 2 + 8 + 8 + 4;

export function encodeRecords(records: readonly WireRecord[]): Buffer {
  let size = 4;
  const groups: Buffer[] = [];
  const keys: Buffer[] = [];
  for (const r of records) {
    const g = Buffer.from(r.group, 'utf8');
    const k = Buffer.from(r.key, 'utf8');
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
    o = out.writeUInt16LE(k.length, o);
    o += k.copy(out, o);
    o = out.writeDoubleLE(r.version, o);
    o = out.writeDoubleLE(r.expiresAt, o);
    if (r.value === null) {
      o = out.writeInt32LE(-1, o);
    } else {
      o = out.writeInt32LE(r.value.length, o);
      o += r.value.copy(out, o);
    }
  });
  return out;
}

/** Decode a batch, validating every length against the buffer and the limits. */
export function decodeRecords(buf: Buffer, limits: { maxRecords: number; maxValueBytes: number }): WireRecord[] {
  const need = (o: number, n: number): void => {
    if (o + n > buf.length) throw new CodecError(`truncated batch at byte ${o}`);
  };
  need(0, 4);
  const count = buf.readUInt32LE(0);
  if (count > limits.maxRecords) throw new CodecError(`batch of ${count} records exceeds the limit of ${limits.maxRecords}`);
  const out: WireRecord[] = [];
  let o = 4;
  for (let i = 0; i < count; i++) {
    need(o, 2);
    const gl = buf.readUInt16LE(o);
    o += 2;
    need(o, gl);
    const group = buf.toString('utf8', o, o + gl);
    o += gl;
    need(o, 2);
    const kl = buf.readUInt16LE(o);
    o += 2;
    need(o, kl);
    const key = buf.toString('utf8', o, o + kl);
    o += kl;
    need(o, 20);
    const version = buf.readDoubleLE(o);
    const expiresAt = buf.readDoubleLE(o + 8);
    const vl = buf.readInt32LE(o + 16);
    o += 20;
    if (!Number.isFinite(version) || !Number.isFinite(expiresAt)) throw new CodecError(`record ${i}: bad version or expiry`);
    let value: Buffer | null = null;
    if (vl >= 0) {
      if (vl > limits.maxValueBytes) throw new CodecError(`record ${i}: value of ${vl} bytes exceeds ${limits.maxValueBytes}`);
      need(o, vl);
      value = Buffer.from(buf.subarray(o, o + vl)); // copy: the batch buffer must not be retained by the store
      o += vl;
    } else if (vl !== -1) {
      throw new CodecError(`record ${i}: bad value length ${vl}`);
    }
    out.push({ group, key, value, version, expiresAt });
  }
  if (o !== buf.length) throw new CodecError(`${buf.length - o} trailing bytes after ${count} records`);
  return out;
}
