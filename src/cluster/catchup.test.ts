import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Group } from '../cache/group.ts';
import { partitionOf as hashPartition } from '../core/placement/hash.ts';
import { createTable, holdersOf, type PartitionTable } from '../core/placement/table.ts';
import type { Clock, NodeId, NodeInfo } from '../core/types.ts';
import { HybridClock } from '../core/version.ts';
import type { PeerResponse } from '../peer/client.ts';
import { CATCHUP_ROUTE, CatchUp } from './catchup.ts';
import { LocalData } from './local-data.ts';
import type { NodeContext } from './plugin.ts';

const PARTITIONS = 16;
const clock: Clock = { now: () => Date.now() };
const partitionOf = (key: string): number => hashPartition(key, PARTITIONS);

interface FakeNode {
  id: NodeId;
  local: LocalData;
  catchup: CatchUp;
  down: boolean;
  pages: number;
}

/** Nodes wired in memory: a peer request to `addr-X` is answered by X's CatchUp.serve. */
function cluster(ids: NodeId[], pageRecords: number, minVersion?: (group: string, p: number) => number): { nodes: Map<NodeId, FakeNode>; table: PartitionTable } {
  const table = createTable(ids.map((id) => ({ id, weight: 1 })), { partitionCount: PARTITIONS, replicationFactor: 2 });
  const nodes = new Map<NodeId, FakeNode>();
  const members: NodeInfo[] = ids.map((id) => ({ id, address: `http://addr-${id}`, status: 'active', last_seen: 0 }));
  for (const id of ids) {
    const groups = new Map([['g', new Group({ name: 'g', maxBytes: 1 << 24, clock, partitionOf })]]);
    const local = new LocalData({ groups, hlc: new HybridClock(clock), clock });
    const ctx = {
      id,
      config: { fault_tolerance: { request_timeout: 1000 }, cache: { max_value_bytes: 1 << 20 } },
      logger: { debug() {}, info() {}, warn() {} },
      groups,
      local,
      storage: undefined,
      table: () => table,
      member: (m: NodeId) => members.find((x) => x.id === m),
      peers: {
        request: async (address: string, req: { path: string }): Promise<PeerResponse> => {
          const target = nodes.get(address.replace('http://addr-', ''))!;
          if (target.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
          assert.ok(req.path.startsWith(CATCHUP_ROUTE));
          target.pages++;
          const out = await target.catchup.serve(req.path);
          return { status: out.status, headers: out.headers, body: out.body };
        },
      },
    } as unknown as NodeContext;
    nodes.set(id, { id, local, catchup: new CatchUp({ ctx, pageRecords, parallel: 2, attempts: 2, ...(minVersion !== undefined ? { minVersion } : {}) }), down: false, pages: 0 });
  }
  return { nodes, table };
}

describe('CatchUp', () => {
  test('pulls values and tombstones of the partitions it holds from the other holders, in pages, last writer wins', async () => {
    const { nodes, table } = cluster(['a', 'b', 'c'], 7);
    const a = nodes.get('a')!;
    const partitions = CatchUp.heldPartitions({ id: 'a', table: () => table } as unknown as NodeContext);
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
    const { nodes, table } = cluster(['a', 'b', 'c'], 100);
    const a = nodes.get('a')!;
    nodes.get('b')!.down = true;
    const partitions = CatchUp.heldPartitions({ id: 'a', table: () => table } as unknown as NodeContext);
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
    const partitions = CatchUp.heldPartitions({ id: 'a', table: () => table } as unknown as NodeContext);
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

  test('serve: key order, cursor, min version, bad parameters', async () => {
    const { nodes } = cluster(['a', 'b'], 10);
    const b = nodes.get('b')!;
    const keys = Array.from({ length: 300 }, (_, i) => `key-${i}`).filter((k) => partitionOf(k) === 3);
    keys.forEach((key, i) => b.local.apply([{ group: 'g', key, value: Buffer.from('x'), version: 10 + i, expiresAt: 0 }]));
    const page = await b.catchup.serve(`${CATCHUP_ROUTE}?g=g&p=3&min=0&limit=5`);
    assert.equal(page.headers['x-jincache-more'], '1');
    const sorted = [...keys].sort();
    assert.equal(decodeURIComponent(page.headers['x-jincache-next']!), sorted[4]);
    const rest = await b.catchup.serve(`${CATCHUP_ROUTE}?g=g&p=3&min=0&limit=1000&after=${encodeURIComponent(sorted[4]!)}`);
    assert.equal(rest.headers['x-jincache-more'], '0');
    const { decodeRecords } = await import('../peer/codec.ts');
    assert.equal(decodeRecords(rest.body, { maxRecords: 10_000, maxValueBytes: 100 }).length, keys.length - 5);
    const recent = await b.catchup.serve(`${CATCHUP_ROUTE}?g=g&p=3&min=${10 + keys.length - 3}&limit=1000`);
    assert.equal(decodeRecords(recent.body, { maxRecords: 10_000, maxValueBytes: 100 }).length, 2);
    await assert.rejects(b.catchup.serve(`${CATCHUP_ROUTE}?g=nope&p=3`), /unknown group/);
    await assert.rejects(b.catchup.serve(`${CATCHUP_ROUTE}?g=g&p=99`), /partition/);
  });
});
