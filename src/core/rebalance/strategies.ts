/**
 * Rebalance planning: from the current partition table and every node's load report, a plan an
 * operator can read (which partition owners move, node loads before and after) and the next
 * table that carries it out. Pure: no I/O, no timers; the clock only stamps the new table.
 *
 * The load model. The planner has to predict what a move does, so it needs each partition's
 * share of the load, in the unit the imbalance is judged in (the 0..1 score):
 *   - a node's score is attributed to the partitions it reported traffic for, in proportion to
 *     their request rate (`partitionQps`); a node that reported no traffic spreads its score
 *     evenly over the partitions it owns;
 *   - what a node's owned partitions do not explain (memory of backups, background work, or
 *     traffic attributed to partitions it no longer owns) is its fixed `base` load, which stays
 *     with the node. So `before` is exactly each node's reported score, and
 *     load(n) = base(n) + Σ load of the partitions n owns, under any owner assignment.
 * Only owners move: an owner serves its partition's reads and writes, which is what the load is.
 * Backups are left where they are (their replication load is part of `base`).
 *
 * Moving an owner to a node that already holds a backup of the partition SWAPS the two: the
 * target becomes owner and the old owner takes the target's backup slot. Holders stay distinct,
 * the replication factor holds, and the promoted node already has the data, so that move costs
 * no copy. Otherwise the target replaces the owner in slot 0 and the backups stay.
 *
 * Three strategies (SPEC §1 `jincache rebalance --strategy`):
 *   - `minimal-disturbance`: greedily move, from the most loaded node to the least loaded, the
 *     partition that best fits the gap (closest to half of it), until every node is within
 *     threshold of the mean. Stops as soon as the cluster is within threshold.
 *   - `load-optimal`: local search on the maximum: keep taking load off the most loaded node
 *     (best-fit moves, swaps when no move helps) until the maximum is within `tolerance` (1%)
 *     of the mean or nothing lowers it, within the move budget. It ends at a local optimum, so
 *     a second run leaves it alone; it moves more than minimal-disturbance, for a lower maximum.
 *   - `weight-adjustment`: changes no owner directly; it re-weights nodes (the seed's
 *     w = 1/(1+score), see weightAdjustment) and lets the placement table move partitions.
 *
 * Why within threshold, and never "perfect": every move costs a copy of the partition's data,
 * and loads are measured with noise; a plan that chases the last percent oscillates.
 */
import type { Clock, Member, NodeId } from '../types.ts';
import { systemClock } from '../types.ts';
import { nextTable as placeNextTable, type PartitionTable, type PlacementOptions } from '../placement/table.ts';
import { RebalanceError } from './errors.ts';

/** The strategy names (same list as config `REBALANCE_STRATEGIES`; core does not import config). */
export const STRATEGIES = ['minimal-disturbance', 'load-optimal', 'weight-adjustment'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** What the planner needs of a node's LoadReport (a LoadReport is one). */
export interface NodeLoad {
  readonly id: NodeId;
  /** 0..1 load score. */
  readonly score: number;
  /** partition -> requests per second served for it; only partitions with traffic. */
  readonly partitionQps?: Readonly<Record<number, number>>;
}

/** One owner change. */
export interface OwnerMove {
  partition: number;
  from: NodeId;
  to: NodeId;
}

export interface RebalancePlan {
  strategy: Strategy;
  /** Owner changes, ascending by partition (for weight-adjustment: those the new table makes). */
  moves: OwnerMove[];
  /** weight-adjustment only: the new weight of every member. */
  weights?: Record<NodeId, number>;
  /** Load of every member now (its reported score; 0 for a member without a report). */
  before: Record<NodeId, number>;
  /** Predicted load of every member once the plan has run. */
  after: Record<NodeId, number>;
  /** Mean member load (the same before and after: moves shift load, they do not remove it). */
  mean: number;
  /** Whether every member is predicted within threshold of the mean afterwards. */
  withinThreshold: boolean;
  /** The table that carries out the plan; absent when nothing changes. */
  nextTable?: PartitionTable;
}

export interface PlanOptions {
  /** Allowed distance from the mean load, as a fraction of it. @default 0.2 (config `rebalance.threshold`) */
  threshold?: number;
  /** Most owner changes a plan may make. @default the table's partitionCount */
  maxMoves?: number;
  /**
   * load-optimal: stop once the maximum is within this fraction of the mean; the last percent of
   * balance is not worth the copies. @default 0.01
   */
  tolerance?: number;
  /** weight-adjustment: most a weight may change per plan, as a fraction of it. @default 0.25 */
  maxStep?: number;
  /** weight-adjustment: weight bounds. @default 0.25 and 4 */
  minWeight?: number;
  maxWeight?: number;
  /** Stamps `createdAt` of the next table. @default systemClock */
  clock?: Clock;
  /** Passed to the placement for weight-adjustment (vnodesPerWeight, hash). @default the placement's */
  placement?: Omit<PlacementOptions, 'partitionCount' | 'clock' | 'replicationFactor'>;
}

/** Runs the named strategy. Throws RebalanceError UNKNOWN_STRATEGY for any other name. */
export function planRebalance(strategy: string, table: PartitionTable, reports: readonly NodeLoad[], opts: PlanOptions = {}): RebalancePlan {
  switch (strategy) {
    case 'minimal-disturbance':
      return minimalDisturbance(table, reports, opts);
    case 'load-optimal':
      return loadOptimal(table, reports, opts);
    case 'weight-adjustment':
      return weightAdjustment(table, reports, opts);
    default:
      throw new RebalanceError('UNKNOWN_STRATEGY', `strategy must be one of ${STRATEGIES.join(', ')}. Got: ${JSON.stringify(strategy)}`);
  }
}

export function isStrategy(s: unknown): s is Strategy {
  return typeof s === 'string' && (STRATEGIES as readonly string[]).includes(s);
}

// ---------------------------------------------------------------------------------------------
// The load model

/** Mutable working state of one plan: owners, partition loads and node loads, by member index. */
class Model {
  readonly ids: NodeId[];
  readonly P: number;
  readonly N: number;
  /** partition -> owner member index (-1: no members) */
  readonly owner: Int32Array;
  /** partition -> its share of the load */
  readonly pload: Float64Array;
  /** member -> load now */
  readonly load: Float64Array;
  /** member -> load when the plan started (= its score) */
  readonly before: Float64Array;
  /** member -> owned partitions (unordered); pos[p] is p's index in owned[owner[p]] */
  readonly owned: number[][];
  private readonly pos: Int32Array;
  /** partition -> owner in the input table */
  private readonly origOwner: Int32Array;
  /** partitions whose owner now differs from the input table's */
  changes = 0;
  /** member -> zone index, only when some member has a zone */
  private readonly zoneOf: Int32Array | undefined;
  private readonly zoneCount: number = 0;
  /** partition -> holders (member indexes) in the input table, only with zones */
  private readonly holders: number[][] = [];
  readonly mean: number;

  constructor(table: PartitionTable, reports: readonly NodeLoad[]) {
    const P = table.partitionCount;
    const N = table.members.length;
    this.P = P;
    this.N = N;
    this.ids = table.members.map((m) => m.id);
    const index = new Map<NodeId, number>();
    this.ids.forEach((id, i) => index.set(id, i));
    // zones, as the placement counts them: a member without a label is a zone of its own
    if (table.members.some((m) => m.zone !== undefined)) {
      const byLabel = new Map<string, number>();
      this.zoneOf = new Int32Array(N);
      let count = 0;
      table.members.forEach((m, i) => {
        let z = m.zone === undefined ? undefined : byLabel.get(m.zone);
        if (z === undefined) {
          z = count++;
          if (m.zone !== undefined) byLabel.set(m.zone, z);
        }
        this.zoneOf![i] = z;
      });
      this.zoneCount = count;
      this.holders = table.assignments.map((h) => h.map((id) => index.get(id) ?? -1));
    }
    this.owner = new Int32Array(P).fill(-1);
    this.pos = new Int32Array(P);
    this.owned = Array.from({ length: N }, () => []);
    for (let p = 0; p < P; p++) {
      const o = table.assignments[p]?.[0];
      const n = o === undefined ? -1 : (index.get(o) ?? -1);
      this.owner[p] = n;
      if (n >= 0) {
        this.pos[p] = this.owned[n]!.length;
        this.owned[n]!.push(p);
      }
    }
    this.pload = new Float64Array(P);
    const score = new Float64Array(N);
    const reported = new Uint8Array(N);
    for (const r of reports) {
      const n = index.get(r.id);
      if (n === undefined || reported[n] === 1) continue; // not a member, or a duplicate report
      reported[n] = 1;
      const s = Number.isFinite(r.score) && r.score > 0 ? r.score : 0;
      score[n] = s;
      if (s === 0) continue;
      let total = 0;
      const q = r.partitionQps;
      if (q !== undefined) {
        for (const k in q) {
          const p = Number(k);
          const v = q[p]!;
          if (Number.isInteger(p) && p >= 0 && p < P && v > 0 && Number.isFinite(v)) total += v;
        }
      }
      if (total > 0) {
        for (const k in q) {
          const p = Number(k);
          const v = q![p]!;
          if (Number.isInteger(p) && p >= 0 && p < P && v > 0 && Number.isFinite(v)) this.pload[p]! += (s * v) / total;
        }
      } else {
        const mine = this.owned[n]!;
        for (const p of mine) this.pload[p]! += s / mine.length;
      }
    }
    this.load = new Float64Array(N);
    for (let p = 0; p < P; p++) if (this.owner[p]! >= 0) this.load[this.owner[p]!]! += this.pload[p]!;
    // base = what owned partitions do not explain; it stays with the node
    let sum = 0;
    for (let n = 0; n < N; n++) {
      if (reported[n] === 1) this.load[n] = score[n]!;
      sum += this.load[n]!;
    }
    this.before = Float64Array.from(this.load);
    this.origOwner = Int32Array.from(this.owner);
    this.mean = N === 0 ? 0 : sum / N;
  }

  /**
   * May member n own partition p without two copies in one zone? Always in a zone-less table,
   * and when n holds a backup of p (the two swap: the holders stay the same); otherwise n's
   * zone must not be the zone of a backup (the backups stay where they are). Kept only as
   * strict as the table: with fewer zones than copies, only the first `zones` copies are apart.
   */
  mayOwn(p: number, n: number): boolean {
    if (this.zoneOf === undefined) return true;
    const holders = this.holders[p]!;
    if (holders.includes(n)) return true;
    const z = this.zoneOf[n]!;
    for (let s = 1; s < holders.length && s < this.zoneCount; s++) if (this.zoneOf[holders[s]!] === z) return false;
    return true;
  }

  move(p: number, to: number): void {
    const from = this.owner[p]!;
    if (from === to) return;
    // swap-remove p from its owner's list
    const list = this.owned[from]!;
    const i = this.pos[p]!;
    const last = list.pop()!;
    if (last !== p) {
      list[i] = last;
      this.pos[last] = i;
    }
    const dst = this.owned[to]!;
    this.pos[p] = dst.length;
    dst.push(p);
    this.owner[p] = to;
    const orig = this.origOwner[p]!;
    if (from === orig) this.changes++;
    else if (to === orig) this.changes--;
    this.load[from]! -= this.pload[p]!;
    this.load[to]! += this.pload[p]!;
  }

  within(threshold: number): boolean {
    const band = threshold * this.mean + 1e-12;
    for (let n = 0; n < this.N; n++) if (Math.abs(this.load[n]! - this.mean) > band) return false;
    return true;
  }

  argmax(): number {
    let best = -1;
    for (let n = 0; n < this.N; n++) if (best < 0 || this.load[n]! > this.load[best]!) best = n;
    return best;
  }

  argmin(): number {
    let best = -1;
    for (let n = 0; n < this.N; n++) if (best < 0 || this.load[n]! < this.load[best]!) best = n;
    return best;
  }

  /** Member indexes by load, ascending (ties by index, i.e. by id). */
  byLoad(): number[] {
    const order = Array.from({ length: this.N }, (_, i) => i);
    order.sort((a, b) => this.load[a]! - this.load[b]! || a - b);
    return order;
  }

  record(a: Float64Array): Record<NodeId, number> {
    const out: Record<NodeId, number> = {};
    for (let n = 0; n < this.N; n++) out[this.ids[n]!] = a[n]!;
    return out;
  }
}

interface Common {
  threshold: number;
  maxMoves: number;
  clock: Clock;
}

function common(table: PartitionTable, opts: PlanOptions): Common {
  const threshold = opts.threshold ?? 0.2;
  if (!(threshold >= 0 && threshold <= 10)) {
    throw new RebalanceError('INVALID_OPTION', `threshold must be a number from 0 to 10. Got: ${String(threshold)}`);
  }
  const maxMoves = opts.maxMoves ?? table.partitionCount;
  if (!Number.isInteger(maxMoves) || maxMoves < 0) {
    throw new RebalanceError('INVALID_OPTION', `maxMoves must be an integer >= 0. Got: ${String(maxMoves)}`);
  }
  return { threshold, maxMoves, clock: opts.clock ?? systemClock };
}

/** Relative float tolerance: moves that change a load by less are noise, not progress. */
const EPS = 1e-9;

/**
 * The partition of `src` whose load is closest to half of `gap` and strictly inside (0, gap):
 * moving it lowers the pair's maximum. -1 if none.
 */
function bestFit(m: Model, src: number, gap: number, dst: number): number {
  const tol = EPS * (m.mean > 0 ? m.mean : 1);
  const half = gap / 2;
  let best = -1;
  let bestDist = Infinity;
  for (const p of m.owned[src]!) {
    if (!m.mayOwn(p, dst)) continue;
    const l = m.pload[p]!;
    if (l <= tol || l >= gap - tol) continue;
    const d = Math.abs(l - half);
    if (d < bestDist || (d === bestDist && p < best)) {
      bestDist = d;
      best = p;
    }
  }
  return best;
}

/** Owner moves made by the model, as a plan (with the next table when anything moved). */
function finish(strategy: Strategy, table: PartitionTable, m: Model, c: Common): RebalancePlan {
  const moves: OwnerMove[] = [];
  let assignments: NodeId[][] | undefined;
  for (let p = 0; p < m.P; p++) {
    const orig = table.assignments[p]!;
    const n = m.owner[p]!;
    if (n < 0) continue;
    const to = m.ids[n]!;
    if (orig[0] === to) continue;
    moves.push({ partition: p, from: orig[0]!, to });
    assignments ??= table.assignments.map((h) => h);
    const next = [...orig];
    const k = next.indexOf(to);
    // the target held a backup: swap, so holders stay distinct (see the top of this file)
    if (k > 0) next[k] = orig[0]!;
    next[0] = to;
    assignments[p] = next;
  }
  const plan: RebalancePlan = {
    strategy,
    moves,
    before: m.record(m.before),
    after: m.record(m.load),
    mean: m.mean,
    withinThreshold: m.within(c.threshold),
  };
  if (assignments !== undefined) {
    plan.nextTable = freeze({
      version: table.version + 1,
      partitionCount: table.partitionCount,
      replicationFactor: table.replicationFactor,
      members: table.members.map((x) => ({ ...x })),
      assignments,
      createdAt: c.clock.now(),
    });
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Steps shared by minimal-disturbance and load-optimal. A step is "useful" when it shifts a load
// strictly between 0 and the pair's gap from the more loaded node to the less loaded one: that
// lowers the pair's maximum and strictly lowers Σ load², so a search made of useful steps always
// terminates and never undoes itself.

/** Move the best-fitting partition of src to dst if that is useful. */
function tryMove(m: Model, src: number, dst: number): boolean {
  const gap = m.load[src]! - m.load[dst]!;
  if (!(gap > EPS * m.mean)) return false;
  const p = bestFit(m, src, gap, dst);
  if (p < 0) return false;
  m.move(p, dst);
  return true;
}

/** Swap a partition of src with a lighter one of dst if that is useful (two owner changes). */
function trySwap(m: Model, src: number, dst: number): boolean {
  const gap = m.load[src]! - m.load[dst]!;
  if (!(gap > EPS * m.mean)) return false;
  const swap = bestSwap(m, src, dst, gap);
  if (swap === undefined) return false;
  m.move(swap[0], dst);
  m.move(swap[1], src);
  return true;
}

/** How many of the most (and least) loaded nodes the slow path pairs up for swaps. */
const SWAP_FANOUT = 16;

/**
 * One useful step, trying the cheap candidates first: a move from the most loaded node to the
 * least loaded; then any move, sources from the top down and targets from the bottom up; then
 * (if the budget allows two changes) swaps among the SWAP_FANOUT most and least loaded nodes.
 * `srcFloor`: sources below this load are not tried (load-optimal only lowers the top).
 */
function step(m: Model, budgetLeft: number, srcFloor: number): boolean {
  if (budgetLeft <= 0) return false;
  const hi = m.argmax();
  const lo = m.argmin();
  if (hi < 0 || hi === lo) return false;
  if (m.load[hi]! >= srcFloor && tryMove(m, hi, lo)) return true;
  const order = m.byLoad();
  for (let i = order.length - 1; i > 0; i--) {
    const src = order[i]!;
    if (m.load[src]! < srcFloor) break;
    for (let j = 0; j < i; j++) {
      const dst = order[j]!;
      if (!(m.load[src]! - m.load[dst]! > EPS * m.mean)) break; // targets only get closer from here
      if (tryMove(m, src, dst)) return true;
    }
  }
  if (budgetLeft < 2) return false;
  for (let i = order.length - 1; i >= Math.max(1, order.length - SWAP_FANOUT); i--) {
    const src = order[i]!;
    if (m.load[src]! < srcFloor) break;
    for (let j = 0; j < Math.min(i, SWAP_FANOUT); j++) if (trySwap(m, src, order[j]!)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// minimal-disturbance

/**
 * The fewest owner moves (greedily) that bring every node within `threshold` of the mean: each
 * step moves one partition from the most loaded node that can usefully give one to the least
 * loaded node that can usefully take it, choosing the partition closest to half their gap (a
 * swap when no single move helps). Stops at threshold, when no step helps (e.g. one hot
 * partition outweighs the band), or at the move budget.
 */
export function minimalDisturbance(table: PartitionTable, reports: readonly NodeLoad[], opts: PlanOptions = {}): RebalancePlan {
  const c = common(table, opts);
  const m = new Model(table, reports);
  while (!m.within(c.threshold) && step(m, c.maxMoves - m.changes, Number.NEGATIVE_INFINITY));
  return finish('minimal-disturbance', table, m, c);
}

// ---------------------------------------------------------------------------------------------
// load-optimal

/**
 * Lower the maximum node load as far as useful moves and swaps from the top can, until it is
 * within `tolerance` of the mean, nothing helps any more, or the move budget is spent. Ties at
 * the top are all tried, so the result does not depend on tie order and a rerun is a no-op.
 */
export function loadOptimal(table: PartitionTable, reports: readonly NodeLoad[], opts: PlanOptions = {}): RebalancePlan {
  const c = common(table, opts);
  const tolerance = opts.tolerance ?? 0.01;
  if (!(tolerance > 0 && tolerance < 1)) {
    throw new RebalanceError('INVALID_OPTION', `tolerance must be a number in (0, 1). Got: ${String(tolerance)}`);
  }
  const m = new Model(table, reports);
  if (m.N < 2 || !(m.mean > 0)) return finish('load-optimal', table, m, c);
  const goal = m.mean * (1 + tolerance);
  for (;;) {
    const top = m.load[m.argmax()]!;
    if (top <= goal) break;
    // only the nodes at the top (up to float noise) may give: lowering them lowers the maximum
    if (!step(m, c.maxMoves - m.changes, top - EPS * m.mean)) break;
  }
  return finish('load-optimal', table, m, c);
}

/**
 * The swap (a on src, b on dst) whose load difference a - b is closest to half the gap and
 * inside (0, gap). Binary search over dst's partitions sorted by load: O(k log k).
 */
function bestSwap(m: Model, src: number, dst: number, gap: number): [number, number] | undefined {
  const theirs = [...m.owned[dst]!].sort((x, y) => m.pload[x]! - m.pload[y]! || x - y);
  if (theirs.length === 0) return undefined;
  const tol = EPS * m.mean;
  const half = gap / 2;
  let best: [number, number] | undefined;
  let bestDist = Infinity;
  for (const a of m.owned[src]!) {
    const la = m.pload[a]!;
    // want lb ≈ la - half
    const want = la - half;
    let lo = 0;
    let hi = theirs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (m.pload[theirs[mid]!]! < want) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo - 1; k <= lo; k++) {
      const b = theirs[k];
      if (b === undefined || !m.mayOwn(a, dst) || !m.mayOwn(b, src)) continue;
      const delta = la - m.pload[b]!;
      if (delta <= tol || delta >= gap - tol) continue;
      const d = Math.abs(delta - half);
      if (d < bestDist) {
        bestDist = d;
        best = [a, b];
      }
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// weight-adjustment

/**
 * Re-weight the nodes so the table itself moves partitions. The target weight follows the seed's
 * w = 1/(1+score), with two changes that make it converge:
 *   - score is taken relative to the cluster mean (load/mean), so the push is the same whether
 *     the cluster is at 5% or at 80% of capacity (1/(1+0.05) vs 1/(1+0.1) would barely differ);
 *   - it multiplies the CURRENT weight: w' = w / (1 + load/mean). A node that stays hot keeps
 *     losing weight until its load reaches the mean, and a node whose load falls below the mean
 *     gains weight again (weights rise when load falls), so the fixed point is a balanced
 *     cluster, not a fixed function of the score.
 * Targets are normalised to mean weight 1, then damped: a weight changes by at most `maxStep`
 * (25%) per plan and stays in [minWeight, maxWeight] ([0.25, 4]), rounded to 1/1000 so equal
 * inputs give byte-equal tables. A cluster already within threshold keeps its weights.
 */
export function weightAdjustment(table: PartitionTable, reports: readonly NodeLoad[], opts: PlanOptions = {}): RebalancePlan {
  const c = common(table, opts);
  const maxStep = opts.maxStep ?? 0.25;
  const minWeight = opts.minWeight ?? 0.25;
  const maxWeight = opts.maxWeight ?? 4;
  if (!(maxStep > 0 && maxStep < 1)) throw new RebalanceError('INVALID_OPTION', `maxStep must be in (0, 1). Got: ${String(maxStep)}`);
  if (!(minWeight > 0 && maxWeight >= minWeight && Number.isFinite(maxWeight))) {
    throw new RebalanceError('INVALID_OPTION', `weight bounds must satisfy 0 < minWeight <= maxWeight. Got: ${String(minWeight)}, ${String(maxWeight)}`);
  }
  const m = new Model(table, reports);
  const current: Record<NodeId, number> = {};
  for (const x of table.members) current[x.id] = x.weight;
  if (m.N < 2 || !(m.mean > 0) || m.within(c.threshold)) {
    const plan = finish('weight-adjustment', table, m, c);
    plan.weights = current;
    return plan;
  }
  const raw = new Float64Array(m.N);
  let sum = 0;
  for (let n = 0; n < m.N; n++) {
    raw[n] = table.members[n]!.weight / (1 + m.load[n]! / m.mean);
    sum += raw[n]!;
  }
  const weights: Record<NodeId, number> = {};
  const members: Member[] = [];
  for (let n = 0; n < m.N; n++) {
    const w = table.members[n]!.weight;
    let t = (raw[n]! * m.N) / sum; // normalised: mean target weight 1
    t = Math.min(Math.max(t, w * (1 - maxStep)), w * (1 + maxStep));
    t = Math.min(Math.max(t, minWeight), maxWeight);
    t = Math.round(t * 1000) / 1000;
    weights[m.ids[n]!] = t;
    const zone = table.members[n]!.zone;
    members.push(zone === undefined ? { id: m.ids[n]!, weight: t } : { id: m.ids[n]!, weight: t, zone });
  }
  if (members.every((x, n) => x.weight === table.members[n]!.weight)) {
    // damping and bounds left every weight where it was: nothing to do
    const plan = finish('weight-adjustment', table, m, c);
    plan.weights = weights;
    return plan;
  }
  const next = placeNextTable(table, members, { ...opts.placement, clock: c.clock });
  // replay the new owners into the model to predict the loads
  const index = new Map<NodeId, number>();
  m.ids.forEach((id, i) => index.set(id, i));
  for (let p = 0; p < m.P; p++) {
    const o = next.assignments[p]![0];
    const n = o === undefined ? -1 : index.get(o)!;
    if (n >= 0 && n !== m.owner[p]) m.move(p, n);
  }
  const moves: OwnerMove[] = [];
  for (let p = 0; p < m.P; p++) {
    const from = table.assignments[p]![0];
    const to = next.assignments[p]![0];
    if (from !== undefined && to !== undefined && from !== to) moves.push({ partition: p, from, to });
  }
  return {
    strategy: 'weight-adjustment',
    moves,
    weights,
    before: m.record(m.before),
    after: m.record(m.load),
    mean: m.mean,
    withinThreshold: m.within(c.threshold),
    nextTable: next,
  };
}

// Tables are shared between components; freezing turns an accidental edit into an exception
// (the same rule as placement/table.ts).
function freeze(t: PartitionTable): PartitionTable {
  for (const list of t.assignments) Object.freeze(list);
  for (const x of t.members) Object.freeze(x);
  Object.freeze(t.assignments);
  Object.freeze(t.members);
  return Object.freeze(t);
}
