// One published benchmark figure: our value, the peer's value measured in the same run, their
// ratio and whether the target was met. Pure: no I/O.
//
// Every comparison is made side by side in one run and reported as a ratio because the bench
// machine (2 shared cores) drifts by more than the differences we care about; an absolute number
// from another day is not comparable.

export interface Figure {
  /** Stable dotted id, `scenario.what[.detail]`, e.g. `http.get.rps`. */
  name: string;
  /** Unit of `ours` and `peer`, e.g. `req/s`, `ms`, `keys/s`, `bytes`. */
  unit: string;
  ours: number;
  /** The peer's value from the same run; null when the figure has no peer. */
  peer: number | null;
  /** ours / peer (or the median of per-round ratios); null without a peer. */
  ratio: number | null;
  /** Human-readable target, e.g. `>= 0.9x` or `<= 2.5 µs`; null when only reported. */
  target: string | null;
  /** Whether the target was met; null when there is no target. */
  pass: boolean | null;
}

/**
 * How a target is judged:
 * - `ratio>=` / `ratio<=`: compare `ratio` (ours relative to the peer) with the bound;
 * - `value>=` / `value<=`: compare `ours` itself with the bound, in the figure's unit.
 */
export type TargetKind = 'ratio>=' | 'ratio<=' | 'value>=' | 'value<=';

export interface Target {
  kind: TargetKind;
  value: number;
}

export interface FigureInput {
  name: string;
  unit: string;
  ours: number;
  /** Default null: the figure is reported without a peer. */
  peer?: number | null;
  /**
   * Default ours / peer. Pass the median of per-round ratios when the two sides were measured
   * alternately over several rounds: it cancels drift better than a ratio of medians.
   */
  ratio?: number | null;
  /** Default null: reported only, never a miss. */
  target?: Target | null;
}

export class FigureError extends Error {
  readonly code = 'BENCH_FIGURE_INVALID';
  override name = 'FigureError';
}

export function isFigureError(e: unknown): e is FigureError {
  return e instanceof FigureError;
}

export function formatTarget(t: Target, unit: string): string {
  const op = t.kind.endsWith('>=') ? '>=' : '<=';
  return t.kind.startsWith('ratio') ? `${op} ${t.value}x` : `${op} ${t.value} ${unit}`;
}

export function judge(t: Target, ours: number, ratio: number | null): boolean | null {
  const x = t.kind.startsWith('ratio') ? ratio : ours;
  // A ratio target without a measured ratio cannot pass; it is a miss, not "no target",
  // so a peer that failed to run never turns into a silent pass.
  if (x === null || !Number.isFinite(x)) return false;
  return t.kind.endsWith('>=') ? x >= t.value : x <= t.value;
}

/** Builds a figure, computing the ratio and the verdict. Throws FigureError on bad input. */
export function figure(input: FigureInput): Figure {
  const { name, unit, ours } = input;
  const peer = input.peer ?? null;
  const target = input.target ?? null;
  if (!/^[a-z0-9_]+(\.[a-z0-9_]+)+$/.test(name)) {
    throw new FigureError(`figure name must be dotted lower-case ids like "http.get.rps". Got: "${name}"`);
  }
  if (!Number.isFinite(ours)) throw new FigureError(`${name}: ours must be a finite number. Got: ${ours}`);
  if (peer !== null && !Number.isFinite(peer)) {
    throw new FigureError(`${name}: peer must be a finite number or null. Got: ${peer}`);
  }
  if (target !== null && target.kind.startsWith('ratio') && peer === null && input.ratio == null) {
    throw new FigureError(`${name}: a ${target.kind} target needs a peer value`);
  }
  let ratio: number | null;
  if (input.ratio !== undefined) ratio = input.ratio;
  else if (peer === null || peer === 0) ratio = null;
  else ratio = ours / peer;
  if (ratio !== null && !Number.isFinite(ratio)) ratio = null;
  return {
    name,
    unit,
    ours,
    peer,
    ratio,
    target: target === null ? null : formatTarget(target, unit),
    pass: target === null ? null : judge(target, ours, ratio),
  };
}

/** Median of a non-empty list (mean of the middle two for an even length). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new FigureError('median of an empty list');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
