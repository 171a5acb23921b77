/**
 * One jincache node: the composition root. It builds every component with the few collaborators
 * each one uses, in dependency order, and starts and stops them in order. Reading the
 * constructor top to bottom is reading the architecture:
 *
 *   data        groups (store, hot cache, loader) -> LocalData (owner-side operations) -> storage
 *   membership  registry (static or etcd) -> Membership -> TableManager (the partition table)
 *   peers       PeerClient / PeerServer (the node-to-node protocol) -> failure detector -> Peers
 *   repair      catch-up (a returning holder), hinted handoff, migrations (etcd only)
 *   routing     Freshness (may a copy lack writes?) -> Router (who answers each request)
 *   load        load service (monitor, hot keys) -> mirrors of hot keys, rebalancer
 *   front       FrontDoor (rules, deadlines, metrics) -> HTTP API, Redis listener
 */
import { Group } from '../cache/group.ts';
import type { Loader } from '../cache/loader.ts';
import { httpLoader } from '../cache/loader.ts';
import { LiveConfig } from '../config/live.ts';
import { peerListenerTls, resolveAdvertise, resolveApiAddress, resolveRespAddress, type Config } from '../config/schema.ts';
import { partitionOf as hashPartition } from '../core/placement/hash.ts';
import { encodeTable, summarize, type PartitionTable, type PlacementOptions } from '../core/placement/table.ts';
import { systemClock, type Clock, type NodeId, type NodeInfo } from '../core/types.ts';
import { HeldClock } from '../core/held-clock.ts';
import { HybridClock } from '../core/version.ts';
import { JincacheError } from '../core/errors.ts';
import { EtcdCoordination } from '../discovery/etcd-coordination.ts';
import type { Disposer, Election, Registry, TableStore } from '../discovery/registry.ts';
import { parsePeers, StaticRegistry } from '../discovery/static-registry.ts';
import { dashboardAssets } from '../observe/dashboard/assets.ts';
import { createLogger, type Logger } from '../observe/logger.ts';
import { Metrics } from '../observe/metrics.ts';
import { PeerClient } from '../peer/client.ts';
import { PeerServer } from '../peer/server.ts';
import { NodeStorage } from '../storage/node-storage.ts';
import { CatchUp, serveCatchUpPages, type CatchUpReport } from '../cluster/catchup.ts';
import { ClusterEvents, type ClusterEventKind, type ClusterEventMap, type TableChangeCause } from '../cluster/events.ts';
import { Freshness } from '../cluster/freshness.ts';
import { HintedHandoff } from '../cluster/handoff.ts';
import { FailureDetector } from '../cluster/health/detector.ts';
import { PeerClocks } from '../cluster/health/clocks.ts';
import type { KvService } from '../cluster/kv.ts';
import { LocalData } from '../cluster/local-data.ts';
import { Membership } from '../cluster/membership.ts';
import { EtcdMigrationStore } from '../cluster/migration/store.ts';
import { Migrations } from '../cluster/migration/service.ts';
import { Mirror } from '../cluster/mirror.ts';
import { Peers } from '../cluster/peers.ts';
import { Rebalancer } from '../cluster/rebalancer.ts';
import { Router, TABLE_WAIT_MS } from '../cluster/router.ts';
import { ENGINE } from '../cache/engine/index.ts';
import { SelfTrust } from '../cluster/trust.ts';
import { TableManager } from '../cluster/table-manager.ts';
import { LoadService } from '../load/service.ts';
import type { LoadReport } from '../load/monitor.ts';
import { Authenticator } from '../front/auth.ts';
import { FrontDoor } from '../front/door.ts';
import { HttpApi, type ControlApi } from '../front/http/api.ts';
import { RespServer } from '../front/resp/server.ts';
import { readTls, serverOptions } from '../net/tls.ts';
import { HttpListener } from './listeners.ts';
import { ClientLimits } from '../net/limits.ts';
import { RespCluster } from './resp-cluster.ts';

export interface NodeOptions {
  config: Config;
  /** Membership source. Default: static, from `config.cluster.peers` (plus this node). */
  registry?: Registry;
  /** Shared table storage (etcd). Default: none, the table is derived from the membership. */
  tableStore?: TableStore;
  election?: Election;
  /** Library use: loader functions by group name (override a configured loader URL). */
  loaders?: Readonly<Record<string, Loader>>;
  clock?: Clock;
  logger?: Logger;
}

export class JincacheNode {
  readonly id: NodeId;
  /** The base config (file + flags). */
  readonly config: Config;
  /** The config in force: the base plus valid live overrides from etcd. */
  readonly live: LiveConfig;
  readonly kv: KvService;
  readonly router: Router;
  readonly door: FrontDoor;
  readonly logger: Logger;
  readonly info: NodeInfo;
  readonly metrics: Metrics;
  readonly events: ClusterEvents;
  /** LevelDB persistence when `storage.engine: leveldb`. */
  readonly storage: NodeStorage | undefined;

  private readonly clock: Clock;
  private readonly heldClock: HeldClock;
  private readonly groups = new Map<string, Group>();
  private readonly local: LocalData;
  private readonly etcd: EtcdCoordination | undefined;
  private readonly election: Election | undefined;
  private readonly membership: Membership;
  private readonly membershipRegistry: Registry;
  private readonly tables: TableManager;
  private readonly client: PeerClient;
  private readonly detector: FailureDetector;
  private readonly catchup: CatchUp;
  private readonly handoff: HintedHandoff;
  private readonly trust: SelfTrust;
  private readonly migrations: Migrations | undefined;
  private readonly load: LoadService | undefined;
  private readonly rebalancer: Rebalancer | undefined;
  private readonly mirror: Mirror;
  private readonly listeners: HttpListener[] = [];
  private readonly authenticator: Authenticator;
  private resp: RespServer | undefined;
  /** What the RESP listener answers CLUSTER commands and redirects from (when it is on). */
  private readonly respCluster: RespCluster | undefined;
  private readonly clientLimits: ClientLimits;
  private readonly assets = dashboardAssets();
  private disposers: Disposer[] = [];
  private lastCatchUp: CatchUpReport | undefined;
  /** Times each peer's breaker opened (GET /cluster `breakerOpens`). */
  private readonly breakerOpens: Record<NodeId, number> = {};
  private started = false;
  /** Joined, components running: GET /health answers 200. */
  private ready = false;
  private stopping = false;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(opts: NodeOptions) {
    const cfg = opts.config;
    this.config = cfg;
    const live = new LiveConfig(cfg);
    this.live = live;
    // held by the Redis listener while a connection runs a burst of commands: one reading for
    // them instead of several per command (core/held-clock.ts); unheld, the clock's own
    const clock = new HeldClock(opts.clock ?? systemClock);
    this.clock = clock;
    this.heldClock = clock;
    const address = resolveAdvertise(cfg);
    const staticPeers = parsePeers(cfg.cluster.peers, clock.now());
    const id = cfg.node.id ?? staticPeers.find((p) => p.address === address)?.id ?? `node-${cfg.server.port}`;
    this.id = id;
    // a static cluster's zones come with --peers (id=URL?zone=z; config validation checks that
    // node.zone agrees with this node's entry)
    const listedZone = staticPeers.find((p) => p.id === id)?.zone;
    const zone = cfg.node.zone ?? listedZone;
    const logger = opts.logger ?? createLogger({ level: cfg.log.level, nodeId: id });
    this.logger = logger;
    const metrics = new Metrics();
    this.metrics = metrics;
    const events = new ClusterEvents(clock);
    this.events = events;
    this.info = {
      id,
      address,
      status: 'active',
      last_seen: clock.now(),
      ...(zone !== undefined ? { zone } : {}),
      ...(resolveApiAddress(cfg) !== undefined ? { api_address: resolveApiAddress(cfg)! } : {}),
      ...(resolveRespAddress(cfg) !== undefined ? { resp_address: resolveRespAddress(cfg)! } : {}),
    };
    const ft = () => live.current().fault_tolerance;

    // ---- data ----
    const partitionCount = cfg.cluster.partitions;
    const placement: PlacementOptions = { partitionCount, replicationFactor: cfg.replication.factor, vnodesPerWeight: cfg.cache.lru_replicas, clock };
    const partitionOf = (key: string): number => hashPartition(key, partitionCount);
    for (const { name } of cfg.groups) {
      const g = live.group(name)!;
      const loader = opts.loaders?.[name] ?? (g.loader ? httpLoader(g.loader.url, { timeoutMs: () => live.group(name)?.loader?.timeout ?? g.loader!.timeout, maxBytes: cfg.cache.max_value_bytes }) : undefined);
      this.groups.set(name, new Group({ name, maxBytes: g.cache_bytes, clock, partitionOf, loader, hotCacheFraction: g.hot_cache_fraction }));
    }
    const hlc = new HybridClock(clock);
    const storage = cfg.storage.engine === 'leveldb' ? new NodeStorage({ path: cfg.storage.path, nodeId: id, groups: this.groups, partitionOf, partitionCount, hlc, clock, logger }) : undefined;
    this.storage = storage;
    const local = new LocalData({
      groups: this.groups,
      hlc,
      clock,
      ttlDefault: (group) => live.group(group)?.ttl_default,
      ...(storage !== undefined ? { readThrough: (g: string, k: string) => storage.readThrough(g, k) } : {}),
    });
    this.local = local;

    // ---- membership ----
    const etcd = opts.registry === undefined && cfg.etcd.enabled ? new EtcdCoordination(cfg, id, { clock, logger }) : undefined;
    this.etcd = etcd;
    const tableStore = opts.tableStore ?? etcd?.tableStore;
    this.election = opts.election ?? etcd?.election;
    const registry = opts.registry ?? etcd?.registry ?? new StaticRegistry(staticPeers);
    this.membershipRegistry = registry;
    const membership = new Membership({ self: id, registry, events, clock });
    this.membership = membership;
    const tables = new TableManager({ registry, placement, store: tableStore, election: this.election, logger });
    this.tables = tables;

    // ---- peers ----
    const certs = this.readCertificates();
    const client = new PeerClient({ ...(cfg.cluster.secret !== undefined ? { secret: cfg.cluster.secret } : {}), ...(certs.peerClient !== undefined ? { tls: certs.peerClient } : {}) });
    this.client = client;
    // peers' clocks, measured by the heartbeats: a request's deadline is read on this node's clock
    const clocks = new PeerClocks();
    const server = new PeerServer({
      ...(cfg.cluster.secret !== undefined ? { secret: cfg.cluster.secret } : {}),
      defaultTimeoutMs: cfg.fault_tolerance.request_timeout,
      localTime: (from, t) => clocks.toLocal(from, t),
    });
    const heartbeat = cfg.fault_tolerance.heartbeat_interval;
    const pingTimeoutMs = Math.max(100, Math.min(heartbeat, cfg.fault_tolerance.request_timeout, 1000));
    let handoff: HintedHandoff | undefined;
    const detector = new FailureDetector({
      self: id,
      clock,
      clocks,
      client,
      members: membership,
      server,
      heartbeatIntervalMs: heartbeat,
      pingTimeoutMs,
      slowThresholdMs: cfg.fault_tolerance.slow_threshold,
      // a paused or partitioned peer is probed again every 0.5-2 s, never blacklisted for long
      breaker: { threshold: cfg.fault_tolerance.circuit_threshold, halfOpenAfterMs: Math.min(2000, Math.max(500, 2 * heartbeat)) },
      metrics,
      logger,
      onTransition: (peer, from, to, starting) => this.healthChanged(peer, from, to, starting),
      hintsHeldFor: (peer) => handoff?.hintsToTell(peer) ?? 0,
      onPingAnswer: (peer, hints, table, resp, sentAt) => {
        handoff?.noteHeld(peer, hints, table, sentAt);
        this.respCluster?.onPingAnswer(peer, table, resp);
        // a peer on a newer table than ours: we may have missed its commit (trust.ts)
        if (table > tables.table().version) void this.trust.tableSeen(table, TABLE_WAIT_MS);
      },
      tableVersion: () => tables.table().version,
      // a heartbeat or request that timed out across this node's own pause is not the peer's failure
      stalledSince: (t) => this.trust.stalledSince(t),
      ...(this.info.resp_address !== undefined ? { respAddress: this.info.resp_address } : {}),
    });
    this.detector = detector;
    const usable = (peer: NodeId): boolean => detector.usable(peer);
    const peers = new Peers({ client, members: membership, tableVersion: () => tables.table().version, breakers: detector, clock });

    // ---- repair ----
    this.catchup = new CatchUp({
      self: id,
      tables,
      members: membership,
      groups: () => this.groups.keys(),
      local,
      peers,
      usable,
      requestTimeoutMs: () => ft().request_timeout,
      full: storage === undefined,
      ...(storage !== undefined ? { minVersion: (g: string, p: number) => storage.catchUpFrom(g, p) } : {}),
      logger,
    });
    serveCatchUpPages(server, { groups: this.groups, ...(storage !== undefined ? { storage } : {}), partitionCount: () => tables.table().partitionCount });
    handoff = new HintedHandoff({
      self: id,
      peers,
      members: membership,
      tables,
      usable,
      local,
      server,
      requestTimeoutMs: () => ft().request_timeout,
      onDropped: (from, partitions) => {
        this.catchup.mark(partitions);
        void this.runCatchUp(`hints dropped by ${from}`);
      },
      replayIntervalMs: Math.max(250, heartbeat),
      logger,
      events,
    });
    this.handoff = handoff;
    this.migrations =
      etcd !== undefined && this.election !== undefined
        ? new Migrations({
            self: id,
            info: this.info,
            store: new EtcdMigrationStore({ client: etcd.client, prefix: cfg.etcd.prefix, logger }),
            tables,
            election: this.election,
            members: membership,
            local,
            groups: this.groups,
            ...(storage !== undefined ? { storage } : {}),
            peers,
            client,
            server,
            usable,
            partitionOf,
            placement: { replicationFactor: cfg.replication.factor, vnodesPerWeight: cfg.cache.lru_replicas, clock },
            settings: () => {
              const m = live.current().migration;
              return { batchSize: m.batch_size, batchBytes: m.batch_bytes, concurrency: m.concurrency, ...(m.bandwidth !== undefined ? { bandwidth: m.bandwidth } : {}), requestTimeoutMs: m.migration_timeout };
            },
            requestTimeoutMs: () => ft().request_timeout,
            maxValueBytes: () => live.current().cache.max_value_bytes,
            clockHold: clock,
            drainTimeoutMs: cfg.migration.drain_timeout,
            // members that vanished with every copy of some partitions get one more lease to come back
            orphanGraceMs: cfg.etcd.lease_ttl,
            clock,
            logger,
            events,
          })
        : undefined;

    // ---- routing ----
    const moves = this.migrations?.moves;
    const joining = (peer: NodeId): boolean => membership.member(peer)?.status === 'joining';
    // after a pause, a lost lease or a table found behind, this node answers from its own copy
    // again only once it has confirmed the table and its peers' hints (trust.ts)
    const trust = new SelfTrust({
      self: id,
      clock,
      // shorter than what other nodes need to route around this one: a heartbeat's timeout, and a
      // replication's deadline (3/4 of half a request's budget) after which a write becomes a hint
      stallMs: Math.max(100, Math.min(pingTimeoutMs, (cfg.fault_tolerance.request_timeout * 3) / 8)),
      ...(tableStore !== undefined ? { confirmTable: async () => (await tableStore.load())?.version ?? 0 } : {}),
      tables,
      tableAgreedSince: (t, mine) => handoff.tableAgreedSince(t, mine),
      settledSince: (t) => handoff.settledSince(t),
      logger,
      events,
    });
    this.trust = trust;
    const freshness = new Freshness({
      self: id,
      selfTrusted: () => trust.trusted(),
      recovered: (peer) => detector.classifier.onProbation(peer),
      joining,
      catchingUp: (p) => this.catchup.behind(p),
      hintsForSelf: (p) => handoff.hintsForSelf(p),
      hintsFor: (peer) => handoff.hintsFor(peer),
      uncopied: (p) => moves?.uncopied(p) ?? false,
    });

    // ---- load ----
    const load = cfg.load.enabled
      ? new LoadService({
          id,
          clock,
          logger,
          load: cfg.load,
          rebalance: () => live.current().rebalance,
          vnodesPerWeight: cfg.cache.lru_replicas,
          table: () => tables.table(),
          stored: () => {
            let bytes = 0;
            let entries = 0;
            for (const g of this.groups.values()) {
              const s = g.store.stats();
              bytes += s.bytes;
              entries += s.entries;
            }
            return { bytes, entries };
          },
          publish: (r) => this.rebalancer?.publish(r) ?? Promise.resolve(),
        })
      : undefined;
    this.load = load;
    // the partition as the store knew it when it did: hashing the key again was 3% of a GET (bench/profile.ts)
    if (load !== undefined) local.onServe = (op, group, key, bytesIn, bytesOut, partition) => load.record(op, group, key, partition ?? partitionOf(key), bytesIn, bytesOut);
    this.mirror = new Mirror({ self: id, members: membership, table: () => tables.table(), partitionOf, usable, local, groups: this.groups, client, server, selfTrusted: () => trust.trusted(), hotKeys: () => load?.report()?.hotKeys });
    const router = new Router({
      self: id,
      tables,
      partitionOf,
      usable,
      down: (peer) => detector.isDown(peer),
      freshness,
      joining,
      local,
      peers,
      hint: (peer, records) => handoff.hint(peer, records),
      toldOfHints: (peer, deadline) => detector.nextPingFrom(peer, deadline),
      announceHints: (peer) => handoff.announce(peer),
      settings: {
        requestTimeoutMs: (group) => live.group(group)?.request_timeout ?? ft().request_timeout,
        maxRetries: (group) => live.group(group)?.max_retries ?? ft().max_retries,
        syncReplication: cfg.replication.sync,
      },
      defaultGroup: cfg.cache.group_name,
      clock,
      server,
      ...(moves !== undefined ? { moves } : {}),
      mirrors: this.mirror,
      selfTrusted: () => trust.trusted(),
      tableSeen: (version, waitMs) => trust.tableSeen(version, waitMs),
      maxValueBytes: () => live.current().cache.max_value_bytes,
      engine: ENGINE,
      onReplicationFailure: (peer, records, err) => logger.debug({ peer, records, err: err.message }, 'backup did not confirm a write'),
    });
    this.router = router;
    this.kv = router;
    this.rebalancer =
      load !== undefined
        ? new Rebalancer({
            self: id,
            load,
            settings: () => live.current().rebalance,
            windowMs: cfg.load.window,
            hotKeyTopK: cfg.load.hot_key_top_k,
            tables,
            ...(this.election !== undefined ? { election: this.election } : {}),
            ...(etcd !== undefined ? { reports: etcdReports(etcd, id) } : {}),
            members: membership,
            usable,
            client,
            server,
            requestTimeoutMs: () => ft().request_timeout,
            logger,
            events,
          })
        : undefined;

    // ---- front ----
    const auth = new Authenticator(cfg.auth);
    this.authenticator = auth;
    // Redis's protected mode: without a password, nothing but loopback may reach the node
    if (!auth.required && !isLoopback(cfg.server.host)) {
      throw new JincacheError('BAD_REQUEST', `refusing to listen on ${cfg.server.host} without a password: set auth.requirepass in the config file (or the environment variable JINCACHE_PASSWORD), or listen on 127.0.0.1`);
    }
    this.respCluster = this.info.resp_address !== undefined ? new RespCluster({ self: id, address: this.info.resp_address, tables, members: membership, detector, redirects: () => live.current().resp.redirects, store: () => this.groups.get(cfg.cache.group_name)!.store, clock }) : undefined;
    this.door = new FrontDoor({ kv: router, live, metrics, clock, auth, receivedSince: () => trust.receivedSince(), ...(storage !== undefined ? { backpressure: () => storage.persister.backpressure() } : {}) });
    // SPEC §8: one set of bounds for every client of this node, over HTTP and RESP together
    this.clientLimits = new ClientLimits({
      maxClients: cfg.limits.max_clients,
      maxInputBytes: cfg.limits.max_input_buffer_bytes,
      outputBufferBytes: cfg.limits.client_output_buffer_bytes,
      idleTimeoutMs: cfg.limits.idle_timeout,
      onRefused: (limit) => metrics.clientRefused(limit),
    });
    const limits = this.clientLimits;
    const api = new HttpApi(this.door, this.control(), { publicMetrics: cfg.auth.public_metrics, limits });
    const separateApi = cfg.server.api_port !== undefined;
    this.listeners.push(new HttpListener({ host: cfg.server.host, port: cfg.server.port, peer: server, ...(separateApi ? {} : { api, limits }), ...(certs.peerListener !== undefined ? { tls: certs.peerListener } : {}) }));
    if (separateApi) this.listeners.push(new HttpListener({ host: cfg.server.host, port: cfg.server.api_port!, api, limits, ...(certs.client !== undefined ? { tls: certs.client } : {}) }));

    detector.breakers.onChange((peer, state) => {
      if (state === 'open') this.breakerOpens[peer] = (this.breakerOpens[peer] ?? 0) + 1;
    });

    // live config: what is not read on every use is adjusted here
    this.disposers.push(
      live.subscribe((next) => {
        for (const [name, g] of this.groups) {
          const resolved = live.group(name);
          if (resolved !== undefined) g.resize(resolved.cache_bytes, resolved.hot_cache_fraction);
        }
        detector.breakers.setThreshold(next.fault_tolerance.circuit_threshold);
      }),
    );
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
      this.events.note('storage', `loaded ${loaded.records} records from disk in ${Math.round(loaded.ms)} ms`);
    }
    // listen before joining: peers may route to us as soon as we are in the table
    for (const l of this.listeners) await l.start();
    if (this.etcd !== undefined) {
      await this.etcd.start();
      for (const [group, raw] of this.etcd.config.current()) this.applyOverride(group, raw);
      this.disposers.push(this.etcd.config.onChange((group, raw) => this.applyOverride(group, raw)));
      this.disposers.push(
        this.etcd.election.onChange((leader) => {
          this.logger.info({ leader }, 'cluster leader changed');
          this.events.emit('leader', { leader }, `${leader ?? 'nobody'} is the leader`);
        }),
      );
    }
    await this.membership.start(this.info);
    // Before any read can be answered from a copy that missed writes: rejoining with the same id
    // while the table in force lists this node (a crash or restart within the lease), every
    // partition it holds is behind until caught up. Marked in the listener that installs the
    // first table, so no request is served in between.
    let held: number[] = [];
    const offFirst = this.tables.onChange((next, prev) => {
      if (prev.members.length > 0) return;
      held = CatchUp.heldPartitions(next, this.id);
      this.catchup.mark(held);
    });
    this.disposers.push(this.tables.onChange((next, prev) => this.tableChanged(next, prev)));
    await this.tables.start();
    offFirst();
    if (held.length > 0) {
      // a brand-new cluster's nodes all start as holders of an empty table: only the outcome
      // (records received) is worth a line, see runCatchUp
      this.logger.debug({ partitions: held.length }, 'starting as a holder: catching up from the other holders before serving reads from this copy');
      await this.publishStatus('joining');
    }
    this.metrics.setProvider(() => this.metricsSnapshot());
    this.detector.start();
    // don't take traffic while peers that are merely starting look down
    const settleMs = Math.max(1000, Math.min(3000, 2 * cfg.fault_tolerance.heartbeat_interval));
    if (!(await this.detector.settle(settleMs))) {
      // peers of a cluster that starts together may simply be slower to start than this one:
      // requests route around them until they answer (a peer that stops answering later is a WARN)
      const silent = this.detector.classifier.report().filter((r) => !this.detector.classifier.confirmed(r.id)).map((r) => r.id);
      this.logger.info({ peers: silent }, 'serving before every peer answered; requests go around them until they do');
    }
    this.handoff.start();
    this.trust.start();
    const offLost = this.membershipRegistry.onLeaseLost?.(() => this.trust.distrust('the etcd lease was lost'));
    if (offLost !== undefined) this.disposers.push(offLost);
    await this.migrations?.start();
    this.load?.start();
    this.rebalancer?.start();
    this.mirror.start();
    if (cfg.server.resp_port !== undefined) {
      this.resp = new RespServer({
        ...(this.respCluster !== undefined ? { cluster: this.respCluster } : {}),
        door: this.door,
        clockHold: this.heldClock,
        host: cfg.server.host,
        port: cfg.server.resp_port,
        requestTimeoutMs: cfg.fault_tolerance.request_timeout,
        logger: this.logger,
        limits: this.clientLimits,
        ...(this.readCertificates().client !== undefined ? { tls: this.readCertificates().client! } : {}),
        info: () => ({ node_id: this.id, ring_version: this.tables.table().version, cluster_nodes: this.membership.list().length }),
        keyspace: () => this.router.keyspace(this.door.defaultGroup),
        maxmemory: () => this.live.group(this.door.defaultGroup)?.cache_bytes ?? 0,
        users: () => ['default', ...this.authenticator.userNames().filter((u) => u !== 'default')],
      });
      await this.resp.start();
    }
    // expired entries and space freed by deletes are reclaimed a bounded amount per second, not
    // only when a key is read again
    this.sweeper = setInterval(() => {
      for (const g of this.groups.values()) g.store.purgeExpired();
    }, 1000);
    this.sweeper.unref();
    this.ready = true;
    if (held.length > 0) void this.runCatchUp('start');
    this.logger.info({ id: this.id, address: this.info.address, ringVersion: this.tables.table().version }, 'node started');
  }

  /** Hand this node's partitions over (etcd), leave the cluster and close everything. Safe to call twice. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.ready = false;
    this.stopping = true;
    clearInterval(this.sweeper);
    const warn = (what: string) => (e: unknown) => this.logger.warn({ err: e }, what);
    await this.migrations?.drain().catch(warn('drain failed; leaving anyway'));
    this.mirror.stop();
    this.rebalancer?.stop();
    this.load?.stop();
    await this.migrations?.stop().catch(warn('stopping migrations failed'));
    this.handoff.stop();
    this.trust.stop();
    this.detector.stop();
    for (const d of this.disposers) d();
    this.disposers = [];
    await this.resp?.stop();
    this.respCluster?.stop();
    this.tables.stop();
    await this.membership.stop().catch(warn('leaving the registry failed'));
    await this.etcd?.stop().catch(warn('closing etcd failed'));
    await Promise.all(this.listeners.map((l) => l.stop()));
    this.client.close();
    await this.storage?.stop().catch(warn('closing storage failed'));
    this.logger.info({ id: this.id }, 'node stopped');
  }

  /**
   * The TLS each listener and the peer client use, read from the files now (SPEC §7): the client
   * API and the RESP listener speak `tls`; the peer port speaks mutual TLS with `cluster.tls`, or
   * the client TLS when the client API shares it.
   */
  private readCertificates(): { client?: ReturnType<typeof serverOptions>; peerListener?: ReturnType<typeof serverOptions>; peerClient?: { cert?: Buffer; key?: Buffer; ca?: Buffer } } {
    const cfg = this.config;
    const client = readTls(cfg.tls, 'tls');
    const cluster = readTls(cfg.cluster.tls, 'cluster.tls');
    const clientOpts = client !== undefined && client.cert !== undefined ? serverOptions(client, cfg.tls.client_auth) : undefined;
    const mode = peerListenerTls(cfg);
    return {
      ...(clientOpts !== undefined ? { client: clientOpts } : {}),
      ...(mode === 'mutual' && cluster !== undefined ? { peerListener: serverOptions(cluster, true), peerClient: cluster } : {}),
      ...(mode === 'client' && clientOpts !== undefined ? { peerListener: clientOpts, peerClient: client!.ca !== undefined ? { ca: client!.ca } : {} } : {}),
    };
  }

  /** Read the certificate files again and use them for new connections (SIGHUP); open connections are kept. */
  reloadCertificates(): void {
    const certs = this.readCertificates();
    const [peerListener, apiListener] = this.listeners;
    if (certs.peerListener !== undefined) peerListener?.setSecureContext(certs.peerListener);
    if (certs.client !== undefined) {
      apiListener?.setSecureContext(certs.client);
      this.resp?.setSecureContext(certs.client);
    }
    if (certs.peerClient !== undefined) this.client.setTls(certs.peerClient);
    this.logger.info({}, 'certificates reloaded');
  }

  /** Subscribe to a cluster event (join, leave, suspect, recover, table, migration, rebalance...); the disposer stops it. */
  on<K extends ClusterEventKind>(kind: K, handler: (data: ClusterEventMap[K]) => void): Disposer {
    return this.events.on(kind, handler);
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

  /** GET /cluster: the summary the CLI and the dashboard read. */
  clusterInfo(): Record<string, unknown> {
    const table = this.tables.table();
    const counts = summarize(table);
    const stats = [...this.groups.values()].map((g) => g.store.stats());
    const mem = process.memoryUsage();
    const d = this.detector;
    const load = (this.rebalancer?.info() ?? {}) as { nodeStats?: Record<NodeId, Record<string, number>>; hotKeys?: unknown[]; load?: LoadReport };
    const migrating = this.migrations?.info();
    const health: Record<NodeId, string> = {};
    const breakers: Record<NodeId, string> = {};
    for (const m of this.membership.list()) {
      health[m.id] = d.health(m.id);
      if (m.id !== this.id) breakers[m.id] = d.breaker(m.id);
    }
    // peers that left but are still known (down), so the dashboard can show them going
    for (const peer of d.classifier.known()) health[peer] ??= d.health(peer);
    const hints = this.handoff.info();
    const base = table.assignments.filter((h) => h.length < Math.min(table.replicationFactor, table.members.length)).length;
    return {
      self: this.id,
      ringVersion: table.version,
      leader: this.election?.leader() ?? null,
      partitionCount: table.partitionCount,
      replicationFactor: table.replicationFactor,
      nodes: this.membership.list().map((n) => {
        const c = counts.get(n.id);
        const own =
          n.id === this.id ? { memoryBytes: mem.rss, storedBytes: stats.reduce((a, s) => a + s.bytes, 0), entries: stats.reduce((a, s) => a + s.entries, 0) } : {};
        return {
          id: n.id,
          address: n.address,
          apiAddress: n.api_address ?? n.address,
          status: n.status,
          zone: n.zone ?? table.members.find((m) => m.id === n.id)?.zone ?? null,
          health: n.id === this.id ? 'healthy' : (health[n.id] ?? 'healthy'),
          weight: table.members.find((m) => m.id === n.id)?.weight ?? n.weight ?? 1,
          partitionsOwned: c?.owned ?? 0,
          partitionsReplica: c?.replicas ?? 0,
          ...load.nodeStats?.[n.id],
          ...own,
        };
      }),
      partitions: {
        owners: table.assignments.map((h) => h[0] ?? null),
        underReplicated: base + (migrating?.underReplicatedPending ?? 0),
        ...copiesOnDownNodes(table, (id) => id !== this.id && (health[id] === 'down' || health[id] === 'suspected')),
        // partitions of the open migrations still to be copied (the dashboard highlights them)
        moving: migrating?.moving ?? [],
      },
      groups: [...this.groups.values()].map((g) => ({ name: g.name, loader: g.loader !== undefined, ...g.store.stats() })),
      migrations: migrating?.migrations ?? [],
      hotKeys: load.hotKeys ?? [],
      ...(load.load !== undefined ? { load: load.load } : {}),
      events: this.events.feed(),
      // members that left since this node started: a graceful leave (drained first) or gone
      departed: this.membership.departures().filter((d) => !this.membership.member(d.id)),
      health,
      breakers,
      breakerOpens: { ...this.breakerOpens },
      hints: hints.hints,
      catchup: { pending: this.catchup.pending(), hintsIncoming: hints.hintsIncoming, hintsHeldForMe: hints.hintsHeldForMe, last: this.lastCatchUp ?? null },
      trust: { ...this.trust.current(), recoveries: this.trust.recoveries },
      mirrors: this.mirror.info().mirrors,
    };
  }

  /** Apply a live override from `/jincache/config/{group}` (null = removed); an invalid one is logged and changes nothing. */
  private applyOverride(group: string, raw: string | null): void {
    const out = this.live.apply(group, raw);
    if (!out.applied) {
      this.logger.warn({ group, override: raw, reason: out.reason }, 'rejected invalid config override; previous config kept');
      this.events.emit('config', { group, applied: false }, `rejected override for ${group}: ${out.reason}`);
      return;
    }
    this.logger.info({ group, override: raw }, 'applied config override');
    this.events.emit('config', { group, applied: true }, raw === null ? `override for ${group} removed` : `applied override for ${group}`);
  }

  /** Log a new table version and emit the typed 'table' event, naming what changed it. */
  private tableChanged(next: PartitionTable, prev: PartitionTable): void {
    if (prev.members.length === 0) {
      // the first table this node installs: the cluster as it is, not a change
      this.logger.debug({ version: next.version, members: next.members.length }, 'partition table in force');
      this.events.emit('table', { version: next.version, previous: null, joined: [], left: [], cause: 'start' }, `partition table v${next.version} in force (${next.members.length} members)`);
      return;
    }
    const before = new Set(prev.members.map((m) => m.id));
    const after = new Set(next.members.map((m) => m.id));
    const joined = next.members.filter((m) => !before.has(m.id)).map((m) => m.id);
    const left = prev.members.filter((m) => !after.has(m.id)).map((m) => m.id);
    // a member that published `leaving` was drained; one that vanished was removed (a crash)
    const cause: TableChangeCause =
      joined.length > 0 && left.length > 0
        ? 'membership'
        : joined.length > 0
          ? 'join'
          : left.length > 0
            ? left.every((id) => this.membership.leftGracefully(id))
              ? 'leave'
              : 'crash'
            : 'rebalance';
    const why =
      cause === 'join'
        ? `${joined.join(', ')} joined`
        : cause === 'leave'
          ? `${left.join(', ')} left`
          : cause === 'crash'
            ? `${left.join(', ')} removed (gone without leaving)`
            : cause === 'membership'
              ? `${joined.join(', ')} joined, ${left.join(', ')} left`
              : 'owners or weights changed';
    this.logger.info({ version: next.version, from: prev.version, joined, left }, 'partition table changed');
    this.events.emit('table', { version: next.version, previous: prev.version, joined, left, cause }, `partition table v${next.version} in force: ${why}`);
  }

  /**
   * A peer's health class changed. `starting`: it has never answered this node yet (a cluster
   * that starts together: peers still starting refuse at first), so its first refusals and its
   * first answer are not news for the feed or the typed events.
   */
  private healthChanged(peer: NodeId, from: string, to: string, starting: boolean): void {
    if (!starting) {
      if (to === 'suspected' || to === 'down') {
        this.events.emit('suspect', { node: peer, health: to, from }, `${peer}: ${from} -> ${to}`, 'health');
      } else if ((to === 'healthy' || to === 'slow') && (from === 'suspected' || from === 'down')) {
        this.events.emit('recover', { node: peer, health: to, from }, `${peer}: ${from} -> ${to}`, 'health');
      }
    }
    if (to === 'healthy' || to === 'slow') this.handoff.replay(peer);
  }

  /** Catch up every partition marked behind, then publish 'active' again. */
  private async runCatchUp(reason: string): Promise<void> {
    const report = await this.catchup.run();
    this.lastCatchUp = report;
    // a cluster's first start: every holder starts empty and receives nothing, not worth a line
    const news = !(report.records === 0 && report.failed.length === 0 && reason === 'start');
    if (news) this.logger.info({ reason, ...report }, 'caught up');
    else this.logger.debug({ reason, ...report }, 'caught up');
    if (news) {
      this.events.note(
        'catchup',
        `caught up ${report.caughtUp}/${report.partitions} partitions (${reason}): ${report.records} records received, ${report.applied} newer, ${report.pages} pages, ${report.full ? 'full' : 'since the disk watermark'}, ${report.ms} ms${report.failed.length > 0 ? `; no holder answered for ${report.failed.length}` : ''}`,
      );
    }
    if (reason === 'start' && !this.stopping) await this.publishStatus('active');
  }

  /** Publish this node's status in the registry; retried for a while when etcd does not answer. */
  private async publishStatus(status: 'joining' | 'active'): Promise<void> {
    for (let attempt = 0; attempt < 20 && !this.stopping; attempt++) {
      try {
        // the feed learns it from the membership (Membership notes status changes)
        await this.membership.update({ ...this.info, status });
        return;
      } catch (e) {
        this.logger.warn({ status, err: (e as Error).message }, 'could not publish status; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** The control routes of the HTTP API. */
  private control(): ControlApi {
    return {
      ready: () => this.ready,
      ringVersion: () => this.tables.table().version,
      clusterInfo: () => this.clusterInfo(),
      encodedTable: () => encodeTable(this.tables.table()),
      migrations: async () => this.migrations?.list() ?? { migrations: [] },
      migration: (action, id) => {
        const m = this.migrations;
        if (m === undefined) throw new JincacheError('NOT_IMPLEMENTED', 'migrations need etcd (static clusters never migrate)');
        return action === 'cancel' ? m.cancel(id) : m.rollback(id);
      },
      rebalance: async (body) => {
        if (this.rebalancer === undefined) throw new JincacheError('NOT_IMPLEMENTED', 'rebalancing needs the load monitor (load.enabled)');
        return this.rebalancer.handle(body);
      },
      metrics: async () => ({ contentType: this.metrics.contentType, body: await this.metrics.text() }),
      asset: (path) => this.assets.get(path),
    };
  }

  private metricsSnapshot(): ReturnType<Parameters<Metrics['setProvider']>[0] & {}> {
    const table = this.tables.table();
    const mine = summarize(table).get(this.id);
    const d = this.detector;
    return {
      ringVersion: table.version,
      partitionsOwned: mine?.owned ?? 0,
      partitionsReplica: mine?.replicas ?? 0,
      groups: [...this.groups.values()].map((g) => ({ name: g.name, ...g.store.stats() })),
      peers: this.membership
        .list()
        .filter((m) => m.id !== this.id)
        .map((m) => ({ id: m.id, health: d.health(m.id), breaker: d.breaker(m.id) })),
      // a node without etcd moves no data: nothing running, rather than no gauge at all
      migrations: this.migrations?.jobs() ?? [],
      clients: { connections: this.clientLimits.connections(), inputBytes: this.clientLimits.input() },
      ...this.load?.metrics(),
    };
  }
}

/**
 * Partitions with a copy on a node this node sees down or suspected (`withDownHolder`), and
 * those with every copy there (`unavailable`: no holder can answer for them now).
 */
export function copiesOnDownNodes(table: PartitionTable, down: (id: NodeId) => boolean): { withDownHolder: number; unavailable: number } {
  let withDownHolder = 0;
  let unavailable = 0;
  for (const holders of table.assignments) {
    let n = 0;
    for (const h of holders) if (down(h)) n++;
    if (n > 0) withDownHolder++;
    if (n > 0 && n === holders.length) unavailable++;
  }
  return { withDownHolder, unavailable };
}

/** Whether `host` is a loopback address (or name). */
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Load reports in etcd: `/jincache/load/{id}` under the node's lease. */
function etcdReports(etcd: EtcdCoordination, self: NodeId) {
  return {
    publish: async (report: LoadReport): Promise<void> => {
      const lease = etcd.registry.leaseId();
      if (lease === '') return; // between leases (rejoining): the next tick publishes
      await etcd.client.put(`${etcd.prefix}/load/${self}`).value(JSON.stringify(report)).lease(lease);
    },
    readAll: async (): Promise<LoadReport[]> => {
      const all = await etcd.client.getAll().prefix(`${etcd.prefix}/load/`).strings();
      const out: LoadReport[] = [];
      for (const raw of Object.values(all)) {
        try {
          const r = JSON.parse(raw) as LoadReport;
          if (typeof r.id === 'string' && typeof r.score === 'number') out.push(r);
        } catch {
          // a malformed report is ignored; its node publishes again within a second
        }
      }
      return out;
    },
  };
}
