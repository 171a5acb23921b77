/**
 * A node that wakes from a pause must not serve old data, and neither may the nodes around it
 * (issue 17). 5 nodes on real etcd (replication factor 2, lease 2 s, heartbeat 500 ms, request
 * timeout 1 s); 16 clients race on 8 shared keys (40% PUT, 60% GET over the HTTP API), each
 * request sent to a random one of 4 of the nodes, the paused one included. One node is
 * SIGSTOPped past its lease, then (after it recovered) for less than its lease. The history has
 * no stale read (test/chaos/register-history.ts), and no acknowledged write is lost.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLUSTER_CONFIG } from '../chaos/phases.ts';
import { GROUP, startSettledCluster, until, type ChaosNode, type SettledCluster } from '../chaos/lib.ts';
import { lostWrites, runWorkload, staleReads, type Op } from '../chaos/register-history.ts';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { holdersOf } from '../../src/core/placement/table.ts';
import { Record } from '../../src/peer/messages.ts';
import { callPeer } from '../helpers/peer.ts';

const KEYS = 8;

describe('reads around a paused node (5 nodes, shared keys)', { timeout: 240_000 }, () => {
  let env: SettledCluster;

  before(async () => {
    env = await startSettledCluster({ nodes: 5, config: CLUSTER_CONFIG });
  });

  after(() => env?.stop());

  async function pauseRun(victim: ChaosNode, pauseMs: number): Promise<{ ops: Op[]; finals: Map<string, string | null> }> {
    const nodes = env.cluster.nodes;
    const targets = nodes.slice(0, 4);
    assert.ok(targets.includes(victim));
    let release!: () => void;
    const stop = new Promise<void>((r) => (release = r));
    const load = runWorkload({ clients: 16, keys: KEYS, writeRatio: 0.4, targets: () => targets, group: GROUP, clientTimeoutMs: 2000 }, stop, 60_000);
    await sleep(2000);
    victim.pause();
    await sleep(pauseMs);
    victim.resume();
    await sleep(5000);
    release();
    const ops = await load;
    // settle, then read every key through every node
    await until(() => nodes, (i) => i.nodes.length === nodes.length && i.migrations.length === 0, 30_000, 200);
    const finals = new Map<string, string | null>();
    for (let k = 0; k < KEYS; k++) {
      const key = `shared-${k}`;
      const answers: string[] = [];
      for (const n of nodes) {
        const res = await fetch(`${n.url}/api/${GROUP}/${key}`);
        answers.push(`${n.id}=${res.status === 200 ? await res.text() : `(${res.status})`}`);
      }
      const values = new Set(answers.map((a) => a.split('=')[1]!));
      if (values.size !== 1) {
        const table = await env.cluster.table();
        const copies = await Promise.all(
          holdersOf(table, partitionOf(key, table.partitionCount)).map(async (id) => {
            const n = nodes.find((x) => x.id === id)!;
            const a = await callPeer(Record, n.url, { group: GROUP, key });
            return `${id}: ${a.kind === 'record' ? `${a.record.value?.toString() ?? '(deleted)'} v${a.record.version}` : a.kind}`;
          }),
        );
        assert.fail(`${key}: nodes answer differently (${answers.join(', ')}); holders' copies under v${table.version}: ${copies.join(', ')}`);
      }
      const v = [...values][0]!;
      finals.set(key, v.startsWith('(') ? null : v);
    }
    return { ops, finals };
  }

  for (const [name, pauseMs] of [['past the lease (6 s)', 6000], ['shorter than the lease (1.5 s)', 1500]] as const) {
    test(`SIGSTOP of a node the clients talk to, ${name}: no stale read, no lost write`, async () => {
      const victim = env.cluster.nodes[1]!;
      const { ops, finals } = await pauseRun(victim, pauseMs);
      const check = staleReads(ops);
      const atVictim = ops.filter((o) => o.node === victim.id);
      console.log(`  ${check.ops} ops, ${check.failed} failed (${atVictim.filter((o) => !o.ok).length} of ${atVictim.length} at ${victim.id}), ${check.stale.length} stale`);
      assert.deepEqual(check.staleExamples, [], 'no stale read');
      assert.ok(check.ops > 500, `enough operations (${check.ops})`);
      assert.deepEqual(lostWrites(ops, finals), [], 'no lost write');
      const failedElsewhere = ops.filter((o) => !o.ok && o.node !== victim.id).length;
      assert.ok(failedElsewhere <= ops.length * 0.01, `clients of the other nodes barely notice (${failedElsewhere} failed)`);
    });
  }
});
