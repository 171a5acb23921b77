import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadAndKill, summarize, type FailoverTarget, type RequestRecord } from './failover.ts';

test('summarize: reroute is the first success for a victim key started after the kill', () => {
  const rs: RequestRecord[] = [
    { start: -50, end: -40, ok: true, victim: true }, // before the kill: ignored
    { start: -5, end: 20, ok: true, victim: true }, // started before the kill: not rerouted
    { start: 1, end: 900, ok: false, victim: true },
    { start: 10, end: 30, ok: true, victim: false }, // not the victim's key
    { start: 950, end: 1200, ok: true, victim: true },
    { start: 960, end: 1100, ok: true, victim: true }, // ends first: this one
    { start: 1000, end: 1500, ok: false, victim: false },
  ];
  assert.deepEqual(summarize(rs, 2500), { rerouteMs: 1100, errorsEndMs: 1500, restoredMs: 2500, failed: 2, total: 6 });
  assert.deepEqual(summarize([], null), { rerouteMs: null, errorsEndMs: 0, restoredMs: null, failed: 0, total: 0 });
});

test('loadAndKill drives a bounded load, kills once, and sees reroute, errors and restore', { timeout: 20_000 }, async () => {
  let killedAt = 0;
  let kills = 0;
  const victimKeys = new Set(['a', 'b']);
  // A fake side: the victim's keys fail for 300 ms after the kill, restore at 500 ms.
  const since = () => (killedAt === 0 ? -1 : performance.now() - killedAt);
  const call = async (k: string) => {
    await new Promise((r) => setTimeout(r, 2));
    if (victimKeys.has(k) && since() >= 0 && since() < 300) throw new Error('down');
  };
  const t: FailoverTarget = {
    get: call,
    set: (k) => call(k),
    victimKeys,
    kill: async () => {
      kills++;
      killedAt = performance.now();
    },
    restored: async () => since() >= 500,
    close: async () => {},
  };
  const t0 = performance.now();
  const r = await loadAndKill(t, ['a', 'b', 'c', 'd'], { rounds: 1, preKillMs: 200, maxObserveMs: 5000, tailMs: 200 });
  assert.equal(kills, 1);
  assert.ok(r.failed > 0 && r.failed < r.total, `failed ${r.failed}/${r.total}`);
  assert.ok(r.rerouteMs !== null && r.rerouteMs >= 300 && r.rerouteMs < 600, `reroute ${r.rerouteMs}`);
  assert.ok(r.errorsEndMs >= 250 && r.errorsEndMs < 400, `errors end ${r.errorsEndMs}`);
  assert.ok(r.restoredMs !== null && r.restoredMs >= 500 && r.restoredMs < 800, `restored ${r.restoredMs}`);
  assert.ok(performance.now() - t0 < 2500, 'stops soon after restore + tail, not at maxObserve');
});
