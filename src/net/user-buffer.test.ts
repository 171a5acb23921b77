import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { readIntoBuffer } from './user-buffer.ts';

interface Served {
  server: net.Server;
  port: number;
  /** What each connection (in accept order) read, as text, and its socket. */
  conns: Array<{ text: string; socket: net.Socket; ended: boolean }>;
  accepted: Promise<void>[];
}

/** A loopback server whose connections read into one shared buffer. */
async function serve(shared: Buffer, count: number): Promise<Served> {
  const conns: Served['conns'] = [];
  const arrivals: Array<() => void> = [];
  const accepted = Array.from({ length: count }, () => new Promise<void>((r) => arrivals.push(r)));
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (raw) => {
    const conn = { text: '', socket: raw, ended: false };
    const socket = readIntoBuffer(raw, shared, (n) => (conn.text += shared.toString('latin1', 0, n)), { allowHalfOpen: true });
    assert.ok(socket !== null, 'a paused accepted socket is taken over');
    conn.socket = socket;
    socket.on('end', () => {
      conn.ended = true;
      socket.end(`got ${conn.text.length}`);
    });
    conns.push(conn);
    arrivals.shift()!();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, conns, accepted };
}

async function connect(port: number): Promise<net.Socket> {
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(c, 'connect');
  return c;
}

async function readAll(c: net.Socket): Promise<string> {
  let out = '';
  c.on('data', (d: Buffer) => (out += d.toString('latin1')));
  await once(c, 'end');
  return out;
}

test('readIntoBuffer: two connections sharing one buffer each read their own bytes, in order; end and close are as for any socket', async () => {
  const shared = Buffer.alloc(64); // small: a write is read in several pieces
  const s = await serve(shared, 2);
  const a = await connect(s.port);
  const b = await connect(s.port);
  await Promise.all(s.accepted);
  const textA = 'a'.repeat(1000) + 'A';
  const textB = 'b'.repeat(777) + 'B';
  for (let i = 0; i < textA.length; i += 100) a.write(textA.slice(i, i + 100));
  b.write(textB);
  const [replyA, replyB] = [readAll(a), readAll(b)];
  a.end();
  b.end();
  assert.equal(await replyA, `got ${textA.length}`, 'the peer half-closed: end was emitted, and the socket still writes');
  assert.equal(await replyB, `got ${textB.length}`);
  assert.equal(s.conns[0]!.text, textA);
  assert.equal(s.conns[1]!.text, textB);
  a.destroy();
  b.destroy();
  // the server counts its connections by the accepted sockets: close() must still complete
  await new Promise<void>((resolve, reject) => s.server.close((err) => (err ? reject(err) : resolve())));
});

test('readIntoBuffer: pause() stops reading and resume() starts it again', async () => {
  const shared = Buffer.alloc(1024);
  const s = await serve(shared, 1);
  const c = await connect(s.port);
  await Promise.all(s.accepted);
  const conn = s.conns[0]!;
  c.write('first');
  while (conn.text.length < 5) await new Promise((r) => setTimeout(r, 5));
  conn.socket.pause();
  c.write('second');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(conn.text, 'first', 'nothing is read while paused');
  conn.socket.resume();
  while (conn.text.length < 11) await new Promise((r) => setTimeout(r, 5));
  assert.equal(conn.text, 'firstsecond');
  c.destroy();
  await once(conn.socket, 'close');
  await new Promise<void>((resolve) => s.server.close(() => resolve()));
});

test('readIntoBuffer: a socket that reads already is left as it is (null)', async () => {
  let result: net.Socket | null | undefined;
  const server = net.createServer((raw) => {
    result = readIntoBuffer(raw, Buffer.alloc(64), () => {}, { allowHalfOpen: false });
    raw.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const c = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' });
  c.on('error', () => {});
  await once(c, 'close');
  assert.equal(result, null);
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
