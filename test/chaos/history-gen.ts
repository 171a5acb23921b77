/**
 * Histories for the checker's property tests, generated from a real sequential register: every op
 * takes effect at its own point in time (1 ms apart), in order, on one variable; what a client
 * sees is an interval around that point (random overlap with its neighbours). Such a history is
 * linearizable by construction (the points are a linearization), whatever the overlap, the
 * indeterminate ops (applied or not) and the failed ones (never applied).
 */
import fc from 'fast-check';
import type { Op, OpKind } from './history.ts';

export interface Step {
  kind: OpKind;
  /** How long before its point the op was called, and after it answered (ms). */
  before: number;
  after: number;
  outcome: 'ok' | 'fail' | 'indeterminate';
  /** An indeterminate mutation: did it take effect? */
  applied: boolean;
}

export function stepArb(kinds: readonly OpKind[], maxOverlap = 3): fc.Arbitrary<Step> {
  return fc.record({
    kind: fc.constantFrom(...kinds),
    before: fc.double({ min: 0, max: maxOverlap, noNaN: true }),
    after: fc.double({ min: 0, max: maxOverlap, noNaN: true }),
    outcome: fc.constantFrom<Step['outcome']>('ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'fail', 'indeterminate'),
    applied: fc.boolean(),
  });
}

/** Run the steps on a register (counter for INCR) and record what clients would have seen. */
export function historyOf(steps: readonly Step[], key = 'k', nodes: readonly string[] = ['n1', 'n2', 'n3']): Op[] {
  let state: string | null = null;
  const ops: Omit<Op, 'id'>[] = [];
  steps.forEach((s, i) => {
    const point = 100 + i;
    const base = { client: i % 7, node: nodes[i % nodes.length]!, key, call: point - s.before, ret: point + s.after };
    const effect = s.outcome === 'ok' || (s.outcome === 'indeterminate' && s.applied);
    switch (s.kind) {
      case 'read':
        ops.push({ ...base, kind: 'read', outcome: s.outcome === 'ok' ? 'ok' : 'fail', ...(s.outcome === 'ok' ? { result: state } : {}) });
        break;
      case 'write': {
        const value = `v${i}`;
        if (effect) state = value;
        ops.push({ ...base, kind: 'write', value, outcome: s.outcome });
        break;
      }
      case 'delete':
        if (effect) state = null;
        ops.push({ ...base, kind: 'delete', outcome: s.outcome });
        break;
      case 'incr': {
        const n = state === null ? 0 : Number(state);
        if (effect) state = String(n + 1);
        ops.push({ ...base, kind: 'incr', delta: 1, outcome: s.outcome, ...(s.outcome === 'ok' ? { result: n + 1 } : {}) });
        break;
      }
    }
  });
  return renumber(ops);
}

/** Sort by call time and give ids in that order (a history is in invocation order). */
export function renumber(ops: readonly Omit<Op, 'id'>[]): Op[] {
  return [...ops].sort((a, b) => a.call - b.call).map((o, id) => ({ ...o, id }));
}
