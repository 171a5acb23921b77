/**
 * Prometheus metrics for one jincache node.
 *
 * Every node owns a PRIVATE prom-client Registry (never the global one), so several nodes can
 * live in one process (tests, the embedded library) without their series clashing.
 *
 * Cost model, because request counting sits on the hot path (benchmarked against a bare
 * node:http server):
 * - Events (requests, hits, peer errors...) land in plain number cells found through nested
 *   Maps keyed by label value: no string building, no allocation after the first time a label set
 *   is seen. prom-client's own `labels(...).inc()` validates and hashes the label object on every
 *   call (~300 ns, measured); a cell increment is ~5 ns. Latency goes into per-label-set bucket
 *   arrays. The cells are turned into prom-client's exposition shape only when scraped.
 * - State (ring version, owned partitions, peer health, migration progress...) is not pushed at
 *   all: the node sets a provider function and it is called once per scrape, so idle state costs
 *   nothing.
 * prom-client still formats the text and supplies the default process metrics.
 */
import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';

/**
 * prom-client, loaded on the first scrape: loaded with the node it was a fifth of an idle
 * node's memory (BENCHMARKS.md "Idle memory"), and a node nobody scrapes never needs it.
 */
let promClient: typeof import('prom-client') | undefined;
function loadPromClient(): typeof import('prom-client') {
  promClient ??= createRequire(import.meta.url)('prom-client') as typeof import('prom-client');
  return promClient;
}

/** The front end a client request came through. */
export type RequestProtocol = 'http' | 'resp';
/** Client-facing operations, HTTP or Redis protocol. 'other' catches the long tail (PING, INFO...). */
/** 'command': a Redis command run at its key's coordinator (INCR, HSET, ...); 'exec': a MULTI/EXEC transaction. */
export type RequestOp = 'get' | 'put' | 'delete' | 'exists' | 'expire' | 'ttl' | 'mget' | 'mset' | 'command' | 'exec' | 'other';
/**
 * How a request ended. For GET: 'hit' (served from memory), 'miss' (absent, no loader),
 * 'load' (filled by the group's loader). For writes: 'ok'. Failures by cause.
 */
export type RequestResult =
  | 'hit'
  | 'miss'
  | 'load'
  | 'ok'
  | 'not_found'
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  /** A Redis Cluster client told to ask another node (MOVED, CROSSSLOT). */
  | 'redirected'
  | 'unavailable'
  | 'timeout'
  | 'error';
/** Outcome of a group loader call. */
export type LoadResult = 'ok' | 'not_found' | 'error' | 'timeout';
/** Outcome of a node-to-node request. 'rejected': not sent because the peer's breaker is open. */
export type PeerResult = 'ok' | 'error' | 'timeout' | 'rejected';
/** Why a node-to-node request failed. */
export type PeerErrorKind = 'timeout' | 'connect' | 'reset' | 'status' | 'unauthorized' | 'breaker_open' | 'other';
/** Health class from the failure detector. */
export type PeerHealth = 'healthy' | 'slow' | 'suspected' | 'down';
export const PEER_HEALTH_STATES: readonly PeerHealth[] = ['healthy', 'slow', 'suspected', 'down'];
/** Circuit breaker state; exported as 0 closed, 1 half-open, 2 open. */
export type BreakerState = 'closed' | 'half-open' | 'open';

/**
 * Point-in-time state of the node, returned by the provider on each scrape. Every field is
 * optional: a missing field simply emits no series, so features can land one at a time.
 */
export interface MetricsSnapshot {
  ringVersion?: number;
  /** Partitions this node is the primary owner of. */
  partitionsOwned?: number;
  /** Partitions this node holds a backup of. */
  partitionsReplica?: number;
  /** This node's load score (0 = idle; see the load module for the scale). */
  loadScore?: number;
  /** The load monitor's latest windowed measurements (rates per second, ratios 0..1). */
  load?: {
    qps: { get: number; put: number; delete: number };
    bytesInPerSec: number;
    bytesOutPerSec: number;
    rssBytes: number;
    cpu: number;
    elu: number;
    lagMs: number;
  };
  /** Partitions (cluster-wide, as this node sees them) with fewer live copies than the replication factor. */
  underReplicatedPartitions?: number;
  groups?: ReadonlyArray<{ name: string; bytes: number; entries: number }>;
  peers?: ReadonlyArray<{ id: string; health?: PeerHealth; breaker?: BreakerState }>;
  /** Migrations this node takes part in that are still running. */
  migrations?: ReadonlyArray<{ entriesDone: number; entriesTotal: number; bytesDone: number; bytesTotal?: number }>;
  /** Client connections open (RESP and HTTP API) and the unparsed input they hold (SPEC §8 limits). */
  clients?: { connections: number; inputBytes: number };
  /** Top-K hot keys in the current window (bounded, so label cardinality stays bounded). */
  hotKeys?: ReadonlyArray<{ group: string; key: string; count: number }>;
}

/** The limits that turn a client away (SPEC §8). */
export type ClientLimit = 'max_clients' | 'input_buffer' | 'output_buffer' | 'idle_timeout';

export type MetricsProvider = () => MetricsSnapshot;

export interface MetricsOptions {
  /** Also export prom-client's default process/Node.js metrics, prefixed `jincache_`. Default true. */
  defaultMetrics?: boolean;
  /** Labels added to every series, e.g. `{ node: 'node-1' }`. Default: none (Prometheus adds `instance`). */
  defaultLabels?: Record<string, string>;
}

/**
 * Latency buckets in seconds: 50 µs (an in-memory hit on loopback) to 5 s (a slow loader or a
 * timed-out peer), roughly 1-2.5-5 per decade.
 */
export const LATENCY_BUCKETS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/** Longest hot key written as a label value; longer keys are cut (keys may be up to 1 KiB). */
const MAX_KEY_LABEL = 120;

// ---------------------------------------------------------------------------------------------
// Cells and families. These implement just enough of prom-client's metric interface (name, help,
// type, get(), reset()) for a Registry to format them.

type Labels = Record<string, string>;
interface ExportValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}
interface ExportMetric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: ExportValue[];
  aggregator: 'sum';
}

interface CounterCell {
  readonly labels: Labels;
  value: number;
}

/** Where requests of one protocol, operation, group and result are counted (Metrics.requestCells). */
export interface RequestCells {
  readonly requests: CounterCell;
  readonly duration: HistogramCell;
  /** jincache_cache_hits_total's cell, for GET hits. */
  readonly hits: CounterCell | undefined;
  /** The bucket and duration count() last observed here (-1: none yet), for countAgain(). */
  lastBucket: number;
  lastSeconds: number;
}

interface HistogramCell {
  readonly labels: Labels;
  /** counts[i] = observations in (bounds[i-1], bounds[i]]; the last slot is above the top bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** A tree of Maps, one level per label, so a lookup by label values never builds a string. */
class CellTree<C> {
  readonly cells: C[] = [];
  readonly #root = new Map<string, unknown>();
  readonly #make: (labels: Labels) => C;
  readonly #labelNames: readonly string[];

  constructor(labelNames: readonly string[], make: (labels: Labels) => C) {
    this.#labelNames = labelNames;
    this.#make = make;
  }

  #create(values: readonly string[]): C {
    const labels: Labels = {};
    this.#labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
    const cell = this.#make(labels);
    this.cells.push(cell);
    return cell;
  }

  get1(a: string): C {
    let c = this.#root.get(a) as C | undefined;
    if (c === undefined) this.#root.set(a, (c = this.#create([a])));
    return c;
  }

  get2(a: string, b: string): C {
    let m = this.#root.get(a) as Map<string, C> | undefined;
    if (m === undefined) this.#root.set(a, (m = new Map()));
    let c = m.get(b);
    if (c === undefined) m.set(b, (c = this.#create([a, b])));
    return c;
  }

  get4(a: string, b: string, c: string, d: string): C {
    let m1 = this.#root.get(a) as Map<string, Map<string, Map<string, C>>> | undefined;
    if (m1 === undefined) this.#root.set(a, (m1 = new Map()));
    let m2 = m1.get(b);
    if (m2 === undefined) m1.set(b, (m2 = new Map()));
    let m3 = m2.get(c);
    if (m3 === undefined) m2.set(c, (m3 = new Map()));
    let cell = m3.get(d);
    if (cell === undefined) m3.set(d, (cell = this.#create([a, b, c, d])));
    return cell;
  }

  get3(a: string, b: string, c: string): C {
    let m1 = this.#root.get(a) as Map<string, Map<string, C>> | undefined;
    if (m1 === undefined) this.#root.set(a, (m1 = new Map()));
    let m2 = m1.get(b);
    if (m2 === undefined) m1.set(b, (m2 = new Map()));
    let cell = m2.get(c);
    if (cell === undefined) m2.set(c, (cell = this.#create([a, b, c])));
    return cell;
  }

  clear(): void {
    this.#root.clear();
    this.cells.length = 0;
  }
}

class CounterFamily {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly tree: CellTree<CounterCell>;

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.tree = new CellTree(labelNames, (labels) => ({ labels, value: 0 }));
  }

  async get(): Promise<ExportMetric> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.tree.cells.map((c) => ({ labels: c.labels, value: c.value })),
    };
  }

  reset(): void {
    this.tree.clear();
  }
}

class HistogramFamily {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly tree: CellTree<HistogramCell>;
  readonly bounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.bounds = bounds;
    this.tree = new CellTree(labelNames, (labels) => ({
      labels,
      counts: new Float64Array(bounds.length + 1),
      sum: 0,
      count: 0,
    }));
  }

  /** Count one observation; returns the bucket it fell in (observeIn() repeats it). */
  observe(cell: HistogramCell, seconds: number): number {
    // Linear scan: 16 bounds, and most requests land in the first few.
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    this.observeIn(cell, i, seconds);
    return i;
  }

  /** An observation of `seconds` known to fall in bucket `i` (what observe() returned for it). */
  observeIn(cell: HistogramCell, i: number, seconds: number): void {
    cell.counts[i] = (cell.counts[i] as number) + 1;
    cell.sum += seconds;
    cell.count++;
  }

  async get(): Promise<ExportMetric> {
    const values: ExportValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const cell of this.tree.cells) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += cell.counts[i] as number;
        values.push({ metricName: bucketName, labels: { ...cell.labels, le }, value: acc });
      });
      values.push({ metricName: bucketName, labels: { ...cell.labels, le: '+Inf' }, value: cell.count });
      values.push({ metricName: `${this.name}_sum`, labels: cell.labels, value: cell.sum });
      values.push({ metricName: `${this.name}_count`, labels: cell.labels, value: cell.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.tree.clear();
  }
}

/** A gauge whose series are read from the provider's snapshot at scrape time. */
class SnapshotGauge {
  readonly type = 'gauge';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly #snapshot: () => MetricsSnapshot | undefined;
  readonly #read: (s: MetricsSnapshot) => ExportValue[];

  constructor(
    name: string,
    help: string,
    snapshot: () => MetricsSnapshot | undefined,
    read: (s: MetricsSnapshot) => ExportValue[],
  ) {
    this.name = name;
    this.help = help;
    this.#snapshot = snapshot;
    this.#read = read;
  }

  async get(): Promise<ExportMetric> {
    const s = this.#snapshot();
    const values = s === undefined ? [] : this.#read(s).filter((v) => Number.isFinite(v.value));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {}
}

function scalar(v: number | undefined): ExportValue[] {
  return v === undefined ? [] : [{ labels: {}, value: v }];
}

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

function sum<T>(items: ReadonlyArray<T> | undefined, pick: (t: T) => number | undefined): ExportValue[] {
  if (items === undefined) return [];
  let total = 0;
  for (const it of items) total += pick(it) ?? 0;
  return [{ labels: {}, value: total }];
}

// ---------------------------------------------------------------------------------------------

export class Metrics {
  /** Content-Type header value for `text()`: Prometheus's text format 0.0.4, prom-client Registry.contentType. */
  readonly contentType: string = 'text/plain; version=0.0.4; charset=utf-8';
  readonly #defaultLabels: Record<string, string> | undefined;
  readonly #defaultMetrics: boolean;
  #registry: Registry | undefined;
  /** Families and gauges, handed to the registry when it is made. */
  readonly #series: object[];

  readonly #requests = new CounterFamily('jincache_requests_total', 'Client requests by protocol (http, resp), operation, group and result.', [
    'protocol',
    'op',
    'group',
    'result',
  ]);
  readonly #requestDuration = new HistogramFamily(
    'jincache_request_duration_seconds',
    'Client request latency in seconds, by operation.',
    ['op'],
    LATENCY_BUCKETS,
  );
  readonly #hits = new CounterFamily('jincache_cache_hits_total', 'Lookups served from memory.', ['group']);
  readonly #misses = new CounterFamily('jincache_cache_misses_total', 'Lookups that found nothing in memory.', ['group']);
  readonly #loads = new CounterFamily('jincache_cache_loads_total', 'Loader calls by outcome.', ['group', 'result']);
  readonly #loadDuration = new HistogramFamily(
    'jincache_cache_load_duration_seconds',
    'Loader call latency in seconds.',
    ['group'],
    LATENCY_BUCKETS,
  );
  readonly #evictions = new CounterFamily('jincache_evictions_total', 'Entries evicted to stay within the byte budget.', ['group']);
  readonly #peerRequests = new CounterFamily('jincache_peer_requests_total', 'Node-to-node requests by peer and result.', [
    'peer',
    'result',
  ]);
  readonly #peerDuration = new HistogramFamily(
    'jincache_peer_request_duration_seconds',
    'Node-to-node request latency in seconds.',
    ['peer'],
    LATENCY_BUCKETS,
  );
  readonly #peerErrors = new CounterFamily('jincache_peer_errors_total', 'Node-to-node request failures by peer and kind.', [
    'peer',
    'kind',
  ]);
  readonly #clientsRefused = new CounterFamily('jincache_clients_refused_total', 'Client connections refused or closed by a limit (max_clients, input_buffer, output_buffer, idle_timeout).', ['limit']);

  #provider: MetricsProvider | undefined;
  /** The snapshot of the scrape in progress, so one scrape calls the provider once. */
  #scrapeSnapshot: MetricsSnapshot | undefined;
  #scraping = false;

  constructor(opts: MetricsOptions = {}) {
    this.#defaultLabels = opts.defaultLabels;
    this.#defaultMetrics = opts.defaultMetrics ?? true;

    const families = [
      this.#requests,
      this.#requestDuration,
      this.#hits,
      this.#misses,
      this.#loads,
      this.#loadDuration,
      this.#evictions,
      this.#peerRequests,
      this.#peerDuration,
      this.#peerErrors,
      this.#clientsRefused,
    ];
    const snap = (): MetricsSnapshot | undefined => this.#snapshot();
    const gauges = [
      new SnapshotGauge('jincache_cache_bytes', 'Bytes held by each group.', snap, (s) =>
        (s.groups ?? []).map((g) => ({ labels: { group: g.name }, value: g.bytes })),
      ),
      new SnapshotGauge('jincache_cache_entries', 'Entries held by each group.', snap, (s) =>
        (s.groups ?? []).map((g) => ({ labels: { group: g.name }, value: g.entries })),
      ),
      new SnapshotGauge('jincache_peer_health', 'Health class of each peer: 1 for its current state, 0 for the others.', snap, (s) =>
        (s.peers ?? []).flatMap((p) =>
          p.health === undefined
            ? []
            : PEER_HEALTH_STATES.map((state) => ({ labels: { peer: p.id, state }, value: p.health === state ? 1 : 0 })),
        ),
      ),
      new SnapshotGauge('jincache_breaker_state', 'Circuit breaker per peer: 0 closed, 1 half-open, 2 open.', snap, (s) =>
        (s.peers ?? []).flatMap((p) => (p.breaker === undefined ? [] : [{ labels: { peer: p.id }, value: BREAKER_VALUE[p.breaker] }])),
      ),
      new SnapshotGauge('jincache_client_connections', 'Client connections open (RESP and HTTP API; peers not counted).', snap, (s) => scalar(s.clients?.connections)),
      new SnapshotGauge('jincache_client_input_bytes', 'Unparsed input held by all client connections together.', snap, (s) => scalar(s.clients?.inputBytes)),
      new SnapshotGauge('jincache_ring_version', 'Version of the partition table this node routes by.', snap, (s) => scalar(s.ringVersion)),
      new SnapshotGauge('jincache_partitions_owned', 'Partitions this node is primary owner of.', snap, (s) =>
        scalar(s.partitionsOwned),
      ),
      new SnapshotGauge('jincache_partitions_replica', 'Partitions this node holds a backup of.', snap, (s) =>
        scalar(s.partitionsReplica),
      ),
      new SnapshotGauge('jincache_load_score', "This node's load score.", snap, (s) => scalar(s.loadScore)),
      new SnapshotGauge('jincache_load_qps', 'Requests per second this node served as owner, over the load window, by operation.', snap, (s) =>
        s.load === undefined ? [] : (['get', 'put', 'delete'] as const).map((op) => ({ labels: { op }, value: s.load!.qps[op] })),
      ),
      new SnapshotGauge('jincache_load_network_bytes_per_second', 'Value bytes in and out per second over the load window.', snap, (s) =>
        s.load === undefined ? [] : [{ labels: { direction: 'in' }, value: s.load.bytesInPerSec }, { labels: { direction: 'out' }, value: s.load.bytesOutPerSec }],
      ),
      new SnapshotGauge('jincache_load_cpu_ratio', 'CPU time of this process per wall second (1 = one core), from process.cpuUsage deltas.', snap, (s) => scalar(s.load?.cpu)),
      new SnapshotGauge('jincache_load_event_loop_utilization', 'Event-loop utilization over the last tick, 0..1.', snap, (s) => scalar(s.load?.elu)),
      new SnapshotGauge('jincache_load_event_loop_lag_seconds', 'Mean event-loop delay over the last tick.', snap, (s) => scalar(s.load === undefined ? undefined : s.load.lagMs / 1000)),
      new SnapshotGauge('jincache_load_rss_bytes', 'Resident memory as the load monitor measured it.', snap, (s) => scalar(s.load?.rssBytes)),
      new SnapshotGauge(
        'jincache_replication_under_replicated_partitions',
        'Partitions with fewer live copies than the replication factor.',
        snap,
        (s) => scalar(s.underReplicatedPartitions),
      ),
      new SnapshotGauge('jincache_migrations_running', 'Migrations in progress that involve this node.', snap, (s) =>
        s.migrations === undefined ? [] : [{ labels: {}, value: s.migrations.length }],
      ),
      new SnapshotGauge('jincache_migration_entries_done', 'Entries moved so far by running migrations.', snap, (s) =>
        sum(s.migrations, (m) => m.entriesDone),
      ),
      new SnapshotGauge('jincache_migration_entries_total', 'Entries to move in running migrations.', snap, (s) =>
        sum(s.migrations, (m) => m.entriesTotal),
      ),
      new SnapshotGauge('jincache_migration_bytes_done', 'Bytes moved so far by running migrations.', snap, (s) =>
        sum(s.migrations, (m) => m.bytesDone),
      ),
      new SnapshotGauge('jincache_migration_bytes_total', 'Bytes to move in running migrations, where known.', snap, (s) =>
        sum(s.migrations, (m) => m.bytesTotal),
      ),
      new SnapshotGauge('jincache_hot_keys', 'Requests per hot key in the current window (top-K only).', snap, (s) =>
        (s.hotKeys ?? []).map((h) => ({
          labels: { group: h.group, key: h.key.length > MAX_KEY_LABEL ? `${h.key.slice(0, MAX_KEY_LABEL)}…` : h.key },
          value: h.count,
        })),
      ),
    ];
    this.#series = [...families, ...gauges];
  }

  /**
   * The private registry (a node may register extra metrics of its own here), made with
   * prom-client's default process metrics on first use: the first scrape. Those that are
   * sampled (event-loop lag, GC durations) count from then on; the process counters are
   * read from the process and cover its whole life either way.
   */
  get registry(): Registry {
    if (this.#registry !== undefined) return this.#registry;
    const prom = loadPromClient();
    const registry = new prom.Registry();
    if (this.#defaultLabels !== undefined) registry.setDefaultLabels(this.#defaultLabels);
    // Our families implement the part of prom-client's metric interface the Registry uses
    // (name, help, type, get, reset); its TypeScript type names its own classes only.
    for (const m of this.#series) registry.registerMetric(m as unknown as Parameters<Registry['registerMetric']>[0]);
    if (this.#defaultMetrics) prom.collectDefaultMetrics({ register: registry, prefix: 'jincache_' });
    this.#registry = registry;
    return registry;
  }

  /** Count one client request and record its latency. Hot path: no allocation after warm-up. */
  request(protocol: RequestProtocol, op: RequestOp, group: string, result: RequestResult, seconds: number): void {
    this.#requests.tree.get4(protocol, op, group, result).value++;
    this.#requestDuration.observe(this.#requestDuration.tree.get1(op), seconds);
  }

  cacheHit(group: string): void {
    this.#hits.tree.get1(group).value++;
  }

  /**
   * The cells request(protocol, op, group, result, s) counts in, and cacheHit(group) for a GET
   * hit, looked up once for a caller that counts many requests alike (FrontDoor's synchronous
   * answers: the lookups were a third of what counting a GET hit cost). Count with {@link count}.
   */
  requestCells(protocol: RequestProtocol, op: RequestOp, group: string, result: RequestResult): RequestCells {
    return {
      requests: this.#requests.tree.get4(protocol, op, group, result),
      duration: this.#requestDuration.tree.get1(op),
      hits: op === 'get' && result === 'hit' ? this.#hits.tree.get1(group) : undefined,
      lastBucket: -1,
      lastSeconds: 0,
    };
  }

  /** request() (and cacheHit() for a GET hit) on the cells requestCells() gave. */
  count(cells: RequestCells, seconds: number): void {
    cells.requests.value++;
    cells.lastBucket = this.#requestDuration.observe(cells.duration, seconds);
    cells.lastSeconds = seconds;
    if (cells.hits !== undefined) cells.hits.value++;
  }

  /**
   * count() of a request that was not timed, with the duration of the last one count() was given
   * on these cells (none yet: it is counted as taking no time). Every request is still in the
   * counters and in the histogram's count; its bucket and sum are those of the one timed before.
   */
  countAgain(cells: RequestCells): void {
    cells.requests.value++;
    if (cells.lastBucket < 0) {
      cells.lastBucket = this.#requestDuration.observe(cells.duration, 0);
    } else {
      this.#requestDuration.observeIn(cells.duration, cells.lastBucket, cells.lastSeconds);
    }
    if (cells.hits !== undefined) cells.hits.value++;
  }

  cacheMiss(group: string): void {
    this.#misses.tree.get1(group).value++;
  }

  /** Count one loader call; give its duration when known. */
  cacheLoad(group: string, result: LoadResult, seconds?: number): void {
    this.#loads.tree.get2(group, result).value++;
    if (seconds !== undefined) this.#loadDuration.observe(this.#loadDuration.tree.get1(group), seconds);
  }

  evicted(group: string, count = 1): void {
    this.#evictions.tree.get1(group).value += count;
  }

  /** Count one node-to-node request; give its duration when known. */
  peerRequest(peer: string, result: PeerResult, seconds?: number): void {
    this.#peerRequests.tree.get2(peer, result).value++;
    if (seconds !== undefined) this.#peerDuration.observe(this.#peerDuration.tree.get1(peer), seconds);
  }

  peerError(peer: string, kind: PeerErrorKind): void {
    this.#peerErrors.tree.get2(peer, kind).value++;
  }

  /** A client connection was refused or closed by a limit. */
  clientRefused(limit: ClientLimit): void {
    this.#clientsRefused.tree.get1(limit).value++;
  }

  /** Set (or clear, with undefined) the function that reports state gauges at scrape time. */
  setProvider(provider: MetricsProvider | undefined): void {
    this.#provider = provider;
  }

  /** The Prometheus text exposition of every series. Calls the provider once. */
  async text(): Promise<string> {
    this.#scrapeSnapshot = this.#provider?.();
    this.#scraping = true;
    try {
      return await this.registry.metrics();
    } finally {
      this.#scraping = false;
      this.#scrapeSnapshot = undefined;
    }
  }

  #snapshot(): MetricsSnapshot | undefined {
    // Outside text() (someone reading the registry directly) each gauge asks afresh.
    return this.#scraping ? this.#scrapeSnapshot : this.#provider?.();
  }
}
