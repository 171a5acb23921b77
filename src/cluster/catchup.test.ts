import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Group } from '../cache/group.ts';
import { partitionOf as hashPartition } from '../core/placement/hash.ts';
import { createTable, holdersOf, type PartitionTable } from '../core/placement/table.ts';
import type { Clock, NodeId, NodeInfo } from '../core/types.ts';
import { HybridClock } from '../core/version.ts';
import { CatchUpPage } from '../peer/messages.ts';
import { PeerServer } from '../peer/server.ts';
import { FakeNetwork } from '../peer/testing.ts';
import { CatchUp, serveCatchUpPages } from './catchup.ts';
import { LocalData } from './local-data.ts';
import type { Members } from './membership.ts';
import { Peers } from './peers.ts';

const PARTITIONS = 16;
const clock: Clock = { now: () => Date.now() };
const partitionOf = (key: string): number => hashPartition(key, PARTITIONS);

interface FakeNode {
  id: NodeId;
  local: LocalData;
  catchup: CatchUp;
  server: PeerServer;
}

/** Nodes wired in memory (FakeNetwork): a message to `addr-X` is served by X's PeerServer. */
function cluster(ids: NodeId[], pageRecords: number, minVersion?: (group: string, p: number) => number): { nodes: Map<NodeId, FakeNode>; table: PartitionTable; net: FakeNetwork } {
  const table = createTable(ids.map((id) => ({ id, weight: 1 })), { partitionCount: PARTITIONS, replicationFactor: 2 });
  const nodes = new Map<NodeId, FakeNode>();
  const infos: NodeInfo[] = ids.map((id) => ({ id, address: `addr-${id}`, status: 'active', last_seen: 0 }));
  const net = new FakeNetwork();
  for (const id of ids) {
    const groups = new Map([['g', new Group({ name: 'g', maxBytes: 1 << 24, clock, partitionOf })]]);
    const local = new LocalData({ groups, hlc: new HybridClock(clock), clock });
    const server = new PeerServer();
    serveCatchUpPages(server, { groups, partitionCount: () => PARTITIONS });
    net.attach(`addr-${id}`, server);
    const members: Members = { self: id, member: (m) => infos.find((x) => x.id === m), list: () => infos, onChange: () => () => {} };
    const peers = new Peers({ client: net, members, tableVersion: () => table.version, breakers: { call: (_peer, fn) => fn() } });
    const catchup = new CatchUp({ self: id, tables: { table: () => table }, members, groups: () => groups.keys(), local, peers, requestTimeoutMs: () => 1000, pageRecords, parallel: 2, attempts: 2, ...(minVersion !== undefined ? { minVersion } : {}) });
    nodes.set(id, { id, local, catchup, server });
  }
  return { nodes, table, net };
}

describe('CatchUp', () => {
  test('pulls values and tombstones of the partitions it holds from the other holders, in pages, last writer wins', async () => {
    const { nodes, table } = cluster(['a', 'b', 'c'], 7);
    const a = nodes.get('a')!;
    const partitions = CatchUp.heldPartitions(table, 'a');
    assert.ok(partitions.length > 0);
    // the other holders hold what was written while 'a' was away
    const expected = new Map<string, { value: string | null; version: number }>();
    for (let i = 0; i < 400; i++) {
      const key = `k${i}`;
      const p = partitionOf(key);
      const holders = holdersOf(table, p);
      if (!holders.includes('a')) continue;
      const version = 1000 + i;
      const value = i % 5 === 0 ? null : `v${i}`;
      for (const h of holders) if (h !== 'a') nodes.get(h)!.local.apply([{ group: 'g', key, value: value === null ? null : Buffer.from(value), version, expiresAt: 0 }]);
      expected.set(key, { value, version });
    }
    // 'a' kept a newer write of one key and an older one of another
    const [newer, older] = [...expected.keys()].filter((k) => expected.get(k)!.value !== null);
    a.local.apply([{ group: 'g', key: newer!, value: Buffer.from('mine'), version: 99_999, expiresAt: 0 }]);
    a.local.apply([{ group: 'g', key: older!, value: Buffer.from('stale'), version: 1, expiresAt: 0 }]);

    a.catchup.mark(partitions);
    assert.ok(partitions.every((p) => a.catchup.behind(p)));
    const report = await a.catchup.run();
    assert.equal(report.partitions, partitions.length);
    assert.equal(report.caughtUp, partitions.length);
    assert.deepEqual(report.failed, []);
    assert.equal(report.full, true);
    assert.ok(report.pages > partitions.length, `paged (${report.pages} pages of 7 records)`);
    assert.equal(a.catchup.pending(), 0);
    for (const [key, want] of expected) {
      const got = a.local.record('g', key);
      if (key === newer) {
        assert.equal(got?.value?.toString(), 'mine');
        continue;
      }
      assert.ok(got !== undefined, `${key} caught up`);
      assert.equal(got.version, want.version, key);
      assert.equal(got.value === null ? null : got.value.toString(), want.value, key);
    }
  });

  test('a holder that does not answer: the partition is pulled from another holder, or given up after the attempts', async () => {
    const { nodes, table, net } = cluster(['a', 'b', 'c'], 100);
    const a = nodes.get('a')!;
    net.down.add('addr-b');
    const partitions = CatchUp.heldPartitions(table, 'a');
    a.catchup.mark(partitions);
    const report = await a.catchup.run();
    // with factor 2 every partition has one other holder: those held with 'b' fail
    const withB = partitions.filter((p) => holdersOf(table, p).includes('b'));
    assert.ok(withB.length > 0);
    assert.deepEqual(report.failed, withB);
    assert.equal(report.caughtUp, partitions.length - withB.length);
    // given up: reads are no longer held back (nobody else has the data)
    assert.equal(a.catchup.pending(), 0);
  });

  test('minVersion: only records above the given version are pulled (the repair tail pass)', async () => {
    const { nodes, table } = cluster(['a', 'b'], 50, () => 1500);
    const a = nodes.get('a')!;
    const b = nodes.get('b')!;
    const partitions = CatchUp.heldPartitions(table, 'a');
    let newer = 0;
    for (let i = 0; i < 200; i++) {
      const key = `t${i}`;
      const version = 1000 + i * 5; // half at or below 1500, half above
      b.local.apply([{ group: 'g', key, value: Buffer.from(`v${i}`), version, expiresAt: 0 }]);
      if (version > 1500 && holdersOf(table, partitionOf(key)).includes('a')) newer++;
    }
    assert.ok(newer > 0);
    a.catchup.mark(partitions);
    const report = await a.catchup.run();
    assert.equal(report.records, newer);
    for (let i = 0; i < 200; i++) {
      const key = `t${i}`;
      if (!holdersOf(table, partitionOf(key)).includes('a')) continue;
      assert.equal(a.local.record('g', key) !== undefined, 1000 + i * 5 > 1500, key);
    }
  });

  test('serveCatchUpPages: key order, cursor, min version, bad parameters', async () => {
    const { nodes, net } = cluster(['a', 'b'], 10);
    const b = nodes.get('b')!;
    const keys = Array.from({ length: 300 }, (_, i) => `key-${i}`).filter((k) => partitionOf(k) === 3);
    keys.forEach((key, i) => b.local.apply([{ group: 'g', key, value: Buffer.from('x'), version: 10 + i, expiresAt: 0 }]));
    const ask = (req: Partial<Parameters<typeof CatchUpPage.encodeRequest>[0]>) =>
      net.call(CatchUpPage, 'addr-b', { group: 'g', partition: 3, min: 0, after: null, limit: 5, bytes: 1 << 20, ...req }, { deadline: Date.now() + 1000 });
    const page = await ask({});
    const sorted = [...keys].sort();
    assert.deepEqual(page.records.map((r) => r.key), sorted.slice(0, 5));
    assert.equal(page.next, sorted[4]);
    const rest = await ask({ limit: 1000, after: sorted[4]! });
    assert.equal(rest.next, null);
    assert.equal(rest.records.length, keys.length - 5);
    const recent = await ask({ limit: 1000, min: 10 + keys.length - 3 });
    assert.equal(recent.records.length, 2);
    await assert.rejects(ask({ group: 'nope' }), /unknown group/);
    await assert.rejects(ask({ partition: 99 }), /partition/);
    await assert.rejects(ask({ limit: 0 }), /limit/);
  });
});
