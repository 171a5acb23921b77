import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SLOT_COUNT, partitionOfSlot, slotOf } from '../../core/placement/hash.ts';
import { createTable, type PartitionTable } from '../../core/placement/table.ts';
import type { NodeId } from '../../core/types.ts';
import { OPEN_DEFAULT } from '../auth.ts';
import { CLUSTER_COMMANDS, CROSSSLOT, clusterNodeId, infoText, masterOfSlot, nodesText, redirect, slotRanges, type ClusterNode, type ClusterView, type NodeHealth, type RedirectMode } from './cluster.ts';
import { newSession, type CommandEnv, type Session } from './session.ts';
import { encode, encodeAs, type RespReply } from './writer.ts';

interface FakeOptions {
  self: NodeId;
  table: PartitionTable;
  /** Members with a RESP listener, port 7000 + index; default: every table member. */
  resp?: NodeId[];
  health?: Record<NodeId, NodeHealth>;
  mode?: RedirectMode;
  /** Nodes not known to be on this table yet. */
  behind?: NodeId[];
  keys?: string[];
}

/** A ClusterView over a real partition table, with health and addresses given by hand. */
function fakeView(o: FakeOptions): ClusterView & { mode: RedirectMode; health: Record<NodeId, NodeHealth> } {
  const ids = o.resp ?? o.table.members.map((m) => m.id);
  const health: Record<NodeId, NodeHealth> = { ...o.health };
  const node = (id: NodeId): ClusterNode | undefined => {
    const i = ids.indexOf(id);
    return i < 0 ? undefined : { id, host: '127.0.0.1', port: 7000 + i, busPort: 8000 + i, health: id === o.self ? 'online' : (health[id] ?? 'online'), pongAt: 1_000 + i };
  };
  const keys = o.keys ?? [];
  return {
    self: o.self,
    mode: o.mode ?? 'always',
    health,
    redirects() {
      return this.mode;
    },
    table: () => o.table,
    nodes: () => [...ids].sort().map((id) => node(id)!),
    node,
    current: (id) => !(o.behind ?? []).includes(id),
    countKeysInSlot: (slot) => keys.filter((k) => slotOf(k) === slot).length,
    keysInSlot: (slot, count) => keys.filter((k) => slotOf(k) === slot).slice(0, count),
  };
}

const members = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `node-${i + 1}`, weight: 1 }));
const table3 = createTable(members(3), { partitionCount: 64, replicationFactor: 2, clock: { now: () => 0 } });

function session(cluster?: Session['cluster']): Session {
  const s = newSession(1, OPEN_DEFAULT);
  if (cluster !== undefined) s.cluster = cluster;
  return s;
}

/** A key whose slot's holders are exactly `holders` (owner first). */
function keyHeldBy(t: PartitionTable, holders: NodeId[]): string {
  for (let i = 0; ; i++) {
    const k = `k${i}`;
    const h = t.assignments[partitionOfSlot(slotOf(k), t.partitionCount)]!;
    if (h.join() === holders.join()) return k;
  }
}

const text = (r: RespReply | undefined): string | undefined => (r === undefined ? undefined : encode(r).toString('latin1'));

function run(view: ClusterView | undefined, s: Session, ...args: string[]): RespReply {
  const name = args[0]!.toLowerCase();
  const env = { cluster: view } as CommandEnv; // the cluster commands read nothing else
  return CLUSTER_COMMANDS[name]!.run(env, s, args.map((a) => Buffer.from(a))) as RespReply;
}

test('node ids are 40 hex chars, stable and distinct', () => {
  assert.match(clusterNodeId('node-1'), /^[0-9a-f]{40}$/);
  assert.equal(clusterNodeId('node-1'), clusterNodeId('node-1'));
  assert.notEqual(clusterNodeId('node-1'), clusterNodeId('node-2'));
  // SHA-1, so every node and every restart derives the same id
  assert.equal(clusterNodeId('abc'), 'a9993e364706816aba3e25717850c26c9cd0d89d');
});

test('redirect: a slot another node serves gets MOVED naming its RESP address', () => {
  const view = fakeView({ self: 'node-1', table: table3 });
  const key = keyHeldBy(table3, ['node-2', 'node-3']);
  assert.equal(text(redirect(session(), key, view, 'read')), `-MOVED ${slotOf(key)} 127.0.0.1:7001\r\n`);
  assert.equal(text(redirect(session(), [Buffer.from(key)], view, 'write')), `-MOVED ${slotOf(key)} 127.0.0.1:7001\r\n`);
  // a slot this node owns is served here
  assert.equal(redirect(session(), keyHeldBy(table3, ['node-1', 'node-2']), view, 'write'), undefined);
  // no keys, no redirect
  assert.equal(redirect(session(), [], view, 'read'), undefined);
});

test('redirect: auto redirects only cluster-aware connections; never nobody; no view nobody', () => {
  const view = fakeView({ self: 'node-1', table: table3, mode: 'auto' });
  const key = keyHeldBy(table3, ['node-2', 'node-3']);
  assert.equal(redirect(session(), key, view, 'read'), undefined);
  assert.equal(redirect(session({ aware: false, readonly: false }), key, view, 'read'), undefined);
  assert.match(text(redirect(session({ aware: true, readonly: false }), key, view, 'read'))!, /^-MOVED /);
  view.mode = 'never';
  assert.equal(redirect(session({ aware: true, readonly: false }), key, view, 'read'), undefined);
  assert.equal(redirect(session({ aware: true, readonly: false }), key, undefined, 'read'), undefined);
});

test('redirect: keys in several slots get CROSSSLOT, hash tags keep them together', () => {
  const view = fakeView({ self: 'node-1', table: table3 });
  assert.equal(redirect(session(), ['a', 'b'], view, 'read'), CROSSSLOT);
  assert.equal(text(CROSSSLOT), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
  const tagged = ['{user1}:a', '{user1}:b', Buffer.from('{user1}:c')];
  const r = redirect(session(), tagged, view, 'write');
  const slot = slotOf('user1');
  const holders = table3.assignments[partitionOfSlot(slot, 64)]!;
  if (holders[0] === 'node-1') assert.equal(r, undefined);
  else assert.equal(text(r), `-MOVED ${slot} 127.0.0.1:${7000 + Number(holders[0]!.slice(5)) - 1}\r\n`);
  // a plain connection under auto: no CROSSSLOT either (the keys are forwarded one by one)
  view.mode = 'auto';
  assert.equal(redirect(session(), ['a', 'b'], view, 'read'), undefined);
});

test('redirect: reads are served at a backup (READONLY or not), writes go to the owner', () => {
  const view = fakeView({ self: 'node-3', table: table3 });
  const key = keyHeldBy(table3, ['node-2', 'node-3']);
  for (const readonly of [true, false]) {
    const s = session({ aware: true, readonly });
    assert.equal(redirect(s, key, view, 'read'), undefined);
    assert.match(text(redirect(s, key, view, 'write'))!, /^-MOVED \d+ 127\.0\.0\.1:7001\r\n$/);
    // at a node that holds no copy: MOVED to the owner
    const elsewhere = keyHeldBy(table3, ['node-2', 'node-1']);
    assert.match(text(redirect(s, elsewhere, view, 'read'))!, /:7001\r\n$/);
  }
});

test('redirect: an owner that is down passes its slots to the first backup that is up', () => {
  const view = fakeView({ self: 'node-1', table: table3, health: { 'node-2': 'fail' } });
  const key = keyHeldBy(table3, ['node-2', 'node-3']);
  assert.match(text(redirect(session(), key, view, 'write'))!, /:7002\r\n$/);
  view.health['node-2'] = 'pfail';
  assert.match(text(redirect(session(), key, view, 'write'))!, /:7002\r\n$/);
  // every holder down: any node that is up serves it (it forwards), here this one
  view.health['node-3'] = 'fail';
  assert.equal(redirect(session(), key, view, 'write'), undefined);
});

test('redirect: never to a node that may be on an older table, nor to one without a RESP listener', () => {
  const key = keyHeldBy(table3, ['node-2', 'node-3']);
  assert.equal(redirect(session(), key, fakeView({ self: 'node-1', table: table3, behind: ['node-2'] }), 'read'), undefined);
  // node-2 has no RESP listener: its slots are served by node-3
  const view = fakeView({ self: 'node-1', table: table3, resp: ['node-1', 'node-3'] });
  assert.match(text(redirect(session(), key, view, 'read'))!, /127\.0\.0\.1:7001\r\n$/);
});

test('redirect: a table without members answers CLUSTERDOWN', () => {
  const empty = createTable([], { partitionCount: 64, clock: { now: () => 0 } });
  assert.equal(text(redirect(session(), 'k', fakeView({ self: 'node-1', table: empty, resp: ['node-1'] }), 'read')), '-CLUSTERDOWN Hash slot not served\r\n');
});

test('the slot map covers every slot once, ascending, each range served by its partition holders', () => {
  for (const [n, rf, parts] of [[1, 1, 1], [3, 2, 64], [5, 3, 4096], [2, 2, 16384]] as const) {
    const t = createTable(members(n), { partitionCount: parts, replicationFactor: rf, clock: { now: () => 0 } });
    const ranges = slotRanges(fakeView({ self: 'node-1', table: t }));
    let next = 0;
    for (const r of ranges) {
      assert.equal(r.first, next);
      assert.ok(r.last >= r.first);
      for (const s of [r.first, r.last]) assert.deepEqual(r.served.map((x) => x.id), t.assignments[partitionOfSlot(s, parts)]);
      next = r.last + 1;
    }
    assert.equal(next, SLOT_COUNT);
    // adjacent ranges differ in their nodes (else they would be one)
    for (let i = 1; i < ranges.length; i++) assert.notDeepEqual(ranges[i]!.served.map((x) => x.id), ranges[i - 1]!.served.map((x) => x.id));
  }
});

test('CLUSTER SLOTS has Redis 7 shape: [first, last, [ip, port, id, {}], replicas...]', () => {
  const t = createTable(members(2), { partitionCount: 1, replicationFactor: 2, clock: { now: () => 0 } });
  const s = session();
  const reply = run(fakeView({ self: 'node-1', table: t }), s, 'CLUSTER', 'SLOTS');
  const [owner, backup] = t.assignments[0]!;
  const port = (id: string) => 7000 + Number(id.slice(5)) - 1;
  const entry = (id: string) => `*4\r\n$9\r\n127.0.0.1\r\n:${port(id)}\r\n$40\r\n${clusterNodeId(id)}\r\n`;
  assert.equal(encode(reply).toString(), `*1\r\n*4\r\n:0\r\n:16383\r\n${entry(owner!)}*0\r\n${entry(backup!)}*0\r\n`);
  // RESP3: the metadata is an empty map, as Redis sends it
  assert.equal(encodeAs(3, reply).toString(), `*1\r\n*4\r\n:0\r\n:16383\r\n${entry(owner!)}%0\r\n${entry(backup!)}%0\r\n`);
  assert.deepEqual(s.cluster, { aware: true, readonly: false });
});

test('CLUSTER SHARDS groups the ranges of each set of nodes, master first', () => {
  const t = createTable(members(2), { partitionCount: 1, replicationFactor: 2, clock: { now: () => 0 } });
  const reply = run(fakeView({ self: 'node-1', table: t }), session(), 'CLUSTER', 'SHARDS');
  const [owner, backup] = t.assignments[0]!;
  const node = (id: string, role: string) => {
    const port = 7000 + Number(id.slice(5)) - 1;
    return `%7\r\n$2\r\nid\r\n$40\r\n${clusterNodeId(id)}\r\n$4\r\nport\r\n:${port}\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$${role.length}\r\n${role}\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n`;
  };
  assert.equal(encodeAs(3, reply).toString(), `*1\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n${node(owner!, 'master')}${node(backup!, 'replica')}`);
  const t3 = createTable(members(3), { partitionCount: 4096, replicationFactor: 2, clock: { now: () => 0 } });
  const shards = run(fakeView({ self: 'node-1', table: t3 }), session(), 'CLUSTER', 'SHARDS');
  assert.equal(shards.type, 'array');
  // 3 nodes, 2 copies: every ordered pair of distinct nodes is a shard
  assert.equal(shards.type === 'array' ? shards.items!.length : 0, 6);
});

test('CLUSTER NODES: one line per node in Redis 7.0 format, every slot listed once', () => {
  const t = createTable(members(3), { partitionCount: 4096, replicationFactor: 2, clock: { now: () => 0 } });
  const view = fakeView({ self: 'node-2', table: { ...t, version: 7 }, health: { 'node-3': 'pfail' } });
  const lines = nodesText(view).split('\n');
  assert.equal(lines.pop(), '', 'every line ends in \\n');
  assert.equal(lines.length, 3);
  const covered = new Array<number>(SLOT_COUNT).fill(0);
  for (const [i, line] of lines.entries()) {
    const id = `node-${i + 1}`;
    const [hex, addr, flags, master, ping, pong, epoch, link, ...slots] = line.split(' ');
    assert.equal(hex, clusterNodeId(id));
    assert.equal(addr, `127.0.0.1:${7000 + i}@${8000 + i}`);
    assert.equal(flags, id === 'node-2' ? 'myself,master' : id === 'node-3' ? 'master,fail?' : 'master');
    assert.deepEqual([master, ping, pong, epoch, link], ['-', '0', String(1000 + i), '7', 'connected']);
    for (const s of slots) {
      const [a, b] = s.split('-').map(Number);
      for (let x = a!; x <= (b ?? a!); x++) covered[x]!++;
    }
  }
  assert.ok(covered.every((c) => c === 1));
  view.health['node-3'] = 'fail';
  const down = nodesText(view).split('\n')[2]!.split(' ');
  assert.deepEqual([down[2], down[7], down.length], ['master,fail', 'disconnected', 8], 'a node that is down serves no slots');
});

test('CLUSTER INFO: Redis 7.0 fields; ok while every slot has a node that is up', () => {
  const view = fakeView({ self: 'node-1', table: { ...table3, version: 4 } });
  const info = infoText(view);
  assert.ok(info.endsWith('\r\n'));
  const fields = Object.fromEntries(info.trim().split('\r\n').map((l) => l.split(':')));
  assert.deepEqual(fields, {
    cluster_state: 'ok',
    cluster_slots_assigned: '16384',
    cluster_slots_ok: '16384',
    cluster_slots_pfail: '0',
    cluster_slots_fail: '0',
    cluster_known_nodes: '3',
    cluster_size: '3',
    cluster_current_epoch: '4',
    cluster_my_epoch: '4',
    cluster_stats_messages_sent: '0',
    cluster_stats_messages_received: '0',
    total_cluster_links_buffer_limit_exceeded: '0',
  });
  const reply = run(view, session(), 'cluster', 'info');
  assert.equal(encodeAs(3, reply).toString(), `=${Buffer.byteLength(info) + 4}\r\ntxt:${info}\r\n`);
  // RESP2: a bulk string
  assert.equal(encode(reply).toString(), `$${Buffer.byteLength(info)}\r\n${info}\r\n`);
  const empty = createTable([], { partitionCount: 64, clock: { now: () => 0 } });
  assert.match(infoText(fakeView({ self: 'node-1', table: empty, resp: ['node-1'] })), /^cluster_state:fail\r\ncluster_slots_assigned:0\r\n/);
});

test('CLUSTER MYID, KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT and their errors in Redis words', () => {
  const keys = ['{u}a', '{u}b', '{u}c', 'other'];
  const view = fakeView({ self: 'node-1', table: table3, keys });
  const s = session();
  const r = (...args: string[]) => text(run(view, s, ...args));
  const u = slotOf('u');
  assert.equal(r('CLUSTER', 'MYID'), `$40\r\n${clusterNodeId('node-1')}\r\n`);
  assert.equal(r('CLUSTER', 'KEYSLOT', 'foo'), ':12182\r\n');
  assert.equal(r('cluster', 'keyslot', '{user1000}.following'), ':3443\r\n');
  assert.equal(r('CLUSTER', 'COUNTKEYSINSLOT', String(u)), ':3\r\n');
  assert.equal(r('CLUSTER', 'GETKEYSINSLOT', String(u), '2'), '*2\r\n$4\r\n{u}a\r\n$4\r\n{u}b\r\n');
  assert.equal(r('CLUSTER', 'GETKEYSINSLOT', String(u), '0'), '*0\r\n');
  // what redis-server 7.0 answers to the same mistakes
  assert.equal(r('CLUSTER', 'COUNTKEYSINSLOT', 'abc'), '-ERR value is not an integer or out of range\r\n');
  assert.equal(r('CLUSTER', 'COUNTKEYSINSLOT', '01'), '-ERR value is not an integer or out of range\r\n');
  assert.equal(r('CLUSTER', 'COUNTKEYSINSLOT', '-1'), '-ERR Invalid slot\r\n');
  assert.equal(r('CLUSTER', 'COUNTKEYSINSLOT', '16384'), '-ERR Invalid slot\r\n');
  assert.equal(r('CLUSTER', 'GETKEYSINSLOT', '1', 'abc'), '-ERR value is not an integer or out of range\r\n');
  assert.equal(r('CLUSTER', 'GETKEYSINSLOT', '16384', '1'), '-ERR Invalid slot or number of keys\r\n');
  assert.equal(r('CLUSTER', 'GETKEYSINSLOT', '1', '-1'), '-ERR Invalid slot or number of keys\r\n');
  assert.equal(r('CLUSTER', 'GETKEYSINSLOT', '1'), "-ERR wrong number of arguments for 'cluster|getkeysinslot' command\r\n");
  assert.equal(r('CLUSTER', 'SLOTS', 'x'), "-ERR wrong number of arguments for 'cluster|slots' command\r\n");
  assert.equal(r('CLUSTER', 'KEYSLOT'), "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n");
  assert.equal(r('CLUSTER', 'Foo'), "-ERR unknown subcommand 'Foo'. Try CLUSTER HELP.\r\n");
  assert.equal(r('CLUSTER', 'ADDSLOTS', '1'), "-ERR unknown subcommand 'ADDSLOTS'. Try CLUSTER HELP.\r\n");
  assert.match(r('CLUSTER', 'HELP')!, /^\*\d+\r\n\+CLUSTER <subcommand>/);
  // reading keys needs the read permission
  const writer = session();
  writer.user = { name: 'w', can: (p) => p === 'write' };
  assert.equal(text(run(view, writer, 'CLUSTER', 'GETKEYSINSLOT', '1', '1')), "-NOPERM this user has no permissions to run the 'cluster|getkeysinslot' command\r\n");
});

test('READONLY, READWRITE and ASKING set the connection state; without a view cluster support is disabled', () => {
  const view = fakeView({ self: 'node-1', table: table3 });
  const s = session();
  assert.equal(text(run(view, s, 'READWRITE')), '+OK\r\n');
  assert.deepEqual(s.cluster, { aware: false, readonly: false }, 'READWRITE alone does not make a connection cluster-aware');
  assert.equal(text(run(view, s, 'READONLY')), '+OK\r\n');
  assert.deepEqual(s.cluster, { aware: true, readonly: true });
  assert.equal(text(run(view, s, 'READWRITE')), '+OK\r\n');
  assert.deepEqual(s.cluster, { aware: true, readonly: false });
  const a = session();
  assert.equal(text(run(view, a, 'ASKING')), '+OK\r\n');
  assert.deepEqual(a.cluster, { aware: true, readonly: false });
  const n = session();
  run(view, n, 'CLUSTER', 'NODES');
  assert.equal(n.cluster?.aware, true);
  const i = session();
  run(view, i, 'CLUSTER', 'INFO');
  assert.equal(i.cluster, undefined, 'CLUSTER INFO does not make a connection cluster-aware');
  for (const cmd of [['READONLY'], ['ASKING'], ['CLUSTER', 'SLOTS'], ['CLUSTER', 'KEYSLOT', 'a']]) {
    assert.equal(text(run(undefined, session(), ...cmd)), '-ERR This instance has cluster support disabled\r\n');
  }
});

test('property: MOVED always names the slot map master, and following MOVED from any node ends at a node that serves it', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 3 }),
      fc.array(fc.array(fc.constantFrom<NodeHealth>('online', 'pfail', 'fail'), { minLength: 6, maxLength: 6 }), { minLength: 6, maxLength: 6 }),
      fc.string({ maxLength: 12 }),
      (n, rf, verdicts, key) => {
        const t = createTable(members(n), { partitionCount: 256, replicationFactor: rf, clock: { now: () => 0 } });
        const ids = t.members.map((m) => m.id);
        // every node has its own verdicts on the others (they disagree, as failure detectors do)
        const views = new Map(ids.map((id, i) => [id, fakeView({ self: id, table: t, health: Object.fromEntries(ids.map((p, j) => [p, verdicts[i]![j]!])) })]));
        const slot = slotOf(key);
        for (const start of ids) {
          let at = start;
          const seen = new Set<string>();
          for (;;) {
            assert.ok(!seen.has(at), `redirect loop from ${start}: ${[...seen].join(' -> ')} -> ${at}`);
            seen.add(at);
            const view = views.get(at)!;
            const r = redirect(session(), key, view, 'write');
            if (r === undefined) break;
            const m = /^-MOVED (\d+) 127\.0\.0\.1:(\d+)\r\n$/.exec(text(r)!);
            assert.ok(m, text(r));
            assert.equal(Number(m[1]), slot);
            const target = ids[Number(m[2]) - 7000]!;
            // the node named is the one this node's CLUSTER SLOTS gives as the slot's master
            const range = slotRanges(view).find((x) => x.first <= slot && slot <= x.last)!;
            assert.equal(range.served[0]!.id, target);
            assert.equal(masterOfSlot(view, slot), target);
            at = target;
          }
        }
      },
    ),
    { numRuns: 200 },
  );
});
