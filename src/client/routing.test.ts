import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { partitionOf, slotOf, slotOfBytes } from '../core/placement/hash.ts';
import { createTable, encodeTable, decodeTable } from '../core/placement/table.ts';
import { isJincacheClientError } from './errors.ts';
import { candidates, isHttpBase, parseClusterInfo, partitionFor, routingFromCluster, withFullTable } from './routing.ts';

const P = 16;

/** A /cluster body for nodes a, b, c owning partitions round-robin. */
function clusterBody(version = 3): Record<string, unknown> {
  const ids = ['c', 'a', 'b']; // unsorted on purpose
  return {
    self: 'a',
    ringVersion: version,
    partitionCount: P,
    replicationFactor: 2,
    nodes: ids.map((id, i) => ({ id, address: `http://127.0.0.1:${8001 + i}`, apiAddress: `http://127.0.0.1:${9001 + i}/`, status: 'active', health: 'healthy' })),
    partitions: { owners: Array.from({ length: P }, (_, p) => ['a', 'b', 'c'][p % 3]) },
    groups: [],
  };
}

function keyIn(partition: number): string {
  for (let i = 0; i < 100_000; i++) if (partitionOf(`k${i}`, P) === partition) return `k${i}`;
  throw new Error('no key found');
}

describe('partitionFor', () => {
  test('routes by the hash slot of the key\'s UTF-8 bytes, as the nodes place it', () => {
    const rt = routingFromCluster(parseClusterInfo(clusterBody()));
    for (const key of ['foo', '{user1000}.following', 'ключ', 'é', '😀{tag}x']) {
      const slot = slotOfBytes(Buffer.from(key, 'utf8'));
      assert.equal(partitionFor(rt, key), Math.floor((slot * P) / 16384), key);
    }
    assert.equal(partitionFor(rt, 'foo'), partitionOf('foo', P));
    assert.equal(slotOf('foo'), 12182);
    assert.equal(partitionFor(rt, '{a}1'), partitionFor(rt, '{a}2'));
  });
});

describe('parseClusterInfo', () => {
  test('accepts a node answer and keeps extra fields', () => {
    const info = parseClusterInfo(clusterBody());
    assert.equal(info.ringVersion, 3);
    assert.deepEqual(info.groups, []);
  });

  test('names the bad field', () => {
    const cases: Array<[(b: Record<string, any>) => void, RegExp]> = [
      [(b) => (b.ringVersion = 'x'), /ringVersion/],
      [(b) => (b.partitionCount = 0), /partitionCount/],
      [(b) => (b.partitionCount = 12), /partitionCount must be a divisor of 16384, got 12/],
      [(b) => (b.nodes = {}), /nodes must be an array/],
      [(b) => (b.nodes[1].apiAddress = 'ftp://x'), /nodes\[1\]\.apiAddress/],
      [(b) => (b.nodes[0].id = ''), /nodes\[0\]\.id/],
      [(b) => b.partitions.owners.pop(), /15 entries for 16/],
      [(b) => (b.partitions.owners[4] = 7), /owners\[4\]/],
    ];
    for (const [mutate, re] of cases) {
      const b = clusterBody();
      mutate(b);
      assert.throws(() => parseClusterInfo(b), (e) => isJincacheClientError(e) && e.code === 'bad_response' && re.test(e.message));
    }
    assert.throws(() => parseClusterInfo([]), /expected a JSON object/);
  });
});

describe('routing', () => {
  test('owner first, then the other nodes rotated by partition, down nodes last', () => {
    const rt = routingFromCluster(parseClusterInfo(clusterBody()));
    assert.deepEqual(rt.nodeIds, ['a', 'b', 'c']);
    assert.equal(rt.apis.get('c'), 'http://127.0.0.1:9001');
    const k4 = keyIn(4); // owner b; others from offset 4 % 3 = 1: b, c, a
    assert.deepEqual(candidates(rt, k4, () => false), ['b', 'c', 'a']);
    const k5 = keyIn(5); // owner c; others from offset 5 % 3 = 2: c, a, b
    assert.deepEqual(candidates(rt, k5, () => false), ['c', 'a', 'b']);
    assert.deepEqual(candidates(rt, k5, (id) => id === 'c'), ['a', 'b', 'c']);
    assert.deepEqual(candidates(rt, k5, () => true), ['c', 'a', 'b']);
  });

  test('an unowned partition still has candidates', () => {
    const body = clusterBody();
    (body.partitions as { owners: unknown[] }).owners[2] = null;
    const rt = routingFromCluster(parseClusterInfo(body));
    assert.deepEqual(candidates(rt, keyIn(2), () => false), ['c', 'a', 'b']);
  });

  test('a full table of the same version adds backups; another version is ignored', () => {
    const members = [{ id: 'a', weight: 1 }, { id: 'b', weight: 1 }, { id: 'c', weight: 1 }];
    const table = decodeTable(encodeTable({ ...createTable(members, { partitionCount: P, replicationFactor: 2 }), version: 3 }));
    const body = clusterBody();
    (body.partitions as { owners: unknown[] }).owners = table.assignments.map((h) => h[0]);
    const rt = routingFromCluster(parseClusterInfo(body));
    const full = withFullTable(rt, table);
    assert.equal(full.hasBackups, true);
    const key = keyIn(7);
    const [owner, backup] = table.assignments[7]!;
    const order = candidates(full, key, () => false);
    assert.deepEqual(order.slice(0, 2), [owner, backup]);
    assert.deepEqual(candidates(full, key, (id) => id === owner).slice(0, 1), [backup]);
    assert.equal(withFullTable(rt, { ...table, version: 4 }), rt);
  });

  test('isHttpBase', () => {
    assert.equal(isHttpBase('http://127.0.0.1:8001'), true);
    assert.equal(isHttpBase('http://127.0.0.1:8001/'), true);
    assert.equal(isHttpBase('http://127.0.0.1:8001/api'), false);
    assert.equal(isHttpBase('https://x:1'), false);
    assert.equal(isHttpBase('127.0.0.1:8001'), false);
  });
});
