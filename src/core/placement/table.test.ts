import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import type { Clock, Member, NodeId } from '../types.ts';
import { isPlacementError } from './errors.ts';
import {
  addNode,
  createTable,
  decodeTable,
  encodeTable,
  holdersOf,
  nextTable,
  ownerOf,
  type PartitionTable,
  planMigration,
  quotas,
  removeNode,
  setWeight,
  summarize,
} from './table.ts';

const P = 4096;
const clock: Clock = { now: () => 1_700_000_000_000 };
const members = (n: number, weight = 1): Member[] => Array.from({ length: n }, (_, i) => ({ id: `node-${i}`, weight }));

/** max/mean of owned partitions and of replicas held, over all members. */
function balance(t: PartitionTable): { owners: number; replicas: number } {
  const s = [...summarize(t).values()];
  const ratio = (xs: number[]): number => {
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    return mean === 0 ? 1 : Math.max(...xs) / mean;
  };
  return { owners: ratio(s.map((x) => x.owned)), replicas: ratio(s.map((x) => x.replicas)) };
}

/** Structural invariants every table must satisfy. */
function checkShape(t: PartitionTable): void {
  const ids = t.members.map((m) => m.id);
  assert.deepEqual(ids, [...ids].sort(), 'members sorted by id');
  const width = Math.min(t.replicationFactor, t.members.length);
  assert.equal(t.assignments.length, t.partitionCount);
  const known = new Set(ids);
  for (const holders of t.assignments) {
    assert.equal(holders.length, width);
    assert.equal(new Set(holders).size, width, 'holders distinct');
    for (const h of holders) assert.ok(known.has(h));
  }
}

/** Partitions each node holds (any slot). */
function holdings(t: PartitionTable): Map<NodeId, Set<number>> {
  const out = new Map<NodeId, Set<number>>();
  for (const m of t.members) out.set(m.id, new Set());
  t.assignments.forEach((holders, p) => {
    for (const h of holders) out.get(h)!.add(p);
  });
  return out;
}

function ownerChanges(a: PartitionTable, b: PartitionTable): number {
  let n = 0;
  for (let p = 0; p < a.partitionCount; p++) if (a.assignments[p]![0] !== b.assignments[p]![0]) n++;
  return n;
}

describe('partition table: balance', () => {
  it('equal weights: max/mean <= 1.05 for owners and replicas, every N from 3 to 100 (4096 partitions)', () => {
    for (let n = 3; n <= 100; n++) {
      const t = createTable(members(n), { clock });
      checkShape(t);
      const b = balance(t);
      assert.ok(b.owners <= 1.05, `N=${n} owners max/mean ${b.owners}`);
      assert.ok(b.replicas <= 1.05, `N=${n} replicas max/mean ${b.replicas}`);
    }
  });

  it('stays balanced at replication factor 3 and after churn', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 60 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 6 }),
        (n, factor, joins) => {
          let t = createTable(members(n), { replicationFactor: factor, clock });
          let next = n;
          for (const join of joins) {
            if (join || t.members.length <= 3) t = addNode(t, { id: `node-${next++}`, weight: 1 }, { clock });
            else t = removeNode(t, t.members[next % t.members.length]!.id, { clock });
          }
          checkShape(t);
          const b = balance(t);
          assert.ok(b.owners <= 1.05, `owners ${b.owners}`);
          assert.ok(b.replicas <= 1.05, `replicas ${b.replicas}`);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('weighted: each node owns its weight share of partitions (within one), replicas likewise when feasible', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.5, max: 3, noNaN: true }), { minLength: 4, maxLength: 30 }), (weights) => {
        const ms = weights.map((weight, i) => ({ id: `w${i}`, weight }));
        const total = weights.reduce((a, b) => a + b, 0);
        // a node with more than half of the weight would have to back up partitions it owns
        fc.pre(Math.max(...weights) / total < 0.45);
        const t = createTable(ms, { clock });
        checkShape(t);
        for (const [id, s] of summarize(t)) {
          const share = (P * ms.find((m) => m.id === id)!.weight) / total;
          assert.ok(Math.abs(s.owned - share) < 1, `${id} owns ${s.owned}, share ${share}`);
          assert.ok(Math.abs(s.replicas - share) <= Math.max(2, share * 0.02), `${id} backs up ${s.replicas}, share ${share}`);
        }
      }),
      { numRuns: 30 },
    );
  });

  it('caps a node that would have to hold a partition twice, and balances the rest', () => {
    // "big" has 2/3 of the weight: it owns 2/3 and backs up every partition it does not own
    const t = createTable(
      [
        { id: 'big', weight: 4 },
        { id: 'a', weight: 1 },
        { id: 'b', weight: 1 },
      ],
      { clock },
    );
    checkShape(t);
    const s = summarize(t);
    assert.equal(s.get('big')!.owned + s.get('big')!.replicas, P);
    assert.ok(Math.abs(s.get('big')!.owned - (P * 2) / 3) < 1);
    assert.ok(Math.abs(s.get('a')!.replicas + s.get('a')!.owned - (s.get('b')!.replicas + s.get('b')!.owned)) <= 2);
  });
});

describe('partition table: minimal movement', () => {
  it('a join moves <= 1.1 x 1/(N+1) of owners, every N from 3 to 100, and only to the new node', () => {
    for (let n = 3; n <= 100; n++) {
      const t = createTable(members(n), { clock });
      const t2 = addNode(t, { id: 'joiner', weight: 1 }, { clock });
      checkShape(t2);
      const moved = ownerChanges(t, t2);
      assert.ok(moved / P <= 1.1 / (n + 1), `N=${n} moved ${moved} (${((moved / P) * (n + 1)).toFixed(3)}x ideal)`);
      for (let p = 0; p < P; p++) {
        if (t.assignments[p]![0] !== t2.assignments[p]![0]) assert.equal(t2.assignments[p]![0], 'joiner');
      }
    }
  });

  it('a leave moves only partitions the leaving node held (owner or replica)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 50 }),
        fc.integer({ min: 1, max: 3 }),
        fc.nat(),
        fc.nat(),
        (n, factor, churn, pick) => {
          // start from a table with some history, not only a fresh one
          let t = createTable(members(n + 1), { replicationFactor: factor, clock });
          t = removeNode(t, `node-${churn % (n + 1)}`, { clock });
          t = addNode(t, { id: 'late', weight: 1 }, { clock });
          const leaver = t.members[pick % t.members.length]!.id;
          const t2 = removeNode(t, leaver, { clock });
          checkShape(t2);
          for (const move of planMigration(t, t2)) {
            assert.ok(move.from.includes(leaver), `partition ${move.partition} moved without ${leaver}: ${JSON.stringify(move)}`);
          }
          // and every partition it held did move
          const held = holdings(t).get(leaver)!;
          assert.equal(planMigration(t, t2).length, held.size);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('a leave with unequal weights moves only the leaving node\'s partitions', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.5, max: 2, noNaN: true }), { minLength: 6, maxLength: 30 }), fc.nat(), (weights, pick) => {
        const t = createTable(
          weights.map((weight, i) => ({ id: `w${i}`, weight })),
          { clock },
        );
        const leaver = t.members[pick % t.members.length]!.id;
        const t2 = removeNode(t, leaver, { clock });
        for (const move of planMigration(t, t2)) assert.ok(move.from.includes(leaver));
      }),
      { numRuns: 30 },
    );
  });

  it('addNode then removeNode: same members, version +2, and nothing the join left alone moved', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 60 }), fc.integer({ min: 1, max: 3 }), (n, factor) => {
        const t0 = createTable(members(n), { replicationFactor: factor, clock });
        const t1 = addNode(t0, { id: 'visitor', weight: 1 }, { clock });
        const t2 = removeNode(t1, 'visitor', { clock });
        assert.deepEqual(t2.members, t0.members);
        assert.equal(t2.version, t0.version + 2);
        checkShape(t2);
        const touched = new Set(planMigration(t0, t1).map((m) => m.partition));
        for (const move of planMigration(t0, t2)) assert.ok(touched.has(move.partition), `partition ${move.partition}`);
        assert.ok(ownerChanges(t0, t2) <= ownerChanges(t0, t1));
      }),
      { numRuns: 25 },
    );
  });

  it('setWeight moves only what it must: lowered node only loses, the others only gain (and vice versa)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 5, max: 40 }),
        fc.integer({ min: 1, max: 2 }),
        fc.nat(),
        fc.double({ min: 0.3, max: 2, noNaN: true }),
        (n, factor, pick, weight) => {
          fc.pre(Math.abs(weight - 1) > 0.01);
          const t = addNode(createTable(members(n), { replicationFactor: factor, clock }), { id: 'x', weight: 1 }, { clock });
          const id = t.members[pick % t.members.length]!.id;
          // stay clear of the cap, where one node must hold every partition
          fc.pre((factor * weight) / (n + weight) < 0.75);
          const t2 = setWeight(t, id, weight, { clock });
          assert.equal(t2.members.find((m) => m.id === id)!.weight, weight);
          const before = holdings(t);
          const after = holdings(t2);
          const lowered = weight < 1;
          for (const [node, had] of before) {
            const has = after.get(node)!;
            const gained = [...has].some((p) => !had.has(p));
            const lost = [...had].some((p) => !has.has(p));
            const isTarget = node === id;
            if (lowered === isTarget) assert.ok(!gained, `${node} gained partitions`);
            else assert.ok(!lost, `${node} lost partitions`);
          }
          const owned = summarize(t2).get(id)!.owned;
          const share = (P * weight) / (n + weight);
          assert.ok(Math.abs(owned - share) < 1, `owns ${owned}, share ${share}`);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('promotes a backup when an owner leaves (the data is already there)', () => {
    const t = createTable(members(10), { clock });
    const t2 = removeNode(t, 'node-4', { clock });
    let orphaned = 0;
    let promoted = 0;
    for (let p = 0; p < P; p++) {
      if (t.assignments[p]![0] !== 'node-4') continue;
      orphaned++;
      if (t2.assignments[p]![0] === t.assignments[p]![1]) promoted++;
    }
    // Each survivor may take only ~1/9 of the orphans (its quota), and backups are spread
    // unevenly by chance, so not every one can be promoted; a quota-blind pick would hit the
    // backup about 1 time in 9.
    assert.ok(promoted / orphaned > 0.6, `${promoted}/${orphaned} promoted`);
  });
});

describe('partition table: determinism and wire format', () => {
  it('same inputs in any order give equal tables', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ id: fc.string({ minLength: 1, maxLength: 8 }), weight: fc.double({ min: 0.2, max: 4, noNaN: true }) }), {
          minLength: 1,
          maxLength: 25,
          selector: (m) => m.id,
        }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 600 }),
        (ms, factor, partitionCount) => {
          const a = createTable(ms, { replicationFactor: factor, partitionCount, clock });
          const b = createTable([...ms].reverse(), { replicationFactor: factor, partitionCount, clock });
          assert.deepEqual(a, b);
          const a2 = nextTable(a, ms.slice(1), { clock });
          const b2 = nextTable(decodeTable(encodeTable(b)), [...ms.slice(1)].reverse(), { clock });
          assert.deepEqual(a2, b2);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('encode/decode round-trips any table', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 300 }), (n, factor, partitionCount) => {
        const t = createTable(members(n, 1.25), { replicationFactor: factor, partitionCount, clock });
        const s = encodeTable(t);
        assert.deepEqual(decodeTable(s), t);
        assert.equal(encodeTable(decodeTable(s)), s);
      }),
      { numRuns: 40 },
    );
    // compact: a 4096-partition factor-2 table of 100 nodes is well under 64 KiB
    assert.ok(encodeTable(createTable(members(100), { clock })).length < 64 * 1024);
  });

  it('decodeTable rejects malformed input with a BAD_TABLE error', () => {
    const good = JSON.parse(encodeTable(createTable(members(3), { partitionCount: 4, clock }))) as Record<string, unknown>;
    const variants: unknown[] = [
      'not json',
      [],
      { ...good, format: 2 },
      { ...good, version: 0 },
      { ...good, partitionCount: 5 },
      { ...good, replicationFactor: 0 },
      { ...good, createdAt: 'yesterday' },
      { ...good, members: [['node-1', 1], ['node-0', 1], ['node-2', 1]] },
      { ...good, members: [['node-0', 1], ['node-1', -1], ['node-2', 1]] },
      { ...good, holders: (good.holders as number[]).slice(1) },
      { ...good, holders: (good.holders as number[]).map(() => 7) },
      { ...good, holders: (good.holders as number[]).map(() => 0) },
    ];
    for (const v of variants) {
      const s = typeof v === 'string' ? v : JSON.stringify(v);
      assert.throws(
        () => decodeTable(s),
        (e: unknown) => isPlacementError(e) && e.code === 'BAD_TABLE',
        s,
      );
    }
    assert.doesNotThrow(() => decodeTable(JSON.stringify(good)));
  });
});

describe('partition table: planMigration', () => {
  it('returns exactly the partitions whose holder list changed', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }), fc.boolean(), (changed, swapOnly) => {
        const t = createTable(members(5), { partitionCount: 256, replicationFactor: 3, clock });
        const assignments = t.assignments.map((h) => [...h]);
        for (const p of changed) {
          const h = assignments[p]!;
          if (swapOnly) [h[1], h[2]] = [h[2]!, h[1]!]; // same holders, different order: still a change
          else h[0] = t.members.map((m) => m.id).find((id) => !h.includes(id))!;
        }
        const t2: PartitionTable = { ...t, version: t.version + 1, assignments };
        const moves = planMigration(t, t2);
        assert.deepEqual(
          moves.map((m) => m.partition),
          [...changed].sort((a, b) => a - b),
        );
        for (const m of moves) {
          assert.deepEqual(m.from, t.assignments[m.partition]);
          assert.deepEqual(m.to, assignments[m.partition]);
        }
        assert.deepEqual(planMigration(t2, t2), []);
      }),
      { numRuns: 30 },
    );
  });

  it('refuses tables of different partition counts', () => {
    assert.throws(
      () => planMigration(createTable(members(3), { partitionCount: 8 }), createTable(members(3), { partitionCount: 16 })),
      (e: unknown) => isPlacementError(e) && e.code === 'TABLE_MISMATCH',
    );
  });
});

describe('partition table: edges and API', () => {
  it('empty membership: no holders; the first node then owns everything', () => {
    const t = createTable([], { clock });
    assert.equal(t.version, 1);
    assert.equal(t.assignments.length, P);
    assert.deepEqual(holdersOf(t, 0), []);
    assert.equal(ownerOf(t, 0), undefined);
    assert.equal(encodeTable(decodeTable(encodeTable(t))), encodeTable(t));
    const t2 = addNode(t, { id: 'first', weight: 1 }, { clock });
    assert.equal(t2.version, 2);
    assert.ok(t2.assignments.every((h) => h.length === 1 && h[0] === 'first'));
    const t3 = removeNode(t2, 'first', { clock });
    assert.ok(t3.assignments.every((h) => h.length === 0));
  });

  it('factor larger than the membership: every member holds every partition', () => {
    const t = createTable(members(2), { replicationFactor: 3, clock });
    checkShape(t);
    assert.ok(t.assignments.every((h) => h.length === 2));
    const t2 = addNode(t, { id: 'node-2', weight: 1 }, { clock });
    checkShape(t2);
    assert.ok(t2.assignments.every((h) => h.length === 3));
    // the two old copies stay (ownership is rebalanced, so the order may change)
    for (let p = 0; p < P; p++) for (const h of t.assignments[p]!) assert.ok(t2.assignments[p]!.includes(h));
    assert.ok(balance(t2).owners <= 1.05);
  });

  it('changing the replication factor keeps existing copies', () => {
    const t = createTable(members(6), { replicationFactor: 2, clock });
    const t3 = nextTable(t, t.members, { replicationFactor: 3, clock });
    assert.equal(t3.replicationFactor, 3);
    for (let p = 0; p < P; p++) assert.deepEqual(t3.assignments[p]!.slice(0, 2), t.assignments[p]);
    assert.ok(balance(t3).replicas <= 1.05);
    const back = nextTable(t3, t3.members, { replicationFactor: 2, clock });
    assert.deepEqual(back.assignments, t.assignments);
  });

  it('versions, createdAt and options', () => {
    let now = 5;
    const ticking: Clock = { now: () => now++ };
    const t = createTable(members(3), { partitionCount: 64, replicationFactor: 1, clock: ticking });
    assert.equal(t.version, 1);
    assert.equal(t.createdAt, 5);
    assert.equal(t.partitionCount, 64);
    const t2 = setWeight(t, 'node-1', 2, { clock: ticking });
    assert.equal(t2.version, 2);
    assert.equal(t2.createdAt, 6);
    assert.equal(t2.replicationFactor, 1, 'nextTable keeps the previous factor by default');
    assert.equal(ownerOf(t2, 3), holdersOf(t2, 3)[0]);
    // tables are frozen: an accidental edit throws instead of diverging silently
    assert.throws(() => {
      (t2.assignments[0] as NodeId[])[0] = 'oops';
    }, TypeError);
  });

  it('summarize lists every member, in id order', () => {
    const t = createTable(members(12), { partitionCount: 8, clock });
    const s = summarize(t);
    assert.deepEqual([...s.keys()], t.members.map((m) => m.id));
    let owned = 0;
    let replicas = 0;
    for (const v of s.values()) {
      owned += v.owned;
      replicas += v.replicas;
    }
    assert.equal(owned, 8);
    assert.equal(replicas, 8);
  });

  it('validates its inputs, naming the bad value', () => {
    const t = createTable(members(3), { clock });
    const code = (c: string) => (e: unknown) => isPlacementError(e) && e.code === c;
    assert.throws(() => createTable([{ id: 'a', weight: 0 }]), code('INVALID_WEIGHT'));
    assert.throws(() => createTable([{ id: 'a', weight: Number.NaN }]), (e: unknown) => code('INVALID_WEIGHT')(e) && String(e).includes('NaN'));
    assert.throws(() => createTable([{ id: 'a', weight: 1 }, { id: 'a', weight: 2 }]), code('DUPLICATE_NODE'));
    assert.throws(() => createTable([], { partitionCount: 0 }), code('INVALID_OPTION'));
    assert.throws(() => createTable([], { replicationFactor: 1.5 }), code('INVALID_OPTION'));
    assert.throws(() => createTable(members(2), { vnodesPerWeight: -1 }), code('INVALID_OPTION'));
    assert.throws(() => addNode(t, { id: 'node-1', weight: 1 }), code('DUPLICATE_NODE'));
    assert.throws(() => removeNode(t, 'ghost'), code('UNKNOWN_NODE'));
    assert.throws(() => setWeight(t, 'ghost', 1), code('UNKNOWN_NODE'));
    assert.throws(() => setWeight(t, 'node-0', -2), (e: unknown) => code('INVALID_WEIGHT')(e) && String(e).includes('-2'));
    assert.throws(() => holdersOf(t, P), code('BAD_PARTITION'));
    assert.throws(() => ownerOf(t, 1.5), code('BAD_PARTITION'));
  });

  it('quotas: largest remainder, sticky leftovers, caps', () => {
    assert.deepEqual([...quotas([1, 1, 1], 10, [0, 0, 0])], [4, 3, 3]); // tie -> lower index
    assert.deepEqual([...quotas([1, 1, 1], 10, [3, 3, 4])], [3, 3, 4]); // the node holding 4 keeps it
    assert.deepEqual([...quotas([1, 2], 9, [0, 0])], [3, 6]);
    assert.deepEqual([...quotas([10, 1, 1], 12, [0, 0, 0], [4, 12, 12])], [4, 4, 4]);
  });

  it('handles extreme weight skew quickly and sensibly', () => {
    const start = process.hrtime.bigint();
    const t = createTable(
      [
        { id: 'tiny', weight: 1 },
        { id: 'huge', weight: 1000 },
      ],
      { clock },
    );
    assert.ok(Number(process.hrtime.bigint() - start) / 1e6 < 1000);
    checkShape(t);
    const s = summarize(t);
    assert.equal(s.get('huge')!.owned, Math.round((P * 1000) / 1001));
    // both hold every partition: factor 2 over 2 nodes
    assert.equal(s.get('tiny')!.owned + s.get('tiny')!.replicas, P);
  });

  it('plans 4096 partitions over 1000 nodes in well under a second', () => {
    const t = createTable(members(1000), { clock });
    const start = process.hrtime.bigint();
    const t2 = addNode(t, { id: 'node-extra', weight: 1 }, { clock });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    checkShape(t2);
    assert.ok(ms < 1000, `nextTable took ${ms.toFixed(0)} ms`);
  });
});

describe('partition table: zones', () => {
  /** `sizes[z]` members in zone `z<z>`, ids `z<z>-<i>`. */
  const zoned = (sizes: readonly number[]): Member[] => sizes.flatMap((k, z) => Array.from({ length: k }, (_, i) => ({ id: `z${z}-${i}`, weight: 1, zone: `z${z}` })));
  const zoneMap = (t: PartitionTable): Map<NodeId, string> => new Map(t.members.map((m) => [m.id, m.zone ?? `own:${m.id}`]));
  /** Every partition's first min(zones, holders) copies are in distinct zones. */
  function checkZones(t: PartitionTable): void {
    const zone = zoneMap(t);
    const Z = new Set(zone.values()).size;
    t.assignments.forEach((holders, p) => {
      const zs = holders.slice(0, Math.min(Z, holders.length)).map((id) => zone.get(id));
      assert.equal(new Set(zs).size, zs.length, `partition ${p}: ${holders.join(',')} in zones ${zs.join(',')}`);
    });
  }
  /**
   * A zone with more than 1/factor of the weight must hold a copy of every partition, so no
   * placement can balance the nodes then. Balance is promised when there are exactly `factor`
   * equal zones, or more zones each with less than 1/factor of the weight.
   */
  const balanceable = (sizes: readonly number[], factor: number): boolean => {
    const total = sizes.reduce((a, b) => a + b, 0);
    return sizes.length >= factor && ((sizes.length === factor && sizes.every((k) => k === sizes[0])) || (sizes.length > factor && sizes.every((k) => k * factor < total)));
  };
  /** Copies that land on a node that did not hold them: the data a change moves. */
  const copiesMoved = (a: PartitionTable, b: PartitionTable): number => {
    let n = 0;
    for (let p = 0; p < a.partitionCount; p++) for (const h of b.assignments[p]!) if (!a.assignments[p]!.includes(h)) n++;
    return n;
  };
  const layout = fc
    .record({ factor: fc.integer({ min: 2, max: 3 }), extra: fc.integer({ min: 0, max: 3 }), equal: fc.boolean(), size: fc.integer({ min: 1, max: 6 }), sizes: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 6, maxLength: 6 }) })
    .map(({ factor, extra, equal, size, sizes }) => ({ factor, sizes: Array.from({ length: factor + extra }, (_, z) => (equal ? size : sizes[z]!)) }));

  it('copies of a partition go to distinct zones, and balance holds when the zones allow it', () => {
    fc.assert(
      fc.property(layout, ({ factor, sizes }) => {
        const t = createTable(zoned(sizes), { replicationFactor: factor, clock });
        checkShape(t);
        checkZones(t);
        if (balanceable(sizes, factor)) {
          const b = balance(t);
          assert.ok(b.owners <= 1.05 && b.replicas <= 1.05, `${sizes} factor ${factor}: owners ${b.owners}, replicas ${b.replicas}`);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('a join keeps zones apart and balance, moves owners only to the new node and about its share of copies', () => {
    fc.assert(
      fc.property(layout, fc.nat(), ({ factor, sizes }, pick) => {
        const zone = pick % sizes.length;
        const after = sizes.map((k, z) => (z === zone ? k + 1 : k));
        fc.pre(balanceable(sizes, factor) && balanceable(after, factor));
        const t = createTable(zoned(sizes), { replicationFactor: factor, clock });
        const t2 = addNode(t, { id: 'joiner', weight: 1, zone: `z${zone}` }, { clock });
        checkShape(t2);
        checkZones(t2);
        const b = balance(t2);
        assert.ok(b.owners <= 1.05 && b.replicas <= 1.05, `owners ${b.owners}, replicas ${b.replicas}`);
        const n = t.members.length;
        assert.ok(ownerChanges(t, t2) / P <= 1.1 / (n + 1), `owners moved ${ownerChanges(t, t2)}`);
        for (let p = 0; p < P; p++) if (t.assignments[p]![0] !== t2.assignments[p]![0]) assert.equal(t2.assignments[p]![0], 'joiner');
        const share = summarize(t2).get('joiner')!;
        assert.ok(copiesMoved(t, t2) <= 1.1 * (share.owned + share.replicas), `copies moved ${copiesMoved(t, t2)}, the joiner holds ${share.owned + share.replicas}`);
      }),
      { numRuns: 40 },
    );
  });

  it('a leave keeps zones apart and balance, and moves at most 1.5 x the copies the leaving node held', () => {
    fc.assert(
      fc.property(layout, fc.nat(), ({ factor, sizes }, pick) => {
        const ms = zoned(sizes);
        const leaver = ms[pick % ms.length]!;
        const after = sizes.map((k, z) => (`z${z}` === leaver.zone ? k - 1 : k));
        fc.pre(after.every((k) => k > 0) && balanceable(sizes, factor) && balanceable(after, factor));
        const t = createTable(ms, { replicationFactor: factor, clock });
        const t2 = removeNode(t, leaver.id, { clock });
        checkShape(t2);
        checkZones(t2);
        const b = balance(t2);
        assert.ok(b.owners <= 1.05 && b.replicas <= 1.05, `owners ${b.owners}, replicas ${b.replicas}`);
        const held = holdings(t).get(leaver.id)!.size;
        // a zone-less leave moves exactly what the leaver held; keeping zones apart and the
        // nodes balanced may cost a few more copies (measured: up to ~1.35x near the balance limit)
        assert.ok(copiesMoved(t, t2) <= 1.5 * held, `copies moved ${copiesMoved(t, t2)}, the leaver held ${held}`);
      }),
      { numRuns: 40 },
    );
  });

  it('fewer zones than copies: every zone holds a copy of each partition; more zones than needed are used', () => {
    // 2 zones, factor 3: both zones in every partition, the third copy on another node
    const t = createTable(zoned([3, 3]), { replicationFactor: 3, clock });
    checkShape(t);
    checkZones(t);
    for (const holders of t.assignments) assert.equal(new Set(holders.map((h) => h.slice(0, 2))).size, 2);
    // a zone with more than 1/factor of the weight holds every partition once (it cannot do better)
    const skew = createTable(zoned([4, 1]), { replicationFactor: 2, clock });
    checkZones(skew);
    assert.equal(holdings(skew).get('z1-0')!.size, P);
  });

  it('zone-less tables are unchanged: the same bytes as before zones existed', () => {
    // fingerprints of encodeTable from the placement before zones (sha256, first 16 hex digits)
    const expected: [number, number, number, string, string, string, string][] = [
      [3, 2, 4096, '681aa7c700b0a7e8', '2218593c50a43720', 'f0fd2b974d32d286', 'ab09f46a1de98925'],
      [5, 3, 4096, '127d2d41f7d9b252', '98ec33d1428c7306', '056c77e78fd804b9', 'edb1d307e21bd2d1'],
      [10, 2, 1024, '5d792909f89f59fc', '58a83d84d8975b30', '44e06cac7fbc86ba', '7dbdec76b3306a6b'],
      [37, 3, 512, '14e7952a0b99c04f', 'a131cb86e38a15be', '1a6708b96b1f2d17', '61498d1a95c71272'],
      [2, 3, 256, '01e546c85232bccb', '77f7138f21a3234f', '5540eb6bfd60d087', 'bfaf9ed1cfd4f823'],
      [1, 2, 64, 'd6fb953385248743', 'e7ae3c0f991ee20b', 'f39602c33aa05b31', '7f04d3548d5dd5b9'],
    ];
    const h = (t: PartitionTable): string => createHash('sha256').update(encodeTable(t)).digest('hex').slice(0, 16);
    const ms = (n: number): Member[] => Array.from({ length: n }, (_, i) => ({ id: `node-${i}`, weight: 1 + (i % 3) * 0.25 }));
    for (const [n, factor, partitionCount, ...prints] of expected) {
      const c = { now: () => 1 };
      let t = createTable(ms(n), { replicationFactor: factor, partitionCount, clock: c });
      const got = [h(t)];
      t = addNode(t, { id: 'joiner', weight: 1 }, { clock: c });
      got.push(h(t));
      t = removeNode(t, 'node-0', { clock: c });
      got.push(h(t));
      t = setWeight(t, 'joiner', 1.7, { clock: c });
      got.push(h(t));
      assert.deepEqual(got, prints, `${n} nodes, factor ${factor}, ${partitionCount} partitions`);
    }
  });

  it('zones survive the wire format, setWeight and validation', () => {
    const t = createTable(zoned([2, 2]), { partitionCount: 64, clock });
    const back = decodeTable(encodeTable(t));
    assert.deepEqual(back, t);
    assert.equal(back.members[0]!.zone, 'z0');
    assert.equal(setWeight(t, 'z0-0', 2, { clock }).members[0]!.zone, 'z0');
    // a zone-less table encodes as before: [id, weight] pairs
    assert.match(encodeTable(createTable(members(2), { partitionCount: 4, clock })), /"members":\[\["node-0",1\],\["node-1",1\]\]/);
    assert.throws(() => createTable([{ id: 'a', weight: 1, zone: '' }]), (e: unknown) => isPlacementError(e) && e.code === 'INVALID_OPTION' && /zone of node "a"/.test(String(e)));
    const raw = JSON.parse(encodeTable(t)) as { members: unknown[] };
    raw.members[0] = ['z0-0', 1, 7];
    assert.throws(() => decodeTable(JSON.stringify(raw)), (e: unknown) => isPlacementError(e) && e.code === 'BAD_TABLE');
  });
});
