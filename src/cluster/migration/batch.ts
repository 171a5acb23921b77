/**
 * The migration data path's wire batches, without per-record garbage.
 *
 * The frame format is the transport codec's (src/peer/codec.ts: u32 count, then per record
 * u16 groupLen | group | u16 keyLen | key | f64 version | f64 expiresAt | i32 valueLen (-1 =
 * tombstone) | value), so a batch decodes with decodeRecords and older receivers understand it.
 * What differs is how it is built: encodeRecords wants an array of records and makes a Buffer
 * per group and key before copying them; {@link BatchEncoder} writes each record straight into
 * one preallocated buffer as the source walks a partition (keys with Buffer#write, values with
 * one memcpy), and reports when the buffer is full so the caller sends it and starts the next.
 *
 * {@link applyBatch} is the receiving half: it reads a batch record by record (RecordReader, the
 * codec's own decoder) and applies it to the node's data in slices (LocalData.apply: last writer wins, the hybrid clock moves past every version), handing
 * the event loop back between slices so a large batch never stalls heartbeats.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { CodecError, MAX_KEY_BYTES, RecordReader, type WireRecord } from '../../peer/codec.ts';
import type { LocalData } from '../local-data.ts';

/** First buffer of a batch; it grows up to the capacity as records are added. */
const START_BYTES = 16 * 1024;

/** Bytes of a record frame besides its group, key and value. */
export const FRAME_OVERHEAD = 2 + 4 + 8 + 8 + 1 + 4;

export interface BatchEncoderOptions {
  /** Bytes of the buffer a batch is built in; a record larger than this gets a batch of its own. Required. */
  capacity: number;
  /** Records per batch at most (config migration.batch_size). Default unbounded. */
  maxRecords?: number;
}

export class BatchEncoder {
  private readonly capacity: number;
  private readonly maxRecords: number;
  private buf: Buffer;
  private offset = 4;
  private records = 0;
  // group name -> its UTF-8 bytes (a handful of groups; encoded once)
  private readonly groupBytes = new Map<string, Buffer>();

  constructor(opts: BatchEncoderOptions) {
    if (!(opts.capacity >= 64)) throw new RangeError(`BatchEncoder capacity must be >= 64. Got: ${opts.capacity}`);
    this.capacity = Math.floor(opts.capacity);
    this.maxRecords = opts.maxRecords ?? Number.MAX_SAFE_INTEGER;
    this.buf = Buffer.allocUnsafe(Math.min(this.capacity, START_BYTES));
  }

  /** Records in the batch being built. */
  get count(): number {
    return this.records;
  }

  /** Bytes of the batch being built. */
  get bytes(): number {
    return this.offset;
  }

  /** True when no further record may be added (the record cap is reached). */
  get full(): boolean {
    return this.records >= this.maxRecords;
  }

  /**
   * Append one record. Returns false, adding nothing, when it does not fit: the caller takes the
   * batch and adds it again (an empty batch always takes a record, growing past capacity if the
   * record alone is larger).
   */
  add(group: string, key: string, value: Buffer | null, version: number, expiresAt: number, type = 0): boolean {
    let g = this.groupBytes.get(group);
    if (g === undefined) this.groupBytes.set(group, (g = Buffer.from(group, 'utf8')));
    // keys are byte strings: one byte per char
    const need = FRAME_OVERHEAD + g.length + key.length + (value === null ? 0 : value.length);
    if (this.records >= this.maxRecords) return false;
    if (this.offset + need > this.buf.length) {
      if (this.offset + need <= this.capacity) {
        // grow within the capacity: a batch capped by its record count stays small
        const grown = Buffer.allocUnsafe(Math.min(this.capacity, Math.max(2 * this.buf.length, this.offset + need)));
        this.buf.copy(grown, 0, 0, this.offset);
        this.buf = grown;
      } else if (this.records > 0) {
        return false;
      } else {
        this.buf = Buffer.allocUnsafe(4 + need); // one oversized record: a batch of its own
      }
    }
    const b = this.buf;
    let o = this.offset;
    b.writeUInt16LE(g.length, o);
    o += 2;
    o += g.copy(b, o);
    const kl = b.write(key, o + 4, 'latin1');
    if (kl > MAX_KEY_BYTES) throw new CodecError(`key of ${kl} bytes does not fit a frame`);
    b.writeUInt32LE(kl, o);
    o += 4 + kl;
    b.writeDoubleLE(version, o);
    b.writeDoubleLE(expiresAt, o + 8);
    b[o + 16] = type;
    o += 17;
    if (value === null) {
      b.writeInt32LE(-1, o);
      o += 4;
    } else {
      b.writeInt32LE(value.length, o);
      o += 4;
      o += value.copy(b, o);
    }
    this.offset = o;
    this.records++;
    return true;
  }

  /** The batch built so far (undefined when empty); the encoder starts a new one. */
  take(): Buffer | undefined {
    if (this.records === 0) return undefined;
    this.buf.writeUInt32LE(this.records, 0);
    const out = this.buf.subarray(0, this.offset);
    // the next batch most likely needs what this one did: start there, not at the capacity
    this.buf = Buffer.allocUnsafe(Math.min(this.capacity, Math.max(START_BYTES, this.offset)));
    this.offset = 4;
    this.records = 0;
    return out;
  }
}

export interface ApplyLimits {
  maxRecords: number;
  maxValueBytes: number;
  /** Records applied between two turns of the event loop. Default 4096. */
  slice?: number;
  /**
   * Called for every record that won (is now held) and carries a value, once it is applied:
   * lets the receiver sum what it took while taking it. Default none (then the records of a
   * slice are applied in one LocalData.apply call).
   */
  onApplied?: (group: string, key: string, version: number) => void;
  /**
   * Held around each slice (the node's HeldClock): one clock reading for a slice's expiry
   * decisions instead of one per record (`Date.now` was 4.5% of applying a migration batch,
   * bench/profile of the receiver). A slice is synchronous, so nothing else sees the reading.
   */
  clockHold?: { hold(): void; release(): void };
}

/**
 * Decode a batch and apply it to `local`, a slice at a time. Validates every length against the
 * buffer and the limits before applying anything of a slice. Values are copied out of the batch
 * (the store must not pin the whole request buffer). Resolves to { received, applied }.
 */
export async function applyBatch(buf: Buffer, local: LocalData, limits: ApplyLimits): Promise<{ received: number; applied: number }> {
  const reader = new RecordReader(buf, limits);
  const slice = Math.max(1, limits.slice ?? 4096);
  let applied = 0;
  const recs: WireRecord[] = [];
  for (let r = reader.next(); r !== undefined; r = reader.next()) {
    recs.push(r);
    if (recs.length >= slice) {
      applied += applySlice(local, recs, limits);
      recs.length = 0;
      await nextTurn();
    }
  }
  applied += applySlice(local, recs, limits);
  return { received: reader.count, applied };
}

function applySlice(local: LocalData, recs: WireRecord[], limits: ApplyLimits): number {
  const hold = limits.clockHold;
  if (hold === undefined || recs.length === 0) return applyEach(local, recs, limits.onApplied);
  hold.hold();
  try {
    return applyEach(local, recs, limits.onApplied);
  } finally {
    hold.release();
  }
}

function applyEach(local: LocalData, recs: WireRecord[], onApplied: ApplyLimits['onApplied']): number {
  if (onApplied === undefined) return local.apply(recs);
  let applied = 0;
  for (const r of recs) {
    if (!local.applyOne(r)) continue;
    applied++;
    if (r.value !== null) onApplied(r.group, r.key, r.version);
  }
  return applied;
}
