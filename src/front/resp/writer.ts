/**
 * RESP2 reply encoding.
 *
 * Handlers return `RespReply` values (plain data, easy to assert on); `ReplyBatch` encodes them
 * in order into as few buffers as it can: small replies are copied into a shared scratch buffer,
 * large bulk payloads are passed by reference so a 1 MiB value is never copied. The server
 * writes a batch's buffers in one corked burst (one writev).
 */

export type RespReply =
  | { readonly type: 'simple'; readonly value: string }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'bulk'; readonly value: Buffer | string | null }
  | { readonly type: 'array'; readonly items: readonly RespReply[] | null };

export const OK: RespReply = Object.freeze({ type: 'simple', value: 'OK' });
export const NULL_BULK: RespReply = Object.freeze({ type: 'bulk', value: null });
export const NULL_ARRAY: RespReply = Object.freeze({ type: 'array', items: null });

export function simple(value: string): RespReply {
  return { type: 'simple', value };
}
/** An error reply; `message` starts with its code, e.g. `ERR syntax error`. */
export function error(message: string): RespReply {
  return { type: 'error', message };
}
export function integer(value: number): RespReply {
  return { type: 'integer', value };
}
export function bulk(value: Buffer | string | null): RespReply {
  return { type: 'bulk', value };
}
export function array(items: readonly RespReply[] | null): RespReply {
  return { type: 'array', items };
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
export class ReplyBatch {
  private chunks: Buffer[] = [];
  /** Allocated on first use; handed-out views of it are never overwritten (it only fills up). */
  private scratch: Buffer = EMPTY;
  /** scratch[scratchStart, scratchEnd) holds encoded bytes not yet moved to `chunks`. */
  private scratchStart = 0;
  private scratchEnd = 0;
  private bytes = 0;

  /** Encoded bytes waiting to be taken. */
  get byteLength(): number {
    return this.bytes;
  }

  get empty(): boolean {
    return this.bytes === 0;
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
        if (!Number.isSafeInteger(reply.value)) throw new RangeError(`RESP integer must be a safe integer. Got: ${reply.value}`);
        this.header(0x3a /* : */, reply.value);
        return;
      case 'bulk': {
        const v = reply.value;
        if (v === null) {
          this.header(0x24 /* $ */, -1);
          return;
        }
        const payload = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
        if (payload.length < BY_REFERENCE && payload.length + HEADER_ROOM <= this.scratch.length - this.scratchEnd) {
          // The common reply (a GET hit): header, payload and CRLF in one pass over scratch.
          this.header(0x24, payload.length);
          const s = this.scratch;
          let at = this.scratchEnd;
          s.set(payload, at);
          at += payload.length;
          s[at++] = CR;
          s[at++] = LF;
          this.bytes += at - this.scratchEnd;
          this.scratchEnd = at;
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
          this.text('*-1\r\n');
          return;
        }
        this.text(`*${items.length}\r\n`);
        for (const item of items) this.push(item);
        return;
      }
      default: {
        const impossible: never = reply;
        throw new TypeError(`unknown RESP reply ${JSON.stringify(impossible)}`);
      }
    }
  }

  /** Take the encoded bytes, in order, and start a new batch. */
  take(): Buffer[] {
    this.seal();
    const out = this.chunks;
    this.chunks = [];
    this.bytes = 0;
    return out;
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

/** Encode replies into one buffer (tests and one-off writes). */
export function encode(...replies: RespReply[]): Buffer {
  const batch = new ReplyBatch();
  for (const r of replies) batch.push(r);
  return Buffer.concat(batch.take());
}
