/**
 * Redis as the oracle: Debian's `redis-server` started on a free loopback port (persistence off),
 * a small raw RESP client that returns typed replies (RESP2, or RESP3 after HELLO 3), and a
 * comparison of two servers' replies with the normalisations listed in NORMALISATIONS. The random
 * command sequences the oracles replay are redis-sequences.ts.
 *
 * The client is written here rather than taken from ioredis or node-redis because those decode
 * replies into JavaScript values and lose exactly what the oracle compares: a null bulk against
 * a null array, a simple string against a bulk, a RESP3 double against a bulk string.
 *
 * Every redis-server is tracked by PID and killed when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as W from '../../src/front/resp/writer.ts';
import { freePort } from './ports.ts';

export const REDIS_SERVER = '/usr/bin/redis-server';

// ---------------------------------------------------------------- typed replies and the decoder

/** One reply as it came on the wire: the RESP type byte decides the variant. */
export type Reply =
  | { readonly type: 'simple'; readonly value: string }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'bulk'; readonly value: Buffer }
  /** `$-1` (null bulk), `*-1` (null array) or RESP3's `_`. */
  | { readonly type: 'null'; readonly wire: '$' | '*' | '_' }
  | { readonly type: 'array'; readonly items: readonly Reply[] }
  /** RESP3 `,`: `text` as sent (inf, -inf, nan, 1.5, 3). */
  | { readonly type: 'double'; readonly text: string }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'bignum'; readonly text: string }
  | { readonly type: 'verbatim'; readonly format: string; readonly text: Buffer }
  | { readonly type: 'blob-error'; readonly message: Buffer }
  | { readonly type: 'map'; readonly entries: readonly (readonly [Reply, Reply])[] }
  | { readonly type: 'set'; readonly items: readonly Reply[] }
  | { readonly type: 'push'; readonly items: readonly Reply[] }
  | { readonly type: 'attribute'; readonly attributes: readonly (readonly [Reply, Reply])[]; readonly value: Reply };

export class ReplyFormatError extends Error {
  readonly code = 'REPLY_FORMAT';
  override name = 'ReplyFormatError';
}

/**
 * Decode one reply starting at `at`. Returns it and the offset after it, or null when `buf` does
 * not hold all of it yet. Throws ReplyFormatError on bytes that are not RESP.
 */
export function decodeReply(buf: Buffer, at = 0): { reply: Reply; next: number } | null {
  if (at >= buf.length) return null;
  const eol = buf.indexOf('\r\n', at, 'latin1');
  if (eol < 0) return null;
  const kind = buf[at]!;
  const line = buf.toString('latin1', at + 1, eol);
  const after = eol + 2;
  const count = (): number => {
    if (!/^(-1|0|[1-9][0-9]*)$/.test(line)) throw new ReplyFormatError(`bad length ${JSON.stringify(line)} after ${String.fromCharCode(kind)}`);
    return Number(line);
  };
  const blob = (): { bytes: Buffer; next: number } | null => {
    const n = count();
    if (buf.length < after + n + 2) return null;
    if (buf[after + n] !== 13 || buf[after + n + 1] !== 10) throw new ReplyFormatError('blob not followed by CRLF');
    return { bytes: Buffer.from(buf.subarray(after, after + n)), next: after + n + 2 };
  };
  const many = (n: number): { items: Reply[]; next: number } | null => {
    const items: Reply[] = [];
    let p = after;
    for (let i = 0; i < n; i++) {
      const r = decodeReply(buf, p);
      if (r === null) return null;
      items.push(r.reply);
      p = r.next;
    }
    return { items, next: p };
  };
  const pairs = (items: Reply[]): (readonly [Reply, Reply])[] => {
    const out: (readonly [Reply, Reply])[] = [];
    for (let i = 0; i < items.length; i += 2) out.push([items[i]!, items[i + 1]!]);
    return out;
  };
  switch (kind) {
    case 0x2b: // +
      return { reply: { type: 'simple', value: line }, next: after };
    case 0x2d: // -
      return { reply: { type: 'error', message: line }, next: after };
    case 0x3a: // :
      if (!/^-?[0-9]+$/.test(line)) throw new ReplyFormatError(`bad integer ${JSON.stringify(line)}`);
      return { reply: { type: 'integer', value: Number(line) }, next: after };
    case 0x24: { // $
      if (line === '-1') return { reply: { type: 'null', wire: '$' }, next: after };
      const b = blob();
      return b && { reply: { type: 'bulk', value: b.bytes }, next: b.next };
    }
    case 0x2a: { // *
      const n = count();
      if (n < 0) return { reply: { type: 'null', wire: '*' }, next: after };
      const m = many(n);
      return m && { reply: { type: 'array', items: m.items }, next: m.next };
    }
    case 0x5f: // _
      if (line !== '') throw new ReplyFormatError('null with a payload');
      return { reply: { type: 'null', wire: '_' }, next: after };
    case 0x2c: // ,
      return { reply: { type: 'double', text: line }, next: after };
    case 0x23: // #
      if (line !== 't' && line !== 'f') throw new ReplyFormatError(`bad boolean ${JSON.stringify(line)}`);
      return { reply: { type: 'boolean', value: line === 't' }, next: after };
    case 0x28: // (
      return { reply: { type: 'bignum', text: line }, next: after };
    case 0x21: { // !
      const b = blob();
      return b && { reply: { type: 'blob-error', message: b.bytes }, next: b.next };
    }
    case 0x3d: { // =
      const b = blob();
      if (b === null) return null;
      if (b.bytes.length < 4 || b.bytes[3] !== 0x3a) throw new ReplyFormatError('verbatim string without its format');
      return { reply: { type: 'verbatim', format: b.bytes.toString('latin1', 0, 3), text: b.bytes.subarray(4) }, next: b.next };
    }
    case 0x25: { // %
      const m = many(2 * count());
      return m && { reply: { type: 'map', entries: pairs(m.items) }, next: m.next };
    }
    case 0x7e: { // ~
      const m = many(count());
      return m && { reply: { type: 'set', items: m.items }, next: m.next };
    }
    case 0x3e: { // >
      const m = many(count());
      return m && { reply: { type: 'push', items: m.items }, next: m.next };
    }
    case 0x7c: { // |
      const m = many(2 * count());
      if (m === null) return null;
      const v = decodeReply(buf, m.next);
      return v && { reply: { type: 'attribute', attributes: pairs(m.items), value: v.reply }, next: v.next };
    }
    default:
      throw new ReplyFormatError(`unknown RESP type byte 0x${kind.toString(16)} at offset ${at}`);
  }
}

/**
 * The writer's value for a decoded reply: what jincache would build to send the same bytes
 * (a test can then edit a Redis reply, e.g. drop subcommands, and compare encodings).
 */
export function asWriterReply(r: Reply): W.RespReply {
  const pairs = (e: readonly (readonly [Reply, Reply])[]) => e.map(([k, v]): W.RespPair => [asWriterReply(k), asWriterReply(v)]);
  switch (r.type) {
    case 'simple': return W.simple(r.value);
    case 'error': return W.error(r.message);
    case 'integer': return W.integer(r.value);
    case 'bulk': return W.bulk(r.value);
    case 'null': return r.wire === '*' ? W.NULL_ARRAY : W.NULL_BULK;
    case 'array': return W.array(r.items.map(asWriterReply));
    case 'double': return W.double(r.text === 'inf' ? Infinity : r.text === '-inf' ? -Infinity : Number(r.text));
    case 'boolean': return W.boolean(r.value);
    case 'bignum': return W.bigNumber(r.text);
    case 'verbatim': return W.verbatim(r.text, r.format);
    case 'map': return W.map(pairs(r.entries));
    case 'set': return W.setOf(r.items.map(asWriterReply));
    case 'push': return W.pushMessage(r.items.map(asWriterReply));
    case 'attribute': return W.withAttributes(pairs(r.attributes), asWriterReply(r.value));
    case 'blob-error': throw new ReplyFormatError('blob errors have no writer value');
  }
}

/** A reply as readable text (redis-cli-like, one line), for assertion messages. */
export function showReply(r: Reply): string {
  const q = (b: Buffer | string): string => JSON.stringify(typeof b === 'string' ? b : b.toString('latin1'));
  const kv = (e: readonly (readonly [Reply, Reply])[]): string => e.map(([k, v]) => `${showReply(k)}: ${showReply(v)}`).join(', ');
  switch (r.type) {
    case 'simple': return `+${r.value}`;
    case 'error': return `-${r.message}`;
    case 'integer': return `:${r.value}`;
    case 'bulk': return q(r.value);
    case 'null': return r.wire === '_' ? '(null)' : `(nil ${r.wire})`;
    case 'array': return `[${r.items.map(showReply).join(', ')}]`;
    case 'double': return `,${r.text}`;
    case 'boolean': return r.value ? '#t' : '#f';
    case 'bignum': return `(${r.text}`;
    case 'verbatim': return `=${r.format}:${q(r.text)}`;
    case 'blob-error': return `!${q(r.message)}`;
    case 'map': return `{${kv(r.entries)}}`;
    case 'set': return `~{${r.items.map(showReply).join(', ')}}`;
    case 'push': return `>[${r.items.map(showReply).join(', ')}]`;
    case 'attribute': return `|{${kv(r.attributes)}} ${showReply(r.value)}`;
  }
}

/** Encode a command as a multibulk request (what every client library sends). */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`, 'latin1')];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a, 'latin1') : a;
    parts.push(Buffer.from(`$${b.length}\r\n`, 'latin1'), b, Buffer.from('\r\n', 'latin1'));
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------- the client

/**
 * One connection, replies matched to requests in order (pipelining allowed). String arguments
 * are byte strings (latin1: one char per byte), so any key or value can be written.
 * RESP3 push frames never answer a request: they are collected in `pushes`.
 */
export class RespClient {
  readonly pushes: Reply[] = [];
  private readonly socket: Socket;
  private input: Buffer = Buffer.alloc(0);
  private readonly waiting: { resolve(r: Reply, bytes: Buffer): void; reject(e: Error): void }[] = [];
  private failure: Error | null = null;
  /** True once the server closed the connection. */
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d) => this.onData(d));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => {
      this.closed = true;
      this.fail(new Error('connection closed'));
    });
  }

  static connect(port: number, host = '127.0.0.1', timeoutMs = 5000): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RespClient(socket));
      });
    });
  }

  /** Send one command and wait for its reply (an error reply is a value, not a rejection). */
  async call(...args: (string | Buffer)[]): Promise<Reply> {
    return (await this.exchange(encodeCommand(args), 1))[0]!.reply;
  }

  /** Send one command; its reply and the exact bytes it came as. */
  async callBytes(...args: (string | Buffer)[]): Promise<{ reply: Reply; bytes: Buffer }> {
    return (await this.exchange(encodeCommand(args), 1))[0]!;
  }

  /** Write raw bytes and wait for `replies` replies (inline commands, broken framing). */
  async sendRaw(bytes: Buffer | string, replies: number): Promise<Reply[]> {
    return (await this.exchange(bytes, replies)).map((r) => r.reply);
  }

  private exchange(bytes: Buffer | string, replies: number): Promise<{ reply: Reply; bytes: Buffer }[]> {
    if (this.failure) return Promise.reject(this.failure);
    const all = Array.from(
      { length: replies },
      () => new Promise<{ reply: Reply; bytes: Buffer }>((resolve, reject) => this.waiting.push({ resolve: (reply, b) => resolve({ reply, bytes: b }), reject })),
    );
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
    return Promise.all(all);
  }

  /** `HELLO 3`: the connection speaks RESP3 from its reply on. Returns the reply (a map). */
  async hello(protocol: 2 | 3): Promise<Reply> {
    const r = await this.call('HELLO', String(protocol));
    if (r.type === 'error') throw new Error(`HELLO ${protocol} refused: ${r.message}`);
    return r;
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.input = this.input.length === 0 ? d : Buffer.concat([this.input, d]);
    let at = 0;
    try {
      for (;;) {
        const r = decodeReply(this.input, at);
        if (r === null) break;
        const bytes = Buffer.from(this.input.subarray(at, r.next));
        at = r.next;
        if (r.reply.type === 'push') this.pushes.push(r.reply);
        else {
          const w = this.waiting.shift();
          if (w === undefined) throw new ReplyFormatError(`unexpected reply ${showReply(r.reply)}`);
          w.resolve(r.reply, bytes);
        }
      }
    } catch (e) {
      this.fail(e as Error);
      this.socket.destroy();
      return;
    }
    this.input = this.input.subarray(at);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }
}

// ---------------------------------------------------------------- redis-server

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export interface RedisServer {
  readonly port: number;
  readonly pid: number;
  /** The server's version, from INFO server (e.g. 7.0.15). */
  readonly version: string;
  /** SIGTERM, SIGKILL after 5 s; removes the working directory. */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** `cluster-enabled yes` (CLUSTER KEYSLOT and friends answer); default false. */
  cluster?: boolean;
  /** `requirepass`: clients must AUTH; default none. */
  password?: string;
  /** More `--name value` arguments. */
  args?: readonly string[];
}

/**
 * A private redis-server on 127.0.0.1 and a free port: no RDB, no AOF, its files in a temporary
 * directory. Resolves once it answers PING.
 */
export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: run scripts/install-deps.sh redis`);
  const dir = mkdtempSync(join(tmpdir(), 'jincache-redis-'));
  const port = await freePort();
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', join(dir, 'redis.log'),
    ...(opts.cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf')] : []),
    ...(opts.password !== undefined ? ['--requirepass', opts.password] : []),
    ...(opts.args ?? []),
  ];
  const child = spawn(REDIS_SERVER, args, { stdio: 'ignore' });
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    live.delete(child);
    resolve();
  }));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`redis-server exited at start (code ${child.exitCode})`);
    }
    try {
      const c = await RespClient.connect(port, '127.0.0.1', 1000);
      try {
        if (opts.password !== undefined) await c.call('AUTH', opts.password);
        const info = await c.call('INFO', 'server');
        if (info.type === 'bulk') {
          const version = /redis_version:(\S+)/.exec(info.value.toString('latin1'))?.[1] ?? 'unknown';
          return { port, pid: child.pid!, version, stop };
        }
      } finally {
        c.close();
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server on port ${port} did not answer within 10 s`);
    }
    await sleep(30);
  }
}

/** A command as sent: its arguments, byte strings (latin1). */
export type Command = readonly string[];

// ---------------------------------------------------------------- comparing two servers' replies

export interface CompareOptions {
  /** TTL may differ by this many seconds (the two servers see a command a moment apart). Default 1. */
  ttlToleranceS?: number;
  /** PTTL may differ by this many ms. Default 1000 (a loaded 2-core machine). */
  pttlToleranceMs?: number;
}

/**
 * Normalisations, by command: replies that cannot be equal byte for byte between two servers.
 * Everything else must be identical (type, nulls' kind, text of errors).
 */
export const NORMALISATIONS: Readonly<Record<string, string>> = {
  ttl: 'integers within ttlToleranceS when both are >= 0; -1 and -2 exactly',
  pttl: 'integers within pttlToleranceMs when both are >= 0; -1 and -2 exactly',
  randomkey: 'both null, or both a bulk string (which key is random)',
  scan: 'the cursor is not compared; the elements are compared as sets',
  hscan: 'the cursor is not compared; the elements are compared as sets',
  info: 'both text (a bulk or a verbatim string); the text is not compared',
  'client|id': 'both integers',
  'client|info': 'both text; the text is not compared',
  'client|list': 'both text; the text is not compared',
  time: 'both arrays of two integers as bulk strings, seconds within 2',
  hello: 'the same map keys; server, version, id and mode are not compared',
};

/** The name a normalisation is looked up by: `ttl`, or `client|id` for a container. */
function normKey(c: Command): string {
  const name = (c[0] ?? '').toLowerCase();
  return name === 'client' && c.length > 1 ? `client|${c[1]!.toLowerCase()}` : name;
}

/** A reply's canonical text: equal text, equal reply. */
function canon(r: Reply): string {
  return showReply(r);
}

/**
 * Why `a` (the reference: redis-server) and `b` differ as replies to `c`, or null when they agree
 * up to NORMALISATIONS.
 */
export function replyDifference(c: Command, a: Reply, b: Reply, opts: CompareOptions = {}): string | null {
  const key = normKey(c);
  const same = (): string | null => (canon(a) === canon(b) ? null : `redis ${canon(a).slice(0, 200)} vs ${canon(b).slice(0, 200)}`);
  const type = (): string | null => (a.type === b.type ? null : `redis ${a.type} vs ${b.type}`);
  switch (key) {
    case 'ttl':
    case 'pttl': {
      if (a.type !== 'integer' || b.type !== 'integer' || a.value < 0 || b.value < 0) return same();
      const tol = key === 'ttl' ? (opts.ttlToleranceS ?? 1) : (opts.pttlToleranceMs ?? 1000);
      return Math.abs(a.value - b.value) <= tol ? null : `redis ${a.value} vs ${b.value} (tolerance ${tol})`;
    }
    case 'randomkey':
      return a.type === 'bulk' && b.type === 'bulk' ? null : same();
    case 'scan':
    case 'hscan': {
      if (a.type !== 'array' || b.type !== 'array' || a.items.length !== 2 || b.items.length !== 2) return same();
      const els = (r: Reply) => (r.type === 'array' ? r.items.map(canon).sort().join(',') : canon(r));
      return els(a.items[1]!) === els(b.items[1]!) ? null : `redis ${els(a.items[1]!)} vs ${els(b.items[1]!)}`;
    }
    case 'info':
    case 'client|info':
    case 'client|list':
      return (a.type === 'bulk' || a.type === 'verbatim') && (b.type === 'bulk' || b.type === 'verbatim') ? null : type();
    case 'client|id':
      return a.type === 'integer' && b.type === 'integer' ? null : same();
    case 'time': {
      const secs = (r: Reply): number | null =>
        r.type === 'array' && r.items.length === 2 && r.items.every((i) => i.type === 'bulk' && /^\d+$/.test(i.value.toString())) && r.items[0]!.type === 'bulk'
          ? Number(r.items[0]!.value.toString())
          : null;
      const sa = secs(a);
      const sb = secs(b);
      return sa !== null && sb !== null && Math.abs(sa - sb) <= 2 ? null : same();
    }
    case 'hello': {
      if (a.type !== b.type || (a.type !== 'map' && a.type !== 'array')) return same();
      const loose = new Set(['server', 'version', 'id', 'mode']);
      const fields = (r: Reply): string[] => {
        const flat = r.type === 'map' ? r.entries.flat() : r.type === 'array' ? r.items : [];
        const out: string[] = [];
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const k = canon(flat[i]!);
          out.push(loose.has(k.replace(/"/g, '')) ? k : `${k}=${canon(flat[i + 1]!)}`);
        }
        return out;
      };
      return fields(a).join(' ') === fields(b).join(' ') ? null : `redis ${fields(a).join(' ')} vs ${fields(b).join(' ')}`;
    }
    default:
      return same();
  }
}

/** A command as readable text: `SET "k0" "v" EX "10"`. */
export function showCommand(c: Command): string {
  return c.map((a, i) => (i === 0 ? a : JSON.stringify(a))).join(' ');
}
