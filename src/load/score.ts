/**
 * The load score: one number in 0..1 per node, so the rebalancer can compare nodes.
 *
 * score = Σ weight_i · min(1, measured_i / capacity_i) over qps, storage, memory, cpu and
 * network, with the weights summing to 1 (SPEC §5 `load.score_weights`; the seed's defaults
 * 0.3/0.2/0.2/0.2/0.1). Each term is clamped, so one saturated resource cannot push the score
 * past 1 and hide the others. A capacity of 0 (e.g. no group has a byte budget) turns its term
 * off rather than dividing by zero.
 *
 * Pure, no I/O; both functions are on the leader's periodic check, so they avoid allocation.
 */
import type { Config } from '../config/schema.ts';

export interface ScoreWeights {
  qps: number;
  storage: number;
  memory: number;
  cpu: number;
  network: number;
}

/** The seed's weights (SPEC §5 `load.score_weights` defaults). */
export const DEFAULT_SCORE_WEIGHTS: Readonly<ScoreWeights> = Object.freeze({ qps: 0.3, storage: 0.2, memory: 0.2, cpu: 0.2, network: 0.1 });

/** What "fully loaded" means for each term (SPEC §5 `load.capacity`). */
export interface LoadCapacity {
  /** Requests per second. Config default 20000. */
  qps: number;
  /** Stored bytes. Config default: the sum of all groups' cache_bytes. */
  storageBytes: number;
  /** Process RSS. Config default 1 GiB. */
  memoryBytes: number;
  /** Bytes in + out per second. Config default 100 MiB. */
  networkBytesPerSec: number;
  /** CPU in cores (process CPU time per wall-clock time). @default 1: Node runs JS on one core */
  cpuCores?: number;
}

/** One node's measurements, the inputs of the score. */
export interface LoadSample {
  /** Requests per second, all operations. */
  qps: number;
  storedBytes: number;
  /** Resident set size of the process. */
  rssBytes: number;
  /** Process CPU time per wall-clock time (1 = one core busy). */
  cpu: number;
  bytesInPerSec: number;
  bytesOutPerSec: number;
}

/** `load.capacity` of a parsed config in the score's shape. */
export { detectImbalance } from '../core/rebalance/imbalance.ts';

export function capacityFromConfig(load: Config['load']): LoadCapacity {
  return {
    qps: load.capacity.qps,
    storageBytes: load.capacity.storage_bytes,
    memoryBytes: load.capacity.memory_bytes,
    networkBytesPerSec: load.capacity.network_bytes_per_sec,
  };
}

/** min(1, x / cap), 0 for a capacity that is not positive or a reading that is not a number. */
function ratio(x: number, cap: number | undefined): number {
  if (!(cap !== undefined && cap > 0) || !(x > 0)) return 0;
  const r = x / cap;
  return r > 1 ? 1 : r;
}

/**
 * The node's load score in 0..1. Weights need not sum to 1 (they are divided by their sum);
 * all-zero weights give 0.
 */
export function loadScore(sample: LoadSample, capacity: LoadCapacity, weights: ScoreWeights = DEFAULT_SCORE_WEIGHTS): number {
  const sum = weights.qps + weights.storage + weights.memory + weights.cpu + weights.network;
  if (!(sum > 0)) return 0;
  const s =
    weights.qps * ratio(sample.qps, capacity.qps) +
    weights.storage * ratio(sample.storedBytes, capacity.storageBytes) +
    weights.memory * ratio(sample.rssBytes, capacity.memoryBytes) +
    weights.cpu * ratio(sample.cpu, capacity.cpuCores ?? 1) +
    weights.network * ratio(sample.bytesInPerSec + sample.bytesOutPerSec, capacity.networkBytesPerSec);
  // weights that already sum to 1 up to rounding are used as given, so 0.3 stays exactly 0.3
  const score = Math.abs(sum - 1) < 1e-9 ? s : s / sum;
  return score > 1 ? 1 : score;
}

/** Largest |score - mean| / mean over the reports (0 when the mean is 0): "how imbalanced". */
export function maxDeviation(reports: readonly { readonly score: number }[]): number {
  const n = reports.length;
  if (n === 0) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += reports[i]!.score;
  const mean = sum / n;
  if (!(mean > 0)) return 0;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const d = Math.abs(reports[i]!.score - mean);
    if (d > worst) worst = d;
  }
  return worst / mean;
}
