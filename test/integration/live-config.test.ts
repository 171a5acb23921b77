/**
 * Live config (README "Configuration"): every override field in `/jincache/config/{group}` changes
 * what the nodes *do* within a second of the etcd write, without a restart, and deleting the
 * override restores the file's value. One real etcd, three real nodes (behind fault proxies, for
 * the breaker), and an origin whose answers take a known time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createEtcdClient } from '../../src/discovery/etcd-client.ts';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { holdersOf, type PartitionTable } from '../../src/core/placement/table.ts';
import { GROUP, startSettledCluster, until, type ChaosCluster, type ChaosNode, type SettledCluster } from '../chaos/lib.ts';
import { waitFor } from '../helpers/wait.ts';

/** An origin answering `origin:KEY` after `delayMs`. */
function startOrigin(delayMs: number): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer((req, res) => {
    setTimeout(() => {
      res.writeHead(200);
      res.end(`origin:${decodeURIComponent((req.url ?? '').split('/').pop() ?? '')}`);
    }, delayMs);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/o/{key}` })));
}

describe('live config overrides change behaviour on every node (3 nodes, real etcd)', { timeout: 240_000 }, () => {
  let env: SettledCluster;
  let cluster: ChaosCluster;
  let table: PartitionTable;
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  let etcd: ReturnType<typeof createEtcdClient>;

  before(async () => {
    // the origin takes 1.5 s: longer than the file's request_timeout (1 s) of group "slow" and
    // than the file's loader timeout (1 s) of group "loading", shorter than the overrides below
    origin = await startOrigin(1500);
    env = await startSettledCluster({
      nodes: 3,
      config: {
        etcd: { lease_ttl: '2s' },
        replication: { factor: 2 },
        fault_tolerance: { heartbeat_interval: '250ms', request_timeout: '1s', max_retries: 2, circuit_threshold: 1 },
        load: { window: '4s', capacity: { qps: 300 }, score_weights: { qps: 1, storage: 0, memory: 0, cpu: 0, network: 0 } },
        rebalance: { enabled: true, interval: '1s', threshold: 0.9, min_interval: '0s' },
        groups: [
          { name: GROUP },
          { name: 'expiring', ttl_default: '1500ms' },
          { name: 'slow', request_timeout: '1s', loader: { url: origin.url, timeout: '5s' } },
          { name: 'loading', request_timeout: '5s', loader: { url: origin.url, timeout: '1s' } },
        ],
      },
    });
    cluster = env.cluster;
    table = await cluster.table();
    etcd = createEtcdClient({ endpoints: env.etcd.endpoints });
  });

  after(async () => {
    etcd?.close();
    await env?.stop();
    origin?.server.close();
  });

  const api = (n: ChaosNode, group: string, key: string): string => `${n.url}/api/${group}/${encodeURIComponent(key)}`;
  const ownerOf = (key: string): ChaosNode => cluster.nodes.find((n) => n.id === holdersOf(table, partitionOf(key, table.partitionCount))[0])!;
  const notHolding = (key: string): ChaosNode => cluster.nodes.find((n) => !holdersOf(table, partitionOf(key, table.partitionCount)).includes(n.id))!;

  /**
   * Write an override (null: delete it) and wait until every node says it applied it: at most a
   * second, read from the times the nodes logged the event at (not from when this test's polling
   * of GET /cluster happened to see it, which is slower on a loaded machine).
   */
  async function override(group: string, doc: Record<string, unknown> | null): Promise<void> {
    const marker = doc === null ? `override for ${group} removed` : `applied override for ${group}`;
    const t0 = Date.now();
    const appliedAt = async (): Promise<number[]> => {
      const infos = await Promise.all(cluster.nodes.map(async (n) => (await (await fetch(`${n.url}/cluster`)).json()) as { events: { at: number; message: string }[] }));
      return infos.flatMap((i) => i.events.filter((e) => e.message === marker && e.at >= t0).slice(0, 1).map((e) => e.at));
    };
    if (doc === null) await etcd.delete().key(`/jincache/config/${group}`);
    else await etcd.put(`/jincache/config/${group}`).value(JSON.stringify(doc));
    let at: number[] = [];
    await waitFor(`every node applied ${marker}`, async () => (at = await appliedAt()).length === 3, 5000, 20);
    const ms = Math.max(...at) - t0;
    assert.ok(ms < 1000, `applied on every node ${ms} ms after the etcd write`);
  }

  async function status(url: string, init: RequestInit = {}): Promise<{ status: number; body: string; expires: number }> {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: await res.text(), expires: Number(res.headers.get('x-jincache-expires') ?? 0) };
  }

  test('ttl_default: from the file, then overridden, then restored', async () => {
    // from the file: group "expiring" gives values written without a TTL 1.5 s
    const n = cluster.nodes[0]!;
    assert.equal((await status(api(n, 'expiring', 'e1'), { method: 'PUT', body: 'x' })).status, 204);
    const got = await status(api(cluster.nodes[1]!, 'expiring', 'e1'));
    assert.equal(got.status, 200);
    assert.ok(got.expires > Date.now() && got.expires <= Date.now() + 1600, `expires ${got.expires - Date.now()} ms from now`);
    await sleep(1700);
    assert.equal((await status(api(cluster.nodes[2]!, 'expiring', 'e1'))).status, 404, 'expired after the file ttl_default');
    // the default group has none: no expiry, until an override gives it one
    assert.equal((await status(api(n, GROUP, 't0'), { method: 'PUT', body: 'x' })).status, 204);
    assert.equal((await status(api(n, GROUP, 't0'))).expires, 0);
    await override(GROUP, { ttl_default: '2s' });
    for (const via of cluster.nodes) {
      const written = Date.now();
      assert.equal((await status(api(via, GROUP, `t-${via.id}`), { method: 'PUT', body: 'x' })).status, 204);
      const got = await status(api(via, GROUP, `t-${via.id}`));
      assert.ok(got.expires >= written + 1900 && got.expires <= Date.now() + 2000, `written via ${via.id}: expires with the new ttl_default (${got.expires - written} ms)`);
    }
    await sleep(2100);
    for (const via of cluster.nodes) assert.equal((await status(api(via, GROUP, `t-${via.id}`))).status, 404, 'expired after 2 s');
    await override(GROUP, null);
    assert.equal((await status(api(n, GROUP, 't1'), { method: 'PUT', body: 'x' })).status, 204);
    assert.equal((await status(api(n, GROUP, 't1'))).expires, 0, 'restored: no expiry');
  });

  test('request_timeout: a raised timeout lets a slow origin answer; deleting it restores the 1 s deadline', async () => {
    const key = 'rt-1';
    const via = notHolding(key);
    assert.equal((await status(api(via, 'slow', key))).status, 504, 'the 1.5 s origin misses the 1 s deadline');
    await override('slow', { request_timeout: '4s' });
    const ok = await status(api(via, 'slow', 'rt-2'));
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'origin:rt-2');
    await override('slow', null);
    assert.equal((await status(api(via, 'slow', 'rt-3'))).status, 504);
  });

  test('loader_timeout: a raised loader timeout lets the slow origin answer', async () => {
    const via = cluster.nodes[0]!;
    assert.equal((await status(api(via, 'loading', 'lt-1'))).status, 502, 'the loader gives up after 1 s');
    await override('loading', { loader_timeout: '3s' });
    const ok = await status(api(via, 'loading', 'lt-2'));
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'origin:lt-2');
    await override('loading', null);
    assert.equal((await status(api(via, 'loading', 'lt-3'))).status, 502);
  });

  test('cache_bytes and hot_cache_fraction: the budget each node keeps changes at once', async () => {
    await Promise.all(Array.from({ length: 200 }, (_, i) => status(api(cluster.nodes[i % 3]!, GROUP, `big-${i}`), { method: 'PUT', body: 'v'.repeat(10_000) })));
    const budget = async (): Promise<{ bytes: number; maxBytes: number }[]> =>
      Promise.all(cluster.nodes.map(async (m) => ((await (await fetch(`${m.url}/cluster`)).json()) as { groups: { name: string; bytes: number; maxBytes: number }[] }).groups.find((g) => g.name === GROUP)!));
    const before = await budget();
    assert.ok(before.every((g) => g.bytes > 600_000), 'each node holds its share of 2 MB');
    await override(GROUP, { cache_bytes: '256KiB' });
    for (const g of await budget()) {
      assert.equal(g.maxBytes, Math.max(1, 256 * 1024 - Math.floor(256 * 1024 * 0.125)), 'the store gets the budget minus the hot cache share');
      assert.ok(g.bytes <= g.maxBytes, `evicted down to the budget: ${g.bytes}`);
    }
    await override(GROUP, { cache_bytes: '256KiB', hot_cache_fraction: 0.5 });
    for (const g of await budget()) assert.equal(g.maxBytes, 128 * 1024, 'half of it for the hot cache');
    await override(GROUP, null);
    for (const g of await budget()) assert.equal(g.maxBytes, 64 * 1024 * 1024 - 8 * 1024 * 1024, 'the file budget again');
  });

  test('max_retries: with 0 a read whose owner hangs fails; with 2 it goes to the next holder', async () => {
    const key = 'mr-1';
    await status(api(cluster.nodes[0]!, GROUP, key), { method: 'PUT', body: 'kept' });
    const owner = ownerOf(key);
    const via = notHolding(key);
    const attempt = async (): Promise<number> => {
      // past the owner's probation after it last recovered (it is then read like any holder)
      await sleep(3500);
      owner.pause();
      try {
        return (await status(api(via, GROUP, key))).status;
      } finally {
        owner.resume();
        // back to healthy before the next attempt
        await until(() => [via], (i) => i.health[owner.id] === 'healthy' && i.breakers[owner.id] === 'closed', 10_000);
      }
    };
    await override(GROUP, { max_retries: 0 });
    assert.equal(await attempt(), 504, 'no retry: the hung owner times the read out');
    await override(GROUP, { max_retries: 2 });
    assert.equal(await attempt(), 200, 'retried at the backup');
    await override(GROUP, null);
  });

  test('circuit_threshold: one failed call among successful heartbeats opens a breaker at 0.05, not at the file\'s 1', async () => {
    let n = 0;
    // one peer failure, nothing else failing: a read of a new key of group "slow" (its origin
    // outlasts the 1 s request_timeout) sent on by a node that does not hold it times out once
    // at the owner, whose heartbeats keep succeeding
    const opensAfterOneFailure = async (): Promise<number> => {
      const key = `ct-${n++}`;
      const owner = ownerOf(key);
      const via = notHolding(key);
      await until(() => [via], (i) => i.breakers[owner.id] === 'closed', 10_000);
      await sleep(2200); // a fresh 2 s sampling window of successful heartbeats
      const opens = async (): Promise<number> => (((await (await fetch(`${via.url}/cluster`)).json()) as { breakerOpens: Record<string, number> }).breakerOpens[owner.id] ?? 0);
      const before = await opens();
      assert.equal((await status(api(via, 'slow', key))).status, 504);
      return (await opens()) - before;
    };
    assert.equal(await opensAfterOneFailure(), 0, 'threshold 1: a failure among successes keeps it closed');
    await override(GROUP, { circuit_threshold: 0.05 });
    assert.equal(await opensAfterOneFailure(), 1, 'threshold 0.05: the same failure opens it');
    await override(GROUP, null);
    assert.equal(await opensAfterOneFailure(), 0, 'restored');
  });

  test('rebalance_threshold: a lowered threshold makes the leader act on an imbalance it tolerated', async () => {
    // node loads 2 : 1 : 1 (node A gets twice the reads): 50% above the mean, inside 0.9
    const byOwner = new Map<string, string[]>();
    for (let i = 0; byOwner.size < 3 || [...byOwner.values()].some((k) => k.length < 20); i++) {
      const key = `rb-${i}`;
      const owner = ownerOf(key).id;
      const list = byOwner.get(owner) ?? [];
      if (list.length < 20) list.push(key);
      byOwner.set(owner, list);
    }
    for (const keys of byOwner.values()) for (const k of keys) await status(api(cluster.nodes[0]!, GROUP, k), { method: 'PUT', body: 'x' });
    const [hot, ...rest] = [...byOwner.keys()].sort();
    const version = async (): Promise<number> => ((await (await fetch(`${cluster.nodes[0]!.url}/cluster`)).json()) as { ringVersion: number }).ringVersion;
    const v0 = await version();
    let stop = false;
    const load = (async () => {
      const get = (k: string) => fetch(api(ownerOf(k), GROUP, k)).then((r) => r.arrayBuffer()).catch(() => undefined);
      for (let round = 0; !stop && round < 2000; round++) {
        const pick = (owner: string) => byOwner.get(owner)![round % 20]!;
        await Promise.all([get(pick(hot!)), get(pick(hot!)), ...rest.map((o) => get(pick(o)))]);
        await sleep(10);
      }
    })();
    try {
      await sleep(9000); // longer than the window plus three 1 s checks
      assert.equal(await version(), v0, 'threshold 0.9: the leader tolerates the imbalance');
      await override(GROUP, { rebalance_threshold: 0.2 });
      await waitFor('the leader rebalances', async () => (await version()) > v0, 30_000, 200);
    } finally {
      stop = true;
      await load;
    }
    await override(GROUP, null);
  });
});
