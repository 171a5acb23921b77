/**
 * Data that moves between nodes, as one component (etcd clusters only: a static cluster never
 * changes membership, so nothing migrates): the records in etcd (store.ts), the leader's
 * coordinator as the TableManager's planner (coordinator.ts), the sending jobs (executor.ts) and
 * their progress reports (reporter.ts), the receiving side (receiver.ts), what the request path
 * must know of moving data (moves.ts), the repair tail pass (tail.ts), the cleanup of partitions
 * this node no longer holds (cleanup.ts), the SIGTERM drain, and the operator's list, cancel
 * and rollback.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Group } from '../../cache/group.ts';
import { JincacheError } from '../../core/errors.ts';
import type { PlacementOptions } from '../../core/placement/table.ts';
import type { Clock, NodeId, NodeInfo } from '../../core/types.ts';
import type { Disposer, Election } from '../../discovery/registry.ts';
import type { Logger } from '../../observe/logger.ts';
import type { PeerCaller } from '../../peer/client.ts';
import type { PeerServer } from '../../peer/server.ts';
import type { NodeStorage } from '../../storage/node-storage.ts';
import { CatchUp } from '../catchup.ts';
import type { ClusterEvents } from '../events.ts';
import type { LocalData } from '../local-data.ts';
import type { Members } from '../membership.ts';
import type { Peers } from '../peers.ts';
import type { TableManager } from '../table-manager.ts';
import { PartitionCleanup } from './cleanup.ts';
import { Coordinator, pendingPartitions } from './coordinator.ts';
import { Executor, type ExecutorSettings } from './executor.ts';
import { MoveState } from './moves.ts';
import { MigrationReceiver } from './receiver.ts';
import { isOpen, type Migration } from './record.ts';
import { ProgressReporter } from './reporter.ts';
import type { MigrationStore } from './store.ts';
import { RepairTail } from './tail.ts';
import { describeMigration, viewOf, type MigrationView } from './view.ts';

export interface MigrationsOptions {
  self: NodeId;
  /** What this node publishes (status `leaving` while it drains). */
  info: NodeInfo;
  store: MigrationStore;
  tables: TableManager;
  election: Election;
  members: Members & { update(info: NodeInfo): Promise<void> };
  local: LocalData;
  groups: ReadonlyMap<string, Group>;
  storage?: NodeStorage;
  peers: Peers;
  client: PeerCaller;
  server: PeerServer;
  usable(id: NodeId): boolean;
  partitionOf(key: string): number;
  placement: Omit<PlacementOptions, 'partitionCount'>;
  /** Settings read when each job starts (config migration.*). */
  settings(): ExecutorSettings;
  requestTimeoutMs(): number;
  maxValueBytes(): number;
  /** The node's HeldClock, held while the receiver applies a slice of a batch. Default: none. */
  clockHold?: { hold(): void; release(): void };
  /** How long a leaving node waits for its partitions to be handed over (migration.drain_timeout). */
  drainTimeoutMs: number;
  /** How long the leader waits for missing members that hold every copy of some partitions (the lease TTL). */
  orphanGraceMs: number;
  clock: Clock;
  logger: Logger;
  events: ClusterEvents;
  /** Timings (tests). */
  reportIntervalMs?: number;
  dropGraceMs?: number;
  previousHoldersMs?: number;
  tickMs?: number;
  tailMarginMs?: number;
  tailRepeatMs?: number;
}

export class Migrations {
  /** What the request path reads (extra replicas, previous holders, uncopied partitions). */
  readonly moves: MoveState;
  private readonly opts: MigrationsOptions;
  private readonly store: MigrationStore;
  private readonly executor: Executor;
  private readonly coordinator: Coordinator;
  private readonly receiver: MigrationReceiver;
  private readonly reporter: ProgressReporter;
  private readonly tail: RepairTail;
  private readonly cleanup: PartitionCleanup;
  private disposers: Disposer[] = [];
  private tick: NodeJS.Timeout | undefined;
  private started = false;
  private stopping = false;
  private drained = false;
  /** State of each record at the last look (noteRecords); undefined before the first. */
  private seenStates: Map<string, string> | undefined;

  constructor(opts: MigrationsOptions) {
    this.opts = opts;
    const { self, store, logger } = opts;
    this.store = store;
    const records = (): readonly Migration[] => store.list();
    this.moves = new MoveState({ self, records, table: () => opts.tables.table(), ...(opts.previousHoldersMs !== undefined ? { previousHoldersMs: opts.previousHoldersMs } : {}), logger });
    this.receiver = new MigrationReceiver({
      local: opts.local,
      groups: opts.groups,
      partitionOf: opts.partitionOf,
      partitionCount: () => opts.tables.table().partitionCount,
      maxValueBytes: opts.maxValueBytes,
      ...(opts.storage !== undefined ? { storage: opts.storage } : {}),
      accepting: () => this.started && !this.stopping,
      server: opts.server,
      ...(opts.clockHold !== undefined ? { clockHold: opts.clockHold } : {}),
    });
    const disk = this.receiver.disk();
    this.executor = new Executor({
      self,
      local: opts.local,
      client: opts.client,
      member: (id) => opts.members.member(id),
      settings: opts.settings,
      onProgress: () => this.reporter.schedule(),
      logger,
      now: () => opts.clock.now(),
      ...(disk !== undefined ? { disk } : {}),
    });
    this.reporter = new ProgressReporter({ executor: this.executor, store, ...(opts.reportIntervalMs !== undefined ? { intervalMs: opts.reportIntervalMs } : {}), logger });
    this.coordinator = new Coordinator({
      tables: opts.tables,
      store,
      placement: opts.placement,
      alive: (id) => opts.members.member(id) !== undefined,
      now: () => opts.clock.now(),
      logger,
      // the planner's own lines (a removal after a crash, a wait for missing members); the
      // records' state changes are typed 'migration' events on every node (noteRecords)
      event: (_kind, message) => opts.events.note('migration', message),
      orphanGraceMs: opts.orphanGraceMs,
    });
    const tailCatchUp = new CatchUp({
      self,
      tables: opts.tables,
      members: opts.members,
      groups: () => opts.groups.keys(),
      local: opts.local,
      peers: opts.peers,
      requestTimeoutMs: opts.requestTimeoutMs,
      usable: opts.usable,
      minVersion: (_group, p) => this.tail.minVersion(p),
      parallel: 2,
      logger,
    });
    this.tail = new RepairTail({ self, catchUp: tailCatchUp, requestTimeoutMs: opts.requestTimeoutMs, onPassDone: (ps) => this.moves.tailDone(ps), ...(opts.tailMarginMs !== undefined ? { marginMs: opts.tailMarginMs } : {}), ...(opts.tailRepeatMs !== undefined ? { repeatMs: opts.tailRepeatMs } : {}), logger, events: opts.events });
    this.cleanup = new PartitionCleanup({ self, table: () => opts.tables.table(), records, groups: opts.groups, ...(opts.dropGraceMs !== undefined ? { graceMs: opts.dropGraceMs } : {}), ...(opts.previousHoldersMs !== undefined ? { previousHoldersMs: opts.previousHoldersMs } : {}), logger });
  }

  async start(): Promise<void> {
    const { store, tables, election } = this.opts;
    for (let attempt = 0; ; attempt++) {
      try {
        await store.start();
        break;
      } catch (e) {
        if (attempt >= 20) throw e;
        await sleep(250);
      }
    }
    const changed = (): void => {
      this.noteRecords();
      this.receiver.forget((id) => isOpen(store.get(id)?.state ?? 'done'));
      this.tail.schedule(store.list());
      this.moves.refresh();
      this.executor.sync(store.list(), tables.table());
      void tables.poke();
    };
    this.disposers.push(store.onChange(changed));
    this.disposers.push(
      tables.onChange((next, prev) => {
        this.moves.tableChanged(prev, next);
        changed();
      }),
    );
    this.disposers.push(this.opts.members.onChange(changed));
    tables.setPlanner(this.coordinator);
    this.started = true;
    changed();
    this.tick = setInterval(() => {
      if (election.isLeader() && store.list().some((m) => isOpen(m.state))) void tables.poke();
      this.executor.sync(store.list(), tables.table());
    }, this.opts.tickMs ?? 250);
    this.tick.unref();
    this.cleanup.start();
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.opts.tables.setPlanner(undefined);
    clearInterval(this.tick);
    this.cleanup.stop();
    this.tail.stop();
    this.reporter.stop();
    for (const d of this.disposers) d();
    this.disposers = [];
    this.executor.stop();
    await this.store.stop().catch(() => undefined);
  }

  /**
   * Graceful leave: publish status `leaving` (the planner then moves this node's partitions to
   * the others with a warm handoff) and wait until a table without this node is in force,
   * bounded by `migration.drain_timeout`. Returns at once when there is nobody to hand over to.
   */
  async drain(): Promise<void> {
    const { self, tables, members, logger, drainTimeoutMs } = this.opts;
    if (!this.started || this.drained) return;
    this.drained = true;
    const inTable = (): boolean => tables.table().members.some((m) => m.id === self);
    const others = (): NodeInfo[] => members.list().filter((m) => m.id !== self && m.status !== 'leaving');
    if (!inTable() || others().length === 0) return;
    const started = Date.now();
    const deadline = started + drainTimeoutMs;
    logger.info({ timeoutMs: drainTimeoutMs }, 'draining: handing partitions over before leaving');
    await Promise.race([members.update({ ...this.opts.info, status: 'leaving', last_seen: this.opts.clock.now() }), sleep(3000)]);
    while (Date.now() < deadline && inTable() && others().length > 0) await sleep(50);
    const ok = !inTable();
    if (!ok && others().length === 0) {
      // the whole cluster is stopping (every other node is leaving too): nobody to hand over to
      logger.info({ ms: Date.now() - started }, 'every other node is leaving too: nothing to hand over to');
      return;
    }
    logger[ok ? 'info' : 'warn']({ ms: Date.now() - started, handedOver: ok }, ok ? 'drained: no partitions left here' : 'drain incomplete; leaving anyway');
  }

  /**
   * A typed 'migration' event for every record that appeared or changed state since the last
   * look (every node follows the records, so every node emits them). Records that had already
   * ended when this node started are history, not news.
   */
  private noteRecords(): void {
    const first = this.seenStates === undefined;
    const seen = (this.seenStates ??= new Map());
    const present = new Set<string>();
    for (const m of this.store.list()) {
      present.add(m.id);
      if (seen.get(m.id) === m.state) continue;
      seen.set(m.id, m.state);
      if (first && !isOpen(m.state)) continue;
      const what = describeMigration(m);
      const plan = m.rebalance;
      if (m.kind === 'rebalance' && m.state === 'running' && plan !== undefined) {
        this.opts.events.emit(
          'rebalance',
          { strategy: plan.strategy, moves: plan.moves, automatic: plan.automatic, version: m.targetTable.version },
          `${plan.automatic ? 'automatic' : 'requested'} ${plan.strategy} rebalance: ${plan.moves} owners move (table v${m.targetTable.version} once copied)`,
        );
      }
      const view = viewOf(m, this.store.progress(m.id), false);
      const detail =
        m.state === 'running'
          ? `started: ${view.partitions.total} partitions to copy`
          : m.state === 'done'
            ? `done: ${view.entries.done} entries copied${m.kind === 'repair' ? '' : `, table v${m.targetTable.version} in force`}`
            : `${m.state.replace('_', ' ')}${m.reason !== undefined ? ` (${m.reason})` : ''}`;
      this.opts.events.emit(
        'migration',
        { id: m.id, kind: m.kind, state: m.state, change: what.change, fromVersion: m.fromVersion, toVersion: m.targetTable.version },
        `migration ${m.id} (${what.label}) ${detail}`,
      );
    }
    for (const id of [...seen.keys()]) if (!present.has(id)) seen.delete(id);
  }

  /** GET /cluster: the running migrations and the partitions still short of copies. */
  info(): { migrations: MigrationView[]; underReplicatedPending: number; uncopied: number; moving: number[] } {
    const alive = (id: NodeId): boolean => this.opts.members.member(id) !== undefined;
    let pending = 0;
    const running: MigrationView[] = [];
    const moving = new Set<number>();
    for (const m of this.store.list()) {
      if (!isOpen(m.state)) continue;
      const left = pendingPartitions(m, this.store, alive);
      if (m.kind === 'repair') pending += left.length;
      for (const p of left) moving.add(p);
      running.push(viewOf(m, this.store.progress(m.id), false));
    }
    return { migrations: running, underReplicatedPending: pending, uncopied: this.moves.uncopiedCount(), moving: [...moving].sort((a, b) => a - b) };
  }

  /** GET /cluster/migrations body: every record, newest first, open ones with per-partition detail. */
  list(): { migrations: MigrationView[] } {
    return { migrations: this.store.list().map((m) => viewOf(m, this.store.progress(m.id), isOpen(m.state))).reverse() };
  }

  /** Progress of this node's running jobs (GET /metrics). */
  jobs(): { entriesDone: number; entriesTotal: number; bytesDone: number; bytesTotal: number }[] {
    return this.executor.active().flatMap((j) => j.progress.partitions.map((p) => ({ entriesDone: p.entriesDone, entriesTotal: p.entriesTotal, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal })));
  }

  /** Ask for a cancel: work stops within one batch on every node. */
  cancel(id: string): Promise<MigrationView> {
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
  rollback(id: string): Promise<MigrationView> {
    return this.request(id, (m) => {
      if (m.kind === 'repair') throw new JincacheError('BAD_REQUEST', `migration ${id} is a repair; there is nothing to roll back`);
      if (m.state === 'rolled_back' || m.state === 'superseded' || m.state === 'failed') throw new JincacheError('BAD_REQUEST', `migration ${id} is ${m.state}`);
      return { ...m, rollbackRequested: true, state: m.state === 'running' ? 'cancelling' : m.state, updatedAt: Date.now() };
    });
  }

  private async request(id: string, fn: (m: Migration) => Migration): Promise<MigrationView> {
    const out = await this.store.update(id, fn);
    if (out === undefined) throw new JincacheError('NOT_FOUND', `no migration ${id}`);
    void this.opts.tables.poke();
    return viewOf(out, this.store.progress(id), false);
  }
}
