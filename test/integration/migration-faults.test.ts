/**
 * Migration control and faults on real processes and real etcd (issue 5): a slow (bandwidth
 * capped) join is cancelled mid-way and rolled back with every key readable; a source node killed
 * mid-migration leaves no key lost or stuck: the removal is committed, the plan is superseded and
 * a new one completes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, startCluster, type TestCluster, type TestNode } from '../helpers/cluster.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { clusterOf, waitFor } from '../helpers/wait.ts';
import { pool, request, startOrigin, valueOf } from './migration-helpers.ts';

const KEYS = 20_000;

interface MigrationView {
  id: string;
  kind: string;
  state: string;
  reason: string | null;
  partitions: { total: number; done: number };
  entries: { done: number; total: number };
  members: string[];
}

async function migrations(url: string): Promise<MigrationView[]> {
  return (JSON.parse((await request('GET', `${url}/cluster/migrations`)).body) as { migrations: MigrationView[] }).migrations;
}

async function settled(nodes: TestNode[], expected: string[]): Promise<boolean> {
  const infos = await Promise.all(nodes.map((n) => clusterOf(n.url)));
  if (new Set(infos.map((i) => i.ringVersion)).size !== 1) return false;
  const owners = new Set<string>(infos[0].partitions.owners);
  if (owners.size !== expected.length || !expected.every((id) => owners.has(id))) return false;
  return infos.every((i) => (i.migrations as unknown[]).length === 0 && i.partitions.underReplicated === 0);
}

describe('migration control and faults', { timeout: 180_000 }, () => {
  let etcd: EtcdCluster;
  let cluster: TestCluster;
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  const live = (): TestNode[] => cluster.nodes.filter((n) => !n.exited());

  before(async () => {
    etcd = await startEtcd();
    origin = await startOrigin();
    cluster = await startCluster({
      nodes: 3,
      staticPeers: false,
      args: ['--etcd', etcd.endpoints.join(',')],
      config: {
        etcd: { lease_ttl: '2s' },
        groups: [{ name: 'users', loader: { url: origin.url } }],
        // slow on purpose: ~64 KiB/s per sending node keeps a join running for several seconds
        migration: { batch_size: 50, concurrency: 1, bandwidth: '64KiB' },
      },
    });
    await waitFor('3 nodes settled', () => settled(cluster.nodes, ['node-1', 'node-2', 'node-3']), 30_000, 200);
    await pool(KEYS, 64, async (i) => {
      const res = await request('PUT', `${cluster.nodes[i % 3]!.url}/api/users/k${i}`, valueOf(i));
      assert.equal(res.status, 204);
    });
  });

  after(async () => {
    await cluster?.stop();
    await etcd?.stop();
    await origin?.stop();
  });

  async function verifyAll(nodes: TestNode[]): Promise<void> {
    const wrong: string[] = [];
    await pool(KEYS, 64, async (i) => {
      const res = await request('GET', `${nodes[i % nodes.length]!.url}/api/users/k${i}`);
      if ((res.status !== 200 || res.body !== valueOf(i) || res.headers['x-cache'] === 'load') && wrong.length < 10) wrong.push(`k${i}: ${res.status} ${res.headers['x-cache']} ${res.body.slice(0, 30)}`);
    });
    assert.deepEqual(wrong, [], 'every key readable with its value, none reloaded');
    assert.equal(origin.loads(), 0, 'the origin was never asked');
  }

  test('cancel mid-way, then rollback: the previous table stays, every key readable, partial copies dropped', async () => {
    const first = cluster.nodes[0]!;
    const versionBefore = (await clusterOf(first.url)).ringVersion as number;
    const node4 = await cluster.addNode('node-4', ['--etcd', etcd.endpoints.join(',')]);
    const { value: running } = await waitFor('a running join with progress', async () => {
      const m = (await migrations(first.url)).find((x) => x.state === 'running' && x.members.includes('node-4'));
      return m !== undefined && m.entries.done > 0 ? m : null;
    }, 20_000, 100);
    assert.ok(running.entries.done < running.entries.total, 'caught mid-way');

    const cancel = await runCli(['migrations', 'cancel', running.id, '--node', first.url]);
    assert.equal(cancel.code, 0, cancel.stderr);
    await waitFor('cancelled', async () => (await migrations(first.url)).find((m) => m.id === running.id)?.state === 'cancelled', 5000, 50);
    // work stops within one batch: node-4 receives nothing more
    const entriesOf = async (): Promise<number> => ((await clusterOf(node4.url)).nodes as { id: string; entries?: number }[]).find((n) => n.id === 'node-4')!.entries!;
    const atCancel = await entriesOf();
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok((await entriesOf()) - atCancel < 200, 'no more batches after the cancel');

    const rollback = await runCli(['migrations', 'rollback', running.id, '--etcd', etcd.endpoints[0]!]);
    assert.equal(rollback.code, 0, rollback.stderr);
    await waitFor('rolled back', async () => (await migrations(first.url)).find((m) => m.id === running.id)?.state === 'rolled_back', 5000, 50);
    const info = await clusterOf(first.url);
    assert.equal(info.ringVersion, versionBefore, 'the previous table is still in force');
    assert.ok(!(info.partitions.owners as string[]).includes('node-4'));
    // the planner does not retry the change an operator stopped
    await new Promise((r) => setTimeout(r, 1500));
    const after = await migrations(first.url);
    assert.equal(after.filter((m) => m.state === 'running').length, 0, JSON.stringify(after.map((m) => [m.id, m.kind, m.state, m.reason, m.members, (m as any).held, (m as any).createdAt])));
    await verifyAll(live());
    await waitFor('node-4 dropped its partial copies', async () => (await entriesOf()) === 0, 30_000, 500);

    const list = await runCli(['migrations', '--node', first.url, '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.ok((JSON.parse(list.stdout) as { migrations: MigrationView[] }).migrations.some((m) => m.id === running.id && m.state === 'rolled_back'));
  });

  test('a source node killed mid-migration: removal committed, plan superseded, no key lost or stuck', async () => {
    const first = cluster.nodes[0]!;
    const node5 = await cluster.addNode('node-5', ['--etcd', etcd.endpoints.join(',')]);
    const { value: running } = await waitFor('a running join with progress', async () => {
      const m = (await migrations(first.url)).find((x) => x.state === 'running' && x.members.includes('node-5'));
      return m !== undefined && m.entries.done > 0 ? m : null;
    }, 20_000, 100);
    const victim = cluster.nodes.find((n) => n.id === 'node-2')!;
    await victim.stop('SIGKILL');
    const rest = live();
    const expected = ['node-1', 'node-3', 'node-4', 'node-5'];
    const { ms } = await waitFor('settled without node-2', () => settled(rest, expected), 90_000, 250);
    console.log(`settled ${ms} ms after killing node-2`);
    const list = await migrations(first.url);
    const old = list.find((m) => m.id === running.id)!;
    assert.equal(old.state, 'superseded', `the interrupted plan was superseded (${old.reason})`);
    assert.ok(list.some((m) => m.kind === 'repair'), 'a repair re-replicated the dead node\'s partitions');
    assert.ok(list.some((m) => m.kind === 'prepare' && m.state === 'done' && m.members.includes('node-5') && !m.members.includes('node-2')), 'a new plan completed');
    await verifyAll(rest);
    void node5;
  });
});
