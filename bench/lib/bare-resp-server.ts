// The RESP reference: the least a Node server can do to answer redis-benchmark's GET and SET —
// a multibulk parser over each socket chunk that dispatches on the bytes, a Map of keys to values,
// and every reply a chunk produced written into one buffer and sent with one socket write. Per
// command it makes one string (the key) and no other object: an earlier version that built the
// command's name as a string, an array per argument and a Buffer per reply header reached 0.49x of
// redis-server at pipeline 16 here, this one ~1.0x in the same A/B (BENCHMARKS.md). No limits,
// no permissions, no metrics, no cluster. jincache's RESP listener does the same job plus
// everything a cache node owes its users; the gap between the two is what those cost
// (BENCHMARKS.md "Where the time goes").
//
// Run as its own process so it gets its own event loop like a jincache node:
//   node bench/lib/bare-resp-server.ts --port 6390
// Answers GET, SET (no options) and PING; any other command gets `-ERR unknown command`.

import { createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write(`bare-resp-server: --port must be an integer in 1..65535. Got: ${values.port}\n`);
  process.exit(2);
}

const store = new Map<string, Buffer>();
const OK = Buffer.from('+OK\r\n');
const NIL = Buffer.from('$-1\r\n');
const PONG = Buffer.from('+PONG\r\n');
const UNKNOWN = Buffer.from('-ERR unknown command\r\n');
/** Replies are written here and copied out once per chunk (one socket write, no per-reply Buffer). */
let out = Buffer.allocUnsafeSlow(1 << 16);
let outEnd = 0;

function room(n: number): void {
  if (outEnd + n <= out.length) return;
  const grown = Buffer.allocUnsafeSlow(Math.max(out.length * 2, outEnd + n));
  out.copy(grown, 0, 0, outEnd);
  out = grown;
}

function put(reply: Buffer): void {
  room(reply.length);
  outEnd += reply.copy(out, outEnd);
}

/** `$<length>\r\n<value>\r\n` */
function putBulk(value: Buffer): void {
  room(value.length + 24);
  out[outEnd++] = 0x24;
  outEnd += out.write(String(value.length), outEnd, 'latin1');
  out[outEnd++] = 13;
  out[outEnd++] = 10;
  outEnd += value.copy(out, outEnd);
  out[outEnd++] = 13;
  out[outEnd++] = 10;
}

/**
 * Where the command ending at or after `from` starts each argument: `starts[i]`, `ends[i]` for the
 * first three, and the index after its last byte; -1 when the command is not all in `buf` yet.
 * redis-benchmark sends multibulk only; the bytes are trusted (no limits: this is a reference).
 */
const starts = [0, 0, 0];
const ends = [0, 0, 0];
let argc = 0;
function command(buf: Buffer, from: number): number {
  const n = buf.length;
  let i = from + 1;
  let c = 0;
  argc = 0;
  while (i < n && (c = buf[i]!) !== 13) {
    argc = argc * 10 + c - 48;
    i++;
  }
  i += 2;
  for (let k = 0; k < argc; k++) {
    if (i >= n) return -1;
    let len = 0;
    i++; // $
    while (i < n && (c = buf[i]!) !== 13) {
      len = len * 10 + c - 48;
      i++;
    }
    i += 2;
    if (i + len + 2 > n) return -1;
    if (k < 3) {
      starts[k] = i;
      ends[k] = i + len;
    }
    i += len + 2;
  }
  return i > n ? -1 : i;
}

/** The command's name is `name` (lower case, ASCII), compared on the bytes. */
function named(buf: Buffer, name: string): boolean {
  if (ends[0]! - starts[0]! !== name.length) return false;
  for (let i = 0; i < name.length; i++) if ((buf[starts[0]! + i]! | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

function serve(socket: Socket): void {
  socket.setNoDelay(true);
  let pending: Buffer | null = null;
  socket.on('data', (chunk: Buffer) => {
    const buf: Buffer = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    let at = 0;
    while (at < buf.length) {
      const next = command(buf, at);
      if (next < 0) break;
      at = next;
      if (argc === 2 && named(buf, 'get')) {
        const v = store.get(buf.toString('latin1', starts[1], ends[1]));
        if (v === undefined) put(NIL);
        else putBulk(v);
      } else if (argc === 3 && named(buf, 'set')) {
        // an overwrite of the same length reuses the value's Buffer, as a store with fixed-size values would
        const key = buf.toString('latin1', starts[1], ends[1]);
        const old = store.get(key);
        if (old !== undefined && old.length === ends[2]! - starts[2]!) buf.copy(old, 0, starts[2], ends[2]);
        else store.set(key, Buffer.from(buf.subarray(starts[2], ends[2])));
        put(OK);
      } else if (argc === 1 && named(buf, 'ping')) {
        put(PONG);
      } else {
        put(UNKNOWN);
      }
    }
    if (at < buf.length) pending = Buffer.from(buf.subarray(at));
    if (outEnd > 0) {
      socket.write(Buffer.from(out.subarray(0, outEnd)));
      outEnd = 0;
    }
  });
  socket.on('error', () => socket.destroy());
}

const server = createServer(serve);
server.listen(port, values.host, () => process.stdout.write(`bare-resp-server listening on ${values.host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
