import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Member } from '../types.ts';
import { isPlacementError } from './errors.ts';
import { defaultHash } from './hash.ts';
import { DEFAULT_VNODES_PER_WEIGHT, HashRing, vnodeCount } from './ring.ts';

const members = (n: number, weight = 1): Member[] => Array.from({ length: n }, (_, i) => ({ id: `node-${i}`, weight }));
const sampleKeys = Array.from({ length: 4000 }, (_, i) => `key-${i}`);

function lookups(ring: HashRing): (string | undefined)[] {
  return sampleKeys.map((k) => ring.lookup(k));
}

describe('HashRing', () => {
  it('places round(150 · w) virtual nodes per node, at least one', () => {
    assert.equal(DEFAULT_VNODES_PER_WEIGHT, 150);
    assert.equal(vnodeCount(1, 150), 150);
    assert.equal(vnodeCount(2.5, 150), 375);
    assert.equal(vnodeCount(0.001, 150), 1);
    const ring = new HashRing([
      { id: 'a', weight: 1 },
      { id: 'b', weight: 0.5 },
    ]);
    assert.equal(ring.pointCount, 150 + 75);
    assert.equal(ring.nodeCount, 2);
  });

  it('routes by hand-computable points with an injected hash (groupcache style)', () => {
    const table: Record<string, number> = { 'a#0': 100, 'b#0': 200, 'c#0': 300 };
    const hash = (s: string): number => table[s] ?? Number.parseInt(s, 10);
    const ring = new HashRing(
      [
        { id: 'c', weight: 1 },
        { id: 'a', weight: 1 },
        { id: 'b', weight: 1 },
      ],
      { vnodesPerWeight: 1, hash },
    );
    assert.equal(ring.lookup('50'), 'a');
    assert.equal(ring.lookup('100'), 'a'); // a point owns its own position
    assert.equal(ring.lookup('101'), 'b');
    assert.equal(ring.lookup('250'), 'c');
    assert.equal(ring.lookup('301'), 'a'); // wraps around
    assert.deepEqual(ring.preference(250, 3), ['c', 'a', 'b']);
    assert.deepEqual(ring.preference(250, 10), ['c', 'a', 'b']);
    assert.deepEqual(ring.preference(250, 0), []);
  });

  it('exposes its sorted points for bulk walks', () => {
    const ring = new HashRing(members(5), { vnodesPerWeight: 10 });
    const { points, owners, ids } = ring.view();
    assert.equal(points.length, 50);
    for (let i = 1; i < points.length; i++) assert.ok(points[i - 1]! <= points[i]!);
    for (const key of sampleKeys.slice(0, 100)) {
      assert.equal(ids[owners[ring.indexOf(defaultHash(key))]!], ring.lookup(key));
    }
    assert.equal(ring.indexOf(0xffffffff), points[points.length - 1] === 0xffffffff ? points.length - 1 : 0);
  });

  it('is empty-safe', () => {
    const ring = new HashRing();
    assert.equal(ring.lookup('x'), undefined);
    assert.deepEqual(ring.preference(123, 3), []);
    assert.deepEqual(ring.nodes(), []);
  });

  it('preference lists distinct nodes, starting at the lookup owner', () => {
    const ring = new HashRing(members(20));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 25 }), (point, count) => {
        const pref = ring.preference(point, count);
        assert.equal(pref.length, Math.min(count, 20));
        assert.equal(new Set(pref).size, pref.length);
        // longer lists extend shorter ones (the order is a property of the point, not of count)
        assert.deepEqual(ring.preference(point, 20).slice(0, pref.length), pref);
      }),
      { numRuns: 300 },
    );
    for (const key of sampleKeys.slice(0, 200)) {
      assert.equal(ring.preference(defaultHash(key), 1)[0], ring.lookup(key));
    }
  });

  it('does not depend on insertion order or on how it got there (incremental = from scratch)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), n: fc.integer({ min: 0, max: 11 }), w: fc.double({ min: 0.2, max: 3, noNaN: true }) }),
      fc.record({ kind: fc.constant('remove' as const), n: fc.integer({ min: 0, max: 11 }) }),
      fc.record({ kind: fc.constant('weight' as const), n: fc.integer({ min: 0, max: 11 }), w: fc.double({ min: 0.2, max: 3, noNaN: true }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 20 }), (ops) => {
        const ring = new HashRing([], { vnodesPerWeight: 40 });
        const state = new Map<string, number>();
        for (const o of ops) {
          const id = `n${o.n}`;
          if (o.kind === 'add' && !state.has(id)) {
            ring.addNode(id, o.w);
            state.set(id, o.w);
          } else if (o.kind === 'remove' && state.has(id)) {
            ring.removeNode(id);
            state.delete(id);
          } else if (o.kind === 'weight' && state.has(id)) {
            ring.setWeight(id, o.w);
            state.set(id, o.w);
          }
        }
        const finalMembers = [...state].map(([id, weight]) => ({ id, weight }));
        const fresh = new HashRing(finalMembers.reverse(), { vnodesPerWeight: 40 });
        assert.deepEqual(ring.nodes(), fresh.nodes());
        assert.equal(ring.pointCount, fresh.pointCount);
        for (let p = 0; p < 2 ** 32; p += 2 ** 32 / 64) assert.deepEqual(ring.preference(p, 4), fresh.preference(p, 4));
        assert.deepEqual(lookups(ring).slice(0, 500), lookups(fresh).slice(0, 500));
      }),
      { numRuns: 60 },
    );
  });

  it('breaks ties between equal points the same way whatever the history', () => {
    // a hash with 16 values makes nearly every point collide
    const coarse = (s: string): number => (defaultHash(s) % 16) * 0x10000000;
    fc.assert(
      fc.property(fc.shuffledSubarray(members(8), { minLength: 2 }), (order) => {
        const incremental = new HashRing([], { vnodesPerWeight: 5, hash: coarse });
        for (const m of order) incremental.addNode(m.id, m.weight);
        incremental.addNode('extra', 1);
        incremental.removeNode('extra');
        const fresh = new HashRing(order.slice().reverse(), { vnodesPerWeight: 5, hash: coarse });
        for (let p = 0; p < 16; p++) {
          assert.deepEqual(incremental.preference(p * 0x10000000, 8), fresh.preference(p * 0x10000000, 8));
        }
      }),
      { numRuns: 50 },
    );
  });

  it('a join moves keys only to the new node, about 1/(N+1) of them', () => {
    const ring = new HashRing(members(10));
    const before = lookups(ring);
    ring.addNode('new', 1);
    const after = lookups(ring);
    let moved = 0;
    after.forEach((owner, i) => {
      if (owner !== before[i]) {
        assert.equal(owner, 'new');
        moved++;
      }
    });
    assert.ok(moved > 0 && moved / sampleKeys.length < 0.2, `moved ${moved}`);
  });

  it('a leave moves only the leaving node\'s keys', () => {
    const ring = new HashRing(members(10));
    const before = lookups(ring);
    ring.removeNode('node-3');
    lookups(ring).forEach((owner, i) => {
      if (owner !== before[i]) assert.equal(before[i], 'node-3');
    });
    assert.equal(ring.has('node-3'), false);
  });

  it('raising a weight only adds points: keys only move to that node', () => {
    const ring = new HashRing(members(8));
    const before = lookups(ring);
    ring.setWeight('node-2', 2);
    assert.equal(ring.pointCount, 8 * 150 + 150);
    let gained = 0;
    lookups(ring).forEach((owner, i) => {
      if (owner !== before[i]) {
        assert.equal(owner, 'node-2');
        gained++;
      }
    });
    assert.ok(gained > 0);
    assert.equal(ring.weightOf('node-2'), 2);
  });

  it('lowering a weight only removes points: keys only move off that node', () => {
    const ring = new HashRing(members(8));
    const before = lookups(ring);
    ring.setWeight('node-2', 0.4);
    assert.equal(ring.pointCount, 7 * 150 + 60);
    let lost = 0;
    lookups(ring).forEach((owner, i) => {
      if (owner !== before[i]) {
        assert.equal(before[i], 'node-2');
        lost++;
      }
    });
    assert.ok(lost > 0);
  });

  it('spreads keys over 100 nodes within the usual consistent-hashing error', () => {
    const ring = new HashRing(members(100));
    const counts = new Map<string, number>();
    for (let i = 0; i < 100_000; i++) {
      const owner = ring.lookup(`k${i}`)!;
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    assert.equal(counts.size, 100);
    const max = Math.max(...counts.values());
    // 150 vnodes give a standard deviation of ~8% per node; the table (table.ts) fixes the rest
    assert.ok(max / 1000 < 1.4, `max/mean ${max / 1000}`);
  });

  it('validates weights, ids and duplicates, naming the bad value', () => {
    const ring = new HashRing(members(2));
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => ring.addNode('x', bad),
        (e: unknown) => isPlacementError(e) && e.code === 'INVALID_WEIGHT' && e.message.includes(String(bad)),
      );
      assert.throws(() => ring.setWeight('node-0', bad), (e: unknown) => isPlacementError(e) && e.code === 'INVALID_WEIGHT');
    }
    assert.throws(() => ring.addNode('node-1', 1), (e: unknown) => isPlacementError(e) && e.code === 'DUPLICATE_NODE');
    assert.throws(() => ring.removeNode('ghost'), (e: unknown) => isPlacementError(e) && e.code === 'UNKNOWN_NODE');
    assert.throws(() => ring.addNode('', 1), (e: unknown) => isPlacementError(e) && e.code === 'INVALID_OPTION');
    assert.throws(
      () => new HashRing([{ id: 'a', weight: 1 }, { id: 'a', weight: 2 }]),
      (e: unknown) => isPlacementError(e) && e.code === 'DUPLICATE_NODE',
    );
    assert.throws(() => new HashRing([], { vnodesPerWeight: 0 }), (e: unknown) => isPlacementError(e) && e.code === 'INVALID_OPTION');
    // a failed call changes nothing
    assert.equal(ring.nodeCount, 2);
    assert.equal(ring.pointCount, 300);
  });
});
