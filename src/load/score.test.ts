import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../config/index.ts';
import { capacityFromConfig, DEFAULT_SCORE_WEIGHTS, detectImbalance, loadScore, maxDeviation, type LoadCapacity, type LoadSample } from './score.ts';

const cap: LoadCapacity = { qps: 10_000, storageBytes: 1000, memoryBytes: 2000, networkBytesPerSec: 100 };
const idle: LoadSample = { qps: 0, storedBytes: 0, rssBytes: 0, cpu: 0, bytesInPerSec: 0, bytesOutPerSec: 0 };

describe('loadScore', () => {
  it('is 0 when idle and 1 when every resource is at capacity', () => {
    assert.equal(loadScore(idle, cap), 0);
    const full = loadScore({ qps: 10_000, storedBytes: 1000, rssBytes: 2000, cpu: 1, bytesInPerSec: 60, bytesOutPerSec: 40 }, cap);
    assert.ok(Math.abs(full - 1) < 1e-12, `full load scores ${full}`);
  });

  it('applies the default weights 0.3 qps, 0.2 storage, 0.2 memory, 0.2 cpu, 0.1 network', () => {
    const close = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
    close(loadScore({ ...idle, qps: 5000 }, cap), 0.15);
    close(loadScore({ ...idle, storedBytes: 500 }, cap), 0.1);
    close(loadScore({ ...idle, rssBytes: 1000 }, cap), 0.1);
    close(loadScore({ ...idle, cpu: 0.5 }, cap), 0.1);
    close(loadScore({ ...idle, bytesInPerSec: 25, bytesOutPerSec: 25 }, cap), 0.05);
    close(loadScore({ ...idle, cpu: 0.5 }, { ...cap, cpuCores: 2 }), 0.05);
  });

  it('clamps each term, so one saturated resource cannot exceed its weight', () => {
    assert.equal(loadScore({ ...idle, qps: 1e9 }, cap), DEFAULT_SCORE_WEIGHTS.qps);
    assert.equal(loadScore({ ...idle, cpu: 3 }, cap), DEFAULT_SCORE_WEIGHTS.cpu);
  });

  it('normalises custom weights and ignores zero capacities and bad readings', () => {
    const w = { qps: 1, storage: 1, memory: 0, cpu: 0, network: 0 };
    assert.equal(loadScore({ ...idle, qps: 10_000 }, cap, w), 0.5);
    assert.equal(loadScore({ ...idle, storedBytes: 5 }, { ...cap, storageBytes: 0 }, w), 0);
    assert.equal(loadScore({ ...idle, qps: Number.NaN }, cap, w), 0);
    assert.equal(loadScore({ ...idle, qps: 10 }, cap, { qps: 0, storage: 0, memory: 0, cpu: 0, network: 0 }), 0);
  });

  it('reads its capacity from the parsed config', () => {
    const c = parseConfig({ load: { capacity: { qps: 5000 } } });
    const capacity = capacityFromConfig(c.load);
    assert.equal(capacity.qps, 5000);
    assert.equal(capacity.memoryBytes, 1024 ** 3);
    assert.equal(capacity.networkBytesPerSec, 100 * 1024 ** 2);
    assert.ok(capacity.storageBytes > 0);
  });
});

describe('detectImbalance', () => {
  const reports = (scores: number[]) => scores.map((score, i) => ({ id: `n${i}`, score }));

  it('returns the nodes more than threshold away from the mean, both ways', () => {
    // mean 0.5: band [0.4, 0.6]
    const r = reports([0.5, 0.61, 0.39, 0.6, 0.4, 0.5]);
    assert.deepEqual(
      detectImbalance(r, 0.2).map((x) => x.id),
      ['n1', 'n2'],
    );
    assert.equal(detectImbalance(r, 0.2)[0], r[1], 'returns the input objects');
  });

  it('is empty for a balanced, idle, or single-node cluster', () => {
    assert.deepEqual(detectImbalance(reports([0.3, 0.31, 0.29]), 0.2), []);
    assert.deepEqual(detectImbalance(reports([0, 0, 0]), 0.2), []);
    assert.deepEqual(detectImbalance(reports([0.9]), 0.2), []);
  });

  it('maxDeviation is the worst relative distance from the mean', () => {
    assert.equal(maxDeviation(reports([1, 1, 1, 5])), 1.5);
    assert.equal(maxDeviation(reports([])), 0);
  });
});
