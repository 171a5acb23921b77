import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics, LATENCY_BUCKETS } from './metrics.ts';
import type { MetricsSnapshot } from './metrics.ts';
import { parsePromText, sampleValue, findSamples } from './promtext.ts';

test('request counters and latency histogram appear with their labels', async () => {
  const m = new Metrics({ defaultMetrics: false });
  m.request('http', 'get', 'scores', 'hit', 0.00004);
  m.request('http', 'get', 'scores', 'hit', 0.0003);
  m.request('http', 'get', 'scores', 'miss', 0.002);
  m.request('http', 'put', 'scores', 'ok', 7); // above the top bucket
  m.request('http', 'get', 'users', 'load', 0.05);
  const p = parsePromText(await m.text());

  assert.equal(p.types.get('jincache_requests_total'), 'counter');
  assert.equal(sampleValue(p, 'jincache_requests_total', { op: 'get', group: 'scores', result: 'hit' }), 2);
  assert.equal(sampleValue(p, 'jincache_requests_total', { op: 'get', group: 'scores', result: 'miss' }), 1);
  assert.equal(sampleValue(p, 'jincache_requests_total', { op: 'put', group: 'scores', result: 'ok' }), 1);
  assert.equal(sampleValue(p, 'jincache_requests_total', { op: 'get', group: 'users', result: 'load' }), 1);
  assert.equal(findSamples(p, 'jincache_requests_total').length, 4);

  assert.equal(p.types.get('jincache_request_duration_seconds'), 'histogram');
  const h = 'jincache_request_duration_seconds';
  assert.equal(sampleValue(p, `${h}_count`, { op: 'get' }), 4);
  assert.equal(sampleValue(p, `${h}_count`, { op: 'put' }), 1);
  assert.ok(Math.abs(sampleValue(p, `${h}_sum`, { op: 'get' }) - 0.05234) < 1e-9);
  // Cumulative buckets: <=50µs holds 1, <=0.5ms holds 2, <=2.5ms holds 3, <=50ms holds all 4.
  assert.equal(sampleValue(p, `${h}_bucket`, { op: 'get', le: '0.00005' }), 1);
  assert.equal(sampleValue(p, `${h}_bucket`, { op: 'get', le: '0.0005' }), 2);
  assert.equal(sampleValue(p, `${h}_bucket`, { op: 'get', le: '0.0025' }), 3);
  assert.equal(sampleValue(p, `${h}_bucket`, { op: 'get', le: '0.05' }), 4);
  assert.equal(sampleValue(p, `${h}_bucket`, { op: 'put', le: '5' }), 0);
  assert.equal(sampleValue(p, `${h}_bucket`, { op: 'put', le: '+Inf' }), 1);
  assert.equal(findSamples(p, `${h}_bucket`, { op: 'get' }).length, LATENCY_BUCKETS.length + 1);
});

test('count() on requestCells() counts what request() counts, and cacheHit() for a GET hit', async () => {
  const a = new Metrics({ defaultMetrics: false });
  const b = new Metrics({ defaultMetrics: false });
  const cells = { resp: b.requestCells('resp', 'get', 'scores', 'hit'), http: b.requestCells('http', 'get', 'scores', 'hit'), users: b.requestCells('resp', 'get', 'users', 'hit'), put: b.requestCells('resp', 'put', 'scores', 'ok') };
  for (const [protocol, op, group, result, s, c] of [
    ['resp', 'get', 'scores', 'hit', 0.00002, cells.resp],
    ['resp', 'get', 'scores', 'hit', 0.004, cells.resp],
    ['http', 'get', 'scores', 'hit', 0.0003, cells.http],
    ['resp', 'get', 'users', 'hit', 0.00001, cells.users],
    ['resp', 'put', 'scores', 'ok', 0.00003, cells.put],
  ] as const) {
    a.request(protocol, op, group, result, s);
    if (result === 'hit') a.cacheHit(group);
    b.count(c, s);
  }
  assert.equal(await b.text(), await a.text());
  const p = parsePromText(await b.text());
  assert.equal(sampleValue(p, 'jincache_cache_hits_total', { group: 'scores' }), 3);
  assert.equal(sampleValue(p, 'jincache_requests_total', { op: 'put', group: 'scores', result: 'ok' }), 1);
});

test('countAgain() counts a request in full with the duration count() last had on its cells', async () => {
  const m = new Metrics({ defaultMetrics: false });
  const c = m.requestCells('resp', 'get', 'scores', 'hit');
  m.countAgain(c); // nothing timed yet: counted as taking no time
  m.count(c, 0.004);
  m.countAgain(c);
  m.countAgain(c);
  const p = parsePromText(await m.text());
  const h = 'jincache_request_duration_seconds';
  assert.equal(sampleValue(p, 'jincache_requests_total', { op: 'get', group: 'scores', result: 'hit' }), 4);
  assert.equal(sampleValue(p, 'jincache_cache_hits_total', { group: 'scores' }), 4);
  assert.equal(sampleValue(p, `${h}_count`, { op: 'get' }), 4, 'the histogram counts every request');
  assert.ok(Math.abs(sampleValue(p, `${h}_sum`, { op: 'get' }) - 0.012) < 1e-12);
  assert.equal(sampleValue(p, `${h}_bucket`, { op: 'get', le: '0.00005' }), 1);
  assert.equal(sampleValue(p, `${h}_bucket`, { op: 'get', le: '0.005' }), 4);
});

test('cache, loader, eviction and peer counters', async () => {
  const m = new Metrics({ defaultMetrics: false });
  m.cacheHit('scores');
  m.cacheHit('scores');
  m.cacheMiss('scores');
  m.cacheLoad('scores', 'ok', 0.01);
  m.cacheLoad('scores', 'error');
  m.evicted('scores', 3);
  m.evicted('scores');
  m.peerRequest('node-2', 'ok', 0.001);
  m.peerRequest('node-2', 'timeout');
  m.peerError('node-2', 'timeout');
  m.peerError('node-3', 'connect');
  const p = parsePromText(await m.text());
  assert.equal(sampleValue(p, 'jincache_cache_hits_total', { group: 'scores' }), 2);
  assert.equal(sampleValue(p, 'jincache_cache_misses_total', { group: 'scores' }), 1);
  assert.equal(sampleValue(p, 'jincache_cache_loads_total', { group: 'scores', result: 'ok' }), 1);
  assert.equal(sampleValue(p, 'jincache_cache_loads_total', { group: 'scores', result: 'error' }), 1);
  assert.equal(sampleValue(p, 'jincache_cache_load_duration_seconds_count', { group: 'scores' }), 1);
  assert.equal(sampleValue(p, 'jincache_evictions_total', { group: 'scores' }), 4);
  assert.equal(sampleValue(p, 'jincache_peer_requests_total', { peer: 'node-2', result: 'ok' }), 1);
  assert.equal(sampleValue(p, 'jincache_peer_requests_total', { peer: 'node-2', result: 'timeout' }), 1);
  assert.equal(sampleValue(p, 'jincache_peer_request_duration_seconds_count', { peer: 'node-2' }), 1);
  assert.equal(sampleValue(p, 'jincache_peer_errors_total', { peer: 'node-2', kind: 'timeout' }), 1);
  assert.equal(sampleValue(p, 'jincache_peer_errors_total', { peer: 'node-3', kind: 'connect' }), 1);
});

test('state gauges come from the provider, called once per scrape', async () => {
  const m = new Metrics({ defaultMetrics: false });
  // No provider yet: the state series are declared but have no samples.
  let p = parsePromText(await m.text());
  assert.equal(p.types.get('jincache_ring_version'), 'gauge');
  assert.equal(findSamples(p, 'jincache_ring_version').length, 0);

  let calls = 0;
  let snapshot: MetricsSnapshot = {
    ringVersion: 7,
    partitionsOwned: 1366,
    partitionsReplica: 1365,
    loadScore: 0.25,
    underReplicatedPartitions: 2,
    groups: [{ name: 'scores', bytes: 4096, entries: 12 }],
    peers: [
      { id: 'node-2', health: 'slow', breaker: 'half-open' },
      { id: 'node-3', health: 'down', breaker: 'open' },
    ],
    migrations: [
      { entriesDone: 10, entriesTotal: 100, bytesDone: 1000, bytesTotal: 10000 },
      { entriesDone: 5, entriesTotal: 50, bytesDone: 500 },
    ],
    hotKeys: [{ group: 'scores', key: 'k"1\\x', count: 42 }],
  };
  m.setProvider(() => {
    calls++;
    return snapshot;
  });
  p = parsePromText(await m.text());
  assert.equal(calls, 1);
  assert.equal(sampleValue(p, 'jincache_ring_version'), 7);
  assert.equal(sampleValue(p, 'jincache_partitions_owned'), 1366);
  assert.equal(sampleValue(p, 'jincache_partitions_replica'), 1365);
  assert.equal(sampleValue(p, 'jincache_load_score'), 0.25);
  assert.equal(sampleValue(p, 'jincache_replication_under_replicated_partitions'), 2);
  assert.equal(sampleValue(p, 'jincache_cache_bytes', { group: 'scores' }), 4096);
  assert.equal(sampleValue(p, 'jincache_cache_entries', { group: 'scores' }), 12);
  assert.equal(sampleValue(p, 'jincache_peer_health', { peer: 'node-2', state: 'slow' }), 1);
  assert.equal(sampleValue(p, 'jincache_peer_health', { peer: 'node-2', state: 'healthy' }), 0);
  assert.equal(sampleValue(p, 'jincache_peer_health', { peer: 'node-3', state: 'down' }), 1);
  assert.equal(findSamples(p, 'jincache_peer_health', { peer: 'node-3' }).length, 4);
  assert.equal(sampleValue(p, 'jincache_breaker_state', { peer: 'node-2' }), 1);
  assert.equal(sampleValue(p, 'jincache_breaker_state', { peer: 'node-3' }), 2);
  assert.equal(sampleValue(p, 'jincache_migrations_running'), 2);
  assert.equal(sampleValue(p, 'jincache_migration_entries_done'), 15);
  assert.equal(sampleValue(p, 'jincache_migration_entries_total'), 150);
  assert.equal(sampleValue(p, 'jincache_migration_bytes_done'), 1500);
  assert.equal(sampleValue(p, 'jincache_hot_keys', { group: 'scores', key: 'k"1\\x' }), 42);

  // State follows the provider: a peer that left disappears.
  snapshot = { ringVersion: 8, peers: [{ id: 'node-2', health: 'healthy' }] };
  p = parsePromText(await m.text());
  assert.equal(calls, 2);
  assert.equal(sampleValue(p, 'jincache_ring_version'), 8);
  assert.equal(findSamples(p, 'jincache_peer_health', { peer: 'node-3' }).length, 0);
  assert.equal(findSamples(p, 'jincache_breaker_state').length, 0);
  assert.equal(findSamples(p, 'jincache_partitions_owned').length, 0);
});

test('two instances do not clash and default metrics are prefixed', async () => {
  const a = new Metrics({ defaultLabels: { node: 'node-1' } });
  const b = new Metrics({ defaultLabels: { node: 'node-2' } });
  a.request('http', 'get', 'scores', 'hit', 0.001);
  a.request('http', 'get', 'scores', 'hit', 0.001);
  b.request('http', 'get', 'scores', 'hit', 0.001);
  const pa = parsePromText(await a.text());
  const pb = parsePromText(await b.text());
  assert.equal(sampleValue(pa, 'jincache_requests_total', { op: 'get', node: 'node-1' }), 2);
  assert.equal(sampleValue(pb, 'jincache_requests_total', { op: 'get', node: 'node-2' }), 1);
  assert.equal(findSamples(pa, 'jincache_requests_total', { node: 'node-2' }).length, 0);
  assert.ok(findSamples(pa, 'jincache_process_cpu_user_seconds_total').length === 1);
  assert.ok(findSamples(pb, 'jincache_nodejs_heap_size_total_bytes').length === 1);
  assert.match(a.contentType, /^text\/plain; version=0\.0\.4/);
});

test('hot path stays cheap: a million requests in well under a second', () => {
  const m = new Metrics({ defaultMetrics: false });
  const n = 1_000_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) m.request('http', 'get', 'scores', i % 10 === 0 ? 'miss' : 'hit', 0.0002);
  const ms = performance.now() - t0;
  // ~30 ns per call on this machine; the bound is loose so a busy CI box does not flake.
  assert.ok(ms < 1000, `1e6 requests took ${ms.toFixed(0)} ms`);
});
