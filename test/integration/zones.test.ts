/**
 * Zones (issue 15, item 7; SPEC §5 `node.zone`): four real nodes in two zones, `a` and `b`, with
 * the zones given in every node's --peers (`id=URL?zone=z`), replication factor 2. Every
 * partition then has a copy in each zone, so killing both nodes of zone `a` with SIGKILL, under
 * a load of reads and writes, loses no acknowledged write: each one is read back through the
 * surviving nodes afterwards (the chaos harness's write tracking: an acknowledged write's value,
 * or a later one whose outcome is unknown). The zones show in GET /cluster and `jincache status`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTable, decodeTable, type PartitionTable } from '../../src/core/placement/table.ts';
import { acceptable, GROUP, LoadGenerator, type ChaosNode } from '../chaos/lib.ts';
import { runCli, startCluster, type TestCluster, type TestNode } from '../helpers/cluster.ts';
import { clusterOf, waitFor } from '../helpers/wait.ts';

const ZONES = ['a', 'a', 'b', 'b'];

async function tableOf(url: string): Promise<PartitionTable> {
  const res = await fetch(`${url}/cluster/table`, { signal: AbortSignal.timeout(3000) });
  assert.equal(res.status, 200);
  return decodeTable(await res.text());
}

describe('zones: losing a whole zone', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startCluster({
      nodes: 4,
      zones: ZONES,
      config: { replication: { factor: 2 }, fault_tolerance: { heartbeat_interval: '250ms', request_timeout: '1s' } },
    });
  });

  after(async () => {
    await cluster?.stop();
  });

  test('every partition has a copy in each zone; GET /cluster and jincache status show the zones', async () => {
    const t = await tableOf(cluster.nodes[0]!.url);
    const zone = new Map(t.members.map((m) => [m.id, m.zone]));
    assert.deepEqual(t.members.map((m) => m.zone), ZONES);
    let bothInA = 0;
    for (const holders of t.assignments) assert.deepEqual(holders.map((h) => zone.get(h)).sort(), ['a', 'b'], `holders ${holders.join(',')}`);
    // the same four nodes without zones would keep both copies of some partitions in zone a:
    // those are what this test would lose without zone-aware placement
    const plain = createTable(t.members.map((m) => ({ id: m.id, weight: m.weight })), { partitionCount: t.partitionCount, replicationFactor: 2 });
    for (const holders of plain.assignments) if (holders.every((h) => zone.get(h) === 'a')) bothInA++;
    assert.ok(bothInA > 0, 'a zone-less table would put both copies of some partitions in zone a');
    console.log(`# zone-less placement would keep both copies of ${bothInA} of ${t.partitionCount} partitions in zone a`);

    // every node derived the same table (the zones came with --peers)
    for (const n of cluster.nodes.slice(1)) assert.deepEqual((await tableOf(n.url)).assignments, t.assignments);
    const info = await clusterOf(cluster.nodes[2]!.url);
    assert.deepEqual(info.nodes.map((n: { id: string; zone: string }) => [n.id, n.zone]), cluster.nodes.map((n, i) => [n.id, ZONES[i]]));
    const status = await runCli(['status', '--node', cluster.nodes[2]!.url]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /· 2 zones\n/);
    assert.match(status.stdout, /NODE +ADDRESS +ZONE +STATUS/);
    for (const [i, n] of cluster.nodes.entries()) assert.match(status.stdout, new RegExp(`^${n.id}( \\*)? +\\S+ +${ZONES[i]} +active`, 'm'));
  });

  test('kill -9 of every node of zone a under load: no acknowledged write is lost', async () => {
    const [a1, a2] = cluster.nodes.filter((_, i) => ZONES[i] === 'a') as [TestNode, TestNode];
    const survivors = cluster.nodes.filter((_, i) => ZONES[i] === 'b');
    let targets: TestNode[] = [...cluster.nodes];
    let killedAt = Number.POSITIVE_INFINITY;
    const load = new LoadGenerator({
      workers: 4,
      keysPerWorker: 40,
      timeoutMs: 2000,
      thinkMs: 2,
      // the load generator only needs each node's id and url
      targets: () => targets as unknown as ChaosNode[],
    });
    load.start();
    try {
      await sleep(3000);
      // the clients stop using zone a just before it dies (what a client of a dead zone sees is
      // not the question here: whether what was acknowledged survives is)
      targets = survivors;
      killedAt = Date.now();
      await Promise.all([a1.stop('SIGKILL'), a2.stop('SIGKILL')]);
      await waitFor('zone a seen down by the survivors', async () => {
        const infos = await Promise.all(survivors.map((n) => clusterOf(n.url)));
        return infos.every((i) => i.nodes.filter((n: { zone: string; health: string }) => n.zone === 'a').every((n: { health: string }) => n.health === 'down' || n.health === 'suspected'));
      }, 10_000, 100);
      await sleep(3000); // more load with zone a gone
    } finally {
      await load.stop();
    }

    const acked = [...load.keys].filter(([, st]) => st.acked > 0);
    const writes = load.samples.filter((s) => s.op === 'put' && s.ok).length;
    assert.ok(acked.length >= 100, `enough keys written (${acked.length})`);
    const lost: string[] = [];
    let reads = 0;
    for (const node of survivors) {
      for (const [key, st] of acked) {
        const res = await fetch(`${node.url}/api/${GROUP}/${encodeURIComponent(key)}`, { signal: AbortSignal.timeout(3000) });
        const body = await res.text();
        reads++;
        if (res.status !== 200 || !acceptable(body, key, st)) lost.push(`${key} via ${node.id}: ${res.status} ${body.slice(0, 30)} (acknowledged seq ${st.acked})`);
      }
    }
    const afterKill = load.samples.filter((s) => s.op === 'put' && s.ok && s.at >= killedAt).length;
    console.log(`# ${writes} acknowledged writes (${afterKill} sent after the kill) on ${acked.length} keys; ${reads} reads back through zone b after zone a died: ${lost.length} lost`);
    assert.deepEqual(lost, [], `acknowledged writes lost with zone a:\n${lost.slice(0, 20).join('\n')}`);
    // the replication card's figure: every partition has its zone-a copy on a down node
    const info = await clusterOf(survivors[0]!.url);
    assert.equal(info.partitions.withDownHolder, info.partitionCount);
    assert.equal(info.partitions.unavailable, 0);
  });
});
