/**
 * One jincache node: the composition root. It owns the groups (data), the partition table, the
 * router, the peer client and the listeners, and starts and stops them in order.
 *
 * Later components plug in here through the seams: a Registry/TableStore/Election for etcd,
 * the failure detector and handoff for replication, the migrator, the load monitor.
 */
import { Group } from '../cache/group.ts';
import type { Loader } from '../cache/loader.ts';
import { httpLoader } from '../cache/loader.ts';
import { resolveAdvertise, resolveGroup, type Config } from '../config/schema.ts';
import { partitionOf as hashPartition } from '../core/placement/hash.ts';
import type { PartitionTable, PlacementOptions } from '../core/placement/table.ts';
import { summarize } from '../core/placement/table.ts';
import { systemClock, type Clock, type NodeId, type NodeInfo } from '../core/types.ts';
import { HybridClock } from '../core/version.ts';
import type { Election, Registry, TableStore } from '../discovery/registry.ts';
import { parsePeers, StaticRegistry } from '../discovery/static-registry.ts';
import { dashboardAssets } from '../observe/dashboard/assets.ts';
import { createLogger, type Logger } from '../observe/logger.ts';
import { Metrics, type RequestResult } from '../observe/metrics.ts';
import { RespServer } from '../front/resp/server.ts';
import type { WireRecord } from '../peer/codec.ts';
import { HttpListener, type HttpBackend, type HttpLimits, type PeerRoute } from '../front/http/server.ts';
import { PeerClient } from '../peer/client.ts';
import { JincacheError } from '../core/errors.ts';
import { applyGroupOverrides, parseGroupOverride, type GroupOverride } from '../config/overrides.ts';
import { isConfigError } from '../config/errors.ts';
import { builtinPlugins } from './builtins.ts';
import { EtcdCoordination } from '../discovery/etcd-coordination.ts';
import { NodeStorage } from '../storage/node-storage.ts';
import { encodeTable } from '../core/placement/table.ts';
import type { KvService } from '../cluster/kv.ts';
import { LocalData } from '../cluster/local-data.ts';
import type { ClusterEvent, ControlHandler, NodeContext, NodePlugin, RoutingHooks } from '../cluster/plugin.ts';
import { Router, type ClusterView } from '../cluster/router.ts';
import { TableManager } from '../cluster/table-manager.ts';

export interface NodeOptions {
  config: Config;
  /** Membership source. Default: static, from `config.cluster.peers` (plus this node). */
  registry?: Registry;
  /** Shared table storage (etcd). Default: none, the table is derived from the membership. */
  tableStore?: TableStore;
  election?: Election;
  /** Library use: loader functions by group name (override a configured loader URL). */
  loaders?: Readonly<Record<string, Loader>>;
  /** Components started after the node joined, stopped before it leaves. */
  plugins?: readonly NodePlugin[];
  clock?: Clock;
  logger?: Logger;
}

export class JincacheNode {
  readonly id: NodeId;
  /** The base config (file + flags). */
  readonly config: Config;
  /** The config in force: the base plus valid live overrides from etcd. */
  liveConfig: Config;
  readonly kv: KvService;
  readonly router: Router;
  readonly logger: Logger;
  readonly info: NodeInfo;
  readonly metrics: Metrics;

  private readonly clock: Clock;
  private readonly groups = new Map<string, Group>();
  private readonly local: LocalData;
  private readonly registry: Registry;
  private readonly tables: TableManager;
  private readonly peers: PeerClient;
  private readonly listeners: HttpListener[] = [];
  private readonly placement: PlacementOptions;
  private readonly plugins: readonly NodePlugin[];
  // routing hooks of the started plugins (failure detector, migration)
  private hooks: RoutingHooks[] = [];
  private mirrorHooks: RoutingHooks[] = [];
  private writeHooks: RoutingHooks[] = [];
  private readonly tableStore: TableStore | undefined;
  private readonly election: Election | undefined;
  private readonly partitionOf: (key: string) => number;
  private readonly etcd: EtcdCoordination | undefined;
  /** LevelDB persistence when `storage.engine: leveldb`. */
  readonly storage: NodeStorage | undefined;
  // the last valid override of each group; an invalid new one leaves its entry as it was
  private readonly overrides: Record<string, GroupOverride> = {};
  private readonly memberListeners = new Set<(members: readonly NodeInfo[]) => void>();
  private readonly events: ClusterEvent[] = [];
  private readonly assets = dashboardAssets();
  private resp: RespServer | undefined;
  private readonly controlRoutes = new Map<string, ControlHandler>();
  private membersById = new Map<NodeId, NodeInfo>();
  private started = false;
  /** Joined, components running: GET /health answers 200. */
  private ready = false;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(opts: NodeOptions) {
    const cfg = opts.config;
    this.config = cfg;
    this.liveConfig = cfg;
    this.clock = opts.clock ?? systemClock;
    const address = resolveAdvertise(cfg);
    const staticPeers = parsePeers(cfg.cluster.peers, this.clock.now());
    this.id = cfg.node.id ?? staticPeers.find((p) => p.address === address)?.id ?? `node-${cfg.server.port}`;
    this.logger = opts.logger ?? createLogger({ level: cfg.log.level, nodeId: this.id });
    this.metrics = new Metrics();
    this.plugins = opts.plugins ?? builtinPlugins(cfg);
    this.info = {
      id: this.id,
      address,
      status: 'active',
      last_seen: this.clock.now(),
      ...(cfg.server.api_port !== undefined ? { api_address: `http://${cfg.server.host}:${cfg.server.api_port}` } : {}),
      ...(cfg.server.resp_port !== undefined ? { resp_address: `${cfg.server.host}:${cfg.server.resp_port}` } : {}),
    };

    const partitionCount = cfg.cluster.partitions;
    this.placement = {
      partitionCount,
      replicationFactor: cfg.replication.factor,
      vnodesPerWeight: cfg.cache.lru_replicas,
      clock: this.clock,
    };
    const partitionOf = (key: string): number => hashPartition(key, partitionCount);
    this.partitionOf = partitionOf;
    for (const { name } of cfg.groups) {
      const g = resolveGroup(cfg, name)!;
      const loader = opts.loaders?.[name] ?? (g.loader ? httpLoader(g.loader.url, { timeoutMs: g.loader.timeout, maxBytes: cfg.cache.max_value_bytes }) : undefined);
      this.groups.set(name, new Group({ name, maxBytes: g.cache_bytes, clock: this.clock, partitionOf, loader, hotCacheFraction: g.hot_cache_fraction }));
    }

    const hlc = new HybridClock(this.clock);
    this.storage =
      cfg.storage.engine === 'leveldb'
        ? new NodeStorage({ path: cfg.storage.path, nodeId: this.id, groups: this.groups, partitionOf, partitionCount, hlc, clock: this.clock, logger: this.logger })
        : undefined;
    this.local = new LocalData({
      groups: this.groups,
      hlc,
      clock: this.clock,
      ...(this.storage !== undefined ? { readThrough: (g: string, k: string) => this.storage!.readThrough(g, k) } : {}),
    });
    this.etcd = opts.registry === undefined && cfg.etcd.enabled ? new EtcdCoordination(cfg, this.id, { clock: this.clock, logger: this.logger }) : undefined;
    this.tableStore = opts.tableStore ?? this.etcd?.tableStore;
    this.election = opts.election ?? this.etcd?.election;
    this.registry = opts.registry ?? this.etcd?.registry ?? new StaticRegistry(staticPeers);
    this.tables = new TableManager({ registry: this.registry, placement: this.placement, store: this.tableStore, election: this.election, logger: this.logger });
    this.peers = new PeerClient({ secret: cfg.cluster.secret, timeoutMs: cfg.fault_tolerance.request_timeout });

    const view: ClusterView = {
      self: this.id,
      table: () => this.tables.table(),
      tableReached: (version, timeoutMs) => this.tables.reached(version, timeoutMs),
      partitionOf,
      member: (id) => this.membersById.get(id),
      usable: (id) => this.hooks.every((h) => h.usable?.(id) ?? true),
      extraReplicas: (p) => combine(this.hooks, (h) => h.extraReplicas?.(p)),
      previousHolders: (p) => combine(this.hooks, (h) => h.previousHolders?.(p)),
      lacking: (p) => this.hooks.some((h) => h.lacking?.(p) ?? false),
      mirrorGet: (group, key) => {
        for (const h of this.mirrorHooks) {
          const got = h.mirrorGet!(group, key);
          if (got !== undefined) return got;
        }
        return undefined;
      },
      writeWaits: (group, key) => this.writeHooks.some((h) => h.writeWaits?.(group, key) ?? true),
      beforeOwnerWrite: async (group, key, version, deadline) => {
        if (this.writeHooks.length === 0) return;
        await Promise.all(this.writeHooks.map((h) => h.beforeOwnerWrite!(group, key, version, deadline)));
      },
    };
    this.router = new Router({
      view,
      local: this.local,
      peers: this.peers,
      defaultGroup: cfg.cache.group_name,
      requestTimeoutMs: cfg.fault_tolerance.request_timeout,
      syncReplication: cfg.replication.sync,
      onReplicationFailure: (peer, records, err) => this.logger.debug({ peer, records: records.length, err: err.message }, 'backup did not confirm a write'),
    });
    this.kv = this.router;
  }

  /** Join the cluster and open the listeners. */
  async start(): Promise<void> {
    if (this.started) throw new Error(`node ${this.id} already started`);
    this.started = true;
    const cfg = this.config;
    if (this.storage !== undefined) {
      // warm restart: the data is back before the node listens or joins
      const loaded = await this.storage.start();
      this.logger.info({ path: this.storage.path, records: loaded.records, ms: Math.round(loaded.ms) }, 'loaded data from disk');
      this.event('storage', `loaded ${loaded.records} records from disk in ${Math.round(loaded.ms)} ms`);
    }
    const backend = this.httpBackend();
    const separateApi = cfg.server.api_port !== undefined;
    this.listeners.push(new HttpListener(backend, { host: cfg.server.host, port: cfg.server.port, api: !separateApi, peer: true }));
    if (separateApi) this.listeners.push(new HttpListener(backend, { host: cfg.server.host, port: cfg.server.api_port!, api: true, peer: false }));
    // listen before joining: peers may route to us as soon as we are in the table
    for (const l of this.listeners) await l.start();

    if (this.etcd !== undefined) {
      await this.etcd.start();
      for (const [group, raw] of this.etcd.config.current()) this.applyOverride(group, raw);
      this.etcd.config.onChange((group, raw) => this.applyOverride(group, raw));
      this.etcd.election.onChange((leader) => {
        this.logger.info({ leader }, 'cluster leader changed');
        this.event('leader', `${leader ?? 'nobody'} is the leader`);
      });
    }
    this.registry.onChange((members) => this.setMembers(members));
    await this.registry.start(this.info);
    this.setMembers(this.registry.members());
    this.tables.onChange((next, prev) => {
      this.logger.info({ version: next.version, from: prev.version }, 'partition table changed');
      if (prev.members.length > 0) this.event('ring', `partition table v${next.version} in force`);
    });
    await this.tables.start();
    this.metrics.setProvider(() => this.metricsSnapshot());
    if (cfg.server.resp_port !== undefined) {
      this.resp = new RespServer({
        kv: this.kv,
        host: cfg.server.host,
        port: cfg.server.resp_port,
        maxKeyBytes: cfg.cache.max_key_bytes,
        maxValueBytes: cfg.cache.max_value_bytes,
        requestTimeoutMs: cfg.fault_tolerance.request_timeout,
        logger: this.logger,
        info: () => ({ node_id: this.id, ring_version: this.tables.table().version, cluster_nodes: this.membersById.size }),
      });
      await this.resp.start();
    }
    const ctx = this.context();
    for (const p of this.plugins) await p.start(ctx);
    this.hooks = this.plugins.map((p) => p.routing?.()).filter((h): h is RoutingHooks => h !== undefined);
    this.mirrorHooks = this.hooks.filter((h) => h.mirrorGet !== undefined);
    this.writeHooks = this.hooks.filter((h) => h.beforeOwnerWrite !== undefined);
    const recorders = this.plugins.filter((p) => p.record !== undefined);
    if (recorders.length > 0) {
      const partitionOf = this.partitionOf;
      this.local.onServe = (op, group, key, bytesIn, bytesOut) => {
        const partition = partitionOf(key);
        for (const r of recorders) r.record!(op, group, key, partition, bytesIn, bytesOut);
      };
    }
    for (const p of this.plugins) for (const [route, handler] of p.controlRoutes?.() ?? []) this.controlRoutes.set(route, handler);
    // expired entries and space freed by deletes are reclaimed a bounded amount per second, not
    // only when a key is read again
    this.sweeper = setInterval(() => {
      for (const g of this.groups.values()) g.store.purgeExpired();
    }, 1000);
    this.sweeper.unref();
    this.ready = true;
    this.logger.info({ id: this.id, address: this.info.address, ringVersion: this.tables.table().version }, 'node started');
  }

  /** Leave the cluster and close everything. Safe to call twice. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.ready = false;
    clearInterval(this.sweeper);
    for (const p of this.plugins) await p.drain?.().catch((e: unknown) => this.logger.warn({ err: e, plugin: p.name }, 'drain failed; leaving anyway'));
    for (const p of [...this.plugins].reverse()) await p.stop().catch((e: unknown) => this.logger.warn({ err: e, plugin: p.name }, 'plugin stop failed'));
    await this.resp?.stop();
    this.tables.stop();
    await this.registry.stop().catch((e: unknown) => this.logger.warn({ err: e }, 'leaving the registry failed'));
    await this.etcd?.stop().catch((e: unknown) => this.logger.warn({ err: e }, 'closing etcd failed'));
    await Promise.all(this.listeners.map((l) => l.stop()));
    this.listeners.length = 0;
    this.peers.close();
    await this.storage?.stop().catch((e: unknown) => this.logger.warn({ err: e }, 'closing storage failed'));
    this.logger.info({ id: this.id }, 'node stopped');
  }

  /** Port of each listener (peer first), useful when configured with port 0. */
  ports(): number[] {
    return this.listeners.map((l) => l.port());
  }

  table(): PartitionTable {
    return this.tables.table();
  }

  group(name: string): Group | undefined {
    return this.groups.get(name);
  }

  /** GET /cluster: the SPEC §3 summary the CLI and the dashboard read. */
  clusterInfo(): Record<string, unknown> {
    const table = this.tables.table();
    const counts = summarize(table);
    const stats = [...this.groups.values()].map((g) => g.store.stats());
    const mem = process.memoryUsage();
    const extra: Record<string, unknown> = Object.assign({}, ...this.plugins.map((p) => p.clusterInfo?.() ?? {}));
    const nodeStats = (extra.nodeStats ?? {}) as Record<NodeId, Record<string, number>>;
    const health = (extra.health ?? {}) as Record<NodeId, string>;
    delete extra.nodeStats;
    delete extra.health;
    return {
      self: this.id,
      ringVersion: table.version,
      leader: this.election?.leader() ?? null,
      partitionCount: table.partitionCount,
      replicationFactor: table.replicationFactor,
      nodes: [...this.membersById.values()].map((n) => {
        const c = counts.get(n.id);
        const own =
          n.id === this.id
            ? {
                memoryBytes: mem.rss,
                storedBytes: stats.reduce((a, s) => a + s.bytes, 0),
                entries: stats.reduce((a, s) => a + s.entries, 0),
              }
            : {};
        return {
          id: n.id,
          address: n.address,
          apiAddress: n.api_address ?? n.address,
          status: n.status,
          health: n.id === this.id ? 'healthy' : (health[n.id] ?? 'healthy'),
          weight: table.members.find((m) => m.id === n.id)?.weight ?? n.weight ?? 1,
          partitionsOwned: c?.owned ?? 0,
          partitionsReplica: c?.replicas ?? 0,
          ...nodeStats[n.id],
          ...own,
        };
      }),
      partitions: {
        owners: table.assignments.map((h) => h[0] ?? null),
        underReplicated: table.assignments.filter((h) => h.length < Math.min(table.replicationFactor, table.members.length)).length,
      },
      groups: [...this.groups.values()].map((g) => ({ name: g.name, loader: g.loader !== undefined, ...g.store.stats() })),
      migrations: [],
      hotKeys: [],
      events: this.events,
      ...extra,
    };
  }

  /**
   * Apply a live override from `/jincache/config/{group}` (null = removed). Invalid JSON or values
   * are rejected with a logged reason and the previous config stays in force.
   */
  private applyOverride(group: string, raw: string | null): void {
    let next: Config;
    const overrides = { ...this.overrides };
    try {
      if (raw === null) delete overrides[group];
      else overrides[group] = parseGroupOverride(raw, group);
      next = applyGroupOverrides(this.config, overrides);
    } catch (e) {
      const reason = isConfigError(e) ? e.message : (e as Error).message;
      this.logger.warn({ group, override: raw, reason }, 'rejected invalid config override; previous config kept');
      this.event('config', `rejected override for ${group}: ${reason}`);
      return;
    }
    if (raw === null) delete this.overrides[group];
    else this.overrides[group] = overrides[group]!;
    this.liveConfig = next;
    for (const [name, g] of this.groups) {
      const resolved = resolveGroup(next, name);
      if (resolved !== undefined) g.resize(resolved.cache_bytes);
    }
    this.logger.info({ group, override: raw }, 'applied config override');
    this.event('config', `applied override for ${group}`);
  }

  /** The plugin handler for a control route, with `{name}` segments bound into the body. */
  private controlHandler(method: string, path: string): ((body: unknown) => Promise<unknown>) | undefined {
    const exact = this.controlRoutes.get(`${method} ${path}`);
    if (exact !== undefined) return exact;
    const parts = path.split('/');
    for (const [route, handler] of this.controlRoutes) {
      const [m, pattern] = route.split(' ') as [string, string];
      if (m !== method || !pattern.includes('{')) continue;
      const want = pattern.split('/');
      if (want.length !== parts.length) continue;
      const params: Record<string, string> = {};
      const ok = want.every((w, i) => {
        if (w.startsWith('{') && w.endsWith('}')) {
          try {
            params[w.slice(1, -1)] = decodeURIComponent(parts[i]!);
          } catch {
            return false;
          }
          return parts[i] !== '';
        }
        return w === parts[i];
      });
      if (ok) return (body) => handler({ ...(body !== null && typeof body === 'object' ? body : {}), ...params });
    }
    return undefined;
  }

  /** Add an event to the bounded feed the dashboard shows. */
  event(kind: string, message: string): void {
    this.events.push({ at: this.clock.now(), kind, message });
    if (this.events.length > 200) this.events.splice(0, this.events.length - 200);
  }

  private context(): NodeContext {
    return {
      id: this.id,
      info: this.info,
      config: this.config,
      clock: this.clock,
      logger: this.logger,
      metrics: this.metrics,
      groups: this.groups,
      local: this.local,
      router: this.router,
      peers: this.peers,
      registry: this.registry,
      tables: this.tables,
      tableStore: this.tableStore,
      election: this.election,
      etcd: this.etcd,
      storage: this.storage,
      partitionOf: this.partitionOf,
      usable: (id) => this.hooks.every((h) => h.usable?.(id) ?? true),
      table: () => this.tables.table(),
      members: () => [...this.membersById.values()],
      member: (id) => this.membersById.get(id),
      onMembers: (l) => {
        this.memberListeners.add(l);
        return () => this.memberListeners.delete(l);
      },
      event: (kind, message) => this.event(kind, message),
    };
  }

  private metricsSnapshot(): ReturnType<Parameters<Metrics['setProvider']>[0] & {}> {
    const table = this.tables.table();
    const mine = summarize(table).get(this.id);
    return Object.assign(
      {
        ringVersion: table.version,
        partitionsOwned: mine?.owned ?? 0,
        partitionsReplica: mine?.replicas ?? 0,
        groups: [...this.groups.values()].map((g) => ({ name: g.name, ...g.store.stats() })),
      },
      ...this.plugins.map((p) => p.metrics?.() ?? {}),
    );
  }

  private setMembers(members: readonly NodeInfo[]): void {
    const before = this.membersById;
    this.membersById = new Map(members.map((m) => [m.id, m]));
    if (before.size > 0) {
      for (const id of this.membersById.keys()) if (!before.has(id)) this.event('join', `${id} joined`);
      for (const id of before.keys()) if (!this.membersById.has(id)) this.event('leave', `${id} left`);
    }
    for (const l of this.memberListeners) l(members);
  }

  private httpBackend(): HttpBackend {
    const cfg = this.config;
    const limits: HttpLimits = {
      maxKeyBytes: cfg.cache.max_key_bytes,
      maxValueBytes: cfg.cache.max_value_bytes,
      maxBatchRecords: 10_000,
      maxBatchBytes: 64 * 1024 * 1024,
    };
    return {
      router: this.router,
      limits,
      secret: cfg.cluster.secret,
      deadline: () => Date.now() + this.liveConfig.fault_tolerance.request_timeout,
      clusterInfo: () => this.clusterInfo(),
      migrations: async () => (await this.controlRoutes.get('GET /cluster/migrations')?.({})) ?? { migrations: [] },
      control: (method, path) => this.controlHandler(method, path),
      rebalance: async (body) => {
        const handler = this.controlRoutes.get('POST /cluster/rebalance');
        if (handler === undefined) throw new JincacheError('NOT_IMPLEMENTED', 'rebalancing needs the load plugin (etcd mode)');
        return handler(body);
      },
      metrics: async () => ({ contentType: this.metrics.contentType, body: await this.metrics.text() }),
      applyRecords: (records: WireRecord[]) => this.local.apply(records),
      invalidate: (items) => {
        for (const { group, key } of items) this.groups.get(group)?.hot.delete(key);
      },
      ping: () => ({ id: this.id, ringVersion: this.tables.table().version }),
      ready: () => this.ready,
      ringVersion: () => this.tables.table().version,
      encodedTable: () => encodeTable(this.tables.table()),
      backpressure: () => this.storage?.persister.backpressure(),
      asset: (path) => this.assets.get(path),
      observe: (op, group, result, seconds) => {
        // a group name comes from the URL: only configured groups become label values
        const label = this.groups.has(group) ? group : '_unknown';
        this.metrics.request(op === 'get' || op === 'put' || op === 'delete' || op === 'expire' ? op : 'other', label, toRequestResult(result), seconds);
        if (op !== 'get' || label === '_unknown') return;
        if (result === 'hit') this.metrics.cacheHit(label);
        else if (result === 'miss') this.metrics.cacheMiss(label);
        else if (result === 'load') {
          this.metrics.cacheMiss(label);
          this.metrics.cacheLoad(label, 'ok');
        }
      },
      peerRoutes: () => {
        const routes = new Map<string, PeerRoute>();
        for (const p of this.plugins) for (const [k, v] of p.peerRoutes?.() ?? []) routes.set(k, v);
        return routes;
      },
    };
  }
}

/** Union of the node lists several hooks give (usually zero or one hook answers). */
function combine(hooks: readonly RoutingHooks[], pick: (h: RoutingHooks) => readonly NodeId[] | undefined): readonly NodeId[] {
  let out: readonly NodeId[] = [];
  for (const h of hooks) {
    const ids = pick(h);
    if (ids === undefined || ids.length === 0) continue;
    out = out.length === 0 ? ids : [...new Set([...out, ...ids])];
  }
  return out;
}

/** Map an HTTP outcome (cache source or lower-case error code) to a metrics result label. */
function toRequestResult(result: string): RequestResult {
  switch (result) {
    case 'hit':
    case 'miss':
    case 'load':
    case 'ok':
    case 'timeout':
    case 'unauthorized':
      return result;
    case 'not_found':
    case 'unknown_group':
      return 'not_found';
    case 'bad_request':
    case 'key_too_large':
    case 'value_too_large':
    case 'bad_ttl':
      return 'bad_request';
    case 'peer_unavailable':
    case 'no_owner':
      return 'unavailable';
    default:
      return 'error';
  }
}
