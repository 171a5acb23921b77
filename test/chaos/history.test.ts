/** Recording, and the checks that need no search: stale reads, lost writes, INCR effects. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatOp, History, incrAnomalies, lostWrites, staleReads, type Op } from './history.ts';
import { historyOf, renumber, stepArb } from './history-gen.ts';

type Partial = Omit<Op, 'id' | 'client' | 'node' | 'key'> & { key?: string; node?: string };
const h = (...ops: Partial[]): Op[] => renumber(ops.map((o) => ({ client: 0, node: 'n1', key: 'k', ...o })));
const w = (value: string, call: number, ret: number, outcome: Op['outcome'] = 'ok'): Partial => ({ kind: 'write', value, call, ret, outcome });
const r = (result: string | null, call: number, ret: number, final = false): Partial => ({ kind: 'read', result, call, ret, outcome: 'ok', ...(final ? { final } : {}) });
const del = (call: number, ret: number, outcome: Op['outcome'] = 'ok'): Partial => ({ kind: 'delete', call, ret, outcome });

test('the recorder stamps call and completion on its clock', () => {
  let now = 10;
  const hist = new History(() => now);
  const op = hist.invoke({ client: 3, node: 'n2', key: 'a', kind: 'write', value: 'x' });
  assert.deepEqual(hist.pending(), [op]);
  now = 25;
  hist.complete(op, 'indeterminate', undefined, 'TimeoutError');
  assert.deepEqual([op.call, op.ret, op.outcome, op.error], [10, 25, 'indeterminate', 'TimeoutError']);
  assert.throws(() => hist.complete(op, 'ok'), /completed twice/);
  assert.throws(() => hist.invoke({ client: 0, node: 'n1', key: 'a', kind: 'write' }), /needs a value/);
  assert.throws(() => hist.invoke({ client: 0, node: 'n1', key: 'a', kind: 'incr', delta: 0.5 }), /integer delta/);
  assert.match(formatOp(op, 10), /^\[0\.0 \.\. 15\.0\+\?\] c3 via n2: a write "x" indeterminate \(TimeoutError\)$/);
});

test("stale: issue 17's read of W' after W, which began after W' ended, was acknowledged", () => {
  const { stale } = staleReads(h(w('old', 0, 1), w('new', 2, 3), r('old', 4, 5)));
  assert.equal(stale.length, 1);
  assert.equal(stale[0]!.source!.value, 'old');
  assert.equal(stale[0]!.newer.value, 'new');
});

test("not stale: W overlapped W' (so may have taken effect first), or was not acknowledged before the read began", () => {
  assert.equal(staleReads(h(w('old', 0, 3), w('new', 2, 4), r('old', 5, 6))).stale.length, 0, 'W began before W\' ended');
  assert.equal(staleReads(h(w('old', 0, 1), w('new', 2, 5), r('old', 4, 6))).stale.length, 0, 'W acknowledged after the read began');
  assert.equal(staleReads(h(w('old', 0, 1), w('new', 2, 3, 'indeterminate'), r('old', 4, 5))).stale.length, 0, 'W not acknowledged');
});

test('an indeterminate W\' ends when a read first saw it', () => {
  const hist = h(w('old', 0, 100, 'indeterminate'), r('old', 1, 2), w('new', 3, 4), r('old', 5, 6));
  const { stale } = staleReads(hist);
  assert.deepEqual(stale.map((s) => s.read.call), [5]);
});

test('an acknowledged W\' ends, for the rule, when a read first saw it, if that was before its acknowledgement', () => {
  // the write is slow to be acknowledged, but a read shows it early; a delete begins after that read
  const hist = h(w('old', 0, 50), r('old', 5, 6), del(10, 12), r('old', 60, 61, true));
  assert.equal(staleReads(hist).stale.length, 1);
  assert.equal(lostWrites(hist).length, 1, 'the acknowledged delete is lost');
  // without the early read, the delete overlaps the write and may have come first
  assert.equal(lostWrites(h(w('old', 0, 50), del(10, 12), r('old', 60, 61, true))).length, 0);
});

test('a read of absent is stale only when every delete (and the start) was overwritten since', () => {
  assert.equal(staleReads(h(w('a', 0, 1), r(null, 2, 3))).stale.length, 1, 'the initial absence, after an acknowledged write');
  assert.equal(staleReads(h(w('a', 0, 1), del(2, 3), r(null, 4, 5))).stale.length, 0, 'a delete since');
  assert.equal(staleReads(h(w('a', 0, 1), del(2, 3), w('b', 4, 5), r(null, 6, 7))).stale.length, 1, 'the delete was overwritten');
  assert.equal(staleReads(h(w('a', 0, 1), del(2, 30, 'indeterminate'), w('b', 4, 5), r(null, 6, 7))).stale.length, 0, 'an indeterminate delete may land late');
  assert.equal(staleReads(h(w('a', 0, 1), del(2, 3), del(4, 5), r(null, 6, 7))).stale.length, 0, 'a second delete is not a newer value');
});

test('a read of a value nobody wrote, or before its write, is unexplained', () => {
  const { unexplained } = staleReads(h(w('a', 0, 1), r('zzz', 2, 3), r('b', 4, 5), w('b', 6, 7)));
  assert.deepEqual(unexplained.map((u) => u.read.result), ['zzz', 'b']);
});

test('lost writes: a final read that is stale', () => {
  const lost = lostWrites([
    ...h(w('a', 0, 1), w('b', 2, 3), r('a', 10, 11, true)),
    ...h({ ...w('x', 0, 1), key: 'ok' }, { ...r('x', 10, 11, true), key: 'ok' }),
  ].map((o, id) => ({ ...o, id })));
  assert.equal(lost.length, 1);
  assert.equal(lost[0]!.key, 'k');
  assert.equal(lost[0]!.lost.value, 'b');
  // a stale read during the load is not a lost write
  assert.equal(lostWrites(h(w('a', 0, 1), w('b', 2, 3), r('a', 4, 5), r('b', 10, 11, true))).length, 0);
});

test('INCR: duplicate effects, lost increments and repeated results', () => {
  const incr = (call: number, ret: number, result?: number, outcome: Op['outcome'] = 'ok'): Partial => ({ kind: 'incr', delta: 1, call, ret, outcome, ...(result !== undefined ? { result } : {}) });
  const kinds = (ops: Op[]): string[] => incrAnomalies(ops).map((a) => a.kind);
  assert.deepEqual(kinds(h(incr(0, 1, 1), incr(2, 3, 2), r('2', 10, 11, true))), []);
  assert.deepEqual(kinds(h(incr(0, 1, 1), incr(2, 3, undefined, 'indeterminate'), r('2', 10, 11, true))), [], 'the indeterminate one applied');
  assert.deepEqual(kinds(h(incr(0, 1, 1), incr(2, 3, 2), r('3', 10, 11, true))), ['duplicate-effect']);
  assert.deepEqual(kinds(h(incr(0, 1, 1), incr(2, 3, 2), r('1', 10, 11, true))), ['lost-increment']);
  assert.deepEqual(kinds(h(incr(0, 5, 1), incr(1, 4, 1), r('2', 10, 11, true))), ['repeated-result']);
});

test('property: a real register shows no stale read, no unexplained read and loses no write', () => {
  fc.assert(
    fc.property(fc.array(stepArb(['read', 'read', 'write', 'write', 'delete']), { minLength: 1, maxLength: 80 }), (steps) => {
      const hist = historyOf(steps);
      // final reads: the register's last value, read after everything
      const end = Math.max(...hist.map((o) => o.ret ?? 0)) + 10;
      const last = historyOf([...steps, { kind: 'read', before: 0, after: 0, outcome: 'ok', applied: true }]).find((o) => o.call === 100 + steps.length)!;
      const withFinal = [...hist, { ...last, id: hist.length, call: end, ret: end + 1, final: true }];
      const { stale, unexplained } = staleReads(withFinal);
      assert.deepEqual(stale, []);
      assert.deepEqual(unexplained, []);
      assert.deepEqual(lostWrites(withFinal), []);
    }),
    { numRuns: 300 },
  );
});

test('property: a real counter shows no INCR anomaly', () => {
  fc.assert(
    fc.property(fc.array(stepArb(['incr', 'incr', 'read']), { minLength: 1, maxLength: 60 }), (steps) => {
      const hist = historyOf(steps);
      const all = historyOf([...steps, { kind: 'read', before: 0, after: 0, outcome: 'ok', applied: true }]);
      const last = all.find((o) => o.call === 100 + steps.length)!;
      const end = Math.max(...hist.map((o) => o.ret ?? 0)) + 10;
      assert.deepEqual(incrAnomalies([...hist, { ...last, id: hist.length, call: end, ret: end + 1, final: true }]), []);
    }),
    { numRuns: 200 },
  );
});
