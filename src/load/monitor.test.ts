import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoadMonitor, processProbe, type LoadTimers, type ProcessProbe } from './monitor.ts';
import { isLoadWindowError } from './window.ts';

function setup(extra: Partial<ConstructorParameters<typeof LoadMonitor>[0]> = {}) {
  let t = 1_000_000;
  const clock = { now: () => t };
  const state = { cpu: 0, rss: 100 * 1024 ** 2, elu: 0.25, lag: 1.5, started: 0, stopped: 0 };
  const probe: ProcessProbe = {
    start: () => void state.started++,
    stop: () => void state.stopped++,
    rssBytes: () => state.rss,
    cpuMicros: () => state.cpu,
    elu: () => state.elu,
    lagMs: () => state.lag,
  };
  let fn: (() => void) | undefined;
  let period = 0;
  const timers: LoadTimers = {
    setInterval: (f, ms) => {
      fn = f;
      period = ms;
      return 1;
    },
    clearInterval: () => void (fn = undefined),
  };
  const monitor = new LoadMonitor({
    id: 'n1',
    clock,
    probe,
    timers,
    partitionCount: 64,
    stored: () => ({ bytes: 1000, entries: 10 }),
    capacity: { qps: 1000, storageBytes: 10_000, memoryBytes: 1024 ** 3, networkBytesPerSec: 1e6 },
    ...extra,
  });
  return {
    monitor,
    state,
    advance(ms: number) {
      t += ms;
      fn?.();
    },
    get period() {
      return period;
    },
    get running() {
      return fn !== undefined;
    },
  };
}

describe('LoadMonitor', () => {
  it('reports windowed rates by operation, bytes, partitions, process readings and a score', () => {
    const s = setup();
    s.monitor.start();
    assert.equal(s.period, 1000);
    for (let sec = 0; sec < 12; sec++) {
      for (let i = 0; i < 100; i++) s.monitor.record('get', 'g', `k${i % 5}`, 3, 10, 200);
      for (let i = 0; i < 20; i++) s.monitor.record('put', 'g', 'w', 7, 500, 0);
      for (let i = 0; i < 5; i++) s.monitor.record('delete', 'g', 'w', 7, 10, 0);
      s.monitor.record('other', 'g', 'x', -1, 0, 0);
      s.state.cpu += 250_000; // a quarter of a core
      s.advance(1000);
    }
    const r = s.monitor.report();
    assert.equal(r.id, 'n1');
    assert.equal(r.at, 1_012_000);
    assert.deepEqual(r.qps, { get: 100, put: 20, delete: 5, total: 126 });
    assert.equal(r.bytesInPerSec, 100 * 10 + 20 * 500 + 5 * 10);
    assert.equal(r.bytesOutPerSec, 100 * 200);
    assert.deepEqual(r.partitionQps, { 3: 100, 7: 25 });
    assert.equal(r.cpu, 0.25);
    assert.equal(r.elu, 0.25);
    assert.equal(r.lagMs, 1.5);
    assert.equal(r.rssBytes, 100 * 1024 ** 2);
    assert.equal(r.storedBytes, 1000);
    assert.equal(r.entries, 10);
    // 0.3·126/1000 + 0.2·1000/10000 + 0.2·100MiB/1GiB + 0.2·0.25 + 0.1·31050/1e6
    const expected = 0.3 * 0.126 + 0.2 * 0.1 + 0.2 * (100 / 1024) + 0.2 * 0.25 + 0.1 * 0.03105;
    assert.ok(Math.abs(r.score - expected) < 1e-12, `score ${r.score} vs ${expected}`);
    assert.equal(JSON.parse(JSON.stringify(r)).partitionQps['3'], 100, 'survives JSON');
  });

  it('forgets traffic after one window', () => {
    const s = setup();
    s.monitor.start();
    for (let i = 0; i < 500; i++) s.monitor.record('get', 'g', 'k', 1, 0, 0);
    s.advance(1000);
    assert.equal(s.monitor.report().qps.total, 500);
    for (let sec = 0; sec < 10; sec++) s.advance(1000);
    const r = s.monitor.report();
    assert.equal(r.qps.total, 0);
    assert.deepEqual(r.partitionQps, {});
  });

  it('finds hot keys through the sampled sketch and scales counts back to requests per window', () => {
    const s = setup({ hotKeys: 2 });
    s.monitor.start();
    for (let sec = 0; sec < 30; sec++) {
      for (let i = 0; i < 4000; i++) {
        s.monitor.record('get', 'users', 'hot', 0, 0, 0); // 4000/s
        s.monitor.record('get', 'users', `cold${i}`, 1, 0, 0);
        if (i % 4 === 0) s.monitor.record('get', 'other', 'warm', 2, 0, 0); // 1000/s
      }
      s.advance(1000);
    }
    const hot = s.monitor.report().hotKeys;
    assert.equal(hot.length, 2);
    assert.equal(hot[0]!.group, 'users');
    assert.equal(hot[0]!.key, 'hot');
    assert.equal(hot[1]!.key, 'warm');
    assert.equal(hot[1]!.group, 'other');
    // 4000/s over a 10 s window = 40000 requests; sampling 1 in 8 leaves a few % of noise
    assert.ok(Math.abs(hot[0]!.count - 40_000) / 40_000 < 0.1, `hot count ${hot[0]!.count}`);
    assert.ok(Math.abs(hot[0]!.qps - 4000) / 4000 < 0.1, `hot qps ${hot[0]!.qps}`);
  });

  it('counts the same key in two groups apart, each under its own group', () => {
    const s = setup({ hotKeys: 2 });
    s.monitor.start();
    for (let sec = 0; sec < 30; sec++) {
      for (let i = 0; i < 4000; i++) {
        s.monitor.record('get', 'a', 'k', 0, 0, 0); // 4000/s
        if (i % 2 === 0) s.monitor.record('get', 'b', 'k', 0, 0, 0); // 2000/s
        s.monitor.record('get', 'a', `cold${i}`, 1, 0, 0);
      }
      s.advance(1000);
    }
    const hot = s.monitor.report().hotKeys.map((h) => ({ group: h.group, key: h.key, rate: Math.round(h.qps / 1000) }));
    assert.deepEqual(hot, [
      { group: 'a', key: 'k', rate: 4 },
      { group: 'b', key: 'k', rate: 2 },
    ]);
  });

  it('hot keys cool down: once the traffic stops, the list is empty within a window', () => {
    const s = setup({ hotKeys: 4 });
    s.monitor.start();
    for (let sec = 0; sec < 10; sec++) {
      for (let i = 0; i < 4000; i++) s.monitor.record('get', 'users', 'hot', 0, 0, 0);
      s.advance(1000);
    }
    assert.equal(s.monitor.report().hotKeys[0]?.key, 'hot');
    // no traffic: the decayed count shrinks but never reaches 0; the key must still go
    let emptyAfter = -1;
    for (let sec = 1; sec <= 30 && emptyAfter < 0; sec++) {
      s.advance(1000);
      if (s.monitor.report().hotKeys.length === 0) emptyAfter = sec;
    }
    assert.ok(emptyAfter > 0 && emptyAfter <= 10, `empty ${emptyAfter} s after the traffic stopped (window 10 s)`);
    // and it comes back with the traffic
    for (let i = 0; i < 4000; i++) s.monitor.record('get', 'users', 'hot', 0, 0, 0);
    s.advance(1000);
    assert.equal(s.monitor.report().hotKeys[0]?.key, 'hot');
  });

  it('hotKeys 0 turns the sketch off', () => {
    const s = setup({ hotKeys: 0 });
    for (let i = 0; i < 100; i++) s.monitor.record('get', 'g', 'k', 0, 0, 0);
    assert.deepEqual(s.monitor.tick().hotKeys, []);
  });

  it('start/stop are idempotent, publish every tick, and a throwing listener does not stop it', () => {
    const s = setup();
    const seen: number[] = [];
    s.monitor.onReport(() => {
      throw new Error('listener bug');
    });
    const off = s.monitor.onReport((r) => seen.push(r.at));
    s.monitor.start();
    s.monitor.start();
    assert.equal(s.state.started, 1);
    s.advance(1000);
    s.advance(1000);
    off();
    s.advance(1000);
    assert.deepEqual(seen, [1_001_000, 1_002_000]);
    s.monitor.stop();
    s.monitor.stop();
    assert.equal(s.state.stopped, 1);
    assert.equal(s.running, false);
    assert.equal(s.monitor.report().at, 1_003_000, 'the last report stays readable');
  });

  it('validates options', () => {
    assert.throws(() => new LoadMonitor({ id: '' }), isLoadWindowError);
    assert.throws(() => new LoadMonitor({ id: 'a', sampleEvery: 6 }), (e) => isLoadWindowError(e) && /power of two.*6/.test(e.message));
    assert.throws(() => new LoadMonitor({ id: 'a', intervalMs: 0 }), isLoadWindowError);
  });

  it('the real process probe reads plausible values', async () => {
    const p = processProbe();
    p.start();
    const cpu0 = p.cpuMicros();
    const until = performance.now() + 30;
    while (performance.now() < until); // busy 30 ms
    await new Promise((r) => setTimeout(r, 30));
    assert.ok(p.rssBytes() > 1024 * 1024);
    assert.ok(p.cpuMicros() > cpu0);
    const elu = p.elu();
    assert.ok(elu > 0 && elu <= 1, `elu ${elu}`);
    assert.ok(p.lagMs() >= 0);
    p.stop();
  });
});
