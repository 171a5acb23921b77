/**
 * Bounded, incremental RESP request parser (requests are the same in RESP2 and RESP3).
 *
 * Feed it socket chunks in any split; pull complete commands with next(). It accepts what a
 * Redis server accepts from clients: multibulk requests (`*N\r\n$L\r\n...`, what redis-cli and
 * ioredis send) and inline requests (`PING\r\n`, what telnet users type, split into arguments
 * exactly as Redis's sdssplitargs does). Arguments are bytes: nothing here checks UTF-8.
 *
 * An inline request that is an HTTP request line (`GET / HTTP/1.1`) or header (`Host: ...`), or
 * whose command is POST, is a cross-protocol attack (a browser tricked into talking to the
 * cache): the parser fails with a CrossProtocolError, so the server closes without answering and
 * logs it, as Redis's securityWarningCommand does.
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
 *
 * Arguments are not copied out: nextCommand() describes the command as byte ranges of the
 * storage (RespCommand), valid until the next feed() or nextCommand(). A request therefore stays
 * in storage from its first byte until the command after it is asked for. This is the hot path
 * of the Redis listener: a GET costs no allocation here.
 */

/** Limits of one connection's parser. */
export interface RespParserOptions {
  /**
   * Largest bulk string (one argument) accepted, in bytes. Default 16 MiB (`cache.max_value_bytes`'
   * default; Redis accepts 512 MB, jincache's limit is at most 512 MiB).
   */
  maxBulkBytes?: number;
  /** Largest number of arguments in one multibulk request. Default 65536. */
  maxArrayLength?: number;
  /** Longest inline request line, in bytes. Default 64 KiB (Redis's PROTO_INLINE_MAX_SIZE). */
  maxInlineBytes?: number;
  /**
   * Most bytes held at once: the unread input plus the arguments of the request being read.
   * Default maxBulkBytes + 1 MiB; must be at least maxBulkBytes + 64 (one maximal argument with
   * its framing).
   */
  maxBufferedBytes?: number;
  /**
   * Until the client authenticates, Redis's stricter limits apply: at most 10 arguments and
   * 16384 bytes per argument ("unauthenticated multibulk length"). Default false; the server
   * sets `parser.authRequired` and clears it after AUTH.
   */
  authRequired?: boolean;
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

const CROSS_PROTOCOL = Symbol.for('jincache.CrossProtocolError');

/**
 * The client spoke HTTP to the Redis port: most likely a web page making the browser send
 * requests here (cross-protocol scripting). Close without a reply and log `line`.
 */
export class CrossProtocolError extends RespProtocolError {
  readonly [CROSS_PROTOCOL] = true;
  /** The offending line, printable, at most 80 characters. */
  readonly line: string;
  constructor(line: string) {
    super(`Possible SECURITY ATTACK detected: the client sent ${JSON.stringify(line)}, an HTTP request line or header (cross-protocol scripting?); connection aborted`);
    this.name = 'CrossProtocolError';
    this.line = line;
  }
}

export function isCrossProtocolError(err: unknown): err is CrossProtocolError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[CROSS_PROTOCOL] === true;
}

/** One step of parsing: a whole command, "feed me more", or the terminal failure. */
export type ParseStep =
  | { kind: 'command'; args: Buffer[] }
  | { kind: 'incomplete' }
  | { kind: 'error'; error: RespProtocolError };

/** What nextCommand() found: the command is in `parser.command`, the failure in `parser.error`. */
export type StepKind = 'command' | 'incomplete' | 'error';

const INCOMPLETE: ParseStep = Object.freeze({ kind: 'incomplete' });

const CR = 13;
const LF = 10;
/** `*` + sign + 19 digits + CRLF fits easily; a longer header line is garbage. */
const MAX_HEADER_LINE = 32;
const INITIAL_STORAGE = 16 * 1024;
/**
 * An argument this big (Redis's PROTO_MBULK_BIG_ARG) gets storage sized to it rather than
 * doubled, and take() may hand it over without a copy.
 */
const BIG_ARG = 32 * 1024;
/** Room kept after a big argument for what follows it in the same socket read. */
const BIG_SLACK = 64 * 1024;
/** Redis's limits before authentication (networking.c). */
const UNAUTH_MAX_ARGS = 10;
const UNAUTH_MAX_BULK = 16384;
const SHRINK_ABOVE = 256 * 1024;
/** An offsets list grown past this by a huge request is dropped once the request is done. */
const KEEP_OFFSETS = 1024;
const EMPTY = Buffer.alloc(0);

/**
 * The arguments of the command nextCommand() returned, as byte ranges of `buf` (argument 0 is
 * the command name). Reused for every command: the ranges are valid until the parser's next
 * feed() or nextCommand(), so a consumer that keeps an argument past that (a value to store, a
 * reply written later) copies it with copy(). Reading arguments this way costs no allocation.
 */
export class RespCommand {
  /** Number of arguments, the command name included. */
  argc = 0;
  /** The parser these ranges belong to (take() asks it for an argument's storage). */
  private readonly owner: RespParser | null;
  /** The bytes the ranges point into (the parser's storage, or an inline request's own buffer). */
  buf: Buffer = EMPTY;
  /**
   * Argument i is buf[offsets[2i], offsets[2i + 1]) for i < argc; entries past 2 * argc are
   * left over from longer commands. Never truncated between commands: emptying a JS array frees
   * its backing store, and refilling it reallocated it on every command (the allocation profile's
   * largest entry for GET, BENCHMARKS.md "Where the time goes").
   */
  offsets: number[] = [];

  constructor(owner: RespParser | null = null) {
    this.owner = owner;
  }

  start(i: number): number {
    return this.offsets[2 * i]!;
  }

  end(i: number): number {
    return this.offsets[2 * i + 1]!;
  }

  length(i: number): number {
    return this.offsets[2 * i + 1]! - this.offsets[2 * i]!;
  }

  /** A view of argument i: shares the parser's memory, valid only until the parser moves on. */
  view(i: number): Buffer {
    return this.buf.subarray(this.offsets[2 * i]!, this.offsets[2 * i + 1]!);
  }

  /** A copy of argument i that stays valid (one allocation: no view made on the way). */
  copy(i: number): Buffer {
    const from = this.offsets[2 * i]!;
    const to = this.offsets[2 * i + 1]!;
    const out = Buffer.allocUnsafe(to - from);
    this.buf.copy(out, 0, from, to);
    return out;
  }

  /**
   * Argument i as a Buffer the caller may keep, like copy(), but a large argument that fills
   * most of the parser's storage (a big value in a SET) is handed over without copying: the
   * parser starts a new storage for what follows.
   */
  take(i: number): Buffer {
    const from = this.offsets[2 * i]!;
    const to = this.offsets[2 * i + 1]!;
    return this.owner?.handOver(this.buf, from, to) ?? Buffer.from(this.buf.subarray(from, to));
  }

  /** Views of every argument (see view()). */
  views(): Buffer[] {
    const out = new Array<Buffer>(this.argc);
    for (let i = 0; i < this.argc; i++) out[i] = this.view(i);
    return out;
  }

  /** Copies of every argument. */
  copies(): Buffer[] {
    const out = new Array<Buffer>(this.argc);
    for (let i = 0; i < this.argc; i++) out[i] = this.copy(i);
    return out;
  }
}

export class RespParser {
  readonly maxBulkBytes: number;
  readonly maxArrayLength: number;
  readonly maxInlineBytes: number;
  readonly maxBufferedBytes: number;
  /** Redis's limits for a client that has not authenticated yet (see RespParserOptions). */
  authRequired: boolean;
  /** The command the last nextCommand() returned (see RespCommand for how long it is valid). */
  readonly command = new RespCommand(this);

  private storage: Buffer = Buffer.allocUnsafe(INITIAL_STORAGE);
  /**
   * storage[start, end) is held: the request being read (from its first byte, so its arguments
   * stay in place and need no copy) and the unread input after it.
   */
  private start = 0;
  private end = 0;
  /** Arguments still expected by the multibulk request being read; 0 when none is. */
  private expected = 0;
  /** Where the multibulk request being read continues. */
  private pos = 0;
  /** Length of the bulk whose payload is awaited, or -1 while its `$L` line is awaited. */
  private bulkLen = -1;
  /** End of the command last returned: consumed at the next call, so its ranges stay valid. */
  private pending = -1;
  /** Bytes after `start` already searched for the LF ending an inline request. */
  private inlineScanned = 0;
  /** Set when take() gave a view of `storage` away: its bytes must never be written again. */
  private surrendered = false;
  /** Set by feed() when input was refused; reported once the buffered commands are read. */
  private overflow = false;
  /** Terminal state: once set every next() returns it and input is dropped. */
  private failure: RespProtocolError | null = null;

  constructor(opts: RespParserOptions = {}) {
    this.maxBulkBytes = positiveInt('maxBulkBytes', opts.maxBulkBytes ?? 16 * 1024 * 1024);
    this.maxArrayLength = positiveInt('maxArrayLength', opts.maxArrayLength ?? 65536);
    this.maxInlineBytes = positiveInt('maxInlineBytes', opts.maxInlineBytes ?? 64 * 1024);
    this.maxBufferedBytes = positiveInt('maxBufferedBytes', opts.maxBufferedBytes ?? this.maxBulkBytes + 1024 * 1024);
    this.authRequired = opts.authRequired ?? false;
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

  /** Bytes held: the request being read (or just returned) and the unread input. */
  get bufferedBytes(): number {
    return this.end - this.start;
  }

  /** Bytes of memory the parser's storage takes now (at least bufferedBytes; for metrics and tests). */
  get storageBytes(): number {
    return this.storage.length;
  }

  /** True once a protocol error was found; the connection should be closed. */
  get failed(): boolean {
    return this.failure !== null;
  }

  /** The failure, once nextCommand() returned 'error'. */
  get error(): RespProtocolError | null {
    return this.failure;
  }

  /**
   * Append input. Over the buffered-bytes limit the parser fails instead of growing; the
   * failure is reported by the next call to next(), after the complete commands before it.
   * Ends the validity of the last command's ranges. The bytes are copied: `chunk` may be
   * written over once feed() returns. `length`: only chunk[0, length) is input.
   */
  feed(chunk: Buffer, length = chunk.length): void {
    this.release();
    if (this.failure || this.overflow || length === 0) return;
    if (this.end - this.start + length > this.maxBufferedBytes) {
      // Keep the complete commands already buffered and fail when the reader reaches the end.
      // From here on all input is dropped: a gap in the stream would corrupt what follows.
      this.overflow = true;
      return;
    }
    this.reserve(length);
    chunk.copy(this.storage, this.end, 0, length);
    this.end += length;
  }

  /** The next complete command as copies (convenient; the server uses nextCommand()). */
  next(): ParseStep {
    const kind = this.nextCommand();
    if (kind === 'command') return { kind, args: this.command.copies() };
    if (kind === 'incomplete') return INCOMPLETE;
    return { kind, error: this.failure! };
  }

  /**
   * Parse the next complete command into `command` without copying its arguments. Returns
   * 'incomplete' when more input is needed, 'error' once the stream is broken (see `error`).
   */
  nextCommand(): StepKind {
    this.release();
    for (;;) {
      if (this.failure) return 'error';
      const kind = this.expected > 0 ? this.continueMultibulk() : this.startRequest();
      if (kind === null) continue; // an empty request (`*0`, blank line): Redis skips those
      if (kind === 'incomplete' && this.overflow) {
        return this.fail(`too big request (more than ${this.maxBufferedBytes} bytes buffered)`);
      }
      return kind;
    }
  }

  /** Consume the command returned last: its ranges are no longer needed. */
  private release(): void {
    if (this.pending < 0) return;
    const to = this.pending;
    this.pending = -1;
    if (this.command.offsets.length > KEEP_OFFSETS) this.command.offsets = [];
    this.command.buf = EMPTY;
    this.consumeTo(to);
    if (this.surrendered) {
      // The storage now belongs to whoever took the argument: move the unread input out.
      this.surrendered = false;
      const live = this.end - this.start;
      const next = Buffer.allocUnsafe(Math.max(INITIAL_STORAGE, live));
      this.storage.copy(next, 0, this.start, this.end);
      this.storage = next;
      this.start = 0;
      this.end = live;
    }
  }

  /**
   * RespCommand.take(): buf[from, to) as a Buffer the caller keeps. A view when the argument is
   * big and fills at least half the storage (keeping the storage alive for it costs little);
   * else a copy.
   */
  handOver(buf: Buffer, from: number, to: number): Buffer {
    const n = to - from;
    if (buf !== this.storage || this.pending < 0 || n < BIG_ARG || 2 * n < buf.length) return Buffer.from(buf.subarray(from, to));
    this.surrendered = true;
    return buf.subarray(from, to);
  }

  /** Parse the start of a request at `start`. Returns null for a request that has no command. */
  private startRequest(): StepKind | null {
    if (this.start === this.end) return 'incomplete';
    if (this.storage[this.start] === 0x2a /* '*' */) {
      const cr = this.findCr(this.start, 'too big mbulk count string');
      if (cr < 0) return cr === -1 ? 'incomplete' : 'error';
      const n = parseInteger(this.storage, this.start + 1, cr);
      if (n === null || n > this.maxArrayLength) return this.fail('invalid multibulk length');
      if (n > UNAUTH_MAX_ARGS && this.authRequired) return this.fail('unauthenticated multibulk length');
      if (n <= 0) {
        this.consumeTo(cr + 2); // `*0` and `*-1` are ignored by Redis
        return null;
      }
      this.expected = n;
      this.bulkLen = -1;
      this.pos = cr + 2;
      this.command.argc = 0;
      return this.continueMultibulk();
    }
    return this.inline();
  }

  private continueMultibulk(): StepKind {
    const cmd = this.command;
    const offsets = cmd.offsets;
    let pos = this.pos;
    while (cmd.argc < this.expected) {
      const s = this.storage;
      if (this.bulkLen < 0) {
        if (pos === this.end) break;
        const first = s[pos]!;
        if (first !== 0x24 /* '$' */) return this.fail(`expected '$', got '${printable(first)}'`);
        const cr = this.findCr(pos, 'too big bulk count string');
        if (cr < 0) {
          if (cr === -1) break;
          return 'error';
        }
        const len = parseInteger(s, pos + 1, cr);
        if (len === null || len < 0 || len > this.maxBulkBytes) return this.fail('invalid bulk length');
        if (len > UNAUTH_MAX_BULK && this.authRequired) return this.fail('unauthenticated bulk length');
        // Refuse now rather than after buffering a payload that cannot fit: the request is
        // held from its first byte, so it needs at least up to the end of this payload.
        if (Math.max(this.end, cr + 4 + len) - this.start > this.maxBufferedBytes) {
          return this.fail(`too big request (more than ${this.maxBufferedBytes} bytes buffered)`);
        }
        pos = cr + 2;
        this.bulkLen = len;
      }
      const need = this.bulkLen + 2;
      if (this.end - pos < need) {
        // Make sure the whole payload will fit without another move once it arrives.
        this.pos = pos;
        this.reserve(need - (this.end - pos), this.bulkLen >= BIG_ARG);
        return 'incomplete';
      }
      const payloadEnd = pos + this.bulkLen;
      if (s[payloadEnd] !== CR || s[payloadEnd + 1] !== LF) return this.fail('expected CRLF after bulk string');
      offsets[2 * cmd.argc] = pos;
      offsets[2 * cmd.argc + 1] = payloadEnd;
      cmd.argc++;
      pos = payloadEnd + 2;
      this.bulkLen = -1;
    }
    this.pos = pos;
    if (cmd.argc < this.expected) return 'incomplete';
    this.expected = 0;
    cmd.buf = this.storage;
    this.pending = pos;
    return 'command';
  }

  private inline(): StepKind | null {
    // Resume the newline search where the last feed left it: rescanning a line that arrives
    // byte by byte would be quadratic.
    const from = this.start + this.inlineScanned;
    const to = Math.min(this.end, this.start + this.maxInlineBytes + 1);
    const found = from < to ? this.storage.subarray(from, to).indexOf(LF) : -1;
    if (found < 0) {
      if (this.end - this.start > this.maxInlineBytes) return this.fail('too big inline request');
      this.inlineScanned = this.end - this.start;
      return 'incomplete';
    }
    const nl = from + found;
    // Redis accepts a bare LF as well as CRLF after an inline request.
    const lineEnd = nl > this.start && this.storage[nl - 1] === CR ? nl - 1 : nl;
    const line = this.storage.subarray(this.start, lineEnd);
    const args = splitInline(line);
    if (args === null) return this.fail('unbalanced quotes in request');
    if (args.length === 0) {
      this.consumeTo(nl + 1);
      return null;
    }
    if (isHttp(args)) return this.failWith(new CrossProtocolError(printableLine(line)));
    // Inline requests are rare (people typing): one buffer of the unescaped arguments.
    const cmd = this.command;
    cmd.buf = Buffer.concat(args);
    cmd.argc = args.length;
    let at = 0;
    for (let i = 0; i < args.length; i++) {
      cmd.offsets[2 * i] = at;
      cmd.offsets[2 * i + 1] = at += args[i]!.length;
    }
    this.pending = nl + 1;
    return 'command';
  }

  /**
   * Position of the CR ending the header line at `from` (which must be followed by LF).
   * -1 when it has not arrived yet; -2 after failing because `MAX_HEADER_LINE` bytes came
   * without one or the CR is not followed by LF.
   */
  private findCr(from: number, tooLong: string): number {
    const s = this.storage;
    const limit = Math.min(this.end, from + MAX_HEADER_LINE);
    let cr = from;
    while (cr < limit && s[cr] !== CR) cr++;
    if (cr === limit) {
      if (this.end - from >= MAX_HEADER_LINE) {
        this.fail(tooLong);
        return -2;
      }
      return -1;
    }
    if (cr + 1 >= this.end) return -1;
    if (s[cr + 1] !== LF) {
      this.fail('expected LF after CR');
      return -2;
    }
    return cr;
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

  /**
   * Make room for `extra` more bytes after `end`: reclaim the consumed prefix, then grow. `big`:
   * the room is for a big argument's payload: grow to what it needs (plus a socket read) rather
   * than to the next power of two, so a 100 MiB value costs 100 MiB, not 128.
   */
  private reserve(extra: number, big = false): void {
    if (this.end + extra <= this.storage.length) return;
    const live = this.end - this.start;
    if (live + extra <= this.storage.length && this.start >= live) {
      // Moving is cheap relative to what was consumed (at most as many bytes as were read),
      // which keeps total copying linear in the input.
      this.storage.copy(this.storage, 0, this.start, this.end);
    } else {
      let size = this.storage.length;
      if (big) size = live + extra + BIG_SLACK;
      else while (size < live + extra) size *= 2;
      const next = Buffer.allocUnsafe(Math.min(size, Math.max(live + extra, this.maxBufferedBytes + 64)));
      this.storage.copy(next, 0, this.start, this.end);
      this.storage = next;
    }
    // The request being read moved with its bytes: shift its progress and argument ranges.
    const delta = this.start;
    if (this.expected > 0) {
      this.pos -= delta;
      const offsets = this.command.offsets;
      for (let i = 0; i < 2 * this.command.argc; i++) offsets[i] = offsets[i]! - delta;
    }
    this.start = 0;
    this.end = live;
  }

  private fail(message: string): 'error' {
    return this.failWith(new RespProtocolError(`Protocol error: ${message}`));
  }

  private failWith(failure: RespProtocolError): 'error' {
    this.failure = failure;
    this.expected = 0;
    this.pending = -1;
    this.command.argc = 0;
    this.command.buf = EMPTY;
    // Drop the input: nothing after an error is read.
    this.start = 0;
    this.end = 0;
    this.storage = Buffer.alloc(0);
    return 'error';
  }
}

/**
 * Decimal integer in buf[from, to) as Redis's string2ll reads it: `0`, or an optional '-' and
 * 1..15 digits without a leading zero (so `007`, `-0`, `+1` and ` 1` are refused). Else null.
 */
function parseInteger(buf: Buffer, from: number, to: number): number | null {
  let i = from;
  if (to - i === 1 && buf[i] === 0x30) return 0;
  let negative = false;
  if (i < to && buf[i] === 0x2d /* '-' */) {
    negative = true;
    i++;
  }
  // 15 digits stay exact in a double and are far above every limit.
  if (i >= to || to - i > 15 || buf[i] === 0x30) return null;
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

/** C's isspace: what sdssplitargs skips between arguments and accepts after a closing quote. */
function isSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  return -1;
}

/**
 * Split an inline request into arguments exactly as Redis's sdssplitargs does:
 * - blanks (C isspace: space, \t \n \v \f \r) separate arguments; inside an unquoted argument
 *   only space, \t, \n and \r end it (\v and \f are part of it);
 * - a `"` or `'` opens a quoted part anywhere, even in the middle of an argument (`a"b c"` is
 *   `ab c`); "double quotes" take \n \r \t \b \a, \xHH and backslash-anything escapes;
 *   'single quotes' take only \';
 * - a closing quote must be followed by a blank or the end of the line;
 * - the line ends at its first NUL byte (sdssplitargs reads a C string).
 * Returns null on unbalanced quotes (Redis: "Protocol error: unbalanced quotes in request").
 */
export function splitInline(line: Buffer): Buffer[] | null {
  const nul = line.indexOf(0);
  const n = nul < 0 ? line.length : nul;
  const args: Buffer[] = [];
  let i = 0;
  for (;;) {
    while (i < n && isSpace(line[i]!)) i++;
    if (i >= n) return args;
    const cur: number[] = [];
    let inDq = false;
    let inSq = false;
    let done = false;
    while (!done) {
      const c = i < n ? line[i]! : 0;
      if (inDq) {
        if (c === 0x5c /* \ */ && i + 3 < n && line[i + 1] === 0x78 /* x */ && hexValue(line[i + 2]!) >= 0 && hexValue(line[i + 3]!) >= 0) {
          cur.push(hexValue(line[i + 2]!) * 16 + hexValue(line[i + 3]!));
          i += 3;
        } else if (c === 0x5c && i + 1 < n) {
          i++;
          const e = line[i]!;
          cur.push(e === 0x6e ? 0x0a : e === 0x72 ? 0x0d : e === 0x74 ? 0x09 : e === 0x62 ? 0x08 : e === 0x61 ? 0x07 : e);
        } else if (c === 0x22 /* " */) {
          if (i + 1 < n && !isSpace(line[i + 1]!)) return null;
          done = true;
        } else if (i >= n) {
          return null;
        } else {
          cur.push(c);
        }
      } else if (inSq) {
        if (c === 0x5c && i + 1 < n && line[i + 1] === 0x27 /* ' */) {
          i++;
          cur.push(0x27);
        } else if (c === 0x27) {
          if (i + 1 < n && !isSpace(line[i + 1]!)) return null;
          done = true;
        } else if (i >= n) {
          return null;
        } else {
          cur.push(c);
        }
      } else if (i >= n || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        done = true;
      } else if (c === 0x22) {
        inDq = true;
      } else if (c === 0x27) {
        inSq = true;
      } else {
        cur.push(c);
      }
      if (i < n) i++;
    }
    args.push(Buffer.from(cur));
  }
}

const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/**
 * An inline request that only an HTTP client sends: a request line (`METHOD target HTTP/1.1`),
 * or a command named POST or `Host:` in any case (the two Redis refuses, securityWarningCommand:
 * a browser's request body or headers reaching the port).
 */
function isHttp(args: readonly Buffer[]): boolean {
  const first = args[0]!;
  if (first.length === 4 || first.length === 5) {
    const name = first.toString('latin1').toLowerCase();
    if (name === 'post' || name === 'host:') return true;
  }
  return (
    args.length === 3 &&
    HTTP_METHODS.has(first.toString('latin1')) &&
    /^HTTP\/[0-9](\.[0-9])?$/.test(args[2]!.toString('latin1'))
  );
}

/** The line for a log: printable ASCII, at most 80 characters. */
function printableLine(line: Buffer): string {
  let out = '';
  for (let i = 0; i < line.length && out.length < 80; i++) out += printable(line[i]!);
  return out.slice(0, 80);
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new RangeError(`${name} must be a positive integer. Got: ${v}`);
  }
  return v;
}
