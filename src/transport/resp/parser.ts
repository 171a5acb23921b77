/**
 * Bounded, incremental RESP2 request parser.
 *
 * Feed it socket chunks in any split; pull complete commands with next(). It accepts what a
 * Redis server accepts from clients: multibulk requests (`*N\r\n$L\r\n...`, what redis-cli and
 * ioredis send) and inline requests (`PING\r\n`, what telnet users type).
 *
 * Every limit is checked before the bytes are kept, so a peer can make the parser hold at most
 * `maxBufferedBytes`. A malformed or over-limit request puts the parser into a terminal failed
 * state; the server answers `-ERR Protocol error: ...` and closes the connection, as Redis does.
 * Nothing here throws on input.
 *
 * Bytes live in one storage buffer with a read offset (`start`) and a write offset (`end`), so a
 * large request arriving in many chunks is copied once, not re-concatenated per chunk; the
 * consumed prefix is reclaimed when space runs out. A multibulk request keeps its progress
 * (arguments read so far) between feeds, so nothing is rescanned.
 */

/** Limits of one connection's parser. */
export interface RespParserOptions {
  /** Largest bulk string (one argument) accepted, in bytes. Default 2 MiB. */
  maxBulkBytes?: number;
  /** Largest number of arguments in one multibulk request. Default 65536. */
  maxArrayLength?: number;
  /** Longest inline request line, in bytes. Default 64 KiB (Redis's PROTO_INLINE_MAX_SIZE). */
  maxInlineBytes?: number;
  /**
   * Most bytes held at once: the unread input plus the arguments of the request being read.
   * Default 16 MiB; must be at least maxBulkBytes + 64 (one maximal argument with its framing).
   */
  maxBufferedBytes?: number;
}

/** Why the parser gave up. The message is Redis's where Redis has one. */
export class RespProtocolError extends Error {
  readonly code = 'RESP_PROTOCOL' as const;
  constructor(message: string) {
    super(message);
    this.name = 'RespProtocolError';
  }
}

export function isRespProtocolError(err: unknown): err is RespProtocolError {
  return err instanceof RespProtocolError;
}

/** One step of parsing: a whole command, "feed me more", or the terminal failure. */
export type ParseStep =
  | { kind: 'command'; args: Buffer[] }
  | { kind: 'incomplete' }
  | { kind: 'error'; error: RespProtocolError };

const INCOMPLETE: ParseStep = Object.freeze({ kind: 'incomplete' });

const CR = 13;
const LF = 10;
/** `*` + sign + 19 digits + CRLF fits easily; a longer header line is garbage. */
const MAX_HEADER_LINE = 32;
const INITIAL_STORAGE = 16 * 1024;
const SHRINK_ABOVE = 256 * 1024;

/** Multibulk progress: how many arguments are expected, those read so far, and their bytes. */
interface Multibulk {
  expected: number;
  args: Buffer[];
  argBytes: number;
  /** Length of the bulk whose payload is awaited, or -1 while its `$L` line is awaited. */
  bulkLen: number;
}

export class RespParser {
  readonly maxBulkBytes: number;
  readonly maxArrayLength: number;
  readonly maxInlineBytes: number;
  readonly maxBufferedBytes: number;

  private storage: Buffer = Buffer.allocUnsafe(INITIAL_STORAGE);
  /** storage[start, end) is unread input. */
  private start = 0;
  private end = 0;
  /** The multibulk request being read, if any. */
  private mb: Multibulk | null = null;
  /** Bytes after `start` already searched for the LF ending an inline request. */
  private inlineScanned = 0;
  /** Set by feed() when input was refused; reported once the buffered commands are read. */
  private overflow = false;
  /** Terminal state: once set every next() returns it and input is dropped. */
  private failure: RespProtocolError | null = null;

  constructor(opts: RespParserOptions = {}) {
    this.maxBulkBytes = positiveInt('maxBulkBytes', opts.maxBulkBytes ?? 2 * 1024 * 1024);
    this.maxArrayLength = positiveInt('maxArrayLength', opts.maxArrayLength ?? 65536);
    this.maxInlineBytes = positiveInt('maxInlineBytes', opts.maxInlineBytes ?? 64 * 1024);
    this.maxBufferedBytes = positiveInt('maxBufferedBytes', opts.maxBufferedBytes ?? 16 * 1024 * 1024);
    if (this.maxBufferedBytes < this.maxBulkBytes + 64) {
      throw new RangeError(
        `maxBufferedBytes must be at least maxBulkBytes + 64 (${this.maxBulkBytes + 64}). Got: ${this.maxBufferedBytes}`,
      );
    }
    if (this.maxBufferedBytes < this.maxInlineBytes + 2) {
      throw new RangeError(
        `maxBufferedBytes must be at least maxInlineBytes + 2 (${this.maxInlineBytes + 2}). Got: ${this.maxBufferedBytes}`,
      );
    }
  }

  /** Bytes held: unread input plus the arguments already taken from the current request. */
  get bufferedBytes(): number {
    return this.end - this.start + (this.mb?.argBytes ?? 0);
  }

  /** True once a protocol error was found; the connection should be closed. */
  get failed(): boolean {
    return this.failure !== null;
  }

  /**
   * Append input. Over the buffered-bytes limit the parser fails instead of growing; the
   * failure is reported by the next call to next(), after the complete commands before it.
   */
  feed(chunk: Buffer): void {
    if (this.failure || this.overflow || chunk.length === 0) return;
    if (this.bufferedBytes + chunk.length > this.maxBufferedBytes) {
      // Keep the complete commands already buffered and fail when the reader reaches the end.
      // From here on all input is dropped: a gap in the stream would corrupt what follows.
      this.overflow = true;
      return;
    }
    this.reserve(chunk.length);
    chunk.copy(this.storage, this.end);
    this.end += chunk.length;
  }

  /** The next complete command, `incomplete` when more input is needed, or the failure. */
  next(): ParseStep {
    for (;;) {
      if (this.failure) return { kind: 'error', error: this.failure };
      const step = this.mb ? this.continueMultibulk(this.mb) : this.startRequest();
      if (step === null) continue; // an empty request (`*0`, blank line): Redis skips those
      if (step.kind === 'incomplete' && this.overflow) {
        return this.fail(`too big request (more than ${this.maxBufferedBytes} bytes buffered)`);
      }
      return step;
    }
  }

  /** Parse the start of a request at `start`. Returns null for a request that has no command. */
  private startRequest(): ParseStep | null {
    if (this.start === this.end) return INCOMPLETE;
    if (this.storage[this.start] === 0x2a /* '*' */) {
      const line = this.readLine(MAX_HEADER_LINE, 'too big mbulk count string');
      if (line === null) return INCOMPLETE;
      if ('kind' in line) return line;
      const n = parseInteger(this.storage, line.from + 1, line.to);
      if (n === null || n > this.maxArrayLength) return this.fail('invalid multibulk length');
      this.consumeTo(line.next);
      if (n <= 0) return null; // `*0` and `*-1` are ignored by Redis
      this.mb = { expected: n, args: [], argBytes: 0, bulkLen: -1 };
      return this.continueMultibulk(this.mb);
    }
    return this.inline();
  }

  private continueMultibulk(mb: Multibulk): ParseStep {
    while (mb.args.length < mb.expected) {
      if (mb.bulkLen < 0) {
        if (this.start === this.end) return INCOMPLETE;
        const first = this.storage[this.start]!;
        if (first !== 0x24 /* '$' */) {
          return this.fail(`expected '$', got '${printable(first)}'`);
        }
        const line = this.readLine(MAX_HEADER_LINE, 'too big bulk count string');
        if (line === null) return INCOMPLETE;
        if ('kind' in line) return line;
        const len = parseInteger(this.storage, line.from + 1, line.to);
        if (len === null || len < 0 || len > this.maxBulkBytes) return this.fail('invalid bulk length');
        // Refuse now rather than after buffering a payload that cannot fit.
        if (this.bufferedBytes - (line.next - this.start) + len + 2 > this.maxBufferedBytes) {
          return this.fail(`too big request (more than ${this.maxBufferedBytes} bytes buffered)`);
        }
        this.consumeTo(line.next);
        mb.bulkLen = len;
      }
      const need = mb.bulkLen + 2;
      if (this.end - this.start < need) {
        // Make sure the whole payload will fit without another move once it arrives.
        this.reserve(need - (this.end - this.start));
        return INCOMPLETE;
      }
      const payloadEnd = this.start + mb.bulkLen;
      if (this.storage[payloadEnd] !== CR || this.storage[payloadEnd + 1] !== LF) {
        return this.fail('expected CRLF after bulk string');
      }
      // Copy out: storage is reused for later input.
      const arg = Buffer.from(this.storage.subarray(this.start, payloadEnd));
      mb.args.push(arg);
      mb.argBytes += arg.length;
      this.consumeTo(payloadEnd + 2);
      mb.bulkLen = -1;
    }
    this.mb = null;
    return { kind: 'command', args: mb.args };
  }

  private inline(): ParseStep | null {
    // Resume the newline search where the last feed left it: rescanning a line that arrives
    // byte by byte would be quadratic.
    const from = this.start + this.inlineScanned;
    const to = Math.min(this.end, this.start + this.maxInlineBytes + 1);
    const found = from < to ? this.storage.subarray(from, to).indexOf(LF) : -1;
    if (found < 0) {
      if (this.end - this.start > this.maxInlineBytes) return this.fail('too big inline request');
      this.inlineScanned = this.end - this.start;
      return INCOMPLETE;
    }
    const nl = from + found;
    // Redis accepts a bare LF as well as CRLF after an inline request.
    const lineEnd = nl > this.start && this.storage[nl - 1] === CR ? nl - 1 : nl;
    const args = splitInline(this.storage.subarray(this.start, lineEnd));
    this.consumeTo(nl + 1);
    if (args === null) return this.fail('unbalanced quotes in request');
    if (args.length === 0) return null;
    return { kind: 'command', args };
  }

  /**
   * Find the CRLF ending the line at `start`. Returns the line bounds, null when it has not
   * arrived yet, or a failure when `maxLen` bytes arrived without one.
   */
  private readLine(
    maxLen: number,
    tooLong: string,
  ): { from: number; to: number; next: number } | ParseStep | null {
    const limit = Math.min(this.end, this.start + maxLen);
    const found = this.storage.subarray(this.start, limit).indexOf(CR);
    if (found < 0) {
      return this.end - this.start >= maxLen ? this.fail(tooLong) : null;
    }
    const cr = this.start + found;
    if (cr + 1 >= this.end) return null;
    if (this.storage[cr + 1] !== LF) return this.fail('expected LF after CR');
    return { from: this.start, to: cr, next: cr + 2 };
  }

  private consumeTo(pos: number): void {
    this.start = pos;
    this.inlineScanned = 0;
    if (this.start === this.end) {
      // Empty: rewind for free instead of moving bytes later, and give back the room a big
      // request needed so an idle connection holds little.
      this.start = 0;
      this.end = 0;
      if (this.storage.length > SHRINK_ABOVE) this.storage = Buffer.allocUnsafe(INITIAL_STORAGE);
    }
  }

  /** Make room for `extra` more bytes after `end`: reclaim the consumed prefix, then grow. */
  private reserve(extra: number): void {
    if (this.end + extra <= this.storage.length) return;
    const live = this.end - this.start;
    if (live + extra <= this.storage.length && this.start >= live) {
      // Moving is cheap relative to what was consumed (at most as many bytes as were read),
      // which keeps total copying linear in the input.
      this.storage.copy(this.storage, 0, this.start, this.end);
    } else {
      let size = this.storage.length;
      while (size < live + extra) size *= 2;
      const next = Buffer.allocUnsafe(Math.min(size, Math.max(live + extra, this.maxBufferedBytes + 64)));
      this.storage.copy(next, 0, this.start, this.end);
      this.storage = next;
    }
    this.start = 0;
    this.end = live;
  }

  private fail(message: string): ParseStep {
    this.failure = new RespProtocolError(`Protocol error: ${message}`);
    this.mb = null;
    // Drop the input: nothing after an error is read.
    this.start = 0;
    this.end = 0;
    this.storage = Buffer.alloc(0);
    return { kind: 'error', error: this.failure };
  }
}

/** Strict decimal integer in buf[from, to): optional '-', then 1..15 digits. Else null. */
function parseInteger(buf: Buffer, from: number, to: number): number | null {
  let i = from;
  let negative = false;
  if (i < to && buf[i] === 0x2d /* '-' */) {
    negative = true;
    i++;
  }
  // 15 digits stay exact in a double and are far above every limit.
  if (i >= to || to - i > 15) return null;
  let n = 0;
  for (; i < to; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return null;
    n = n * 10 + d;
  }
  return negative ? -n : n;
}

function printable(byte: number): string {
  return byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0b || b === 0x0c;
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  return -1;
}

/**
 * Split an inline request into arguments the way Redis's sdssplitargs does: whitespace
 * separates; "double quotes" take \n \r \t \b \a \\ \" and \xHH escapes; 'single quotes' take \'.
 * A closing quote must be followed by whitespace or the end. Returns null on unbalanced quotes.
 */
export function splitInline(line: Buffer): Buffer[] | null {
  const args: Buffer[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    while (i < n && isSpace(line[i]!)) i++;
    if (i >= n) return args;
    const cur: number[] = [];
    let inDq = false;
    let inSq = false;
    let done = false;
    while (!done) {
      if (inDq) {
        if (i >= n) return null;
        const c = line[i]!;
        if (c === 0x5c /* \ */ && i + 3 < n && line[i + 1] === 0x78 /* x */ &&
            hexValue(line[i + 2]!) >= 0 && hexValue(line[i + 3]!) >= 0) {
          cur.push(hexValue(line[i + 2]!) * 16 + hexValue(line[i + 3]!));
          i += 3;
        } else if (c === 0x5c && i + 1 < n) {
          i++;
          const e = line[i]!;
          cur.push(e === 0x6e ? 0x0a : e === 0x72 ? 0x0d : e === 0x74 ? 0x09 : e === 0x62 ? 0x08 : e === 0x61 ? 0x07 : e);
        } else if (c === 0x22 /* " */) {
          if (i + 1 < n && !isSpace(line[i + 1]!)) return null;
          done = true;
        } else {
          cur.push(c);
        }
      } else if (inSq) {
        if (i >= n) return null;
        const c = line[i]!;
        if (c === 0x5c && i + 1 < n && line[i + 1] === 0x27 /* ' */) {
          i++;
          cur.push(0x27);
        } else if (c === 0x27) {
          if (i + 1 < n && !isSpace(line[i + 1]!)) return null;
          done = true;
        } else {
          cur.push(c);
        }
      } else {
        if (i >= n) {
          done = true;
          break;
        }
        const c = line[i]!;
        if (isSpace(c)) {
          done = true;
        } else if (c === 0x22 && cur.length === 0) {
          inDq = true;
        } else if (c === 0x27 && cur.length === 0) {
          inSq = true;
        } else {
          cur.push(c);
        }
      }
      if (i < n) i++;
    }
    args.push(Buffer.from(cur));
  }
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new RangeError(`${name} must be a positive integer. Got: ${v}`);
  }
  return v;
}
