import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseYaml } from './load.ts';
import { defaultConfig, parseConfig, resolveAdvertise, resolveGroup, resolveNodeId, resolveApiAddress, resolveRespAddress } from './schema.ts';
import { parsePeer } from './fields.ts';
import { configErrorOf } from './testing.ts';

// The seed layout of SPEC §5, verbatim.
const SPEC_EXAMPLE = `
server:  { port: 8001, api_port: 9999 }
etcd:    { endpoints: ["127.0.0.1:2379"], dial_timeout: 5s, lease_ttl: 30s }
cache:   { group_name: scores, cache_bytes: 64MiB, lru_replicas: 150 }
replication: { factor: 2, sync: true }
fault_tolerance: { heartbeat_interval: 5s, request_timeout: 3s, max_retries: 3, circuit_threshold: 0.5 }
load: { window: 10s, hot_key_top_k: 16, score_weights: { qps: 0.3, storage: 0.2, memory: 0.2, cpu: 0.2, network: 0.1 } }
rebalance: { interval: 30s, threshold: 0.2, strategy: minimal-disturbance, min_interval: 5m }
migration: { batch_size: 100, migration_timeout: 30s, concurrency: 2 }
`;

describe('defaults', () => {
  it('equal the values SPEC §5 lists', () => {
    const c = defaultConfig();
    assert.equal(c.server.port, 8001);
    assert.equal(c.server.api_port, undefined);
    assert.deepEqual(c.etcd.endpoints, ['127.0.0.1:2379']);
    assert.equal(c.etcd.dial_timeout, 5_000);
    assert.equal(c.etcd.lease_ttl, 30_000);
    assert.equal(c.cache.group_name, 'scores');
    assert.equal(c.cache.cache_bytes, 64 * 2 ** 20);
    assert.equal(c.cache.lru_replicas, 150);
    assert.deepEqual(c.replication, { factor: 2, sync: true });
    assert.deepEqual(c.fault_tolerance, { heartbeat_interval: 5_000, request_timeout: 3_000, max_retries: 3, circuit_threshold: 0.5, slow_threshold: 500 });
    assert.equal(c.load.window, 10_000);
    assert.equal(c.load.hot_key_top_k, 16);
    assert.deepEqual(c.load.score_weights, { qps: 0.3, storage: 0.2, memory: 0.2, cpu: 0.2, network: 0.1 });
    assert.deepEqual(c.rebalance, { interval: 30_000, threshold: 0.2, strategy: 'minimal-disturbance', min_interval: 300_000, enabled: true });
    // the one deliberate difference (docs/SPEC-CONFORMANCE.md): SPEC §5 says 100, a round trip
    // per 100 entries; batch_bytes (1 MiB) bounds a batch instead
    assert.equal(c.migration.batch_size, 10_000);
    assert.equal(c.migration.migration_timeout, 30_000);
    assert.equal(c.migration.concurrency, 2);
  });

  it('fill in the rest as documented', () => {
    const c = defaultConfig();
    assert.deepEqual(c.node, {});
    assert.deepEqual(c.server, { host: '127.0.0.1', port: 8001 });
    assert.deepEqual(c.cluster, { partitions: 4096, peers: [], tls: {} });
    assert.equal(c.etcd.prefix, '/jincache');
    assert.deepEqual(c.auth, { users: [], public_metrics: false });
    assert.deepEqual(c.tls, { client_auth: false });
    assert.deepEqual(c.limits, { max_clients: 10_000, max_input_buffer_bytes: 256 * 2 ** 20, client_output_buffer_bytes: 64 * 2 ** 20, idle_timeout: 0 });
    assert.deepEqual(c.cache, { group_name: 'scores', cache_bytes: 64 * 2 ** 20, lru_replicas: 150, max_key_bytes: 65536, max_value_bytes: 16 * 2 ** 20, hot_cache_fraction: 0.125 });
    assert.deepEqual(c.groups, [{ name: 'scores', cache_bytes: 64 * 2 ** 20 }]);
    assert.deepEqual(c.load.capacity, { qps: 20_000, storage_bytes: 64 * 2 ** 20, memory_bytes: 2 ** 30, network_bytes_per_sec: 100 * 2 ** 20 });
    assert.deepEqual(c.migration, { batch_size: 10_000, batch_bytes: 2 ** 20, migration_timeout: 30_000, concurrency: 2, drain_timeout: 30_000 });
    assert.deepEqual(c.storage, { engine: 'memory', path: './data/{id}' });
    assert.deepEqual(c.log, { level: 'info' });
    assert.deepEqual(c.resp, { redirects: 'auto' });
  });

  it('is a fresh object each call', () => {
    const a = defaultConfig();
    a.server.port = 1;
    assert.equal(defaultConfig().server.port, 8001);
  });

  it('the SPEC §5 example file parses to the defaults plus its api_port and SPEC\'s batch_size', () => {
    const c = parseConfig(parseYaml(SPEC_EXAMPLE));
    const expected = defaultConfig();
    expected.server.api_port = 9999;
    expected.migration.batch_size = 100;
    assert.deepEqual(c, expected);
  });
});

describe('values', () => {
  it('converts durations and sizes, and accepts plain numbers as ms and bytes', () => {
    const c = parseConfig({
      etcd: { dial_timeout: 1500, lease_ttl: '2m' },
      cache: { cache_bytes: 1000, max_value_bytes: '512KiB' },
      migration: { bandwidth: '10MB', drain_timeout: '1h' },
    });
    assert.equal(c.etcd.dial_timeout, 1500);
    assert.equal(c.etcd.lease_ttl, 120_000);
    assert.equal(c.cache.cache_bytes, 1000);
    assert.equal(c.cache.max_value_bytes, 512 * 1024);
    assert.equal(c.migration.bandwidth, 10_000_000);
    assert.equal(c.migration.drain_timeout, 3_600_000);
  });

  it('accepts the string forms CLI flags arrive in', () => {
    const c = parseConfig({ server: { port: '8002' }, replication: { sync: 'false' }, cluster: { peers: 'http://127.0.0.1:8002, n3=http://127.0.0.1:8003' }, etcd: { endpoints: 'a:2379,b:2379' } });
    assert.equal(c.server.port, 8002);
    assert.equal(c.replication.sync, false);
    assert.deepEqual(c.cluster.peers, ['http://127.0.0.1:8002', 'n3=http://127.0.0.1:8003']);
    assert.deepEqual(c.etcd.endpoints, ['a:2379', 'b:2379']);
  });

  it('treats an empty YAML value as "use the default"', () => {
    const c = parseConfig(parseYaml('cluster:\n  secret:\nserver:\n'));
    assert.equal(c.cluster.secret, undefined);
    assert.equal(c.server.port, 8001);
  });

  it('adds the default group when it is not listed, and fills each group\'s bytes', () => {
    const c = parseConfig({ cache: { cache_bytes: '1MiB' }, groups: [{ name: 'users', cache_bytes: '2MiB' }, { name: 'misc' }] });
    assert.deepEqual(
      c.groups.map((g) => [g.name, g.cache_bytes]),
      [['scores', 2 ** 20], ['users', 2 * 2 ** 20], ['misc', 2 ** 20]],
    );
    assert.equal(c.load.capacity.storage_bytes, 4 * 2 ** 20);
  });

  it('keeps a listed default group with its own settings', () => {
    const c = parseConfig({ groups: [{ name: 'scores', cache_bytes: '8MiB', loader: { url: 'http://127.0.0.1:9000/s/{key}' } }] });
    assert.equal(c.groups.length, 1);
    assert.deepEqual(c.groups[0], { name: 'scores', cache_bytes: 8 * 2 ** 20, loader: { url: 'http://127.0.0.1:9000/s/{key}', timeout: 3000 } });
  });

  it('normalises score weights to sum to 1', () => {
    const w = parseConfig({ load: { score_weights: { qps: 1, storage: 1, memory: 1, cpu: 1, network: 0 } } }).load.score_weights;
    assert.deepEqual(w, { qps: 0.25, storage: 0.25, memory: 0.25, cpu: 0.25, network: 0 });
  });

  it('keeps an explicit storage capacity', () => {
    assert.equal(parseConfig({ load: { capacity: { storage_bytes: '1GiB' } } }).load.capacity.storage_bytes, 2 ** 30);
  });
});

describe('invalid values', () => {
  // [raw config, expected path, expected message]: each kind of leaf, each message on one line.
  const cases: Array<[unknown, string, string]> = [
    [{ fault_tolerance: { request_timeout: 'fast' } }, 'fault_tolerance.request_timeout', 'config: fault_tolerance.request_timeout = "fast" is invalid: expected a duration like 500ms, 5s or 2m'],
    [{ fault_tolerance: { request_timeout: '0s' } }, 'fault_tolerance.request_timeout', 'config: fault_tolerance.request_timeout = "0s" is invalid: expected a duration like 500ms, 5s or 2m, greater than 0'],
    [{ etcd: { lease_ttl: '500ms' } }, 'etcd.lease_ttl', 'config: etcd.lease_ttl = "500ms" is invalid: expected a duration like 500ms, 5s or 2m, at least 1s'],
    [{ etcd: { lease_ttl: '1.5s' } }, 'etcd.lease_ttl', 'config: etcd.lease_ttl = "1.5s" is invalid: expected a whole number of seconds like 30s (at least 1s)'],
    [{ cache: { cache_bytes: '64 megs' } }, 'cache.cache_bytes', 'config: cache.cache_bytes = "64 megs" is invalid: expected a size like 512KiB, 64MiB or 1GiB'],
    [{ cache: { cache_bytes: 0 } }, 'cache.cache_bytes', 'config: cache.cache_bytes = 0 is invalid: expected a size like 512KiB, 64MiB or 1GiB, at least 1B'],
    [{ server: { port: 70000 } }, 'server.port', 'config: server.port = 70000 is invalid: expected an integer from 0 to 65535'],
    [{ server: { port: 'http' } }, 'server.port', 'config: server.port = "http" is invalid: expected an integer from 0 to 65535'],
    [{ replication: { factor: 2.5 } }, 'replication.factor', 'config: replication.factor = 2.5 is invalid: expected an integer from 1 to 5'],
    [{ replication: { sync: 'yes' } }, 'replication.sync', 'config: replication.sync = "yes" is invalid: expected true or false'],
    [{ fault_tolerance: { circuit_threshold: 0 } }, 'fault_tolerance.circuit_threshold', 'config: fault_tolerance.circuit_threshold = 0 is invalid: expected a number greater than 0 and at most 1'],
    [{ cache: { hot_cache_fraction: 1 } }, 'cache.hot_cache_fraction', 'config: cache.hot_cache_fraction = 1 is invalid: expected a number at least 0 and below 1'],
    [{ load: { score_weights: { qps: 2 } } }, 'load.score_weights.qps', 'config: load.score_weights.qps = 2 is invalid: expected a number from 0 to 1'],
    [{ rebalance: { strategy: 'random' } }, 'rebalance.strategy', 'config: rebalance.strategy = "random" is invalid: expected one of minimal-disturbance, load-optimal, weight-adjustment'],
    [{ log: { level: 'verbose' } }, 'log.level', 'config: log.level = "verbose" is invalid: expected one of trace, debug, info, warn, error, silent'],
    [{ storage: { engine: 'redis' } }, 'storage.engine', 'config: storage.engine = "redis" is invalid: expected one of memory, leveldb'],
    [{ resp: { redirects: 'sometimes' } }, 'resp.redirects', 'config: resp.redirects = "sometimes" is invalid: expected one of auto, always, never'],
    [{ cluster: { partitions: 0 } }, 'cluster.partitions', 'config: cluster.partitions = 0 is invalid: expected a divisor of 16384 (partitions are equal ranges of the 16384 hash slots): one of 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384'],
    [{ cluster: { partitions: 1000 } }, 'cluster.partitions', 'config: cluster.partitions = 1000 is invalid: expected a divisor of 16384 (partitions are equal ranges of the 16384 hash slots): one of 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384'],
    [{ cluster: { peers: ['127.0.0.1:8002'] } }, 'cluster.peers', 'config: cluster.peers = ["127.0.0.1:8002"] is invalid: expected a list of peer URLs like http://127.0.0.1:8002 or node-2=http://127.0.0.1:8002 (optionally ?zone=z)'],
    [{ etcd: { endpoints: [] } }, 'etcd.endpoints', 'config: etcd.endpoints = [] is invalid: expected a list of etcd endpoints like 127.0.0.1:2379 (at least one)'],
    [{ etcd: { prefix: 'jincache/' } }, 'etcd.prefix', 'config: etcd.prefix = "jincache/" is invalid: expected a key prefix starting with "/" and not ending with "/", like /jincache'],
    [{ node: { id: 'node 1' } }, 'node.id', 'config: node.id = "node 1" is invalid: expected 1-64 characters from A-Z a-z 0-9 _ . -'],
    [{ server: { advertise: 'node1:8001' } }, 'server.advertise', 'config: server.advertise = "node1:8001" is invalid: expected an http(s) base URL like http://10.0.0.5:8001'],
    [{ server: 5 }, 'server', 'config: server = 5 is invalid: expected a mapping of keys'],
    [{ groups: { name: 'x' } }, 'groups', 'config: groups = {"name":"x"} is invalid: expected a list'],
    [{ groups: [{ cache_bytes: 1 }] }, 'groups[0].name', 'config: groups[0].name = undefined is invalid: required, expected 1-64 characters from A-Z a-z 0-9 _ . -'],
    [{ groups: [{ name: 'a' }, { name: 'a' }] }, 'groups[1].name', 'config: groups[1].name = "a" is invalid: expected a group name not listed before'],
    [{ groups: [{ name: 'a', loader: { url: 'http://o/a' } }] }, 'groups[0].loader.url', 'config: groups[0].loader.url = "http://o/a" is invalid: expected an http(s) URL containing {key}, like http://origin:8080/scores/{key}'],
    [{ load: { score_weights: { qps: 0, storage: 0, memory: 0, cpu: 0, network: 0 } } }, 'load.score_weights', 'config: load.score_weights = {"qps":0,"storage":0,"memory":0,"cpu":0,"network":0} is invalid: expected at least one weight above 0'],
  ];
  for (const [raw, path, message] of cases) {
    it(`${path}: ${JSON.stringify(raw)}`, () => {
      const e = configErrorOf(() => parseConfig(raw));
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.equal(e.path, path);
      assert.equal(e.message, message);
      assert.doesNotMatch(e.message, /\n/);
      assert.equal(e.kind, 'value');
    });
  }

  it('reports the value as written, before conversion', () => {
    const e = configErrorOf(() => parseConfig({ etcd: { lease_ttl: '500ms' } }));
    assert.equal(e.value, '500ms');
    assert.match(e.allowed, /at least 1s/);
  });

  it('reports the first problem and counts the others', () => {
    const e = configErrorOf(() => parseConfig({ server: { port: -1 }, log: { level: 'loud' }, replication: { factor: 0 } }));
    assert.equal(e.problems.length, 3);
    assert.match(e.message, /^config: server\.port = -1 is invalid: .* \(and 2 more problems\)$/);
    assert.deepEqual(e.problems.map((p) => p.path).sort(), ['log.level', 'replication.factor', 'server.port']);
  });
});

describe('unknown keys', () => {
  it('are rejected with the key, its value and a suggestion', () => {
    const e = configErrorOf(() => parseConfig({ fault_tolerance: { request_timout: '5s' } }));
    assert.equal(e.kind, 'unknown_key');
    assert.equal(e.path, 'fault_tolerance.request_timout');
    assert.equal(e.value, '5s');
    assert.equal(
      e.message,
      'config: fault_tolerance.request_timout = "5s" is not a known key: did you mean request_timeout? known keys here are heartbeat_interval, request_timeout, max_retries, circuit_threshold, slow_threshold',
    );
  });

  it('are rejected at the top level, in nested mappings and in list items', () => {
    assert.equal(configErrorOf(() => parseConfig({ sever: { port: 1 } })).path, 'sever');
    assert.match(configErrorOf(() => parseConfig({ sever: {} })).message, /did you mean server\?/);
    assert.equal(configErrorOf(() => parseConfig({ load: { score_weights: { disk: 0.1 } } })).path, 'load.score_weights.disk');
    assert.equal(configErrorOf(() => parseConfig({ groups: [{ name: 'a', size: 1 }] })).path, 'groups[0].size');
    assert.equal(configErrorOf(() => parseConfig({ groups: [{ name: 'a', loader: { url: 'http://o/{key}', retries: 1 } }] })).path, 'groups[0].loader.retries');
  });

  it('catches "__proto__" as a key instead of letting it set the prototype', () => {
    const raw = parseYaml('server:\n  __proto__: { port: 5 }\n');
    const e = configErrorOf(() => parseConfig(raw));
    assert.equal(e.path, 'server.__proto__');
    assert.equal(e.kind, 'unknown_key');
    assert.equal(configErrorOf(() => parseConfig(JSON.parse('{"__proto__": {"server": 1}}'))).path, '__proto__');
  });

  it('gives no suggestion when nothing is close', () => {
    assert.doesNotMatch(configErrorOf(() => parseConfig({ zzzzzzzz: 1 })).message, /did you mean/);
  });
});

describe('helpers', () => {
  it('resolveNodeId and resolveAdvertise derive their defaults', () => {
    const c = parseConfig({ server: { port: 8003 } });
    assert.equal(resolveNodeId(c), 'node-8003');
    assert.equal(resolveAdvertise(c), 'http://127.0.0.1:8003');
    assert.equal(resolveNodeId(parseConfig({ node: { id: 'a' } })), 'a');
    assert.equal(resolveAdvertise(parseConfig({ server: { advertise: 'http://10.0.0.5:8001/' } })), 'http://10.0.0.5:8001');
    assert.equal(resolveAdvertise(parseConfig({ server: { host: '::1', port: 1 } })), 'http://[::1]:1');
  });

  it('resolveRespAddress: the advertised host (else server.host) and resp_port; none without a fixed port', () => {
    assert.equal(resolveRespAddress(parseConfig({})), undefined);
    assert.equal(resolveRespAddress(parseConfig({ server: { resp_port: 0 } })), undefined);
    assert.equal(resolveRespAddress(parseConfig({ server: { resp_port: 6380 } })), '127.0.0.1:6380');
    assert.equal(resolveRespAddress(parseConfig({ server: { host: '::1', resp_port: 6380 } })), '[::1]:6380');
    assert.equal(resolveRespAddress(parseConfig({ server: { advertise: 'http://10.0.0.5:8001', resp_port: 6380 } })), '10.0.0.5:6380');
  });

  it('resolveApiAddress: http or https (tls), the advertised host (else server.host) and api_port; none without an api port', () => {
    assert.equal(resolveApiAddress(parseConfig({})), undefined);
    assert.equal(resolveApiAddress(parseConfig({ server: { api_port: 9999 } })), 'http://127.0.0.1:9999');
    assert.equal(resolveApiAddress(parseConfig({ server: { host: '::1', api_port: 9999 } })), 'http://[::1]:9999');
    assert.equal(resolveApiAddress(parseConfig({ server: { advertise: 'https://10.0.0.5:8001', api_port: 9999 } })), 'http://10.0.0.5:9999');
    const tls = { cert_file: import.meta.filename, key_file: import.meta.filename };
    assert.equal(resolveApiAddress(parseConfig({ server: { api_port: 9999 }, tls })), 'https://127.0.0.1:9999');
  });

  it('resolveGroup applies the fallbacks', () => {
    const c = parseConfig({ groups: [{ name: 'u', ttl_default: '10m', max_retries: 0, loader: { url: 'http://o/{key}', timeout: '1s' } }] });
    assert.deepEqual(resolveGroup(c, 'u'), {
      name: 'u',
      cache_bytes: 64 * 2 ** 20,
      hot_cache_fraction: 0.125,
      ttl_default: 600_000,
      request_timeout: 3000,
      max_retries: 0,
      loader: { url: 'http://o/{key}', timeout: 1000 },
    });
    assert.equal(resolveGroup(c, 'scores')?.loader, undefined);
    assert.equal(resolveGroup(c, 'nope'), undefined);
  });

  it('parsePeer reads both peer forms', () => {
    assert.deepEqual(parsePeer('http://127.0.0.1:8002/'), { url: 'http://127.0.0.1:8002' });
    assert.deepEqual(parsePeer('n2=http://127.0.0.1:8002'), { id: 'n2', url: 'http://127.0.0.1:8002' });
    assert.equal(parsePeer('127.0.0.1:8002'), undefined);
    assert.equal(parsePeer('bad id=http://x:1'), undefined);
    // a peer's zone rides along as the only accepted query
    assert.deepEqual(parsePeer('n2=http://127.0.0.1:8002?zone=eu-1'), { id: 'n2', url: 'http://127.0.0.1:8002', zone: 'eu-1' });
    assert.deepEqual(parsePeer('http://127.0.0.1:8002?zone=b'), { url: 'http://127.0.0.1:8002', zone: 'b' });
    assert.equal(parsePeer('n2=http://127.0.0.1:8002?zone=a b'), undefined);
    assert.equal(parsePeer('n2=http://127.0.0.1:8002?zone=a&x=1'), undefined);
    assert.equal(parsePeer('n2=http://127.0.0.1:8002?weight=2'), undefined);
  });

  it('node.zone must agree with this node\'s entry in cluster.peers', () => {
    const peers = (z1: string) => ({ cluster: { peers: [`n1=http://127.0.0.1:1${z1}`, 'n2=http://127.0.0.1:2?zone=b'] } });
    assert.equal(parseConfig({ node: { id: 'n1', zone: 'a' }, ...peers('?zone=a') }).node.zone, 'a');
    assert.throws(() => parseConfig({ node: { id: 'n1', zone: 'a' }, ...peers('?zone=c') }), /node\.zone = "a" is invalid: expected the zone cluster\.peers gives n1 \(c\)/);
    assert.throws(() => parseConfig({ node: { id: 'n1', zone: 'a' }, ...peers('') }), /write n1=http:\/\/127\.0\.0\.1:1\?zone=a in every node's list/);
    assert.throws(() => parseConfig({ node: { zone: 'a b' } }), /node\.zone = "a b" is invalid/);
  });
});
