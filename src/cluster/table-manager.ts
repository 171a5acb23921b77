/**
 * Keeps this node's copy of the partition table in step with the membership.
 *
 * - Static clusters (no TableStore): every node derives the table from the sorted membership
 *   (createTable once, then nextTable on each change), so all nodes agree without talking.
 * - etcd clusters: the table lives in the TableStore. Only the elected leader writes the next
 *   version (minimal change from the stored one) when membership changes; every node applies
 *   whatever version the store announces, newest first.
 * - With a {@link TablePlanner} set (the migration plugin), the leader no longer writes a changed
 *   table itself: it hands the membership difference to the planner, which copies data to the
 *   new holders first and commits the table afterwards (warm handoff), or commits at once and
 *   repairs afterwards when a node crashed. The first table (nothing stored yet) is still
 *   written here: no node holds data then.
 */
import type { PartitionTable, PlacementOptions } from '../core/placement/table.ts';
import { createTable, nextTable } from '../core/placement/table.ts';
import type { Member, NodeInfo } from '../core/types.ts';
import type { Disposer, Election, Registry, TableStore } from '../discovery/registry.ts';
import type { RebalanceMeta } from './migration/record.ts';

export interface TableManagerOptions {
  registry: Registry;
  placement: PlacementOptions;
  /** Shared table storage (etcd). Unset = static derivation. */
  store?: TableStore;
  /** Who may write the table. Required with a store. */
  election?: Election;
  logger?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /**
   * How often the leader re-checks that the stored table matches the membership, so a write that
   * failed (etcd unreachable, lost races) is retried without waiting for the next change.
   * Default 1000 ms.
   */
  reconcileIntervalMs?: number;
}

export type TableListener = (next: PartitionTable, prev: PartitionTable) => void;

/**
 * Decides how a membership change becomes a table change (leader only). `reconcile` is called,
 * serialised with every other table write, whenever the registered membership may differ from
 * the table in force, and on every reconcile tick.
 */
export interface TablePlanner {
  reconcile(inForce: PartitionTable): Promise<void>;
  /** Move data for `target` (the next version of `inForce`) before committing it; `meta` says which plan it carries out. */
  propose?(inForce: PartitionTable, target: PartitionTable, meta?: RebalanceMeta): Promise<boolean>;
}

export class TableManager {
  private readonly opts: TableManagerOptions;
  private current: PartitionTable;
  private readonly listeners = new Set<TableListener>();
  private disposers: Disposer[] = [];
  private reconcileTimer: NodeJS.Timeout | undefined;
  // serialises leader writes so two membership events never race each other's CAS
  private writing: Promise<void> = Promise.resolve();
  private planner: TablePlanner | undefined;

  constructor(opts: TableManagerOptions) {
    this.opts = opts;
    this.current = createTable([], opts.placement);
  }

  table(): PartitionTable {
    return this.current;
  }

  onChange(listener: TableListener): Disposer {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Call after the registry started. Resolves once a table with this node's view is in force. */
  async start(): Promise<void> {
    const { registry, store } = this.opts;
    if (store === undefined) {
      this.install(createTable(membersOf(registry.members()), this.opts.placement));
      this.disposers.push(registry.onChange((members) => this.install(nextTable(this.current, membersOf(members), this.opts.placement))));
      return;
    }
    const stored = await store.load();
    if (stored !== null) this.install(stored);
    this.disposers.push(store.onChange((t) => this.install(t)));
    this.disposers.push(registry.onChange(() => this.maybeWrite()));
    this.disposers.push(this.opts.election?.onChange(() => this.maybeWrite()) ?? (() => {}));
    await this.maybeWrite();
    this.reconcileTimer = setInterval(() => void this.maybeWrite(), this.opts.reconcileIntervalMs ?? 1000);
    this.reconcileTimer.unref();
  }

  stop(): void {
    clearInterval(this.reconcileTimer);
    for (const d of this.disposers) d();
    this.disposers = [];
  }

  /** Hand membership changes to `planner` (undefined: write the next table directly again). */
  setPlanner(planner: TablePlanner | undefined): void {
    this.planner = planner;
    if (planner !== undefined) void this.maybeWrite();
  }

  /** Ask the leader to look at the membership again now (e.g. a migration record changed). */
  poke(): Promise<void> {
    return this.maybeWrite();
  }

  /**
   * As leader: put `next` in force if the stored version is still `expectedVersion`.
   * Returns false when somebody else wrote first (or there is no store).
   */
  async commit(expectedVersion: number, next: PartitionTable): Promise<boolean> {
    const store = this.opts.store;
    if (store === undefined) return false;
    if (!(await store.compareAndSwap(expectedVersion, next, this.guard()))) return false;
    this.opts.logger?.info({ version: next.version, members: next.members.map((m) => m.id) }, 'wrote partition table');
    this.install(next);
    return true;
  }

  /**
   * As leader: put `next` (a table the rebalancer built from the one in force) in force. With a
   * planner that moves data it becomes a migration that commits once the new holders hold their
   * partitions (warm handoff); without one it is written at once. Returns false when nothing was
   * accepted (not the leader, the table moved on, another migration is open).
   */
  propose(next: PartitionTable, meta?: RebalanceMeta): Promise<boolean> {
    let accepted = false;
    this.writing = this.writing.then(async () => {
      if (this.opts.election?.isLeader() !== true) return;
      const inForce = this.current;
      if (next.version !== inForce.version + 1) return;
      const planner = this.planner;
      accepted = planner?.propose !== undefined ? await planner.propose(inForce, next, meta) : await this.commit(inForce.version, next);
    }).catch((e: unknown) => this.opts.logger?.warn({ err: e }, 'proposed table not accepted'));
    return this.writing.then(() => accepted);
  }

  /** Registered members that should take partitions, with the weights the table in force gives them. */
  desiredMembers(): Member[] {
    return membersOf(this.opts.registry.members()).map((m) => ({
      ...m,
      weight: this.current.members.find((s) => s.id === m.id)?.weight ?? m.weight,
    }));
  }

  /**
   * Resolves true once the table in force has at least `version`, false after `timeoutMs`
   * (a peer stamped a request with a table this node has not received yet: its watch lags).
   */
  reached(version: number, timeoutMs: number): Promise<boolean> {
    if (this.current.version >= version) return Promise.resolve(true);
    if (timeoutMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(ok);
      };
      const listener: TableListener = (next) => {
        if (next.version >= version) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.listeners.add(listener);
    });
  }

  /** The leader's key that guards its table writes (undefined: no election, or it exposes none). */
  private guard(): string | undefined {
    return this.opts.election?.leaderKey?.() ?? undefined;
  }

  /** Apply a table if it is newer than the one in force. */
  install(next: PartitionTable): void {
    if (next.version <= this.current.version && this.current.members.length > 0) return;
    const prev = this.current;
    this.current = next;
    for (const l of this.listeners) l(next, prev);
  }

  /** As leader, write the next table version when the membership differs from the stored table. */
  private maybeWrite(): Promise<void> {
    const { store, election, registry } = this.opts;
    if (store === undefined || election === undefined) return Promise.resolve();
    this.writing = this.writing.then(async () => {
      if (!election.isLeader()) return;
      const planner = this.planner;
      if (planner !== undefined && this.current.members.length > 0) {
        await planner.reconcile(this.current);
        return;
      }
      // the common case on every reconcile tick: the table in force already has these members
      const ids = membersOf(registry.members()).map((m) => `${m.id}@${m.zone ?? ''}`).join(',');
      if (this.current.members.length > 0 && this.current.members.map((m) => `${m.id}@${m.zone ?? ''}`).join(',') === ids) return;
      for (let attempt = 0; attempt < 5; attempt++) {
        const stored = await store.load();
        // weights live in the table (the rebalancer changes them there); new members bring their own
        const members = membersOf(registry.members()).map((m) => ({
          ...m,
          weight: stored?.members.find((s) => s.id === m.id)?.weight ?? m.weight,
        }));
        if (stored !== null && sameMembers(stored.members, members)) {
          this.install(stored);
          return;
        }
        const next = stored === null ? createTable(members, this.opts.placement) : nextTable(stored, members, this.opts.placement);
        if (await store.compareAndSwap(stored?.version ?? 0, next, this.guard())) {
          this.opts.logger?.info({ version: next.version, members: members.map((m) => m.id) }, 'wrote partition table');
          this.install(next);
          return;
        }
      }
      this.opts.logger?.warn({}, 'partition table write lost the race five times; waiting for the next change');
    }).catch((e: unknown) => this.opts.logger?.warn({ err: e }, 'partition table write failed'));
    return this.writing;
  }
}

/** Members that take partitions: every registered node not on its way out. */
export function membersOf(nodes: readonly NodeInfo[]): Member[] {
  return nodes
    .filter((n) => n.status !== 'leaving')
    .map((n): Member => (n.zone !== undefined ? { id: n.id, weight: n.weight ?? 1, zone: n.zone } : { id: n.id, weight: n.weight ?? 1 }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function sameMembers(a: readonly Member[], b: readonly Member[]): boolean {
  return a.length === b.length && a.every((m, i) => m.id === b[i]!.id && m.weight === b[i]!.weight && m.zone === b[i]!.zone);
}
