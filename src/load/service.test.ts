import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../config/index.ts';
import { isRebalanceError } from '../core/rebalance/errors.ts';
import { createTable } from '../core/placement/table.ts';
import type { LoadReport, LoadTimers, ProcessProbe } from './monitor.ts';
import { LoadService } from './service.ts';

function harness(publish?: (r: LoadReport) => Promise<void>) {
  let t = 5_000;
  const clock = { now: () => t };
  const config = parseConfig({ load: { window: '10s', hot_key_top_k: 4 }, rebalance: { threshold: 0.2 } });
  const table = createTable(
    [
      { id: 'a', weight: 1 },
      { id: 'b', weight: 1 },
    ],
    { partitionCount: 16, replicationFactor: 2, clock },
  );
  const warnings: unknown[] = [];
  const probe: ProcessProbe = { start() {}, stop() {}, rssBytes: () => 1, cpuMicros: () => 0, elu: () => 0, lagMs: () => 0 };
  let fn: (() => void) | undefined;
  let period = 0;
  const timers: LoadTimers = {
    setInterval: (f, ms) => ((fn = f), (period = ms), 1),
    clearInterval: () => void (fn = undefined),
  };
  const plugin = new LoadService({
    id: 'a',
    clock,
    logger: { warn: (o: unknown) => warnings.push(o) },
    load: config.load,
    rebalance: () => config.rebalance,
    vnodesPerWeight: 150,
    table: () => table,
    stored: () => ({ bytes: 300, entries: 3 }),
    ...(publish !== undefined ? { publish } : {}),
    monitor: { probe, timers },
  });
  return {
    plugin,
    table,
    warnings,
    get period() {
      return period;
    },
    tick(ms = 1000) {
      t += ms;
      fn?.();
    },
  };
}

describe('LoadService', () => {
  it('records, reports in /cluster and metrics, and ticks every window / 10', async () => {
    const h = harness();
    h.plugin.record('get', 'default', 'k', 1, 0, 0); // before start: ignored
    assert.deepEqual(h.plugin.clusterInfo(), {});
    h.plugin.start();
    assert.equal(h.period, 1000);
    for (let i = 0; i < 50; i++) h.plugin.record('get', 'default', 'k', 3, 5, 10);
    h.tick();
    const info = h.plugin.clusterInfo() as { load: LoadReport; hotKeys: unknown[] };
    assert.equal(info.load.id, 'a');
    assert.equal(info.load.qps.get, 50);
    assert.deepEqual(info.load.partitionQps, { 3: 50 });
    assert.equal(info.load.storedBytes, 300);
    assert.equal(info.load.entries, 3);
    assert.equal(info.hotKeys, info.load.hotKeys);
    assert.equal(h.plugin.metrics().loadScore, info.load.score);
    h.plugin.stop();
  });

  it('publishes every tick, skips while a publish is pending, logs a failure streak once', async () => {
    const calls: number[] = [];
    let release: (() => void) | undefined;
    let fail = false;
    const h = harness(
      (r) =>
        new Promise<void>((resolve, reject) => {
          calls.push(r.at);
          if (fail) reject(new Error('etcd down'));
          else release = resolve;
        }),
    );
    h.plugin.start();
    h.tick();
    h.tick(); // the first is still pending: skipped
    assert.deepEqual(calls, [6_000]);
    release!();
    await new Promise((r) => setImmediate(r));
    fail = true;
    h.tick();
    await new Promise((r) => setImmediate(r));
    h.tick();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(calls, [6_000, 8_000, 9_000]);
    assert.equal(h.warnings.length, 1);
    h.plugin.stop();
    h.tick();
    assert.equal(calls.length, 3, 'no publish after stop');
  });

  it('plans a rebalance with the configured or requested strategy, and rejects unknown ones', async () => {
    const h = harness();
    h.plugin.start();
    const qa: Record<number, number> = {};
    const qb: Record<number, number> = {};
    for (let p = 0; p < 16; p++) (h.table.assignments[p]![0] === 'a' ? qa : qb)[p] = h.table.assignments[p]![0] === 'a' ? 300 : 100;
    const reports = [
      { id: 'a', score: 0.6, partitionQps: qa },
      { id: 'b', score: 0.2, partitionQps: qb },
    ];
    const plan = h.plugin.rebalance({}, reports);
    assert.equal(plan.strategy, 'minimal-disturbance');
    assert.equal(plan.withinThreshold, true);
    assert.ok(plan.moves.length > 0 && plan.moves.every((m) => m.from === 'a' && m.to === 'b'));
    assert.equal(plan.nextTable?.version, 2);
    assert.equal(h.plugin.rebalance({ strategy: 'load-optimal', dryRun: true }, reports).strategy, 'load-optimal');
    assert.ok(h.plugin.rebalance({ strategy: 'weight-adjustment' }, reports).weights !== undefined);
    assert.throws(() => h.plugin.rebalance({ strategy: 'nope' }, reports), (e) => isRebalanceError(e) && e.code === 'UNKNOWN_STRATEGY');
    assert.equal(h.plugin.governor?.threshold, 0.2);
    assert.equal(h.plugin.governor?.minIntervalMs, 300_000);
    h.plugin.stop();
  });
});
