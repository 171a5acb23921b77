/**
 * The RESP INCR client against a scripted server on loopback: what each reply (or its absence)
 * means for the history, and that a connection is reused only when nothing can be pending on it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { incrCommand, incrReply, respIncr } from './resp-incr.ts';
import { freePort } from '../helpers/ports.ts';

/** How the server answers the next commands, in order (default `:1\r\n`); `null`: never. */
const script: (string[] | null)[] = [];
const sockets = new Set<net.Socket>();
let connections = 0;
let server: net.Server;
let port: number;

before(async () => {
  server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      // one whole INCRBY per answer (the client sends one at a time)
      while (/^\*3\r\n(\$\d+\r\n[^\r]*\r\n){3}/.test(buf)) {
        buf = buf.replace(/^\*3\r\n(\$\d+\r\n[^\r]*\r\n){3}/, '');
        const parts = script.length > 0 ? script.shift()! : [':1\r\n'];
        if (parts === null) continue;
        parts.forEach((p, i) => setTimeout(() => s.write(p), i * 20));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as net.AddressInfo).port;
});

after(() => {
  for (const s of sockets) s.destroy();
  server.close();
});

const target = () => ({ id: 'n1', url: 'http://unused', respPort: port });

test('the command is an array of bulk strings, lengths in bytes', () => {
  assert.equal(incrCommand('ké/1', 3).toString(), '*3\r\n$6\r\nINCRBY\r\n$5\r\nké/1\r\n$1\r\n3\r\n');
});

test('replies: an integer, the not-an-integer error (no effect), any other error (may have been applied), half a line', () => {
  assert.deepEqual(incrReply(':-12\r\n'), { outcome: 'ok', result: -12 });
  assert.deepEqual(incrReply('-ERR value is not an integer or out of range\r\n'), { outcome: 'ok', result: 'error' });
  assert.deepEqual(incrReply('-TRYAGAIN write arrived after its deadline\r\n'), { outcome: 'indeterminate', error: 'TRYAGAIN write arrived after its deadline' });
  assert.equal(incrReply(':12'), undefined);
  assert.equal(incrReply('$2\r\nhi\r\n')?.outcome, 'indeterminate');
});

test('an answered command leaves its connection for the next one; a reply split over chunks is read whole', async () => {
  const c = respIncr();
  const before = connections;
  script.push([':4\r\n'], [':1', '2\r\n']);
  assert.deepEqual(await c.incr(target(), 'k', 1, 1000), { outcome: 'ok', result: 4 });
  assert.deepEqual(await c.incr(target(), 'k', 1, 1000), { outcome: 'ok', result: 12 });
  assert.equal(connections - before, 1);
  c.close();
});

test('no answer in time: indeterminate, and that connection is never used again', async () => {
  const c = respIncr();
  const before = connections;
  script.push(null, [':7\r\n']);
  assert.deepEqual(await c.incr(target(), 'k', 1, 150), { outcome: 'indeterminate', error: 'TimeoutError' });
  assert.deepEqual(await c.incr(target(), 'k', 1, 1000), { outcome: 'ok', result: 7 });
  assert.equal(connections - before, 2);
  c.close();
});

test('an idle connection the server closed is not used; a refused connection is a failure (nothing sent)', async () => {
  const c = respIncr();
  const before = connections;
  assert.equal((await c.incr(target(), 'k', 1, 1000)).outcome, 'ok');
  for (const s of sockets) s.end();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await c.incr(target(), 'k', 1, 1000)).outcome, 'ok');
  assert.equal(connections - before, 2);
  const closedPort = await freePort();
  assert.deepEqual(await c.incr({ id: 'n2', url: 'http://unused', respPort: closedPort }, 'k', 1, 1000), { outcome: 'fail', error: 'ECONNREFUSED' });
  assert.deepEqual(await c.incr({ id: 'n3', url: 'http://unused' }, 'k', 1, 1000), { outcome: 'fail', error: 'n3 has no RESP port' });
  c.close();
});
