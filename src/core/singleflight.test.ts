import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Singleflight } from './singleflight.ts';

/** A promise settled from outside, so a test controls exactly when a call finishes. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('100 concurrent calls for one key run fn once and all get its value', async () => {
  const sf = new Singleflight<string, string>();
  const gate = deferred<string>();
  let runs = 0;
  const calls = Array.from({ length: 100 }, () =>
    sf.do('k', () => {
      runs++;
      return gate.promise;
    }),
  );
  assert.equal(runs, 1);
  assert.equal(sf.inFlight(), 1);
  gate.resolve('v');
  const results = await Promise.all(calls);
  assert.equal(runs, 1);
  assert.deepEqual(new Set(results), new Set(['v']));
  assert.equal(results.length, 100);
  assert.equal(sf.inFlight(), 0);
});

test('different keys run independently', async () => {
  const sf = new Singleflight<number, number>();
  let runs = 0;
  const results = await Promise.all([1, 2, 3, 1, 2, 3].map((k) => sf.do(k, async () => (runs++, k * 10))));
  assert.deepEqual(results, [10, 20, 30, 10, 20, 30]);
  assert.equal(runs, 3);
});

test('an error is shared by every concurrent caller, then the key is cleared', async () => {
  const sf = new Singleflight<string, string>();
  const gate = deferred<string>();
  let runs = 0;
  const fn = () => {
    runs++;
    return gate.promise;
  };
  const calls = Array.from({ length: 10 }, () => sf.do('k', fn));
  const boom = new Error('origin down');
  gate.reject(boom);
  const outcomes = await Promise.allSettled(calls);
  assert.equal(runs, 1);
  for (const o of outcomes) {
    assert.equal(o.status, 'rejected');
    assert.equal((o as PromiseRejectedResult).reason, boom);
  }
  assert.equal(sf.inFlight(), 0);
  // not sticky: the next call runs again
  assert.equal(await sf.do('k', async () => (runs++, 'ok')), 'ok');
  assert.equal(runs, 2);
});

test('after success the key is forgotten, so a later call runs fn again', async () => {
  const sf = new Singleflight<string, number>();
  let runs = 0;
  assert.equal(await sf.do('k', async () => ++runs), 1);
  assert.equal(await sf.do('k', async () => ++runs), 2);
});

test('a waiter calling again from its continuation starts a fresh call', async () => {
  const sf = new Singleflight<string, number>();
  let runs = 0;
  const first = sf.do('k', async () => ++runs);
  const second = first.then(() => sf.do('k', async () => ++runs));
  assert.equal(await second, 2);
  assert.equal(sf.inFlight(), 0);
});

test('a synchronous throw becomes a rejection and leaves nothing in flight', async () => {
  const sf = new Singleflight<string, number>();
  await assert.rejects(
    sf.do('k', () => {
      throw new Error('sync');
    }),
    /sync/,
  );
  assert.equal(sf.inFlight(), 0);
});
