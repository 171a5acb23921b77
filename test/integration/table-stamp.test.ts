/**
 * Peer requests carry the table version their sender routed by, and a receiver with a newer
 * table corrects what the older one got wrong (src/cluster/router.ts). On 3 real nodes and real
 * etcd, replication factor 2, so each partition has one node that does not hold it: requests are
 * sent to that node as a node with a stale table would send them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { holdersOf, type PartitionTable } from '../../src/core/placement/table.ts';
import { LOGICAL_BITS } from '../../src/core/version.ts';
import { NO_EXPIRY } from '../../src/cache/ops.ts';
import { Read, Record, Replicate, Write } from '../../src/peer/messages.ts';
import { callPeer } from '../helpers/peer.ts';
import { GROUP, startSettledCluster, type ChaosCluster, type ChaosNode, type SettledCluster } from '../chaos/lib.ts';

const CONFIG = {
  replication: { factor: 2, sync: true },
  fault_tolerance: { heartbeat_interval: '250ms', request_timeout: '1s' },
};

describe('table-version stamps on peer requests (3 nodes, real etcd)', { timeout: 60_000 }, () => {
  let env: SettledCluster;
  let cluster: ChaosCluster;
  let table: PartitionTable;

  before(async () => {
    env = await startSettledCluster({ nodes: 3, config: CONFIG });
    cluster = env.cluster;
    table = await cluster.table();
  });

  after(() => env?.stop());

  /** A key, its holders, and the node that does not hold it. */
  function layout(key: string): { holders: ChaosNode[]; outsider: ChaosNode } {
    const ids = holdersOf(table, partitionOf(key, table.partitionCount));
    const holders = ids.map((id) => cluster.nodes.find((n) => n.id === id)!);
    const outsider = cluster.nodes.find((n) => !ids.includes(n.id))!;
    return { holders, outsider };
  }

  async function put(n: ChaosNode, key: string, value: string): Promise<void> {
    const res = await fetch(`${n.url}/api/${GROUP}/${encodeURIComponent(key)}`, { method: 'PUT', body: value });
    await res.arrayBuffer();
    assert.equal(res.status, 204);
  }

  /** Store a record in one node's own copy (a replication with no table stamp: applied as it is). */
  async function plant(n: ChaosNode, key: string, value: string, version: number, meta: { table?: number; from?: string } = {}): Promise<void> {
    await callPeer(Replicate, n.url, [{ group: GROUP, key, value: Buffer.from(value), version, expiresAt: 0 }], meta);
  }

  async function own(n: ChaosNode, key: string, meta: { table?: number } = {}): Promise<{ kind: string; body: string | null; version: number }> {
    const a = await callPeer(Record, n.url, { group: GROUP, key }, meta);
    if (a.kind !== 'record') return { kind: a.kind, body: null, version: 0 };
    return { kind: a.kind, body: a.record.value?.toString() ?? null, version: a.record.version };
  }

  async function read(n: ChaosNode, key: string, meta: { table?: number } = {}): Promise<string | null> {
    const a = await callPeer(Read, n.url, { group: GROUP, key }, meta);
    return a.found ? a.value.toString() : null;
  }

  test('a read routed by an older table to a node that no longer holds the key is routed again by the newer one', async () => {
    const key = 'stamp-read';
    const { holders, outsider } = layout(key);
    await put(holders[0]!, key, 'current');
    // the outsider keeps an old copy (as a previous holder does for a while after a move)
    await plant(outsider, key, 'old', 1);
    assert.equal(await read(outsider, key, { table: table.version - 1 }), 'current', 'routed by the newer table, answered by a holder');
    // a node that is not the owner asks the owner's copy before it answers from its own
    // (router.ts OWNER_ASK_MS), whatever the stamp: its old copy never answers while the owner can
    // (that the stale stamp itself re-routes is router.test's "a read routed by an older table")
    assert.equal(await read(outsider, key), 'current', 'unstamped');
    assert.equal(await read(outsider, key, { table: table.version }), 'current', 'same table');
  });

  test('a record read by an older table at a node that no longer holds the key is answered misdirected', async () => {
    const key = 'stamp-record';
    const { outsider } = layout(key);
    await plant(outsider, key, 'old', 1);
    assert.equal((await own(outsider, key)).kind, 'record');
    assert.equal((await own(outsider, key, { table: table.version - 1 })).kind, 'misdirected');
    // a holder answers whatever the stamp
    const { holders } = layout(key);
    await put(holders[0]!, key, 'v');
    assert.equal((await own(holders[1]!, key, { table: table.version - 1 })).kind, 'record');
  });

  test('records replicated by an older table are sent on to the holders the newer table lists', async () => {
    const key = 'stamp-forward';
    const other = 'stamp-no-forward';
    const { holders, outsider } = layout(key);
    const version = (Date.now() + 60_000) * LOGICAL_BITS;
    await plant(outsider, key, 'forwarded', version, { table: table.version - 1, from: 'node-x' });
    for (const h of holders) {
      const r = await own(h, key);
      assert.equal(r.kind, 'record', `${h.id} got the record before the replication was confirmed`);
      assert.equal(r.body, 'forwarded');
      assert.equal(r.version, version);
    }
    // the same table: nothing is sent on
    const l2 = layout(other);
    await plant(l2.outsider, other, 'kept', version, { table: table.version });
    for (const h of l2.holders) assert.equal((await own(h, other)).kind, 'none');
  });

  test('a write stamped with a newer table than the receiver has waits briefly for it, then is coordinated', async () => {
    const key = 'stamp-write';
    const { holders } = layout(key);
    const send = async (stamp: number): Promise<{ applied: boolean; ms: number }> => {
      const started = performance.now();
      const out = await callPeer(Write, holders[0]!.url, { group: GROUP, key, op: { op: 'set', value: Buffer.from(`by-${stamp}`), expiry: NO_EXPIRY } }, { table: stamp, deadline: Date.now() + 2000 });
      return { applied: out.applied, ms: performance.now() - started };
    };
    const now = await send(table.version);
    assert.equal(now.applied, true);
    const ahead = await send(table.version + 1);
    assert.equal(ahead.applied, true);
    assert.ok(ahead.ms >= 200, `waited for the newer table (${ahead.ms.toFixed(0)} ms)`);
    const r = await own(holders[1]!, key);
    assert.equal(r.body, `by-${table.version + 1}`, 'replicated to the other holder');
  });
});
