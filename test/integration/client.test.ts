/**
 * `jincache/client` (issue 7 item 4) against real nodes:
 * - three node processes with static peers: the client learns the table from one seed, sends
 *   each request straight to the key's owner (proved with every node's request counters), maps
 *   server errors to typed errors, times out on a paused node, and survives a kill -9;
 * - three in-process nodes sharing a real etcd (registry, table store, election): the table
 *   changes when a node joins or leaves, and the client follows it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { JincacheClient, isJincacheClientError, type ClusterInfo } from '../../src/client/index.ts';
import { JincacheNode } from '../../src/node/node.ts';
import { parseConfig } from '../../src/config/schema.ts';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { EtcdElection } from '../../src/discovery/etcd-election.ts';
import { EtcdRegistry } from '../../src/discovery/etcd-registry.ts';
import { EtcdTableStore } from '../../src/discovery/etcd-table-store.ts';
import { findSamples, parsePromText } from '../../src/observe/promtext.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { freePort } from '../helpers/ports.ts';
import { clusterOf, waitFor } from '../helpers/wait.ts';

/** Sum of jincache_requests_total{op} at a node: client API requests that arrived there. */
async function requestCount(url: string, op: string): Promise<number> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  const m = parsePromText(await res.text());
  return findSamples(m, 'jincache_requests_total', { op }).reduce((a, s) => a + s.value, 0);
}

/** `count` keys per owner, from the owners list of GET /cluster. */
function keysByOwner(info: ClusterInfo, prefix: string, count: number): Map<string, string[]> {
  const out = new Map<string, string[]>(info.nodes.map((n) => [n.id, []]));
  for (let i = 0; i < 100_000 && [...out.values()].some((k) => k.length < count); i++) {
    const key = `${prefix}:${i}`;
    const owner = info.partitions.owners[partitionOf(key, info.partitionCount)]!;
    const list = out.get(owner)!;
    if (list.length < count) list.push(key);
  }
  return out;
}

describe('client against three node processes', { timeout: 60_000 }, () => {
  let cluster: TestCluster;
  let client: JincacheClient;
  let info: ClusterInfo;
  let keys: Map<string, string[]>;
  const urlOf = (id: string): string => cluster.nodes.find((n) => n.id === id)!.url;

  before(async () => {
    cluster = await startCluster({ nodes: 3, config: { log: { level: 'warn' } } });
    // one seed is enough: the client learns the other two from it
    client = new JincacheClient({ nodes: [cluster.nodes[0]!.url], timeoutMs: 1500, connectTimeoutMs: 500 });
    info = await client.cluster();
    keys = keysByOwner(info, 'user', 20);
  });

  after(async () => {
    await client?.close();
    await cluster?.stop();
  });

  test('learns the table: the owner of every key matches the nodes', async () => {
    assert.equal(await client.refresh(), info.ringVersion);
    assert.equal(client.tableVersion(), info.ringVersion);
    for (const [owner, list] of keys) {
      for (const key of list) assert.equal((await client.route(key)).owner, owner, key);
    }
    // every node agrees on the owners the client learned from node 1
    for (const n of cluster.nodes) {
      const other = (await (await fetch(`${n.url}/cluster`)).json()) as ClusterInfo;
      assert.deepEqual(other.partitions.owners, info.partitions.owners);
    }
  });

  test('put/get/delete round-trip, strings and bytes, TTL', async () => {
    await client.put('greeting', 'hello');
    assert.equal(await client.getString('greeting'), 'hello');
    const bytes = Buffer.from([0, 255, 1, 254]);
    await client.put('bytes', bytes);
    assert.deepEqual(await client.get('bytes'), bytes);
    await client.delete('greeting');
    assert.equal(await client.get('greeting'), null);
    await client.delete('greeting'); // deleting an absent key is fine
    await client.put('brief', 'x', { ttlSeconds: 0.3 });
    assert.equal(await client.getString('brief'), 'x');
    await sleep(450);
    assert.equal(await client.get('brief'), null);
  });

  test('each request goes straight to the owner', async () => {
    const all = [...keys.values()].flat();
    for (const key of all) await client.put(key, `v:${key}`);
    const before0 = new Map(await Promise.all(cluster.nodes.map(async (n) => [n.id, await requestCount(n.url, 'get')] as const)));
    for (const key of all) assert.equal(await client.getString(key), `v:${key}`);
    for (const n of cluster.nodes) {
      const grew = (await requestCount(n.url, 'get')) - before0.get(n.id)!;
      // a request that reached a non-owner would have been counted there, not at the owner
      assert.equal(grew, keys.get(n.id)!.length, `GETs arriving at ${n.id}`);
    }
    // the counters can tell: the same GETs sent to node 1 by hand are all counted at node 1
    const n1 = cluster.nodes[0]!;
    const at1 = await requestCount(n1.url, 'get');
    for (const key of all) assert.equal((await fetch(`${n1.url}/api/scores/${encodeURIComponent(key)}`)).status, 200);
    assert.equal((await requestCount(n1.url, 'get')) - at1, all.length);
  });

  test('server errors become typed errors', async () => {
    await assert.rejects(client.get('k', { group: 'no-such-group' }), (e) => isJincacheClientError(e) && e.code === 'unknown_group' && e.status === 404 && !e.retryable);
    await assert.rejects(client.put('k', 'v', { ttlSeconds: -1 }), (e) => isJincacheClientError(e) && e.code === 'bad_ttl' && e.status === 400);
    await assert.rejects(client.put('k'.repeat(2000), 'v'), (e) => isJincacheClientError(e) && e.code === 'key_too_large' && e.status === 400);
  });

  test('a paused owner costs a timeout error, not a hang', async () => {
    const victim = cluster.nodes[1]!;
    const key = keys.get(victim.id)![0]!;
    victim.pause();
    try {
      const began = Date.now();
      await assert.rejects(client.get(key), (e) => isJincacheClientError(e) && e.code === 'timeout' && e.retryable);
      const took = Date.now() - began;
      assert.ok(took >= 1400 && took < 2500, `timed out after ${took} ms (timeoutMs 1500)`);
    } finally {
      victim.resume();
    }
    assert.equal(await client.getString(key), `v:${key}`);
    // back from a pause, a node answers from its own copy only once it has confirmed it with the
    // other holders (trust.ts): the next test kills one of them, so wait for that first
    await waitFor(`${victim.id} trusts its copy again`, async () => (await clusterOf(victim.url)).trust?.kind === 'trusted', 10_000);
  });

  test('kill -9 of a node: keys of the survivors never fail, the dead node\'s keys answer or fail typed, fast', async (t) => {
    const dead = cluster.nodes[2]!;
    // a second client whose only seed is the node about to die
    const seededOnDead = new JincacheClient({ nodes: [dead.url], timeoutMs: 1500, connectTimeoutMs: 500 });
    try {
      await seededOnDead.refresh();
      await dead.stop('SIGKILL');
      const survivors = [...keys].filter(([id]) => id !== dead.id).flatMap(([, list]) => list);
      // reads and idempotent writes of keys owned by live nodes: not a single failed call
      for (const c of [client, seededOnDead]) {
        for (const key of survivors) assert.equal(await c.getString(key), `v:${key}`, key);
        for (const key of survivors.slice(0, 10)) await c.put(key, `v:${key}`);
      }
      // the client that only knew the dead seed still re-learns the table from the survivors
      assert.equal(await seededOnDead.refresh(), info.ringVersion);

      // The dead node's keys: the client cannot reach the owner, so it fails over to another
      // node, which either serves the key from a replica (server-side failover, being added by
      // the fault-tolerance work) or, without it, cannot reach the owner either and answers
      // 503 peer_unavailable. Either way the client must answer within its timeout with the
      // right value or a typed, retryable error: never a wrong value, an untyped error or a hang.
      const outcomes = { value: 0, peerUnavailable: 0 };
      for (const key of keys.get(dead.id)!) {
        const began = Date.now();
        try {
          assert.equal(await client.getString(key), `v:${key}`, key);
          outcomes.value++;
        } catch (e) {
          assert.ok(isJincacheClientError(e) && e.code === 'peer_unavailable' && e.status === 503 && e.retryable, `typed error for ${key}: ${String(e)}`);
          outcomes.peerUnavailable++;
        }
        assert.ok(Date.now() - began < 1500, 'answered within the timeout');
      }
      t.diagnostic(`keys of the dead node: ${outcomes.value} served by a replica, ${outcomes.peerUnavailable} failed with peer_unavailable`);
      const routed = await client.route(keys.get(dead.id)![0]!);
      assert.equal(routed.owner, dead.id);
      assert.equal(routed.candidates.at(-1), dead.id, 'a node that refused connections is tried last');
    } finally {
      await seededOnDead.close();
    }
  });

  test('no reachable node: unavailable after trying them all', async () => {
    const orphan = new JincacheClient({ nodes: [`http://127.0.0.1:${await freePort()}`], timeoutMs: 1000 });
    try {
      await assert.rejects(orphan.get('k'), (e) => isJincacheClientError(e) && e.code === 'unavailable' && e.status === undefined);
    } finally {
      await orphan.close();
    }
    await client.close();
    await assert.rejects(client.get('k'), (e) => isJincacheClientError(e) && e.code === 'closed');
  });
});

describe('client follows table changes (in-process nodes on a real etcd)', { timeout: 60_000 }, () => {
  let etcd: EtcdCluster;
  const prefix = '/jc-client-test';
  interface Running {
    node: JincacheNode;
    election: EtcdElection;
    store: EtcdTableStore;
    url: string;
  }
  const running = new Map<string, Running>();

  async function startNode(id: string): Promise<Running> {
    const port = await freePort();
    const config = parseConfig({ node: { id }, server: { port }, log: { level: 'silent' }, etcd: { endpoints: etcd.endpoints, prefix, lease_ttl: '2s' } });
    const conn = { endpoints: etcd.endpoints, prefix };
    const election = new EtcdElection({ ...conn, nodeId: id, ttlSeconds: 2 });
    // the node does not start the election itself (node.ts): the composition here does
    await election.start();
    const store = new EtcdTableStore(conn);
    const node = new JincacheNode({ config, registry: new EtcdRegistry({ ...conn, leaseTtlMs: 2000 }), tableStore: store, election });
    await node.start();
    const r = { node, election, store, url: `http://127.0.0.1:${port}` };
    running.set(id, r);
    return r;
  }

  async function stopNode(id: string): Promise<void> {
    const r = running.get(id)!;
    running.delete(id);
    await r.node.stop();
    // the node stops its registry but not the store and election it was handed
    await r.election.stop();
    await r.store.stop();
  }

  /** Every running node has a table of at least `version` with exactly `members`. */
  async function tablesSettle(members: string[]): Promise<number> {
    let version = 0;
    await waitFor(`every node has a table of ${members.join(',')}`, () => {
      const tables = [...running.values()].map((r) => r.node.table());
      const ok = tables.every((t) => t.members.map((m) => m.id).join(',') === members.join(',') && t.version === tables[0]!.version);
      version = tables[0]!.version;
      return ok;
    }, 10_000);
    return version;
  }

  before(async () => {
    etcd = await startEtcd();
  });

  after(async () => {
    for (const id of [...running.keys()]) await stopNode(id).catch(() => {});
    await etcd?.stop();
  });

  test('a join is picked up by the refresh interval and a leave at once', async () => {
    await startNode('n1');
    await startNode('n2');
    const v1 = await tablesSettle(['n1', 'n2']);
    const client = new JincacheClient({ nodes: [running.get('n1')!.url], refreshIntervalMs: 200, timeoutMs: 2000 });
    try {
      assert.equal(await client.refresh(), v1);

      // join: the nodes move to a new table; the interval refresh follows without any request
      await startNode('n3');
      const v2 = await tablesSettle(['n1', 'n2', 'n3']);
      assert.ok(v2 > v1);
      await waitFor('the client learns the new table', () => client.tableVersion() === v2, 3000);
      const table = running.get('n1')!.node.table();
      const byOwner = new Map<string, string[]>([['n1', []], ['n2', []], ['n3', []]]);
      for (let i = 0; i < 30; i++) {
        const key = `join:${i}`;
        const owner = table.assignments[partitionOf(key, table.partitionCount)]![0]!;
        byOwner.get(owner)!.push(key);
        assert.equal((await client.route(key)).owner, owner, key);
      }
      assert.ok(byOwner.get('n3')!.length > 0, 'the new node owns some of the keys');
      for (const list of byOwner.values()) for (const key of list) await client.put(key, `v:${key}`);
      // straight to the owners under the new table, the new node included
      const before0 = new Map(await Promise.all([...running].map(async ([id, r]) => [id, await requestCount(r.url, 'get')] as const)));
      for (const list of byOwner.values()) for (const key of list) assert.equal(await client.getString(key), `v:${key}`);
      for (const [id, r] of running) assert.equal((await requestCount(r.url, 'get')) - before0.get(id)!, byOwner.get(id)!.length, `GETs at ${id}`);

      // leave: n3 goes; a client without an interval still follows, because the refused
      // connection makes it re-learn at once; no call fails (n3's keys were replicated)
      const lazy = new JincacheClient({ nodes: [running.get('n2')!.url], refreshIntervalMs: 0, timeoutMs: 2000 });
      try {
        assert.equal(await lazy.refresh(), v2);
        await stopNode('n3');
        const v3 = await tablesSettle(['n1', 'n2']);
        assert.equal(lazy.tableVersion(), v2, 'nothing told the lazy client yet');
        for (const key of byOwner.get('n3')!) assert.equal(await lazy.getString(key), `v:${key}`, key);
        await waitFor('the lazy client re-learns after the refused connection', () => lazy.tableVersion() === v3, 2000);
        for (const key of byOwner.get('n3')!) assert.notEqual((await lazy.route(key)).owner, 'n3');
      } finally {
        await lazy.close();
      }
    } finally {
      await client.close();
    }
  });
});
