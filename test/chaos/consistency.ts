/**
 * One verdict per phase from its history: request counts (failures at the nodes under the fault
 * apart from the others, never dropped), lost acknowledged writes, stale reads, reads of values
 * nobody wrote, INCR anomalies, and the linearizability check per key with the shrunk history of
 * every violation. Pure (the checker's budget reads the clock it is given).
 *
 * With `windowMs`, the check also says what lies beyond the weaker promise of README's "Known
 * window" (a node its peers take for unreachable while it still answers its clients can answer
 * from its copy for up to one heartbeat after the first write of a key it missed):
 *  - a stale read is within it when it began at most `windowMs` after the first acknowledged
 *    write it missed (history.ts StaleRead.newer);
 *  - a key that is not linearizable is within it when the key's history is linearizable without
 *    its reads that began within the window after an acknowledged write they do not show (stale
 *    ones, and ones that show what an unacknowledged write left at a node that missed it).
 * Lost writes, reads of values never written and INCR anomalies never are (commands run at one
 * coordinator: router.ts commandOrder).
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
  /** With `windowMs`: what the Known window does not explain (each must be 0 for the weaker promise to hold). */
  beyondWindow?: { windowMs: number; stale: number; linearizability_violations: number; incr: number };
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
  /** The Known window, ms (see the file comment); undefined: no beyondWindow figures. */
  windowMs?: number;
}

/** What a read shows after mutation `w`: a write's value, null after a delete, an INCR's result as text. */
function shown(w: Op): string | null {
  if (w.kind === 'write') return w.value!;
  if (w.kind === 'incr') return String(w.result);
  return null;
}

export function analyze(ops: readonly Op[], opts: AnalyzeOptions): Consistency {
  const t0 = opts.t0 ?? 0;
  const keep = opts.examples ?? 5;
  const load = ops.filter((o) => !o.final);
  const notOk = load.filter((o) => o.outcome !== 'ok');
  const atFaulty = (o: Op): boolean => opts.faulty.has(o.node);
  const failedHealthy = notOk.filter((o) => !atFaulty(o));
  // failed reads first: they are what a target rules out at any time
  const failureExamples = [...failedHealthy.filter((o) => o.kind === 'read'), ...failedHealthy.filter((o) => o.kind !== 'read')].slice(0, keep).map((o) => formatOp(o, t0));
  const calls = failedHealthy.map((o) => o.call - t0);

  const windowMs = opts.windowMs;
  const inWindow = (lagMs: number): boolean => windowMs !== undefined && lagMs <= windowMs;
  let stale = 0;
  let staleAtFaulty = 0;
  let staleBeyond = 0;
  let unexplained = 0;
  const staleExamples: string[] = [];
  /** Stale reads within the window, by key (left out of that key's second linearizability check). */
  const windowReads = new Map<string, Set<number>>();
  for (const [key, keyOps] of byKey(ops)) {
    if (keyOps.some((o) => o.kind === 'incr')) {
      // a counter only grows (INCR 1, no writes or deletes on counter keys): a read is stale when
      // an INCR that answered more had been acknowledged before the read began
      if (keyOps.some((o) => o.kind === 'write' || o.kind === 'delete')) continue;
      const incrs = keyOps.filter((o) => o.kind === 'incr' && o.outcome === 'ok' && typeof o.result === 'number');
      for (const r of keyOps) {
        if (r.kind !== 'read' || r.outcome !== 'ok' || r.final) continue;
        const seen = r.result === null || r.result === undefined ? 0 : Number(r.result);
        let first: Op | undefined;
        for (const w of incrs) if ((w.result as number) > seen && w.ret! < r.call && (first === undefined || w.ret! < first.ret!)) first = w;
        if (first === undefined) continue;
        stale++;
        if (atFaulty(r)) staleAtFaulty++;
        const lag = r.call - first.ret!;
        if (inWindow(lag)) (windowReads.get(key) ?? windowReads.set(key, new Set()).get(key)!).add(r.id);
        else staleBeyond++;
        if (staleExamples.length < keep) staleExamples.push(`${formatOp(r, t0)}; newer: ${formatOp(first, t0)} (the read began ${lag.toFixed(0)} ms after it)`);
      }
      continue;
    }
    const s = staleReads(keyOps);
    unexplained += s.unexplained.length;
    for (const x of s.stale) {
      if (x.read.final) continue; // counted as lost
      stale++;
      if (atFaulty(x.read)) staleAtFaulty++;
      const lag = x.read.call - x.newer.ret!;
      if (inWindow(lag)) (windowReads.get(key) ?? windowReads.set(key, new Set()).get(key)!).add(x.read.id);
      else staleBeyond++;
      if (staleExamples.length < keep) {
        staleExamples.push(`${formatOp(x.read, t0)}; it saw ${x.source === undefined ? 'the initial absence' : formatOp(x.source, t0)}; newer: ${formatOp(x.newer, t0)} (the read began ${lag.toFixed(0)} ms after it)`);
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
  const incr = incrAnomalies(ops);
  let beyondWindow: Consistency['beyondWindow'];
  if (windowMs !== undefined) {
    let linBeyond = 0;
    for (const v of violations) {
      const keyOps = ops.filter((o) => o.key === v.key);
      // the window's reads: stale ones within it, and any read that began within it after an
      // acknowledged write it does not show (a node that missed the write may answer what it has:
      // an older value, or one an unacknowledged write left only there)
      const reads = new Set(windowReads.get(v.key));
      for (const r of keyOps) {
        if (r.kind !== 'read' || r.outcome !== 'ok' || r.final) continue;
        const missed = keyOps.some((w) => (w.kind === 'write' || w.kind === 'delete' || w.kind === 'incr') && w.outcome === 'ok' && w.ret! < r.call && inWindow(r.call - w.ret!) && shown(w) !== (r.result ?? null));
        if (missed) reads.add(r.id);
      }
      if (reads.size > 0) {
        const rest = keyOps.filter((o) => !reads.has(o.id));
        const again = checkHistory(rest, { ...(opts.budget ? { budget: opts.budget } : {}), shrinkMs: 0 });
        if (again.every((x) => x.kind === 'linearizable')) continue;
      }
      linBeyond++;
    }
    beyondWindow = { windowMs, stale: staleBeyond, linearizability_violations: linBeyond, incr: incr.length };
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
    incr,
    violations,
    ...(beyondWindow !== undefined ? { beyondWindow } : {}),
    staleExamples,
    lostExamples: lost.slice(0, keep).map((l) => `${l.key}: ${formatOp(l.read, t0)}; acknowledged ${formatOp(l.lost, t0)}`),
    failureExamples,
  };
}
