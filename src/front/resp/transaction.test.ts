// MULTI / EXEC / WATCH through the front door against one in-memory coordinator that runs the
// engine (what Router.exec does, minus replication): the Redis Cluster rules the cluster oracle
// (test/integration/redis-oracle.test.ts) checks against a real Redis Cluster node, here one by one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideWrite, type WriteOp, type WriteResult } from '../../cache/ops.ts';
import type { Reply } from '../../cache/reply.ts';
import { executeTransaction, execute as engineExecute, watchOf } from '../../cache/engine/index.ts';
import { MapView } from '../../cache/engine/testing.ts';
import { STRING } from '../../cache/engine/types.ts';
import type { GetResult } from '../../cluster/kv.ts';
import { LiveConfig } from '../../config/live.ts';
import { parseConfig } from '../../config/schema.ts';
import { globMatch } from '../../core/glob.ts';
import { slotOf } from '../../core/placement/hash.ts';
import { Metrics } from '../../observe/metrics.ts';
import type { ExecRequest, ScanRequest } from '../../peer/messages.ts';
import { OPEN_DEFAULT } from '../auth.ts';
import { FrontDoor, type DoorKv } from '../door.ts';
import { testListener } from '../../../test/helpers/resp-env.ts';
import { execute, type CommandEnv } from './commands.ts';
import { newSession } from './session.ts';
import { encode } from './writer.ts';

/** One coordinator for every key: the engine on a MapView; SCAN sees one partition. */
class EngineKv implements DoorKv {
  now = 1_000_000;
  readonly view = new MapView(() => this.now);
  /** Engine calls, with their commands' names. */
  readonly execs: string[][] = [];
  getLocal: DoorKv['getLocal'] = () => undefined;
  writeLocal: DoorKv['writeLocal'] = () => undefined;

  async get(_g: string, key: string): Promise<GetResult | null> {
    const e = this.view.get(key);
    return e === undefined ? null : { value: e.value, expiresAt: e.expiresAt, source: 'hit', type: e.type };
  }
  async write(_g: string, key: string, op: WriteOp): Promise<WriteResult> {
    const e = this.view.get(key);
    const d = decideWrite(e === undefined ? undefined : { ...e, partition: 0 }, op, this.now);
    if (d.change === 'value') this.view.apply([{ key, type: e?.type ?? STRING, value: d.value, expiresAt: d.expiresAt }]);
    else if (d.change === 'delete') this.view.apply([{ key, type: STRING, value: null, expiresAt: 0 }]);
    return d.result;
  }
  async count(): Promise<number> {
    return [...this.view.entries.keys()].filter((k) => this.view.get(k) !== undefined).length;
  }
  async exec(_g: string, req: Omit<ExecRequest, 'group'>): Promise<Reply> {
    this.execs.push(req.commands.map((c) => c[0]!.toString().toLowerCase()));
    const ctx = { now: this.now, maxValueBytes: 1 << 20, protocol: req.protocol ?? 2 };
    if (!req.transaction && req.commands.length === 0) {
      return { type: 'array', items: req.keys.map((k): Reply => {
        const w = watchOf(k, this.view, ctx);
        return { type: 'array', items: [{ type: 'integer', value: w.version }, { type: 'integer', value: w.live === true ? 1 : 0 }] };
      }) };
    }
    const out = req.transaction ? executeTransaction(req.commands, this.view, ctx, req.watched) : engineExecute(req.commands[0]!, this.view, ctx);
    this.view.apply(out.changes);
    return out.reply;
  }
  partitionCount(): number {
    return 1;
  }
  async scanPage(_g: string, req: Omit<ScanRequest, 'group'>): Promise<{ cursor: number; keys: string[] }> {
    const keys = [...this.view.entries.keys()].filter((k) => this.view.get(k) !== undefined && (req.match === undefined || globMatch(req.match, k)));
    return { cursor: 0, keys };
  }
  async flush(): Promise<number> {
    const n = this.view.entries.size;
    this.view.entries.clear();
    return n;
  }
}

function setup() {
  const kv = new EngineKv();
  const clock = { now: () => kv.now };
  const door = new FrontDoor({ kv, live: new LiveConfig(parseConfig({ cache: { group_name: 'g' } })), metrics: new Metrics({ defaultMetrics: false }), clock });
  const env: CommandEnv = {
    door,
    group: 'g',
    clock,
    info: async () => '',
    keyspace: async () => ({ keys: 0, expires: 0, avgTtl: 0 }),
    listener: testListener(),
  };
  /** A client: its commands, each answered as RESP text. */
  const client = (id: number) => {
    const session = newSession(id, OPEN_DEFAULT);
    return async (...args: string[]): Promise<string> => encode(await execute(env, session, args.map((a) => Buffer.from(a, 'latin1')))).toString('latin1');
  };
  return { kv, client };
}

const CROSSSLOT = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";

test('the keys used are in different slots, or in one', () => {
  assert.notEqual(slotOf('a'), slotOf('b'));
  assert.equal(slotOf('{t}a'), slotOf('{t}b'));
});

test('commands queued in two slots are each QUEUED and EXEC answers CROSSSLOT, running none (Redis Cluster; found by the cluster oracle)', async () => {
  const { kv, client } = setup();
  const c = client(1);
  assert.equal(await c('MULTI'), '+OK\r\n');
  assert.equal(await c('SET', 'a', '1'), '+QUEUED\r\n');
  assert.equal(await c('SET', 'b', '2'), '+QUEUED\r\n');
  assert.equal(await c('EXEC'), CROSSSLOT);
  assert.equal(await c('EXISTS', 'a', 'b'), ':0\r\n');
  assert.deepEqual(kv.execs.filter((e) => e.includes('set')), []);
  // the slot check comes before EXECABORT, as in Redis Cluster
  assert.equal(await c('MULTI'), '+OK\r\n');
  assert.equal(await c('SET', 'a', '1'), '+QUEUED\r\n');
  assert.equal(await c('SET', 'b', '2'), '+QUEUED\r\n');
  assert.equal(await c('GET', 'a', 'b'), "-ERR wrong number of arguments for 'get' command\r\n");
  assert.equal(await c('EXEC'), CROSSSLOT);
  // one command over two slots is refused as it is queued: EXECABORT
  assert.equal(await c('MULTI'), '+OK\r\n');
  assert.equal(await c('MSETNX', 'a', '1', 'b', '2'), CROSSSLOT);
  assert.equal(await c('SET', 'a', '1'), '+QUEUED\r\n');
  assert.equal(await c('EXEC'), '-EXECABORT Transaction discarded because of previous errors.\r\n');
  // and one slot runs
  assert.equal(await c('MULTI'), '+OK\r\n');
  assert.equal(await c('SET', '{t}a', '1'), '+QUEUED\r\n');
  assert.equal(await c('INCR', '{t}b'), '+QUEUED\r\n');
  assert.equal(await c('EXEC'), '*2\r\n+OK\r\n:1\r\n');
});

test('UNWATCH inside MULTI is queued: EXEC still checks the watched keys (as Redis; seen while adding it to the oracle)', async () => {
  const { client } = setup();
  const [c, other] = [client(1), client(2)];
  assert.equal(await c('WATCH', 'k'), '+OK\r\n');
  assert.equal(await other('SET', 'k', 'changed'), '+OK\r\n');
  assert.equal(await c('MULTI'), '+OK\r\n');
  assert.equal(await c('UNWATCH'), '+QUEUED\r\n');
  assert.equal(await c('SET', 'k', 'mine'), '+QUEUED\r\n');
  assert.equal(await c('EXEC'), '*-1\r\n');
  assert.equal(await c('GET', 'k'), '$7\r\nchanged\r\n');
  // without a change it runs, UNWATCH answering OK in its place
  assert.equal(await c('WATCH', 'k'), '+OK\r\n');
  assert.equal(await c('MULTI'), '+OK\r\n');
  assert.equal(await c('UNWATCH'), '+QUEUED\r\n');
  assert.equal(await c('SET', 'k', 'mine'), '+QUEUED\r\n');
  assert.equal(await c('EXEC'), '*2\r\n+OK\r\n+OK\r\n');
  // WATCH and MULTI inside MULTI are errors that do not abort it, as in Redis
  assert.equal(await c('MULTI'), '+OK\r\n');
  assert.equal(await c('WATCH', 'k'), '-ERR WATCH inside MULTI is not allowed\r\n');
  assert.equal(await c('MULTI'), '-ERR MULTI calls can not be nested\r\n');
  assert.equal(await c('GET', 'k'), '+QUEUED\r\n');
  assert.equal(await c('EXEC'), '*1\r\n$4\r\nmine\r\n');
});

test('keyspace commands in a transaction see and change the keyspace in their place (found by the cluster oracle)', async () => {
  const { kv, client } = setup();
  const c = client(1);
  assert.equal(await c('SET', '{t}old', 'x'), '+OK\r\n');
  assert.equal(await c('MULTI'), '+OK\r\n');
  for (const command of [['SET', '{t}a', '1'], ['DBSIZE'], ['FLUSHALL'], ['INCR', '{t}b'], ['KEYS', '*'], ['PING'], ['INCR', '{t}b']]) {
    assert.equal(await c(...command), '+QUEUED\r\n');
  }
  assert.equal(await c('EXEC'), '*7\r\n+OK\r\n:2\r\n+OK\r\n:1\r\n*1\r\n$4\r\n{t}b\r\n+PONG\r\n:2\r\n');
  assert.equal(await c('KEYS', '*'), '*1\r\n$4\r\n{t}b\r\n');
  // the engine ran the pieces between them, each as one transaction
  assert.deepEqual(kv.execs.slice(-3), [['set'], ['incr'], ['incr']]);
  // a watched key still stops all of it
  assert.equal(await c('WATCH', '{t}b'), '+OK\r\n');
  assert.equal(await client(2)('INCR', '{t}b'), ':3\r\n');
  assert.equal(await c('MULTI'), '+OK\r\n');
  assert.equal(await c('FLUSHALL'), '+QUEUED\r\n');
  assert.equal(await c('EXEC'), '*-1\r\n');
  assert.equal(await c('DBSIZE'), ':1\r\n');
});

test('watched keys and the transaction must share a slot (jincache: one coordinator checks the watches)', async () => {
  const { client } = setup();
  const c = client(1);
  assert.equal(await c('WATCH', 'a'), '+OK\r\n');
  assert.equal(await c('WATCH', 'b'), CROSSSLOT);
  assert.equal(await c('MULTI'), '+OK\r\n');
  assert.equal(await c('SET', 'b', '1'), '+QUEUED\r\n');
  assert.equal(await c('EXEC'), CROSSSLOT);
  assert.equal(await c('EXISTS', 'b'), ':0\r\n');
  // EXEC forgot the watches: another slot may be watched now
  assert.equal(await c('WATCH', 'b'), '+OK\r\n');
  assert.equal(await c('UNWATCH'), '+OK\r\n');
  assert.equal(await c('WATCH', 'a'), '+OK\r\n');
});
