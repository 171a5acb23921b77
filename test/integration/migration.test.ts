/**
 * Data migration on real processes and real etcd (issue 5): a join under load with 100k keys is
 * a warm handoff (nothing loaded from the origin again, the new node holds its share, writes
 * racing the move keep the newest value), and a graceful leave drains with nothing lost.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type TestCluster, type TestNode } from '../helpers/cluster.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { clusterOf, waitFor } from '../helpers/wait.ts';
import { pool, request, startOrigin, valueOf } from './migration-helpers.ts';

const KEYS = Number(process.env.MIGRATION_TEST_KEYS ?? 100_000);
/** Keys rewritten while the node joins: each writer owns a disjoint slice, so the newest value is known. */
const HOT = 2000;
const WRITERS = 8;

interface MigrationView {
  id: string;
  kind: string;
  state: string;
  partitions: { total: number; done: number };
  entries: { done: number; total: number };
  members: string[];
}

async function migrations(url: string): Promise<MigrationView[]> {
  const res = await request('GET', `${url}/cluster/migrations`);
  return (JSON.parse(res.body) as { migrations: MigrationView[] }).migrations;
}

/** Every live node applies one table with exactly these owners, and no migration is open. */
async function settled(nodes: TestNode[], expected: string[]): Promise<boolean> {
  const infos = await Promise.all(nodes.map((n) => clusterOf(n.url)));
  const versions = new Set(infos.map((i) => i.ringVersion));
  if (versions.size !== 1) return false;
  const owners = new Set<string>(infos[0].partitions.owners);
  if (owners.size !== expected.length || !expected.every((id) => owners.has(id))) return false;
  return infos.every((i) => (i.migrations as MigrationView[]).length === 0);
}

describe('data migration', { timeout: 240_000 }, () => {
  let etcd: EtcdCluster;
  let cluster: TestCluster;
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  /** Expected value of every key. */
  const expected = new Map<number, string>();
  const live = (): TestNode[] => cluster.nodes.filter((n) => !n.exited());

  before(async () => {
    etcd = await startEtcd();
    origin = await startOrigin();
    cluster = await startCluster({
      nodes: 3,
      staticPeers: false,
      args: ['--etcd', etcd.endpoints.join(',')],
      config: {
        log: { level: 'info' },
        etcd: { lease_ttl: '2s' },
        groups: [{ name: 'users', loader: { url: origin.url } }],
        migration: { batch_size: 500, concurrency: 4, drain_timeout: '60s' },
      },
    });
    await waitFor('3 nodes settled', () => settled(cluster.nodes, ['node-1', 'node-2', 'node-3']), 30_000, 200);
    const nodes = cluster.nodes;
    const t0 = Date.now();
    await pool(KEYS, 64, async (i) => {
      const v = valueOf(i);
      const res = await request('PUT', `${nodes[i % 3]!.url}/api/users/k${i}`, v);
      assert.equal(res.status, 204, res.body);
      expected.set(i, v);
    });
    console.log(`loaded ${KEYS} keys in ${Date.now() - t0} ms`);
  });

  after(async () => {
    await cluster?.stop();
    await etcd?.stop();
    await origin?.stop();
  });

  /** Read every key through rotating nodes: the newest value, never loaded from the origin. */
  async function verifyAll(nodes: TestNode[]): Promise<void> {
    const wrong: string[] = [];
    let loads = 0;
    await pool(KEYS, 64, async (i) => {
      const res = await request('GET', `${nodes[i % nodes.length]!.url}/api/users/k${i}`);
      if (res.headers['x-cache'] === 'load') loads++;
      if (res.status !== 200 || res.body !== expected.get(i)) if (wrong.length < 10) wrong.push(`k${i}: ${res.status} ${res.body.slice(0, 40)}`);
    });
    assert.deepEqual(wrong, [], 'every key reads back its newest value');
    assert.equal(loads, 0, 'no read answered from the loader');
    assert.equal(origin.loads(), 0, 'the origin was never asked');
  }

  test('join under load: warm handoff of 100k keys, nothing reloaded, writes racing the move keep the newest value', async () => {
    const nodes = live();
    let stop = false;
    let writes = 0;
    let reads = 0;
    let errors = 0;
    // bounded load: WRITERS writers over disjoint slices of the hot keys, plus readers, for at most 60 s
    const deadline = Date.now() + 60_000;
    const gen = new Map<number, number>();
    const load = Promise.all([
      ...Array.from({ length: WRITERS }, async (_, w) => {
        for (let n = 0; !stop && Date.now() < deadline; n++) {
          const i = w + WRITERS * (n % (HOT / WRITERS));
          const g = (gen.get(i) ?? 0) + 1;
          const v = valueOf(i, g);
          try {
            const res = await request('PUT', `${nodes[n % 3]!.url}/api/users/k${i}`, v);
            if (res.status === 204) {
              gen.set(i, g);
              expected.set(i, v);
              writes++;
            } else errors++;
          } catch {
            errors++;
          }
        }
      }),
      ...Array.from({ length: 4 }, async (_, r) => {
        for (let n = 0; !stop && Date.now() < deadline; n++) {
          const i = (r * 7919 + n * 104729) % KEYS;
          try {
            const res = await request('GET', `${nodes[n % 3]!.url}/api/users/k${i}`);
            if (res.status === 200) reads++;
            else errors++;
          } catch {
            errors++;
          }
        }
      }),
    ]);
    const t0 = Date.now();
    const node4 = await cluster.addNode('node-4', ['--etcd', etcd.endpoints.join(',')]);
    const all = [...nodes, node4];
    const { ms } = await waitFor('node-4 owns partitions and the migration committed', () => settled(all, ['node-1', 'node-2', 'node-3', 'node-4']), 90_000, 200);
    stop = true;
    await load;
    console.log(`join settled ${ms} ms after node-4 started (${Date.now() - t0} ms); load: ${writes} writes, ${reads} reads, ${errors} errors`);
    assert.equal(errors, 0, 'no request failed during the move');
    assert.ok(writes > 100, `writes ran during the move (${writes})`);

    const list = await migrations(node4.url);
    const join = list.find((m) => m.kind === 'prepare' && m.members.includes('node-4') && m.state === 'done');
    assert.ok(join, `a prepare migration for node-4 is listed: ${JSON.stringify(list.map((m) => [m.id, m.kind, m.state]))}`);
    assert.equal(join.state, "done", JSON.stringify(list.map((m) => [m.id, m.kind, m.state, (m as any).reason, m.members])));
    assert.equal(join.partitions.done, join.partitions.total);
    assert.ok(join.entries.done > KEYS * 0.3, `entries moved: ${join.entries.done}`);

    await verifyAll(all);
    // node-4 holds about its share: 2 copies of every key over 4 nodes
    const info = await clusterOf(node4.url);
    const mine = (info.nodes as { id: string; entries?: number }[]).find((n) => n.id === 'node-4')!.entries!;
    const share = (KEYS * 2) / 4;
    assert.ok(mine > share * 0.7 && mine < share * 1.3, `node-4 holds ${mine} entries, its share is ~${share}`);
  });

  test('graceful leave (SIGTERM) drains its partitions first: nothing lost, nothing reloaded', async () => {
    const leaver = cluster.nodes.find((n) => n.id === 'node-2')!;
    const t0 = Date.now();
    await leaver.stop('SIGTERM');
    const stoppedMs = Date.now() - t0;
    assert.match(leaver.log(), /drained: no partitions left here/);
    const rest = live();
    await waitFor('3 nodes settled without node-2', () => settled(rest, ['node-1', 'node-3', 'node-4']), 30_000, 200);
    console.log(`node-2 drained and exited in ${stoppedMs} ms`);
    await verifyAll(rest);
  });
});
