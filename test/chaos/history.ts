/**
 * Histories of client operations on shared keys, and the checks that need no search (pure: the
 * clock is passed in; the clients that fill a history are in ./workload.ts).
 *
 * Every operation is recorded when it is invoked and when it completes, on one monotonic clock:
 *
 *   ok             the node answered: the operation took effect (once) between call and ret,
 *                  and `result` is what it returned
 *   fail           it certainly did not take effect (a 4xx: "bad input changes nothing", SPEC §3),
 *                  or it is a read that got no answer (a read has no effect either way)
 *   indeterminate  a write, delete or INCR with no definite answer (timeout, reset, 5xx): it may
 *                  have taken effect at any time after its call, or never
 *
 * Writes carry values unique per history (client and sequence number), so a read names the
 * write it saw. On such histories:
 *
 *   stale read     (issue 17) a read R returns the value of W' although a write W of that key,
 *                  with a different value, began after W' ended and was acknowledged before R
 *                  began. W must *begin* after W' ended: a W that overlaps W' may take effect
 *                  before it, and then reading W' is correct. W' counts as ended, for this rule,
 *                  when it was acknowledged or when the first read that saw it ended, whichever is
 *                  earlier (it had taken effect by then; an indeterminate W' only by the latter).
 *                  A read of "absent" is stale when every delete it could have seen (and the
 *                  initial absence) is followed so by an acknowledged write.
 *   lost write     a final read (after the load stopped) that is stale: an acknowledged write
 *                  was overwritten by an older one, or vanished.
 *   INCR effects   per counter key, the final value against the acknowledged (lower bound) and
 *                  the acknowledged plus indeterminate (upper bound) increments: above the upper
 *                  bound an increment took effect twice; below the lower bound one was lost; two
 *                  acknowledged INCRs returning the same value are a lost update too.
 */

export type OpKind = 'read' | 'write' | 'delete' | 'incr';
export type Outcome = 'ok' | 'fail' | 'indeterminate';

export interface Op {
  /** Position in its history. */
  readonly id: number;
  readonly client: number;
  /** The node the request was sent to. */
  readonly node: string;
  readonly key: string;
  readonly kind: OpKind;
  /** write: the value (unique in the history). */
  readonly value?: string;
  /** incr: the increment. */
  readonly delta?: number;
  /** A read issued after the load stopped, for the lost-write check. */
  readonly final?: boolean;
  /** Invocation time, ms on the history's clock. */
  readonly call: number;
  /** Completion time (answer, or the client giving up); undefined while in flight. */
  ret: number | undefined;
  outcome: Outcome | undefined;
  /** read: the value, null when absent; incr: the new value. */
  result?: string | null | number;
  /** Why it failed or is indeterminate, for reports. */
  error?: string;
}

export interface Invocation {
  client: number;
  node: string;
  key: string;
  kind: OpKind;
  value?: string;
  delta?: number;
  final?: boolean;
}

/** An append-only history; `clock` is monotonic ms (default performance.now). */
export class History {
  readonly #ops: Op[] = [];
  readonly #clock: () => number;

  constructor(clock: () => number = () => performance.now()) {
    this.#clock = clock;
  }

  invoke(inv: Invocation): Op {
    if (inv.kind === 'write' && inv.value === undefined) throw new TypeError(`a write needs a value (key ${inv.key})`);
    if (inv.kind === 'incr' && !Number.isInteger(inv.delta)) throw new TypeError(`an incr needs an integer delta (key ${inv.key}), got ${inv.delta}`);
    const op: Op = { id: this.#ops.length, ...inv, call: this.#clock(), ret: undefined, outcome: undefined };
    this.#ops.push(op);
    return op;
  }

  complete(op: Op, outcome: Outcome, result?: string | null | number, error?: string): void {
    if (op.outcome !== undefined) throw new Error(`op ${op.id} completed twice`);
    op.ret = this.#clock();
    op.outcome = outcome;
    if (result !== undefined) op.result = result;
    if (error !== undefined) op.error = error;
  }

  /** Every op, in invocation order. */
  ops(): readonly Op[] {
    return this.#ops;
  }

  /** Ops still in flight. */
  pending(): Op[] {
    return this.#ops.filter((o) => o.outcome === undefined);
  }
}

/** Ops grouped by key, each group in invocation order. */
export function byKey(ops: readonly Op[]): Map<string, Op[]> {
  const m = new Map<string, Op[]>();
  for (const o of ops) {
    let l = m.get(o.key);
    if (l === undefined) m.set(o.key, (l = []));
    l.push(o);
  }
  return m;
}

const isMutation = (o: Op): boolean => o.kind === 'write' || o.kind === 'delete' || o.kind === 'incr';

/** The value a completed mutation leaves (incr: its result), for "a different value". */
function valueOf(o: Op): string | null | undefined {
  if (o.kind === 'write') return o.value;
  if (o.kind === 'delete') return null;
  if (o.kind === 'incr') return typeof o.result === 'number' ? String(o.result) : undefined;
  return undefined;
}

export interface StaleRead {
  read: Op;
  /** The write (or delete) whose value it returned; undefined: the key's initial absence. */
  source: Op | undefined;
  /**
   * The acknowledged write that began after `source` ended and ended before the read began; of
   * several, the first acknowledged (the first write the read missed).
   */
  newer: Op;
}

export interface UnexplainedRead {
  read: Op;
  why: string;
}

/**
 * By when `w` had certainly taken effect: the earlier of its acknowledgement and the end of the
 * first read that returned its value (Infinity for an indeterminate write no read saw).
 */
function effectiveEnd(w: Op, readsOf: Map<string, Op[]>): number {
  let end = w.outcome === 'ok' ? w.ret! : Infinity;
  for (const r of readsOf.get(w.value ?? '') ?? []) end = Math.min(end, r.ret!);
  return end;
}

/**
 * Stale reads (the rule in the file comment) and reads of values no write of their key wrote,
 * for one key's ops (register keys: writes, deletes and reads; INCR keys are checked by
 * {@link incrAnomalies} and the linearizability check).
 */
export function staleReads(keyOps: readonly Op[]): { stale: StaleRead[]; unexplained: UnexplainedRead[] } {
  const reads = keyOps.filter((o) => o.kind === 'read' && o.outcome === 'ok');
  const writes = keyOps.filter((o) => (o.kind === 'write' || o.kind === 'delete') && (o.outcome === 'ok' || o.outcome === 'indeterminate'));
  const readsOf = new Map<string, Op[]>();
  for (const r of reads) if (typeof r.result === 'string') (readsOf.get(r.result) ?? readsOf.set(r.result, []).get(r.result)!).push(r);
  const writeOf = new Map<string, Op>();
  for (const w of writes) if (w.kind === 'write') writeOf.set(w.value!, w);
  // acknowledged mutations by start time, to find "began after X ended, ended before R began"
  const acked = keyOps.filter((o) => isMutation(o) && o.outcome === 'ok').sort((a, b) => a.call - b.call);
  const newerThan = (end: number, read: Op, value: string | null): Op | undefined => {
    let first: Op | undefined;
    for (const w of acked) {
      if (w.call <= end) continue;
      if (w.call >= read.call) break; // sorted by call: none after this ended before the read began
      if (w.ret! < read.call && valueOf(w) !== value && (first === undefined || w.ret! < first.ret!)) first = w;
    }
    return first;
  };
  const stale: StaleRead[] = [];
  const unexplained: UnexplainedRead[] = [];
  for (const r of reads) {
    if (typeof r.result === 'number') continue;
    const v = r.result ?? null;
    if (v !== null) {
      const w = writeOf.get(v);
      if (w === undefined) {
        unexplained.push({ read: r, why: `no write of ${r.key} wrote ${JSON.stringify(v)}` });
        continue;
      }
      if (w.call >= r.ret!) {
        unexplained.push({ read: r, why: `returned ${JSON.stringify(v)} before the write of it began` });
        continue;
      }
      const newer = newerThan(effectiveEnd(w, readsOf), r, v);
      if (newer !== undefined) stale.push({ read: r, source: w, newer });
      continue;
    }
    // absent: the initial state, or any delete that began before the read ended; the one that
    // ended last is the hardest to have been overwritten since
    let source: Op | undefined;
    let end = -Infinity;
    for (const d of writes) {
      if (d.kind !== 'delete' || d.call >= r.ret!) continue;
      const e = d.outcome === 'ok' ? d.ret! : Infinity;
      if (e > end) [source, end] = [d, e];
    }
    const newer = newerThan(end, r, null);
    if (newer !== undefined) stale.push({ read: r, source, newer });
  }
  return { stale, unexplained };
}

export interface LostWrite {
  key: string;
  /** The final read that showed the older value. */
  read: Op;
  /** The acknowledged write it should have shown (or a newer one). */
  lost: Op;
  source: Op | undefined;
}

/** Final reads that are stale: acknowledged writes the cluster no longer shows. One per key (its first). */
export function lostWrites(ops: readonly Op[]): LostWrite[] {
  const out: LostWrite[] = [];
  for (const [key, keyOps] of byKey(ops)) {
    if (keyOps.some((o) => o.kind === 'incr')) continue;
    const { stale } = staleReads(keyOps);
    const s = stale.find((x) => x.read.final === true);
    if (s !== undefined) out.push({ key, read: s.read, lost: s.newer, source: s.source });
  }
  return out;
}

export interface IncrAnomaly {
  key: string;
  kind: 'duplicate-effect' | 'lost-increment' | 'repeated-result';
  detail: string;
}

/**
 * INCR keys: compare the final value (the final reads, which must agree) with the increments
 * acknowledged and possibly applied. Keys without INCRs are skipped.
 */
export function incrAnomalies(ops: readonly Op[]): IncrAnomaly[] {
  const out: IncrAnomaly[] = [];
  for (const [key, keyOps] of byKey(ops)) {
    const incrs = keyOps.filter((o) => o.kind === 'incr');
    if (incrs.length === 0) continue;
    if (keyOps.some((o) => o.kind === 'write' || o.kind === 'delete')) continue; // the register check covers mixed keys
    const ok = incrs.filter((o) => o.outcome === 'ok');
    const maybe = incrs.filter((o) => o.outcome === 'indeterminate');
    const low = ok.reduce((s, o) => s + o.delta!, 0);
    const high = low + maybe.reduce((s, o) => s + Math.max(0, o.delta!), 0);
    const finals = keyOps.filter((o) => o.final && o.kind === 'read' && o.outcome === 'ok').map((o) => (o.result === null || o.result === undefined ? 0 : Number(o.result)));
    for (const f of new Set(finals)) {
      if (f > high) out.push({ key, kind: 'duplicate-effect', detail: `final value ${f} > ${high} (acknowledged ${ok.length}, indeterminate ${maybe.length})` });
      if (f < low) out.push({ key, kind: 'lost-increment', detail: `final value ${f} < ${low} acknowledged` });
    }
    const seen = new Map<number, Op>();
    for (const o of ok) {
      if (typeof o.result !== 'number') continue;
      const prev = seen.get(o.result);
      if (prev !== undefined && o.delta !== 0) out.push({ key, kind: 'repeated-result', detail: `ops ${prev.id} and ${o.id} both returned ${o.result}` });
      seen.set(o.result, o);
    }
  }
  return out;
}

/** One op as a line of a report, times relative to `t0` (ms). */
export function formatOp(o: Op, t0 = 0): string {
  const t = (x: number | undefined): string => (x === undefined ? '…' : `${(x - t0).toFixed(1)}`);
  const what =
    o.kind === 'write' ? `write ${JSON.stringify(o.value)}` : o.kind === 'incr' ? `incr ${o.delta}` : o.kind === 'delete' ? 'delete' : 'read';
  const res =
    o.outcome === 'ok' ? (o.kind === 'read' || o.kind === 'incr' ? `-> ${JSON.stringify(o.result ?? null)}` : 'ok') : `${o.outcome ?? 'pending'}${o.error ? ` (${o.error})` : ''}`;
  return `[${t(o.call)} .. ${o.outcome === 'indeterminate' ? `${t(o.ret)}+?` : t(o.ret)}] c${o.client} via ${o.node}${o.final ? ' (final)' : ''}: ${o.key} ${what} ${res}`;
}
