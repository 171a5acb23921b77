/**
 * The Redis-protocol listener against real Redis clients: the Debian `redis-cli` binary and
 * ioredis (RESP3 by default, and RESP2), and raw byte streams compared with a real redis-server
 * (HELLO, RESET, CLIENT REPLY). Behind the listener is an in-memory KvService (a Map with
 * expiry), so these tests exercise the protocol, the connection registry (CLIENT LIST / KILL),
 * INFO's counters, cross-protocol refusal, ordering and limits (SPEC §8), not placement.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { Redis } from 'ioredis';
import type { GetResult } from '../../src/cluster/kv.ts';
import type { WriteOp, WriteResult } from '../../src/cache/ops.ts';
import { LiveConfig } from '../../src/config/live.ts';
import { parseConfig } from '../../src/config/schema.ts';
import { Authenticator } from '../../src/front/auth.ts';
import { FrontDoor, type DoorKv } from '../../src/front/door.ts';
import { RespServer, type RespLogger, type RespServerOptions } from '../../src/front/resp/server.ts';
import { ClientLimits } from '../../src/net/limits.ts';
import { startRedisServer } from '../helpers/redis-oracle.ts';
import { Metrics } from '../../src/observe/metrics.ts';
import { MemoryKv as BaseMemoryKv } from '../helpers/memory-kv.ts';

/** The map-backed cluster on real time; keys starting with `fail:` throw like a timeout. */
class MemoryKv extends BaseMemoryKv {
  protected override fault(key: string): Error | null {
    return key.startsWith('fail:') ? new Error(`request timed out after 5000 ms (key ${key})`) : super.fault(key);
  }
}

/** The front door a node would build, over `kv`, with this test's limits (and a password for `default`). */
function doorOf(kvImpl: DoorKv, maxValueBytes: number, password?: string): FrontDoor {
  const config = parseConfig({ cache: { group_name: 'default', max_value_bytes: maxValueBytes }, ...(password !== undefined ? { auth: { requirepass: password } } : {}) });
  return new FrontDoor({
    kv: kvImpl,
    live: new LiveConfig(config),
    metrics: new Metrics({ defaultMetrics: false }),
    clock: { now: () => Date.now() },
    ...(password !== undefined ? { auth: new Authenticator(config.auth) } : {}),
  });
}

const MAX_VALUE = 64 * 1024;
const kv = new MemoryKv();
const server = new RespServer({
  door: doorOf(kv, MAX_VALUE),
  port: 0,
  info: () => ({ node_id: 'node-test', partitions_owned: 7 }),
});
let port = 0;
let redisCli = '/usr/bin/redis-cli';

before(async () => {
  if (!existsSync(redisCli)) {
    // The project's installer when present, else Debian's package (the machine has apt).
    if (existsSync('scripts/install-deps.sh')) execFileSync('bash', ['scripts/install-deps.sh', 'redis'], { stdio: 'inherit' });
    else execFileSync('bash', ['-c', 'apt-get update -qq && apt-get install -y -qq redis-tools'], { stdio: 'inherit' });
  }
  assert.ok(existsSync(redisCli), 'redis-cli is required: apt-get install redis-tools');
  await server.start();
  port = server.address().port;
});

after(async () => {
  await server.stop();
});

/** Run redis-cli against the listener; its raw (non-terminal) output, one reply element a line. */
function cli(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(redisCli, ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')} failed: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

/** redis-cli prints an error reply and an empty line; the error text alone. */
async function cliError(...args: string[]): Promise<string> {
  const out = await cli(...args);
  assert.ok(out.startsWith('ERR ') || out.startsWith('NOPROTO '), `expected an error, got ${JSON.stringify(out)}`);
  return out.replace(/\n+$/, '');
}

function ioredis(): Redis {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  r.on('error', () => {}); // surfaced through the failing command instead
  return r;
}

/** Connect a raw socket, write `input`, and collect everything until the server closes or `until` holds. */
function raw(
  input: Buffer | string,
  opts: { until?: (got: string) => boolean; timeoutMs?: number; port?: number } = {},
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(opts.port ?? port, '127.0.0.1');
    const parts: Buffer[] = [];
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ text: Buffer.concat(parts).toString('latin1'), closed });
    };
    const timer = setTimeout(done, opts.timeoutMs ?? 3000);
    sock.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the server closed is fine; before it is not.
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return;
      clearTimeout(timer);
      reject(err);
    });
    sock.on('data', (d) => {
      parts.push(d);
      if (opts.until?.(Buffer.concat(parts).toString('latin1'))) done();
    });
    sock.on('close', () => {
      closed = true;
      done();
    });
    sock.write(input);
  });
}

test('redis-cli round-trips the supported commands', async () => {
  assert.equal(await cli('PING'), 'PONG\n');
  assert.equal(await cli('PING', 'hello'), 'hello\n');
  assert.equal(await cli('ECHO', 'a b'), 'a b\n');
  assert.equal(await cli('SET', 'cli:a', 'alpha'), 'OK\n');
  assert.equal(await cli('GET', 'cli:a'), 'alpha\n');
  assert.equal(await cli('GET', 'cli:missing'), '\n');
  assert.equal(await cli('MSET', 'cli:b', 'beta', 'cli:c', 'gamma'), 'OK\n');
  assert.equal(await cli('MGET', 'cli:a', 'cli:nope', 'cli:c'), 'alpha\n\ngamma\n');
  assert.equal(await cli('EXISTS', 'cli:a', 'cli:b', 'cli:nope', 'cli:a'), '3\n');
  assert.equal(await cli('SET', 'cli:a', 'other', 'NX'), '\n'); // condition not met: nil
  assert.equal(await cli('SET', 'cli:new', 'v', 'XX'), '\n');
  assert.equal(await cli('SET', 'cli:t', 'v', 'EX', '100'), 'OK\n');
  assert.equal(await cli('TTL', 'cli:t'), '100\n');
  const pttl = Number(await cli('PTTL', 'cli:t'));
  assert.ok(pttl > 95_000 && pttl <= 100_000, `pttl ${pttl}`);
  assert.equal(await cli('TTL', 'cli:a'), '-1\n');
  assert.equal(await cli('TTL', 'cli:nope'), '-2\n');
  assert.equal(await cli('EXPIRE', 'cli:a', '50'), '1\n');
  assert.equal(await cli('TTL', 'cli:a'), '50\n');
  assert.equal(await cli('PEXPIRE', 'cli:a', '20000'), '1\n');
  assert.equal(await cli('TTL', 'cli:a'), '20\n');
  assert.equal(await cli('EXPIRE', 'cli:nope', '50'), '0\n');
  assert.equal(await cli('EXPIRE', 'cli:b', '0'), '1\n'); // a time in the past deletes, as in Redis
  assert.equal(await cli('EXISTS', 'cli:b'), '0\n');
  assert.equal(await cli('DEL', 'cli:a', 'cli:c', 'cli:nope', 'cli:a'), '2\n');
  assert.equal(await cli('DBSIZE'), `${await kv.count()}\n`);
  assert.equal(await cli('SELECT', '0'), 'OK\n');
});

test('redis-cli sends binary values intact (-x reads the value from stdin)', async () => {
  const value = Buffer.from([0, 1, 2, 13, 10, 255, 254, 0x24, 0x2a]);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(redisCli, ['-h', '127.0.0.1', '-p', String(port), '-x', 'SET', 'cli:bin']);
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
    child.stdin.end(value);
  });
  assert.deepEqual(kv.data.get('cli:bin')?.value, value);
  const r = ioredis();
  try {
    assert.deepEqual(await r.getBuffer('cli:bin'), value);
  } finally {
    r.disconnect();
  }
});

test('redis-cli INFO, COMMAND and errors look like Redis', async () => {
  const info = await cli('INFO');
  assert.match(info, /^# Server\r?\n/);
  assert.match(info, /redis_version:7\.0\.0-jincache/);
  assert.match(info, /loading:0/);
  assert.match(info, /node_id:node-test/);
  assert.match(info, /partitions_owned:7/);
  const server = await cli('INFO', 'server');
  assert.match(server, /redis_version/);
  assert.doesNotMatch(server, /# Clients/);
  assert.match(await cli('COMMAND', 'COUNT'), /^\d+\n$/);
  assert.equal(await cliError('LPUSH', 'x', 'y'), "ERR unknown command 'LPUSH', with args beginning with: 'x' 'y' ");
  assert.equal(await cliError('LPOP'), "ERR unknown command 'LPOP', with args beginning with: ");
  assert.equal(await cliError('GET'), "ERR wrong number of arguments for 'get' command");
  assert.equal(await cliError('SET', 'k', 'v', 'EX', 'soon'), 'ERR value is not an integer or out of range');
  assert.equal(await cliError('SET', 'k', 'v', 'EX', '0'), "ERR invalid expire time in 'set' command");
  assert.equal(await cliError('SET', 'k', 'v', 'NX', 'XX'), 'ERR syntax error');
  assert.equal(await cliError('SELECT', '1'), 'ERR DB index is out of range');
  assert.equal(await cliError('HELLO', '4'), 'NOPROTO unsupported protocol version');
  assert.match(await cli('HELLO', '2'), /^server\nredis\nversion\n7\.0\.0-jincache\nproto\n2\n/);
  // redis-cli prints a RESP3 map as `key value` lines
  assert.match(await cli('HELLO', '3'), /^server redis\nversion 7\.0\.0-jincache\nproto 3\nid \d+\nmode standalone\n/);
  assert.match(await cliError('GET', 'fail:x'), /^ERR request timed out after 5000 ms/);
  assert.equal(await cliError('GET', 'k'.repeat(65537)), 'ERR key of 65537 bytes exceeds 65536');
  // The exact bytes, trailing space included, as Redis 7 sends them.
  const exact = await raw('*3\r\n$4\r\nNOPE\r\n$1\r\na\r\n$2\r\nbc\r\n*1\r\n$4\r\nNOPE\r\nQUIT\r\n');
  assert.equal(
    exact.text,
    "-ERR unknown command 'NOPE', with args beginning with: 'a' 'bc' \r\n-ERR unknown command 'NOPE', with args beginning with: \r\n+OK\r\n",
  );
});

test('redis-cli --pipe: 1000 commands in one stream, all answered', async () => {
  let input = '';
  for (let i = 0; i < 1000; i++) {
    const key = `pipe:${i}`;
    const val = `v${i}`;
    input += `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${val.length}\r\n${val}\r\n`;
  }
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(redisCli, ['-h', '127.0.0.1', '-p', String(port), '--pipe']);
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}: ${text}`))));
    child.stdin.end(input);
  });
  assert.match(out, /errors: 0, replies: 1000/);
  for (let i = 0; i < 1000; i++) assert.equal(kv.data.get(`pipe:${i}`)?.value.toString(), `v${i}`);
});

test('ioredis connects with its defaults (HELLO 3, CLIENT SETINFO) and runs commands', async () => {
  const r = ioredis();
  try {
    await r.connect();
    assert.equal(r.status, 'ready');
    const me = String(await r.call('CLIENT', 'INFO'));
    assert.match(me, / resp=3 lib-name=ioredis lib-ver=\d/);
    assert.equal(await r.ping(), 'PONG');
    assert.equal(await r.set('io:a', '1'), 'OK');
    assert.equal(await r.set('io:a', '2', 'NX'), null);
    assert.equal(await r.set('io:b', 'x', 'PX', 60_000, 'NX'), 'OK');
    assert.equal(await r.get('io:a'), '1');
    assert.equal(await r.mset('io:c', 'c', 'io:d', 'd'), 'OK');
    assert.deepEqual(await r.mget('io:a', 'io:missing', 'io:d'), ['1', null, 'd']);
    assert.equal(await r.exists('io:a', 'io:c'), 2);
    const ttl = await r.pttl('io:b');
    assert.ok(ttl > 55_000 && ttl <= 60_000);
    assert.equal(await r.expire('io:a', 30), 1);
    assert.equal(await r.ttl('io:a'), 30);
    assert.equal(await r.del('io:a', 'io:b'), 2);
    assert.equal(await r.get('io:a'), null);
    assert.equal(typeof (await r.dbsize()), 'number');
    assert.match(await r.info('server'), /redis_version:7/);
    await assert.rejects(r.get('fail:io'), /ERR request timed out/);
    await assert.rejects(r.call('nosuch', 'a'), /ERR unknown command 'nosuch', with args beginning with: 'a'/);
    // The connection survives errors.
    assert.equal(await r.echo('still here'), 'still here');
    assert.equal(await r.quit(), 'OK');
  } finally {
    r.disconnect();
  }
});

test('ioredis pipeline(): 1000 commands executed and answered in order', async () => {
  const r = ioredis();
  try {
    await r.connect();
    const p = r.pipeline();
    // Each GET must see the SET just before it: a reordered execution would show it.
    for (let i = 0; i < 500; i++) p.set('io:seq', String(i)).get('io:seq');
    const results = await p.exec();
    assert.ok(results);
    assert.equal(results.length, 1000);
    for (let i = 0; i < 500; i++) {
      assert.deepEqual(results[2 * i], [null, 'OK']);
      assert.deepEqual(results[2 * i + 1], [null, String(i)]);
    }
    // Errors inside a pipeline are per command and keep their place.
    const mixed = await r.pipeline().set('io:m', 'x').get('fail:m').get('io:m').exec();
    assert.ok(mixed);
    assert.deepEqual(mixed[0], [null, 'OK']);
    assert.match(String(mixed[1]![0]), /ERR request timed out/);
    assert.deepEqual(mixed[2], [null, 'x']);
  } finally {
    r.disconnect();
  }
});

test('raw pipelined stream: replies in order, inline and multibulk mixed', async () => {
  let input = '';
  let expected = '';
  for (let i = 0; i < 1000; i++) {
    if (i % 3 === 0) {
      input += `ECHO e${i}\r\n`;
      expected += `$${`e${i}`.length}\r\ne${i}\r\n`;
    } else {
      const msg = `m${i}`;
      input += `*2\r\n$4\r\nPING\r\n$${msg.length}\r\n${msg}\r\n`;
      expected += `$${msg.length}\r\n${msg}\r\n`;
    }
  }
  input += 'QUIT\r\n';
  expected += '+OK\r\n';
  const got = await raw(input);
  assert.equal(got.text, expected);
  assert.ok(got.closed, 'QUIT closes the connection');
});

test('malformed input gets -ERR Protocol error, is closed, and the server keeps serving', async () => {
  const bad = await raw('*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n:12\r\n');
  assert.equal(bad.text, "+PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n");
  assert.ok(bad.closed);
  const junk = await raw(Buffer.from('*\x00\xff garbage\r\n', 'latin1'));
  assert.equal(junk.text, '-ERR Protocol error: invalid multibulk length\r\n');
  assert.ok(junk.closed);
  const inline = await raw('SET "unterminated\r\n');
  assert.equal(inline.text, '-ERR Protocol error: unbalanced quotes in request\r\n');
  // Other clients are unaffected.
  assert.equal(await cli('PING'), 'PONG\n');
  const r = ioredis();
  try {
    assert.equal(await r.ping(), 'PONG');
  } finally {
    r.disconnect();
  }
});

test('an oversize bulk is refused from its header, before its payload is sent', async () => {
  // The header promises 100 MB; the server must answer without waiting for (or buffering) it.
  const got = await raw('*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$100000000\r\n', { timeoutMs: 3000 });
  assert.equal(got.text, '-ERR Protocol error: invalid bulk length\r\n');
  assert.ok(got.closed);
  assert.equal(kv.data.has('big'), false);
});

test('a value over maxValueBytes but within the protocol limit is refused; the connection stays', async () => {
  const r = ioredis();
  try {
    await assert.rejects(r.set('io:big', Buffer.alloc(MAX_VALUE + 1)), /ERR value of \d+ bytes exceeds the limit of \d+/);
    assert.equal(await r.set('io:big', Buffer.alloc(MAX_VALUE)), 'OK');
    assert.equal((await r.getBuffer('io:big'))?.length, MAX_VALUE);
  } finally {
    r.disconnect();
  }
});

test('a client that stops reading stops the server from executing its pipeline (back-pressure)', async () => {
  const value = Buffer.alloc(32 * 1024, 0x61);
  kv.data.set('bp:v', { value, expiresAt: 0 });
  const n = 1000; // 32 MB of replies in all
  const req = '*2\r\n$3\r\nGET\r\n$4\r\nbp:v\r\n';
  const reply = `$${value.length}\r\n${value.toString('latin1')}\r\n`;
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  sock.pause(); // read nothing for now
  const before = kv.calls('get');
  sock.write(req.repeat(n));
  // Give the server time to execute all it is willing to.
  await new Promise((r) => setTimeout(r, 300));
  const executedWhilePaused = kv.calls('get') - before;
  assert.ok(executedWhilePaused < n / 2, `server ran ${executedWhilePaused} of ${n} GETs for a client that reads nothing`);
  // Now read everything: all replies arrive, in order.
  let received = 0;
  let expectedBytes = reply.length * n;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received} of ${expectedBytes} bytes`)), 10_000);
    sock.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= expectedBytes) {
        clearTimeout(timer);
        resolve();
      }
    });
    sock.resume();
  });
  assert.equal(received, expectedBytes);
  assert.equal(kv.calls('get') - before, n);
  sock.destroy();
});

test('replies queued behind a client that reads slowly arrive intact (the reply buffer is reused only once written)', async () => {
  const n = 40_000;
  const valueOf = (i: number): string => `v${i}:`.padEnd(200, String.fromCharCode(97 + (i % 26)));
  for (let i = 0; i < n; i++) kv.data.set(`slow:${i}`, { value: Buffer.from(valueOf(i)), expiresAt: 0 });
  let req = '';
  let expected = '';
  for (let i = 0; i < n; i++) {
    req += `*2\r\n$3\r\nGET\r\n$${`slow:${i}`.length}\r\nslow:${i}\r\n`;
    expected += `$200\r\n${valueOf(i)}\r\n`;
  }
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  sock.pause(); // the server's writes back up: ~8 MB of replies, more than the socket buffers hold
  sock.write(req);
  await new Promise((r) => setTimeout(r, 300));
  const parts: Buffer[] = [];
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received} of ${expected.length} bytes`)), 20_000);
    sock.on('data', (d: Buffer) => {
      parts.push(d);
      received += d.length;
      if (received >= expected.length) {
        clearTimeout(timer);
        resolve();
      }
    });
    sock.resume();
  });
  const got = Buffer.concat(parts).toString('latin1');
  let at = got === expected ? -1 : 0;
  while (at >= 0 && got[at] === expected[at]) at++;
  assert.equal(at, -1, `replies differ from byte ${at}: ${JSON.stringify(got.slice(at, at + 40))} where ${JSON.stringify(expected.slice(at, at + 40))} was sent`);
  for (let i = 0; i < n; i++) kv.data.delete(`slow:${i}`);
  sock.destroy();
});

test('the listener counts connections and stop() closes them', async () => {
  const extra = new RespServer({ door: doorOf(kv, MAX_VALUE), port: 0 });
  await extra.start();
  const a = new Redis({ port: extra.address().port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  a.on('error', () => {});
  try {
    await a.connect();
    assert.equal(await a.ping(), 'PONG');
    assert.equal(extra.connections(), 1);
    const closed = new Promise<void>((resolve) => a.once('end', () => resolve()));
    await extra.stop();
    await closed;
    assert.equal(extra.connections(), 0);
  } finally {
    // ioredis arms a 2 s timer when disconnect() is called on an ended connection.
    if (a.status !== 'end') a.disconnect();
    await extra.stop();
  }
});

/** A KvService whose calls wait while the gate is closed: a slow owner, under test control. */
class GatedKv extends MemoryKv {
  private gate: Promise<void> | null = null;
  private openGate: () => void = () => {};
  waiting = 0;
  close(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }
  open(): void {
    this.gate = null;
    this.openGate();
  }
  private async pass(): Promise<void> {
    while (this.gate) {
      this.waiting++;
      await this.gate;
      this.waiting--;
    }
  }
  override async get(group: string, key: string, opts: { deadline: number }): Promise<GetResult | null> {
    await this.pass();
    return super.get(group, key, opts);
  }
  override async write(group: string, key: string, op: WriteOp, opts: { deadline: number }): Promise<WriteResult> {
    await this.pass();
    return super.write(group, key, op, opts);
  }
}

async function withServer(
  kvImpl: DoorKv,
  opts: Omit<Partial<RespServerOptions>, 'door'> & { password?: string },
  body: (port: number, srv: RespServer) => Promise<void>,
): Promise<void> {
  const { password, ...rest } = opts;
  const srv = new RespServer({ door: doorOf(kvImpl, MAX_VALUE, password), port: 0, ...rest });
  await srv.start();
  try {
    await body(srv.address().port, srv);
  } finally {
    await srv.stop();
  }
}

function connect(p: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(p, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Collect a socket's input until `n` bytes arrived (or fail after `ms`). */
function readBytes(sock: net.Socket, n: number, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`got ${text.length} of ${n} bytes: ${JSON.stringify(text.slice(0, 80))}`)), ms);
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      if (text.length >= n) {
        clearTimeout(timer);
        sock.off('data', onData);
        resolve(text);
      }
    };
    sock.on('data', onData);
  });
}

test('replies before a slow command are sent without waiting for it', async () => {
  const gated = new GatedKv();
  await withServer(gated, {}, async (p) => {
    const sock = await connect(p);
    try {
      gated.close();
      sock.write('PING\r\nECHO first\r\nGET slow\r\nECHO after\r\n');
      // +PONG and "first" arrive while GET is still held at the owner.
      assert.equal(await readBytes(sock, '+PONG\r\n$5\r\nfirst\r\n'.length), '+PONG\r\n$5\r\nfirst\r\n');
      assert.equal(gated.waiting, 1);
      gated.open();
      assert.equal(await readBytes(sock, '$-1\r\n$5\r\nafter\r\n'.length), '$-1\r\n$5\r\nafter\r\n');
    } finally {
      sock.destroy();
    }
  });
});

test('a busy connection stops reading instead of buffering a flood of requests', async () => {
  const gated = new GatedKv();
  await withServer(gated, {}, async (p) => {
    const sock = await connect(p);
    try {
      gated.close();
      const value = 'v'.repeat(16 * 1024);
      const req = `*3\r\n$3\r\nSET\r\n$4\r\nk:fl\r\n$${value.length}\r\n${value}\r\n`;
      const n = 1500; // ~24 MB: more than the parser would ever hold (16 MiB)
      sock.write(req.repeat(n));
      await new Promise((r) => setTimeout(r, 300));
      // The server took only a bounded part; the rest waits in the client's socket buffer.
      assert.ok(sock.writableLength > 8 * 1024 * 1024, `client still holds ${sock.writableLength} bytes`);
      assert.equal(gated.waiting, 1, 'one command at a time');
      gated.open();
      const replies = await readBytes(sock, '+OK\r\n'.length * n, 20_000);
      assert.equal(replies, '+OK\r\n'.repeat(n));
    } finally {
      sock.destroy();
    }
  });
});

test('a client that half-closes after its requests still gets every reply', async () => {
  const gated = new GatedKv();
  await withServer(gated, {}, async (p) => {
    const sock = await connect(p);
    gated.close();
    sock.end('SET hc 1\r\nGET hc\r\n');
    const got = readBytes(sock, '+OK\r\n$1\r\n1\r\n'.length);
    await new Promise((r) => setTimeout(r, 50));
    gated.open();
    assert.equal(await got, '+OK\r\n$1\r\n1\r\n');
    await new Promise<void>((resolve) => sock.on('close', () => resolve()));
  });
});

test('connections beyond maxConnections are refused with a Redis error', async () => {
  await withServer(new MemoryKv(), { maxConnections: 1 }, async (p, srv) => {
    const first = await connect(p);
    try {
      first.write('PING\r\n');
      await readBytes(first, 7);
      const second = await connect(p);
      const text = await readBytes(second, '-ERR max number of clients reached\r\n'.length);
      assert.equal(text, '-ERR max number of clients reached\r\n');
      second.destroy();
      assert.equal(srv.connections(), 1);
    } finally {
      first.destroy();
    }
  });
});

// ---- RESP3, CLIENT REPLY, RESET: the same byte stream to redis-server and to jincache ----

test('HELLO, RESET and CLIENT REPLY: the same bytes back as redis-server sends for the same stream', async () => {
  const redis = await startRedisServer();
  try {
    const streams = [
      // HELLO 3's reply and everything after it in RESP3, until RESET goes back to RESP2
      'GET nokey\r\nHELLO 3\r\nGET nokey\r\nCLIENT GETNAME\r\nPING\r\nHELLO\r\nHELLO 4\r\nHELLO 2\r\nGET nokey\r\nHELLO 3\r\nRESET\r\nGET nokey\r\nQUIT\r\n',
      // SKIP drops its own reply and the next one; OFF until ON; ON while skipping answers
      'CLIENT REPLY SKIP\r\nPING\r\nECHO a\r\nCLIENT REPLY OFF\r\nPING\r\nECHO hidden\r\nCLIENT REPLY SKIP\r\nCLIENT REPLY ON\r\nECHO b\r\n' +
        'CLIENT REPLY SKIP\r\nCLIENT REPLY SKIP\r\nECHO c\r\nECHO d\r\nCLIENT REPLY SKIP\r\nCLIENT REPLY ON\r\nECHO e\r\nCLIENT REPLY OFF\r\nRESET\r\nECHO f\r\nQUIT\r\n',
      // errors are withheld too
      'CLIENT REPLY OFF\r\nNOSUCH\r\nGET\r\nCLIENT REPLY ON\r\nECHO g\r\nCLIENT REPLY SKIP\r\nNOSUCH\r\nECHO h\r\nQUIT\r\n',
    ];
    for (const stream of streams) {
      const theirs = await raw(stream, { port: redis.port });
      const ours = await raw(stream);
      const norm = (t: string) => t.replace(/\$\d+\r\n7\.0\.\d+(-jincache)?\r\n/g, '<version>').replace(/:\d+\r\n\$4\r\nmode/g, '<id>mode');
      assert.equal(norm(ours.text), norm(theirs.text), JSON.stringify(stream));
      assert.ok(ours.closed && theirs.closed);
    }
  } finally {
    await redis.stop();
  }
});

test('ioredis in RESP2 and RESP3 gets the same values, and a RESP3 null, map and verbatim reply decode', async () => {
  for (const protocol of [2, 3] as const) {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, protocol });
    r.on('error', () => {});
    try {
      await r.connect();
      assert.equal(await r.set(`p${protocol}`, 'v'), 'OK');
      assert.equal(await r.get(`p${protocol}`), 'v');
      assert.equal(await r.get('p:missing'), null);
      assert.deepEqual(await r.call('CONFIG', 'GET', 'databases'), ['databases', '1']);
      assert.match(String(await r.info('clients')), /^# Clients\r\nconnected_clients:\d+\r\n/);
      assert.match(String(await r.call('CLIENT', 'INFO')), new RegExp(` resp=${protocol} `));
      assert.equal(await r.call('CLIENT', 'GETNAME'), null);
    } finally {
      r.disconnect();
    }
  }
});

// ---- the connection registry ----

test('CLIENT LIST shows every connection; CLIENT KILL closes another by ID, ADDR or USER', async () => {
  const a = ioredis();
  const b = ioredis();
  try {
    await a.connect();
    await b.connect();
    await a.client('SETNAME', 'alpha');
    await b.client('SETNAME', 'beta');
    const list = String(await a.client('LIST'));
    const line = (name: string) => list.split('\n').find((l) => l.includes(` name=${name} `)) ?? assert.fail(`no ${name} in ${list}`);
    const betaId = Number(/^id=(\d+)/.exec(line('beta'))![1]);
    assert.equal(betaId, await b.client('ID'));
    assert.match(line('alpha'), /addr=127\.0\.0\.1:\d+ laddr=127\.0\.0\.1:\d+ fd=\d+ name=alpha age=\d+ idle=\d+ flags=N .* cmd=client\|list user=default /);
    assert.match(line('beta'), / cmd=client\|setname /);
    assert.equal(String(await a.client('LIST', 'ID', String(betaId))).split('\n').length, 2);
    const closed = new Promise<void>((resolve) => b.once('end', () => resolve()));
    assert.equal(await a.client('KILL', 'ID', String(betaId)), 1);
    await closed;
    assert.doesNotMatch(String(await a.client('LIST')), / name=beta /);
    // the old form names the address; killing oneself closes after the reply
    const addr = /addr=(\S+)/.exec(String(await a.client('INFO')))![1]!;
    assert.equal(await a.client('KILL', addr), 'OK');
    await new Promise<void>((resolve) => a.once('end', () => resolve()));
  } finally {
    a.disconnect();
    b.disconnect();
  }
});

test('INFO counts commands, connections and bytes; CONFIG RESETSTAT starts them again; keyspace and maxmemory come from the node', async () => {
  await withServer(new MemoryKv(), { keyspace: async () => ({ keys: 12, expires: 5, avgTtl: 3000 }), maxmemory: () => 1 << 20, info: () => ({ node_id: 'n1' }) }, async (p) => {
    const r = new Redis({ port: p, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    r.on('error', () => {});
    try {
      await r.connect();
      for (let i = 0; i < 20; i++) await r.ping();
      await r.call('NOSUCH').catch(() => {});
      const field = (text: string, name: string) => Number(new RegExp(`\\r\\n${name}:([0-9.]+)\\r\\n`).exec(text)?.[1] ?? NaN);
      const info = await r.info();
      assert.ok(field(info, 'total_commands_processed') >= 21, info);
      assert.equal(field(info, 'connected_clients'), 1);
      assert.equal(field(info, 'total_connections_received'), 1);
      assert.ok(field(info, 'total_error_replies') >= 1);
      assert.ok(field(info, 'total_net_input_bytes') > 20 * 14);
      assert.ok(field(info, 'used_memory') > 1 << 20);
      assert.equal(field(info, 'maxmemory'), 1 << 20);
      assert.match(info, /\r\nmaxmemory_human:1\.00M\r\n/);
      assert.match(info, /\r\n# Keyspace\r\ndb0:keys=12,expires=5,avg_ttl=3000\r\n/);
      assert.match(info, /\r\n# Jincache\r\ngroup:default\r\nnode_id:n1\r\n$/);
      assert.deepEqual(await r.call('CONFIG', 'GET', 'maxmemory'), ['maxmemory', String(1 << 20)]);
      assert.equal(await r.call('CONFIG', 'RESETSTAT'), 'OK');
      const after = await r.info('stats');
      assert.ok(field(after, 'total_commands_processed') <= 2, after);
      assert.equal(field(after, 'total_connections_received'), 0);
    } finally {
      r.disconnect();
    }
  });
});

// ---- cross-protocol requests (a browser made to talk to the cache) ----

class CapturingLogger implements RespLogger {
  readonly warnings: { obj: object; msg: string | undefined }[] = [];
  debug() {}
  info() {}
  error() {}
  warn(obj: object, msg?: string) {
    this.warnings.push({ obj, msg });
  }
}

test('an HTTP request, or POST / Host: as a command, is closed without a reply and changes nothing; logged once a minute at most', async () => {
  const log = new CapturingLogger();
  const store = new MemoryKv();
  await withServer(store, { logger: log }, async (p) => {
    const attacks = [
      'POST /keys HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\r\nSET pwned 1\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
      '*3\r\n$4\r\nPOST\r\n$1\r\n/\r\n$8\r\nHTTP/1.1\r\n*3\r\n$3\r\nSET\r\n$5\r\npwned\r\n$1\r\n1\r\n',
      '*2\r\n$5\r\nhOST:\r\n$1\r\nx\r\nSET pwned 1\r\n',
    ];
    for (const attack of attacks) {
      const got = await raw(attack, { port: p });
      assert.deepEqual(got, { text: '', closed: true }, JSON.stringify(attack));
    }
    assert.equal(store.data.size, 0);
    assert.equal(log.warnings.length, 1, 'one line, not one per attempt');
    assert.match(log.warnings[0]!.msg ?? '', /^Possible SECURITY ATTACK detected/);
    // a command that merely starts like one is served
    assert.equal((await raw('*1\r\n$5\r\nHOSTS\r\nQUIT\r\n', { port: p })).text, "-ERR unknown command 'HOSTS', with args beginning with: \r\n+OK\r\n");
  });
});

// ---- before AUTH, Redis's tighter request limits ----

test('an unauthenticated client is held to 10 arguments and 16 KiB per argument until it authenticates', async () => {
  await withServer(new MemoryKv(), { password: 'pw' }, async (p) => {
    const eleven = `*11\r\n$4\r\nMGET\r\n${'$1\r\nk\r\n'.repeat(10)}`;
    assert.deepEqual(await raw(eleven, { port: p }), { text: '-ERR Protocol error: unauthenticated multibulk length\r\n', closed: true });
    const big = `*2\r\n$4\r\nECHO\r\n$16385\r\n${'x'.repeat(16385)}\r\n`;
    assert.deepEqual(await raw(big, { port: p }), { text: '-ERR Protocol error: unauthenticated bulk length\r\n', closed: true });
    const authed = await raw(`AUTH pw\r\n${eleven}${big}QUIT\r\n`, { port: p });
    assert.equal(authed.text, `+OK\r\n*10\r\n${'$-1\r\n'.repeat(10)}$16385\r\n${'x'.repeat(16385)}\r\n+OK\r\n`);
    // RESET signs out: the limits apply again
    const reset = await raw(`HELLO 3 AUTH default pw\r\nRESET\r\n${eleven}`, { port: p, until: (t) => t.includes('Protocol error') });
    assert.match(reset.text, /\+RESET\r\n-ERR Protocol error: unauthenticated multibulk length\r\n$/);
  });
});

// ---- limits shared with the HTTP API (SPEC §8) ----

test('ClientLimits: max clients, idle timeout, output buffer and the shared input budget each cost only the offending client', async () => {
  const refused: string[] = [];
  const limits = new ClientLimits({ maxClients: 2, maxInputBytes: 64 * 1024, outputBufferBytes: 256 * 1024, idleTimeoutMs: 300, onRefused: (l) => refused.push(l) });
  const store = new MemoryKv();
  store.data.set('big', { value: Buffer.alloc(64 * 1024, 0x62), expiresAt: 0 });
  await withServer(store, { limits }, async (p) => {
    // max clients: the third is refused with Redis's error
    const one = await connect(p);
    const two = await connect(p);
    const third = await connect(p);
    assert.equal(await readBytes(third, '-ERR max number of clients reached\r\n'.length), '-ERR max number of clients reached\r\n');
    third.destroy();
    // idle timeout: a client that sends nothing is closed; one that keeps talking is not
    const oneClosed = new Promise<void>((resolve) => one.once('close', () => resolve()));
    const busy = setInterval(() => two.write('PING\r\n'), 100);
    await oneClosed;
    clearInterval(busy);
    assert.equal(two.destroyed, false);
    two.destroy();
    await new Promise((r) => setTimeout(r, 50));
    // output buffer: a client that reads nothing while asking for 8 MiB is dropped
    const reader = await connect(p);
    reader.pause();
    const dropped = new Promise<void>((resolve) => reader.once('close', () => resolve()));
    reader.write('GET big\r\n'.repeat(128));
    reader.resume(); // drain what little arrived; the server already gave up on it
    reader.on('data', () => {});
    await dropped;
    // input budget: a client holding a partial request past the shared budget is dropped, the other stays
    const greedy = await connect(p);
    const polite = await connect(p);
    const greedyClosed = new Promise<void>((resolve) => greedy.once('close', () => resolve()));
    greedy.write(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$60000\r\n${'v'.repeat(40_000)}`);
    await new Promise((r) => setTimeout(r, 50));
    polite.write(`*2\r\n$4\r\nECHO\r\n$30000\r\n${'p'.repeat(30_000)}`);
    await greedyClosed;
    polite.write('\r\n');
    assert.equal((await readBytes(polite, 30_000 + 10)).slice(0, 8), '$30000\r\n');
    polite.destroy();
    assert.deepEqual([...new Set(refused)].sort(), ['idle_timeout', 'input_buffer', 'max_clients', 'output_buffer']);
  });
});
