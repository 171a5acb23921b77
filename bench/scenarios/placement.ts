// Placement core, in-process (issue 2 item 2): how fast keys are routed, how evenly partitions
// spread and how little moves when a node joins, for 4096 partitions over N = 3, 10, 100, 1000.
//
// Peer: a memoryless consistent-hash ring with bounded loads (Mirrokni, Thorup, Zadimoghaddam
// 2018): every table is recomputed from the membership alone, each partition (in order) going to
// the first node clockwise from its point whose load is below ceil((1 + ε) · P / N), ε = 0.05.
// It balances about as well but reshuffles on a join, because the caps push partitions along
// the ring far from the new node; the partition table changes minimally instead.
//
// Timings use process.hrtime.bigint(): a warm-up, then fixed-size batches until a time bound,
// reporting the median batch. Nothing here starts a process or opens a socket.

import { type Figure, figure, median } from '../lib/figure.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';
import type { Member, NodeId } from '../../src/core/types.ts';
import { DEFAULT_PARTITION_COUNT, defaultHash, partitionOf } from '../../src/core/placement/hash.ts';
import { HashRing } from '../../src/core/placement/ring.ts';
import { addNode, createTable, ownerOf, summarize, type PartitionTable } from '../../src/core/placement/table.ts';

export type { Figure };

const P = DEFAULT_PARTITION_COUNT;
/** Bounded-load slack of the peer ring: loads capped at ceil((1 + ε) · P / N). */
const EPSILON = 0.05;
/** Issue 2: max/mean partitions per node at equal weights, N = 3..100. */
const BALANCE_TARGET = 1.05;
/** Issue 2: moved share on a join <= 1.1 x the ideal 1/(N+1). */
const MOVED_TARGET = 1.1;
/** "4096 partitions x 1000 nodes must plan in well under a second." */
const PLAN_TARGET_MS = 500;
/** A ring lookup is a binary search over <= 15k points: a microsecond would mean a regression. */
const LOOKUP_TARGET_NS = 1000;

interface Mode {
  /** Per timing: warm-up and measuring bounds, in ms. */
  warmMs: number;
  measureMs: number;
  /** nextTable repetitions for the plan-time figure. */
  planRuns: number;
}
const QUICK: Mode = { warmMs: 100, measureMs: 300, planRuns: 3 };
const FULL: Mode = { warmMs: 300, measureMs: 1500, planRuns: 9 };

const members = (n: number): Member[] => Array.from({ length: n }, (_, i) => ({ id: `node-${i}`, weight: 1 }));

// Keys are made up front so the timings measure lookups, not string building.
const KEYS = Array.from({ length: 8192 }, (_, i) => `user:${i * 7919}:profile`);
let sink = 0; // consumed by the timed loops so the JIT cannot drop them

/** Median ns per op of `op`, run in batches of KEYS.length, warm-up first, bounded by time. */
function nsPerOp(mode: Mode, op: (key: string) => number): number {
  const batch = (): number => {
    const t0 = process.hrtime.bigint();
    let acc = 0;
    for (let i = 0; i < KEYS.length; i++) acc += op(KEYS[i]!);
    sink ^= acc;
    return Number(process.hrtime.bigint() - t0) / KEYS.length;
  };
  const warmEnd = performance.now() + mode.warmMs;
  while (performance.now() < warmEnd) batch();
  const samples: number[] = [];
  const end = performance.now() + mode.measureMs;
  // at least 5 batches, at most 10k (bounded in count and time)
  while ((samples.length < 5 || performance.now() < end) && samples.length < 10_000) samples.push(batch());
  return median(samples);
}

/** The peer: owner of every partition from a bounded-load ring over `ms`, recomputed from scratch. */
export function boundedLoadOwners(ms: readonly Member[], partitions = P, epsilon = EPSILON): NodeId[] {
  const ring = new HashRing(ms);
  const cap = Math.ceil(((1 + epsilon) * partitions) / ms.length);
  const load = new Map<NodeId, number>();
  const owners: NodeId[] = new Array(partitions);
  for (let p = 0; p < partitions; p++) {
    let chosen: NodeId | undefined;
    // the same partition point as the table (hash of the decimal partition number)
    ring.walk(pointOf(p), (id) => {
      if ((load.get(id) ?? 0) < cap) {
        chosen = id;
        return true;
      }
      return false;
    });
    if (chosen === undefined) throw new Error(`bounded-load ring: no node under cap ${cap}`);
    load.set(chosen, (load.get(chosen) ?? 0) + 1);
    owners[p] = chosen;
  }
  return owners;
}

const pointOf = (p: number): number => defaultHash(String(p));

function maxOverMean(counts: Iterable<number>, n: number): number {
  let max = 0;
  let total = 0;
  for (const c of counts) {
    max = Math.max(max, c);
    total += c;
  }
  return max / (total / n);
}

function ownerCounts(owners: readonly NodeId[]): Map<NodeId, number> {
  const m = new Map<NodeId, number>();
  for (const o of owners) m.set(o, (m.get(o) ?? 0) + 1);
  return m;
}

function changed(a: readonly (NodeId | undefined)[], b: readonly (NodeId | undefined)[]): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

const ownersOf = (t: PartitionTable): NodeId[] => t.assignments.map((h) => h[0]!);

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  const mode = opts.quick ? QUICK : FULL;
  const log = opts.log ?? (() => {});
  const figures: Figure[] = [];
  const step = (): Promise<void> => {
    opts.signal?.throwIfAborted();
    // yield so a budget timer in the harness can fire between CPU-bound steps
    return new Promise((resolve) => setImmediate(resolve));
  };

  // --- routing cost -------------------------------------------------------------------------
  for (const n of [10, 100]) {
    await step();
    const ring = new HashRing(members(n));
    const ns = nsPerOp(mode, (k) => (ring.lookup(k) === undefined ? 0 : 1));
    log(`ring lookup at ${n} nodes: ${ns.toFixed(0)} ns/op`);
    figures.push(figure({ name: `placement.ring_lookup.n${n}`, unit: 'ns/op', ours: ns, target: { kind: 'value<=', value: LOOKUP_TARGET_NS } }));
  }
  await step();
  const pofNs = nsPerOp(mode, (k) => partitionOf(k, P));
  figures.push(figure({ name: 'placement.partition_of', unit: 'ns/op', ours: pofNs, target: { kind: 'value<=', value: LOOKUP_TARGET_NS } }));
  await step();
  // what a request really pays: key -> partition -> owner through the table, against the ring
  {
    const t = createTable(members(100));
    const ring = new HashRing(members(100));
    const ours = nsPerOp(mode, (k) => (ownerOf(t, partitionOf(k, P)) === undefined ? 0 : 1));
    const peer = nsPerOp(mode, (k) => (ring.lookup(k) === undefined ? 0 : 1));
    log(`route via table at 100 nodes: ${ours.toFixed(0)} ns/op (ring ${peer.toFixed(0)})`);
    figures.push(figure({ name: 'placement.route_via_table.n100', unit: 'ns/op', ours, peer }));
  }

  // --- balance and movement -----------------------------------------------------------------
  for (const n of [3, 10, 100, 1000]) {
    await step();
    const before = createTable(members(n));
    const after = addNode(before, { id: 'joiner', weight: 1 });
    const s = [...summarize(before).values()];
    const oursBalance = maxOverMean(
      s.map((x) => x.owned),
      n,
    );
    const oursReplicas = maxOverMean(
      s.map((x) => x.replicas),
      n,
    );
    const peerBefore = boundedLoadOwners(members(n));
    const peerAfter = boundedLoadOwners([...members(n), { id: 'joiner', weight: 1 }]);
    const peerBalance = maxOverMean(ownerCounts(peerBefore).values(), n);
    const ideal = P / (n + 1);
    const oursMoved = changed(ownersOf(before), ownersOf(after)) / ideal;
    const peerMoved = changed(peerBefore, peerAfter) / ideal;
    // At 1000 nodes a node gets 4 or 5 of 4096 partitions: 5 / 4.096 = 1.22 is the best any
    // placement can do, so the 1.05 and 1.1 targets apply up to 100 nodes (as issue 2 states).
    const targeted = n <= 100;
    log(
      `N=${n}: max/mean ${oursBalance.toFixed(3)} (replicas ${oursReplicas.toFixed(3)}; peer ${peerBalance.toFixed(3)}), ` +
        `join moved ${oursMoved.toFixed(3)}x ideal (peer ${peerMoved.toFixed(3)}x)`,
    );
    figures.push(
      figure({
        name: `placement.balance.n${n}`,
        unit: 'max/mean',
        ours: oursBalance,
        peer: peerBalance,
        target: targeted ? { kind: 'value<=', value: BALANCE_TARGET } : null,
      }),
      figure({
        name: `placement.balance_replicas.n${n}`,
        unit: 'max/mean',
        ours: oursReplicas,
        target: targeted ? { kind: 'value<=', value: BALANCE_TARGET } : null,
      }),
      figure({
        name: `placement.join_moved.n${n}`,
        unit: 'x ideal',
        ours: oursMoved,
        peer: peerMoved,
        target: targeted ? { kind: 'value<=', value: MOVED_TARGET } : null,
      }),
    );
  }

  // --- plan time ----------------------------------------------------------------------------
  await step();
  {
    const n = 1000;
    const base = createTable(members(n));
    const joined = [...members(n), { id: 'joiner', weight: 1 }];
    const ours: number[] = [];
    const peer: number[] = [];
    addNode(base, { id: 'joiner', weight: 1 }); // warm-up
    boundedLoadOwners(joined);
    for (let i = 0; i < mode.planRuns; i++) {
      await step();
      let t0 = process.hrtime.bigint();
      addNode(base, { id: 'joiner', weight: 1 });
      ours.push(Number(process.hrtime.bigint() - t0) / 1e6);
      t0 = process.hrtime.bigint();
      boundedLoadOwners(joined);
      peer.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const o = median(ours);
    const pe = median(peer);
    log(`plan (nextTable, join) at 1000 nodes: ${o.toFixed(1)} ms (bounded-load recompute ${pe.toFixed(1)} ms)`);
    figures.push(figure({ name: 'placement.plan_ms.n1000', unit: 'ms', ours: o, peer: pe, target: { kind: 'value<=', value: PLAN_TARGET_MS } }));
  }
  if (sink === 0.5) log('unreachable'); // keeps `sink` observable
  return figures;
}
