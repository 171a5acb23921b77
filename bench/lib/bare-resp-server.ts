// The RESP reference: the least a Node server can do to answer redis-benchmark's GET and SET —
// a multibulk parser over each socket chunk, a Map of keys to values, and one socket write of
// every reply a chunk produced. No limits, no permissions, no metrics, no cluster. jincache's
// RESP listener does the same job plus everything a cache node owes its users; the gap between
// the two is what those cost (BENCHMARKS.md "Where the time goes").
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

/** A positive decimal at buf[from, CR); -1 when the CR is not there yet. */
function number(buf: Buffer, from: number): [value: number, next: number] {
  let n = 0;
  for (let i = from; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === 13) return [n, i + 2];
    n = n * 10 + (c - 48);
  }
  return [-1, buf.length];
}

function serve(socket: Socket): void {
  socket.setNoDelay(true);
  let pending: Buffer | null = null;
  socket.on('data', (chunk: Buffer) => {
    const buf: Buffer = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    const out: Buffer[] = [];
    let at = 0;
    const args: [number, number][] = [];
    parse: while (at < buf.length) {
      const start = at;
      if (buf[at] !== 42 /* * */) break; // redis-benchmark sends multibulk only
      let [argc, next] = number(buf, at + 1);
      if (argc < 0 || next > buf.length) break;
      args.length = 0;
      for (let i = 0; i < argc; i++) {
        const [len, body] = number(buf, next + 1);
        if (len < 0 || body + len + 2 > buf.length) {
          at = start;
          break parse;
        }
        args.push([body, body + len]);
        next = body + len + 2;
      }
      at = next;
      const [n0, n1] = args[0]!;
      const name = buf.toString('latin1', n0, n1).toUpperCase();
      if (name === 'GET' && argc === 2) {
        const v = store.get(buf.toString('latin1', args[1]![0], args[1]![1]));
        if (v === undefined) out.push(NIL);
        else out.push(Buffer.from(`$${v.length}\r\n`), v, Buffer.from('\r\n'));
      } else if (name === 'SET' && argc === 3) {
        store.set(buf.toString('latin1', args[1]![0], args[1]![1]), Buffer.from(buf.subarray(args[2]![0], args[2]![1])));
        out.push(OK);
      } else if (name === 'PING') {
        out.push(PONG);
      } else {
        out.push(UNKNOWN);
      }
    }
    if (at < buf.length) pending = Buffer.from(buf.subarray(at));
    if (out.length > 0) socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  });
  socket.on('error', () => socket.destroy());
}

const server = createServer(serve);
server.listen(port, values.host, () => process.stdout.write(`bare-resp-server listening on ${values.host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
