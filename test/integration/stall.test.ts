/**
 * Every node stalls past its etcd lease at once (SIGSTOP of all 3, as a host-wide pause or an
 * overloaded machine does), then they resume one after the other. The first one back leads and
 * sees the others missing, with every copy of some partitions: it must wait for them rather than
 * commit tables without them (which would leave those partitions empty). One that comes back
 * later than that is removed alone, and its partitions' new holders are read before the repair
 * has copied the data to them. No acknowledged write may be answered as missing or with another
 * value meanwhile. Real etcd, lease 2 s, replication factor 2.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { GROUP, startSettledCluster, until, type ChaosCluster, type SettledCluster } from '../chaos/lib.ts';

const CONFIG = {
  etcd: { lease_ttl: '2s' },
  replication: { factor: 2, sync: true },
  fault_tolerance: { heartbeat_interval: '250ms', request_timeout: '1s' },
};

// the others resume `gapsMs` apart, after the first: within the leader's wait for them (2 s, the
// lease) nobody is removed; past it the last one is removed alone, its partitions get new holders
// before the repair copies them there, and it joins again
stalled('they come back within the lease', [400, 400]);
stalled('the last one comes back past the lease: removed, then joins again', [400, 2600]);

function stalled(name: string, gapsMs: readonly number[]): void {
  describe(`every node stalled past its lease, ${name} (3 nodes, real etcd)`, { timeout: 90_000 }, () => {
    let env: SettledCluster;
    let cluster: ChaosCluster;

    before(async () => {
      env = await startSettledCluster({ nodes: 3, config: CONFIG });
      cluster = env.cluster;
    });

    after(() => env?.stop());

    test('at most one member is removed and every acknowledged write stays readable while they come back', async () => {
      const keys = Array.from({ length: 300 }, (_, i) => `stall-${i}`);
      for (const k of keys) {
        const res = await fetch(`${cluster.nodes[0]!.url}/api/${GROUP}/${k}`, { method: 'PUT', body: `${k}:1` });
        await res.arrayBuffer();
        assert.equal(res.status, 204);
      }
      const before = await cluster.table();
      for (const n of cluster.nodes) n.pause();
      await sleep(3500); // past the 2 s lease: etcd drops every registration and the leader key
      const [first, ...rest] = cluster.nodes;
      first!.resume();
      // the others come back one after the other while the first one reads every key
      const back = (async () => {
        for (const [i, n] of rest.entries()) {
          await sleep(gapsMs[i]!);
          n.resume();
        }
      })();
      // a key whose holders are all still stopped cannot be served (503 or a timeout: unavailable,
      // as in any replicated store); what must never happen is an answer without it (404) or with
      // another value
      const wrong: string[] = [];
      let unavailable = 0;
      // 6 s of reads, and at least two rounds of every key however slow a loaded machine makes
      // them (a CI run read 300 keys once in 6 s), bounded by 30 s
      const end = Date.now() + 6000;
      const last = Date.now() + 30_000;
      let rounds = 0;
      while ((Date.now() < end || rounds < 2) && Date.now() < last && rounds < 50) {
        rounds++;
        for (const k of keys) {
          try {
            const res = await fetch(`${first!.url}/api/${GROUP}/${k}`, { signal: AbortSignal.timeout(3000) });
            const body = await res.text();
            if (res.status === 503) unavailable++;
            else if (res.status !== 200 || body !== `${k}:1`) wrong.push(`${k}: ${res.status} ${body.slice(0, 40)}`);
          } catch {
            unavailable++;
          }
        }
      }
      await back;
      assert.ok(rounds >= 2, `read every key ${rounds} times (${unavailable} answers unavailable while holders were stopped)`);
      const settled = await until(
        () => cluster.serving(),
        (i) => i.nodes.length === 3 && i.nodes.every((n: { health?: string }) => n.health === 'healthy' || n.health === 'slow') && new Set(i.partitions.owners).size === 3 && i.migrations.every((m: { state: string }) => m.state !== 'running'),
        30_000,
      );
      assert.ok(settled >= 0, 'every node sees every node again, and every one holds partitions');
      const after = await cluster.table();
      assert.deepEqual(after.members.map((m) => m.id).sort(), before.members.map((m) => m.id).sort(), 'the same members');
      // the leader logs its removals in its own feed: read every node's
      const feeds = await Promise.all(cluster.nodes.map(async (n) => ((await (await fetch(`${n.url}/cluster`)).json()) as { events: { message: string }[] }).events));
      const removals = feeds.flat().filter((e) => /^removed /.test(e.message));
      const removed = new Set(removals.flatMap((e) => e.message.slice('removed '.length, e.message.indexOf(' (')).split(', ')));
      // one member seen missing alone is a crash to the leader and is removed at once (its
      // partitions have copies elsewhere); members missing with every copy of some partitions are
      // waited for. Which the leader sees depends on the order they come back in.
      assert.ok(removed.size <= 1, `at most one member removed: ${removals.map((e) => e.message).join('; ')}`);
      console.log(`# ${removed.size === 0 ? 'nobody' : [...removed].join(', ')} removed while they came back`);
      assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} reads of acknowledged writes failed or were wrong`);
      for (const n of cluster.nodes) {
        for (const k of keys) assert.equal(await (await fetch(`${n.url}/api/${GROUP}/${k}`)).text(), `${k}:1`, `GET ${k} via ${n.id}`);
      }
    });
  });
}
