import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JincacheError } from '../core/errors.ts';
import type { WireRecord } from '../peer/codec.ts';
import { ReplicaBatcher } from './replica-batch.ts';

/** A fake event loop: deferred functions and timers run when the test says so. */
function harness(opts: { maxRecords?: number; maxBytes?: number } = {}) {
  const clock = { t: 1000, now(): number { return this.t; } };
  const deferred: (() => void)[] = [];
  const timers: { at: number; fn: () => void; live: boolean }[] = [];
  const sent: { peer: string; keys: string[]; deadline: number; table: number; answer: (e?: Error) => void }[] = [];
  const batcher = new ReplicaBatcher({
    clock,
    defer: (fn) => deferred.push(fn),
    after: (ms, fn) => {
      const t = { at: clock.t + ms, fn, live: true };
      timers.push(t);
      return () => (t.live = false);
    },
    send: (peer, records, deadline, table) =>
      new Promise<void>((resolve, reject) => {
        sent.push({ peer, keys: records.map((r) => r.key), deadline, table, answer: (e) => (e === undefined ? resolve() : reject(e)) });
      }),
    ...opts,
  });
  const endTurn = () => deferred.splice(0).forEach((fn) => fn());
  const advance = (ms: number) => {
    clock.t += ms;
    for (const t of timers.splice(0)) {
      if (t.live && t.at <= clock.t) t.fn();
      else if (t.live) timers.push(t);
    }
  };
  return { batcher, sent, endTurn, advance, clock };
}

const rec = (key: string, value = 'v'): WireRecord => ({ group: 'g', key, value: Buffer.from(value), version: 1, expiresAt: 0 });
const flushPromises = () => new Promise((r) => setImmediate(r));

test('the records for one peer in one turn go out as one request, in order; each write is confirmed with it', async () => {
  const { batcher, sent, endTurn } = harness();
  const a = batcher.replicate('b', [rec('k1')], 5000, 1);
  const b = batcher.replicate('c', [rec('k2')], 5000, 1);
  const c = batcher.replicate('b', [rec('k3'), rec('k4')], 5000, 1);
  assert.equal(sent.length, 0, 'nothing is sent before the turn ends');
  endTurn();
  assert.deepEqual(sent.map((s) => [s.peer, s.keys]), [['b', ['k1', 'k3', 'k4']], ['c', ['k2']]]);
  let settled = false;
  void a.then(() => (settled = true));
  await flushPromises();
  assert.equal(settled, false, 'not confirmed before the peer answers');
  sent[0]!.answer();
  sent[1]!.answer();
  assert.equal(await a, undefined);
  assert.equal(await b, undefined);
  assert.equal(await c, undefined);
  assert.equal(batcher.requests, 2);
});

test('a failed request fails every write it carried, with its error', async () => {
  const { batcher, sent, endTurn } = harness();
  const a = batcher.replicate('b', [rec('k1')], 5000, 1);
  const b = batcher.replicate('b', [rec('k2')], 5000, 1);
  endTurn();
  sent[0]!.answer(new JincacheError('PEER_UNAVAILABLE', 'b: connection refused'));
  assert.equal((await a)?.code, 'PEER_UNAVAILABLE');
  assert.equal((await b)?.code, 'PEER_UNAVAILABLE');
});

test('the request has the latest deadline; a write whose deadline comes first times out at its own', async () => {
  const { batcher, sent, endTurn, advance } = harness();
  const early = batcher.replicate('b', [rec('k1')], 1100, 1);
  const late = batcher.replicate('b', [rec('k2')], 1500, 1);
  endTurn();
  assert.equal(sent[0]!.deadline, 1500);
  advance(99);
  let earlyDone = false;
  void early.then(() => (earlyDone = true));
  await flushPromises();
  assert.equal(earlyDone, false, 'still within its deadline');
  advance(1);
  assert.equal((await early)?.code, 'TIMEOUT');
  sent[0]!.answer();
  assert.equal(await late, undefined, 'the later write is confirmed when the request is');
});

test('a full batch is sent at once and the next write starts another', () => {
  const { batcher, sent, endTurn } = harness({ maxRecords: 2 });
  void batcher.replicate('b', [rec('k1')], 5000, 1);
  void batcher.replicate('b', [rec('k2')], 5000, 1);
  assert.equal(sent.length, 0);
  void batcher.replicate('b', [rec('k3')], 5000, 1);
  assert.deepEqual(sent.map((s) => s.keys), [['k1', 'k2']], 'sent when the third would overflow it');
  endTurn();
  assert.deepEqual(sent.map((s) => s.keys), [['k1', 'k2'], ['k3']]);
});

test('writes routed by different tables go in different requests, each naming its own table', () => {
  const { batcher, sent, endTurn } = harness();
  void batcher.replicate('b', [rec('k1')], 5000, 7);
  void batcher.replicate('b', [rec('k2')], 5000, 7);
  void batcher.replicate('b', [rec('k3')], 5000, 8);
  assert.deepEqual(sent.map((s) => [s.keys, s.table]), [[['k1', 'k2'], 7]], 'the table-7 batch leaves when a table-8 write comes');
  endTurn();
  assert.deepEqual(sent.map((s) => [s.keys, s.table]), [[['k1', 'k2'], 7], [['k3'], 8]]);
});

test('a write after the turn ended goes in the next request', () => {
  const { batcher, sent, endTurn } = harness();
  void batcher.replicate('b', [rec('k1')], 5000, 1);
  endTurn();
  void batcher.replicate('b', [rec('k2')], 5000, 1);
  endTurn();
  assert.deepEqual(sent.map((s) => s.keys), [['k1'], ['k2']]);
});

test('options are validated', () => {
  assert.throws(() => new ReplicaBatcher({ clock: { now: () => 0 }, send: async () => {}, maxRecords: 0 }), /maxRecords must be a positive integer. Got: 0/);
});
