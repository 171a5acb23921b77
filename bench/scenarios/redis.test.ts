import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBenchCsv } from './redis.ts';

test('parses redis 7 --csv output with its header', () => {
  const out = [
    'WARNING: Could not fetch server CONFIG',
    '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"',
    '"SET","142857.14","0.184","0.024","0.183","0.279","0.487","2.159"',
    '"GET","133333.33","0.178","0.008","0.175","0.263","0.327","3.167"',
  ].join('\n');
  assert.deepEqual(parseBenchCsv(out), [
    { test: 'SET', rps: 142857.14, p50Ms: 0.183, p99Ms: 0.487 },
    { test: 'GET', rps: 133333.33, p50Ms: 0.175, p99Ms: 0.327 },
  ]);
});

test('parses redis 6 rows without a header, and ignores progress noise', () => {
  assert.deepEqual(parseBenchCsv('SET: 1000.00\r"SET","90000.00"\n"GET","95000.50"\n'), [
    { test: 'SET', rps: 90000, p50Ms: null, p99Ms: null },
    { test: 'GET', rps: 95000.5, p50Ms: null, p99Ms: null },
  ]);
});

test('no rows on garbage', () => {
  assert.deepEqual(parseBenchCsv('Could not connect to Redis at 127.0.0.1:1: Connection refused\n'), []);
});
