/**
 * Short chaos run inside `npm test` (bounded to ~90 s): 5 nodes on real etcd behind fault
 * proxies, bounded load, kill -9 of one node. The full suite (SIGSTOP, partition, etcd outage)
 * is `npm run chaos`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { LoadGenerator, startSettledCluster, type ChaosCluster, type SettledCluster } from '../chaos/lib.ts';
import { CLIENT_TIMEOUT_MS, CLUSTER_CONFIG, killPhase, LEASE_TTL_MS, REQUEST_TIMEOUT_MS, RESTORE_AFTER_LEASE_MS, type PhaseContext } from '../chaos/phases.ts';

const WORKERS = 6;

describe('chaos (short): kill -9 of 1 of 5 nodes under load', { timeout: 90_000 }, () => {
  let env: SettledCluster;
  let cluster: ChaosCluster;
  let load: LoadGenerator;
  const faulted = new Set<string>();

  before(async () => {
    env = await startSettledCluster({ nodes: 5, config: CLUSTER_CONFIG });
    cluster = env.cluster;
    load = new LoadGenerator({ workers: WORKERS, keysPerWorker: 40, timeoutMs: CLIENT_TIMEOUT_MS, targets: () => cluster.serving().filter((n) => !faulted.has(n.id)) });
    load.start();
    await sleep(2000);
  });

  after(async () => {
    await load?.stop();
    await env?.stop();
  });

  test('requests keep being answered, no read is stale, acknowledged writes stay readable, routing moves off the victim fast, replication is restored', async () => {
    const ctx: PhaseContext = { cluster, etcd: env.etcd, load, faulted, log: (m) => console.log(m) };
    const r = await killPhase(ctx, cluster.nodes[2]!, { holdMs: 5000, restart: false });
    await load.stop();
    console.log(JSON.stringify(r));
    assert.ok(r.requests > 100, `load ran (${r.requests} requests)`);
    assert.ok(r.rerouteMs !== undefined && r.rerouteMs >= 0 && r.rerouteMs < 1000, `every live node stopped routing to the victim within 1 s (${r.rerouteMs} ms)`);
    assert.ok(r.restoredMs !== undefined && r.restoredMs >= 0 && r.restoredMs <= LEASE_TTL_MS + RESTORE_AFTER_LEASE_MS, `every partition had ${CLUSTER_CONFIG.replication.factor} holders again within ${RESTORE_AFTER_LEASE_MS} ms after the lease TTL (${r.restoredMs} ms after the kill)`);
    assert.equal(r.lost, 0, `acknowledged writes lost: ${r.lostExamples.join('; ')}`);
    assert.equal(r.staleReads, 0, `reads older than the last acknowledged write: ${r.staleExamples.join('; ')}`);
    // a write in flight at the victim's coordinator when it died fails as may-or-may-not (it is never
    // applied twice: Router.write); at most one per worker, each had one request in flight
    assert.equal(r.failedReads, 0, `failed reads: ${r.failureExamples.join('; ')}`);
    assert.ok(r.failed <= WORKERS, `failed writes ${r.failed} <= ${WORKERS} (the ones in flight at the kill): ${r.failureExamples.join('; ')}`);
    assert.ok(r.p99Ms <= REQUEST_TIMEOUT_MS + 200, `p99 ${r.p99Ms} ms within the request timeout`);
  });
});
