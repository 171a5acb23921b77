import { describe, test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { PeerBreakers, isBreakerOpen, withRetry } from './breakers.ts';
import { JincacheError } from '../../core/errors.ts';
import { BrokenCircuitError } from 'cockatiel';

const down = () => Promise.reject(new JincacheError('PEER_UNAVAILABLE', 'refused'));
const ok = () => Promise.resolve('ok');
/** Let every promise continuation run (setImmediate is not faked). */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('PeerBreakers', () => {
  test('opens at the failure ratio once enough calls were seen, refuses at once, probes half-open after halfOpenAfter, closes on success', async () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      const b = new PeerBreakers({ threshold: 0.5, windowMs: 2000, minimumRps: 2, halfOpenAfterMs: 1000, consecutiveFailures: 10 });
      const changes: string[] = [];
      b.onChange((peer, s) => changes.push(`${peer}:${s}`));
      // 3 calls: below the minimum count (2 rps x 2 s = 4): stays closed
      for (let i = 0; i < 3; i++) await b.execute('p', down).catch(() => {});
      assert.equal(b.state('p'), 'closed');
      await b.execute('p', down).catch(() => {});
      assert.equal(b.state('p'), 'open');
      assert.equal(b.allows('p'), false);
      assert.equal(b.allows('q'), true, 'breakers are per peer');
      await assert.rejects(b.execute('p', ok), (e) => isBreakerOpen(e));
      mock.timers.tick(999);
      await assert.rejects(b.execute('p', ok), (e) => isBreakerOpen(e));
      mock.timers.tick(1);
      assert.equal(await b.execute('p', ok, true), 'ok');
      assert.equal(b.state('p'), 'closed');
      assert.deepEqual(changes, ['p:open', 'p:half-open', 'p:closed']);
    } finally {
      mock.timers.reset();
    }
  });

  test('successes keep the ratio under the threshold; errors that are not about the peer do not count', async () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      const b = new PeerBreakers({ threshold: 0.5, minimumRps: 1 });
      for (let i = 0; i < 20; i++) {
        await b.execute('p', ok);
        if (i % 3 === 0) await b.execute('p', down).catch(() => {});
      }
      assert.equal(b.state('p'), 'closed');
      for (let i = 0; i < 20; i++) await b.execute('p', () => Promise.reject(new JincacheError('BAD_REQUEST', 'x'))).catch(() => {});
      assert.equal(b.state('p'), 'closed');
    } finally {
      mock.timers.reset();
    }
  });

  test('a streak of failures opens the breaker although the window still holds many earlier successes (a peer that hangs under load)', async () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      const b = new PeerBreakers({ threshold: 0.5, windowMs: 2000, minimumRps: 1, consecutiveFailures: 3 });
      for (let i = 0; i < 200; i++) await b.execute('p', ok);
      mock.timers.tick(500);
      await b.execute('p', down).catch(() => {});
      await b.execute('p', down).catch(() => {});
      assert.equal(b.state('p'), 'closed', '2 of 202 failed: neither rule');
      await b.execute('p', ok);
      await b.execute('p', down).catch(() => {});
      await b.execute('p', down).catch(() => {});
      assert.equal(b.state('p'), 'closed', 'a success between failures ends the streak');
      await b.execute('p', down).catch(() => {});
      assert.equal(b.state('p'), 'open', '3 in a row');
      // the probe that closes it also resets the streak
      mock.timers.tick(1000);
      await b.execute('p', ok, true);
      assert.equal(b.state('p'), 'closed');
      for (let i = 0; i < 10; i++) await b.execute('p', ok);
      await b.execute('p', down).catch(() => {});
      await b.execute('p', down).catch(() => {});
      assert.equal(b.state('p'), 'closed');
    } finally {
      mock.timers.reset();
    }
  });

  test('a threshold of 1 is accepted (open only when every call fails)', () => {
    assert.doesNotThrow(() => new PeerBreakers({ threshold: 1 }));
    assert.throws(() => new PeerBreakers({ threshold: 0 }), /threshold must be in \(0, 1\]. Got: 0/);
    assert.throws(() => new PeerBreakers({ consecutiveFailures: 0 }), /consecutiveFailures must be an integer >= 1. Got: 0/);
  });
});

describe('withRetry', () => {
  test('retries peer failures at most maxRetries times', async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(() => {
        calls++;
        return down();
      }, { maxRetries: 2, deadline: Date.now() + 5000, initialDelayMs: 1, maxDelayMs: 2 }),
      /refused/,
    );
    assert.equal(calls, 3);
  });

  test('when every attempt failed, an open breaker of the holder tried last does not hide what the one before it ran into', async () => {
    const open = new JincacheError('PEER_UNAVAILABLE', 'circuit breaker for n4 is open', { cause: new BrokenCircuitError() });
    let calls = 0;
    await assert.rejects(
      withRetry(() => {
        calls++;
        return Promise.reject(calls % 2 === 1 ? new JincacheError('NOT_SERVING', 'n2 is catching up') : open);
      }, { maxRetries: 3, deadline: Date.now() + 5000, initialDelayMs: 1, maxDelayMs: 2 }),
      /n2 is catching up/,
    );
    assert.equal(calls, 4);
    // only open breakers: that is what the caller hears
    await assert.rejects(withRetry(() => Promise.reject(open), { maxRetries: 1, deadline: Date.now() + 5000, initialDelayMs: 1, maxDelayMs: 2 }), /circuit breaker for n4/);
  });

  test('does not retry other errors', async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(() => {
        calls++;
        return Promise.reject(new JincacheError('BAD_REQUEST', 'no'));
      }, { maxRetries: 3, deadline: Date.now() + 5000 }),
      /no/,
    );
    assert.equal(calls, 1);
  });

  test('never runs past the deadline, even while backing off', async () => {
    // On a fake clock: the call must settle when the clock reaches the deadline, not a
    // millisecond later, with a backoff under way (the next attempt would start after it). With
    // real time the call ends when its deadline timer runs, which on a loaded machine is however
    // late the event loop runs any timer (a 2-core CI saw 119 ms, as late as a plain
    // setTimeout for the same moment): nothing withRetry can change, so not measured here.
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    try {
      const deadline = Date.now() + 50;
      const attemptsAt: number[] = [];
      let outcome: unknown;
      const call = withRetry(() => {
        attemptsAt.push(Date.now());
        return down();
      }, { maxRetries: 10, deadline, initialDelayMs: 40, maxDelayMs: 1000 }).then(() => (outcome = 'resolved'), (e: unknown) => (outcome = e));
      while (Date.now() < deadline) {
        await settle();
        assert.equal(outcome, undefined, `settled ${deadline - Date.now()} ms before the deadline`);
        mock.timers.tick(1);
      }
      await settle();
      assert.ok(outcome instanceof JincacheError && /refused/.test(outcome.message), `settled at the deadline with the last failure, got ${String(outcome)}`);
      assert.ok(attemptsAt.length >= 1 && attemptsAt.every((t) => t < deadline), `attempts at +${attemptsAt.map((t) => t - deadline + 50).join(', +')} ms`);
      await call;
    } finally {
      mock.timers.reset();
    }
  });

  test('succeeds on a later attempt, passing the attempt number', async () => {
    const seen: number[] = [];
    const out = await withRetry((n) => {
      seen.push(n);
      return n < 2 ? down() : ok();
    }, { maxRetries: 3, deadline: Date.now() + 5000, initialDelayMs: 1, maxDelayMs: 2 });
    assert.equal(out, 'ok');
    assert.deepEqual(seen, [0, 1, 2]);
  });
});
