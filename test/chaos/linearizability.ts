/**
 * Linearizability of a history, key by key: Wing & Gong's search (1993) with Lowe's memoization
 * of configurations (Lowe 2017, "Testing for linearizability"), applied per key because
 * linearizability is local (Herlihy & Wing; the per-object split is what Lowe's and Horn &
 * Kroening's P-compositionality exploit). Pure: the time budget reads a clock passed in.
 *
 * The search. The history is a list of call and return entries in time order. Walking it from the
 * front, a call is "linearized" when the model accepts the op (with its recorded result) in the
 * current state: the op's two entries are lifted out of the list and pushed on a stack, and the
 * walk restarts at the front. Reaching a return means the op it belongs to must already have
 * been linearized, and it was not: undo the last choice (pop, put its entries back) and try the
 * next call after it. An empty list is a linearization; an empty stack at a return proves there
 * is none. Lowe's improvement: a configuration (set of linearized ops, model state) reached once
 * is never explored again, as everything reachable from it was explored the first time. And a
 * read the current state allows is taken without trying the alternatives (a linearization from
 * here, if any, can start with it): reads no longer multiply the search.
 *
 * Indeterminate ops (a write that timed out may or may not have taken effect) return at infinity:
 * they may be linearized anywhere after their call, including after everything else, which is
 * "never took effect" as far as any observer can tell. Three sound reductions keep them from
 * multiplying the search: an indeterminate write no read saw is dropped (placing it last is
 * always possible); one that a read saw took effect before that read ended, so it returns then;
 * and a register's indeterminate delete returns when the last read of absent did, as an
 * optional op: reached there unlinearized, it is taken as having had no effect (taking effect
 * later would change nothing anyone saw). Failed ops (no effect) and unanswered reads are dropped.
 *
 * Budget: the search stops after `maxSteps` steps, `timeMs` of the clock, or `maxMemoWords` of
 * memo, and says `unknown` rather than guess. On a violation, {@link shrink} removes ops while
 * the rest stays non-linearizable, keeping only removals that cannot create a violation, so the
 * small history it reports proves the big one wrong.
 */
import type { Op } from './history.ts';

/** An op as the checker sees it. */
export interface CheckOp {
  readonly id: number;
  readonly kind: Op['kind'];
  readonly value?: string;
  readonly delta?: number;
  readonly result?: string | null | number;
  readonly call: number;
  /** Infinity for an indeterminate op. */
  readonly ret: number;
  /** The result is unknown (indeterminate op): any result is accepted. */
  readonly unknownResult: boolean;
  /**
   * An indeterminate op that may never have taken effect, whose effect after `ret` nobody could
   * see: reached at its return unlinearized, the search takes it as having had none.
   */
  readonly optional?: boolean;
}

/** A sequential specification. */
export interface Model<S> {
  readonly name: string;
  readonly init: S;
  /** The state after `op` in `s`, or undefined when `op` (with its recorded result) is impossible in `s`. */
  step(s: S, op: CheckOp): S | undefined;
  /** A string that identifies the state (for the memo). */
  key(s: S): string;
}

/** A register: read returns the last written value, null after a delete or when never written. */
export const registerModel: Model<string | null> = {
  name: 'register',
  init: null,
  step(s, op) {
    switch (op.kind) {
      case 'write':
        return op.value!;
      case 'delete':
        return null;
      case 'read':
        return op.unknownResult || op.result === s ? s : undefined;
      case 'incr':
        throw new TypeError(`registerModel: op ${op.id} is an incr; use counterModel`);
    }
  },
  key: (s) => (s === null ? '\u0000' : `=${s}`),
};

/**
 * A Redis string with INCR (a counter): a key holds a value or is absent; INCR treats absent as
 * 0, adds its delta to an integer value and returns the new value; on a non-integer it fails
 * without effect (recorded result "error").
 */
export const counterModel: Model<string | null> = {
  name: 'counter',
  init: null,
  step(s, op) {
    if (op.kind !== 'incr') return registerModel.step(s, op);
    const n = s === null ? 0 : /^-?\d+$/.test(s) ? Number(s) : undefined;
    if (n === undefined) return op.unknownResult || op.result === 'error' ? s : undefined;
    const next = n + op.delta!;
    return op.unknownResult || op.result === next ? String(next) : undefined;
  },
  key: registerModel.key,
};

export interface Budget {
  /** Search steps (list entries visited). Default 5 000 000. */
  maxSteps?: number;
  /** Wall time on `clock`. Default 5000 ms. */
  timeMs?: number;
  /** Memo size, in 32-bit words of stored configurations. Default 32 Mi (128 MiB). */
  maxMemoWords?: number;
  /** Default performance.now. */
  clock?: () => number;
}

export type CheckResult =
  | { kind: 'linearizable'; steps: number }
  /** `depth`: most ops linearized at once before the search gave up */
  | { kind: 'violation'; steps: number; depth: number }
  | { kind: 'unknown'; steps: number; reason: string };

/**
 * The ops of one key ready for the search: completed (or indeterminate) writes, deletes and
 * INCRs, answered reads; with the reductions in the file comment. Throws when two writes of the
 * key carry one value (the reductions and the stale-read rule need unique values).
 */
export function prepare(keyOps: readonly Op[]): CheckOp[] {
  const readers = new Map<string, number>(); // value -> earliest ret of a read that returned it
  let lastNullReadRet = -Infinity;
  for (const o of keyOps) {
    if (o.kind !== 'read' || o.outcome !== 'ok') continue;
    if (typeof o.result === 'string') readers.set(o.result, Math.min(readers.get(o.result) ?? Infinity, o.ret!));
    if (o.result === null || o.result === undefined) lastNullReadRet = Math.max(lastNullReadRet, o.ret!);
  }
  const seen = new Set<string>();
  const counter = keyOps.some((o) => o.kind === 'incr');
  const out: CheckOp[] = [];
  for (const o of keyOps) {
    if (o.outcome === undefined) throw new Error(`op ${o.id} (${o.key}) is still in flight`);
    if (o.outcome === 'fail') continue;
    if (o.kind === 'write') {
      if (seen.has(o.value!)) throw new Error(`two writes of ${o.key} carry the value ${JSON.stringify(o.value)}`);
      seen.add(o.value!);
    }
    const base = { id: o.id, kind: o.kind, call: o.call, ...(o.value !== undefined ? { value: o.value } : {}), ...(o.delta !== undefined ? { delta: o.delta } : {}) };
    if (o.kind === 'read') {
      if (o.outcome !== 'ok') continue;
      out.push({ ...base, result: o.result ?? null, ret: o.ret!, unknownResult: false });
    } else if (o.outcome === 'ok') {
      out.push({ ...base, ...(o.result !== undefined ? { result: o.result } : {}), ret: o.ret!, unknownResult: false });
    } else if (o.kind === 'write') {
      const seenBy = readers.get(o.value!);
      // (a read that returned before the write was called saw the future: the search finds it)
      if (seenBy !== undefined) out.push({ ...base, ret: Math.max(seenBy, o.call), unknownResult: true });
      // else: no read saw it; it can always go last, so it changes nothing
    } else if (o.kind === 'delete') {
      // once the last read of absent has returned, nobody can tell a delete taking effect from
      // one that never did (reads after it return written values, and a write or delete over it
      // ends the same); an INCR after it could, so a counter's delete stays open to the end
      if (lastNullReadRet >= o.call) out.push(counter ? { ...base, ret: Infinity, unknownResult: true } : { ...base, ret: lastNullReadRet, unknownResult: true, optional: true });
    } else {
      out.push({ ...base, ret: Infinity, unknownResult: true });
    }
  }
  return out;
}

/**
 * The counter of the chaos suite (INCR by 1 and reads, nothing else on the key) decided without
 * a search, in O(n log n); undefined for any other history. Every acknowledged INCR's result is
 * its rank among the increments, so the v-th increment is the acknowledged INCR that answered v,
 * or, where none did, an indeterminate one (the one called earliest of those left); each gets a
 * point in its interval, increasing with v, and each read of v a point between the v-th and the
 * (v+1)-th. Points chosen as early as their bounds allow are a linearization when there is one:
 * an earlier v-th point only loosens what comes after it. (The search alone gave up on the
 * suite's counters: 450 ops with a few indeterminate INCRs, each of which may go anywhere after
 * its call, exceeded its budget.)
 */
export function checkCounter(ops: readonly CheckOp[]): CheckResult | undefined {
  const acked = new Map<number, CheckOp>();
  const open: CheckOp[] = [];
  const reads = new Map<number, CheckOp[]>();
  let top = 0;
  for (const o of ops) {
    if (o.kind === 'incr') {
      if (o.delta !== 1) return undefined;
      if (o.unknownResult) {
        open.push(o);
        continue;
      }
      if (typeof o.result !== 'number' || !Number.isInteger(o.result) || o.result < 1) return undefined;
      if (acked.has(o.result)) return { kind: 'violation', steps: ops.length, depth: 0 }; // two answered one number
      acked.set(o.result, o);
      top = Math.max(top, o.result);
    } else if (o.kind === 'read') {
      const v = o.result === null || o.result === undefined ? 0 : typeof o.result === 'string' && /^\d+$/.test(o.result) ? Number(o.result) : undefined;
      if (v === undefined) return undefined;
      (reads.get(v) ?? reads.set(v, []).get(v)!).push(o);
      top = Math.max(top, v);
    } else return undefined;
  }
  open.sort((a, b) => a.call - b.call);
  let nextOpen = 0;
  const violation: CheckResult = { kind: 'violation', steps: ops.length, depth: 0 };
  let point = -Infinity; // the (v-1)-th increment's point
  for (let v = 1; v <= top + 1; v++) {
    // reads of v - 1 fall between the (v-1)-th and the v-th increment
    let lower = point;
    for (const r of reads.get(v - 1) ?? []) {
      const at = Math.max(r.call, point);
      if (at > r.ret) return violation;
      lower = Math.max(lower, at);
    }
    if (v > top) break;
    const op = acked.get(v) ?? open[nextOpen++];
    if (op === undefined) return violation; // more increments seen than were made
    point = Math.max(lower, op.call);
    if (point > op.ret) return violation;
  }
  return { kind: 'linearizable', steps: ops.length };
}

/** Is this one key's history linearizable under `model`? */
export function check<S>(ops: readonly CheckOp[], model: Model<S>, budget: Budget = {}): CheckResult {
  if ((model as Model<unknown>) === counterModel) {
    const fast = checkCounter(ops);
    if (fast !== undefined) return fast;
  }
  const clock = budget.clock ?? (() => performance.now());
  const deadline = clock() + (budget.timeMs ?? 5000);
  const maxSteps = budget.maxSteps ?? 5_000_000;
  const maxMemoWords = budget.maxMemoWords ?? 32 * 1024 * 1024;
  const n = ops.length;
  // A register holding a value no read returned behaves the same whichever value it is: every
  // read fails on it, and a write or delete replaces it. Such states share one memo key, so the
  // orders of concurrent writes nobody read are explored once, not once per last writer (a kill
  // -9 phase's key with 16 clients' writes hung together ran out of 5M steps without it).
  const read = new Set(ops.flatMap((o) => (o.kind === 'read' && typeof o.result === 'string' ? [o.result] : [])));
  const stateKey = (model as Model<unknown>) === registerModel ? (st: S): string => (st !== null && !read.has(st as string) ? '\u0001' : model.key(st)) : (st: S): string => model.key(st);
  if (n === 0) return { kind: 'linearizable', steps: 0 };

  // entries 1..2n; 0 is the head, 2n+1 the tail. Op i has call entry 2i+1 and return entry 2i+2
  // before sorting; `order` lists entries by time, calls before returns at equal times (so an op
  // that returns at t and one called at t count as concurrent: the permissive reading).
  const HEAD = 0;
  const TAIL = 2 * n + 1;
  const time = (e: number): number => (e % 2 === 1 ? ops[(e - 1) / 2]!.call : ops[(e - 2) / 2]!.ret);
  const order = Array.from({ length: 2 * n }, (_, i) => i + 1).sort((a, b) => {
    const ta = time(a);
    const tb = time(b);
    if (ta !== tb) return ta < tb ? -1 : 1; // (Infinity - Infinity would be NaN)
    return (b % 2) - (a % 2) || a - b; // calls (odd entries) first
  });
  // a call sorts before its own return (call <= ret): an op with ret < call is a recording bug
  for (let i = 0; i < n; i++) if (!(ops[i]!.ret >= ops[i]!.call)) throw new RangeError(`op ${ops[i]!.id} returns (${ops[i]!.ret}) before its call (${ops[i]!.call})`);
  const next = new Int32Array(TAIL + 1);
  const prev = new Int32Array(TAIL + 1);
  let last = HEAD;
  for (const e of order) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  next[last] = TAIL;
  prev[TAIL] = last;
  const isCall = (e: number): boolean => e % 2 === 1;
  const opOf = (e: number): number => (e % 2 === 1 ? (e - 1) / 2 : (e - 2) / 2);
  const lift = (c: number): void => {
    const r = c + 1;
    next[prev[c]!] = next[c]!;
    prev[next[c]!] = prev[c]!;
    next[prev[r]!] = next[r]!;
    prev[next[r]!] = prev[r]!;
  };
  // the exact inverse of lift, in reverse order (dancing links)
  const unlift = (c: number): void => {
    const r = c + 1;
    prev[next[r]!] = r;
    next[prev[r]!] = r;
    prev[next[c]!] = c;
    next[prev[c]!] = c;
  };

  // Zobrist hashing of the linearized set; the memo stores the full set to rule out collisions
  const words = (n + 31) >>> 5;
  const bits = new Uint32Array(words);
  const z1 = new Uint32Array(n);
  const z2 = new Uint32Array(n);
  let seed = 0x9e3779b9;
  const rand = (): number => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  for (let i = 0; i < n; i++) [z1[i], z2[i]] = [rand(), rand()];
  let h1 = 0;
  let h2 = 0;
  const memo = new Map<string, Uint32Array[]>();
  let memoWords = 0;
  const sameBits = (a: Uint32Array): boolean => {
    for (let i = 0; i < words; i++) if (a[i] !== bits[i]) return false;
    return true;
  };

  const stackEntry = new Int32Array(n);
  const stackState: S[] = new Array(n);
  // 1: the op linearized at this depth left the state as it was (a read): see "forced" below
  const stackForced = new Uint8Array(n);
  let depth = 0;
  let maxDepth = 0;
  let state = model.init;
  let entry = next[HEAD]!;
  let steps = 0;

  // Take op i (call entry c) into the linearization with the state `after`: false when that
  // configuration was explored before (nothing new from it), or the memo is full (budget).
  let memoFull = false;
  const take = (c: number, after: S, forced: boolean): boolean => {
    const i = opOf(c);
    bits[i >>> 5]! |= 1 << (i & 31);
    h1 ^= z1[i]!;
    h2 ^= z2[i]!;
    const key = `${h1}.${h2}.${stateKey(after)}`;
    let bucket = memo.get(key);
    if (bucket !== undefined && bucket.some(sameBits)) {
      bits[i >>> 5]! &= ~(1 << (i & 31));
      h1 ^= z1[i]!;
      h2 ^= z2[i]!;
      return false;
    }
    if (bucket === undefined) memo.set(key, (bucket = []));
    bucket.push(bits.slice());
    memoWords += words;
    if (memoWords > maxMemoWords) memoFull = true;
    stackEntry[depth] = c;
    stackState[depth] = state;
    stackForced[depth] = forced ? 1 : 0;
    depth++;
    if (depth > maxDepth) maxDepth = depth;
    state = after;
    lift(c);
    return true;
  };

  while (next[HEAD] !== TAIL) {
    steps++;
    if (steps > maxSteps) return { kind: 'unknown', steps, reason: `search budget of ${maxSteps} steps exceeded (${n} ops)` };
    if ((steps & 4095) === 0 && clock() > deadline) return { kind: 'unknown', steps, reason: `time budget of ${budget.timeMs ?? 5000} ms exceeded (${n} ops, ${steps} steps)` };
    if (isCall(entry)) {
      const after = model.step(state, ops[opOf(entry)]!);
      if (after === undefined) {
        entry = next[entry]!;
        continue;
      }
      // Forced: a read the state allows, callable here, goes next in some linearization
      // whenever there is one from here at all (move it to the front of any: nothing it must
      // follow is left, it saw this state there too, and it changes no state). So it is taken
      // without trying the alternatives: undoing it undoes the choice before it too, and a
      // configuration with it already explored fails here. (Only ops that change no state in
      // any state: a delete of an absent key changes nothing here but does elsewhere.)
      const forced = ops[opOf(entry)]!.kind === 'read';
      if (take(entry, after, forced)) {
        if (memoFull) return { kind: 'unknown', steps, reason: `memo budget of ${maxMemoWords} words exceeded (${n} ops)` };
        entry = next[HEAD]!;
        continue;
      }
      if (!forced) {
        entry = next[entry]!;
        continue;
      }
    } else if (ops[opOf(entry)]!.optional === true) {
      // the return of an op that may never have taken effect: from here on it had none (the
      // only choice left for it, so forced too)
      if (take(entry - 1, state, true)) {
        if (memoFull) return { kind: 'unknown', steps, reason: `memo budget of ${maxMemoWords} words exceeded (${n} ops)` };
        entry = next[HEAD]!;
        continue;
      }
    }
    // the return of an op not yet linearized (or a forced choice whose configuration failed
    // before): undo the last choice, and the forced ones above it, then try the next call after it
    let c: number;
    do {
      if (depth === 0) return { kind: 'violation', steps, depth: maxDepth };
      depth--;
      c = stackEntry[depth]!;
      const i = opOf(c);
      state = stackState[depth]!;
      bits[i >>> 5]! &= ~(1 << (i & 31));
      h1 ^= z1[i]!;
      h2 ^= z2[i]!;
      unlift(c);
    } while (stackForced[depth] === 1);
    entry = next[c]!;
  }
  return { kind: 'linearizable', steps };
}

/** The model a key's ops need: the counter when any is an INCR. */
export function modelFor(ops: readonly CheckOp[]): Model<string | null> {
  return ops.some((o) => o.kind === 'incr') ? counterModel : registerModel;
}

/**
 * `ops` without those of `ids` that may go without making a linearizable history
 * non-linearizable (the rules of {@link shrink}); the others of `ids` stay.
 */
export function removeSoundly(ops: readonly CheckOp[], ids: ReadonlySet<number>): CheckOp[] {
  const noReads = ops.filter((o) => !(ids.has(o.id) && o.kind === 'read'));
  if (ops.some((o) => o.kind === 'incr')) return noReads;
  const readValues = new Set(noReads.filter((o) => o.kind === 'read' && typeof o.result === 'string').map((o) => o.result));
  const kept = noReads.filter((o) => !(ids.has(o.id) && o.kind === 'write' && !readValues.has(o.value!)));
  const deletes = new Set(kept.filter((o) => ids.has(o.id) && o.kind === 'delete').map((o) => o.id));
  if (deletes.size === 0) return kept;
  const nullReads = kept.filter((o) => o.kind === 'read' && (o.result === null || o.result === undefined));
  // separators: mutations that stay, sorted by call, with the earliest ret among those called later
  const seps = kept.filter((o) => (o.kind === 'write' || o.kind === 'delete') && !deletes.has(o.id)).sort((a, b) => a.call - b.call);
  const minRetFrom = new Float64Array(seps.length + 1).fill(Infinity);
  for (let i = seps.length - 1; i >= 0; i--) minRetFrom[i] = Math.min(minRetFrom[i + 1]!, seps[i]!.ret);
  /** The earliest end of a remaining mutation that begins after `t`. */
  const firstSeparatorEnd = (t: number): number => {
    let lo = 0;
    let hi = seps.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seps[mid]!.call > t) hi = mid;
      else lo = mid + 1;
    }
    return minRetFrom[lo]!;
  };
  const goes = (d: CheckOp): boolean => {
    const m = firstSeparatorEnd(d.ret);
    return nullReads.every((r) => r.ret < d.call || m < r.call);
  };
  return kept.filter((o) => !(deletes.has(o.id) && goes(o)));
}

/**
 * A small non-linearizable sub-history of `ops` (which must be non-linearizable). First the
 * history is cut from the back and from the front (binary search on time), then chunks of ops
 * are removed with halving chunk sizes (delta debugging); a removal is kept when what is left is
 * still a violation. Only sound removals are tried, so the result proves `ops` wrong:
 *
 *  - any read (a linearization without it is still legal);
 *  - a write no remaining read returned (where it stood in a linearization, the next mutation
 *    follows before any read, so dropping it changes no read);
 *  - a delete D when every remaining read of "absent" either ended before D began or is
 *    separated from D by a remaining mutation M (D ended before M began, M ended before the read
 *    began): no such read can fall between D and the mutation after it, the only stretch
 *    dropping D changes.
 *
 * With INCRs on the key only reads go (an INCR's result depends on everything before it).
 * `minimal` is false when the budget ran out before no single removal was left to try.
 */
export function shrink<S>(ops: readonly CheckOp[], model: Model<S>, opts: { timeMs?: number; clock?: () => number; checkBudget?: Budget } = {}): { ops: CheckOp[]; minimal: boolean } {
  const clock = opts.clock ?? (() => performance.now());
  const deadline = clock() + (opts.timeMs ?? 10_000);
  const checkBudget = { timeMs: 1000, ...opts.checkBudget, clock };
  let cur = [...ops].sort((a, b) => a.call - b.call);

  const without = (chunk: ReadonlySet<number>): CheckOp[] => removeSoundly(cur, chunk);
  const violates = (candidate: readonly CheckOp[]): boolean => check(candidate, model, checkBudget).kind === 'violation';

  /** Binary search for the largest cut (`k` ops by the order `by`) that still violates. */
  const cut = (order: CheckOp[]): void => {
    let lo = 0; // a cut of `lo` ops is known to violate
    let hi = order.length;
    while (lo < hi && clock() < deadline) {
      const mid = Math.ceil((lo + hi) / 2);
      const candidate = without(new Set(order.slice(0, mid).map((o) => o.id)));
      if (violates(candidate)) {
        lo = mid;
        cur = candidate;
      } else hi = mid - 1;
    }
  };
  cut([...cur].sort((a, b) => b.call - a.call)); // the latest first: everything after the violation
  cut([...cur].sort((a, b) => a.ret - b.ret)); // the earliest first: everything before it

  let chunkSize = Math.max(1, Math.ceil(cur.length / 2));
  for (;;) {
    let progressed = false;
    for (let start = 0; start < cur.length; ) {
      if (clock() > deadline) return { ops: cur, minimal: false };
      const chunk = new Set(cur.slice(start, start + chunkSize).map((o) => o.id));
      const candidate = without(chunk);
      if (candidate.length < cur.length && violates(candidate)) {
        cur = candidate;
        progressed = true;
      } else {
        start += chunkSize;
      }
    }
    if (chunkSize === 1 && !progressed) return { ops: cur, minimal: true };
    if (!progressed) chunkSize = Math.max(1, Math.floor(chunkSize / 2));
  }
}

export type KeyVerdict =
  | { key: string; kind: 'linearizable'; ops: number; steps: number }
  | { key: string; kind: 'unknown'; ops: number; steps: number; reason: string }
  | {
      key: string;
      kind: 'violation';
      ops: number;
      steps: number;
      /** The shrunk sub-history, as the original ops (in invocation order). */
      minimal: Op[];
      /** No single op could be removed from `minimal` (false: the shrink budget ran out first). */
      isMinimal: boolean;
    };

/** Check every key of a history; shrink each violation. */
export function checkHistory(history: readonly Op[], opts: { budget?: Budget; shrinkMs?: number } = {}): KeyVerdict[] {
  const keys = new Map<string, Op[]>();
  for (const o of history) (keys.get(o.key) ?? keys.set(o.key, []).get(o.key)!).push(o);
  const out: KeyVerdict[] = [];
  for (const [key, keyOps] of keys) {
    const ops = prepare(keyOps);
    const model = modelFor(ops);
    const r = check(ops, model, opts.budget);
    if (r.kind === 'linearizable') out.push({ key, kind: 'linearizable', ops: ops.length, steps: r.steps });
    else if (r.kind === 'unknown') out.push({ key, kind: 'unknown', ops: ops.length, steps: r.steps, reason: r.reason });
    else {
      const s = shrink(ops, model, { ...(opts.shrinkMs !== undefined ? { timeMs: opts.shrinkMs } : {}), ...(opts.budget?.clock ? { clock: opts.budget.clock } : {}) });
      const byId = new Map(keyOps.map((o) => [o.id, o]));
      out.push({ key, kind: 'violation', ops: ops.length, steps: r.steps, minimal: s.ops.map((o) => byId.get(o.id)!).sort((a, b) => a.call - b.call), isMinimal: s.minimal });
    }
  }
  return out;
}
