import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GetResult } from '../../cluster/kv.ts';
import { LiveConfig } from '../../config/live.ts';
import { parseConfig } from '../../config/schema.ts';
import { Metrics } from '../../observe/metrics.ts';
import { OPEN_DEFAULT } from '../auth.ts';
import { FrontDoor } from '../door.ts';
import {
  execute,
  executeCommand,
  parseInteger,
  unknownCommand,
  COMMAND_NAMES,
  type CommandEnv,
  type Session,
} from './commands.ts';
import { RespParser } from './parser.ts';
import { newSession } from './session.ts';
import { testListener } from '../../../test/helpers/resp-env.ts';
import { MemoryKv } from '../../../test/helpers/memory-kv.ts';
import { encode, type RespReply } from './writer.ts';

/** The map-backed cluster on a hand-driven clock, with 8-byte values at most. */
class FakeKv extends MemoryKv {
  now = 1_000_000;
  override clock = () => this.now;
  constructor() {
    super(8);
  }
}

function setup() {
  const kv = new FakeKv();
  const clock = { now: () => kv.now };
  const config = parseConfig({ cache: { group_name: 'g', max_key_bytes: 16, max_value_bytes: 8 }, fault_tolerance: { request_timeout: '250ms' } });
  const door = new FrontDoor({ kv, live: new LiveConfig(config), metrics: new Metrics({ defaultMetrics: false }), clock });
  const env: CommandEnv = {
    door,
    group: 'g',
    clock,
    info: async (sections) => `# Server\r\nsections:${sections.join(',')}\r\n`,
    keyspace: async () => ({ keys: kv.data.size, expires: 0, avgTtl: 0 }),
    listener: testListener(),
  };
  const session: Session = newSession(7, OPEN_DEFAULT);
  const parser = new RespParser();
  /**
   * Run a command given as strings the way the server does: sent as RESP, parsed, executed
   * from the parser's byte ranges (GET and SET take the fast path). Its reply as RESP text.
   */
  const run = async (...args: Array<string | Buffer>): Promise<string> => {
    parser.feed(multibulk(args));
    assert.equal(parser.nextCommand(), 'command');
    const reply: RespReply = await executeCommand(env, session, parser.command);
    return encode(reply).toString('latin1');
  };
  /** The same through the generic path, with argument Buffers. */
  const runGeneric = async (...args: Array<string | Buffer>): Promise<string> => {
    const reply: RespReply = await execute(env, session, args.map((a) => (typeof a === 'string' ? Buffer.from(a) : a)));
    return encode(reply).toString('latin1');
  };
  return { kv, env, door, session, parser, run, runGeneric };
}

function multibulk(args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

test('the GET/SET fast path answers exactly like the generic path', async () => {
  const fast = setup();
  const generic = setup();
  const cases: Array<Array<string | Buffer>> = [
    ['GET', 'missing'],
    ['SET', 'a', '1'],
    ['get', 'a'],
    ['gEt', 'a'],
    ['sEt', 'b', ''],
    ['GET', 'b'],
    ['GET', ''],
    ['SET', '', 'v'],
    ['GET', 'x'.repeat(16)],
    ['GET', 'x'.repeat(17)],
    ['SET', 'x'.repeat(17), 'v'],
    ['GET', Buffer.from([0xff, 0xfe])],
    ['SET', Buffer.from([0xc3, 0x28]), 'v'],
    ['SET', 'ключ', 'v'],
    ['GET', 'ключ'],
    ['SET', 'k', '12345678'],
    ['SET', 'k', '123456789'],
    ['GET', 'k'],
    ['GET'],
    ['GET', 'a', 'b'],
    ['SET', 'k'],
    ['SET', 'k', 'v', 'NX'],
    ['GAT', 'a'],
    ['SEX', 'a', 'b'],
    ['GETX', 'a'],
  ];
  for (const c of cases) {
    assert.equal(await fast.run(...c), await generic.runGeneric(...c), c.map(String).join(' '));
  }
  assert.deepEqual(fast.kv.data, generic.kv.data);
  assert.deepEqual(fast.kv.seen, generic.kv.seen);
});

test('SET keeps its own copy of the value: the parser may reuse its bytes right away', async () => {
  const { kv, env, session, parser } = setup();
  parser.feed(multibulk(['SET', 'k', 'abc']));
  assert.equal(parser.nextCommand(), 'command');
  const pending = executeCommand(env, session, parser.command);
  // The next chunk lands where the SET's bytes were (the storage rewinds when consumed).
  parser.feed(Buffer.alloc(64, 0x7a));
  await pending;
  assert.equal(kv.data.get('k')?.value.toString(), 'abc');
  parser.feed(multibulk(['ECHO', 'hello']));
});

test('GET answers without a promise when the router can answer from this node, else waits for get()', async () => {
  const { kv, env, session, parser } = setup();
  const local = new Map<string, GetResult | undefined>([['here', { value: Buffer.from('v1'), source: 'hit', expiresAt: 0 }]]);
  kv.getLocal = (_g, key) => local.get(key);
  const exec = (args: string[]) => {
    parser.feed(multibulk(args));
    assert.equal(parser.nextCommand(), 'command');
    return executeCommand(env, session, parser.command);
  };
  const hit = exec(['GET', 'here']);
  assert.ok(!(hit instanceof Promise));
  assert.equal(encode(hit).toString(), '$2\r\nv1\r\n');
  kv.data.set('elsewhere', { value: Buffer.from('v2'), expiresAt: 0 });
  const asked = exec(['GET', 'elsewhere']);
  assert.ok(asked instanceof Promise);
  assert.equal(encode(await asked).toString(), '$2\r\nv2\r\n');
  assert.deepEqual(kv.seen.map((s) => s.key), ['elsewhere']);
});

test('a plain SET is applied without a promise when no other node must hear of it, else waits for write()', async () => {
  const { kv, env, session, parser } = setup();
  const stored = new Map<string, string>();
  kv.writeLocal = (_g, key, op) => {
    if (key.startsWith('remote') || op.op !== 'set') return undefined;
    stored.set(key, op.value.toString());
    return { applied: key !== 'refused', existed: false };
  };
  const exec = (args: string[]) => {
    parser.feed(multibulk(args));
    assert.equal(parser.nextCommand(), 'command');
    return executeCommand(env, session, parser.command);
  };
  const here = exec(['SET', 'here', 'v1']);
  assert.ok(!(here instanceof Promise));
  assert.equal(encode(here).toString(), '+OK\r\n');
  assert.equal(stored.get('here'), 'v1');
  // the value is a copy, not a view of the parser's buffer
  parser.feed(multibulk(['SET', 'other', 'zz']));
  assert.equal(stored.get('here'), 'v1');
  parser.nextCommand();
  assert.equal(encode(exec(['SET', 'refused', 'x']) as RespReply).toString(), '$-1\r\n');
  const asked = exec(['SET', 'remote-1', 'v2']);
  assert.ok(asked instanceof Promise);
  assert.equal(encode(await asked).toString(), '+OK\r\n');
  assert.deepEqual(kv.seen.map((s) => s.key), ['remote-1']);
  // SET with options takes the generic path (a write with its options)
  await exec(['SET', 'here', 'v3', 'NX']);
  assert.deepEqual(kv.seen.at(-1), { call: 'write', key: 'here', op: { op: 'set', value: Buffer.from('v3'), expiry: { kind: 'none' }, cond: 'nx' }, deadline: 1_000_250 });
});

test('SET maps EX/PX and NX/XX onto a write, with the group\'s deadline', async () => {
  const { kv, run } = setup();
  assert.equal(await run('SET', 'a', '1'), '+OK\r\n');
  assert.deepEqual(kv.seen.at(-1), { call: 'write', key: 'a', op: { op: 'set', value: Buffer.from('1'), expiry: { kind: 'none' } }, deadline: 1_000_250 });
  assert.equal(await run('set', 'a', '2', 'nx'), '$-1\r\n');
  assert.equal(await run('SET', 'b', '2', 'XX'), '$-1\r\n');
  assert.equal(await run('SET', 'b', '2', 'EX', '10', 'NX'), '+OK\r\n');
  assert.deepEqual(kv.seen.at(-1)?.op, { op: 'set', value: Buffer.from('2'), expiry: { kind: 'in', ms: 10_000 }, cond: 'nx' });
  assert.equal(await run('SET', 'c', '3', 'PX', '1500'), '+OK\r\n');
  assert.equal(kv.data.get('c')?.expiresAt, 1_001_500);
});

test('SET option errors are Redis errors and write nothing', async () => {
  const { kv, run } = setup();
  const writes = () => kv.seen.filter((s) => s.call === 'write').length;
  assert.equal(await run('SET', 'k', 'v', 'EX'), '-ERR syntax error\r\n');
  assert.equal(await run('SET', 'k', 'v', 'EX', '1', 'PX', '1'), '-ERR syntax error\r\n');
  assert.equal(await run('SET', 'k', 'v', 'NX', 'XX'), '-ERR syntax error\r\n');
  assert.equal(await run('SET', 'k', 'v', 'BOGUS'), '-ERR syntax error\r\n');
  assert.equal(await run('SET', 'k', 'v', 'EX', '1.5'), '-ERR value is not an integer or out of range\r\n');
  assert.equal(await run('SET', 'k', 'v', 'EX', '-1'), "-ERR invalid expire time in 'set' command\r\n");
  // the options are read before the number is (Redis's order)
  assert.equal(await run('SET', 'k', 'v', 'EX', 'abc', 'BOGUS'), '-ERR syntax error\r\n');
  assert.equal(await run('SET', 'k', 'v', 'XX', Buffer.from('nx\0junk')), '-ERR syntax error\r\n');
  assert.equal(await run('SET', 'k', '123456789'), '-ERR value of 9 bytes exceeds the limit of 8\r\n');
  assert.equal(await run('SET', 'k'), "-ERR wrong number of arguments for 'set' command\r\n");
  assert.equal(writes(), 0);
  assert.equal(kv.data.size, 0);
});

test('SET options the front does not write itself are the engine\'s, as Redis reads them (found by the cluster oracle)', async () => {
  const { kv, run } = setup();
  // an option given twice is taken (the last expiry wins); an option is a C string, cut at a NUL
  assert.equal(await run('SET', 'a', 'v', 'NX', 'NX'), '+OK\r\n');
  assert.equal(await run('SET', 'b', 'v', 'EX', '10', 'ex', '20'), '+OK\r\n');
  assert.equal(kv.data.get('b')?.expiresAt, 1_020_000);
  assert.equal(await run('SET', 'c', 'v', 'EX', 'abc', 'EX', '10'), '+OK\r\n');
  assert.equal(await run('SET', 'c', 'w', Buffer.from('nx\0junk')), '$-1\r\n');
  // Redis reads 64-bit expiries: a time to live beyond 2^53 ms is valid
  assert.equal(await run('SET', 'd', 'v', 'EX', '9999999999999'), '+OK\r\n');
  assert.deepEqual(kv.seen.filter((s) => s.call === 'exec').map((s) => s.key), ['a', 'b', 'c', 'c', 'd']);
  // the common shapes stay plain writes
  assert.equal(await run('SET', 'e', 'v', 'XX', 'PX', '5'), '$-1\r\n');
  assert.equal(kv.seen.at(-1)?.call, 'write');
});

test('EXPIRE and PEXPIRE read 64-bit amounts as Redis does (found by the cluster oracle)', async () => {
  const { run } = setup();
  assert.equal(await run('SET', 'k', 'v'), '+OK\r\n');
  assert.equal(await run('EXPIRE', 'k', '9223372036854775807'), "-ERR invalid expire time in 'expire' command\r\n");
  assert.equal(await run('EXPIRE', 'k', '99999999999999999999'), '-ERR value is not an integer or out of range\r\n');
  assert.equal(await run('PEXPIRE', 'k', '-9223372036854775808'), ':1\r\n');
  assert.equal(await run('GET', 'k'), '$-1\r\n');
});

test('keys are binary, empty allowed as in Redis, at most cache.max_key_bytes', async () => {
  const { run } = setup();
  assert.equal(await run('SET', '', 'e'), '+OK\r\n');
  assert.equal(await run('GET', ''), '$1\r\ne\r\n');
  assert.equal(await run('GET', 'x'.repeat(17)), '-ERR key of 17 bytes exceeds 16\r\n');
  assert.equal(await run('SET', Buffer.from([0xff, 0xfe]), 'b'), '+OK\r\n');
  assert.equal(await run('GET', Buffer.from([0xff, 0xfe])), '$1\r\nb\r\n');
  assert.equal(await run('SET', 'ключ', 'v'), '+OK\r\n'); // 8 bytes of UTF-8
  assert.equal(await run('GET', 'ключ'), '$1\r\nv\r\n');
});

test('TTL and PTTL: -2 absent, -1 no expiry, seconds rounded as Redis does', async () => {
  const { kv, run } = setup();
  assert.equal(await run('TTL', 'none'), ':-2\r\n');
  await run('SET', 'p', 'v');
  assert.equal(await run('TTL', 'p'), ':-1\r\n');
  assert.equal(await run('PTTL', 'p'), ':-1\r\n');
  await run('SET', 't', 'v', 'PX', '10000');
  kv.now += 2_400;
  assert.equal(await run('PTTL', 't'), ':7600\r\n');
  assert.equal(await run('TTL', 't'), ':8\r\n'); // 7.6 s rounds to 8
  kv.now += 7_600;
  assert.equal(await run('TTL', 't'), ':-2\r\n');
});

test('EXPIRE/PEXPIRE set a TTL; zero or negative deletes the key', async () => {
  const { kv, run } = setup();
  await run('SET', 'a', 'v');
  assert.equal(await run('EXPIRE', 'a', '5'), ':1\r\n');
  assert.deepEqual(kv.seen.at(-1)?.op, { op: 'expire', expiry: { kind: 'in', ms: 5000 } });
  assert.equal(await run('PEXPIRE', 'a', '1200'), ':1\r\n');
  assert.equal(await run('PTTL', 'a'), ':1200\r\n');
  assert.equal(await run('EXPIRE', 'missing', '5'), ':0\r\n');
  assert.equal(await run('EXPIRE', 'a', '-1'), ':1\r\n');
  assert.equal(kv.data.has('a'), false);
  assert.equal(await run('EXPIRE', 'a', '0'), ':0\r\n');
  assert.equal(await run('EXPIRE', 'a', 'x'), '-ERR value is not an integer or out of range\r\n');
});

test('DEL counts distinct deleted keys; EXISTS counts repeats; MGET keeps order', async () => {
  const { run } = setup();
  await run('MSET', 'a', '1', 'b', '2', 'a', '3');
  assert.equal(await run('MGET', 'a', 'zz', 'b'), '*3\r\n$1\r\n3\r\n$-1\r\n$1\r\n2\r\n'); // last MSET value wins
  assert.equal(await run('EXISTS', 'a', 'a', 'zz', 'b'), ':3\r\n');
  assert.equal(await run('DEL', 'a', 'a', 'zz'), ':1\r\n');
  assert.equal(await run('DBSIZE'), ':1\r\n');
});

test('MSET validates every pair before writing any', async () => {
  const { kv, run } = setup();
  assert.equal(await run('MSET', 'a', '1', 'b'), "-ERR wrong number of arguments for 'mset' command\r\n");
  assert.equal(await run('MSET', 'a', '1', 'x'.repeat(17), '2'), '-ERR key of 17 bytes exceeds 16\r\n');
  assert.equal(await run('MSET', 'a', '1', 'b', '123456789'), '-ERR value of 9 bytes exceeds the limit of 8\r\n');
  assert.equal(kv.data.size, 0);
});

test('failures behind the door (thrown or rejected) become -ERR replies', async () => {
  const { kv, run } = setup();
  kv.failWith = new Error('deadline exceeded waiting for node-2');
  for (const cmd of [['GET', 'a'], ['SET', 'a', 'v'], ['DEL', 'a'], ['MGET', 'a', 'b'], ['TTL', 'a'], ['DBSIZE']]) {
    assert.equal(await run(...cmd), '-ERR deadline exceeded waiting for node-2\r\n', cmd.join(' '));
  }
  const broken = setup();
  broken.kv.get = () => {
    throw new TypeError('sync boom');
  };
  const reply = await execute(broken.env, newSession(1, OPEN_DEFAULT), [Buffer.from('GET'), Buffer.from('k')]);
  assert.equal(encode(reply).toString(), '-ERR sync boom\r\n');
});

test('connection commands: PING, ECHO, QUIT, SELECT, CLIENT, HELLO, AUTH, COMMAND', async () => {
  const { run, session } = setup();
  assert.equal(await run('PING'), '+PONG\r\n');
  assert.equal(await run('ping', 'hi'), '$2\r\nhi\r\n');
  assert.equal(await run('PING', 'a', 'b'), "-ERR wrong number of arguments for 'ping' command\r\n");
  assert.equal(await run('ECHO', 'x y'), '$3\r\nx y\r\n');
  assert.equal(await run('SELECT', '0'), '+OK\r\n');
  assert.equal(await run('SELECT', '01'), '-ERR value is not an integer or out of range\r\n');
  assert.equal(await run('CLIENT', 'GETNAME'), '$-1\r\n');
  assert.equal(await run('CLIENT', 'SETNAME', 'worker-1'), '+OK\r\n');
  assert.equal(await run('CLIENT', 'GETNAME'), '$8\r\nworker-1\r\n');
  assert.equal(await run('CLIENT', 'SETNAME', 'a b'), '-ERR Client names cannot contain spaces, newlines or special characters.\r\n');
  assert.equal(await run('CLIENT', 'SETINFO', 'LIB-NAME', 'ioredis'), '+OK\r\n');
  assert.equal(await run('CLIENT', 'SETINFO', 'LIB-NAME'), "-ERR wrong number of arguments for 'client|setinfo' command\r\n");
  assert.equal(await run('CLIENT', 'ID'), ':7\r\n');
  assert.equal(await run('CLIENT', 'KILL'), "-ERR wrong number of arguments for 'client|kill' command\r\n");
  assert.equal(await run('HELLO', '4'), '-NOPROTO unsupported protocol version\r\n');
  assert.equal(await run('HELLO', 'x'), '-ERR Protocol version is not an integer or out of range\r\n');
  assert.match(await run('HELLO', '2', 'SETNAME', 'n2'), /^\*14\r\n\$6\r\nserver\r\n/);
  assert.equal(session.name, 'n2');
  assert.match(await run('AUTH', 'pw'), /^-ERR AUTH <password> called without any password configured/);
  // COMMAND's replies are Redis 7's own, compared byte for byte in command-table.test.ts
  assert.match(await run('COMMAND', 'COUNT'), /^:\d+\r\n$/);
  assert.match(await run('COMMAND', 'INFO', 'get', 'nope'), /^\*2\r\n\*10\r\n\$3\r\nget\r\n:2\r\n/);
  assert.equal(await run('INFO', 'Server', 'CLIENTS'), '$35\r\n# Server\r\nsections:server,clients\r\n\r\n');
  assert.equal(session.quit, false);
  assert.equal(await run('QUIT'), '+OK\r\n');
  assert.equal(session.quit, true);
});

test('unknown commands are reported in Redis 7 form, arguments cut at 128 characters', () => {
  const reply = (args: string[]) => encode(unknownCommand(args.map((a) => Buffer.from(a)))).toString();
  assert.equal(reply(['FOO']), "-ERR unknown command 'FOO', with args beginning with: \r\n");
  assert.equal(reply(['foo', 'a', 'b c']), "-ERR unknown command 'foo', with args beginning with: 'a' 'b c' \r\n");
  const long = reply(['X', 'y'.repeat(200), 'z']);
  assert.equal(long, `-ERR unknown command 'X', with args beginning with: '${'y'.repeat(128)}' \r\n`);
  // A newline in a command name cannot break the reply framing.
  assert.equal(reply(['A\r\nB']), "-ERR unknown command 'A  B', with args beginning with: \r\n");
  // Redis quotes C strings: an argument ends at its first NUL byte (found by the cluster oracle)
  assert.equal(reply(['NOSUCH', 'k\0x', '\0']), "-ERR unknown command 'NOSUCH', with args beginning with: 'k' '' \r\n");
});

test('parseInteger is as strict as Redis string2ll', () => {
  const p = (s: string) => parseInteger(Buffer.from(s));
  assert.equal(p('0'), 0);
  assert.equal(p('-12'), -12);
  assert.equal(p('9007199254740991'), 9007199254740991);
  for (const bad of ['', '01', '-0', '+1', ' 1', '1 ', '1e3', '0x10', '99999999999999999']) assert.equal(p(bad), null, bad);
});

test('engine commands run at the coordinator: INCR, APPEND, hashes, SET ... GET, EXPIRE NX; GET of a hash is WRONGTYPE', async () => {
  const { kv, run } = setup();
  assert.equal(await run('INCR', 'n'), ':1\r\n');
  assert.equal(await run('INCRBY', 'n', '41'), ':42\r\n');
  assert.equal(await run('APPEND', 's', 'ab'), ':2\r\n');
  assert.equal(await run('SET', 's', 'cd', 'GET'), '$2\r\nab\r\n');
  assert.equal(await run('HSET', 'h', 'f', 'v'), ':1\r\n');
  assert.equal(await run('HGET', 'h', 'f'), '$1\r\nv\r\n');
  assert.equal(await run('GET', 'h'), '-WRONGTYPE Operation against a key holding the wrong kind of value\r\n');
  assert.equal(await run('EXPIRE', 'n', '10', 'NX'), ':1\r\n');
  assert.equal(await run('EXPIRE', 'n', '20', 'NX'), ':0\r\n');
  assert.ok(kv.seen.some((s) => s.call === 'exec' && s.key === 'h'));
});

test('MULTI/EXEC: nothing runs before EXEC, the queue runs in order; EXECABORT after a refused command; DISCARD', async () => {
  const { kv, run } = setup();
  assert.equal(await run('MULTI'), '+OK\r\n');
  assert.equal(await run('SET', '{t}a', '1'), '+QUEUED\r\n');
  assert.equal(await run('INCR', '{t}a'), '+QUEUED\r\n');
  assert.equal(await run('PING'), '+QUEUED\r\n');
  assert.equal(kv.data.size, 0, 'nothing applied before EXEC');
  assert.equal(await run('EXEC'), '*3\r\n+OK\r\n:2\r\n+PONG\r\n');
  assert.equal(await run('GET', '{t}a'), '$1\r\n2\r\n');
  assert.equal(await run('EXEC'), '-ERR EXEC without MULTI\r\n');
  await run('MULTI');
  assert.equal(await run('NOSUCH'), "-ERR unknown command 'NOSUCH', with args beginning with: \r\n");
  assert.equal(await run('INCR', '{t}a'), '+QUEUED\r\n');
  assert.equal(await run('EXEC'), '-EXECABORT Transaction discarded because of previous errors.\r\n');
  assert.equal(await run('GET', '{t}a'), '$1\r\n2\r\n', 'the aborted transaction changed nothing');
  await run('MULTI');
  await run('INCR', '{t}a');
  assert.equal(await run('DISCARD'), '+OK\r\n');
  assert.equal(await run('GET', '{t}a'), '$1\r\n2\r\n');
  assert.equal(await run('MULTI'), '+OK\r\n');
  assert.equal(await run('MULTI'), '-ERR MULTI calls can not be nested\r\n');
  await run('DISCARD');
});

test('transactions over several hash slots: EXEC answers CROSSSLOT and runs nothing; a multi-slot command aborts at queue time, as Redis Cluster does', async () => {
  const { run, kv } = setup();
  await run('MULTI');
  assert.equal(await run('SET', 'a', '1'), '+QUEUED\r\n');
  assert.equal(await run('SET', 'b', '1'), '+QUEUED\r\n');
  assert.equal(await run('EXEC'), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
  assert.equal(kv.data.size, 0, 'nothing ran');
  assert.equal(await run('MULTI'), '+OK\r\n', 'the transaction was discarded');
  assert.equal(await run('MSETNX', 'a', '1', 'b', '2'), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
  assert.equal(await run('EXEC'), '-EXECABORT Transaction discarded because of previous errors.\r\n');
  assert.equal(await run('MSETNX', 'a', '1', 'b', '2'), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
  assert.equal(await run('RENAME', 'a', 'b'), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
});

test('WATCH: a write to a watched key between WATCH and EXEC makes EXEC answer a null array and run nothing', async () => {
  const { run, runGeneric } = setup();
  await run('SET', '{w}k', '1');
  assert.equal(await run('WATCH', '{w}k'), '+OK\r\n');
  await runGeneric('INCR', '{w}k'); // as another client would
  await run('MULTI');
  await run('SET', '{w}k', '100');
  assert.equal(await run('EXEC'), '*-1\r\n');
  assert.equal(await run('GET', '{w}k'), '$1\r\n2\r\n');
  assert.equal(await run('WATCH', '{w}k'), '+OK\r\n');
  await run('MULTI');
  await run('SET', '{w}k', '100');
  assert.equal(await run('EXEC'), '*1\r\n+OK\r\n', 'unchanged since WATCH: it runs');
});

test('keys in several slots: TOUCH and UNLINK add up per slot; MSET sets every slot (each slot at once)', async () => {
  const { kv, run } = setup();
  assert.equal(await run('MSET', 'a', '1', 'b', '2', 'c', '3'), '+OK\r\n');
  assert.equal(kv.seen.filter((s) => s.call === 'exec').length, 3, 'one MSET per slot');
  assert.equal(await run('TOUCH', 'a', 'b', 'zz'), ':2\r\n');
  assert.equal(await run('UNLINK', 'a', 'c', 'zz'), ':2\r\n');
  assert.equal(await run('MGET', 'a', 'b', 'c'), '*3\r\n$-1\r\n$1\r\n2\r\n$-1\r\n');
});
