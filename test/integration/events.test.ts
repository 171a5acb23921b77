/**
 * Typed cluster events for library users (issue 15, item 8): a node embedded with `createNode`
 * in this process joins a 3-node etcd cluster of real processes (in zones a, b, c) and records
 * what `node.on(kind, handler)` delivers while the cluster changes:
 *   - a 4th node joins: `join`, the migration's `migration` events (running, done, with its id),
 *     `table` (cause join) on the library node as on every node;
 *   - it leaves gracefully (SIGTERM): `leave` (graceful), `table` (cause leave);
 *   - node-2 is paused (SIGSTOP) for a few seconds: `suspect`, then `recover` after SIGCONT;
 *   - node-3 is killed (SIGKILL): `suspect`, `leave` (not graceful) once its lease ran out, and
 *     `table` (cause crash).
 * Each event arrives once, and a disposed handler gets nothing more. Once stopped, the library
 * node leaves nothing behind that would keep this process alive (the test file must exit).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createNode, type ClusterEventKind, type ClusterEventMap, type EmbeddedNode } from '../../src/index.ts';
import { startCluster, type TestCluster, type TestNode } from '../helpers/cluster.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { clusterOf, waitFor } from '../helpers/wait.ts';

const LEASE_TTL_S = 2;
const FAULT = { heartbeat_interval: '250ms', request_timeout: '1s' };

type Seen = { [K in ClusterEventKind]: { kind: K; at: number; data: ClusterEventMap[K] } }[ClusterEventKind];

describe('cluster events reach a library node', () => {
  let etcd: EtcdCluster;
  let cluster: TestCluster;
  let lib: EmbeddedNode;
  const seen: Seen[] = [];
  const offs: (() => void)[] = [];
  const kinds: ClusterEventKind[] = ['join', 'leave', 'suspect', 'recover', 'table', 'migration', 'rebalance'];
  const of = <K extends ClusterEventKind>(kind: K, since = 0): ClusterEventMap[K][] =>
    seen.filter((e) => e.kind === kind && e.at >= since).map((e) => e.data as ClusterEventMap[K]);

  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster({
      nodes: 3,
      staticPeers: false,
      zones: ['a', 'b', 'c'],
      args: ['--etcd', etcd.endpoints.join(',')],
      config: { etcd: { lease_ttl: `${LEASE_TTL_S}s` }, fault_tolerance: FAULT },
    });
    await waitFor('3 nodes in one table', async () => {
      const infos = await Promise.all(cluster.nodes.map((n) => clusterOf(n.url)));
      return infos.every((i) => i.nodes.length === 3 && i.migrations.length === 0 && i.ringVersion === infos[0].ringVersion);
    }, 20_000, 100);
    lib = await createNode({
      id: 'lib',
      config: { etcd: { enabled: true, endpoints: etcd.endpoints, lease_ttl: `${LEASE_TTL_S}s` }, node: { zone: 'c' }, fault_tolerance: FAULT, log: { level: 'error' } },
    });
    for (const kind of kinds) offs.push(lib.on(kind, (data) => seen.push({ kind, at: Date.now(), data } as Seen)));
    // the library node's own join moves partitions to it: wait until that has settled
    await waitFor('the library node holds partitions', async () => {
      const info = await clusterOf(lib.url);
      return info.migrations.length === 0 && info.nodes.find((n: { id: string }) => n.id === 'lib')?.partitionsOwned > 0;
    }, 30_000, 100);
  });

  after(async () => {
    for (const off of offs) off();
    // the library node must let this process exit once stopped (no etcd watch left retrying)
    await lib?.stop();
    await cluster?.stop();
    await etcd?.stop();
  });

  test('the library node is a member in its zone (etcd carries the zones into the table)', async () => {
    const info = await clusterOf(lib.url);
    assert.equal(info.nodes.find((n: { id: string }) => n.id === 'lib')?.zone, 'c');
    assert.deepEqual(info.nodes.map((n: { zone: string }) => n.zone).sort(), ['a', 'b', 'c', 'c']);
    const t = await (await fetch(`${lib.url}/cluster/table`)).json() as { members: [string, number, string?][] };
    assert.deepEqual(t.members.map((m) => m[2]).sort(), ['a', 'b', 'c', 'c']);
  });

  test('a join: join, migration (running then done, one id), table with cause join', async () => {
    const since = Date.now();
    const node4 = await cluster.addNode('node-4', ['--etcd', etcd.endpoints.join(','), '--zone', 'a']);
    await waitFor('node-4 in force on the library node', () => of('table', since).some((t) => t.joined.includes('node-4')), 30_000, 50);
    const joins = of('join', since);
    assert.deepEqual(joins, [{ node: 'node-4', address: node4.url, zone: 'a' }], 'one join event');
    const migrations = of('migration', since);
    const ids = new Set(migrations.map((m) => m.id));
    assert.equal(ids.size, 1, `one migration: ${JSON.stringify(migrations)}`);
    const states = migrations.map((m) => m.state);
    assert.deepEqual(states, ['running', 'done'], JSON.stringify(migrations));
    assert.ok(migrations.every((m) => m.change === 'join' && m.kind === 'prepare' && typeof m.id === 'string' && m.id.length > 0));
    const table = of('table', since).find((t) => t.joined.includes('node-4'))!;
    assert.equal(table.cause, 'join');
    assert.equal(table.version, migrations[0]!.toVersion);
    assert.equal(table.previous, migrations[0]!.fromVersion);
  });

  test('a graceful leave: leave (graceful) and table with cause leave', async () => {
    const since = Date.now();
    const node4 = cluster.nodes.find((n) => n.id === 'node-4')!;
    await node4.stop('SIGTERM');
    await waitFor('node-4 gone from the library node', () => of('leave', since).length > 0, 20_000, 50);
    assert.deepEqual(of('leave', since), [{ node: 'node-4', graceful: true }]);
    const t = of('table', since).find((x) => x.left.includes('node-4'));
    assert.ok(t, JSON.stringify(of('table', since)));
    assert.equal(t.cause, 'leave');
    assert.ok(of('migration', since).some((m) => m.change === 'leave' && m.state === 'done'));
  });

  test('SIGSTOP of node-2: suspect, then recover after SIGCONT', async () => {
    const node2 = cluster.nodes.find((n) => n.id === 'node-2')! as TestNode;
    const since = Date.now();
    node2.pause();
    try {
      await waitFor('suspect node-2', () => of('suspect', since).some((e) => e.node === 'node-2'), 10_000, 50);
    } finally {
      node2.resume();
    }
    await waitFor('recover node-2', () => of('recover', since).some((e) => e.node === 'node-2'), 15_000, 50);
    const s = of('suspect', since).filter((e) => e.node === 'node-2');
    const r = of('recover', since).filter((e) => e.node === 'node-2');
    assert.ok(['suspected', 'down'].includes(s[0]!.health), JSON.stringify(s));
    assert.ok(['healthy', 'slow'].includes(r[0]!.health), JSON.stringify(r));
    // paused for well under the lease (it kept its registration): no leave, no join
    await sleep(500);
    assert.equal(of('leave', since).length, 0);
    assert.equal(of('join', since).length, 0);
  });

  test('kill -9 of node-3: suspect, leave (not graceful) when its lease ran out, table with cause crash', async () => {
    const node3 = cluster.nodes.find((n) => n.id === 'node-3')!;
    const since = Date.now();
    await node3.stop('SIGKILL');
    await waitFor('node-3 removed from the table', () => of('table', since).some((t) => t.left.includes('node-3')), 30_000, 50);
    assert.ok(of('suspect', since).some((e) => e.node === 'node-3'));
    assert.deepEqual(of('leave', since), [{ node: 'node-3', graceful: false }]);
    assert.equal(of('table', since).find((t) => t.left.includes('node-3'))!.cause, 'crash');
  });

  test('a disposed handler gets nothing more', async () => {
    let calls = 0;
    const off = lib.on('table', () => calls++);
    off();
    for (const o of offs) o();
    offs.length = 0;
    const before = seen.length;
    // a table change: a node joins again
    const since = Date.now();
    await cluster.addNode('node-5', ['--etcd', etcd.endpoints.join(',')]);
    await waitFor('node-5 in force on the library node', async () => (await clusterOf(lib.url)).nodes.some((n: { id: string }) => n.id === 'node-5') && (await clusterOf(lib.url)).migrations.length === 0, 30_000, 100);
    assert.ok((await clusterOf(lib.url)).ringVersion > 0);
    assert.equal(calls, 0);
    assert.equal(seen.length, before, `no event after the disposers ran (since ${since})`);
  });
});
