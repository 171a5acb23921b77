// The connection and server commands, run through the dispatcher as the server runs them (each
// reply encoded in the protocol the session has once its command returned), compared byte for
// byte with redis-server 7 in RESP2 and RESP3 where the reply does not depend on the server
// (ids, versions, addresses), and checked exactly against a fake listener where it does.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { GetResult } from '../../cluster/kv.ts';
import { decideWrite, type WriteOp, type WriteResult } from '../../cache/ops.ts';
import { LiveConfig } from '../../config/live.ts';
import { parseConfig } from '../../config/schema.ts';
import { Metrics } from '../../observe/metrics.ts';
import { Authenticator, OPEN_DEFAULT } from '../auth.ts';
import { FrontDoor, type DoorKv } from '../door.ts';
import { RespClient, replyDifference, showReply, startRedisServer, decodeReply, type RedisServer } from '../../../test/helpers/redis-oracle.ts';
import { testClient, testListener, type TestListener } from '../../../test/helpers/resp-env.ts';
import { execute } from './commands.ts';
import { clientLine } from './connection.ts';
import { infoSections, infoText } from './info.ts';
import { newSession, REDIS_VERSION, type CommandEnv, type ListenerFacts, type Session } from './session.ts';
import { encodeAs } from './writer.ts';

/** A Map behind the door; INFO keyspace counts it. */
class MapKv implements DoorKv {
  readonly data = new Map<string, { value: Buffer; expiresAt: number }>();
  getLocal: DoorKv['getLocal'] = () => undefined;
  writeLocal: DoorKv['writeLocal'] = () => undefined;
  async get(_g: string, key: string): Promise<GetResult | null> {
    const e = this.data.get(key);
    return e ? { value: e.value, expiresAt: e.expiresAt, source: 'hit' } : null;
  }
  async write(_g: string, key: string, op: WriteOp): Promise<WriteResult> {
    const e = this.data.get(key);
    const d = decideWrite(e === undefined ? undefined : { ...e, version: 1, partition: 0, type: 0 }, op, 0);
    if (d.change === 'value') this.data.set(key, { value: d.value, expiresAt: d.expiresAt });
    else if (d.change === 'delete') this.data.delete(key);
    return d.result;
  }
  async count(): Promise<number> {
    return this.data.size;
  }
}

interface Harness {
  env: CommandEnv;
  session: Session;
  listener: TestListener;
  clock: { t: number; now(): number };
  /** Run one command; its reply as the server would write it (in the session's protocol then). */
  run(...args: string[]): Promise<string>;
}

const USERS = [{ name: 'app', password: 'app-pw', permissions: ['read', 'write'] as const }];

function harness(opts: { password?: string; facts?: Partial<ListenerFacts>; id?: number } = {}): Harness {
  const auth = opts.password !== undefined ? { requirepass: opts.password, users: USERS.map((u) => ({ ...u, permissions: [...u.permissions] })) } : {};
  const config = parseConfig({ cache: { group_name: 'g' }, auth });
  const clock = { t: 1_700_000_000_123, now: () => clock.t };
  const door = new FrontDoor({
    kv: new MapKv(),
    live: new LiveConfig(config),
    metrics: new Metrics({ defaultMetrics: false }),
    clock,
    ...(opts.password !== undefined ? { auth: new Authenticator(config.auth) } : {}),
  });
  const session = newSession(opts.id ?? 7, door.anonymous());
  const listener = testListener({ clients: [], facts: opts.facts ?? {}, users: ['default', 'app'] });
  listener.open.push(testClient(session, { connectedAt: clock.t }));
  const env: CommandEnv = {
    door,
    group: 'g',
    clock,
    // the real text, from fixed figures
    info: async (sections) =>
      infoText({
        sections: infoSections(sections),
        facts: listener.facts(),
        stats: listener.stats(),
        now: clock.now(),
        runId: 'f'.repeat(40),
        process: { pid: 42, memory: { rss: 3 << 20, heapUsed: 1 << 20, external: 1 << 19 }, peakMemory: 0, cpu: { user: 1_500_000, system: 250_000 }, totalSystemMemory: 1 << 30, os: 'Linux 6.1.0 x86_64', executable: '/usr/bin/node' },
        keyspace: await env.keyspace(),
        jincache: { group: 'g' },
      }),
    keyspace: async () => ({ keys: 0, expires: 0, avgTtl: 0 }),
    listener,
  };
  const run = async (...args: string[]) => {
    const reply = await execute(env, session, args.map((a) => Buffer.from(a, 'latin1')));
    return encodeAs(session.protocol, reply).toString('latin1');
  };
  return { env, session, listener, clock, run };
}

/**
 * Command sequences whose replies must be Redis's to the byte, each on a fresh connection to
 * either side. Only what does not depend on the server itself: no ids, versions, addresses.
 */
const SAME_AS_REDIS: readonly (readonly string[][])[] = [
  [['PING'], ['PING', 'x'], ['PING', ''], ['PING', 'a', 'b'], ['ECHO', 'x y'], ['ECHO'], ['TIME', 'x'], ['ACL', 'WHOAMI'], ['ACL', 'WHOAMI', 'x'], ['ACL', 'nope']],
  [['HELLO', '4'], ['HELLO', '1'], ['HELLO', '0'], ['HELLO', '-1'], ['HELLO', 'abc'], ['HELLO', 'AUTH', 'a', 'b'], ['HELLO', '3', 'AUTH'], ['HELLO', '3', 'foo'], ['HELLO', '3', 'SETNAME'], ['HELLO', '3', 'SETNAME', 'a b'], ['HELLO', '3', 'AUTH', 'bob', 'x'], ['CLIENT', 'GETNAME'], ['PING']],
  // RESP3 from here on: nulls, maps and verbatim strings change shape
  [['HELLO', '3', 'SETNAME', 'first'], ['CLIENT', 'GETNAME'], ['CLIENT', 'SETNAME', ''], ['CLIENT', 'GETNAME'], ['CLIENT', 'LIST', 'ID', '999'], ['CLIENT', 'LIST', 'TYPE', 'pubsub'], ['INFO', 'bogus'], ['INFO', 'keyspace'], ['CONFIG', 'GET', 'nope'], ['PING'], ['ECHO', 'e']],
  [['HELLO', '3', 'AUTH', 'default', 'anything'], ['HELLO', '2'], ['CLIENT', 'GETNAME'], ['INFO', 'bogus'], ['CONFIG', 'GET', 'nope']],
  [
    ['CLIENT'], ['CLIENT', 'foo'], ['CLIENT', 'ID', 'x'], ['CLIENT', 'INFO', 'x'], ['CLIENT', 'GETNAME', 'x'],
    ['CLIENT', 'SETNAME'], ['CLIENT', 'SETNAME', 'a', 'b'], ['CLIENT', 'SETNAME', 'a b'], ['CLIENT', 'SETNAME', 'caf\xe9'], ['CLIENT', 'SETNAME', 'ok-name'], ['CLIENT', 'GETNAME'],
    ['CLIENT', 'LIST', 'TYPE', 'bogus'], ['CLIENT', 'LIST', 'TYPE', 'normal', 'x'], ['CLIENT', 'LIST', 'ID', 'x'], ['CLIENT', 'LIST', 'ID'], ['CLIENT', 'LIST', 'foo'],
    ['CLIENT', 'NO-EVICT', 'on'], ['CLIENT', 'NO-EVICT', 'OFF'], ['CLIENT', 'NO-EVICT', 'maybe'], ['CLIENT', 'NO-EVICT'],
    ['CLIENT', 'REPLY'], ['CLIENT', 'REPLY', 'maybe'], ['CLIENT', 'REPLY', 'ON'],
  ],
  [
    ['CLIENT', 'KILL'], ['CLIENT', 'KILL', '1.2.3.4:5'], ['CLIENT', 'KILL', 'ID', '999'], ['CLIENT', 'KILL', 'ID', 'x'], ['CLIENT', 'KILL', 'ID', '0'], ['CLIENT', 'KILL', 'ID'],
    ['CLIENT', 'KILL', 'ADDR', '1.2.3.4:5'], ['CLIENT', 'KILL', 'LADDR', '1.2.3.4:5'], ['CLIENT', 'KILL', 'USER', 'nobody'], ['CLIENT', 'KILL', 'USER', 'default'],
    ['CLIENT', 'KILL', 'SKIPME', 'maybe'], ['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'], ['CLIENT', 'KILL', 'TYPE', 'master'], ['CLIENT', 'KILL', 'TYPE', 'bogus'],
    ['CLIENT', 'KILL', 'foo', 'bar'], ['CLIENT', 'KILL', 'ID', '999', 'x'], ['PING'],
  ],
  [
    ['CONFIG'], ['CONFIG', 'foo'], ['CONFIG', 'GET'], ['CONFIG', 'SET', 'maxmemory'], ['CONFIG', 'SET', 'nope', '1'], ['CONFIG', 'SET', 'a', '1', 'b'],
    ['CONFIG', 'SET', 'timeout', '1', 'timeout', '2'], ['CONFIG', 'SET', 'timeout', '0', 'TIMEOUT', '0'], ['CONFIG', 'SET', 'maxmemory', 'abc'], ['CONFIG', 'SET', 'maxmemory', '-1'],
    ['CONFIG', 'SET', 'timeout', 'abc'], ['CONFIG', 'SET', 'maxclients', 'x'], ['CONFIG', 'SET', 'appendonly', 'maybe'], ['CONFIG', 'SET', 'maxmemory-policy', 'bogus'],
    ['CONFIG', 'SET', 'databases', '1'], ['CONFIG', 'SET', 'cluster-enabled', 'no'],
    ['CONFIG', 'SET', 'save', ''], ['CONFIG', 'SET', 'appendonly', 'NO'], ['CONFIG', 'SET', 'timeout', '0'], ['CONFIG', 'SET', 'Timeout', '0'],
    ['CONFIG', 'SET', 'notify-keyspace-events', ''], ['CONFIG', 'RESETSTAT'], ['CONFIG', 'RESETSTAT', 'x'],
  ],
  // RESET discards a transaction in progress
  [['MULTI'], ['PING'], ['ECHO', 'q'], ['RESET'], ['PING'], ['EXEC'], ['DISCARD']],
  [['SELECT', '0'], ['SELECT', 'x'], ['SELECT', '00'], ['SELECT', ' 0'], ['SELECT', '-1'], ['SELECT', '16'], ['SELECT'], ['RESET', 'x'], ['HELLO', '3'], ['RESET'], ['CLIENT', 'GETNAME'], ['QUIT']],
];

/** With `requirepass secret` on both sides. */
const SAME_AS_REDIS_WITH_PASSWORD: readonly (readonly string[][])[] = [
  [['HELLO'], ['HELLO', '3'], ['HELLO', '3', 'SETNAME', 'x'], ['HELLO', '3', 'AUTH', 'default', 'bad'], ['PING'], ['CLIENT', 'ID'], ['ECHO', 'x'], ['CONFIG', 'GET', 'x'], ['AUTH', 'x'], ['AUTH', 'a', 'b', 'c'], ['NOPE', 'x'], ['PING', 'a', 'b'], ['QUIT']],
  [['HELLO', '3', 'AUTH', 'default', 'secret', 'SETNAME', 'nm'], ['CLIENT', 'GETNAME'], ['HELLO', '2', 'SETNAME', ''], ['CLIENT', 'GETNAME'], ['AUTH', 'x'], ['PING'], ['RESET'], ['PING'], ['CLIENT', 'GETNAME'], ['AUTH', 'secret'], ['PING']],
];

describe('against redis-server 7', () => {
  let open: RedisServer;
  let locked: RedisServer;
  before(async () => {
    [open, locked] = await Promise.all([startRedisServer(), startRedisServer({ password: 'secret' })]);
  });
  after(async () => {
    await Promise.all([open?.stop(), locked?.stop()]);
  });

  const compare = async (server: RedisServer, scripts: readonly (readonly string[][])[], password?: string) => {
    for (const script of scripts) {
      const redis = await RespClient.connect(server.port);
      const ours = harness(password !== undefined ? { password } : {});
      try {
        for (const cmd of script) {
          const theirs = await redis.callBytes(...cmd);
          const mine = await ours.run(...cmd);
          const where = `${cmd.join(' ')} (in ${JSON.stringify(script[0])}...)`;
          if (cmd[0] === 'HELLO' && theirs.reply.type !== 'error') {
            // the server's version and the connection's id differ: the rest must not
            assert.equal(replyDifference(cmd, theirs.reply, decodeReply(Buffer.from(mine, 'latin1'))!.reply), null, where);
          } else {
            assert.equal(mine, theirs.bytes.toString('latin1'), where);
          }
        }
      } finally {
        redis.close();
      }
    }
  };

  it('answers connection commands with the same bytes, in RESP2 and after HELLO 3', async () => {
    await compare(open, SAME_AS_REDIS);
  });

  it('answers the same before and after authentication when a password is required', async () => {
    await compare(locked, SAME_AS_REDIS_WITH_PASSWORD, 'secret');
  });

  it('HELLO: the same map as Redis (a flat array in RESP2), in the protocol it chose, with jincache\'s version and id', async () => {
    const redis = await RespClient.connect(open.port);
    const ours = harness();
    try {
      for (const cmd of [['HELLO'], ['HELLO', '2'], ['HELLO', '3'], ['HELLO'], ['HELLO', '2', 'SETNAME', 'n']]) {
        const theirs = await redis.call(...cmd);
        const mine = decodeReply(Buffer.from(await ours.run(...cmd), 'latin1'))!.reply;
        assert.equal(replyDifference(['hello'], theirs, mine), null, `${cmd.join(' ')}: ${showReply(theirs)} vs ${showReply(mine)}`);
      }
      assert.equal(await ours.run('HELLO', '3'), `%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$${REDIS_VERSION.length}\r\n${REDIS_VERSION}\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:7\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n`);
    } finally {
      redis.close();
    }
  });

  it('TIME, CLIENT INFO and CLIENT LIST have Redis\'s shape in both protocols', async () => {
    const redis = await RespClient.connect(open.port);
    const ours = harness();
    ours.clock.t = Date.now();
    try {
      for (const p of ['2', '3']) {
        await redis.call('HELLO', p);
        await ours.run('HELLO', p);
        for (const cmd of [['TIME'], ['CLIENT', 'INFO'], ['CLIENT', 'LIST']]) {
          const theirs = await redis.call(...cmd);
          const mine = decodeReply(Buffer.from(await ours.run(...cmd), 'latin1'))!.reply;
          assert.equal(replyDifference(cmd, theirs, mine), null, `${cmd.join(' ')} RESP${p}`);
          assert.equal(mine.type, theirs.type, `${cmd.join(' ')} RESP${p}`);
        }
        // the same fields, in the same order, as Redis 7.0 (7.2 adds lib-name and lib-ver last)
        const fields = (r: string) => r.trim().split(' ').map((kv) => kv.split('=')[0]);
        const theirs = await redis.call('CLIENT', 'INFO');
        const mine = decodeReply(Buffer.from(await ours.run('CLIENT', 'INFO'), 'latin1'))!.reply;
        const text = (r: typeof mine) => (r.type === 'bulk' ? r.value.toString() : r.type === 'verbatim' ? r.text.toString() : '');
        assert.deepEqual(fields(text(mine)), [...fields(text(theirs)), 'lib-name', 'lib-ver']);
      }
    } finally {
      redis.close();
    }
  });
});

describe('RESP3 and the session', () => {
  it('HELLO switches the protocol after its checks; HELLO alone keeps it; RESET goes back to RESP2', async () => {
    const h = harness();
    assert.equal(h.session.protocol, 2);
    assert.match(await h.run('HELLO', '3', 'bogus'), /^-ERR Syntax error/);
    assert.equal(h.session.protocol, 2, 'a refused HELLO changes nothing');
    assert.match(await h.run('HELLO', '3'), /^%7\r\n/);
    assert.equal(h.session.protocol, 3);
    assert.equal(await h.run('CLIENT', 'GETNAME'), '_\r\n');
    assert.match(await h.run('HELLO'), /^%7\r\n.*proto\r\n:3\r\n/s);
    assert.equal(h.session.protocol, 3);
    assert.match(await h.run('HELLO', '2'), /^\*14\r\n/);
    assert.equal(h.session.protocol, 2);
    await h.run('HELLO', '3', 'SETNAME', 'w1');
    await h.run('CLIENT', 'SETINFO', 'LIB-NAME', 'redis-py');
    h.session.replies = 'off';
    assert.equal(await h.run('RESET'), '+RESET\r\n');
    assert.deepEqual([h.session.protocol, h.session.name, h.session.replies, h.session.libName], [2, null, 'on', 'redis-py']);
  });

  it('HELLO AUTH authenticates and names in one step; a wrong password changes nothing', async () => {
    const h = harness({ password: 'secret' });
    const state = () => [h.session.user?.name ?? null, h.session.name, h.session.protocol];
    assert.deepEqual(state(), [null, null, 2]);
    assert.equal(await h.run('HELLO', '3', 'AUTH', 'app', 'wrong', 'SETNAME', 'x'), '-WRONGPASS invalid username-password pair or user is disabled.\r\n');
    assert.deepEqual(state(), [null, null, 2]);
    assert.match(await h.run('HELLO', '3', 'AUTH', 'app', 'app-pw', 'SETNAME', 'x'), /^%7\r\n/);
    assert.deepEqual(state(), ['app', 'x', 3]);
    assert.equal(await h.run('ACL', 'WHOAMI'), '$3\r\napp\r\n');
    assert.equal(await h.run('RESET'), '+RESET\r\n');
    assert.equal(h.session.user, null, 'RESET signs out when a password is required');
  });

  it('CLIENT REPLY sets the mode the server writes replies by', async () => {
    const h = harness();
    assert.equal(await h.run('CLIENT', 'REPLY', 'SKIP'), '+OK\r\n');
    assert.equal(h.session.replies, 'skip-next', 'SKIP: this reply and the next are withheld by the server');
    h.session.replies = 'off';
    await h.run('CLIENT', 'REPLY', 'SKIP');
    assert.equal(h.session.replies, 'off', 'SKIP while OFF changes nothing');
    assert.equal(await h.run('CLIENT', 'REPLY', 'ON'), '+OK\r\n');
    assert.equal(h.session.replies, 'on');
    await h.run('CLIENT', 'REPLY', 'off');
    assert.equal(h.session.replies, 'off');
  });

  it('CLIENT SETINFO takes LIB-NAME and LIB-VER as Redis 7.2 does', async () => {
    const h = harness();
    assert.equal(await h.run('CLIENT', 'SETINFO', 'LIB-NAME', 'node-redis'), '+OK\r\n');
    assert.equal(await h.run('CLIENT', 'SETINFO', 'lib-ver', '5.0.0'), '+OK\r\n');
    assert.deepEqual([h.session.libName, h.session.libVer], ['node-redis', '5.0.0']);
    assert.equal(await h.run('CLIENT', 'SETINFO', 'LIB-NAME', 'a b'), '-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n');
    assert.equal(await h.run('CLIENT', 'SETINFO', 'color', 'x'), "-ERR Unrecognized option 'color'\r\n");
    assert.equal(await h.run('CLIENT', 'SETINFO', 'LIB-NAME'), "-ERR wrong number of arguments for 'client|setinfo' command\r\n");
    assert.equal(await h.run('CLIENT', 'SETINFO', 'lib-ver', ''), '+OK\r\n');
    assert.equal(h.session.libVer, null);
  });

  it('TIME reads the clock: seconds and microseconds as bulk strings', async () => {
    const h = harness();
    h.clock.t = 1_700_000_000_123;
    assert.equal(await h.run('TIME'), '*2\r\n$10\r\n1700000000\r\n$6\r\n123000\r\n');
  });

  it('SELECT: only db 0; in cluster mode Redis Cluster\'s error', async () => {
    assert.equal(await harness().run('SELECT', '1'), '-ERR DB index is out of range\r\n');
    const c = harness({ facts: { clusterEnabled: true } });
    assert.equal(await c.run('SELECT', '1'), '-ERR SELECT is not allowed in cluster mode\r\n');
    assert.equal(await c.run('SELECT', '0'), '+OK\r\n');
    assert.match(await c.run('HELLO', '3'), /\$4\r\nmode\r\n\$7\r\ncluster\r\n/);
  });

  it('the dispatcher records the last command for CLIENT LIST, subcommands by their full name', async () => {
    const h = harness();
    await h.run('PING');
    assert.equal(h.session.command, 'ping');
    await h.run('CLIENT', 'ID');
    assert.equal(h.session.command, 'client|id');
    await h.run('config', 'get', 'x');
    assert.equal(h.session.command, 'config|get');
  });
});

describe('CLIENT LIST, INFO and KILL over the listener\'s connections', () => {
  /** Three connections: ours (7), 8 named "w8" as user app in RESP3, 9. */
  function three() {
    const h = harness();
    const t0 = h.clock.t;
    const s8 = newSession(8, OPEN_DEFAULT);
    s8.name = 'w8';
    s8.protocol = 3;
    s8.command = 'get';
    s8.user = { name: 'app', can: () => true };
    const c8 = testClient(s8, { addr: '10.0.0.8:4000', laddr: '127.0.0.1:6380', fd: 12, connectedAt: t0 - 65_000 });
    c8.lastInput = t0 - 5_000;
    c8.inputHeld = 26;
    c8.outputHeld = 100;
    const c9 = testClient(newSession(9, OPEN_DEFAULT), { addr: '[::1]:4009', connectedAt: t0 });
    h.listener.open.push(c8, c9);
    return { h, c7: h.listener.open[0]!, c8, c9 };
  }

  it('one line per connection, Redis 7.2\'s fields and order', async () => {
    const { h, c8 } = three();
    assert.equal(
      clientLine(c8, h.clock.t),
      'id=8 addr=10.0.0.8:4000 laddr=127.0.0.1:6380 fd=12 name=w8 age=65 idle=5 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=100 tot-mem=126 events=rw cmd=get user=app redir=-1 resp=3 lib-name= lib-ver=',
    );
    const list = await h.run('CLIENT', 'LIST');
    const lines = list.split('\r\n')[1]!.split('\n');
    assert.deepEqual(lines.map((l) => l.split(' ')[0]), ['id=7', 'id=8', 'id=9', '']);
    assert.match(await h.run('CLIENT', 'INFO'), /^\$\d+\r\nid=7 addr=127\.0\.0\.1:50007 .* cmd=client\|info user=default redir=-1 resp=2 lib-name= lib-ver=\n\r\n$/);
    const some = await h.run('CLIENT', 'LIST', 'ID', '9', '8', '1000');
    assert.deepEqual(some.split('\r\n')[1]!.split('\n').map((l) => l.split(' ')[0]), ['id=9', 'id=8', '']);
    assert.match(await h.run('CLIENT', 'LIST', 'TYPE', 'NORMAL'), /id=7 .*\nid=8 .*\nid=9 /s);
    assert.equal(await h.run('CLIENT', 'LIST', 'TYPE', 'replica'), '$0\r\n\r\n');
  });

  it('KILL by ID, ADDR, LADDR, USER: the others close at once, the caller after its reply', async () => {
    const { h, c8, c9 } = three();
    assert.equal(await h.run('CLIENT', 'KILL', 'ID', '8'), ':1\r\n');
    assert.ok(c8.killed);
    assert.equal(await h.run('CLIENT', 'KILL', 'ID', '8'), ':0\r\n', 'gone already');
    assert.equal(await h.run('CLIENT', 'KILL', '[::1]:4009'), '+OK\r\n');
    assert.ok(c9.killed);
    assert.equal(await h.run('CLIENT', 'KILL', '[::1]:4009'), '-ERR No such client\r\n');
    assert.equal(await h.run('CLIENT', 'KILL', 'USER', 'default'), ':0\r\n', 'SKIPME yes by default');
    assert.equal(h.session.quit, false);
    assert.equal(await h.run('CLIENT', 'KILL', 'USER', 'default', 'SKIPME', 'no'), ':1\r\n');
    assert.equal(h.session.quit, true, 'the caller is closed after this reply');
  });

  it('KILL by LADDR and by user; the old form may kill the caller', async () => {
    const { h, c8, c9 } = three();
    assert.equal(await h.run('CLIENT', 'KILL', 'USER', 'app'), ':1\r\n');
    assert.ok(c8.killed && !c9.killed);
    assert.equal(await h.run('CLIENT', 'KILL', 'LADDR', '127.0.0.1:6380', 'SKIPME', 'yes'), ':1\r\n');
    assert.ok(c9.killed);
    assert.equal(await h.run('CLIENT', 'KILL', '127.0.0.1:50007'), '+OK\r\n');
    assert.equal(h.session.quit, true);
  });

  it('KILL needs the admin permission', async () => {
    const h = harness({ password: 'secret' });
    await h.run('AUTH', 'app', 'app-pw');
    assert.equal(await h.run('CLIENT', 'KILL', 'ID', '1'), "-NOPERM this user has no permissions to run the 'client|kill' command\r\n");
    assert.equal(await h.run('CONFIG', 'SET', 'save', ''), "-NOPERM this user has no permissions to run the 'config|set' command\r\n");
    assert.equal(await h.run('CONFIG', 'RESETSTAT'), "-NOPERM this user has no permissions to run the 'config|resetstat' command\r\n");
    assert.match(await h.run('CONFIG', 'GET', 'maxmemory'), /^\*2\r\n/);
    assert.equal(await h.run('CLIENT', 'KILL'), "-ERR wrong number of arguments for 'client|kill' command\r\n", 'arity before permission, as in Redis');
  });
});

describe('CONFIG and INFO', () => {
  it('CONFIG GET answers jincache\'s values, by exact name (as asked) or case-insensitive glob', async () => {
    const h = harness({ facts: { maxmemory: 1 << 26, maxClients: 500, idleTimeoutMs: 30_500, maxValueBytes: 1 << 24 } });
    assert.equal(await h.run('CONFIG', 'GET', 'MaxMemory'), '*2\r\n$9\r\nMaxMemory\r\n$8\r\n67108864\r\n');
    assert.equal(await h.run('CONFIG', 'GET', 'maxclients', 'timeout', 'timeout'), '*4\r\n$10\r\nmaxclients\r\n$3\r\n500\r\n$7\r\ntimeout\r\n$2\r\n30\r\n');
    const globbed = await h.run('CONFIG', 'GET', 'max*');
    assert.equal(globbed, '*8\r\n$9\r\nmaxmemory\r\n$8\r\n67108864\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n$17\r\nmaxmemory-samples\r\n$1\r\n5\r\n$10\r\nmaxclients\r\n$3\r\n500\r\n');
    assert.match(await h.run('CONFIG', 'GET', '*read-only'), /replica-read-only\r\n\$3\r\nyes\r\n\$15\r\nslave-read-only\r\n\$3\r\nyes/);
    assert.equal(await h.run('CONFIG', 'GET', 'requirepass'), '*0\r\n', 'passwords never leave the node');
    assert.match(await h.run('CONFIG', 'GET', 'save', 'appendonly', 'databases', 'proto-max-bulk-len', 'cluster-enabled'), /save\r\n\$0\r\n\r\n.*appendonly\r\n\$2\r\nno\r\n.*databases\r\n\$1\r\n1\r\n.*16777216\r\n.*cluster-enabled\r\n\$2\r\nno/s);
    await h.run('HELLO', '3');
    assert.equal(await h.run('CONFIG', 'GET', 'port'), '%1\r\n$4\r\nport\r\n$4\r\n6380\r\n');
  });

  it('CONFIG SET accepts the values jincache has and refuses others naming where they are set', async () => {
    const h = harness({ facts: { maxmemory: 1 << 26 } });
    assert.equal(await h.run('CONFIG', 'SET', 'maxmemory', '64mb', 'maxmemory-policy', 'ALLKEYS-LRU', 'save', '', 'appendonly', 'no'), '+OK\r\n');
    assert.equal(
      await h.run('CONFIG', 'SET', 'maxmemory-policy', 'noeviction'),
      "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - jincache does not change 'maxmemory-policy' over RESP (jincache always evicts the least recently used keys)\r\n",
    );
    assert.equal(
      await h.run('CONFIG', 'SET', 'save', '', 'maxmemory', '1gb'),
      "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - jincache does not change 'maxmemory' over RESP (cache.cache_bytes in the configuration file)\r\n",
    );
    assert.equal(await h.run('CONFIG', 'SET', 'slave-read-only', 'yes'), '+OK\r\n');
    assert.equal(h.listener.resets, 0);
    assert.equal(await h.run('CONFIG', 'RESETSTAT'), '+OK\r\n');
    assert.equal(h.listener.resets, 1);
  });

  it('INFO asks env.info for the lower-cased sections and answers a verbatim string in RESP3', async () => {
    const h = harness();
    const text =
      '# CPU\r\nused_cpu_sys:0.250000\r\nused_cpu_user:1.500000\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n' +
      'used_cpu_sys_main_thread:0.250000\r\nused_cpu_user_main_thread:1.500000\r\n\r\n# Cluster\r\ncluster_enabled:0\r\n';
    assert.equal(await h.run('INFO', 'Cluster', 'CPU'), `$${text.length}\r\n${text}\r\n`);
    await h.run('HELLO', '3');
    assert.equal(await h.run('INFO', 'cluster'), '=34\r\ntxt:# Cluster\r\ncluster_enabled:0\r\n\r\n');
  });
});
