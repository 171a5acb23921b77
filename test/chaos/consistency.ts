/**
 * One verdict per phase from its history: request counts (failures at the nodes under the fault
 * apart from the others, never dropped), lost acknowledged writes, stale reads, reads of values
 * nobody wrote, INCR anomalies, and the linearizability check per key with the shrunk history of
 * every violation. Pure (the checker's budget reads the clock it is given).
 */
import { byKey, formatOp, incrAnomalies, lostWrites, staleReads, type IncrAnomaly, type Op } from './history.ts';
import { checkHistory, type Budget } from './linearizability.ts';

export interface Violation {
  key: string;
  /** No single op could be removed (false: the shrink budget ran out first). */
  isMinimal: boolean;
  /** The shrunk history, one op per line, times in ms from the phase start. */
  history: string[];
}

export interface Consistency {
  /** Ops of the load (final reads excluded). */
  requests: number;
  /** Ops that did not succeed, sent to nodes not under the fault. */
  failed: number;
  /** Ops that did not succeed, sent to a node under the fault. */
  failedAtFaulty: number;
  /** Of `failed`: reads (a read can always go to another holder, so none should fail). */
  failedReads: number;
  /** When the first and the last of `failed` were sent, ms from t0 (undefined: none failed). */
  failedSpan: [number, number] | undefined;
  /** Of the failed (both kinds): mutations whose effect is unknown. */
  indeterminate: number;
  /** Keys whose final reads miss an acknowledged write. */
  lost: number;
  /** Stale reads (every node); of them, `staleAtFaulty` were sent to a node under the fault. */
  stale: number;
  staleAtFaulty: number;
  /** Reads of a value no write of the key wrote (or before its write). */
  unexplained: number;
  /** Keys whose history is not linearizable. */
  linearizability_violations: number;
  /** Keys the checker could not decide within its budget. */
  unknown: { key: string; reason: string }[];
  incr: IncrAnomaly[];
  violations: Violation[];
  staleExamples: string[];
  lostExamples: string[];
  failureExamples: string[];
}

export interface AnalyzeOptions {
  /** Node ids under the fault during the phase. */
  faulty: ReadonlySet<string>;
  /** Times in the report are relative to this (ms on the history's clock). */
  t0?: number;
  budget?: Budget;
  shrinkMs?: number;
  /** Examples kept per kind. Default 5. */
  examples?: number;
}

export function analyze(ops: readonly Op[], opts: AnalyzeOptions): Consistency {
  const t0 = opts.t0 ?? 0;
  const keep = opts.examples ?? 5;
  const load = ops.filter((o) => !o.final);
  const notOk = load.filter((o) => o.outcome !== 'ok');
  const atFaulty = (o: Op): boolean => opts.faulty.has(o.node);
  const failedHealthy = notOk.filter((o) => !atFaulty(o));
  const failureExamples = failedHealthy.slice(0, keep).map((o) => formatOp(o, t0));
  const calls = failedHealthy.map((o) => o.call - t0);

  let stale = 0;
  let staleAtFaulty = 0;
  let unexplained = 0;
  const staleExamples: string[] = [];
  for (const [, keyOps] of byKey(ops)) {
    if (keyOps.some((o) => o.kind === 'incr')) continue;
    const s = staleReads(keyOps);
    unexplained += s.unexplained.length;
    for (const x of s.stale) {
      if (x.read.final) continue; // counted as lost
      stale++;
      if (atFaulty(x.read)) staleAtFaulty++;
      if (staleExamples.length < keep) {
        staleExamples.push(`${formatOp(x.read, t0)}; it saw ${x.source === undefined ? 'the initial absence' : formatOp(x.source, t0)}; newer: ${formatOp(x.newer, t0)}`);
      }
    }
  }
  const lost = lostWrites(ops);
  const verdicts = checkHistory(ops, { ...(opts.budget ? { budget: opts.budget } : {}), ...(opts.shrinkMs !== undefined ? { shrinkMs: opts.shrinkMs } : {}) });
  const violations: Violation[] = [];
  const unknown: { key: string; reason: string }[] = [];
  for (const v of verdicts) {
    if (v.kind === 'violation') violations.push({ key: v.key, isMinimal: v.isMinimal, history: v.minimal.map((o) => formatOp(o, t0)) });
    if (v.kind === 'unknown') unknown.push({ key: v.key, reason: v.reason });
  }
  return {
    requests: load.length,
    failed: failedHealthy.length,
    failedReads: failedHealthy.filter((o) => o.kind === 'read').length,
    failedSpan: calls.length === 0 ? undefined : [Math.min(...calls), Math.max(...calls)],
    failedAtFaulty: notOk.filter(atFaulty).length,
    indeterminate: notOk.filter((o) => o.outcome === 'indeterminate').length,
    lost: lost.length,
    stale,
    staleAtFaulty,
    unexplained,
    linearizability_violations: violations.length,
    unknown,
    incr: incrAnomalies(ops),
    violations,
    staleExamples,
    lostExamples: lost.slice(0, keep).map((l) => `${l.key}: ${formatOp(l.read, t0)}; acknowledged ${formatOp(l.lost, t0)}`),
    failureExamples,
  };
}
