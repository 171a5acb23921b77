/**
 * The Redis clients people already have, unchanged, against a real 3-node jincache cluster
 * (SPEC §6): node-redis with its defaults (RESP3: HELLO 3, CLIENT SETINFO), ioredis (RESP3 by
 * default, and RESP2), redis-py from Debian's python3-redis, and redis-cli (RESP2 and `-3`).
 * Each client connects to a different node, so most keys live on another node and every write
 * is forwarded.
 *
 * One table of steps (STEPS) runs through every client: a command and what the reply must be,
 * as a plain value each client's result is normalised to. A command that jincache learns is
 * covered by adding a step; a step a client cannot express (redis-cli's flat output) says so.
 *
 * Also: an HTTP request sent to a RESP port is closed and changes nothing (cross-protocol
 * scripting), and the node keeps serving.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import net from 'node:net';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const REDIS_CLI = '/usr/bin/redis-cli';
const PYTHON = '/usr/bin/python3';
const PY_RUNNER = resolve(import.meta.dirname, '../helpers/redis-py-runner.py');

// ---- the steps ----

/** A reply, normalised: text, integers, null, arrays (maps flattened to key, value, ...). */
type Value = string | number | null | Value[];

/**
 * What a reply must be: a Value exactly; a RegExp a text reply must match; `{ error }` an error
 * reply whose message matches; `{ between }` an integer in range; `{ pairs }` a map's key/value pairs (a
 * RESP3 map or a RESP2 flat array); `{ integer: true }` any integer.
 */
type Expect =
  | Value
  | RegExp
  | { readonly error: RegExp }
  | { readonly between: readonly [number, number] }
  | { readonly integer: true }
  | { readonly pairs: readonly (readonly [string, Expect])[] }
  | readonly Expect[];

interface Step {
  /** `$name` is the client's name; `$x` (any other word) a key private to the client. */
  readonly cmd: readonly string[];
  readonly expect: Expect;
}

/** The everyday work of a cache client, on the commands jincache answers today. */
const STEPS: readonly Step[] = [
  { cmd: ['PING'], expect: 'PONG' },
  { cmd: ['PING', 'hello there'], expect: 'hello there' },
  { cmd: ['ECHO', 'x y'], expect: 'x y' },
  { cmd: ['SELECT', '0'], expect: 'OK' },
  { cmd: ['SET', '$a', 'v1'], expect: 'OK' },
  { cmd: ['GET', '$a'], expect: 'v1' },
  { cmd: ['SET', '$a', 'v2', 'NX'], expect: null },
  { cmd: ['SET', '$a', 'v3', 'XX'], expect: 'OK' },
  { cmd: ['GET', '$a'], expect: 'v3' },
  { cmd: ['SET', '$b', 'x', 'EX', '100'], expect: 'OK' },
  { cmd: ['TTL', '$b'], expect: { between: [98, 100] } },
  { cmd: ['PTTL', '$b'], expect: { between: [90_000, 100_000] } },
  { cmd: ['MSET', '$c', 'c', '$d', 'd'], expect: 'OK' },
  { cmd: ['MGET', '$a', '$missing', '$d'], expect: ['v3', null, 'd'] },
  { cmd: ['EXISTS', '$a', '$c', '$missing', '$a'], expect: 3 },
  { cmd: ['EXPIRE', '$a', '50'], expect: 1 },
  { cmd: ['TTL', '$a'], expect: { between: [48, 50] } },
  { cmd: ['TTL', '$missing'], expect: -2 },
  { cmd: ['TTL', '$c'], expect: -1 },
  { cmd: ['DEL', '$a', '$b', '$missing'], expect: 2 },
  { cmd: ['GET', '$a'], expect: null },
  { cmd: ['DBSIZE'], expect: { integer: true } },
  { cmd: ['CLIENT', 'SETNAME', '$name'], expect: 'OK' },
  { cmd: ['CLIENT', 'GETNAME'], expect: '$name' },
  { cmd: ['CLIENT', 'ID'], expect: { integer: true } },
  { cmd: ['CLIENT', 'INFO'], expect: /^id=\d+ addr=127\.0\.0\.1:\d+ .* name=\$name .* cmd=client\|info user=default redir=-1 resp=[23] / },
  { cmd: ['CLIENT', 'LIST'], expect: / name=\$name / },
  { cmd: ['CLIENT', 'NO-EVICT', 'on'], expect: 'OK' },
  { cmd: ['INFO', 'server'], expect: /^# Server\r\nredis_version:7\.0\.0-jincache\r\n/ },
  { cmd: ['INFO', 'keyspace'], expect: /^# Keyspace\r\ndb0:keys=\d+,expires=\d+,avg_ttl=\d+\r\n$/ },
  { cmd: ['CONFIG', 'GET', 'databases'], expect: { pairs: [['databases', '1']] } },
  { cmd: ['CONFIG', 'GET', 'maxmemory'], expect: { pairs: [['maxmemory', /^\d+$/]] } },
  { cmd: ['TIME'], expect: [/^\d{10}$/, /^\d{1,6}$/] },
  { cmd: ['NOSUCH', 'x'], expect: { error: /^ERR unknown command 'NOSUCH', with args beginning with: 'x' $/ } },
  { cmd: ['GET'], expect: { error: /^ERR wrong number of arguments for 'get' command$/ } },
  { cmd: ['SET', '$a', 'v', 'EX', 'soon'], expect: { error: /^ERR value is not an integer or out of range$/ } },
  { cmd: ['DEL', '$c', '$d'], expect: 2 },
];

/** The step's arguments for a client: `$name` its name, `$word` a key of its own. */
function argsFor(client: string, cmd: readonly string[]): string[] {
  return cmd.map((a) => (a === '$name' ? client : a.startsWith('$') ? `${client}:${a.slice(1)}` : a));
}

/** `expect` with `$name` filled in (in texts and patterns). */
function expectFor(client: string, e: Expect): Expect {
  if (typeof e === 'string') return e.replaceAll('$name', client);
  if (e instanceof RegExp) return new RegExp(e.source.replaceAll('\\$name', client), e.flags);
  if (Array.isArray(e)) return e.map((x) => expectFor(client, x));
  if (e !== null && typeof e === 'object' && 'pairs' in e) return { pairs: e.pairs.map(([k, v]) => [k, expectFor(client, v)] as const) };
  return e;
}

/** A client's answer to a step: a value, or an error's message. */
type Outcome = { readonly value: Value } | { readonly error: string };

/** Why `got` does not meet `e`, or null. */
function mismatch(e: Expect, got: Outcome): string | null {
  const show = JSON.stringify('value' in got ? got.value : { error: got.error });
  if (isErrorExpect(e)) return 'error' in got && e.error.test(got.error) ? null : `expected an error ${e.error}, got ${show}`;
  if ('error' in got) return `expected ${String(e)}, got the error ${got.error}`;
  return valueMismatch(e, got.value, show);
}

function valueMismatch(e: Expect, v: Value, show: string): string | null {
  if (e instanceof RegExp) return typeof v === 'string' && e.test(v) ? null : `expected text matching ${e}, got ${show}`;
  if (Array.isArray(e)) {
    if (!Array.isArray(v) || v.length !== e.length) return `expected ${e.length} items, got ${show}`;
    for (let i = 0; i < e.length; i++) {
      const why = valueMismatch(e[i]!, v[i]!, show);
      if (why !== null) return why;
    }
    return null;
  }
  if (e !== null && typeof e === 'object') {
    if ('between' in e) return typeof v === 'number' && v >= e.between[0] && v <= e.between[1] ? null : `expected ${e.between.join('..')}, got ${show}`;
    if ('integer' in e) return typeof v === 'number' && Number.isInteger(v) ? null : `expected an integer, got ${show}`;
    if ('pairs' in e) return valueMismatch(e.pairs.flatMap(([k, x]) => [k, x]), v, show);
    return `unexpected expectation ${JSON.stringify(e)}`;
  }
  return v === e ? null : `expected ${JSON.stringify(e)}, got ${show}`;
}

/** JavaScript client results as Values: Buffers as text, Maps and objects as flat pairs, String objects as text. */
function normalise(x: unknown): Value {
  if (x === null || x === undefined) return null;
  if (typeof x === 'string' || typeof x === 'number') return x;
  if (x instanceof String) return String(x);
  if (Buffer.isBuffer(x)) return x.toString('latin1');
  if (Array.isArray(x)) return x.map(normalise);
  if (x instanceof Map) return [...x].flatMap(([k, v]) => [normalise(k), normalise(v)]);
  if (typeof x === 'object') return Object.entries(x).flatMap(([k, v]) => [k, normalise(v)]);
  return String(x);
}

/** Run every step through `send` (one command, its outcome) and fail listing every mismatch. */
async function runSteps(client: string, send: (args: string[]) => Promise<Outcome>): Promise<void> {
  const bad: string[] = [];
  for (const step of STEPS) {
    const args = argsFor(client, step.cmd);
    const got = await send(args);
    const why = mismatch(expectFor(client, step.expect), got);
    if (why !== null) bad.push(`${args.join(' ')}: ${why}`);
  }
  assert.deepEqual(bad, [], `${client}:\n${bad.join('\n')}`);
}

async function outcome(p: Promise<unknown>): Promise<Outcome> {
  try {
    return { value: normalise(await p) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

// ---- the cluster ----

let cluster: TestCluster;
const respPorts: number[] = [];

before(async () => {
  const need = [REDIS_CLI, PYTHON].filter((f) => !existsSync(f));
  if (need.length > 0 || spawnSyncFails(PYTHON, ['-c', 'import redis'])) {
    execFileSync('bash', ['scripts/install-deps.sh', 'redis', 'python'], { stdio: 'inherit' });
  }
  for (let i = 0; i < 3; i++) respPorts.push(await freePort());
  cluster = await startCluster({ nodes: 3, nodeArgs: (i) => ['--resp-port', String(respPorts[i])] });
});

after(async () => {
  await cluster?.stop();
});

function spawnSyncFails(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
}

function ioredis(port: number, protocol?: 2 | 3): Redis {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, ...(protocol !== undefined ? { protocol } : {}) });
  r.on('error', () => {});
  return r;
}

describe('every client runs the same steps against a 3-node cluster', () => {
  it('node-redis with its defaults (RESP3)', async () => {
    const client = createClient({ socket: { host: '127.0.0.1', port: respPorts[0]!, reconnectStrategy: false } });
    client.on('error', () => {});
    await client.connect();
    try {
      await runSteps('node-redis', (args) => outcome(client.sendCommand(args)));
      // its own API on top of the RESP3 replies
      assert.equal(await client.set('node-redis:api', 'v', { expiration: { type: 'EX', value: 60 } }), 'OK');
      assert.equal(await client.get('node-redis:api'), 'v');
      assert.deepEqual(await client.mGet(['node-redis:api', 'node-redis:none']), ['v', null]);
      assert.match(await client.info('server'), /redis_version:7/);
      assert.match(String(await client.clientInfo().then((c) => c.resp)), /^3$/);
      assert.equal((await client.clientInfo()).libName, 'node-redis');
      assert.equal(await client.del('node-redis:api'), 1);
    } finally {
      client.destroy();
    }
  });

  it('node-redis with RESP2', async () => {
    const client = createClient({ RESP: 2, socket: { host: '127.0.0.1', port: respPorts[1]!, reconnectStrategy: false } });
    client.on('error', () => {});
    await client.connect();
    try {
      await runSteps('node-redis2', (args) => outcome(client.sendCommand(args)));
    } finally {
      client.destroy();
    }
  });

  for (const protocol of [3, 2] as const) {
    it(`ioredis (RESP${protocol}${protocol === 3 ? ', its default' : ''})`, async () => {
      const r = ioredis(respPorts[protocol === 3 ? 1 : 2]!, protocol === 3 ? undefined : 2);
      await r.connect();
      try {
        await runSteps(`ioredis${protocol}`, (args) => outcome(r.call(args[0]!, ...args.slice(1))));
        // a pipeline over keys on all three nodes keeps its order
        const p = r.pipeline();
        for (let i = 0; i < 200; i++) p.set(`io${protocol}:seq:${i}`, String(i)).get(`io${protocol}:seq:${i}`);
        const results = await p.exec();
        assert.equal(results?.length, 400);
        for (let i = 0; i < 200; i++) assert.deepEqual(results![2 * i + 1], [null, String(i)]);
        assert.match(await r.info('clients'), /connected_clients:\d+/);
      } finally {
        r.disconnect();
      }
    });
  }

  it('redis-py (Debian python3-redis)', async () => {
    const job = { port: respPorts[2]!, name: 'redis-py', steps: STEPS.map((s) => argsFor('redis-py', s.cmd)) };
    const out = await new Promise<string>((resolveRun, reject) => {
      const child = spawn(PYTHON, [PY_RUNNER], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolveRun(stdout);
        else reject(new Error(`redis-py runner exited ${code}: ${stderr}`));
      });
      child.stdin.end(JSON.stringify(job));
    });
    const { steps, api } = JSON.parse(out) as { steps: ({ ok: Value } | { error: string; type: string })[]; api: Record<string, unknown> };
    const replies = [...steps];
    await runSteps('redis-py', async () => {
      const r = replies.shift()!;
      // redis-py takes the ERR prefix off a plain ResponseError's message (others get a class of their own)
      return 'ok' in r ? { value: r.ok } : { error: r.type === 'ResponseError' ? `ERR ${r.error}` : r.error };
    });
    // redis-py's own parsing of INFO, CLIENT LIST, CONFIG GET and TIME
    assert.equal(api.set, true);
    assert.equal(api.get, 'v');
    assert.ok(typeof api.ttl === 'number' && api.ttl > 55 && api.ttl <= 60);
    assert.deepEqual(api.mget, ['v', null]);
    assert.deepEqual(api.pipeline, Array.from({ length: 50 }, (_, i) => [true, String(i)]).flat());
    assert.equal(api.delete, 50);
    assert.deepEqual(api.info_keys, ['connected_clients', 'loading', 'redis_version', 'uptime_in_seconds', 'used_memory']);
    assert.equal(api.info_version, '7.0.0-jincache');
    assert.ok(typeof api.info_used_memory === 'number' && api.info_used_memory > 0);
    const db0 = (api.info_keyspace as { db0?: { keys?: unknown; expires?: unknown; avg_ttl?: unknown } }).db0;
    assert.ok(typeof db0?.keys === 'number' && db0.keys > 0 && typeof db0.expires === 'number' && typeof db0.avg_ttl === 'number', JSON.stringify(api.info_keyspace));
    assert.deepEqual(api.client_list_mine, [
      { name: 'redis-py', db: '0', flags: 'N', cmd: 'del', resp: '2' },
      { name: 'redis-py-api', db: '0', flags: 'N', cmd: 'client|list', resp: '2' },
    ]);
    assert.ok(typeof api.client_id === 'number');
    assert.equal(api.client_getname, 'redis-py-api');
    assert.deepEqual(Object.keys(api.config_get as Record<string, string>).sort(), ['maxmemory', 'maxmemory-policy', 'maxmemory-samples']);
    assert.equal((api.config_get as Record<string, string>)['maxmemory-policy'], 'allkeys-lru');
    assert.ok(Array.isArray(api.time) && api.time.length === 2 && (api.time as number[]).every(Number.isInteger));
    assert.equal(api.ping, true);
    assert.equal(api.echo, 'hi');
  });

  for (const resp3 of [false, true]) {
    it(`redis-cli${resp3 ? ' -3' : ''}`, async () => {
      const name = resp3 ? 'cli3' : 'cli';
      // redis-cli is one process per command: per-connection state (CLIENT SETNAME) does not
      // carry over, so those steps are left to the clients above
      const perConnection = (s: Step) => s.cmd[0] === 'CLIENT' && s.cmd[1] !== 'ID' && s.cmd[1] !== 'NO-EVICT';
      const bad: string[] = [];
      for (const step of STEPS.filter((s) => !perConnection(s))) {
        const args = argsFor(name, step.cmd);
        const text = await cli(respPorts[0]!, resp3, args);
        const why = cliMismatch(expectFor(name, step.expect), text, resp3);
        if (why !== null) bad.push(`${args.join(' ')}: ${why}`);
      }
      assert.deepEqual(bad, [], bad.join('\n'));
      // a session's state within one redis-cli process: commands on stdin, one connection
      const session = await cliStdin(respPorts[1]!, resp3, 'CLIENT SETNAME cli-session\nCLIENT GETNAME\nCLIENT INFO\nHELLO\n');
      assert.match(session, new RegExp(`^OK\\ncli-session\\nid=\\d+ .* name=cli-session .* resp=${resp3 ? 3 : 2} `));
      assert.match(session, new RegExp(resp3 ? '\\nproto 3\\n' : '\\nproto\\n2\\n'));
    });
  }
});

// ---- redis-cli output ----

function cli(port: number, resp3: boolean, args: string[]): Promise<string> {
  return new Promise((resolveRun, reject) => {
    execFile(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...(resp3 ? ['-3'] : []), ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolveRun(stdout);
    });
  });
}

function cliStdin(port: number, resp3: boolean, input: string): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...(resp3 ? ['-3'] : [])]);
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(timer);
      resolveRun(out);
    });
    child.stdin.end(input);
  });
}

/**
 * Why redis-cli's output (no terminal: one line per element, an empty one for a null, errors as
 * their text, a RESP3 map as `key value` lines under -3) does not meet `e`, or null.
 */
function cliMismatch(e: Expect, text: string, resp3: boolean): string | null {
  const show = JSON.stringify(text);
  if (isErrorExpect(e)) return e.error.test(text.replace(/\n+$/, '')) ? null : `expected an error ${e.error}, got ${show}`;
  // multi-line text (INFO, CLIENT LIST) keeps its CRLFs, and redis-cli adds a newline
  if (e instanceof RegExp) return e.test(text) || e.test(text.replace(/\n$/, '')) ? null : `expected ${e}, got ${show}`;
  const leaves: (Expect | { readonly pair: readonly [string, Expect] })[] = [];
  const flatten = (x: Expect): void => {
    if (Array.isArray(x)) for (const item of x) flatten(item);
    else if (x !== null && typeof x === 'object' && 'pairs' in x) for (const pair of x.pairs) resp3 ? leaves.push({ pair }) : (leaves.push(pair[0]), flatten(pair[1]));
    else leaves.push(x);
  };
  flatten(e);
  const lines = text.replace(/\n$/, '').split('\n');
  if (lines.length !== leaves.length) return `expected ${leaves.length} lines, got ${show}`;
  for (let i = 0; i < lines.length; i++) {
    const leaf = leaves[i]!;
    const line = lines[i]!;
    const ok =
      leaf !== null && typeof leaf === 'object' && 'pair' in leaf
        ? line.startsWith(`${leaf.pair[0]} `) && cliLeaf(leaf.pair[1], line.slice(leaf.pair[0].length + 1))
        : cliLeaf(leaf, line);
    if (!ok) return `line ${i + 1}: expected ${JSON.stringify(leaf) ?? String(leaf)}, got ${show}`;
  }
  return null;
}

function isErrorExpect(e: Expect): e is { readonly error: RegExp } {
  return e !== null && typeof e === 'object' && !Array.isArray(e) && !(e instanceof RegExp) && 'error' in e;
}

function cliLeaf(leaf: Expect, line: string): boolean {
  if (leaf === null) return line === '';
  if (typeof leaf === 'string') return line === leaf;
  if (typeof leaf === 'number') return line === String(leaf);
  if (leaf instanceof RegExp) return leaf.test(line);
  if (typeof leaf === 'object' && 'between' in leaf) return /^-?\d+$/.test(line) && Number(line) >= leaf.between[0] && Number(line) <= leaf.between[1];
  if (typeof leaf === 'object' && 'integer' in leaf) return /^-?\d+$/.test(line);
  return false;
}

// ---- cross-protocol ----

describe('cross-protocol requests', () => {
  it('an HTTP request to a RESP port is closed without an answer and changes nothing', async () => {
    const port = respPorts[0]!;
    // what a web page can make a browser send: a POST with commands in its body
    await assert.rejects(
      fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'SET xproto pwned\r\nFLUSHALL\r\n', signal: AbortSignal.timeout(5000) }),
      (e: Error) => /fetch failed|other side closed|socket/i.test(`${e.message} ${String((e as { cause?: unknown }).cause)}`),
    );
    const got = await new Promise<{ text: string; closed: boolean }>((resolveRaw) => {
      const sock = net.connect(port, '127.0.0.1');
      let text = '';
      sock.on('data', (d) => (text += d.toString('latin1')));
      sock.on('error', () => {});
      sock.on('close', () => resolveRaw({ text, closed: true }));
      sock.write('GET /?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n*3\r\n$3\r\nSET\r\n$6\r\nxproto\r\n$1\r\n1\r\n');
    });
    assert.deepEqual(got, { text: '', closed: true });
    const r = ioredis(respPorts[1]!);
    await r.connect();
    try {
      assert.equal(await r.exists('xproto'), 0);
      assert.equal(await r.ping(), 'PONG', 'the node keeps serving');
    } finally {
      r.disconnect();
    }
    // the node's log is written asynchronously
    await waitFor('the security warning in node-1\'s log', () => /Possible SECURITY ATTACK detected/.test(cluster.nodes[0]!.log()) || null, 5000);
  });
});
