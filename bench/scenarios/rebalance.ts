// Load monitoring and rebalance planning (issue 6's bench), all in-process and pure CPU:
//  - imbalance detection over 100 node reports (target <= 2.5 µs; the seed claimed < 25 µs);
//  - planning time per strategy for 100 and 1000 nodes over 4096 partitions (reported);
//  - a Zipf(1.1) workload over a 10-node table: max/mean node QPS before, after owner moves
//    alone (reported), and after moves plus SIMULATED hot-key mirroring (target <= 1.25).
//    Mirroring itself is not part of this scenario's code: the simulation assumes the 16
//    hottest keys' reads (90% of their traffic) are served evenly by every node's hot cache and
//    their writes stay with the owner. A Zipf(1.1) top key alone carries ~13% of all requests,
//    more than a 10-node mean, so moves alone cannot reach 1.25: that is why the issue asks for
//    mirroring, and the moves-only figure shows the gap;
//  - the monitor's request-path cost: record() in ns/op, and what that costs at 50,000 req/s
//    as a share of one core (target <= 3%: the monitor may cost at most 3% of throughput).
// No processes are started and no peer is run: the figures have targets on their own values.

import { createTable, type PartitionTable } from '../../src/core/placement/table.ts';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { planRebalance, STRATEGIES, type NodeLoad, type Strategy } from '../../src/core/rebalance/strategies.ts';
import { LoadMonitor, type ProcessProbe } from '../../src/load/monitor.ts';
import { detectImbalance } from '../../src/load/score.ts';
import { seededRandom } from '../../src/load/zipf.ts';
import type { Figure } from '../lib/figure.ts';
import { figure, median } from '../lib/figure.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';

const PARTITIONS = 4096;
const ZIPF_KEYS = 100_000;
const ZIPF_S = 1.1;
const ZIPF_QPS = 100_000;
const HOT_KEYS = 16;
const READ_SHARE = 0.9;
/** Score per request per second: a node at 20000 req/s (config `load.capacity.qps`) scores 0.3·1. */
const SCORE_PER_QPS = 0.3 / 20_000;

/** Keeps results alive so the JIT cannot drop the measured work. */
let sink = 0;

function members(n: number) {
  return Array.from({ length: n }, (_, i) => ({ id: `node-${String(i).padStart(4, '0')}`, weight: 1 }));
}

/** Reports as nodes would send them: per-partition QPS of what they own, plus unattributed QPS. */
function reportsFor(table: PartitionTable, pq: Float64Array, baseQps: number[] = []): NodeLoad[] {
  const out = table.members.map((m, i) => ({ id: m.id, score: (baseQps[i] ?? 0) * SCORE_PER_QPS, partitionQps: {} as Record<number, number> }));
  const index = new Map(table.members.map((m, i) => [m.id, i]));
  for (let p = 0; p < table.partitionCount; p++) {
    const r = out[index.get(table.assignments[p]![0]!)!]!;
    if (pq[p]! > 0) {
      r.partitionQps[p] = pq[p]!;
      r.score += pq[p]! * SCORE_PER_QPS;
    }
  }
  return out;
}

/** max/mean of node QPS under `table`. */
function maxOverMean(table: PartitionTable, pq: Float64Array, baseQps: number[] = []): number {
  const index = new Map(table.members.map((m, i) => [m.id, i]));
  const q = table.members.map((_, i) => baseQps[i] ?? 0);
  for (let p = 0; p < table.partitionCount; p++) q[index.get(table.assignments[p]![0]!)!]! += pq[p]!;
  const mean = q.reduce((a, b) => a + b, 0) / q.length;
  return Math.max(...q) / mean;
}

function timeDetection(quick: boolean): number {
  const r = seededRandom(1);
  const reports = Array.from({ length: 100 }, (_, i) => ({ id: `n${i}`, score: 0.3 + 0.1 * r() + (i === 17 ? 0.3 : 0) }));
  const calls = quick ? 50_000 : 200_000;
  const samples: number[] = [];
  for (let round = 0; round < (quick ? 5 : 9); round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) sink += detectImbalance(reports, 0.2).length;
    samples.push(Number(process.hrtime.bigint() - t0) / 1000 / calls);
  }
  return median(samples.slice(1)); // the first round warms the JIT up
}

function skewedLoad(table: PartitionTable, seed: number): Float64Array {
  const r = seededRandom(seed);
  const hot = new Set([table.members[3]!.id, table.members[7]!.id]);
  return new Float64Array(table.partitionCount).map((_, p) => (hot.has(table.assignments[p]![0]!) ? 250 : 100) * (0.5 + r()));
}

function timePlans(nodes: number, quick: boolean): { strategy: Strategy; ms: number; moves: number }[] {
  const table = createTable(members(nodes), { partitionCount: PARTITIONS, replicationFactor: 2, clock: { now: () => 0 } });
  const reports = reportsFor(table, skewedLoad(table, nodes));
  return STRATEGIES.map((strategy) => {
    const samples: number[] = [];
    let moves = 0;
    for (let k = 0; k < (quick ? 2 : 4); k++) {
      const t0 = performance.now();
      const plan = planRebalance(strategy, table, reports, { clock: { now: () => 0 } });
      samples.push(performance.now() - t0);
      moves = plan.moves.length;
    }
    return { strategy, ms: median(samples.length > 1 ? samples.slice(1) : samples), moves };
  });
}

function zipfWorkload(): { before: number; moves: Record<string, number>; mirrored: Record<string, number> } {
  const table = createTable(members(10), { partitionCount: PARTITIONS, replicationFactor: 2, clock: { now: () => 0 } });
  let h = 0;
  for (let r = 1; r <= ZIPF_KEYS; r++) h += 1 / Math.pow(r, ZIPF_S);
  // partition QPS, without and with the hot keys' reads taken out (mirrored to every node)
  const pq = new Float64Array(PARTITIONS);
  const pqMirrored = new Float64Array(PARTITIONS);
  let mirroredReads = 0;
  for (let r = 1; r <= ZIPF_KEYS; r++) {
    const qps = (ZIPF_QPS / Math.pow(r, ZIPF_S)) / h;
    const p = partitionOf(`key:${r}`, PARTITIONS);
    pq[p]! += qps;
    if (r <= HOT_KEYS) {
      pqMirrored[p]! += qps * (1 - READ_SHARE);
      mirroredReads += qps * READ_SHARE;
    } else {
      pqMirrored[p]! += qps;
    }
  }
  const base = table.members.map(() => mirroredReads / table.members.length);
  const moves: Record<string, number> = {};
  const mirrored: Record<string, number> = {};
  for (const s of ['minimal-disturbance', 'load-optimal'] as const) {
    const plan = planRebalance(s, table, reportsFor(table, pq), { clock: { now: () => 0 } });
    moves[s] = maxOverMean(plan.nextTable ?? table, pq);
    const planM = planRebalance(s, table, reportsFor(table, pqMirrored, base), { clock: { now: () => 0 } });
    mirrored[s] = maxOverMean(planM.nextTable ?? table, pqMirrored, base);
  }
  return { before: maxOverMean(table, pq), moves, mirrored };
}

function timeRecord(quick: boolean): number {
  const probe: ProcessProbe = { start() {}, stop() {}, rssBytes: () => 0, cpuMicros: () => 0, elu: () => 0, lagMs: () => 0 };
  const monitor = new LoadMonitor({ id: 'bench', partitionCount: PARTITIONS, probe, clock: { now: () => 0 } });
  const keys = Array.from({ length: 1024 }, (_, i) => `user:${i}`);
  const parts = keys.map((k) => partitionOf(k, PARTITIONS));
  const calls = quick ? 500_000 : 2_000_000;
  const samples: number[] = [];
  for (let round = 0; round < (quick ? 4 : 8); round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) {
      const k = i & 1023;
      monitor.record((i & 7) === 0 ? 'put' : 'get', 'default', keys[k]!, parts[k]!, 40, 100);
    }
    samples.push(Number(process.hrtime.bigint() - t0) / calls);
    monitor.tick();
  }
  sink += monitor.report().qps.total;
  return median(samples.slice(1));
}

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  const log = opts.log ?? (() => {});
  const figures: Figure[] = [];

  const detectUs = timeDetection(opts.quick);
  log(`detectImbalance over 100 reports: ${detectUs.toFixed(3)} µs`);
  figures.push(figure({ name: 'rebalance.detect.100_nodes', unit: 'µs', ours: detectUs, target: { kind: 'value<=', value: 2.5 } }));

  for (const nodes of [100, 1000]) {
    for (const t of timePlans(nodes, opts.quick)) {
      log(`plan ${t.strategy} for ${nodes} nodes: ${t.ms.toFixed(1)} ms, ${t.moves} owner moves`);
      figures.push(figure({ name: `rebalance.plan.${t.strategy.replaceAll('-', '_')}.${nodes}_nodes`, unit: 'ms', ours: t.ms }));
    }
  }

  const z = zipfWorkload();
  log(`Zipf(1.1) over 10 nodes: max/mean ${z.before.toFixed(3)} before; moves only ${JSON.stringify(z.moves)}; moves + simulated mirroring ${JSON.stringify(z.mirrored)}`);
  figures.push(figure({ name: 'rebalance.zipf.max_mean_before', unit: 'x', ours: z.before }));
  figures.push(figure({ name: 'rebalance.zipf.max_mean_moves_only', unit: 'x', ours: z.moves['minimal-disturbance']! }));
  figures.push(figure({ name: 'rebalance.zipf.max_mean_moves_only.load_optimal', unit: 'x', ours: z.moves['load-optimal']! }));
  figures.push(
    figure({ name: 'rebalance.zipf.max_mean_after_sim_mirroring', unit: 'x', ours: z.mirrored['minimal-disturbance']!, target: { kind: 'value<=', value: 1.25 } }),
  );
  figures.push(figure({ name: 'rebalance.zipf.max_mean_after_sim_mirroring.load_optimal', unit: 'x', ours: z.mirrored['load-optimal']! }));

  const recordNs = timeRecord(opts.quick);
  const share = (recordNs * 50_000) / 1e9 * 100;
  log(`LoadMonitor.record: ${recordNs.toFixed(1)} ns/op = ${share.toFixed(2)}% of a core at 50k req/s`);
  figures.push(figure({ name: 'rebalance.monitor.record_ns', unit: 'ns/op', ours: recordNs }));
  figures.push(figure({ name: 'rebalance.monitor.core_share_at_50k_rps', unit: '%', ours: share, target: { kind: 'value<=', value: 3 } }));

  if (sink === 0.5) log('unreachable'); // reads sink so it is observable
  return figures;
}
