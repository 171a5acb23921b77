/**
 * The byte layout of node-to-node message bodies: a writer that appends fields and a reader that
 * takes them back in the same order, checking every length against the buffer. Little-endian.
 *
 *   u8, u32, f64         fixed width
 *   str                  u32 length + bytes, decoded latin1: keys are byte strings (one char per
 *                        byte, see src/core/keys.ts) and ids and group names are ASCII
 *   bytes / nullable     u32 length + bytes; nullable writes 0xffffffff for null
 *   records              a record batch in the codec's frame format (codec.ts), length-prefixed
 *
 * A malformed body throws CodecError, which the peer server answers with 400.
 */
import { CodecError, RecordReader, encodeRecords, type WireRecord } from './codec.ts';
import { keyFromBytes } from '../core/keys.ts';

const NULL_LEN = 0xffffffff;

export class BodyWriter {
  private buf: Buffer;
  private o = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private room(n: number): void {
    if (this.o + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.o + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.o);
    this.buf = next;
  }

  u8(n: number): this {
    this.room(1);
    this.buf[this.o++] = n;
    return this;
  }

  bool(b: boolean): this {
    return this.u8(b ? 1 : 0);
  }

  u32(n: number): this {
    this.room(4);
    this.o = this.buf.writeUInt32LE(n, this.o);
    return this;
  }

  f64(n: number): this {
    this.room(8);
    this.o = this.buf.writeDoubleLE(n, this.o);
    return this;
  }

  str(s: string): this {
    const n = s.length;
    this.room(4 + n);
    this.o = this.buf.writeUInt32LE(n, this.o);
    this.o += this.buf.write(s, this.o, n, 'latin1');
    return this;
  }

  bytes(b: Uint8Array): this {
    this.room(4 + b.length);
    this.o = this.buf.writeUInt32LE(b.length, this.o);
    this.buf.set(b, this.o);
    this.o += b.length;
    return this;
  }

  nullable(b: Uint8Array | null): this {
    if (b === null) return this.u32(NULL_LEN);
    return this.bytes(b);
  }

  records(rs: readonly WireRecord[]): this {
    return this.bytes(encodeRecords(rs));
  }

  list<T>(items: readonly T[], each: (w: this, item: T) => void): this {
    this.u32(items.length);
    for (const item of items) each(this, item);
    return this;
  }

  /** The bytes written (a view of the internal buffer: do not write after taking it). */
  done(): Buffer {
    return this.buf.subarray(0, this.o);
  }
}

export class BodyReader {
  private readonly buf: Buffer;
  private o = 0;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  private need(n: number): void {
    if (this.o + n > this.buf.length) throw new CodecError(`truncated message body at byte ${this.o}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.o++]!;
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) throw new CodecError(`bad boolean ${b} at byte ${this.o - 1}`);
    return b === 1;
  }

  u32(): number {
    this.need(4);
    const n = this.buf.readUInt32LE(this.o);
    this.o += 4;
    return n;
  }

  f64(): number {
    this.need(8);
    const n = this.buf.readDoubleLE(this.o);
    this.o += 8;
    if (!Number.isFinite(n)) throw new CodecError(`bad number at byte ${this.o - 8}`);
    return n;
  }

  str(max = 1 << 20): string {
    const n = this.u32();
    if (n > max) throw new CodecError(`string of ${n} bytes exceeds ${max}`);
    this.need(n);
    const s = keyFromBytes(this.buf, this.o, this.o + n);
    this.o += n;
    return s;
  }

  /** A copy of the next byte field (the request buffer is not kept alive by what is stored). */
  bytes(max: number): Buffer {
    const n = this.u32();
    if (n > max) throw new CodecError(`field of ${n} bytes exceeds ${max}`);
    this.need(n);
    const out = Buffer.allocUnsafe(n);
    this.buf.copy(out, 0, this.o, this.o + n);
    this.o += n;
    return out;
  }

  /** The next byte field as a view of the body (for a field decoded at once and not kept). */
  view(max: number): Buffer {
    const n = this.u32();
    if (n > max) throw new CodecError(`field of ${n} bytes exceeds ${max}`);
    this.need(n);
    const out = this.buf.subarray(this.o, this.o + n);
    this.o += n;
    return out;
  }

  nullable(max: number): Buffer | null {
    const n = this.buf.length >= this.o + 4 ? this.buf.readUInt32LE(this.o) : -1;
    if (n === NULL_LEN) {
      this.o += 4;
      return null;
    }
    return this.bytes(max);
  }

  records(limits: { maxRecords: number; maxValueBytes: number }): WireRecord[] {
    const n = this.u32();
    this.need(n);
    const reader = new RecordReader(this.buf.subarray(this.o, this.o + n), limits);
    this.o += n;
    const out: WireRecord[] = [];
    for (let r = reader.next(); r !== undefined; r = reader.next()) out.push(r);
    return out;
  }

  list<T>(max: number, each: (r: this) => T): T[] {
    const n = this.u32();
    if (n > max) throw new CodecError(`list of ${n} items exceeds ${max}`);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(each(this));
    return out;
  }

  /** Whether every byte was read (a body that ends before an optional field). */
  get atEnd(): boolean {
    return this.o === this.buf.length;
  }

  /** Throws unless every byte was read. */
  end(): void {
    if (this.o !== this.buf.length) throw new CodecError(`${this.buf.length - this.o} trailing bytes in message body`);
  }
}
