/** Which nodes are out of balance: pure, used by the rebalance governor and the load monitor. */

/**
 * The reports whose score is more than `threshold` (a fraction of the mean: 0.2 = ±20%) away
 * from the cluster mean, in input order; [] when the mean is 0 or there are fewer than 2 nodes.
 * Returns the input objects themselves: no copies, two passes, no allocation when balanced
 * beyond the empty result.
 */
export function detectImbalance<T extends { readonly id: string; readonly score: number }>(reports: readonly T[], threshold: number): T[] {
  const n = reports.length;
  const out: T[] = [];
  if (n < 2) return out;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += reports[i]!.score;
  const mean = sum / n;
  if (!(mean > 0)) return out;
  const band = threshold * mean;
  for (let i = 0; i < n; i++) {
    const r = reports[i]!;
    const d = r.score - mean;
    if (d > band || -d > band) out.push(r);
  }
  return out;
}
