/** The verdict over a whole history: counter staleness, and the Known window's weaker promise. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyze } from './consistency.ts';
import type { Op } from './history.ts';
import { renumber } from './history-gen.ts';

type Partial = Omit<Op, 'id' | 'client' | 'key'> & { key?: string; client?: number };
const h = (...ops: Partial[]): Op[] => renumber(ops.map((o) => ({ client: 0, key: 'k', ...o })));
const w = (value: string, call: number, ret: number, node = 'n1'): Partial => ({ kind: 'write', value, call, ret, outcome: 'ok', node });
const r = (result: string | null, call: number, ret: number, node = 'n1', final = false): Partial => ({ kind: 'read', result, call, ret, outcome: 'ok', node, ...(final ? { final } : {}) });
const inc = (result: number, call: number, ret: number, node = 'n1'): Partial => ({ key: 'n', kind: 'incr', delta: 1, result, call, ret, outcome: 'ok', node });
const rn = (result: string | null, call: number, ret: number, final = false): Partial => ({ ...r(result, call, ret, 'n1', final), key: 'n' });

test('a counter read below an INCR acknowledged before it began is stale; one that overlapped it is not', () => {
  const ok = analyze(h(inc(1, 0, 10), inc(2, 20, 30), rn('1', 25, 26), rn('2', 40, 41, true)), { faulty: new Set(), t0: 0 });
  assert.equal(ok.stale, 0, 'the INCR to 2 was still running');
  const bad = analyze(h(inc(1, 0, 10), inc(2, 20, 30), rn('1', 35, 36), rn('2', 40, 41, true)), { faulty: new Set(), t0: 0 });
  assert.equal(bad.stale, 1);
  assert.match(bad.staleExamples[0]!, /the read began 5 ms after it/);
  assert.equal(bad.linearizability_violations, 1, 'the search agrees');
});

test('a stale read names the first acknowledged write it missed', () => {
  const c = analyze(h(w('a', 0, 1), w('b', 10, 20), w('c', 12, 15), r('a', 30, 31), r('b', 40, 41, 'n1', true)), { faulty: new Set(), t0: 0 });
  assert.equal(c.stale, 1);
  assert.match(c.staleExamples[0]!, /newer: .*write "c" ok \(the read began 15 ms after it\)/);
});

test('Known window: what a window explains is counted apart; what it does not stays beyond it', () => {
  // a stale read 30 ms after the write it missed, and one 900 ms after
  const ops = h(w('a', 0, 1), w('b', 10, 20, 'n2'), r('a', 50, 51, 'n3'), w('c', 1000, 1010, 'n2'), r('b', 1910, 1911, 'n3'), r('c', 2000, 2001, 'n1', true));
  const none = analyze(ops, { faulty: new Set(['n3']), t0: 0 });
  assert.equal(none.beyondWindow, undefined, 'no window asked, none reported');
  const c = analyze(ops, { faulty: new Set(['n3']), t0: 0, windowMs: 500 });
  assert.equal(c.stale, 2);
  assert.equal(c.staleAtFaulty, 2);
  assert.deepEqual(c.beyondWindow, { windowMs: 500, stale: 1, linearizability_violations: 1, incr: 0 });
  const wide = analyze(ops, { faulty: new Set(['n3']), t0: 0, windowMs: 1000 });
  assert.deepEqual(wide.beyondWindow, { windowMs: 1000, stale: 0, linearizability_violations: 0, incr: 0 }, 'without its window reads the key is linearizable');
});

test('Known window: INCR anomalies are never within it, however soon the second INCR came', () => {
  const soon = analyze(h(inc(1, 0, 10), inc(1, 100, 110, 'n2'), inc(2, 120, 130), rn('2', 200, 201, true)), { faulty: new Set(['n2']), t0: 0, windowMs: 500 });
  assert.equal(soon.incr.length, 2, 'a repeated result and a lost increment');
  assert.equal(soon.beyondWindow!.incr, 2);
  assert.equal(soon.beyondWindow!.linearizability_violations, 1);
});

test('Known window: a counter read within it is left out of the counter\'s second check', () => {
  const c = analyze(h(inc(1, 0, 10), inc(2, 20, 30), rn('1', 100, 101), rn('2', 200, 201, true)), { faulty: new Set(), t0: 0, windowMs: 500 });
  assert.equal(c.stale, 1);
  assert.deepEqual(c.beyondWindow, { windowMs: 500, stale: 0, linearizability_violations: 0, incr: 0 });
});

test('Known window: a read at a node that missed an acknowledged write may show what an unacknowledged write left there, within the window only', () => {
  const del = (call: number, ret: number, node: string): Partial => ({ kind: 'delete', call, ret, outcome: 'indeterminate', node });
  const at = (lag: number) => h(w('a', 0, 1), del(1629, 2135, 'n4'), w('b', 2088, 2090, 'n2'), r(null, 2090 + lag, 2091 + lag, 'n4'), r('b', 2110 + lag, 2111 + lag, 'n1'), r('b', 5000, 5001, 'n1', true));
  const soon = analyze(at(3), { faulty: new Set(['n4']), t0: 0, windowMs: 500 });
  assert.equal(soon.stale, 0, 'not stale by the rule: the delete may have taken effect after "b"');
  assert.equal(soon.linearizability_violations, 1);
  assert.equal(soon.beyondWindow!.linearizability_violations, 0);
  const late = analyze(at(900), { faulty: new Set(['n4']), t0: 0, windowMs: 500 });
  assert.equal(late.beyondWindow!.linearizability_violations, 1);
});
