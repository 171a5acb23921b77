import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RespClient, startRedisServer, type RedisServer } from '../../../test/helpers/redis-oracle.ts';
import { TEST_FACTS } from '../../../test/helpers/resp-env.ts';
import { globMatch } from '../../core/glob.ts';
import { bytesToHuman, configGet, configSet, infoSections, infoText, memoryValue, type InfoInputs } from './info.ts';
import { REDIS_VERSION, type ListenerStats } from './session.ts';

const STATS: ListenerStats = {
  startedAt: 1_700_000_000_000,
  connectedClients: 3,
  connectionsReceived: 10,
  rejectedConnections: 1,
  commandsProcessed: 1234,
  opsPerSec: 56.4,
  netInputBytes: 999,
  netOutputBytes: 8888,
  errorReplies: 2,
  maxInputBuffer: 26,
  maxOutputBuffer: 0,
};

function inputs(over: Partial<InfoInputs> = {}): InfoInputs {
  return {
    sections: infoSections([]),
    facts: TEST_FACTS,
    stats: STATS,
    now: 1_700_000_090_500,
    runId: 'a'.repeat(40),
    process: {
      pid: 4242,
      memory: { rss: 50 * 1024 * 1024, heapUsed: 8 * 1024 * 1024, external: 2 * 1024 * 1024 },
      peakMemory: 12 * 1024 * 1024,
      cpu: { user: 2_500_000, system: 1_000_001 },
      totalSystemMemory: 24 * 1024 ** 3,
      os: 'Linux 6.1.0 x86_64',
      executable: '/usr/bin/node',
    },
    keyspace: { keys: 42, expires: 7, avgTtl: 12_345.6 },
    jincache: { group: 'scores', node_id: 'node-1' },
    ...over,
  };
}

/** `field:value` pairs of one section of INFO text. */
function fields(text: string, title: string): Record<string, string> {
  const block = text.split('\r\n\r\n').find((b) => b.startsWith(`# ${title}\r\n`));
  assert.ok(block !== undefined, `no # ${title}`);
  return Object.fromEntries(block.trim().split('\r\n').slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
}

describe('INFO', () => {
  it('picks sections as Redis 7 does: none, default, all, everything; several at once; unknown ones add nothing', () => {
    const all = [...infoSections([])];
    assert.deepEqual(all, ['server', 'clients', 'memory', 'persistence', 'stats', 'replication', 'cpu', 'modules', 'errorstats', 'cluster', 'keyspace', 'jincache']);
    for (const word of ['default', 'all', 'everything']) assert.deepEqual([...infoSections(['server', word])], all);
    assert.deepEqual([...infoSections(['keyspace', 'server', 'bogus'])], ['keyspace', 'server']);
    assert.deepEqual([...infoSections(['module_list'])], ['modules']);
    assert.equal(infoText(inputs({ sections: infoSections(['bogus']) })), '');
  });

  it('writes every section in Redis\'s order and format: "# Title", field:value lines, CRLF, one empty line between', () => {
    const text = infoText(inputs());
    assert.deepEqual(
      text.split('\r\n').filter((l) => l.startsWith('# ')),
      ['# Server', '# Clients', '# Memory', '# Persistence', '# Stats', '# Replication', '# CPU', '# Modules', '# Errorstats', '# Cluster', '# Keyspace', '# Jincache'],
    );
    assert.ok(text.endsWith('node_id:node-1\r\n'));
    assert.ok(!text.includes('\r\n\r\n\r\n'));
    // the order of the sections does not follow the arguments'
    assert.equal(infoText(inputs({ sections: infoSections(['keyspace', 'cluster']) })), '# Cluster\r\ncluster_enabled:0\r\n\r\n# Keyspace\r\ndb0:keys=42,expires=7,avg_ttl=12346\r\n');
  });

  it('server, clients, stats and cpu carry the listener\'s and the process\'s numbers', () => {
    const text = infoText(inputs());
    const server = fields(text, 'Server');
    assert.equal(server.redis_version, REDIS_VERSION);
    assert.equal(server.redis_mode, 'standalone');
    assert.equal(server.process_id, '4242');
    assert.equal(server.tcp_port, '6380');
    assert.equal(server.run_id, 'a'.repeat(40));
    assert.equal(server.uptime_in_seconds, '90');
    assert.equal(server.server_time_usec, '1700000090500000');
    assert.deepEqual(fields(text, 'Clients'), {
      connected_clients: '3', cluster_connections: '0', maxclients: '10000', client_recent_max_input_buffer: '26', client_recent_max_output_buffer: '0',
      blocked_clients: '0', tracking_clients: '0', clients_in_timeout_table: '0',
    });
    const stats = fields(text, 'Stats');
    assert.equal(stats.total_connections_received, '10');
    assert.equal(stats.total_commands_processed, '1234');
    assert.equal(stats.instantaneous_ops_per_sec, '56');
    assert.equal(stats.rejected_connections, '1');
    assert.equal(stats.total_error_replies, '2');
    assert.equal(stats.total_net_input_bytes, '999');
    assert.equal(fields(text, 'CPU').used_cpu_user, '2.500000');
    assert.equal(fields(text, 'CPU').used_cpu_sys, '1.000001');
    assert.equal(fields(text, 'Persistence').loading, '0');
    assert.equal(fields(text, 'Replication').role, 'master');
  });

  it('memory: used_memory from the heap and Buffers, Redis\'s human forms, the peak, maxmemory and its policy', () => {
    const mem = fields(infoText(inputs()), 'Memory');
    assert.equal(mem.used_memory, String(10 * 1024 * 1024));
    assert.equal(mem.used_memory_human, '10.00M');
    assert.equal(mem.used_memory_rss_human, '50.00M');
    assert.equal(mem.used_memory_peak, String(12 * 1024 * 1024), 'a peak seen before');
    assert.equal(mem.used_memory_peak_perc, '83.33%');
    assert.equal(mem.maxmemory, String(64 * 1024 * 1024));
    assert.equal(mem.maxmemory_human, '64.00M');
    assert.equal(mem.maxmemory_policy, 'allkeys-lru');
    assert.equal(mem.mem_fragmentation_ratio, '5.00');
    assert.equal(mem.total_system_memory_human, '24.00G');
    const low = fields(infoText(inputs({ process: { ...inputs().process, peakMemory: 0 } })), 'Memory');
    assert.equal(low.used_memory_peak, low.used_memory, 'the peak is at least what is used now');
  });

  it('keyspace: db0 with keys, expires and avg_ttl; left out when empty or not counted in time', () => {
    assert.deepEqual(fields(infoText(inputs()), 'Keyspace'), { db0: 'keys=42,expires=7,avg_ttl=12346' });
    const only = (keyspace: InfoInputs['keyspace']) => infoText(inputs({ sections: infoSections(['keyspace']), keyspace }));
    assert.equal(only({ keys: 0, expires: 0, avgTtl: 0 }), '# Keyspace\r\n');
    assert.equal(only(null), '# Keyspace\r\n');
  });

  it('cluster mode shows in redis_mode and cluster_enabled', () => {
    const text = infoText(inputs({ facts: { ...TEST_FACTS, clusterEnabled: true } }));
    assert.equal(fields(text, 'Server').redis_mode, 'cluster');
    assert.equal(fields(text, 'Cluster').cluster_enabled, '1');
  });

  it('field values cannot break the framing', () => {
    const text = infoText(inputs({ sections: infoSections(['jincache']), jincache: { group: 'g', note: 'a\r\nb:c' } }));
    assert.equal(text, '# Jincache\r\ngroup:g\r\nnote:a  b:c\r\n');
  });

  it('bytesToHuman is Redis\'s', () => {
    assert.deepEqual([0, 1023, 1024, 966696, 12062720, 25276059648, 1024 ** 5].map(bytesToHuman), ['0B', '1023B', '1.00K', '944.04K', '11.50M', '23.54G', '1.00P']);
  });
});

describe('CONFIG', () => {
  it('memoryValue reads Redis\'s memory units', () => {
    assert.deepEqual(['0', '100', '1k', '1kb', '1m', '1MB', '2gb', '1G'].map(memoryValue), [0, 100, 1000, 1024, 1e6, 1024 ** 2, 2 * 1024 ** 3, 1e9]);
    for (const bad of ['', '-1', 'abc', '1tb', '1.5mb', ' 1']) assert.equal(memoryValue(bad), null, bad);
  });

  it('GET takes several names and patterns, each name once', () => {
    assert.deepEqual(configGet(['timeout', 'TIMEOUT', 't*out'], TEST_FACTS), [['timeout', '0'], ['TIMEOUT', '0']]);
    assert.deepEqual(configGet(['nope', 'no*'], TEST_FACTS), [['notify-keyspace-events', '']]);
    assert.deepEqual(configGet(['[cd]atabases', 'cluster-enable?'], TEST_FACTS), [['databases', '1'], ['cluster-enabled', 'no']]);
  });

  it('SET checks every pair before refusing or accepting any', () => {
    assert.equal(configSet(['timeout', '0', 'nope', 'x'], TEST_FACTS), "ERR Unknown option or number of arguments for CONFIG SET - 'nope'");
    assert.equal(configSet(['maxmemory', '1', 'timeout', 'x'], TEST_FACTS), "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - jincache does not change 'maxmemory' over RESP (cache.cache_bytes in the configuration file)");
    assert.equal(configSet(['maxmemory', '64mb', 'timeout', '0', 'replica-read-only', 'YES'], TEST_FACTS), null);
  });
});

describe('CONFIG GET\'s patterns (core/glob.ts) against redis-server\'s KEYS (stringmatchlen)', () => {
  let redis: RedisServer;
  let client: RespClient;
  const KEYS = ['', 'a', 'b', 'ab', 'abc', 'aXc', 'a*c', 'a?c', 'a[c', 'a]c', 'a-c', 'a\\c', 'ba', 'cab', 'A', 'AB', '^', 'x-y', 'hello', 'hallo', 'hxllo'];
  before(async () => {
    redis = await startRedisServer();
    client = await RespClient.connect(redis.port);
    for (const k of KEYS.filter((k) => k !== '')) await client.call('SET', k, '1');
  });
  after(async () => {
    client?.close();
    await redis?.stop();
  });

  it('matches the keys KEYS matches, for random patterns over glob metacharacters', async () => {
    const patterns = fc.sample(fc.array(fc.constantFrom('a', 'b', 'c', 'A', 'X', 'h', 'l', 'o', '*', '?', '[', ']', '^', '-', '\\'), { maxLength: 7 }).map((cs) => cs.join('')), { numRuns: 400, seed: 13 });
    for (const p of ['h?llo', 'h*llo', 'h[ae]llo', 'h[^e]llo', 'h[a-b]llo', 'a[b-a]', 'a\\*c', 'a[\\]]c', 'a[', '[', '*', '**', 'a*', '*c', ...patterns]) {
      const r = await client.call('KEYS', p);
      assert.ok(r.type === 'array');
      const theirs = r.items.map((i) => (i.type === 'bulk' ? i.value.toString('latin1') : '?')).sort();
      const ours = KEYS.filter((k) => k !== '' && globMatch(p, k)).sort();
      assert.deepEqual(ours, theirs, `pattern ${JSON.stringify(p)}`);
    }
  });

  it('nocase folds letters on both sides, in classes and ranges too', () => {
    assert.ok(globMatch('MAX*', 'maxmemory', true));
    assert.ok(globMatch('[M]ax?emory', 'maxmemory', true));
    assert.ok(globMatch('[L-N]axmemory', 'maxmemory', true));
    assert.ok(!globMatch('MAX*', 'maxmemory'));
  });
});
