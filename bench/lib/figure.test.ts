import { test } from 'node:test';
import assert from 'node:assert/strict';
import { figure, median, isFigureError } from './figure.ts';

test('ratio target: ours / peer against the bound', () => {
  const f = figure({ name: 'http.get.rps', unit: 'req/s', ours: 9000, peer: 10000, target: { kind: 'ratio>=', value: 0.9 } });
  assert.equal(f.ratio, 0.9);
  assert.equal(f.target, '>= 0.9x');
  assert.equal(f.pass, true);
  const miss = figure({ name: 'http.get.rps', unit: 'req/s', ours: 8999, peer: 10000, target: { kind: 'ratio>=', value: 0.9 } });
  assert.equal(miss.pass, false);
});

test('ratio<= for latencies', () => {
  const f = figure({ name: 'http.get.p99_ms', unit: 'ms', ours: 3, peer: 2, target: { kind: 'ratio<=', value: 1.11 } });
  assert.equal(f.ratio, 1.5);
  assert.equal(f.pass, false);
});

test('value targets judge ours, not the ratio', () => {
  const f = figure({ name: 'placement.detect_us', unit: 'µs', ours: 2.4, target: { kind: 'value<=', value: 2.5 } });
  assert.equal(f.peer, null);
  assert.equal(f.ratio, null);
  assert.equal(f.target, '<= 2.5 µs');
  assert.equal(f.pass, true);
  const g = figure({ name: 'migration.keys_per_s', unit: 'keys/s', ours: 200000, peer: 5000, target: { kind: 'value>=', value: 250000 } });
  assert.equal(g.ratio, 40);
  assert.equal(g.pass, false);
});

test('no target: reported only', () => {
  const f = figure({ name: 'http.cluster3.get.rps', unit: 'req/s', ours: 5, peer: 10 });
  assert.equal(f.target, null);
  assert.equal(f.pass, null);
  assert.equal(f.ratio, 0.5);
});

test('explicit ratio (median of rounds) overrides ours / peer', () => {
  const f = figure({ name: 'http.get.rps', unit: 'req/s', ours: 10, peer: 10, ratio: 0.8, target: { kind: 'ratio>=', value: 0.9 } });
  assert.equal(f.ratio, 0.8);
  assert.equal(f.pass, false);
});

test('a zero peer gives no ratio, and a ratio target then misses', () => {
  const f = figure({ name: 'redis.get.p1.rps', unit: 'req/s', ours: 10, peer: 0, target: { kind: 'ratio>=', value: 1 } });
  assert.equal(f.ratio, null);
  assert.equal(f.pass, false);
});

test('bad input is rejected naming the value', () => {
  assert.throws(() => figure({ name: 'Bad Name', unit: 'x', ours: 1 }), (e) => isFigureError(e) && /Bad Name/.test(e.message));
  assert.throws(() => figure({ name: 'a.b', unit: 'x', ours: Number.NaN }), isFigureError);
  assert.throws(() => figure({ name: 'a.b', unit: 'x', ours: 1, target: { kind: 'ratio>=', value: 1 } }), isFigureError);
});

test('median', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.throws(() => median([]), isFigureError);
});
