/**
 * The migration plugin: wires the executor (every node), the coordinator (the leader, as the
 * TableManager's planner), the record store in etcd, the router hooks, the peer routes, the
 * control routes, the cleanup of partitions a node no longer holds, and the SIGTERM drain.
 *
 * Static clusters (no etcd): the membership never changes while running, so nothing migrates;
 * the plugin stays idle and GET /cluster/migrations lists nothing.
 *
 * Peer routes (under /_jincache/migrate/):
 *   POST batch?m=ID          binary record batch (transport codec), applied last-writer-wins
 *   POST verify?m=ID         body {"p": [1,2,3], "sums": [[count, sum], ...]} (the sender's sums of
 *                            what it sent): {"sums": [[count, sum], ...]} of this node's live
 *                            entries in those partitions (flushed to disk first when persistent;
 *                            from what it applied when that equals what was sent, see checksums)
 *   GET  checksum?p=1,2,3    the same for a few partitions (operators, older senders)
 *   GET  ready               200 once this node takes batches (503 while it is starting)
 *   GET  list                same body as GET /cluster/migrations
 *   POST cancel?id=ID        ask for a cancel (written to the record in etcd)
 *   POST rollback?id=ID      ask for a rollback
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { JincacheError } from '../../core/errors.ts';
import type { PartitionTable } from '../../core/placement/table.ts';
import type { NodeId, NodeInfo } from '../../core/types.ts';
import type { Disposer } from '../../discovery/registry.ts';
import type { PeerRoute } from '../../front/http/server.ts';
import type { ControlHandler, NodeContext, NodePlugin, RoutingHooks } from '../plugin.ts';
import { Coordinator, pendingPartitions } from './coordinator.ts';
import { applyBatch } from './batch.ts';
import { Executor, partitionChecksum, type DiskSource } from './executor.ts';
import { addToChecksum, copyMoves, emptyChecksum, preparedFrom, takenAnswer, uncopiedReceipts, type Checksum } from './plan.ts';
import { isMigrationId, isOpen, type Migration, type NodeProgress } from './record.ts';
import { EtcdMigrationStore, type MigrationStore } from './store.ts';
import { CatchUp } from '../catchup.ts';
import { LOGICAL_BITS } from '../../core/version.ts';

export interface MigrationPluginOptions {
  /** Use this store instead of etcd (tests). Default: etcd from the node's config when etcd is enabled. */
  store?: MigrationStore;
  /** Minimum gap between two progress writes of one node to etcd. Default 500 ms (≤ 2 writes/s). */
  reportIntervalMs?: number;
  /** How long a partition nobody refers to is kept before it is dropped. Default 10 s. */
  dropGraceMs?: number;
  /** How long after a commit the previous holders are still asked on a miss. Default 30 s. */
  previousHoldersMs?: number;
  /** How long the leader waits for missing members that hold every copy of some partitions before removing them. Default: the lease TTL. */
  orphanGraceMs?: number;
  /** Leader reconcile period while migrations are open. Default 250 ms. */
  tickMs?: number;
  /**
   * Repair tail pass: clock skew allowed between the leader (which stamps a repair's creation)
   * and the nodes that version writes. Default 2000 ms.
   */
  tailMarginMs?: number;
  /** Repair tail pass: the second pass runs this long after the first. Default 10 000 ms. */
  tailRepeatMs?: number;
}

const EMPTY: readonly NodeId[] = Object.freeze([]);

/** Sums of the records a receiver applied from one migration's batches, and its evictions then. */
interface Taken {
  evictions: number;
  sums: Map<number, Checksum>;
}

/** Summary of one migration for GET /cluster/migrations and the CLI. */
export interface MigrationView {
  id: string;
  kind: string;
  state: string;
  fromVersion: number;
  toVersion: number;
  members: NodeId[];
  createdAt: number;
  updatedAt: number;
  committedAt: number | null;
  reason: string | null;
  rollbackRequested: boolean;
  /** Set when an operator stopped this change: the planner will not plan it again by itself. */
  held: boolean;
  partitions: { total: number; done: number; failed: number; copying: number };
  entries: { done: number; total: number };
  bytes: { done: number; total: number };
  /** Entries per second, summed over the sending nodes. */
  rate: number;
  etaSeconds: number | null;
  nodes: { node: NodeId; partitions: number; done: number; rate: number; at: number }[];
  /** Per partition, for open migrations only. */
  detail?: { partition: number; source: NodeId; targets: NodeId[]; state: string; entriesDone: number; entriesTotal: number; bytesDone: number; bytesTotal: number; verified: boolean }[];
}

export function viewOf(m: Migration, progress: ReadonlyMap<NodeId, NodeProgress>, withDetail: boolean): MigrationView {
  const moves = copyMoves(m.fromTable, m.targetTable);
  const byPartition = new Map<number, { source: NodeId; p: NodeProgress['partitions'][number] }>();
  const nodes: MigrationView['nodes'] = [];
  let rate = 0;
  for (const rep of progress.values()) {
    let done = 0;
    for (const p of rep.partitions) {
      byPartition.set(p.partition, { source: rep.node, p });
      if (p.state === 'done') done++;
    }
    if (isOpen(m.state)) rate += rep.rate;
    nodes.push({ node: rep.node, partitions: rep.partitions.length, done, rate: Math.round(rep.rate), at: rep.at });
  }
  let done = 0;
  let failed = 0;
  let copying = 0;
  const entries = { done: 0, total: 0 };
  const bytes = { done: 0, total: 0 };
  for (const { p } of byPartition.values()) {
    if (p.state === 'done') done++;
    else if (p.state === 'failed') failed++;
    else if (p.state === 'copying' || p.state === 'verifying') copying++;
    entries.done += Math.min(p.entriesDone, p.entriesTotal);
    entries.total += p.entriesTotal;
    bytes.done += p.bytesDone;
    bytes.total += Math.max(p.bytesTotal, p.bytesDone);
  }
  const committed = m.state === 'done';
  if (committed) done = moves.length;
  const left = entries.total - entries.done;
  const view: MigrationView = {
    id: m.id,
    kind: m.kind,
    state: m.state,
    fromVersion: m.fromVersion,
    toVersion: m.targetTable.version,
    members: m.targetTable.members.map((x) => x.id),
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
    committedAt: m.committedAt ?? null,
    reason: m.reason ?? null,
    rollbackRequested: m.rollbackRequested === true,
    held: m.heldSig !== undefined,
    partitions: { total: moves.length, done, failed, copying },
    entries,
    bytes,
    rate: Math.round(rate),
    etaSeconds: isOpen(m.state) && rate > 0 ? Math.round((left / rate) * 10) / 10 : isOpen(m.state) ? null : 0,
    nodes,
  };
  if (withDetail) {
    view.detail = moves.map((mv) => {
      const e = byPartition.get(mv.partition);
      return {
        partition: mv.partition,
        source: e?.source ?? mv.from[0] ?? '',
        targets: e?.p.targets ?? mv.receivers,
        state: e?.p.state ?? (committed ? 'done' : 'pending'),
        entriesDone: e?.p.entriesDone ?? 0,
        entriesTotal: e?.p.entriesTotal ?? 0,
        bytesDone: e?.p.bytesDone ?? 0,
        bytesTotal: e?.p.bytesTotal ?? 0,
        verified: e?.p.verified ?? false,
      };
    });
  }
  return view;
}

export class MigrationPlugin implements NodePlugin {
  readonly name = 'migration';
  private readonly opts: MigrationPluginOptions;
  private ctx: NodeContext | undefined;
  private store: MigrationStore | undefined;
  private executor: Executor | undefined;
  private coordinator: Coordinator | undefined;
  private disposers: Disposer[] = [];
  private timers: NodeJS.Timeout[] = [];
  // router hooks, rebuilt when records or the table change (the request path only reads maps)
  private extra = new Map<number, readonly NodeId[]>();
  private previous = new Map<number, readonly NodeId[]>();
  private previousUntil = 0;
  private hooksSig = '';
  // partition -> until when this node's copy may lack writes: a table change made it a holder
  // without copying the data first (see RoutingHooks.lacking); shortened once the repair is done
  private readonly uncopied = new Map<number, { from: number; version: number; since: number; until: number }>();
  // migration id -> what this node applied of its batches (verify fast path)
  private readonly taken = new Map<string, Taken>();
  // partition -> when this node first saw it unreferenced
  private unneededSince = new Map<number, number>();
  private lastReport = 0;
  private reportTimer: NodeJS.Timeout | undefined;
  // the pending report timer fires at once (a finished job's report)
  private reportingNow = false;
  private reporting: Promise<void> = Promise.resolve();
  private reported = new Map<string, string>();
  private stopping = false;
  private drained = false;
  // repair tail pass (see scheduleTails): repairs already handled, and the version each pending
  // partition is pulled from
  private tail: CatchUp | undefined;
  private tailing: Promise<void> | undefined;
  private readonly tailed = new Set<string>();
  private readonly tailFrom = new Map<number, number>();

  constructor(opts: MigrationPluginOptions = {}) {
    this.opts = opts;
  }

  async start(ctx: NodeContext): Promise<void> {
    this.ctx = ctx;
    const cfg = ctx.config;
    if (this.opts.store === undefined && (!cfg.etcd.enabled || ctx.tableStore === undefined)) return; // static: nothing ever moves
    const store =
      this.opts.store ??
      new EtcdMigrationStore({ endpoints: cfg.etcd.endpoints, dialTimeoutMs: cfg.etcd.dial_timeout, prefix: cfg.etcd.prefix, logger: ctx.logger });
    for (let attempt = 0; ; attempt++) {
      try {
        await store.start();
        break;
      } catch (e) {
        if (attempt >= 20) throw e;
        await sleep(250);
      }
    }
    this.store = store;
    const now = (): number => ctx.clock.now();
    this.executor = new Executor({
      self: ctx.id,
      local: ctx.local,
      peers: ctx.peers,
      member: (id) => ctx.member(id),
      settings: () => {
        const m = ctx.config.migration;
        return {
          batchSize: m.batch_size,
          batchBytes: m.batch_bytes,
          concurrency: m.concurrency,
          ...(m.bandwidth !== undefined ? { bandwidth: m.bandwidth } : {}),
          requestTimeoutMs: m.migration_timeout,
        };
      },
      onProgress: () => this.scheduleReport(),
      logger: ctx.logger,
      now,
      ...(this.diskSource() !== undefined ? { disk: this.diskSource()! } : {}),
    });
    this.coordinator = new Coordinator({
      tables: ctx.tables,
      store,
      placement: { replicationFactor: cfg.replication.factor, vnodesPerWeight: cfg.cache.lru_replicas, clock: ctx.clock },
      alive: (id) => ctx.member(id) !== undefined,
      now,
      logger: ctx.logger,
      event: (k, m) => ctx.event(k, m),
      // members that vanished with every copy of some partitions get one more lease to come back
      orphanGraceMs: this.opts.orphanGraceMs ?? cfg.etcd.lease_ttl,
    });
    this.tail = new CatchUp({ ctx, usable: (peer) => ctx.usable(peer), minVersion: (_group, p) => this.tailFrom.get(p) ?? 0, parallel: 2 });
    const changed = (): void => {
      for (const id of this.taken.keys()) if (!isOpen(store.get(id)?.state ?? 'done')) this.taken.delete(id);
      this.settleUncopied();
      this.scheduleTails();
      this.rebuildHooks();
      this.executor?.sync(store.list(), ctx.table());
      void ctx.tables.poke();
    };
    this.disposers.push(store.onChange(changed));
    this.disposers.push(ctx.tables.onChange((next, prev) => {
      this.noteUncopied(prev, next);
      changed();
    }));
    this.disposers.push(ctx.onMembers(changed));
    ctx.tables.setPlanner(this.coordinator);
    changed();
    const tick = setInterval(() => {
      if (ctx.election?.isLeader() && store.list().some((m) => isOpen(m.state))) void ctx.tables.poke();
      this.executor?.sync(store.list(), ctx.table());
    }, this.opts.tickMs ?? 250);
    const cleanup = setInterval(() => this.cleanup(), 1000);
    tick.unref();
    cleanup.unref();
    this.timers.push(tick, cleanup);
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    // SIGTERM: hand this node's partitions over before leaving (until node.ts calls drain() itself)
    await this.drain().catch((e: unknown) => this.ctx?.logger.warn({ err: (e as Error).message }, 'drain failed; leaving anyway'));
    this.stopping = true;
    this.ctx?.tables.setPlanner(undefined);
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.reportTimer);
    this.timers = [];
    for (const d of this.disposers) d();
    this.disposers = [];
    this.executor?.stop();
    await this.store?.stop().catch(() => undefined);
  }

  /**
   * Graceful leave: publish status `leaving` (the planner then moves this node's partitions to
   * the others with a warm handoff) and wait until a table without this node is in force,
   * bounded by `migration.drain_timeout`. Returns at once when there is nobody to hand over to.
   */
  async drain(): Promise<void> {
    const ctx = this.ctx;
    if (ctx === undefined || this.store === undefined || this.drained) return;
    this.drained = true;
    const inTable = (): boolean => ctx.table().members.some((m) => m.id === ctx.id);
    const others = (): NodeInfo[] => ctx.members().filter((m) => m.id !== ctx.id && m.status !== 'leaving');
    if (!inTable() || others().length === 0) return;
    const started = Date.now();
    const deadline = started + ctx.config.migration.drain_timeout;
    ctx.logger.info({ timeoutMs: ctx.config.migration.drain_timeout }, 'draining: handing partitions over before leaving');
    await Promise.race([ctx.registry.update({ ...ctx.info, status: 'leaving', last_seen: ctx.clock.now() }), sleep(3000)]);
    while (Date.now() < deadline && inTable() && others().length > 0) await sleep(50);
    const ok = !inTable();
    ctx.logger[ok ? 'info' : 'warn']({ ms: Date.now() - started, handedOver: ok }, ok ? 'drained: no partitions left here' : 'drain incomplete; leaving anyway');
  }

  routing(): RoutingHooks {
    return {
      extraReplicas: (p) => this.extra.get(p) ?? EMPTY,
      lacking: (p) => {
        if (this.uncopied.size === 0) return false;
        const u = this.uncopied.get(p);
        if (u === undefined) return false;
        if (Date.now() < u.until) return true;
        this.uncopied.delete(p);
        return false;
      },
      previousHolders: (p) => {
        if (this.previous.size === 0) return EMPTY;
        if (Date.now() > this.previousUntil) {
          this.previous = new Map();
          return EMPTY;
        }
        return this.previous.get(p) ?? EMPTY;
      },
    };
  }

  clusterInfo(): Record<string, unknown> {
    const ctx = this.ctx;
    const store = this.store;
    if (ctx === undefined || store === undefined) return { migrations: [] };
    const table = ctx.table();
    const alive = (id: NodeId): boolean => ctx.member(id) !== undefined;
    let pendingRepair = 0;
    const running: MigrationView[] = [];
    for (const m of store.list()) {
      if (!isOpen(m.state)) continue;
      if (m.kind === 'repair') pendingRepair += pendingPartitions(m, store, alive).length;
      running.push(viewOf(m, store.progress(m.id), false));
    }
    const base = table.assignments.filter((h) => h.length < Math.min(table.replicationFactor, table.members.length)).length;
    return {
      migrations: running,
      partitions: { owners: table.assignments.map((h) => h[0] ?? null), underReplicated: base + pendingRepair },
    };
  }

  /** GET /cluster/migrations body. */
  list(): { migrations: MigrationView[] } {
    const store = this.store;
    if (store === undefined) return { migrations: [] };
    return { migrations: store.list().map((m) => viewOf(m, store.progress(m.id), isOpen(m.state))).reverse() };
  }

  /** Ask for a cancel: work stops within one batch on every node. */
  async cancel(id: string): Promise<MigrationView> {
    return this.request(id, (m) => {
      if (!isOpen(m.state)) throw new JincacheError('BAD_REQUEST', `migration ${id} is ${m.state}; only a running migration can be cancelled`);
      return { ...m, state: 'cancelling', updatedAt: Date.now() };
    });
  }

  /**
   * Ask for a rollback: a running migration is cancelled and its partial copies discarded (the
   * previous table is still in force); a committed one is undone by a migration back to its
   * previous assignments, with the same warm handoff.
   */
  async rollback(id: string): Promise<MigrationView> {
    return this.request(id, (m) => {
      if (m.kind === 'repair') throw new JincacheError('BAD_REQUEST', `migration ${id} is a repair; there is nothing to roll back`);
      if (m.state === 'rolled_back' || m.state === 'superseded' || m.state === 'failed') throw new JincacheError('BAD_REQUEST', `migration ${id} is ${m.state}`);
      return { ...m, rollbackRequested: true, state: m.state === 'running' ? 'cancelling' : m.state, updatedAt: Date.now() };
    });
  }

  controlRoutes(): ReadonlyMap<string, ControlHandler> {
    const idOf = (body: unknown): string => {
      const id = (body as { id?: unknown } | null)?.id;
      if (typeof id !== 'string' || !isMigrationId(id)) throw new JincacheError('BAD_REQUEST', 'expected a migration id');
      return id;
    };
    return new Map<string, ControlHandler>([
      ['GET /cluster/migrations', async () => this.list()],
      ['POST /cluster/migrations/{id}/cancel', async (body) => this.cancel(idOf(body))],
      ['POST /cluster/migrations/{id}/rollback', async (body) => this.rollback(idOf(body))],
    ]);
  }

  peerRoutes(): ReadonlyMap<string, PeerRoute> {
    const route: PeerRoute = async (req, body, url) => {
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
      const op = path.slice('/_jincache/migrate/'.length);
      const json = (status: number, o: unknown): { status: number; body: string; headers: Record<string, string> } => ({ status, body: JSON.stringify(o), headers: { 'content-type': 'application/json' } });
      const ctx = this.ctx;
      // peers may send as soon as this node is registered, before its plugins started
      if (ctx === undefined || this.stopping) throw new JincacheError('PEER_UNAVAILABLE', 'migration is not running on this node yet');
      if (req.method === 'GET' && op === 'ready') return json(200, { ready: true });
      if (req.method === 'POST' && op === 'batch') {
        const taken = this.takenFor(params.get('m') ?? '');
        const out = await applyBatch(body, ctx.local, {
          maxRecords: 1_000_000,
          maxValueBytes: ctx.config.cache.max_value_bytes,
          ...(taken !== undefined ? { onApplied: (group: string, key: string, version: number) => {
            const p = ctx.partitionOf(key);
            let c = taken.sums.get(p);
            if (c === undefined) taken.sums.set(p, (c = emptyChecksum()));
            addToChecksum(c, group, key, version);
          } } : {}),
        });
        // a persistent node answers once its disk writes have caught up enough (bounded buffer)
        await ctx.storage?.persister.backpressure();
        return json(200, out);
      }
      if ((req.method === 'GET' && op === 'checksum') || (req.method === 'POST' && op === 'verify')) {
        let ps: unknown;
        let sent: unknown;
        try {
          if (op === 'verify') ({ p: ps, sums: sent } = JSON.parse(body.toString('utf8')) as { p?: unknown; sums?: unknown });
          else ps = (params.get('p') ?? '').split(',').filter(Boolean).map(Number);
        } catch {
          ps = undefined;
        }
        if (!Array.isArray(ps) || ps.some((p) => !Number.isInteger(p) || p < 0 || p >= ctx.table().partitionCount)) throw new JincacheError('BAD_REQUEST', 'p must list partition numbers');
        // what is confirmed is on disk: the source drops its copy once this answer says so
        await ctx.storage?.flush();
        const taken = op === 'verify' ? this.takenFor(params.get('m') ?? '', false) : undefined;
        return json(200, { sums: await this.checksums(ps as number[], taken, Array.isArray(sent) ? (sent as unknown[]) : undefined) });
      }
      if (req.method === 'GET' && op === 'list') return json(200, this.list());
      if (req.method === 'POST' && (op === 'cancel' || op === 'rollback')) {
        const id = params.get('id') ?? '';
        if (!isMigrationId(id)) throw new JincacheError('BAD_REQUEST', 'expected ?id=MIGRATION');
        return json(200, op === 'cancel' ? await this.cancel(id) : await this.rollback(id));
      }
      throw new JincacheError('NOT_FOUND', `no migration route ${req.method} ${path}`);
    };
    return new Map([['/_jincache/migrate/', route]]);
  }

  /**
   * On a persistent node whose memory may not hold every record of a group (the store evicted,
   * or the warm load stopped at its budget), partitions are read from disk; otherwise memory is
   * complete and faster. Undefined on memory nodes.
   */
  private diskSource(): DiskSource | undefined {
    const ctx = this.ctx;
    const storage = ctx?.storage;
    if (ctx === undefined || storage === undefined) return undefined;
    return (group, partition) => {
      const st = ctx.groups.get(group)?.store.stats();
      // a warm load cut short by the budget leaves the store (nearly) full without evictions
      if (st === undefined || (st.evictions === 0 && st.bytes < st.maxBytes * 0.9)) return undefined;
      return storage.partitionRecords(group, partition);
    };
  }

  /**
   * What this node took of a migration's batches, by partition, for the verify fast path (see
   * {@link checksums}). Undefined for an unknown migration id or, with `create` false, before its
   * first batch arrived.
   */
  private takenFor(id: string, create = true): Taken | undefined {
    if (!isMigrationId(id)) return undefined;
    let t = this.taken.get(id);
    if (t === undefined && create) this.taken.set(id, (t = { evictions: this.evictions(), sums: new Map() }));
    return t;
  }

  private evictions(): number {
    let n = 0;
    for (const g of this.ctx!.groups.values()) n += g.store.stats().evictions;
    return n;
  }

  /**
   * Sums of this node's live entries per partition, a turn of the event loop every few thousand.
   *
   * Fast path: when the sender's sums of what it sent (`sent`, in the order of `ps`) equal the
   * sums of the records this node applied from the migration's batches (`taken`, summed while
   * applying), and no store evicted anything since the first batch, everything sent is held
   * here (or was replaced by newer writes) and the partition is not walked again. Anything else
   * (a record lost to a newer one, a retried batch, an eviction, an older sender) walks the
   * partition and answers what is held.
   */
  private async checksums(ps: readonly number[], taken?: Taken, sent?: readonly unknown[]): Promise<[number, number][]> {
    const ctx = this.ctx!;
    const disk = this.diskSource();
    const fast = taken !== undefined && sent !== undefined && taken.evictions === this.evictions();
    const out: [number, number][] = [];
    let work = 0;
    for (let i = 0; i < ps.length; i++) {
      const p = ps[i]!;
      const answer = fast ? takenAnswer(sent[i], taken.sums.get(p)) : undefined;
      if (answer !== undefined) {
        out.push(answer);
        continue;
      }
      const c = await partitionChecksum(ctx.local, p, disk);
      out.push([c.count, c.sum]);
      work += c.count + 1;
      if (work >= 8192) {
        work = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
    return out;
  }

  private async request(id: string, fn: (m: Migration) => Migration): Promise<MigrationView> {
    const store = this.store;
    if (store === undefined) throw new JincacheError('NOT_IMPLEMENTED', 'migrations need etcd (static clusters never migrate)');
    const out = await store.update(id, fn);
    if (out === undefined) throw new JincacheError('NOT_FOUND', `no migration ${id}`);
    void this.ctx?.tables.poke();
    return viewOf(out, store.progress(id), false);
  }

  /**
   * A table change made this node a holder of partitions without a copy first (a crashed node's
   * removal): until the repair has copied them, and request_timeout after the change (writes
   * coordinated under the previous table are fenced by then), reads served here take the newest
   * copy among the holders. Bounded by previousHoldersMs whatever happens to the repair.
   */
  private noteUncopied(prev: PartitionTable, next: PartitionTable): void {
    const ctx = this.ctx;
    const store = this.store;
    if (ctx === undefined || store === undefined) return;
    const now = Date.now();
    for (const p of this.uncopied.keys()) if (!(next.assignments[p] ?? []).includes(ctx.id)) this.uncopied.delete(p);
    const fresh = uncopiedReceipts(prev, next, ctx.id, store.list());
    if (fresh.length === 0) return;
    const until = now + (this.opts.previousHoldersMs ?? 30_000);
    for (const p of fresh) this.uncopied.set(p, { from: prev.version, version: next.version, since: now, until });
    ctx.logger.info({ version: next.version, partitions: fresh.length }, 'made a holder before a copy: reading the newest copy among holders until the repair is done');
  }

  private settleUncopied(): void {
    const store = this.store;
    const ctx = this.ctx;
    if (this.uncopied.size === 0 || store === undefined || ctx === undefined) return;
    const records = store.list();
    let repaired = 0;
    for (const m of records) if (m.kind === 'repair' && m.state === 'done') repaired = Math.max(repaired, m.targetTable.version);
    const timeout = ctx.config.fault_tolerance.request_timeout;
    const now = Date.now();
    for (const [p, u] of this.uncopied) {
      // the record of a migration that copied first arrived after the table: nothing lacks
      if (preparedFrom(records, u.from)) this.uncopied.delete(p);
      else if (u.version <= repaired) u.until = Math.min(u.until, Math.max(now, u.since + timeout));
    }
  }

  /**
   * Repair tail pass. A repair starts after the table without the crashed node is in force, so
   * writes coordinated under the new table reach the new holder by replication. But a write
   * coordinated under the OLD table (by a node whose table had not changed yet, or still in
   * flight when the table changed) goes to the old holders only; when it lands at a holder
   * after the repair copy read that key, the new holder never gets it and nothing repairs it.
   *
   * Such a write started before its coordinator saw the new table (at most a watch delay after
   * the repair was created) and is never applied after its fence (at most request_timeout after
   * it started). So once a repair is done and request_timeout (plus a margin) has passed since
   * it was created, this node pulls from the other holders of each partition it received the
   * records with a version from `createdAt - request_timeout - margin` on (catch-up pages, by
   * version watermark, merged last-writer-wins): only the writes around the repair, bounded.
   * A second pass follows `tailRepeatMs` later.
   */
  private scheduleTails(): void {
    const ctx = this.ctx;
    const store = this.store;
    if (ctx === undefined || store === undefined || this.stopping) return;
    const now = Date.now();
    const known = new Set<string>();
    for (const m of store.list()) {
      known.add(m.id);
      if (m.kind !== 'repair' || m.state !== 'done' || this.tailed.has(m.id)) continue;
      this.tailed.add(m.id);
      // an old record seen at start: the writes around it settled long ago
      if (now - m.updatedAt > 60_000) continue;
      const mine = copyMoves(m.fromTable, m.targetTable)
        .filter((mv) => mv.receivers.includes(ctx.id))
        .map((mv) => mv.partition);
      if (mine.length === 0) continue;
      const timeout = ctx.config.fault_tolerance.request_timeout;
      const margin = this.opts.tailMarginMs ?? 2000;
      const from = Math.max(0, m.createdAt - timeout - margin) * LOGICAL_BITS;
      const wait = Math.max(200, m.createdAt + timeout + 1000 - now);
      // a second, later pass for a coordinator whose table lagged longer (a node that was
      // paused, or whose etcd watch reconnected): a write it coordinated afterwards still has a
      // version above the watermark
      for (const at of [wait, wait + (this.opts.tailRepeatMs ?? 10_000)]) {
        const timer = setTimeout(() => {
          this.timers = this.timers.filter((t) => t !== timer);
          if (this.stopping) return;
          for (const p of mine) this.tailFrom.set(p, Math.min(this.tailFrom.get(p) ?? from, from));
          this.tail?.mark(mine);
          ctx.logger.info({ migration: m.id, partitions: mine.length }, 'repair tail: pulling writes coordinated under the previous table');
          this.tailing ??= this.runTails().finally(() => (this.tailing = undefined));
        }, at);
        timer.unref();
        this.timers.push(timer);
      }
    }
    for (const id of this.tailed) if (!known.has(id)) this.tailed.delete(id);
  }

  private async runTails(): Promise<void> {
    const tail = this.tail;
    const ctx = this.ctx;
    if (tail === undefined || ctx === undefined) return;
    let records = 0;
    let applied = 0;
    let failed = 0;
    // partitions marked while a run was going are caught by the next round
    while (tail.pending() > 0 && !this.stopping) {
      const r = await tail.run();
      records += r.records;
      applied += r.applied;
      failed += r.failed.length;
    }
    this.tailFrom.clear();
    ctx.logger.info({ records, applied, failed }, 'repair tail done');
    if (applied > 0) ctx.event('migration', `repair tail: ${applied} writes made under the previous table caught up`);
  }

  /** Rebuild the router's maps from the open records and the table in force. */
  private rebuildHooks(): void {
    const ctx = this.ctx;
    const store = this.store;
    if (ctx === undefined || store === undefined) return;
    const inForce = ctx.table();
    // progress reports change the store on every node several times a second; the maps only
    // depend on the records' states and the table in force
    const now = Date.now();
    const sig = `${inForce.version}|${Math.floor(now / 1000)}|${store.list().map((m) => `${m.id}:${m.state}:${m.committedAt ?? ''}`).join(',')}`;
    if (sig === this.hooksSig) return;
    this.hooksSig = sig;
    const extra = new Map<number, NodeId[]>();
    const previous = new Map<number, NodeId[]>();
    const add = (map: Map<number, NodeId[]>, p: number, ids: readonly NodeId[]): void => {
      if (ids.length === 0) return;
      const cur = map.get(p);
      map.set(p, cur === undefined ? [...ids] : [...new Set([...cur, ...ids])]);
    };
    const window = this.opts.previousHoldersMs ?? 30_000;
    let until = 0;
    for (const m of store.list()) {
      const preparing = m.state === 'running' && m.kind !== 'repair' && m.fromVersion === inForce.version;
      const repairing = m.state === 'running' && m.kind === 'repair';
      const recent = m.state === 'done' && m.committedAt !== undefined && now - m.committedAt < window && m.targetTable.version === inForce.version;
      if (!preparing && !repairing && !recent) continue;
      for (const mv of copyMoves(m.fromTable, m.targetTable)) {
        // while preparing, writes at the owner also go to the receivers
        if (preparing) add(extra, mv.partition, mv.receivers);
        // after a commit (or during a repair) a miss asks the holders that had the data
        else add(previous, mv.partition, mv.from.filter((id) => !(m.targetTable.assignments[mv.partition] ?? []).includes(id) || repairing));
      }
      if (recent) until = Math.max(until, m.committedAt! + window);
      if (repairing) until = Math.max(until, now + window);
    }
    this.extra = extra;
    this.previous = previous;
    this.previousUntil = until;
  }

  /**
   * Copy-then-delete: drop partitions this node holds data for but that nobody assigns to it any
   * more (not in the table in force, not in an open migration, not a recent previous holder),
   * after a grace period so late forwarded reads still find them.
   */
  private cleanup(): void {
    const ctx = this.ctx;
    const store = this.store;
    if (ctx === undefined || store === undefined || this.stopping) return;
    const table = ctx.table();
    if (table.members.length === 0) return;
    const needed = new Uint8Array(table.partitionCount);
    const mark = (t: PartitionTable): void => t.assignments.forEach((h, p) => {
      if (h.includes(ctx.id)) needed[p] = 1;
    });
    mark(table);
    const now = Date.now();
    for (const m of store.list()) {
      if (isOpen(m.state)) {
        mark(m.fromTable);
        mark(m.targetTable);
      } else if (m.state === 'done' && m.committedAt !== undefined && now - m.committedAt < (this.opts.previousHoldersMs ?? 30_000)) {
        mark(m.fromTable);
      }
    }
    const grace = this.opts.dropGraceMs ?? 10_000;
    const seen = new Set<number>();
    let dropped = 0;
    for (const g of ctx.groups.values()) {
      for (const p of g.store.partitions()) {
        if (needed[p] === 1) continue;
        seen.add(p);
        const since = this.unneededSince.get(p);
        if (since === undefined) this.unneededSince.set(p, now);
        else if (now - since >= grace) dropped += g.store.dropPartition(p);
      }
    }
    for (const p of this.unneededSince.keys()) if (!seen.has(p)) this.unneededSince.delete(p);
    if (dropped > 0) ctx.logger.info({ entries: dropped }, 'dropped partitions this node no longer holds');
  }

  /** Write changed progress to etcd, at most once per reportIntervalMs. */
  private scheduleReport(): void {
    if (this.stopping) return;
    // a job that just finished reports at once, even when a throttled report is already waiting
    // (the leader commits as soon as the last source reports); this adds at most one write per
    // job to the ~2 writes/s budget
    const finishing = this.executor?.active().some((j) => j.finished && !this.reported.has(`${j.id}#final`)) ?? false;
    if (this.reportTimer !== undefined) {
      if (!finishing || this.reportingNow) return;
      clearTimeout(this.reportTimer);
    }
    this.reportingNow = finishing;
    const gap = this.opts.reportIntervalMs ?? 500;
    const wait = finishing ? 0 : Math.max(0, this.lastReport + gap - Date.now());
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      this.reportingNow = false;
      this.lastReport = Date.now();
      // one report at a time: two puts of the same key in flight could land out of order and
      // leave an older progress (not done) in etcd after the final one
      this.reporting = this.reporting.then(() => this.report()).catch(() => undefined);
    }, wait);
  }

  private async report(): Promise<void> {
    const store = this.store;
    if (store === undefined || this.executor === undefined) return;
    for (const job of this.executor.active()) {
      if (job.progress.partitions.length === 0 && this.reported.has(job.id)) continue;
      // the time and rate change on every call: compare the partition states only
      const sig = JSON.stringify(job.progress.partitions.map((p) => [p.partition, p.state, p.entriesDone]));
      if (this.reported.get(job.id) === sig) continue;
      try {
        await store.putProgress(job.id, job.progress);
        this.reported.set(job.id, sig);
        if (job.finished) this.reported.set(`${job.id}#final`, sig);
      } catch (e) {
        this.ctx?.logger.warn({ migration: job.id, err: (e as Error).message }, 'progress report failed; will retry');
        this.scheduleReport();
      }
    }
  }
}
