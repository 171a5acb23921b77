/**
 * Failover and recovery on real processes: 3 nodes on real etcd, each behind a fault proxy
 * (test/chaos/lib.ts), replication factor 2, heartbeat 250 ms, request timeout 1 s, and a
 * lease TTL of 10 s so a killed node restarts while the table in force still lists it: that is
 * the catch-up path (same id, empty memory store, partitions pulled from the other holders).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { holdersOf, type PartitionTable } from '../../src/core/placement/table.ts';
import { GROUP, startSettledCluster, until, type ChaosCluster, type ChaosNode, type SettledCluster } from '../chaos/lib.ts';
import { Record } from '../../src/peer/messages.ts';
import { callPeer } from '../helpers/peer.ts';

const REQUEST_TIMEOUT_MS = 1000;
/** A paused node is unusable to the others within a heartbeat timeout or two; writes sent before that may fail. */
const DETECT_MS = 1500;
const CONFIG = {
  etcd: { lease_ttl: '10s' },
  replication: { factor: 2, sync: true },
  fault_tolerance: { heartbeat_interval: '250ms', request_timeout: `${REQUEST_TIMEOUT_MS}ms`, max_retries: 3, circuit_threshold: 0.5 },
};

const api = (n: ChaosNode, key: string): string => `${n.url}/api/${GROUP}/${encodeURIComponent(key)}`;

async function put(n: ChaosNode, key: string, value: string): Promise<void> {
  const res = await fetch(api(n, key), { method: 'PUT', body: value, signal: AbortSignal.timeout(3000) });
  await res.arrayBuffer();
  assert.equal(res.status, 204, `PUT ${key} via ${n.id}`);
}

async function get(n: ChaosNode, key: string, timeoutMs = 3000): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  const res = await fetch(api(n, key), { signal: AbortSignal.timeout(timeoutMs) });
  const body = await res.text();
  return { status: res.status, body, ms: performance.now() - started };
}

/** A node's own copy of a key (no routing): version or null. */
async function localVersion(n: ChaosNode, key: string): Promise<number | null> {
  const a = await callPeer(Record, n.url, { group: GROUP, key }, { deadline: Date.now() + 2000 });
  return a.kind === 'record' ? a.record.version : null;
}

/** `count` keys whose owner (first holder) is `owner`. */
function keysOwnedBy(table: PartitionTable, owner: string, count: number, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count && i < 100_000; i++) {
    const key = `${prefix}-${i}`;
    if (holdersOf(table, partitionOf(key, table.partitionCount))[0] === owner) out.push(key);
  }
  return out;
}

describe('failover and recovery (3 nodes, real processes)', { timeout: 60_000 }, () => {
  let env: SettledCluster;
  let cluster: ChaosCluster;

  before(async () => {
    env = await startSettledCluster({ nodes: 3, config: CONFIG });
    cluster = env.cluster;
  });

  after(() => env?.stop());

  test('kill -9 of the owner: reads go to the replica within 1 s; a write acknowledged meanwhile survives the restart (catch-up)', async () => {
    const [n1, n2, n3] = cluster.nodes as [ChaosNode, ChaosNode, ChaosNode];
    const table = await cluster.table();
    // written before the crash: the restarted owner comes back empty and gets these only by catch-up
    const before = keysOwnedBy(table, n2.id, 40, 'pre');
    for (const k of before) await put(n1, k, `${k}:1`);
    const during = keysOwnedBy(table, n2.id, 5, 'down');

    await n2.kill('SIGKILL');
    const killedAt = performance.now();
    // every read of a key the victim owned is answered (by the replica) within 1 s of the kill
    let firstOk = -1;
    while (performance.now() - killedAt < 5000) {
      const r = await get(n1, before[0]!, 2000).catch(() => ({ status: 0, body: '', ms: 0 }));
      if (r.status === 200 && r.body === `${before[0]}:1`) {
        firstOk = performance.now() - killedAt;
        break;
      }
      await sleep(20);
    }
    assert.ok(firstOk >= 0 && firstOk < 1000, `a read of a key the dead node owned was answered ${Math.round(firstOk)} ms after the kill`);
    for (const k of before.slice(0, 10)) {
      const r = await get(n3, k);
      assert.equal(r.status, 200, `GET ${k} via ${n3.id} while its owner is down`);
      assert.equal(r.body, `${k}:1`);
      assert.ok(r.ms < REQUEST_TIMEOUT_MS, `answered in ${Math.round(r.ms)} ms`);
    }
    // acknowledged while the owner is down (coordinated by the backup, hinted to the owner)
    for (const k of during) await put(n3, k, `${k}:2`);
    // an update of a pre-crash key, too
    await put(n1, before[1]!, `${before[1]}:2`);

    // restart within the lease: the table still lists it, so it must catch up before serving
    await n2.restart();
    const caught = await until(() => [n2], (i) => i.catchup?.pending === 0, 10_000);
    assert.ok(caught >= 0, 'the restarted node finished catching up');
    // published 'active' again after 'joining'
    assert.ok((await until(() => [n1, n3], (i) => i.nodes.find((n: { id: string }) => n.id === n2.id)?.status === 'active', 5000)) >= 0, `${n2.id} is active again`);
    // the restarted node's own copy holds what was written before the crash (no hint carries those)
    const missing: string[] = [];
    for (const k of before) if ((await localVersion(n2, k)) === null) missing.push(k);
    assert.deepEqual(missing, [], `keys written before the crash missing from ${n2.id}'s own store after the restart`);
    const info = (await (await fetch(`${n2.url}/cluster`)).json()) as { catchup: { last: { partitions: number; caughtUp: number; records: number; failed: number[] } | null }; events: { kind: string }[] };
    assert.ok(info.catchup.last !== null && info.catchup.last.partitions > 0, 'it had partitions to catch up');
    assert.equal(info.catchup.last.caughtUp, info.catchup.last.partitions, `every partition caught up: ${JSON.stringify(info.catchup.last)}`);
    assert.ok(info.catchup.last.records >= before.length, `records pulled: ${info.catchup.last.records}`);
    assert.ok(info.events.some((e) => e.kind === 'catchup'), 'a catchup event in the feed');
    // every acknowledged write reads back through every node, the restarted owner included
    for (const n of cluster.nodes) {
      for (const k of during) assert.equal((await get(n, k)).body, `${k}:2`, `GET ${k} via ${n.id}`);
      assert.equal((await get(n, before[1]!)).body, `${before[1]}:2`, `GET ${before[1]} via ${n.id}`);
      assert.equal((await get(n, before[2]!)).body, `${before[2]}:1`, `GET ${before[2]} via ${n.id}`);
    }
  });

  test('SIGSTOP of a node: no read fails, writes fail only until the detector routes around it, each answered within the deadline, and its breaker opens', async () => {
    const [n1, n2, n3] = cluster.nodes as [ChaosNode, ChaosNode, ChaosNode];
    // the earlier test's restart must be fully settled (every node sees every node usable)
    await until(() => cluster.serving(), (i) => i.nodes.length === 3 && i.nodes.every((n: { health?: string }) => n.health === 'healthy' || n.health === 'slow'), 10_000);
    const table = await cluster.table();
    const keys = keysOwnedBy(table, n3.id, 20, 'stop');
    for (const k of keys) await put(n1, k, `${k}:1`);
    n3.pause();
    const pausedAt = Date.now();
    try {
      const failures: string[] = [];
      const writeFailures: { at: number; what: string }[] = [];
      let slowest = 0;
      let requests = 0;
      let breakerOpen = false;
      const breakerSeen = async (): Promise<boolean> => {
        const metrics = await (await fetch(`${n1.url}/metrics`)).text();
        if (new RegExp(`jincache_breaker_state\\{[^}]*peer="${n3.id}"[^}]*\\} 2`).test(metrics)) return true;
        const info = (await (await fetch(`${n2.url}/cluster`)).json()) as { breakers?: Record<string, string> };
        return info.breakers?.[n3.id] === 'open';
      };
      const end = Date.now() + 4000;
      for (let i = 0; Date.now() < end && i < 1000; i++) {
        const k = keys[i % keys.length]!;
        const via = i % 2 === 0 ? n1 : n2;
        requests++;
        try {
          if (i % 3 === 0) {
            const started = performance.now();
            try {
              await put(via, k, `${k}:${i + 2}`);
            } catch (e) {
              // the coordinator stopped answering mid-write: may or may not be applied, never applied twice
              writeFailures.push({ at: Date.now() - pausedAt, what: `PUT ${k} via ${via.id}: ${(e as Error).message.split('\n')[0]}` });
            }
            slowest = Math.max(slowest, performance.now() - started);
          } else {
            const r = await get(via, k, REQUEST_TIMEOUT_MS + 500);
            slowest = Math.max(slowest, r.ms);
            if (r.status !== 200) failures.push(`GET ${k} via ${via.id}: ${r.status} ${r.body.slice(0, 80)}`);
          }
        } catch (e) {
          failures.push(`${k} via ${via.id}: ${(e as Error).message}`);
        }
        if (!breakerOpen && i % 5 === 0) breakerOpen = await breakerSeen();
        await sleep(5);
      }
      // still paused: the heartbeats alone must open it (a breaker probes half-open now and then)
      for (let i = 0; i < 40 && !breakerOpen; i++) {
        breakerOpen = await breakerSeen();
        await sleep(50);
      }
      assert.deepEqual(failures, [], `${failures.length} of ${requests} reads failed`);
      const late = writeFailures.filter((f) => f.at > DETECT_MS);
      assert.deepEqual(late, [], `writes failed after the detector's ${DETECT_MS} ms (${writeFailures.length} failed in all)`);
      assert.ok(slowest <= REQUEST_TIMEOUT_MS + 100, `slowest request ${Math.round(slowest)} ms (deadline ${REQUEST_TIMEOUT_MS} ms)`);
      assert.ok(breakerOpen, `a breaker for ${n3.id} opened (metrics jincache_breaker_state or /cluster breakers)`);
    } finally {
      n3.resume();
    }
  });

  test('partition heal: the cut-off owner never answers a read with a value older than an acknowledged write', async () => {
    const [n1, n2, n3] = cluster.nodes as [ChaosNode, ChaosNode, ChaosNode];
    await until(() => cluster.serving(), (i) => i.nodes.every((n: { health?: string }) => n.health === 'healthy' || n.health === 'slow'), 10_000);
    const table = await cluster.table();
    const victim = n1;
    const keys = keysOwnedBy(table, victim.id, 30, 'cut');
    for (const k of keys) await put(n2, k, `${k}:1`);
    // peers cannot reach the victim (its proxy drops); the victim still reaches them
    victim.proxy.set({ mode: 'drop' });
    try {
      const unusable = (h: string | undefined): boolean => h === 'suspected' || h === 'down';
      assert.ok((await until(() => [n2, n3], (i) => unusable(i.nodes.find((n: { id: string }) => n.id === victim.id)?.health), 5000)) >= 0, 'the peers suspect the victim');
      // acknowledged while it is cut off: coordinated by the backups, hinted to the victim
      for (const k of keys) await put(k.length % 2 === 0 ? n2 : n3, k, `${k}:2`);
      // the victim learns from the peers' heartbeat answers (every 250 ms) that they hold hints
      // for it: from then on, even before the heal, a read through it must not answer its own
      // stale copy
      await sleep(600);
      const early = await get(victim, keys[0]!);
      assert.equal(early.body, `${keys[0]}:2`, 'read through the cut-off owner before the heal');
    } finally {
      victim.proxy.set({ mode: 'pass' });
    }
    // right after the heal, and for a while: every read through every node answers the acknowledged value
    const stale: string[] = [];
    const end = Date.now() + 3000;
    for (let round = 0; Date.now() < end; round++) {
      for (const n of [victim, n2, n3]) {
        const k = keys[round % keys.length]!;
        const r = await get(n, k).catch((e: unknown) => ({ status: 0, body: (e as Error).message, ms: 0 }));
        if (r.status !== 200 || r.body !== `${k}:2`) stale.push(`${k} via ${n.id}: ${r.status} ${r.body.slice(0, 40)}`);
      }
    }
    assert.deepEqual(stale, [], 'reads after the heal');
    // and the replicas converge: the victim's own copy catches up through the hints
    const lagging: string[] = [];
    const converge = Date.now() + 5000;
    for (const k of keys) {
      for (;;) {
        const [a, b] = await Promise.all([localVersion(victim, k), localVersion(n2, k).then(async (v) => (holdersOf(table, partitionOf(k, table.partitionCount)).includes(n2.id) ? v : localVersion(n3, k)))]);
        if (a !== null && a === b) break;
        if (Date.now() > converge) {
          lagging.push(`${k}: ${a} vs ${b}`);
          break;
        }
        await sleep(50);
      }
    }
    assert.deepEqual(lagging, [], 'holders converged');
  });
});
