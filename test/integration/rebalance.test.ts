/**
 * Load monitoring and rebalancing on a real cluster (issue 6): a skewed workload makes one node
 * hot; the load reports show it; a dry run changes nothing; the plan, applied, brings every node
 * within the threshold of the mean.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { runCli, startCluster, type TestCluster } from '../helpers/cluster.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { clusterOf, waitFor } from '../helpers/wait.ts';

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function get(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
  });
}

/** Bounded load: `perSecond` GETs spread over `urls`, for `ms` milliseconds. */
async function drive(urls: string[], ms: number, perSecond: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const batch = Math.max(1, Math.round(perSecond / 20));
    // uniformly random keys: every key equally hot on average, as in a real uniform workload
    await Promise.all(Array.from({ length: batch }, () => get(urls[Math.floor(Math.random() * urls.length)]!)));
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Keep the load going while `work` runs: the plan is made from the last `load.window` of
 * requests, and the CLI calls before it take seconds on a busy machine.
 */
async function underLoad<T>(urls: string[], work: () => Promise<T>): Promise<T> {
  let done = false;
  const load = (async () => {
    while (!done) await drive(urls, 500, 400);
  })();
  try {
    return await work();
  } finally {
    done = true;
    await load;
  }
}

const maxOverMean = (loads: number[]): number => Math.max(...loads) / (loads.reduce((a, b) => a + b, 0) / loads.length);

describe('rebalancing a skewed workload', () => {
  let etcd: EtcdCluster;
  let cluster: TestCluster;

  before(async () => {
    etcd = await startEtcd();
    cluster = await startCluster({
      nodes: 3,
      staticPeers: false,
      args: ['--etcd', etcd.endpoints.join(',')],
      config: {
        etcd: { lease_ttl: '2s' },
        // the score is the request rate against a small capacity, so the test's load dominates it
        load: { window: '6s', capacity: { qps: 400 }, score_weights: { qps: 1, storage: 0, memory: 0, cpu: 0, network: 0 } },
        rebalance: { enabled: false, threshold: 0.2 },
      },
    });
    await waitFor('3 members everywhere', async () => (await Promise.all(cluster.nodes.map((n) => clusterOf(n.url)))).every((c) => c.nodes.length === 3 && new Set(c.partitions.owners).size === 3), 15_000);
  });

  after(async () => {
    agent.destroy();
    await cluster?.stop();
    await etcd?.stop();
  });

  test('the hot node is detected, a dry run changes nothing, the plan brings loads within threshold', async (t) => {
    const info = await clusterOf(cluster.nodes[0]!.url);
    const owners: string[] = info.partitions.owners;
    // 90 keys in 90 partitions, two thirds owned by node-1: node-1 serves ~2x its share. Few
    // enough keys that each partition's measured rate (~13 requests per window) means something.
    const keys: string[] = [];
    for (let i = 0; keys.length < 90; i++) {
      const k = `skew:${i}`;
      const owner = owners[partitionOf(k, 4096)];
      const want = keys.length % 3 === 2 ? owner !== 'node-1' : owner === 'node-1';
      if (want) keys.push(k);
    }
    // requests enter through every node; each is served (and counted) at the key's owner
    const urls = keys.map((k, i) => `${cluster.nodes[i % 3]!.url}/api/scores/${k}`);
    await drive(urls, 6500, 400);
    const scores = async (): Promise<Record<string, number>> => {
      const c = await clusterOf(cluster.nodes[1]!.url);
      return Object.fromEntries(c.nodes.map((n: { id: string; loadScore?: number }) => [n.id, n.loadScore ?? 0]));
    };
    const before = await scores();
    assert.ok(before['node-1']! > 1.3 * Math.max(before['node-2']!, before['node-3']!), `node-1 is hot: ${JSON.stringify(before)}`);
    assert.ok(maxOverMean(Object.values(before)) > 1.2, `imbalanced before: ${JSON.stringify(before)}`);

    const versionBefore = info.ringVersion;
    const dry = await underLoad(urls, () => runCli(['rebalance', '--dry-run', '--strategy', 'minimal-disturbance', '--node', cluster.nodes[2]!.url, '--json']));
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout);
    assert.equal(plan.dryRun, true);
    assert.equal(plan.applied, false);
    assert.ok(plan.moves.length > 0, 'the plan moves partitions');
    assert.ok(plan.moves.every((m: { from: string }) => m.from === 'node-1'), 'partitions leave the hot node');
    assert.ok(plan.withinThreshold, 'predicted within threshold');
    assert.equal((await clusterOf(cluster.nodes[0]!.url)).ringVersion, versionBefore, 'a dry run changes nothing');

    const human = await underLoad(urls, () => runCli(['rebalance', '--dry-run', '--node', cluster.nodes[0]!.url]));
    assert.match(human.stdout, /dry run: nothing changed/);
    assert.match(human.stdout, /NODE\s+LOAD NOW\s+LOAD AFTER\s+GIVES\s+TAKES\s+WEIGHT/);

    // Apply, then measure the same workload again. Per-partition rates are samples, so one plan
    // can undershoot; while imbalance persists the leader's periodic check plans again (here:
    // the operator runs the command again), at most 3 rounds, each one improving on the last.
    let last = before;
    let done: { applied: boolean; ringVersion: number; after: Record<string, number>; moves: unknown[] } | undefined;
    for (let round = 1; round <= 3 && maxOverMean(Object.values(last)) > 1.2; round++) {
      // "run again" is the answer while another migration is open (a join's may still be
      // finishing on a loaded machine): the operator runs it again, as here (3 tries)
      for (let attempt = 1; attempt <= 3; attempt++) {
        const applied = await underLoad(urls, () => runCli(['rebalance', '--strategy', 'minimal-disturbance', '--node', cluster.nodes[2]!.url, '--json']));
        assert.equal(applied.code, 0, applied.stderr);
        done = JSON.parse(applied.stdout);
        if (done!.applied || !/run again/.test((done as { reason?: string }).reason ?? '')) break;
        t.diagnostic(`round ${round}, attempt ${attempt}: ${(done as { reason?: string }).reason}`);
        await sleep(1000);
      }
      assert.equal(done!.applied, true, JSON.stringify(done));
      const version = done!.ringVersion;
      await waitFor('every node on the new table', async () => (await Promise.all(cluster.nodes.map((n) => clusterOf(n.url)))).every((c) => c.ringVersion === version), 5000);
      await drive(urls, 6500, 400);
      const now = await scores();
      t.diagnostic(`round ${round}: ${done!.moves.length} moves, max/mean ${maxOverMean(Object.values(last)).toFixed(2)} -> ${maxOverMean(Object.values(now)).toFixed(2)}`);
      assert.ok(maxOverMean(Object.values(now)) < maxOverMean(Object.values(last)), `round ${round} improves: ${JSON.stringify(last)} -> ${JSON.stringify(now)}`);
      last = now;
    }
    assert.ok(done !== undefined, 'at least one rebalance ran');
    assert.ok(maxOverMean(Object.values(last)) <= 1.2, `within threshold after: ${JSON.stringify(last)}; before ${JSON.stringify(before)}`);
    // the elected leader applies it (requests are forwarded there); every node sees its
    // migration record and emits the 'rebalance' event
    const feeds = await Promise.all(cluster.nodes.map(async (n) => (await clusterOf(n.url)).events as { kind: string }[]));
    assert.ok(feeds.every((events) => events.some((e) => e.kind === 'rebalance')), 'a rebalance event is in every node\'s feed');

    // a bad strategy is refused and changes nothing
    const bad = await runCli(['rebalance', '--strategy', 'chaotic', '--node', cluster.nodes[0]!.url]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /strategy must be one of/);
    assert.equal((await clusterOf(cluster.nodes[0]!.url)).ringVersion, done!.ringVersion);
  });
});
