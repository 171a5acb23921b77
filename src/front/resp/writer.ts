/**
 * RESP2 and RESP3 reply encoding.
 *
 * Handlers return `RespReply` values (plain data, easy to assert on), built once whatever the
 * connection speaks; `ReplyBatch` encodes them for its connection's protocol (`protocol`: 2 until
 * HELLO 3) in order into as few buffers as it can: small replies are copied into a shared scratch
 * buffer, large bulk payloads are passed by reference so a 1 MiB value is never copied. The
 * server writes a batch's buffers in one corked burst (one writev).
 *
 * The RESP3 types and what a RESP2 connection gets instead (what Redis 7 sends, checked against
 * redis-server 7.0 in writer.test.ts):
 *
 *   reply                RESP3                         RESP2
 *   null bulk / array    `_`                           `$-1` / `*-1`
 *   map                  `%n` then n keys and values   `*2n`, keys and values flattened
 *   set                  `~n`                          `*n`
 *   double               `,1.5` `,inf` `,-inf` `,nan`  the same text as a bulk string
 *   boolean              `#t` `#f`                     `:1` `:0`
 *   big number           `(123...`                     the digits as a bulk string
 *   verbatim string      `=n` `txt:` text              the text as a bulk string
 *   push                 `>n`                          `*n` (what Redis sends pub/sub messages as)
 *   attribute            `|n` pairs, then the value    the value alone
 *
 * Doubles are formatted as Redis 7.0's addReplyDouble does: printf's `%.17g` (so 0.1 is
 * `0.10000000000000001` and 3 is `3`), and `inf` / `-inf` / `nan`.
 */

import type { Reply, ReplyPair } from '../../cache/reply.ts';
import type { ValueSink, ValueSource } from '../../cache/store.ts';
import { OK, NULL_BULK, NULL_ARRAY, EMPTY_ARRAY, TRUE, FALSE, simple, error, integer, bulk, array, map, mapOf, setOf, double, boolean, bigNumber, verbatim, pushMessage, withAttributes } from '../../cache/reply.ts';

export { OK, NULL_BULK, NULL_ARRAY, EMPTY_ARRAY, TRUE, FALSE, simple, error, integer, bulk, array, map, mapOf, setOf, double, boolean, bigNumber, verbatim, pushMessage, withAttributes };
/** A reply (cache/reply.ts). */
export type RespReply = Reply;
/** A key and its value in a map or an attribute. */
export type RespPair = ReplyPair;

/** The protocol a connection speaks: 2 until it sends HELLO 3. */
export type RespProtocol = 2 | 3;

/**
 * A double as Redis 7.0 writes it: printf's `%.17g`, with `inf`, `-inf` and `nan`. `%.17g`
 * prints 17 significant digits without trailing zeros, in exponent form (`1e+17`, two exponent
 * digits at least) when the exponent is below -4 or at least 17.
 */
export function formatDouble(d: number): string {
  if (Number.isNaN(d)) return 'nan';
  if (d === Infinity) return 'inf';
  if (d === -Infinity) return '-inf';
  if (d === 0) return Object.is(d, -0) ? '-0' : '0';
  // toExponential(16) is correctly rounded to 17 significant digits, as printf is.
  const text = d.toExponential(16);
  const e = text.indexOf('e');
  const exponent = Number(text.slice(e + 1));
  const negative = d < 0;
  const digits = text.slice(negative ? 1 : 0, e).replace('.', '');
  let out: string;
  if (exponent < -4 || exponent >= 17) {
    const mantissa = stripZeros(`${digits[0]}.${digits.slice(1)}`);
    out = `${mantissa}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  } else if (exponent >= 0) {
    out = stripZeros(`${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`);
  } else {
    out = stripZeros(`0.${'0'.repeat(-exponent - 1)}${digits}`);
  }
  return negative ? `-${out}` : out;
}

/** Drop the trailing zeros of a fraction, and its point when nothing is left after it. */
function stripZeros(s: string): string {
  let end = s.length;
  while (s.charCodeAt(end - 1) === 0x30) end--;
  if (s.charCodeAt(end - 1) === 0x2e) end--;
  return s.slice(0, end);
}

/**
 * Simple strings and errors are one line: CR and LF inside would end the reply early and
 * desynchronise the client, so they become spaces (what Redis does to error text).
 */
function oneLine(s: string): string {
  return /[\r\n]/.test(s) ? s.replace(/[\r\n]/g, ' ') : s;
}

/** Bulk payloads at least this big are written by reference instead of copied. */
const BY_REFERENCE = 2 * 1024;
/** Small per connection on purpose: an idle connection holds at most one scratch buffer. */
const SCRATCH = 8 * 1024;
const EMPTY = Buffer.alloc(0);
const CR = 13;
const LF = 10;
/** Room a header needs at most: prefix, '-', 16 digits of a safe integer, CRLF. */
const HEADER_ROOM = 24;
/** Simple strings and errors up to this many characters are written without encoding a string. */
const SHORT_LINE = 128;

/**
 * Ordered replies of one connection, encoded and waiting for a write. Not thread-safe in any
 * sense that matters: one connection, one batch.
 */
export class ReplyBatch implements ValueSink {
  /**
   * The protocol replies are encoded for. Switched by the server when HELLO changes it; the
   * HELLO reply itself is encoded in the new protocol, as Redis does.
   */
  protocol: RespProtocol;
  private chunks: Buffer[] = [];
  /**
   * Allocated on first use; handed-out views of it are never overwritten (it only fills up)
   * until the caller says with reuse() that they are done with.
   */
  private scratch: Buffer = EMPTY;
  /** scratch[scratchStart, scratchEnd) holds encoded bytes not yet moved to `chunks`. */
  private scratchStart = 0;
  private scratchEnd = 0;
  private bytes = 0;

  constructor(protocol: RespProtocol = 2) {
    if (protocol !== 2 && protocol !== 3) throw new RangeError(`RESP protocol must be 2 or 3. Got: ${String(protocol)}`);
    this.protocol = protocol;
  }

  /** Encoded bytes waiting to be taken. */
  get byteLength(): number {
    return this.bytes;
  }

  get empty(): boolean {
    return this.bytes === 0;
  }

  /**
   * ValueSink: a bulk string reply of a value read straight from the store (GET's hit, no
   * Buffer of its own). The same bytes in RESP2 and RESP3.
   */
  fromSource(length: number, source: ValueSource): void {
    if (length + HEADER_ROOM > this.scratch.length - this.scratchEnd) {
      if (length >= BY_REFERENCE) {
        const copy = Buffer.allocUnsafe(length);
        source.copyValueTo(copy, 0);
        this.fromBuffer(copy);
        return;
      }
      this.renewScratch(length + HEADER_ROOM);
    }
    this.header(0x24 /* $ */, length);
    source.copyValueTo(this.scratch, this.scratchEnd);
    this.endBulk(length);
  }

  /** ValueSink: a bulk string reply of a value held as a Buffer. */
  fromBuffer(value: Buffer): void {
    this.push(bulk(value));
  }

  push(reply: RespReply): void {
    switch (reply.type) {
      case 'simple':
        this.line(0x2b /* + */, reply.value);
        return;
      case 'error':
        this.line(0x2d /* - */, reply.message);
        return;
      case 'integer':
        if (typeof reply.value === 'bigint') {
          if (reply.value < -(2n ** 63n) || reply.value >= 2n ** 63n) throw new RangeError(`RESP integer must fit in 64 bits. Got: ${reply.value}`);
          this.line(0x3a /* : */, reply.value.toString());
          return;
        }
        if (!Number.isSafeInteger(reply.value)) throw new RangeError(`RESP integer must be a safe integer. Got: ${reply.value}`);
        this.header(0x3a /* : */, reply.value);
        return;
      case 'bulk': {
        const v = reply.value;
        if (v === null) {
          if (this.protocol === 3) this.nullReply();
          else this.header(0x24 /* $ */, -1);
          return;
        }
        const payload = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
        if (payload.length < BY_REFERENCE && payload.length + HEADER_ROOM <= this.scratch.length - this.scratchEnd) {
          // The common reply (a GET hit): header, payload and CRLF in one pass over scratch.
          this.header(0x24, payload.length);
          this.scratch.set(payload, this.scratchEnd);
          this.endBulk(payload.length);
          return;
        }
        this.header(0x24, payload.length);
        this.raw(payload);
        this.text('\r\n');
        return;
      }
      case 'array': {
        const items = reply.items;
        if (items === null) {
          if (this.protocol === 3) this.nullReply();
          else this.header(0x2a /* * */, -1);
          return;
        }
        this.header(0x2a, items.length);
        for (const item of items) this.push(item);
        return;
      }
      case 'map': {
        const entries = reply.entries;
        if (this.protocol === 3) this.header(0x25 /* % */, entries.length);
        else this.header(0x2a, 2 * entries.length);
        for (const [k, v] of entries) {
          this.push(k);
          this.push(v);
        }
        return;
      }
      case 'set':
      case 'push': {
        const items = reply.items;
        this.header(this.protocol === 2 ? 0x2a : reply.type === 'set' ? 0x7e /* ~ */ : 0x3e /* > */, items.length);
        for (const item of items) this.push(item);
        return;
      }
      case 'double': {
        const text = formatDouble(reply.value);
        if (this.protocol === 3) this.line(0x2c /* , */, text);
        else this.push(bulk(text));
        return;
      }
      case 'boolean':
        if (this.protocol === 3) this.line(0x23 /* # */, reply.value ? 't' : 'f');
        else this.header(0x3a, reply.value ? 1 : 0);
        return;
      case 'bignum':
        if (this.protocol === 3) this.line(0x28 /* ( */, reply.value);
        else this.push(bulk(reply.value));
        return;
      case 'verbatim': {
        if (this.protocol === 2) {
          this.push(bulk(reply.value));
          return;
        }
        const payload = typeof reply.value === 'string' ? Buffer.from(reply.value, 'utf8') : reply.value;
        // `=` length, then `txt:` and the text: the length counts the four format bytes.
        this.header(0x3d /* = */, payload.length + 4);
        this.text(`${reply.format}:`);
        this.raw(payload);
        this.text('\r\n');
        return;
      }
      case 'attribute':
        if (this.protocol === 3) {
          this.header(0x7c /* | */, reply.attributes.length);
          for (const [k, v] of reply.attributes) {
            this.push(k);
            this.push(v);
          }
        }
        this.push(reply.value);
        return;
      default: {
        const impossible: never = reply;
        throw new TypeError(`unknown RESP reply ${JSON.stringify(impossible)}`);
      }
    }
  }

  /** RESP3's null, `_`, whether it stands for a missing bulk or a missing array. */
  private nullReply(): void {
    if (HEADER_ROOM > this.scratch.length - this.scratchEnd) this.renewScratch(HEADER_ROOM);
    const s = this.scratch;
    const at = this.scratchEnd;
    s[at] = 0x5f; // _
    s[at + 1] = CR;
    s[at + 2] = LF;
    this.scratchEnd = at + 3;
    this.bytes += 3;
  }

  /**
   * The views every take() so far handed out are done with (the socket has written them): the
   * scratch is filled from its start again instead of replaced. Without it a connection took a
   * new 8 KiB buffer every few replies at pipeline 16, ~60 MB/s of ArrayBuffers at 500k GET/s,
   * whose external memory drove a full GC about every second (--trace-gc; perf: mark-compact
   * and ArrayBuffer sweeping ~10% of a GET's CPU). Only when nothing is waiting to be taken.
   */
  reuse(): void {
    if (this.chunks.length > 0 || this.scratchEnd > this.scratchStart) return;
    this.scratchStart = 0;
    this.scratchEnd = 0;
  }

  /** Take the encoded bytes, in order, and start a new batch. */
  take(): Buffer[] {
    this.seal();
    const out = this.chunks;
    this.chunks = [];
    this.bytes = 0;
    return out;
  }

  /** A bulk payload of `length` bytes was just written into scratch at scratchEnd: its CRLF, and count it. */
  private endBulk(length: number): void {
    const s = this.scratch;
    let at = this.scratchEnd + length;
    s[at++] = CR;
    s[at++] = LF;
    this.bytes += at - this.scratchEnd;
    this.scratchEnd = at;
  }

  /**
   * `prefix`, the decimal `n` and CRLF, written byte by byte: cheaper than building the string
   * and encoding it for the few bytes a header has.
   */
  private header(prefix: number, n: number): void {
    if (HEADER_ROOM > this.scratch.length - this.scratchEnd) this.renewScratch(HEADER_ROOM);
    const s = this.scratch;
    let at = this.scratchEnd;
    s[at++] = prefix;
    if (n < 0) {
      s[at++] = 0x2d;
      n = -n;
    }
    if (n < 10) {
      s[at++] = 0x30 + n;
    } else {
      // Digits are produced backwards: count them first.
      let digits = 0;
      for (let m = n; m >= 1; m = Math.floor(m / 10)) digits++;
      for (let i = at + digits - 1; i >= at; i--) {
        s[i] = 0x30 + (n % 10);
        n = Math.floor(n / 10);
      }
      at += digits;
    }
    s[at++] = CR;
    s[at++] = LF;
    this.bytes += at - this.scratchEnd;
    this.scratchEnd = at;
  }

  /**
   * `prefix`, the text made one line (see oneLine) and CRLF. Short ASCII text (OK, PONG, most
   * errors) is written byte by byte, CR and LF turned into spaces on the way.
   */
  private line(prefix: number, text: string): void {
    const n = text.length;
    if (n <= SHORT_LINE && n + 3 <= this.scratch.length - this.scratchEnd) {
      const s = this.scratch;
      const from = this.scratchEnd;
      let at = from;
      s[at++] = prefix;
      let i = 0;
      for (; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c >= 0x80) break;
        s[at++] = c === CR || c === LF ? 0x20 : c;
      }
      if (i === n) {
        s[at++] = CR;
        s[at++] = LF;
        this.bytes += at - from;
        this.scratchEnd = at;
        return;
      }
      // Not ASCII: nothing was counted yet, so encoding it the general way just overwrites.
    }
    this.text(String.fromCharCode(prefix) + oneLine(text) + '\r\n');
  }

  private text(s: string): void {
    // Replies' framing is short; a long simple string or error is rare enough to allocate.
    if (s.length * 3 > this.scratch.length - this.scratchEnd) {
      if (s.length * 3 > SCRATCH) {
        this.raw(Buffer.from(s, 'utf8'));
        return;
      }
      this.renewScratch(s.length * 3);
    }
    const n = this.scratch.write(s, this.scratchEnd, 'utf8');
    this.scratchEnd += n;
    this.bytes += n;
  }

  private raw(b: Buffer): void {
    if (b.length >= BY_REFERENCE) {
      this.seal();
      this.chunks.push(b);
      this.bytes += b.length;
      return;
    }
    if (b.length > this.scratch.length - this.scratchEnd) this.renewScratch(b.length);
    this.scratch.set(b, this.scratchEnd);
    this.scratchEnd += b.length;
    this.bytes += b.length;
  }

  /** Move the scratch bytes written so far into `chunks` (a view, not a copy). */
  private seal(): void {
    if (this.scratchEnd > this.scratchStart) {
      this.chunks.push(this.scratch.subarray(this.scratchStart, this.scratchEnd));
      this.scratchStart = this.scratchEnd;
    }
  }

  /**
   * The views handed out keep the old scratch alive until written; start a fresh one. Bytes
   * not handed out yet move along, so a batch that outgrows the scratch still goes out as one
   * buffer (one write instead of a corked writev) while it fits in one.
   */
  private renewScratch(need: number): void {
    const pending = this.scratchEnd - this.scratchStart;
    const next = Buffer.allocUnsafe(SCRATCH);
    if (pending > 0 && pending <= SCRATCH / 2 && pending + need <= SCRATCH) {
      next.set(this.scratch.subarray(this.scratchStart, this.scratchEnd), 0);
      this.scratchEnd = pending;
    } else {
      this.seal();
      this.scratchEnd = 0;
    }
    this.scratch = next;
    this.scratchStart = 0;
  }
}

/** Encode replies as RESP2 into one buffer (tests and one-off writes). */
export function encode(...replies: RespReply[]): Buffer {
  return encodeAs(2, ...replies);
}

/** Encode replies for `protocol` into one buffer. */
export function encodeAs(protocol: RespProtocol, ...replies: RespReply[]): Buffer {
  const batch = new ReplyBatch(protocol);
  for (const r of replies) batch.push(r);
  return Buffer.concat(batch.take());
}
