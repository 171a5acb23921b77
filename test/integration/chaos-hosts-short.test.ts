/**
 * Short chaos run on namespaced test hosts inside `npm test` (~60 s): 5 nodes and a 3-member
 * etcd, each in its own network namespace, 16 clients on 8 shared keys through every node, the
 * faulty one included; one kernel partition (a node cut from its peers and etcd), one kill -9;
 * every history checked (lost writes, stale reads, linearizability per key). The full suite is
 * `npm run chaos -- --hosts`.
 *
 * What the cluster achieves today, and is asserted: no acknowledged write lost; at nodes not
 * under the fault no failed read, and no failed write except those sent while the detector had not
 * yet called the faulty node unusable (a write forwarded to a coordinator that stops answering is
 * not retried at another one, which could reorder it: it fails as indeterminate); every key's
 * history decided by the checker, no read of a value nobody wrote, and under kill -9 no stale read. What it does not achieve (logged with
 * the shrunk histories, not asserted): under the partition the cut-off node keeps acknowledging
 * writes and answering reads from its own copy, so reads there and at healthy nodes are stale;
 * and even without a fault a write in flight can be seen by one read and not by a later one
 * through another node, so histories are not always linearizable (seen in the 10-node steady
 * run of `npm run chaos -- --scale`, and possible in either phase here).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { killPhase, partitionPhase, runPhase, startHostsEnv, type HostsEnv, type PhaseReport } from '../chaos/hosts.ts';
import { netnsUnavailable } from '../netns/lab.ts';

const skip = netnsUnavailable();
/** runPhase's default warm-up before the fault. */
const WARMUP_MS = 1500;
/** Injecting the fault, the failure detector's verdict and one request timeout. */
const DETECT_WINDOW_MS = 2500;
/** How long before the fault a write can have been sent and still be in flight when it starts (p99 of a write here is tens of ms). */
const IN_FLIGHT_MS = 250;
if (skip !== undefined) console.log(`# skipped: network namespaces unavailable: ${skip}`);

describe('chaos on namespaced hosts (short): a partition and a kill -9 on 5 nodes', { skip, timeout: 150_000 }, () => {
  let env: HostsEnv;

  before(async () => {
    env = await startHostsEnv({ nodes: 5 });
  });

  after(async () => {
    await env?.stop();
  });

  const common = (r: PhaseReport): void => {
    assert.ok(r.requests > 500, `the load ran (${r.requests} requests)`);
    assert.equal(r.lost, 0, `acknowledged writes lost: ${r.details.lostExamples.join('; ')}`);
    const failures = r.details.failureExamples.join('; ');
    assert.equal(r.details.failedReads, 0, `failed reads at nodes not under the fault: ${failures}`);
    if (r.details.failedSpan !== undefined) {
      // the fault starts after the warm-up; the detector and one request timeout bound the window
      const [first, last] = r.details.failedSpan;
      // (a write sent a few ms before the fault was still in flight when it began: IN_FLIGHT_MS)
      assert.ok(first >= WARMUP_MS - IN_FLIGHT_MS && last <= WARMUP_MS + DETECT_WINDOW_MS, `failed writes at healthy nodes sent ${first.toFixed(0)}..${last.toFixed(0)} ms, outside the detection window: ${failures}`);
    }
    assert.deepEqual(r.details.unknown, [], 'the checker decided every key');
    assert.equal(r.details.unexplained, 0, 'no read of a value nobody wrote');
  };

  test('node-2 cut from its peers and etcd for 5 s', async () => {
    const r = await runPhase(env, partitionPhase('node-2', 5000));
    common(r);
    // not achieved today (see the file comment): reported, not asserted
    console.log(`# partition: ${r.stale} stale reads (${r.details.staleAtFaulty} via node-2), ${r.linearizability_violations} keys not linearizable, ${r.failedAtFaulty} failed at node-2`);
  });

  test('kill -9 of node-4 (not restarted)', async () => {
    const r = await runPhase(env, killPhase('node-4', { restart: false, holdMs: 5000 }));
    common(r);
    assert.equal(r.stale, 0, `stale reads: ${r.details.staleExamples.join('; ')}`);
    // not achieved reliably (see the file comment): reported, not asserted
    console.log(`# kill -9: ${r.linearizability_violations} keys not linearizable, ${r.failedAtFaulty} failed at node-4`);
  });
});
