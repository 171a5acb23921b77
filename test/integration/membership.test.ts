/**
 * Dynamic membership through real etcd (issue 3): joins, graceful and crash leaves, etcd outage,
 * live config overrides and leader failover, with real node processes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { runCli, startCluster, type TestCluster, type TestNode } from '../helpers/cluster.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { clusterOf, waitFor } from '../helpers/wait.ts';
import { Record } from '../../src/peer/messages.ts';
import { callPeer } from '../helpers/peer.ts';

const LEASE_TTL_S = 2;

async function ids(node: TestNode): Promise<string[]> {
  return ((await clusterOf(node.url)).nodes as { id: string }[]).map((n) => n.id).sort();
}

/** Every running node reports exactly `expected` members and the same table version. */
async function converged(nodes: TestNode[], expected: string[]): Promise<number | null> {
  const infos = await Promise.all(nodes.map((n) => clusterOf(n.url)));
  const versions = new Set(infos.map((i) => i.ringVersion));
  const ok = infos.every((i) => JSON.stringify(i.nodes.map((n: { id: string }) => n.id).sort()) === JSON.stringify([...expected].sort()))
    && versions.size === 1
    && infos.every((i) => new Set(i.partitions.owners).size === expected.length);
  return ok ? (infos[0].ringVersion as number) : null;
}

describe('membership through etcd', () => {
  let etcd: EtcdCluster;
  let cluster: TestCluster;
  const live = (): TestNode[] => cluster.nodes.filter((n) => !n.exited());

  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster({
      nodes: 3,
      staticPeers: false,
      args: ['--etcd', etcd.endpoints.join(',')],
      config: { etcd: { lease_ttl: `${LEASE_TTL_S}s` }, fault_tolerance: { request_timeout: '2s' } },
    });
    await waitFor('3 nodes converged', () => converged(cluster.nodes, ['node-1', 'node-2', 'node-3']), 15_000);
  });

  after(async () => {
    await cluster?.stop();
    await etcd?.stop();
  });

  test('a joining node is routed to by every node within a second of its registration', async () => {
    const before = (await clusterOf(cluster.nodes[0]!.url)).ringVersion as number;
    // when the leader writes the new table to etcd, every node must apply it within a second
    const { createEtcdClient } = await import('../../src/discovery/etcd-client.ts');
    const client = createEtcdClient({ endpoints: etcd.endpoints });
    const watcher = await client.watch().key('/jincache/ring').create();
    let ringWrittenAt = 0;
    watcher.on('put', () => {
      ringWrittenAt ||= Date.now();
    });
    watcher.on('error', () => {});
    const joined = await cluster.addNode('node-4', ['--etcd', etcd.endpoints.join(',')]);
    const { value: version } = await waitFor('node-4 in every table', () => converged(live(), ['node-1', 'node-2', 'node-3', 'node-4']), 10_000, 20);
    const appliedAt = Date.now();
    await watcher.cancel();
    client.close();
    assert.ok(version > before, `table version moved on (${before} -> ${version})`);
    assert.ok(ringWrittenAt > 0, 'the leader wrote the table to /jincache/ring');
    assert.ok(appliedAt - ringWrittenAt < 1000, `applied everywhere ${appliedAt - ringWrittenAt} ms after the etcd event`);
    // a key owned by node-4, written through node-1, is stored at node-4
    const owners: string[] = (await clusterOf(joined.url)).partitions.owners;
    let key = '';
    for (let i = 0; key === ''; i++) if (owners[partitionOf(`join:${i}`, 4096)] === 'node-4') key = `join:${i}`;
    assert.equal((await fetch(`${cluster.nodes[0]!.url}/api/scores/${key}`, { method: 'PUT', body: 'on-4' })).status, 204);
    const atOwner = await callPeer(Record, joined.url, { group: 'scores', key });
    assert.equal(atOwner.kind === 'record' ? atOwner.record.value?.toString() : atOwner.kind, 'on-4');
  });

  test('a node stopped gracefully is removed from every node within a second of leaving', async () => {
    const node4 = cluster.nodes.find((n) => n.id === 'node-4')!;
    const others = live().filter((n) => n !== node4);
    const t0 = Date.now();
    let exitedAt = 0;
    // SIGTERM first hands the node's partitions over (issue 5 drain), then revokes its lease
    const stopped = node4.stop('SIGTERM').then(() => {
      exitedAt = Date.now();
    });
    await waitFor('node-4 gone everywhere', async () => (await Promise.all(others.map(ids))).every((l) => !l.includes('node-4')), 10_000, 20);
    const removedAt = Date.now();
    await stopped;
    assert.ok(removedAt - exitedAt < 1000, `removed ${removedAt - exitedAt} ms after the node left`);
    assert.ok(removedAt - t0 < 5000, `removed ${removedAt - t0} ms after SIGTERM (drain included)`);
    assert.match(node4.log(), /drain/, 'the node drained before leaving');
    await waitFor('3 nodes converged', () => converged(live(), ['node-1', 'node-2', 'node-3']), 5000);
  });

  test('a live config override applies on every node; an invalid one is rejected and changes nothing', async () => {
    const maxBytes = async (n: TestNode): Promise<number> =>
      ((await clusterOf(n.url)).groups as { name: string; maxBytes: number }[]).find((g) => g.name === 'scores')!.maxBytes;
    const original = await maxBytes(cluster.nodes[0]!);
    const set = await runCli(['config', 'set', 'scores.cache_bytes', '8MiB', '--etcd', etcd.endpoints[0]!]);
    assert.equal(set.code, 0, set.stderr);
    await waitFor('override applied on every node', async () => (await Promise.all(live().map(maxBytes))).every((b) => b < original && b > 0), 5000);
    const applied = await maxBytes(cluster.nodes[0]!);
    assert.ok(applied <= 8 * 1024 * 1024, `store budget ${applied}`);
    // the CLI refuses an invalid value before writing anything
    const bad = await runCli(['config', 'set', 'scores.cache_bytes', 'lots', '--etcd', etcd.endpoints[0]!]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /cache_bytes.*lots.*nothing changed/);
    // an invalid document written straight to etcd is rejected by the nodes, which keep the last good one
    const get = await runCli(['config', 'get', 'scores', '--etcd', etcd.endpoints[0]!, '--json']);
    assert.deepEqual(JSON.parse(get.stdout), { cache_bytes: '8MiB' });
    const { createEtcdClient } = await import('../../src/discovery/etcd-client.ts');
    const client = createEtcdClient({ endpoints: etcd.endpoints });
    await client.put('/jincache/config/scores').value('{"cache_bytes": -5}');
    client.close();
    await waitFor('rejection logged', () => live().every((n) => n.log().includes('rejected invalid config override')), 5000);
    for (const n of live()) assert.equal(await maxBytes(n), applied);
  });

  test('etcd down for 10 s: every request still answered, every node re-registered after', async () => {
    const nodes = live();
    for (let i = 0; i < 30; i++) await fetch(`${nodes[i % 3]!.url}/api/scores/outage-${i}`, { method: 'PUT', body: `v${i}` });
    await etcd.members[0]!.stop('SIGKILL');
    let failures = 0;
    let requests = 0;
    const end = Date.now() + 10_000;
    try {
      while (Date.now() < end) {
        const i = requests % 30;
        const res = await fetch(`${nodes[requests % 3]!.url}/api/scores/outage-${i}`, { signal: AbortSignal.timeout(3000) }).catch(() => null);
        requests++;
        if (res === null || res.status !== 200 || (await res.text()) !== `v${i}`) failures++;
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await etcd.members[0]!.start();
    }
    assert.ok(requests > 100, `${requests} requests made`);
    assert.equal(failures, 0, `${failures} of ${requests} requests failed while etcd was down`);
    // leases expired meanwhile: every node must notice and register again
    const { createEtcdClient } = await import('../../src/discovery/etcd-client.ts');
    const client = createEtcdClient({ endpoints: etcd.endpoints });
    try {
      await waitFor('every node registered in etcd again', async () => {
        const keys = await client.getAll().prefix('/jincache/nodes/').keys();
        return ['node-1', 'node-2', 'node-3'].every((id) => keys.includes(`/jincache/nodes/${id}`));
      }, 20_000, 200);
    } finally {
      client.close();
    }
    await waitFor('3 nodes converged after the outage', () => converged(live(), ['node-1', 'node-2', 'node-3']), 10_000);
  });

  test('a node killed with -9 is removed after the lease TTL, and leadership fails over', async () => {
    const leader = (await clusterOf(cluster.nodes[0]!.url)).leader as string;
    assert.ok(['node-1', 'node-2', 'node-3'].includes(leader), `a leader is elected: ${leader}`);
    const victim = cluster.nodes.find((n) => n.id === leader)!;
    const t0 = Date.now();
    await victim.stop('SIGKILL');
    const rest = live();
    await waitFor('victim removed everywhere', async () => (await Promise.all(rest.map(ids))).every((l) => !l.includes(leader)), 10_000, 50);
    const removedMs = Date.now() - t0;
    assert.ok(removedMs >= LEASE_TTL_S * 1000 * 0.5, `not removed before the lease could expire (${removedMs} ms)`);
    assert.ok(removedMs < LEASE_TTL_S * 1000 * 3, `removed after ${removedMs} ms`);
    const { value: newLeader } = await waitFor('new leader', async () => {
      const l = (await clusterOf(rest[0]!.url)).leader;
      return l && l !== leader ? l : null;
    }, 10_000);
    assert.notEqual(newLeader, leader);
    const survivors = ['node-1', 'node-2', 'node-3'].filter((id) => id !== leader);
    await waitFor('survivors converged on a table without the victim', () => converged(rest, survivors), 10_000);
  });
});
