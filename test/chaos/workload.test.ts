/**
 * The workload end to end against an in-process store (the HTTP API has no INCR yet, so the
 * pluggable INCR client is exercised here; the HTTP client runs against real nodes in
 * test/integration/chaos-hosts-short.test.ts). Ops interleave over event-loop turns, no timers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { History, incrAnomalies, lostWrites, staleReads, byKey } from './history.ts';
import { checkHistory } from './linearizability.ts';
import { errorBody, finalReads, mutationFailure, Workload, type OpClient, type OpTarget, type Reply } from './workload.ts';

/** Yield to the event loop 0..3 times, so concurrent ops overlap. */
async function turns(random: () => number): Promise<void> {
  for (let i = Math.floor(random() * 4); i > 0; i--) await new Promise((r) => setImmediate(r));
}

function seeded(seed: number): () => number {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** One map, each op applied atomically at one point between its call and its answer. */
function store(random: () => number, opts: { duplicateIncrEvery?: number } = {}): OpClient {
  const data = new Map<string, string>();
  let incrs = 0;
  const at = async <T>(fn: () => T): Promise<Reply<T>> => {
    await turns(random);
    const result = fn();
    await turns(random);
    return { outcome: 'ok', result };
  };
  return {
    read: (_t, key) => at(() => data.get(key) ?? null),
    write: (_t, key, value) => at(() => void data.set(key, value)),
    delete: (_t, key) => at(() => void data.delete(key)),
    incr: (_t, key, delta) =>
      at(() => {
        const v = data.get(key);
        if (v !== undefined && !/^-?\d+$/.test(v)) return 'error' as const;
        let n = Number(v ?? 0) + delta;
        // the bug a retried INCR would be: applied twice, answered once
        if (opts.duplicateIncrEvery !== undefined && ++incrs % opts.duplicateIncrEvery === 0) n += delta;
        data.set(key, String(n));
        return n;
      }),
  };
}

const targets: OpTarget[] = [
  { id: 'n1', url: 'mem://n1' },
  { id: 'n2', url: 'mem://n2' },
];

async function run(client: OpClient, seed: number): Promise<History> {
  let t = 0;
  const history = new History(() => ++t); // a logical clock: every event gets its own tick
  const w = new Workload({ history, client, keys: ['a', 'b'], counterKeys: ['c'], clients: 6, mix: { read: 0.4, write: 0.3, delete: 0.1, incr: 0.2 }, targets: () => targets, timeoutMs: 1000, thinkMs: 0, maxOps: 1500, random: seeded(seed) });
  w.start();
  await w.finished();
  assert.equal(w.issued(), 1500);
  await finalReads({ history, client, keys: ['a', 'b', 'c'], targets, timeoutMs: 1000 });
  return history;
}

test('a correct store: every key linearizable, no stale read, no lost write, no INCR anomaly', async () => {
  const random = seeded(7);
  const h = await run(store(random), 11);
  const ops = h.ops();
  assert.equal(h.pending().length, 0);
  assert.ok(ops.some((o) => o.kind === 'incr') && ops.some((o) => o.kind === 'delete'), 'the mix ran');
  for (const v of checkHistory(ops)) assert.equal(v.kind, 'linearizable', `${v.key}: ${v.kind}`);
  for (const [, keyOps] of byKey(ops)) if (!keyOps.some((o) => o.kind === 'incr')) assert.deepEqual(staleReads(keyOps).stale, []);
  assert.deepEqual(lostWrites(ops), []);
  assert.deepEqual(incrAnomalies(ops), []);
  // values are unique per history
  const values = ops.filter((o) => o.kind === 'write').map((o) => o.value);
  assert.equal(new Set(values).size, values.length);
});

test('an INCR applied twice is found by the counter model and by the INCR check', async () => {
  const random = seeded(3);
  const h = await run(store(random, { duplicateIncrEvery: 25 }), 5);
  const verdict = checkHistory(h.ops()).find((v) => v.key === 'c')!;
  assert.equal(verdict.kind, 'violation');
  assert.ok(incrAnomalies(h.ops()).some((a) => a.kind === 'duplicate-effect'));
});

test('INCR in the mix needs a client that speaks it', () => {
  const { incr: _none, ...noIncr } = store(Math.random);
  assert.throws(() => new Workload({ history: new History(), client: noIncr, keys: ['a'], counterKeys: ['c'], clients: 1, mix: { read: 1, write: 1, delete: 0, incr: 1 }, targets: () => targets, timeoutMs: 100 }), /needs an OpClient with incr/);
  assert.throws(() => new Workload({ history: new History(), client: store(Math.random), keys: ['a'], clients: 1, mix: { read: 1, write: 1, delete: 0, incr: 1 }, targets: () => targets, timeoutMs: 100 }), /needs counterKeys/);
});

test('HTTP mutation outcomes: 4xx and a refused connection changed nothing; timeouts, resets and 5xx may have', () => {
  assert.equal(mutationFailure(400).outcome, 'fail');
  assert.equal(mutationFailure(413).outcome, 'fail');
  assert.equal(mutationFailure(408).outcome, 'indeterminate');
  assert.equal(mutationFailure(503).outcome, 'indeterminate');
  assert.equal(mutationFailure(undefined, Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } })).outcome, 'fail');
  assert.equal(mutationFailure(undefined, Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } })).outcome, 'indeterminate');
  assert.deepEqual(mutationFailure(undefined, new DOMException('timed out', 'TimeoutError')), { outcome: 'indeterminate', error: 'TimeoutError' });
});

test('errorBody: a failed read names the error and its message from a SPEC §3 body, and nothing from another body', () => {
  assert.equal(errorBody('{"error":"peer_unavailable","message":"node-4 did not answer"}'), ' peer_unavailable: node-4 did not answer');
  assert.equal(errorBody('{"error":"timeout"}'), ' timeout');
  assert.equal(errorBody('<html>bad gateway</html>'), '');
  assert.equal(errorBody('{"other":1}'), '');
});
