/**
 * Keeps this node's copy of the partition table in step with the membership.
 *
 * - Static clusters (no TableStore): every node derives the table from the sorted membership
 *   (createTable once, then nextTable on each change), so all nodes agree without talking.
 * - etcd clusters: the table lives in the TableStore. Only the elected leader writes the next
 *   version (minimal change from the stored one) when membership changes; every node applies
 *   whatever version the store announces, newest first.
 */
import type { PartitionTable, PlacementOptions } from '../core/placement/table.ts';
import { createTable, nextTable } from '../core/placement/table.ts';
import type { Member, NodeInfo } from '../core/types.ts';
import type { Disposer, Election, Registry, TableStore } from '../discovery/registry.ts';

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

export class TableManager {
  private readonly opts: TableManagerOptions;
  private current: PartitionTable;
  private readonly listeners = new Set<TableListener>();
  private disposers: Disposer[] = [];
  private reconcileTimer: NodeJS.Timeout | undefined;
  // serialises leader writes so two membership events never race each other's CAS
  private writing: Promise<void> = Promise.resolve();

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
      // the common case on every reconcile tick: the table in force already has these members
      const ids = membersOf(registry.members()).map((m) => m.id).join(',');
      if (this.current.members.length > 0 && this.current.members.map((m) => m.id).join(',') === ids) return;
      for (let attempt = 0; attempt < 5; attempt++) {
        const stored = await store.load();
        // weights live in the table (the rebalancer changes them there); new members bring their own
        const members = membersOf(registry.members()).map((m) => ({
          id: m.id,
          weight: stored?.members.find((s) => s.id === m.id)?.weight ?? m.weight,
        }));
        if (stored !== null && sameMembers(stored.members, members)) {
          this.install(stored);
          return;
        }
        const next = stored === null ? createTable(members, this.opts.placement) : nextTable(stored, members, this.opts.placement);
        if (await store.compareAndSwap(stored?.version ?? 0, next)) {
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
    .map((n) => ({ id: n.id, weight: n.weight ?? 1 }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function sameMembers(a: readonly Member[], b: readonly Member[]): boolean {
  return a.length === b.length && a.every((m, i) => m.id === b[i]!.id && m.weight === b[i]!.weight);
}
