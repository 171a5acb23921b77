// The whole jincache configuration file (SPEC §5): one zod schema, every key optional with a
// default, durations and sizes turned into ms and bytes.
//
// Defaults are written in the same form an operator would write them ("5s", "64MiB") and go
// through the same parsing, so what the schema says and what the YAML example says cannot
// drift apart. config/jincache.example.yaml lists every key; a test checks it parses to
// exactly defaultConfig().

import { z } from 'zod';
import { PARTITION_COUNTS } from '../core/placement/hash.ts';
import { ConfigError } from './errors.ts';
import {
  NAME_ALLOWED,
  NAME_PATTERN,
  bool,
  dropNulls,
  duration,
  int,
  intIn,
  isHttpUrl,
  num,
  oneOf,
  parsePeer,
  problemsFromIssues,
  size,
  str,
  stringList,
} from './fields.ts';

/** Strategies the rebalancer knows (SPEC §1 `jincache rebalance --strategy`). */
export const REBALANCE_STRATEGIES = ['minimal-disturbance', 'load-optimal', 'weight-adjustment'] as const;
export type RebalanceStrategy = (typeof REBALANCE_STRATEGIES)[number];

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const STORAGE_ENGINES = ['memory', 'leveldb'] as const;

/**
 * Who gets Redis Cluster redirects (SPEC §6 `resp.redirects`): `auto`, the connections that asked
 * for the slot map (CLUSTER SLOTS/SHARDS/NODES, READONLY, ASKING); `always`, every connection, as
 * Redis Cluster does; `never`, nobody (every key is served by transparent forwarding).
 */
export const REDIRECT_MODES = ['auto', 'always', 'never'] as const;
export type RedirectMode = (typeof REDIRECT_MODES)[number];

/** What a user may do (SPEC §7): every read, every write and delete, the control routes. */
export const PERMISSIONS = ['read', 'write', 'admin'] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** A user of SPEC §7 `auth.users`: the password inline or in a file (exactly one of them). */
export interface UserConfig {
  name: string;
  password?: string;
  password_file?: string;
  permissions: Permission[];
}

/** Certificate files (PEM). */
export interface TlsFiles {
  cert_file?: string;
  key_file?: string;
  ca_file?: string;
}
export type StorageEngine = (typeof STORAGE_ENGINES)[number];

/** One configured group. Unset fields fall back to the `cache` / `fault_tolerance` values; see {@link resolveGroup}. */
export interface GroupConfig {
  /** URL path and etcd-key safe name. */
  name: string;
  /** Byte budget of this group; after validation always set (default `cache.cache_bytes`). */
  cache_bytes?: number;
  /** Share of `cache_bytes` for values fetched from other owners; default `cache.hot_cache_fraction`. */
  hot_cache_fraction?: number;
  /** TTL (ms) given to entries stored without one; unset = entries do not expire. */
  ttl_default?: number;
  /** Peer request timeout (ms) for this group's keys; default `fault_tolerance.request_timeout`. */
  request_timeout?: number;
  /** Retries of a failed peer request for this group; default `fault_tolerance.max_retries`. */
  max_retries?: number;
  /** HTTP origin to load a missing key from; `{key}` is replaced by the URL-encoded key. */
  loader?: { url: string; timeout: number /* 3s */ };
}

export interface Config {
  node: { id?: string; zone?: string }; // id default derived by caller: "node-<port>" (see resolveNodeId); zone: none
  server: {
    host: string; // 127.0.0.1
    port: number; // 8001; node-to-node traffic, and the client API unless api_port is set
    api_port?: number; // client API + dashboard listener of its own
    resp_port?: number; // Redis-protocol listener
    advertise?: string; // base URL peers use; default http://host:port (see resolveAdvertise)
  };
  cluster: {
    partitions: number; // 4096, a divisor of 16384; fixed when the cluster is created
    secret?: string; // required on /_jincache/ requests when set
    peers: string[]; // static discovery: "id=http://host:port" or "http://host:port"
    tls: TlsFiles; // mutual TLS between nodes: all three files, or none
  };
  etcd: {
    enabled: boolean; // false: static discovery from cluster.peers; true (or --etcd): membership through etcd
    endpoints: string[]; // ["127.0.0.1:2379"]
    dial_timeout: number; // 5s
    lease_ttl: number; // 30s, whole seconds >= 1s
    prefix: string; // "/jincache"
    tls: TlsFiles; // ca_file to trust etcd's certificate; cert_file + key_file for client certificates
    username?: string;
    password?: string;
  };
  auth: {
    requirepass?: string; // password of the user "default"; unset = no password (loopback only)
    users: UserConfig[];
    public_metrics: boolean; // false: /metrics needs the read permission
  };
  tls: TlsFiles & { client_auth: boolean }; // the client API and the RESP listener; client_auth needs ca_file
  limits: {
    max_clients: number; // 10000 connections over RESP and HTTP
    max_input_buffer_bytes: number; // 256MiB of unparsed input, all clients together
    client_output_buffer_bytes: number; // 64MiB per client; a client that stops reading is disconnected
    idle_timeout: number; // 0 = none (Redis's timeout)
  };
  cache: {
    group_name: string; // "scores": this group always exists
    cache_bytes: number; // 64MiB
    lru_replicas: number; // 150 virtual nodes per node at weight 1.0
    max_key_bytes: number; // 65536 (Redis keys; the HTTP API takes at most 1 KiB)
    max_value_bytes: number; // 16MiB, at most 512MiB
    hot_cache_fraction: number; // 0.125 (groupcache's 1/8)
  };
  /** Always contains `cache.group_name` (first when it was not listed), each with cache_bytes set. */
  groups: GroupConfig[];
  replication: {
    factor: number; // 2, 1..5: owner plus factor-1 backups
    sync: boolean; // true: a PUT returns once the backups hold it
  };
  fault_tolerance: {
    heartbeat_interval: number; // 5s
    request_timeout: number; // 3s
    max_retries: number; // 3
    circuit_threshold: number; // 0.5, 0 < x <= 1: failure ratio that opens a peer's breaker
    slow_threshold: number; // 500ms: latency above which a peer is "slow"
  };
  load: {
    enabled: boolean; // true: the load monitor runs (request counting, reports, hot keys, rebalancing input)
    window: number; // 10s
    hot_key_top_k: number; // 16
    /** Relative weights, normalised here so they always sum to 1. Defaults 0.3, 0.2, 0.2, 0.2, 0.1. */
    score_weights: { qps: number; storage: number; memory: number; cpu: number; network: number };
    capacity: {
      qps: number; // 20000
      storage_bytes: number; // default: the sum of all groups' cache_bytes
      memory_bytes: number; // 1GiB
      network_bytes_per_sec: number; // 100MiB
    };
  };
  rebalance: {
    interval: number; // 30s
    threshold: number; // 0.2: imbalance (fraction of mean load) that triggers a rebalance
    strategy: RebalanceStrategy; // minimal-disturbance
    min_interval: number; // 5m between two rebalances
    enabled: boolean; // true
  };
  migration: {
    batch_size: number; // 10000 entries (SPEC §5 says 100: a round trip per 100 entries held joins to ~40k keys/s; batch_bytes binds first for values over ~100 bytes)
    batch_bytes: number; // 1MiB
    migration_timeout: number; // 30s
    concurrency: number; // 2 batches in flight per receiving node
    bandwidth?: number; // bytes/s cap; unset = none
    drain_timeout: number; // 30s: how long a leaving node waits for its migrations
  };
  storage: {
    engine: StorageEngine; // memory
    path: string; // "./data/{id}"
  };
  resp: {
    redirects: RedirectMode; // auto: MOVED and CROSSSLOT for cluster-aware connections only
  };
  log: { level: LogLevel }; // info
}

// ---- the schema ---------------------------------------------------------------------------

const port = () => int(0, 65535); // 0 = pick a free port (tests)
const name = () => str(NAME_ALLOWED, (s) => NAME_PATTERN.test(s));
const fraction = () => num({ min: 0, max: 1, minExclusive: true });

const groupSchema = z.strictObject({
  name: name(),
  cache_bytes: size().optional(),
  hot_cache_fraction: num({ min: 0, max: 1, maxExclusive: true }).optional(),
  ttl_default: duration({ positive: true }).optional(),
  request_timeout: duration({ positive: true }).optional(),
  max_retries: int(0, 10).optional(),
  loader: z
    .strictObject({
      url: str('expected an http(s) URL containing {key}, like http://origin:8080/scores/{key}', (s) => s.includes('{key}') && isHttpUrl(s.replace(/\{key\}/g, 'k'))),
      timeout: duration({ positive: true }).prefault('3s'),
    })
    .optional(),
});

const weight = () => num({ min: 0, max: 1 });

const file = () => str('expected a file path').optional();
const tlsFiles = () => z.strictObject({ cert_file: file(), key_file: file(), ca_file: file() }).prefault({});

const userSchema = z.strictObject({
  name: name(),
  password: str('expected a non-empty password').optional(),
  password_file: file(),
  permissions: z.array(oneOf(PERMISSIONS)).min(1),
});

const fileSchema = z.strictObject({
  node: z
    .strictObject({
      id: name().optional(),
      zone: name().optional(),
    })
    .prefault({}),
  server: z
    .strictObject({
      host: str('expected a host name or IP address').prefault('127.0.0.1'),
      port: port().prefault(8001),
      api_port: port().optional(),
      resp_port: port().optional(),
      advertise: str('expected an http(s) base URL like http://10.0.0.5:8001', isHttpUrl).optional(),
    })
    .prefault({}),
  cluster: z
    .strictObject({
      partitions: intIn(PARTITION_COUNTS, 'a divisor of 16384 (partitions are equal ranges of the 16384 hash slots)').prefault(4096),
      secret: str('expected a non-empty string').optional(),
      peers: stringList('expected a list of peer URLs like http://127.0.0.1:8002 or node-2=http://127.0.0.1:8002 (optionally ?zone=z)', (s) => parsePeer(s) !== undefined).prefault([]),
      tls: tlsFiles(),
    })
    .prefault({}),
  etcd: z
    .strictObject({
      enabled: bool().prefault(false),
      endpoints: stringList('expected a list of etcd endpoints like 127.0.0.1:2379', (s) => s.length > 0, { nonEmpty: true }).prefault(['127.0.0.1:2379']),
      dial_timeout: duration({ positive: true }).prefault('5s'),
      lease_ttl: duration({ min: 1000, wholeSeconds: true }).prefault('30s'),
      prefix: str('expected a key prefix starting with "/" and not ending with "/", like /jincache', (s) => /^\/.*[^/]$/.test(s)).prefault('/jincache'),
      tls: tlsFiles(),
      username: str('expected a non-empty user name').optional(),
      password: str('expected a non-empty password').optional(),
    })
    .prefault({}),
  auth: z
    .strictObject({
      requirepass: str('expected a non-empty password').optional(),
      users: z.array(userSchema).prefault([]),
      public_metrics: bool().prefault(false),
    })
    .prefault({}),
  tls: z
    .strictObject({ cert_file: file(), key_file: file(), ca_file: file(), client_auth: bool().prefault(false) })
    .prefault({}),
  limits: z
    .strictObject({
      max_clients: int(1, 1_000_000).prefault(10000),
      max_input_buffer_bytes: size({ min: 1024 }).prefault('256MiB'),
      client_output_buffer_bytes: size({ min: 1024 }).prefault('64MiB'),
      idle_timeout: duration().prefault('0s'),
    })
    .prefault({}),
  cache: z
    .strictObject({
      group_name: name().prefault('scores'),
      cache_bytes: size().prefault('64MiB'),
      lru_replicas: int(1, 10000).prefault(150),
      max_key_bytes: int(1, 65536).prefault(65536),
      max_value_bytes: size({ max: 512 * 1024 * 1024 }).prefault('16MiB'),
      hot_cache_fraction: num({ min: 0, max: 1, maxExclusive: true }).prefault(0.125),
    })
    .prefault({}),
  groups: z.array(groupSchema).prefault([]),
  replication: z
    .strictObject({
      factor: int(1, 5).prefault(2),
      sync: bool().prefault(true),
    })
    .prefault({}),
  fault_tolerance: z
    .strictObject({
      heartbeat_interval: duration({ positive: true }).prefault('5s'),
      request_timeout: duration({ positive: true }).prefault('3s'),
      max_retries: int(0, 10).prefault(3),
      circuit_threshold: fraction().prefault(0.5),
      slow_threshold: duration({ positive: true }).prefault('500ms'),
    })
    .prefault({}),
  load: z
    .strictObject({
      enabled: bool().prefault(true),
      window: duration({ min: 1000 }).prefault('10s'),
      hot_key_top_k: int(0, 10000).prefault(16),
      score_weights: z
        .strictObject({
          qps: weight().prefault(0.3),
          storage: weight().prefault(0.2),
          memory: weight().prefault(0.2),
          cpu: weight().prefault(0.2),
          network: weight().prefault(0.1),
        })
        .prefault({}),
      capacity: z
        .strictObject({
          qps: num({ min: 0, max: 1e9, minExclusive: true }).prefault(20000),
          storage_bytes: size().optional(),
          memory_bytes: size().prefault('1GiB'),
          network_bytes_per_sec: size().prefault('100MiB'),
        })
        .prefault({}),
    })
    .prefault({}),
  rebalance: z
    .strictObject({
      interval: duration({ positive: true }).prefault('30s'),
      threshold: fraction().prefault(0.2),
      strategy: oneOf(REBALANCE_STRATEGIES).prefault('minimal-disturbance'),
      min_interval: duration().prefault('5m'),
      enabled: bool().prefault(true),
    })
    .prefault({}),
  migration: z
    .strictObject({
      batch_size: int(1, 100000).prefault(10000),
      batch_bytes: size().prefault('1MiB'),
      migration_timeout: duration({ positive: true }).prefault('30s'),
      concurrency: int(1, 64).prefault(2),
      bandwidth: size().optional(),
      drain_timeout: duration().prefault('30s'),
    })
    .prefault({}),
  storage: z
    .strictObject({
      engine: oneOf(STORAGE_ENGINES).prefault('memory'),
      path: str('expected a directory path; {id} is replaced by the node id').prefault('./data/{id}'),
    })
    .prefault({}),
  resp: z
    .strictObject({
      redirects: oneOf(REDIRECT_MODES).prefault('auto'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: oneOf(LOG_LEVELS).prefault('info'),
    })
    .prefault({}),
});

/**
 * The file schema plus the rules that span keys: group names unique, the default group always
 * present, derived defaults filled in, score weights normalised.
 */
export const configSchema = fileSchema
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.groups.forEach((g, i) => {
      if (seen.has(g.name)) {
        ctx.addIssue({ code: 'custom', path: ['groups', i, 'name'], message: 'expected a group name not listed before', input: g.name });
      }
      seen.add(g.name);
    });
    // static peers: every node derives the table from the same list, so a node's zone must be
    // the one its entry in that list gives (`id=URL?zone=z`)
    const zone = c.node.zone;
    const listed = c.node.id === undefined ? undefined : c.cluster.peers.map(parsePeer).find((p) => p?.id === c.node.id);
    if (zone !== undefined && listed !== undefined && listed.zone !== zone && c.cluster.peers.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['node', 'zone'],
        message: `expected the zone cluster.peers gives ${c.node.id} (${listed.zone === undefined ? `none: write ${c.node.id}=${listed.url}?zone=${zone} in every node's list` : listed.zone})`,
        input: zone,
      });
    }
    const users = new Set<string>();
    c.auth.users.forEach((u, i) => {
      if (users.has(u.name)) ctx.addIssue({ code: 'custom', path: ['auth', 'users', i, 'name'], message: 'expected a user name not listed before', input: u.name });
      users.add(u.name);
      if ((u.password === undefined) === (u.password_file === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['auth', 'users', i, 'password'], message: 'expected exactly one of password and password_file', input: u.password ?? u.password_file });
      }
      if (u.name === 'default' && c.auth.requirepass !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['auth', 'users', i, 'name'], message: 'expected the user "default" either here or as auth.requirepass, not both', input: u.name });
      }
    });
    const pair = (t: { cert_file?: string; key_file?: string }, path: string[]): void => {
      if ((t.cert_file === undefined) !== (t.key_file === undefined)) ctx.addIssue({ code: 'custom', path: [...path, t.cert_file === undefined ? 'cert_file' : 'key_file'], message: 'expected cert_file and key_file together', input: undefined });
    };
    pair(c.tls, ['tls']);
    pair(c.etcd.tls, ['etcd', 'tls']);
    if (c.tls.client_auth && c.tls.ca_file === undefined) ctx.addIssue({ code: 'custom', path: ['tls', 'ca_file'], message: 'expected the CA file that signs client certificates (tls.client_auth is on)', input: undefined });
    const ct = c.cluster.tls;
    const set = [ct.cert_file, ct.key_file, ct.ca_file].filter((f) => f !== undefined).length;
    if (set !== 0 && set !== 3) ctx.addIssue({ code: 'custom', path: ['cluster', 'tls', ct.ca_file === undefined ? 'ca_file' : ct.cert_file === undefined ? 'cert_file' : 'key_file'], message: 'expected cert_file, key_file and ca_file together (mutual TLS)', input: undefined });
    if (set === 3 && c.tls.cert_file !== undefined && c.server.api_port === undefined) {
      ctx.addIssue({ code: 'custom', path: ['server', 'api_port'], message: 'expected an api_port of its own: the client API cannot share the mutual-TLS peer port', input: undefined });
    }
    if (c.limits.max_input_buffer_bytes < c.cache.max_value_bytes + 64 * 1024) {
      ctx.addIssue({ code: 'custom', path: ['limits', 'max_input_buffer_bytes'], message: `expected at least cache.max_value_bytes + 64KiB (${c.cache.max_value_bytes + 64 * 1024} bytes): one value of the largest size must fit`, input: c.limits.max_input_buffer_bytes });
    }
    if ((c.etcd.username === undefined) !== (c.etcd.password === undefined)) ctx.addIssue({ code: 'custom', path: ['etcd', c.etcd.username === undefined ? 'username' : 'password'], message: 'expected etcd.username and etcd.password together', input: undefined });
    const w = c.load.score_weights;
    if (w.qps + w.storage + w.memory + w.cpu + w.network <= 0) {
      ctx.addIssue({ code: 'custom', path: ['load', 'score_weights'], message: 'expected at least one weight above 0', input: w });
    }
  })
  .transform((c): Config => {
    const groups: GroupConfig[] = c.groups.map((g) => ({ ...g, cache_bytes: g.cache_bytes ?? c.cache.cache_bytes }));
    if (!groups.some((g) => g.name === c.cache.group_name)) {
      groups.unshift({ name: c.cache.group_name, cache_bytes: c.cache.cache_bytes });
    }
    const w = c.load.score_weights;
    const sum = w.qps + w.storage + w.memory + w.cpu + w.network;
    // Leave weights that already sum to 1 untouched, so 0.3 stays 0.3 rather than 0.30000000000000004.
    const scale = Math.abs(sum - 1) < 1e-9 ? 1 : sum;
    const storage_bytes = c.load.capacity.storage_bytes ?? groups.reduce((s, g) => s + (g.cache_bytes ?? 0), 0);
    return {
      ...c,
      groups,
      load: {
        ...c.load,
        score_weights: { qps: w.qps / scale, storage: w.storage / scale, memory: w.memory / scale, cpu: w.cpu / scale, network: w.network / scale },
        capacity: { ...c.load.capacity, storage_bytes },
      },
    };
  });

/** The raw shape a file or a set of CLI overrides may have: every key optional, durations and sizes as "5s" / "64MiB" or numbers. */
export type RawConfig = z.input<typeof fileSchema>;

/** Deep partial raw config, as CLI flags give it; `undefined` leaves mean "not given". */
export type DeepPartialRaw = DeepPartial<RawConfig>;
type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> | undefined } : T;

/**
 * Validates a raw configuration (parsed YAML, merged overrides) and returns the typed Config.
 * Throws {@link ConfigError} naming the first bad key (and counting the rest).
 * `source` prefixes the message (default "config"); `file` is named in it when given.
 */
export function parseConfig(raw: unknown, opts: { source?: string; file?: string } = {}): Config {
  const input = dropNulls(raw ?? {});
  const r = configSchema.safeParse(input);
  if (r.success) return r.data;
  const [first, ...others] = problemsFromIssues(r.error.issues, input, fileSchema);
  if (!first) throw new Error('config: validation failed without an issue'); // zod always reports one
  throw new ConfigError({ ...first, others, ...(opts.source !== undefined ? { source: opts.source } : {}), ...(opts.file !== undefined ? { file: opts.file } : {}) });
}

/** Every default, as the file with no keys gives it. */
export function defaultConfig(): Config {
  return parseConfig({});
}

// ---- helpers for consumers ----------------------------------------------------------------

/** The node id: `node.id`, else "node-<server.port>". */
export function resolveNodeId(c: Config): string {
  return c.node.id ?? `node-${c.server.port}`;
}

/** The base URL peers reach this node at: `server.advertise`, else http://host:port. */
export function resolveAdvertise(c: Config): string {
  if (c.server.advertise !== undefined) return c.server.advertise.replace(/\/+$/, '');
  const host = c.server.host.includes(':') && !c.server.host.startsWith('[') ? `[${c.server.host}]` : c.server.host;
  return `${peerListenerTls(c) !== undefined ? 'https' : 'http'}://${host}:${c.server.port}`;
}

/**
 * URL of this node's client API when it has a port of its own (server.api_port), as clients
 * reach it: https with `tls`, the host of `server.advertise` when set, else `server.host`.
 */
export function resolveApiAddress(c: Config): string | undefined {
  if (c.server.api_port === undefined) return undefined;
  const host = c.server.advertise !== undefined ? new URL(c.server.advertise).hostname : c.server.host.includes(':') && !c.server.host.startsWith('[') ? `[${c.server.host}]` : c.server.host;
  return `${c.tls.cert_file !== undefined ? 'https' : 'http'}://${host}:${c.server.api_port}`;
}

/**
 * `host:port` of this node's Redis listener as clients reach it (what CLUSTER SLOTS and MOVED
 * name): the host of `server.advertise` when set, else `server.host`, and `server.resp_port`;
 * undefined without a RESP listener, or with port 0 (a free port picked at start: not known yet).
 */
export function resolveRespAddress(c: Config): string | undefined {
  if (c.server.resp_port === undefined || c.server.resp_port === 0) return undefined;
  const host = c.server.advertise !== undefined ? new URL(c.server.advertise).hostname : c.server.host.includes(':') && !c.server.host.startsWith('[') ? `[${c.server.host}]` : c.server.host;
  return `${host}:${c.server.resp_port}`;
}

/**
 * Which TLS the peer listener (server.port) speaks: mutual TLS with cluster.tls, else the client
 * TLS when the client API shares the port (no api_port), else none.
 */
export function peerListenerTls(c: Config): 'mutual' | 'client' | undefined {
  if (c.cluster.tls.cert_file !== undefined) return 'mutual';
  if (c.tls.cert_file !== undefined && c.server.api_port === undefined) return 'client';
  return undefined;
}

/** A group's settings with every fallback applied. */
export interface ResolvedGroup {
  name: string;
  cache_bytes: number;
  hot_cache_fraction: number;
  /** ms; undefined = entries stored without a TTL do not expire. */
  ttl_default: number | undefined;
  request_timeout: number;
  max_retries: number;
  loader: { url: string; timeout: number } | undefined;
}

/** The effective settings of group `name`, or undefined when it is not configured. */
export function resolveGroup(c: Config, name: string): ResolvedGroup | undefined {
  const g = c.groups.find((x) => x.name === name);
  if (!g) return undefined;
  return {
    name: g.name,
    cache_bytes: g.cache_bytes ?? c.cache.cache_bytes,
    hot_cache_fraction: g.hot_cache_fraction ?? c.cache.hot_cache_fraction,
    ttl_default: g.ttl_default,
    request_timeout: g.request_timeout ?? c.fault_tolerance.request_timeout,
    max_retries: g.max_retries ?? c.fault_tolerance.max_retries,
    loader: g.loader ? { ...g.loader } : undefined,
  };
}
