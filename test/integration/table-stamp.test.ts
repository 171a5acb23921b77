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
import { encodeRecords } from '../../src/peer/codec.ts';
import { FROM_HEADER, TABLE_HEADER } from '../../src/peer/client.ts';
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

  /** Store a record in one node's own copy (a replication request with no table stamp: applied as it is). */
  async function plant(n: ChaosNode, key: string, value: string, version: number, headers: Record<string, string> = {}): Promise<number> {
    const res = await fetch(`${n.url}/_jincache/replicate`, { method: 'POST', body: encodeRecords([{ group: GROUP, key, value: Buffer.from(value), version, expiresAt: 0 }]), headers });
    await res.arrayBuffer();
    return res.status;
  }

  async function own(n: ChaosNode, key: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; version: number }> {
    const res = await fetch(`${n.url}/_jincache/ft/record/${GROUP}/${encodeURIComponent(key)}`, { headers });
    return { status: res.status, body: await res.text(), version: Number(res.headers.get('x-jincache-version')) };
  }

  test('a read routed by an older table to a node that no longer holds the key is routed again by the newer one', async () => {
    const key = 'stamp-read';
    const { holders, outsider } = layout(key);
    await put(holders[0]!, key, 'current');
    // the outsider keeps an old copy (as a previous holder does for a while after a move)
    assert.equal(await plant(outsider, key, 'old', 1), 204);
    const path = `${outsider.url}/_jincache/kv/${GROUP}/${encodeURIComponent(key)}`;
    const unstamped = await fetch(path);
    assert.equal(await unstamped.text(), 'old', 'an unstamped peer read is served from the copy here');
    const stale = await fetch(path, { headers: { [TABLE_HEADER]: String(table.version - 1) } });
    assert.equal(stale.status, 200);
    assert.equal(await stale.text(), 'current', 'routed by the newer table, answered by a holder');
    const same = await fetch(path, { headers: { [TABLE_HEADER]: String(table.version) } });
    assert.equal(await same.text(), 'old', 'same table: the sender chose this node knowingly');
  });

  test('a record read by an older table at a node that no longer holds the key is refused with 421', async () => {
    const key = 'stamp-record';
    const { outsider } = layout(key);
    assert.equal(await plant(outsider, key, 'old', 1), 204);
    assert.equal((await own(outsider, key)).status, 200);
    const refused = await own(outsider, key, { [TABLE_HEADER]: String(table.version - 1) });
    assert.equal(refused.status, 421);
    assert.match(refused.body, /misdirected/);
    // a holder answers whatever the stamp
    const { holders } = layout(key);
    await put(holders[0]!, key, 'v');
    assert.equal((await own(holders[1]!, key, { [TABLE_HEADER]: String(table.version - 1) })).status, 200);
  });

  test('records replicated by an older table are sent on to the holders the newer table lists', async () => {
    const key = 'stamp-forward';
    const other = 'stamp-no-forward';
    const { holders, outsider } = layout(key);
    const version = (Date.now() + 60_000) * LOGICAL_BITS;
    assert.equal(await plant(outsider, key, 'forwarded', version, { [TABLE_HEADER]: String(table.version - 1), [FROM_HEADER]: 'node-x' }), 204);
    for (const h of holders) {
      const r = await own(h, key);
      assert.equal(r.status, 200, `${h.id} got the record before the replication was confirmed`);
      assert.equal(r.body, 'forwarded');
      assert.equal(r.version, version);
    }
    // the same table: nothing is sent on
    const l2 = layout(other);
    assert.equal(await plant(l2.outsider, other, 'kept', version, { [TABLE_HEADER]: String(table.version) }), 204);
    for (const h of l2.holders) assert.equal((await own(h, other)).status, 404);
  });

  test('a write stamped with a newer table than the receiver has waits briefly for it, then is coordinated', async () => {
    const key = 'stamp-write';
    const { holders } = layout(key);
    const send = async (stamp: number): Promise<{ status: number; ms: number }> => {
      const started = performance.now();
      const res = await fetch(`${holders[0]!.url}/_jincache/ft/write/put/${GROUP}/${encodeURIComponent(key)}`, {
        method: 'POST',
        body: `by-${stamp}`,
        headers: { 'x-jincache-fence': String(Date.now() + 2000), [TABLE_HEADER]: String(stamp) },
      });
      await res.arrayBuffer();
      return { status: res.status, ms: performance.now() - started };
    };
    const now = await send(table.version);
    assert.equal(now.status, 204);
    const ahead = await send(table.version + 1);
    assert.equal(ahead.status, 204);
    assert.ok(ahead.ms >= 200, `waited for the newer table (${ahead.ms.toFixed(0)} ms)`);
    const r = await own(holders[1]!, key);
    assert.equal(r.body, `by-${table.version + 1}`, 'replicated to the other holder');
  });
});
