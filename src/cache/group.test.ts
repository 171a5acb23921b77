import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Group } from './group.ts';
import { httpLoader, isLoaderError } from './loader.ts';
import type { Loader } from './loader.ts';

const clock = { now: () => 1_000_000 };
const partitionOf = (key: string): number => key.length % 8;

/** A loader whose answers the test releases by hand, counting calls. */
function gatedLoader(): { loader: Loader; calls: string[]; release: (v: Buffer | null | Error) => void } {
  const calls: string[] = [];
  const waiting: Array<(v: Buffer | null | Error) => void> = [];
  const loader: Loader = (key) => {
    calls.push(key);
    return new Promise((resolve, reject) => {
      waiting.push((v) => (v instanceof Error ? reject(v) : resolve(v)));
    });
  };
  return { loader, calls, release: (v) => waiting.shift()?.(v) };
}

test('100 concurrent misses for one key cause exactly one load, and all get its value', async () => {
  const { loader, calls, release } = gatedLoader();
  const g = new Group({ name: 'g', maxBytes: 1 << 20, clock, partitionOf, loader });
  const loads = Array.from({ length: 100 }, () => g.load('k'));
  const other = g.load('other');
  assert.equal(g.loadsStarted(), 2);
  release(Buffer.from('v'));
  release(null);
  const values = await Promise.all(loads);
  assert.ok(values.every((v) => v?.toString() === 'v'));
  assert.equal(await other, null);
  assert.deepEqual(calls, ['k', 'other']);
  // settled: the next miss loads again
  const again = g.load('k');
  release(Buffer.from('v2'));
  assert.equal((await again)?.toString(), 'v2');
  assert.equal(g.loadsStarted(), 3);
});

test('a failure is shared by concurrent callers, then cleared', async () => {
  const { loader, release } = gatedLoader();
  const g = new Group({ name: 'g', maxBytes: 1 << 20, clock, partitionOf, loader });
  const loads = Array.from({ length: 10 }, () => g.load('k'));
  const boom = new Error('origin exploded');
  release(boom);
  for (const r of await Promise.allSettled(loads)) {
    assert.equal(r.status, 'rejected');
    const err = (r as PromiseRejectedResult).reason;
    // a foreign error is converted once, keeping the original as the cause
    assert.ok(isLoaderError(err));
    assert.equal(err.kind, 'failed');
    assert.equal(err.cause, boom);
  }
  assert.equal(g.loadsStarted(), 1);
  const retry = g.load('k');
  release(Buffer.from('ok'));
  assert.equal((await retry)?.toString(), 'ok');
  assert.equal(g.loadsStarted(), 2);
});

test('no loader: load rejects with a no_loader LoaderError', async () => {
  const g = new Group({ name: 'plain', maxBytes: 1000, clock, partitionOf });
  assert.equal(g.loader, undefined);
  await assert.rejects(g.load('k'), (err) => isLoaderError(err) && err.kind === 'no_loader' && /plain/.test(err.message));
});

test("a caller's abort abandons only its own wait", async () => {
  const { loader, release } = gatedLoader();
  const g = new Group({ name: 'g', maxBytes: 1 << 20, clock, partitionOf, loader });
  const ac = new AbortController();
  const quitter = g.load('k', ac.signal);
  const stayer = g.load('k');
  const reason = new Error('client left');
  ac.abort(reason);
  await assert.rejects(quitter, (err) => err === reason);
  release(Buffer.from('v'));
  assert.equal((await stayer)?.toString(), 'v');
  assert.equal(g.loadsStarted(), 1);
  // already aborted: nothing starts
  await assert.rejects(g.load('k2', ac.signal), (err) => err === reason);
  assert.equal(g.loadsStarted(), 1);
});

test('a loader returning the wrong type fails cleanly; a Uint8Array is accepted', async () => {
  const bad = new Group({ name: 'g', maxBytes: 1000, clock, partitionOf, loader: (async () => 'text') as unknown as Loader });
  await assert.rejects(bad.load('k'), (err) => isLoaderError(err) && /string/.test(err.message));
  const u8 = new Group({ name: 'g', maxBytes: 1000, clock, partitionOf, loader: (async () => new Uint8Array([1, 2])) as unknown as Loader });
  const v = await u8.load('k');
  assert.ok(Buffer.isBuffer(v));
  assert.deepEqual([...v!], [1, 2]);
});

test('the budget is split between store and hot cache, and resize keeps the split', () => {
  const g = new Group({ name: 'g', maxBytes: 8000, clock, partitionOf });
  assert.equal(g.store.stats().maxBytes, 7000);
  g.hot.set('k', Buffer.alloc(900), 0); // 900 + 1 + overhead > 1000: does not fit
  assert.equal(g.hot.stats().entries, 0);
  g.hot.set('k', Buffer.alloc(500), 0);
  assert.equal(g.hot.stats().entries, 1);
  g.resize(16000);
  assert.equal(g.store.stats().maxBytes, 14000);
  const noHot = new Group({ name: 'g', maxBytes: 8000, clock, partitionOf, hotCacheFraction: 0 });
  assert.equal(noHot.store.stats().maxBytes, 8000);
  noHot.hot.set('k', Buffer.alloc(1), 0);
  assert.equal(noHot.hot.get('k'), undefined);
  assert.throws(() => new Group({ name: 'g', maxBytes: 8000, clock, partitionOf, hotCacheFraction: 1 }), /hotCacheFraction.*Got: 1/);
  assert.throws(() => new Group({ name: 'g', maxBytes: 0, clock, partitionOf }), /maxBytes.*Got: 0/);
});

test('through a real HTTP origin: 100 concurrent misses, one origin request', async () => {
  let requests = 0;
  const held: http.ServerResponse[] = [];
  let arrived!: () => void;
  const firstRequest = new Promise<void>((resolve) => (arrived = resolve));
  const origin = http.createServer((_req, res) => {
    requests++;
    held.push(res); // answered once every caller is waiting
    arrived();
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  try {
    const port = (origin.address() as AddressInfo).port;
    const g = new Group({ name: 'g', maxBytes: 1 << 20, clock, partitionOf, loader: httpLoader(`http://127.0.0.1:${port}/{key}`) });
    const loads = Array.from({ length: 100 }, () => g.load('hot-key'));
    await firstRequest;
    assert.equal(held.length, 1);
    held[0]!.end('from-origin');
    const values = await Promise.all(loads);
    assert.ok(values.every((v) => v?.toString() === 'from-origin'));
    assert.equal(requests, 1);
    assert.equal(g.loadsStarted(), 1);
  } finally {
    origin.closeAllConnections();
    await new Promise<void>((resolve) => origin.close(() => resolve()));
  }
});
