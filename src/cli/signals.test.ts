import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SAME_SIGNAL_MS, StopRequests, onStopSignals, signalExitCode, type StopSignal } from './signals.ts';

test('the first signal is graceful; copies within the window are the same request', () => {
  const r = new StopRequests();
  assert.equal(r.next(10_000), 'graceful');
  assert.equal(r.next(10_003), 'same'); // the wrapper's forwarded copy of the terminal's SIGINT
  assert.equal(r.next(10_000 + SAME_SIGNAL_MS - 1), 'same');
});

test('a signal a window after the first forces, once; later ones change nothing', () => {
  const r = new StopRequests();
  assert.equal(r.next(0), 'graceful');
  assert.equal(r.next(SAME_SIGNAL_MS), 'force');
  assert.equal(r.next(SAME_SIGNAL_MS + 2), 'same');
  assert.equal(r.next(10 * SAME_SIGNAL_MS), 'same');
});

test('property: one graceful first, at most one force, and only for a signal a window after the first', () => {
  fc.assert(
    fc.property(fc.array(fc.nat({ max: 5 * SAME_SIGNAL_MS }), { minLength: 1, maxLength: 20 }), (gaps) => {
      const times = gaps.reduce<number[]>((acc, g) => [...acc, (acc.at(-1) ?? 0) + g], []);
      const r = new StopRequests();
      const decisions = times.map((t) => r.next(t));
      assert.equal(decisions[0], 'graceful');
      assert.equal(decisions.filter((d) => d === 'graceful').length, 1);
      const forced = decisions.indexOf('force');
      const firstLate = times.findIndex((t) => t - times[0]! >= SAME_SIGNAL_MS);
      assert.equal(forced, firstLate, `force at the first signal a window after the first (${times.join(',')})`);
    }),
  );
});

test('onStopSignals: SIGINT and SIGTERM share one request; the disposer removes the listeners', () => {
  let clock = 0;
  const seen: string[] = [];
  const before = process.listenerCount('SIGINT');
  const beforeTerm = process.listenerCount('SIGTERM');
  const dispose = onStopSignals(
    { graceful: (s) => seen.push(`graceful ${s}`), force: (s) => seen.push(`force ${s}`) },
    () => clock,
  );
  try {
    assert.equal(process.listenerCount('SIGINT'), before + 1);
    process.emit('SIGINT');
    clock = 5;
    process.emit('SIGTERM'); // the parent's forwarded stop
    clock = 5 + SAME_SIGNAL_MS;
    process.emit('SIGINT');
    assert.deepEqual(seen, ['graceful SIGINT', 'force SIGINT']);
  } finally {
    dispose();
  }
  assert.equal(process.listenerCount('SIGINT'), before);
  assert.equal(process.listenerCount('SIGTERM'), beforeTerm);
});

test('signalExitCode is the shell convention', () => {
  const codes: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };
  for (const [s, c] of Object.entries(codes)) assert.equal(signalExitCode(s as StopSignal), c);
});
