/**
 * The router against in-process peers (FakeNetwork: the real message encodings, no sockets), with
 * tables, health verdicts and freshness set by hand. Every key is in partition 0, whose holders
 * each test chooses, so the expected route can be read off the test.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Group } from '../cache/group.ts';
import { NO_EXPIRY } from '../cache/ops.ts';
import { JincacheError, isJincacheError } from '../core/errors.ts';
import type { PartitionTable } from '../core/placement/table.ts';
import type { NodeId, NodeInfo } from '../core/types.ts';
import { HybridClock } from '../core/version.ts';
import type { WireRecord } from '../peer/codec.ts';
import { Exec, Read, Record, Replicate, Write } from '../peer/messages.ts';
import { STRING, type Engine } from '../cache/engine/types.ts';
import { integer } from '../cache/reply.ts';
import { PeerServer } from '../peer/server.ts';
import { FakeNetwork } from '../peer/testing.ts';
import { LocalData } from './local-data.ts';
import type { Members } from './membership.ts';
import { Peers } from './peers.ts';
import { Router, type Mirrors, type TableView } from './router.ts';
import type { GetResult, LocalRead } from './kv.ts';
import type { ValueSink } from '../cache/store.ts';
import { DRAIN_IDLE_MS, SelfTrust } from './trust.ts';
import { FrontDoor } from '../front/door.ts';
import { OPEN_DEFAULT } from '../front/auth.ts';
import { LiveConfig } from '../config/live.ts';
import { parseConfig } from '../config/schema.ts';
import { Metrics } from '../observe/metrics.ts';

const G = 'g';

/** A clock the test moves by hand (fences and expiry read it); it starts at the real time, as retry timers run on it. */
class FakeClock {
  t = Date.now();
  now(): number {
    return this.t;
  }
}

function table(version: number, holders: NodeId[], members: NodeId[] = holders): PartitionTable {
  return { version, partitionCount: 1, replicationFactor: holders.length, members: members.map((id) => ({ id, weight: 1 })), assignments: [holders], createdAt: 0 };
}

interface TestNode {
  id: NodeId;
  router: Router;
  local: LocalData;
  /** The table this node routes by (tests change it to make the node lag or lead). */
  table: PartitionTable;
  hints: Map<NodeId, WireRecord[]>;
  stale: Set<string>;
  loads: number;
}

/**
 * Nodes `ids` with one shared network and clock. `usable`: the failure detector's verdicts (the
 * same on every node); `stale`: "id" marks that node's copy as possibly lacking writes, for every
 * reader. `loader`: group G loads `origin:KEY` on a miss.
 */
function cluster(ids: NodeId[], holders: NodeId[], opts: { loader?: boolean; retries?: number; timeoutMs?: number; toldOfHints?: (self: NodeId, peer: NodeId, deadline: number) => Promise<void>; announceHints?: (self: NodeId, peer: NodeId) => () => void; mirrors?: Mirrors } = {}) {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const unusable = new Set<NodeId>();
  /** Verdicts of one node only: "a>b" is b unusable as a sees it (a node just back from a pause sees its peers so). */
  const unusableFrom = new Set<string>();
  const stale = new Set<string>();
  /** Freshness as one node knows it: "a>b" is b's copy possibly lacking writes as a sees it ("a>a": a knows its own copy may, e.g. a peer holds hints for it). */
  const staleFrom = new Set<string>();
  /** Nodes that do not trust their own copy (trust.ts). */
  const untrusted = new Set<NodeId>();
  const infos: NodeInfo[] = ids.map((id) => ({ id, address: id, status: 'active', last_seen: 0 }));
  const members = (self: NodeId): Members => ({ self, member: (id) => infos.find((m) => m.id === id), list: () => infos, onChange: () => () => {} });
  const nodes = new Map<NodeId, TestNode>();
  for (const id of ids) {
    const node = { id, table: table(1, holders, ids), hints: new Map<NodeId, WireRecord[]>(), stale, loads: 0 } as TestNode;
    const loader = opts.loader
      ? async (key: string) => {
          node.loads++;
          await new Promise((r) => setTimeout(r, 5));
          return Buffer.from(`origin:${key}`);
        }
      : undefined;
    const groups = new Map([[G, new Group({ name: G, maxBytes: 1 << 20, clock, partitionOf: () => 0, loader })]]);
    node.local = new LocalData({ groups, hlc: new HybridClock(clock), clock });
    const server = new PeerServer();
    net.attach(id, server);
    const tables: TableView = { table: () => node.table, reached: async (v) => node.table.version >= v };
    node.router = new Router({
      self: id,
      tables,
      partitionOf: () => 0,
      usable: (peer) => !unusable.has(peer) && !unusableFrom.has(`${id}>${peer}`),
      // as the detector does: a refused connection means no process there
      down: (peer) => net.down.has(peer),
      // as Freshness does: a node that does not trust its copy counts it as possibly lacking writes
      freshness: { mayLackWrites: (peer) => stale.has(peer) || staleFrom.has(`${id}>${peer}`) || (peer === id && untrusted.has(id)) },
      joining: () => false,
      local: node.local,
      peers: new Peers({ client: net, members: members(id), tableVersion: () => node.table.version, breakers: { call: (_p, fn) => fn() }, clock }),
      hint: (peer, records) => node.hints.set(peer, [...(node.hints.get(peer) ?? []), ...records]),
      ...(opts.toldOfHints !== undefined ? { toldOfHints: (peer: NodeId, deadline: number) => opts.toldOfHints!(id, peer, deadline) } : {}),
      ...(opts.announceHints !== undefined ? { announceHints: (peer: NodeId) => opts.announceHints!(id, peer) } : {}),
      settings: { requestTimeoutMs: () => opts.timeoutMs ?? 500, maxRetries: () => opts.retries ?? 2, syncReplication: true },
      engine: COUNTER_ENGINE,
      ...(opts.mirrors !== undefined ? { mirrors: opts.mirrors } : {}),
      selfTrusted: () => !untrusted.has(id),
      defaultGroup: G,
      clock,
      server,
    });
    nodes.set(id, node);
  }
  const n = (id: NodeId): TestNode => nodes.get(id)!;
  /** Store a record in one node's own copy, as replication would. */
  const plant = (id: NodeId, key: string, value: string | null, version: number): void => {
    n(id).local.applyOne({ group: G, key, value: value === null ? null : Buffer.from(value), version, expiresAt: 0 });
  };
  const own = (id: NodeId, key: string): string | null | undefined => {
    const r = n(id).local.record(G, key);
    return r === undefined ? undefined : (r.value?.toString() ?? null);
  };
  return { net, clock, unusable, unusableFrom, stale, staleFrom, untrusted, n, plant, own };
}

const text = (r: { value: Buffer } | null): string | null => r?.value.toString() ?? null;

/** A one-command engine for the Exec tests: INCR on strings (the real one is cache/engine). */
const COUNTER_ENGINE: Engine = {
  execute(args, view) {
    const key = args[1]!.toString('latin1');
    const n = Number(view.get(key)?.value.toString() ?? '0') + 1;
    return { reply: integer(n), changes: [{ key, type: STRING, value: Buffer.from(String(n)), expiresAt: 0 }] };
  },
  executeTransaction(commands, view, ctx) {
    const replies = commands.map((c) => COUNTER_ENGINE.execute(c, view, ctx));
    return { reply: { type: 'array', items: replies.map((r) => r.reply) }, changes: replies.at(-1)?.changes ?? [] };
  },
};

const incr = (key: string) => ({ key, keys: [key], commands: [[Buffer.from('INCR'), Buffer.from(key)]], transaction: false, watched: [] });

describe('Router', () => {
  test('a read goes to the owner; a write is coordinated there and replicated before it is acknowledged', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b']);
    assert.equal(await c.n('c').router.put(G, 'k', Buffer.from('v1')), true);
    assert.equal(c.own('a', 'k'), 'v1');
    assert.equal(c.own('b', 'k'), 'v1');
    assert.equal(c.own('c', 'k'), undefined, 'a non-holder keeps no copy');
    assert.equal(c.net.count(Write), 1);
    assert.equal(c.net.count(Replicate), 1);
    assert.equal(text(await c.n('c').router.get(G, 'k')), 'v1');
    assert.deepEqual(c.net.calls.filter((x) => x.message === Read.name).map((x) => x.address), ['a']);
  });

  test('owner down: reads and writes go to the next holder, the owner gets a hint', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b']);
    c.net.down.add('a');
    c.unusable.add('a');
    assert.equal(await c.n('c').router.put(G, 'k', Buffer.from('v2')), true);
    assert.equal(c.own('b', 'k'), 'v2');
    assert.deepEqual(c.n('b').hints.get('a')?.map((r) => r.value?.toString()), ['v2'], 'the coordinator kept the write for the owner');
    assert.equal(text(await c.n('c').router.get(G, 'k')), 'v2');
    assert.ok(!c.net.calls.some((x) => x.address === 'a'), 'nothing was sent to the unusable owner');
  });

  test('a write to be hinted for a holder taken for unreachable is applied only once that holder has been told of the hint (its next heartbeat), within half the deadline, and acknowledged after', async () => {
    const told: { self: NodeId; peer: NodeId; deadline: number; resolve: () => void }[] = [];
    const announced: string[] = [];
    const c = cluster(['a', 'b', 'c'], ['a', 'b'], {
      toldOfHints: (self, peer, deadline) => new Promise((resolve) => told.push({ self, peer, deadline, resolve })),
      announceHints: (self, peer) => {
        announced.push(`${self}>${peer}`);
        return () => announced.push(`${self}>${peer} released`);
      },
    });
    c.unusableFrom.add('a>b'); // a wrongly takes b for unreachable; b is alive and serving
    let acked = false;
    const put = c.n('c').router.put(G, 'k', Buffer.from('v')).then((ok) => (acked = ok));
    for (let i = 0; i < 5 && told.length === 0; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(announced, ['a>b'], 'a announced hints for b before applying');
    assert.equal(told.length, 1);
    assert.equal(told[0]!.self, 'a');
    assert.equal(told[0]!.peer, 'b');
    assert.ok(told[0]!.deadline > c.clock.now() && told[0]!.deadline <= c.clock.now() + 250, 'at most half the 500 ms budget');
    await new Promise((r) => setImmediate(r));
    assert.equal(c.own('a', 'k'), undefined, 'not applied while b may still answer its old copy unaware: no read can see it yet');
    assert.equal(acked, false);
    told[0]!.resolve();
    await put;
    assert.equal(acked, true);
    assert.equal(c.own('a', 'k'), 'v');
    assert.deepEqual(c.n('a').hints.get('b')?.map((r) => r.value?.toString()), ['v'], 'kept as a hint for b');
    assert.equal(told.length, 1, 'told once: the hint after the apply does not wait again');
    assert.deepEqual(announced, ['a>b', 'a>b released']);
  });

  test('exec at a backup that took the owner for down: when the wait to tell the owner shows it is back, the commands are not run there (one coordinator per key)', async () => {
    const told: (() => void)[] = [];
    const c = cluster(['a', 'b', 'c'], ['a', 'b'], { toldOfHints: () => new Promise((resolve) => told.push(resolve)) });
    c.net.down.add('a');
    c.unusable.add('a');
    const run = c.n('b').router.exec(G, incr('n')).then(
      () => 'ran',
      (e: { code?: string }) => e.code,
    );
    for (let i = 0; i < 5 && told.length === 0; i++) await new Promise((r) => setImmediate(r));
    assert.equal(told.length, 1, 'b waits to tell a (it pinged b: it restarted)');
    c.net.down.delete('a'); // a is back: no longer down as b sees it
    told[0]!();
    assert.equal(await run, 'NOT_SERVING');
    assert.equal(c.own('b', 'n'), undefined, 'nothing run at b');
  });

  test('owner suspected but not yet marked: the read fails over within the deadline', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b'], { timeoutMs: 400 });
    c.plant('a', 'k', 'v', 5);
    c.plant('b', 'k', 'v', 5);
    c.net.hung.add('a');
    const started = Date.now();
    assert.equal(text(await c.n('c').router.get(G, 'k')), 'v');
    const ms = Date.now() - started;
    assert.ok(ms < 400, `answered by the backup after half the budget (${ms} ms)`);
    assert.deepEqual(c.net.calls.filter((x) => x.message === Read.name).map((x) => x.address), ['a', 'b']);
  });

  test('a read sent to the backup by a node that takes the owner for unreachable gets the owner\'s newer copy when the owner answers there', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b']);
    c.plant('a', 'k', 'new', 9); // applied at the owner, still on its way to b
    c.plant('b', 'k', 'old', 5);
    c.unusableFrom.add('c>a');
    assert.equal(text(await c.n('c').router.get(G, 'k')), 'new');
    assert.deepEqual(c.net.calls.filter((x) => x.message === Read.name).map((x) => x.address), ['b']);
    assert.equal(c.own('b', 'k'), 'new', 'and the backup\'s copy is repaired');
    c.plant('a', 'k', 'newer', 12);
    c.net.down.add('a');
    assert.equal(text(await c.n('c').router.get(G, 'k')), 'new', 'an owner that cannot be asked: the backup\'s copy answers');
  });

  test('a holder whose copy may lack writes is never read alone: the newest copy wins and the stale one is repaired', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b']);
    c.plant('a', 'k', 'old', 5);
    c.plant('b', 'k', 'new', 9);
    c.stale.add('a'); // the owner just came back
    assert.equal(text(await c.n('c').router.get(G, 'k')), 'new');
    assert.deepEqual(c.n('c').hints.get('a')?.map((r) => r.value?.toString()), ['new'], 'read repair for the owner');
    // the fast local read refuses too: any holder may lack writes
    assert.equal(c.n('a').router.getLocal(G, 'k'), undefined);
    c.stale.clear();
    assert.equal(c.n('a').router.getLocal(G, 'k')?.value.toString(), 'old', 'without the mark the owner answers from its copy');
  });

  test('getLocalInto answers as getLocal does, with the value written into the sink: own copy, a copy that may lack writes, a mirror, another type', () => {
    const mirrored = new Map<string, GetResult>([['m', { value: Buffer.from('hot'), source: 'hit', expiresAt: 0 }], ['h', { value: Buffer.from('x'), source: 'hit', expiresAt: 0, type: 1 }]]);
    const c = cluster(['a', 'b', 'c'], ['a', 'b'], { mirrors: { get: (_g, key) => mirrored.get(key), waits: () => false, beforeWrite: async () => {} } });
    c.plant('a', 'k', 'v1', 5);
    c.n('a').local.applyOne({ group: G, key: 'h', value: Buffer.from('field'), version: 6, expiresAt: 0, type: 1 });
    const into = (id: NodeId, key: string): { read: LocalRead; got: string[] } => {
      const got: string[] = [];
      const sink: ValueSink = {
        fromSource: (length, source) => {
          const b = Buffer.alloc(length);
          source.copyValueTo(b, 0);
          got.push(b.toString());
        },
        fromBuffer: (v) => got.push(v.toString()),
      };
      return { read: c.n(id).router.getLocalInto(G, key, sink), got };
    };
    assert.deepEqual(into('a', 'k'), { read: 'hit', got: ['v1'] }, 'the owner, from its own copy');
    assert.deepEqual(into('a', 'absent'), { read: undefined, got: [] }, 'a miss goes the full way (loaders, the disk)');
    assert.deepEqual(into('a', 'h'), { read: 'wrongtype', got: [] });
    assert.deepEqual(into('c', 'm'), { read: 'hit', got: ['hot'] }, 'a mirror at a node that does not own the key');
    assert.deepEqual(into('c', 'h'), { read: 'wrongtype', got: [] });
    assert.deepEqual(into('c', 'k'), { read: undefined, got: [] }, 'neither owner nor mirror');
    c.plant('b', 'k', 'v0', 4);
    assert.deepEqual(into('b', 'k'), { read: undefined, got: [] }, 'a backup does not answer from its own copy: the owner does');
    c.plant('c', 'k', 'v0', 4);
    assert.deepEqual(into('c', 'k'), { read: undefined, got: [] }, 'nor does a node left with a copy it no longer holds');
    c.stale.add('b');
    assert.deepEqual(into('a', 'k'), { read: undefined, got: [] }, 'a holder may lack writes: the full read path');
    assert.equal(c.n('a').router.getLocal(G, 'k'), undefined);
  });

  test('a holder whose own copy may lack writes and cannot ask the other holder answers unavailable, never "absent"', async () => {
    // a is a holder the crash repair has not filled yet (its copy lacks the key); b, which holds
    // it, is unreachable from a: a read through a must fail retryably, as stall.test found
    for (const holders of [['a', 'b'], ['b', 'a']] as const) {
      const c = cluster(['a', 'b'], [...holders]);
      c.plant('b', 'k', 'acked', 9);
      c.stale.add('a');
      c.unusableFrom.add('a>b');
      c.net.cut.add('a>b'); // unreachable: a last-resort attempt there fails too
      await assert.rejects(c.n('a').router.get(G, 'k'), (e) => isJincacheError(e) && (e.code === 'PEER_UNAVAILABLE' || e.code === 'NOT_SERVING'), `holders ${holders.join(',')}`);
      // detector wrong (b answers after all): b's copy answers, never a's
      c.net.cut.clear();
      assert.equal(text(await c.n('a').router.get(G, 'k')), 'acked', 'tried as a last resort');
      c.unusableFrom.clear();
      assert.equal(text(await c.n('a').router.get(G, 'k')), 'acked', 'b reachable again: its copy answers');
    }
  });

  test('a holder on probation that hangs costs the newest-copy read half the budget, not all of it: the fresh holder answers', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b'], { timeoutMs: 400 });
    c.plant('a', 'k', 'v', 5);
    c.plant('b', 'k', 'v', 5);
    c.stale.add('a'); // just back, and slow (a delay on its link)
    c.net.hung.add('a');
    const started = Date.now();
    assert.equal(text(await c.n('c').router.get(G, 'k')), 'v');
    const ms = Date.now() - started;
    assert.ok(ms >= 150 && ms < 400, `the backup answered after the newest-copy read gave up (${ms} ms)`);
  });

  test('a copy on probation that holds nothing: a loader group loads once, at the owner', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b'], { loader: true });
    c.stale.add('a');
    const got = await Promise.all(Array.from({ length: 20 }, (_, i) => c.n(['a', 'b', 'c'][i % 3]!).router.get(G, 'k')));
    assert.ok(got.every((g) => text(g) === 'origin:k'));
    assert.equal(c.n('a').loads + c.n('b').loads + c.n('c').loads, 1, 'one origin load');
    assert.equal(c.n('a').loads, 1, 'at the owner');
  });

  test('a read routed by an older table to a node that no longer holds the key is routed again', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b']);
    // the partition moved from a,b to c,b (table 2); a sender still on table 1 sends its read to a
    for (const id of ['b', 'c']) c.n(id).table = table(2, ['c', 'b'], ['a', 'b', 'c']);
    c.n('a').table = table(2, ['c', 'b'], ['a', 'b', 'c']);
    c.plant('a', 'k', 'old', 1);
    c.plant('c', 'k', 'current', 7);
    c.plant('b', 'k', 'current', 7);
    // ask node a as a sender on table 1 would
    const answer = await c.net.call(Read, 'a', { group: G, key: 'k' }, { table: 1, deadline: Date.now() + 500 });
    assert.equal(answer.found && answer.value.toString(), 'current');
    assert.equal(c.n('a').router.staleRoutes, 1);
    // same table: a answers, asking the owner c first (its copy has every write the owner applied)
    const same = await c.net.call(Read, 'a', { group: G, key: 'k' }, { table: 2, deadline: Date.now() + 500 });
    assert.equal(same.found && same.value.toString(), 'current');
    assert.equal(c.n('a').router.staleRoutes, 1, 'not re-routed');
    // its own copy, asked by an older table: misdirected
    assert.equal((await c.net.call(Record, 'a', { group: G, key: 'k' }, { table: 1, deadline: Date.now() + 500 })).kind, 'misdirected');
  });

  test('records replicated by an older table are sent on to the holders the newer table lists', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b']);
    c.n('b').table = table(2, ['c', 'b'], ['a', 'b', 'c']);
    await c.net.call(Replicate, 'b', [{ group: G, key: 'k', value: Buffer.from('w'), version: 3, expiresAt: 0 }], { from: 'a', table: 1, deadline: Date.now() + 500 });
    assert.equal(c.own('b', 'k'), 'w');
    assert.equal(c.own('c', 'k'), 'w', 'the new holder got it before the replication was confirmed');
    assert.equal(c.own('a', 'k'), undefined, 'not sent back to the sender');
  });

  test('a backup that does not confirm gets the write as a hint; the write is still acknowledged', async () => {
    const c = cluster(['a', 'b'], ['a', 'b'], { timeoutMs: 200 });
    c.net.hung.add('b');
    assert.equal(await c.n('a').router.put(G, 'k', Buffer.from('v')), true);
    assert.deepEqual(c.n('a').hints.get('b')?.map((r) => r.value?.toString()), ['v']);
  });

  test('the fence: a write that reaches its coordinator after its deadline is not applied', async () => {
    const c = cluster(['a', 'b'], ['a', 'b']);
    c.plant('a', 'k', 'before', 5);
    const fence = c.clock.now() + 100;
    c.clock.t += 150; // the write arrives late (the sender has given up)
    await assert.rejects(
      c.net.call(Write, 'a', { group: G, key: 'k', op: { op: 'set', value: Buffer.from('late'), expiry: NO_EXPIRY } }, { deadline: fence }),
      (e: unknown) => isJincacheError(e) && e.code === 'TIMEOUT',
    );
    assert.equal(c.own('a', 'k'), 'before');
    assert.equal(c.own('b', 'k'), undefined, 'nothing replicated');
  });

  test('a conditional write is not retried elsewhere after a timeout, only when it surely never arrived', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b'], { timeoutMs: 300 });
    c.net.hung.add('a');
    await assert.rejects(c.n('c').router.put(G, 'k', Buffer.from('x'), { condition: 'nx' }), (e: unknown) => e instanceof JincacheError && e.code === 'TIMEOUT');
    assert.equal(c.own('b', 'k'), undefined, 'the backup did not decide it: a at may have applied it');
    c.net.hung.delete('a');
    c.net.down.add('a');
    assert.equal(await c.n('c').router.put(G, 'k', Buffer.from('x'), { condition: 'nx' }), true, 'refused: it never arrived, the next holder decides');
    assert.equal(c.own('b', 'k'), 'x');
  });

  test('a write whose answer was lost is not applied again elsewhere: it fails as may-or-may-not, and stays applied once', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b'], { timeoutMs: 400 });
    // a applies the write, its replication to b is refused (b gets a hint later), its answer is lost
    c.net.lostReplies.add('a');
    c.net.cut.add('a>b');
    await assert.rejects(c.n('c').router.put(G, 'k', Buffer.from('first')), (e: unknown) => isJincacheError(e) && e.code === 'TIMEOUT');
    assert.equal(c.net.count(Write), 1, 'one attempt: a second copy could show the write twice in the key\'s history');
    assert.equal(c.own('b', 'k'), undefined, 'b did not apply a second copy');
    assert.equal(c.n('a').hints.get('b')?.[0]?.value?.toString(), 'first', 'a applied it once and will hand it to b');
  });

  test('a write refused at once (nothing applied) goes to the next holder', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b']);
    c.net.down.add('a');
    assert.equal(await c.n('c').router.put(G, 'k', Buffer.from('v')), true);
    assert.deepEqual(c.net.calls.filter((x) => x.message === Write.name).map((x) => x.address), ['a', 'b']);
    assert.equal(c.own('b', 'k'), 'v');
  });

  test('a write needing no network is applied synchronously; otherwise writeLocal declines', () => {
    const solo = cluster(['a'], ['a']);
    assert.deepEqual(solo.n('a').router.writeLocal(G, 'k', { op: 'set', value: Buffer.from('v'), expiry: NO_EXPIRY }), { applied: true, existed: false });
    assert.equal(solo.own('a', 'k'), 'v');
    const pair = cluster(['a', 'b'], ['a', 'b']);
    assert.equal(pair.n('a').router.writeLocal(G, 'k', { op: 'set', value: Buffer.from('v'), expiry: NO_EXPIRY }), undefined);
  });

  test('appliesHere: the coordinator has applied a write when write() returns; other holders and non-holders have not', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b']);
    assert.deepEqual(['a', 'b', 'c'].map((id) => c.n(id).router.appliesHere('k')), [true, false, false]);
    const atOwner = c.n('a').router.put(G, 'k', Buffer.from('v1'));
    assert.equal(c.own('a', 'k'), 'v1', 'in effect before the promise settles');
    await atOwner;
    const atOther = c.n('c').router.put(G, 'k', Buffer.from('v2'));
    assert.equal(c.own('a', 'k'), 'v1', 'a write sent to the coordinator is not in effect yet');
    await atOther;
    assert.equal(c.own('a', 'k'), 'v2');
  });

  test('exec: the commands run at the coordinator, atomically, and what they change is replicated before the reply', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b']);
    assert.deepEqual(await c.n('c').router.exec(G, incr('n')), integer(1));
    assert.deepEqual(await c.n('c').router.exec(G, incr('n')), integer(2));
    assert.equal(c.own('a', 'n'), '2', 'run at the owner');
    assert.equal(c.own('b', 'n'), '2', 'replicated to the backup');
    assert.equal(c.own('c', 'n'), undefined, 'nothing kept at the node the client talks to');
  });

  test('exec is not retried elsewhere after a timeout (INCR is not idempotent), only when it surely never arrived', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b'], { timeoutMs: 300 });
    c.net.lostReplies.add('a');
    await assert.rejects(c.n('c').router.exec(G, incr('n')), (e: unknown) => isJincacheError(e) && e.code === 'TIMEOUT');
    assert.equal(c.net.count(Exec), 1, 'one attempt');
    assert.equal(c.own('a', 'n'), '1', 'applied once');
    c.net.lostReplies.delete('a');
    c.clock.t = Date.now(); // the attempt took the whole budget
    c.net.down.add('a');
    c.unusableFrom.add('b>a'); // b's detector has seen a go too
    assert.deepEqual(await c.n('c').router.exec(G, incr('n')), integer(2), 'no process at a (refused): b coordinates, on the copy a replicated');
  });

  test('exec at an owner that does not trust its copy fails, run nowhere (the backup\'s view of it may be wrong); once it trusts it again it runs there', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b']);
    await c.n('c').router.exec(G, incr('n'));
    c.untrusted.add('a');
    c.staleFrom.add('b>a'); // b sees a as just recovered (probation)
    await assert.rejects(c.n('c').router.exec(G, incr('n')), (e: unknown) => isJincacheError(e) && e.code === 'NOT_SERVING');
    await assert.rejects(c.n('b').router.exec(G, incr('n')), (e: unknown) => isJincacheError(e) && e.code === 'NOT_SERVING');
    assert.equal(c.own('a', 'n'), '1');
    assert.equal(c.own('b', 'n'), '1', 'b ran nothing');
    c.untrusted.delete('a');
    assert.deepEqual(await c.n('c').router.exec(G, incr('n')), integer(2));
    assert.ok(c.net.calls.filter((x) => x.message === Exec.name).every((x) => x.address === 'a'), 'every attempt went to the owner');
  });

  test('exec: commands run at the owner whatever a sender or the backup think of it (slow, suspected, owed hints); only an owner with no process is passed over (one coordinator, never two answering N+1)', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b']);
    await c.n('b').router.exec(G, incr('n'));
    c.unusableFrom.add('c>a'); // c's detector takes the owner for unreachable (a slow owner on a loaded machine)
    c.unusableFrom.add('b>a'); // and so does b's
    c.staleFrom.add('b>a'); // b holds hints for a
    assert.deepEqual(await c.n('c').router.exec(G, incr('n')), integer(2));
    assert.deepEqual(await c.n('b').router.exec(G, incr('n')), integer(3));
    assert.deepEqual(c.net.calls.filter((x) => x.message === Exec.name).map((x) => x.address), ['a', 'a', 'a'], 'every one ran at the owner');
    assert.equal(c.own('b', 'n'), '3');
    // the owner's process is gone (connections refused): b runs them
    c.net.down.add('a');
    assert.deepEqual(await c.n('c').router.exec(G, incr('n')), integer(4));
    assert.equal(c.own('b', 'n'), '4');
  });

  test('an owner that knows its copy may lack writes (another holder owes it hints) catches the keys up from the other holders before it runs a command; fails when one does not answer', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b'], { timeoutMs: 200 });
    // b acknowledged increments while it took a for down: a has 3, b has 5, and a heard (a heartbeat answer) that b holds hints for it
    c.plant('a', 'n', '3', 100);
    c.plant('b', 'n', '5', 200);
    c.staleFrom.add('a>a');
    c.staleFrom.add('b>a');
    assert.deepEqual(await c.n('c').router.exec(G, incr('n')), integer(6), 'a ran it on b\'s newer copy');
    assert.equal(c.own('a', 'n'), '6');
    assert.equal(c.own('b', 'n'), '6');
    c.plant('a', 'k', 'old', 100);
    c.plant('b', 'k', null, 200); // deleted at b
    assert.equal(await c.n('c').router.put(G, 'k', Buffer.from('new'), { condition: 'nx' }), true, 'NX decided at b, where the key is deleted, not on a\'s old copy');
    assert.equal(c.own('b', 'k'), 'new');
    // the other holder hangs: a cannot know what it lacks, nothing runs
    c.net.hung.add('b');
    await assert.rejects(c.n('a').router.exec(G, incr('n')), (e: unknown) => isJincacheError(e) && e.code === 'NOT_SERVING');
    assert.equal(c.own('a', 'n'), '6');
  });

  test('a value larger than the group\'s whole budget is refused with an error and stored nowhere, not acknowledged and dropped', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'b']);
    await assert.rejects(c.n('c').router.put(G, 'big', Buffer.alloc(2 << 20)), (e: unknown) => isJincacheError(e) && e.code === 'VALUE_TOO_LARGE');
    assert.equal(c.own('a', 'big'), undefined);
    assert.equal(c.own('b', 'big'), undefined);
    assert.equal(c.net.count(Replicate), 0);
  });
});

/**
 * Issue 17, the histories pause-reads found, replayed step by step. b is the node that was
 * paused: right after SIGCONT it does not trust its copy, and its failure detector, as old as
 * the pause, calls every peer unusable; the others, for their part, routed around b.
 */
describe('Router after a pause (issue 17)', () => {
  const set = (v: string) => ({ op: 'set' as const, value: Buffer.from(v), expiry: NO_EXPIRY });

  test('a write sent to a paused node is not applied after it resumes, over a write acknowledged meanwhile', async () => {
    const c = cluster(['a', 'b', 'c'], ['a', 'c'], { timeoutMs: 1000 });
    // b's front door, with its pause detection on the shared clock
    let idle = 0;
    const trust = new SelfTrust({ self: 'b', clock: c.clock, stallMs: 375, tables: { table: () => c.n('b').table, reached: async () => true }, settledSince: () => true, loopIdleMs: () => idle });
    const config = parseConfig({ cache: { group_name: G }, fault_tolerance: { request_timeout: '1s' } });
    const door = new FrontDoor({ kv: c.n('b').router, live: new LiveConfig(config), metrics: new Metrics({ defaultMetrics: false }), clock: c.clock, receivedSince: () => trust.receivedSince() });
    // t0: a client sends W to b, which is stopped: the request waits in b's socket. The client
    // gives up after its 2 s; at t0 + 2.1 s another client writes W2 through a: acknowledged.
    const t0 = c.clock.now();
    c.clock.t += 2100;
    assert.equal(await c.n('a').router.put(G, 'k', Buffer.from('W2')), true);
    // t0 + 6 s: b resumes (the stop counted as idle time of its loop) and reads W from its socket
    c.clock.t = t0 + 6000;
    idle += 6000;
    await assert.rejects(door.write('http', OPEN_DEFAULT, G, 'k', set('W')), (e: unknown) => isJincacheError(e) && e.code === 'TIMEOUT');
    // Counted from when b read it, W would have reached a with a fresh deadline and a version
    // above W2's: every node would read W from then on, though W2 was acknowledged after W ended.
    assert.equal(c.own('a', 'k'), 'W2');
    assert.equal(text(await c.n('c').router.get(G, 'k')), 'W2');
    assert.equal(c.net.count(Write), 0, 'W never left b');
    // once b's loop has waited for I/O again, the backlog is read: a new write goes through
    idle += DRAIN_IDLE_MS;
    assert.deepEqual(await door.write('http', OPEN_DEFAULT, G, 'k', set('W3')), { applied: true, existed: true });
    assert.equal(c.own('a', 'k'), 'W3');
    trust.stop();
  });

  test('a node that does not trust its copy coordinates no write another holder can take, even one its detector calls unusable', async () => {
    // b owns k with a; b just resumed: untrusted, a unusable as b sees it; a (which routed
    // around b during the pause) sees b unusable too
    const c = cluster(['a', 'b', 'c'], ['b', 'a']);
    c.untrusted.add('b');
    c.unusableFrom.add('b>a');
    c.unusableFrom.add('a>b');
    assert.equal(await c.n('b').router.put(G, 'k', Buffer.from('W')), true);
    // Coordinated at b, W would be acknowledged with b's copy and a hint for a, while every
    // reader that sees b unusable reads a's copy, which lacks it.
    assert.deepEqual(c.net.calls.filter((x) => x.message === Write.name).map((x) => x.address), ['a'], 'sent to a although b\'s detector calls it unusable');
    assert.equal(c.own('a', 'k'), 'W');
    assert.equal(text(await c.n('a').router.get(G, 'k')), 'W', 'read where the others read');
    assert.equal(c.n('b').hints.get('a'), undefined, 'no hint-only write for a');
  });

  test('an untrusted node\'s read asks the other holders even when its detector calls them unusable: never its own copy alone, never "absent"', async () => {
    const c = cluster(['a', 'b', 'c'], ['b', 'a']);
    c.plant('b', 'k', 'old', 5);
    c.plant('a', 'k', 'new', 9);
    c.untrusted.add('b');
    c.unusableFrom.add('b>a');
    assert.equal(text(await c.n('b').router.get(G, 'k')), 'new', 'its own copy alone answered "old"');
    // b not a holder: the holders a and c are unusable as b sees it, and may lack writes (b holds hints for a)
    const d = cluster(['a', 'b', 'c'], ['a', 'c']);
    d.plant('a', 'k', 'new', 9);
    d.plant('c', 'k', 'new', 9);
    d.stale.add('a');
    d.unusableFrom.add('b>a');
    d.unusableFrom.add('b>c');
    assert.equal(text(await d.n('b').router.get(G, 'k')), 'new', 'asking nobody answered "absent"');
  });

  test('a holder made a holder before its copy arrived says so when asked for its copy: its "none" never answers "absent" for the holder that has the key (stall.test, "stall-18: 404")', async () => {
    // every node stalled, c was removed: a became a holder of the partition before the repair
    // copied it there (a knows it: "a>a"); b had the key with c but does not trust its copy yet.
    // x reads by the table in force and reaches b, which asks the other holders
    const c = cluster(['a', 'b', 'x'], ['b', 'a']);
    c.plant('b', 'k', 'acked', 9);
    c.untrusted.add('b');
    c.staleFrom.add('a>a');
    assert.equal(text(await c.n('x').router.get(G, 'k')), 'acked', 'b asked a alone and took its "none" for the partition');
    // a as the owner, answering x itself: b refuses to answer from a copy it does not trust, so
    // a cannot know the key is absent (the newest-copy read must not count b as answered)
    const d = cluster(['a', 'b', 'x'], ['a', 'b']);
    d.plant('b', 'k', 'acked', 9);
    d.untrusted.add('b');
    d.staleFrom.add('a>a');
    assert.equal(text(await d.n('x').router.get(G, 'k')), 'acked', 'a answered "absent" after b refused');
    // a key that is nowhere is still absent once every holder answered
    assert.equal(await d.n('x').router.get(G, 'nowhere'), null);
    assert.equal(await c.n('b').router.get(G, 'nowhere'), null);
  });

  test('a node back from a partition, which sees every peer on probation and one holder unusable, reads the other holders\' copies: they stand when none says it lacks writes', async () => {
    // b, the owner, was the one cut off: from b every peer "just recovered" (may lack writes, as
    // b sees it) and c is not usable yet. A read x routes to b is answered from a's copy, which
    // says nothing of lacking (refusing it failed reads at healthy nodes forwarded to the node
    // just back, chaos-hosts-short's partition phase: 503 "no other holder ... answered")
    // (no retries: x's one attempt is b's answer, not a second one at a)
    const c = cluster(['a', 'b', 'c', 'x'], ['b', 'a', 'c'], { retries: 0 });
    c.plant('a', 'k', 'acked', 9);
    c.plant('c', 'k', 'acked', 9);
    c.untrusted.add('b');
    c.staleFrom.add('b>a');
    c.staleFrom.add('b>c');
    c.unusableFrom.add('b>c');
    assert.equal(text(await c.n('x').router.get(G, 'k')), 'acked');
    assert.equal(await c.n('x').router.get(G, 'nowhere'), null, 'absent: a answered for the holders b can ask');
  });

  test('a node back from a partition whose peer says its copy may lack writes (the node holds hints for it) answers the newest of that copy and its own, never "absent" from them', async () => {
    // b coordinated "newer" while cut off, and keeps it as a hint for a, which knows (a>a); c is
    // not usable from b yet. x's read reaches b (no retries: b's answer is x's)
    const c = cluster(['a', 'b', 'c', 'x'], ['b', 'a', 'c'], { retries: 0 });
    c.plant('a', 'k', 'older', 5);
    c.plant('b', 'k', 'newer', 9);
    c.untrusted.add('b');
    c.staleFrom.add('a>a');
    c.unusableFrom.add('b>c');
    assert.equal(text(await c.n('x').router.get(G, 'k')), 'newer');
    assert.deepEqual(c.n('b').hints.get('a')?.map((r) => r.value?.toString()), ['newer'], 'a repaired through a hint');
    // nobody b can ask may know the key is absent: unavailable, not "absent"
    await assert.rejects(c.n('x').router.get(G, 'nowhere'), (e) => isJincacheError(e));
  });
});
