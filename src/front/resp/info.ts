/**
 * What the Redis listener says about itself: the text of INFO and the parameters of CONFIG GET,
 * in Redis 7's names and formats, so monitoring tools and client libraries that read them
 * (redis_exporter, RedisInsight, BullMQ's maxmemory-policy check, ioredis's `loading:0` wait)
 * find what they look for.
 *
 * Pure: every number comes in (the listener's counters, the process's memory and CPU, the
 * cluster's key counts); nothing here reads a clock or a socket.
 */
import { globMatch } from '../../core/glob.ts';
import type { KeyspaceStats, ListenerFacts, ListenerStats } from './session.ts';
import { REDIS_VERSION } from './session.ts';

// ---- INFO ----

/** INFO's sections in Redis's order, lower-case names; `# Jincache` last. */
const SECTIONS = ['server', 'clients', 'memory', 'persistence', 'stats', 'replication', 'cpu', 'modules', 'errorstats', 'cluster', 'keyspace', 'jincache'] as const;
export type InfoSection = (typeof SECTIONS)[number];

/** The titles Redis prints (`# CPU`, not `# Cpu`). */
const TITLES: Record<InfoSection, string> = {
  server: 'Server', clients: 'Clients', memory: 'Memory', persistence: 'Persistence', stats: 'Stats',
  replication: 'Replication', cpu: 'CPU', modules: 'Modules', errorstats: 'Errorstats', cluster: 'Cluster',
  keyspace: 'Keyspace', jincache: 'Jincache',
};

/**
 * The sections INFO prints for its (lower-cased) arguments, as Redis 7.0 picks them: none,
 * `default`, `all` or `everything` give every section here (jincache has no commandstats or
 * latencystats); `module_list` is `modules`; unknown names add nothing (`INFO bogus` is empty).
 */
export function infoSections(args: readonly string[]): Set<InfoSection> {
  if (args.length === 0) return new Set(SECTIONS);
  const out = new Set<InfoSection>();
  for (const a of args) {
    if (a === 'default' || a === 'all' || a === 'everything') return new Set(SECTIONS);
    const name = a === 'module_list' ? 'modules' : a;
    if ((SECTIONS as readonly string[]).includes(name)) out.add(name as InfoSection);
  }
  return out;
}

/** The process's own figures, as Node reports them. */
export interface ProcessFigures {
  readonly pid: number;
  /** process.memoryUsage(). */
  readonly memory: { readonly rss: number; readonly heapUsed: number; readonly external: number };
  /** The most `used_memory` seen so far, bytes. */
  readonly peakMemory: number;
  /** process.cpuUsage(): microseconds. */
  readonly cpu: { readonly user: number; readonly system: number };
  readonly totalSystemMemory: number;
  /** `Linux 6.1.0 x86_64`. */
  readonly os: string;
  readonly executable: string;
}

export interface InfoInputs {
  readonly sections: ReadonlySet<InfoSection>;
  readonly facts: ListenerFacts;
  readonly stats: ListenerStats;
  /** ms since the epoch. */
  readonly now: number;
  /** 40 hex digits, new every start (`run_id`, `master_replid`). */
  readonly runId: string;
  readonly process: ProcessFigures;
  /** Null when it could not be counted in time: db0 is left out, as Redis does for an empty db. */
  readonly keyspace: KeyspaceStats | null;
  /** The `# Jincache` fields (the group first). */
  readonly jincache: Readonly<Record<string, string | number>>;
}

/** The bytes `used_memory` counts: V8's heap in use and the memory of Buffers (values live there). */
export function usedMemory(m: ProcessFigures['memory']): number {
  return m.heapUsed + m.external;
}

/**
 * INFO's text: `# Title` then `field:value` lines, sections apart by an empty line, CRLF
 * line ends, ending with CRLF (genRedisInfoString). Empty when no section is selected.
 */
export function infoText(x: InfoInputs): string {
  const out: string[] = [];
  const section = (name: InfoSection, fields: Record<string, string | number>) => {
    if (!x.sections.has(name)) return;
    if (out.length > 0) out.push('\r\n');
    out.push(`# ${TITLES[name]}\r\n`);
    for (const [k, v] of Object.entries(fields)) out.push(`${k}:${String(v).replace(/[\r\n]/g, ' ')}\r\n`);
  };
  const { facts, stats, process: p } = x;
  const uptimeS = Math.max(0, Math.floor((x.now - stats.startedAt) / 1000));
  const used = usedMemory(p.memory);
  const peak = Math.max(used, p.peakMemory);
  const cluster = facts.clusterEnabled ? 1 : 0;
  section('server', {
    redis_version: REDIS_VERSION,
    redis_git_sha1: '00000000',
    redis_git_dirty: 0,
    redis_build_id: '0',
    redis_mode: facts.clusterEnabled ? 'cluster' : 'standalone',
    os: p.os,
    arch_bits: 64,
    multiplexing_api: 'epoll',
    process_id: p.pid,
    process_supervised: 'no',
    run_id: x.runId,
    tcp_port: facts.port,
    server_time_usec: x.now * 1000,
    uptime_in_seconds: uptimeS,
    uptime_in_days: Math.floor(uptimeS / 86400),
    hz: 10,
    configured_hz: 10,
    executable: p.executable,
    config_file: '',
    io_threads_active: 0,
  });
  section('clients', {
    connected_clients: stats.connectedClients,
    cluster_connections: 0,
    maxclients: facts.maxClients,
    client_recent_max_input_buffer: stats.maxInputBuffer,
    client_recent_max_output_buffer: stats.maxOutputBuffer,
    blocked_clients: 0,
    tracking_clients: 0,
    clients_in_timeout_table: 0,
  });
  section('memory', {
    used_memory: used,
    used_memory_human: bytesToHuman(used),
    used_memory_rss: p.memory.rss,
    used_memory_rss_human: bytesToHuman(p.memory.rss),
    used_memory_peak: peak,
    used_memory_peak_human: bytesToHuman(peak),
    used_memory_peak_perc: `${(peak > 0 ? (100 * used) / peak : 100).toFixed(2)}%`,
    total_system_memory: p.totalSystemMemory,
    total_system_memory_human: bytesToHuman(p.totalSystemMemory),
    maxmemory: facts.maxmemory,
    maxmemory_human: bytesToHuman(facts.maxmemory),
    maxmemory_policy: MAXMEMORY_POLICY,
    mem_fragmentation_ratio: (used > 0 ? p.memory.rss / used : 0).toFixed(2),
    mem_allocator: 'libc',
  });
  section('persistence', {
    loading: 0,
    async_loading: 0,
    rdb_changes_since_last_save: 0,
    rdb_bgsave_in_progress: 0,
    rdb_last_save_time: Math.floor(stats.startedAt / 1000),
    rdb_last_bgsave_status: 'ok',
    aof_enabled: 0,
    aof_rewrite_in_progress: 0,
    aof_rewrite_scheduled: 0,
    aof_last_bgrewrite_status: 'ok',
    aof_last_write_status: 'ok',
  });
  section('stats', {
    total_connections_received: stats.connectionsReceived,
    total_commands_processed: stats.commandsProcessed,
    instantaneous_ops_per_sec: Math.round(stats.opsPerSec),
    total_net_input_bytes: stats.netInputBytes,
    total_net_output_bytes: stats.netOutputBytes,
    rejected_connections: stats.rejectedConnections,
    expired_keys: 0,
    evicted_keys: 0,
    evicted_clients: 0,
    pubsub_channels: 0,
    pubsub_patterns: 0,
    total_error_replies: stats.errorReplies,
  });
  section('replication', {
    role: 'master',
    connected_slaves: 0,
    master_failover_state: 'no-failover',
    master_replid: x.runId,
    master_replid2: '0'.repeat(40),
    master_repl_offset: 0,
    second_repl_offset: -1,
    repl_backlog_active: 0,
  });
  section('cpu', {
    used_cpu_sys: (p.cpu.system / 1e6).toFixed(6),
    used_cpu_user: (p.cpu.user / 1e6).toFixed(6),
    used_cpu_sys_children: '0.000000',
    used_cpu_user_children: '0.000000',
    used_cpu_sys_main_thread: (p.cpu.system / 1e6).toFixed(6),
    used_cpu_user_main_thread: (p.cpu.user / 1e6).toFixed(6),
  });
  section('modules', {});
  section('errorstats', {});
  section('cluster', { cluster_enabled: cluster });
  const ks = x.keyspace;
  section('keyspace', ks !== null && ks.keys > 0 ? { db0: `keys=${ks.keys},expires=${ks.expires},avg_ttl=${Math.round(ks.avgTtl)}` } : {});
  section('jincache', x.jincache);
  return out.join('');
}

/** Redis's bytesToHuman: `512B`, `1.50K`, `12.00M`, `1.25G` (powers of 1024, two decimals). */
export function bytesToHuman(n: number): string {
  const units = ['K', 'M', 'G', 'T', 'P'];
  if (n < 1024) return `${n}B`;
  let d = n / 1024;
  for (const u of units) {
    if (d < 1024 || u === 'P') return `${d.toFixed(2)}${u}`;
    d /= 1024;
  }
  return `${n}B`;
}

// ---- CONFIG ----

/** jincache evicts the least recently used entries of a group over its budget, whatever their TTL. */
const MAXMEMORY_POLICY = 'allkeys-lru';

/** How CONFIG SET reads a value (and which error a bad one gets, in Redis's words). */
type ValueKind =
  | { readonly type: 'memory' }
  | { readonly type: 'integer' }
  | { readonly type: 'bool' }
  | { readonly type: 'enum'; readonly choices: readonly string[] }
  | { readonly type: 'text' };

const MEMORY: ValueKind = { type: 'memory' };
const INTEGER: ValueKind = { type: 'integer' };
const BOOL: ValueKind = { type: 'bool' };
const TEXT: ValueKind = { type: 'text' };
const POLICIES: ValueKind = {
  type: 'enum',
  choices: ['volatile-lru', 'volatile-lfu', 'volatile-random', 'volatile-ttl', 'allkeys-lru', 'allkeys-lfu', 'allkeys-random', 'noeviction'],
};

interface Parameter {
  readonly name: string;
  /** Other names Redis accepts for it (replica/slave). */
  readonly aliases?: readonly string[];
  readonly kind: ValueKind;
  /** Redis refuses CONFIG SET of it whatever the value ("can't set immutable config"). */
  readonly immutable?: boolean;
  value(f: ListenerFacts): string;
  /** Where jincache sets it instead: CONFIG SET's refusal of another value names it. */
  readonly where: string;
}

/**
 * The parameters CONFIG GET answers: those tools and client libraries ask for, with jincache's
 * values. `requirepass` is left out on purpose (Redis shows it; SPEC §7 keeps passwords out of
 * every reply).
 */
const PARAMETERS: readonly Parameter[] = [
  { name: 'maxmemory', kind: MEMORY, value: (f) => String(f.maxmemory), where: 'cache.cache_bytes in the configuration file' },
  { name: 'maxmemory-policy', kind: POLICIES, value: () => MAXMEMORY_POLICY, where: 'jincache always evicts the least recently used keys' },
  { name: 'maxmemory-samples', kind: INTEGER, value: () => '5', where: 'jincache keeps an exact LRU order' },
  { name: 'save', kind: TEXT, value: () => '', where: 'jincache takes no snapshots; storage.engine leveldb persists each write' },
  { name: 'appendonly', kind: BOOL, value: () => 'no', where: 'storage.engine in the configuration file' },
  { name: 'databases', kind: INTEGER, immutable: true, value: () => '1', where: 'jincache has one database' },
  { name: 'timeout', kind: INTEGER, value: (f) => String(Math.floor(f.idleTimeoutMs / 1000)), where: 'limits.idle_timeout in the configuration file' },
  { name: 'maxclients', kind: INTEGER, value: (f) => String(f.maxClients), where: 'limits.max_clients in the configuration file' },
  { name: 'proto-max-bulk-len', kind: MEMORY, value: (f) => String(f.maxValueBytes), where: 'cache.max_value_bytes in the configuration file' },
  { name: 'cluster-enabled', kind: BOOL, immutable: true, value: (f) => (f.clusterEnabled ? 'yes' : 'no'), where: 'it is fixed' },
  { name: 'port', kind: INTEGER, value: (f) => String(f.port), where: 'server.resp_port in the configuration file' },
  { name: 'bind', kind: TEXT, value: (f) => f.host, where: 'server.host in the configuration file' },
  { name: 'tcp-keepalive', kind: INTEGER, value: () => '300', where: 'it is fixed' },
  {
    name: 'client-output-buffer-limit',
    kind: TEXT,
    value: (f) => `normal ${f.outputBufferBytes} 0 0 slave 0 0 0 pubsub 0 0 0`,
    where: 'limits.client_output_buffer_bytes in the configuration file',
  },
  { name: 'notify-keyspace-events', kind: TEXT, value: () => '', where: 'jincache sends no keyspace notifications' },
  { name: 'replica-read-only', aliases: ['slave-read-only'], kind: BOOL, value: () => 'yes', where: 'it is fixed' },
  { name: 'io-threads', kind: INTEGER, immutable: true, value: () => '1', where: 'it is fixed' },
  { name: 'stop-writes-on-bgsave-error', kind: BOOL, value: () => 'no', where: 'jincache takes no snapshots' },
];

const BY_NAME: ReadonlyMap<string, Parameter> = new Map(PARAMETERS.flatMap((p) => [p.name, ...(p.aliases ?? [])].map((n) => [n, p] as const)));

/**
 * CONFIG GET's pairs for `patterns`, as Redis 7.0 answers: a name without `*?[` is looked up
 * exactly (any case; the reply keeps the name as asked), anything else is a case-insensitive
 * glob over every name and alias; each name once, unknown ones left out.
 */
export function configGet(patterns: readonly string[], facts: ListenerFacts): [string, string][] {
  const out = new Map<string, Parameter>();
  for (const pattern of patterns) {
    if (!/[*?[]/.test(pattern)) {
      const p = BY_NAME.get(pattern.toLowerCase());
      if (p !== undefined && !out.has(pattern)) out.set(pattern, p);
      continue;
    }
    for (const [name, p] of BY_NAME) if (!out.has(name) && globMatch(pattern, name, true)) out.set(name, p);
  }
  return [...out].map(([name, p]) => [name, p.value(facts)]);
}

/**
 * CONFIG SET: null when every value is what jincache has already (nothing to change: `save ""`,
 * `appendonly no`, the current maxmemory), else Redis's error text: an unknown or repeated name,
 * an immutable one, a value that does not parse (Redis's words), and, jincache's own, a valid
 * value other than the current one. jincache changes none of these over RESP: its settings live
 * in its configuration file (reloaded live), which the refusal names. Nothing is applied unless
 * all pass, as in Redis. `pairs` are name, value, name, value...
 */
export function configSet(pairs: readonly string[], facts: ListenerFacts): string | null {
  if (pairs.length % 2 !== 0) return 'ERR syntax error';
  const seen = new Set<Parameter>();
  for (let i = 0; i < pairs.length; i += 2) {
    const asked = pairs[i]!;
    const p = BY_NAME.get(asked.toLowerCase());
    if (p === undefined) return `ERR Unknown option or number of arguments for CONFIG SET - '${asked}'`;
    if (seen.has(p)) return `ERR CONFIG SET failed (possibly related to argument '${asked}') - duplicate parameter`;
    seen.add(p);
  }
  for (let i = 0; i < pairs.length; i += 2) {
    const asked = pairs[i]!;
    const p = BY_NAME.get(asked.toLowerCase())!;
    const failed = (why: string) => `ERR CONFIG SET failed (possibly related to argument '${asked}') - ${why}`;
    if (p.immutable) return failed("can't set immutable config");
    const value = pairs[i + 1]!;
    const current = p.value(facts);
    let same: boolean;
    switch (p.kind.type) {
      case 'memory': {
        const bytes = memoryValue(value);
        if (bytes === null) return failed('argument must be a memory value');
        same = bytes === Number(current);
        break;
      }
      case 'integer':
        if (!/^-?[0-9]+$/.test(value)) return failed("argument couldn't be parsed into an integer");
        same = Number(value) === Number(current);
        break;
      case 'bool': {
        const v = value.toLowerCase();
        if (v !== 'yes' && v !== 'no') return failed("argument must be 'yes' or 'no'");
        same = v === current;
        break;
      }
      case 'enum': {
        const v = value.toLowerCase();
        if (!p.kind.choices.includes(v)) return failed(`argument(s) must be one of the following: ${p.kind.choices.join(', ')}`);
        same = v === current;
        break;
      }
      case 'text':
        same = value === current;
        break;
    }
    if (!same) return failed(`jincache does not change '${p.name}' over RESP (${p.where})`);
  }
  return null;
}

/** Redis's memtoull: digits with an optional unit (b k kb m mb g gb, any case); null if not one. */
export function memoryValue(s: string): number | null {
  const m = /^([0-9]+)(b|k|kb|m|mb|g|gb)?$/i.exec(s);
  if (m === null) return null;
  const unit = (m[2] ?? 'b').toLowerCase();
  const mul: Record<string, number> = { b: 1, k: 1000, kb: 1024, m: 1000 ** 2, mb: 1024 ** 2, g: 1000 ** 3, gb: 1024 ** 3 };
  const n = Number(m[1]) * mul[unit]!;
  return Number.isSafeInteger(n) ? n : null;
}
