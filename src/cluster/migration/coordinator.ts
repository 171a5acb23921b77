/**
 * The leader's half of migrations: turns membership changes into migration records and commits
 * tables. Runs as the TableManager's planner, so it is serialised with every other table write.
 *
 * One pass of {@link Coordinator.reconcile}:
 *  1. Crash: members of the table in force that are no longer registered are removed at once
 *     (nextTable promotes their backups, so reads keep working) and a `repair` record asks the
 *     surviving holders to re-replicate ("commit then repair"). Unless the removal would leave
 *     some partition with no holder at all: every copy of it is on the missing members, which
 *     is more often a stall or an etcd hiccup that expired several leases at once than as many
 *     crashes. The removal then waits `orphanGraceMs` for them to register again (their data
 *     comes back with them); after that they are removed and those partitions start empty.
 *  2. Open records: finalise cancels, supersede prepares planned against an older table or for
 *     a membership that is no longer wanted, commit a prepare whose every moving partition is
 *     reported done (CAS: version + 1), close repairs that finished.
 *  3. Rollback requests on committed migrations become a `rollback` prepare.
 *  4. Join, graceful leave, weight change: when the registered members differ from the table in
 *     force and nothing is being prepared, write a `prepare` record with the target table; the
 *     table in force stays as it is until the copy is done ("prepare then commit").
 * Like Olric's balancer, work planned against an older table stops the moment a newer one exists.
 */
import { encodeTable, decodeTable, nextTable, type PartitionTable, type PlacementOptions } from '../../core/placement/table.ts';
import type { Member, NodeId } from '../../core/types.ts';
import type { TableManager, TablePlanner } from '../table-manager.ts';
import { copyMoves, orphanedPartitions, sourceOf } from './plan.ts';
import { isOpen, memberSig, type Migration, type MigrationDoc, type MigrationKind, type RebalanceMeta } from './record.ts';
import type { MigrationStore } from './store.ts';

export interface CoordinatorOptions {
  tables: TableManager;
  store: MigrationStore;
  placement: Omit<PlacementOptions, 'partitionCount'>;
  /** Is this node registered (alive) now? */
  alive(id: NodeId): boolean;
  now(): number;
  logger: { info(o: object, m: string): void; warn(o: object, m: string): void };
  event(kind: string, message: string): void;
  /** Finished records kept in etcd for inspection and rollback. Default 20. */
  keepFinished?: number;
  /** How long a removal that would leave partitions without any holder waits for the missing members. Default 0 (no wait). */
  orphanGraceMs?: number;
}

let seq = 0;

export function newMigrationId(now: number, fromVersion: number): string {
  seq = (seq + 1) % 1296;
  return `m${fromVersion}-${now.toString(36)}${seq.toString(36).padStart(2, '0')}`;
}

/** Partitions of `m` some source reported copied and verified. */
function donePartitions(m: Migration, store: MigrationStore): Set<number> {
  const done = new Set<number>();
  for (const rep of store.progress(m.id).values()) for (const p of rep.partitions) if (p.state === 'done') done.add(p.partition);
  return done;
}

/** Partitions of `m` that still need a copy, given the progress reports (lost ones excluded). */
export function pendingPartitions(m: Migration, store: MigrationStore, alive: (id: NodeId) => boolean): number[] {
  const done = donePartitions(m, store);
  const out: number[] = [];
  for (const mv of copyMoves(m.fromTable, m.targetTable)) {
    if (done.has(mv.partition)) continue;
    // nobody alive holds it: nothing to copy (the data is gone with its holders)
    if (sourceOf(mv.from, alive) === undefined) continue;
    // every receiver gone: nothing to wait for
    if (!mv.receivers.some(alive)) continue;
    out.push(mv.partition);
  }
  return out;
}

export class Coordinator implements TablePlanner {
  private readonly o: CoordinatorOptions;
  // when this leader first saw missing members whose removal would orphan partitions
  private orphanedSince: number | undefined;

  constructor(opts: CoordinatorOptions) {
    this.o = opts;
  }

  /** Who still waits for a partition's data: receivers of partitions an open repair has not copied yet. */
  private unrepaired(records: readonly Migration[], store: MigrationStore): (partition: number, id: NodeId) => boolean {
    const waiting = new Map<number, Set<NodeId>>();
    for (const m of records) {
      if (m.kind !== 'repair' || !isOpen(m.state)) continue;
      const done = donePartitions(m, store);
      for (const mv of copyMoves(m.fromTable, m.targetTable)) {
        if (done.has(mv.partition)) continue;
        const set = waiting.get(mv.partition) ?? new Set<NodeId>();
        for (const id of mv.receivers) set.add(id);
        waiting.set(mv.partition, set);
      }
    }
    return (p, id) => waiting.get(p)?.has(id) ?? false;
  }

  async reconcile(inForce: PartitionTable): Promise<void> {
    const { tables, store } = this.o;
    const alive = (id: NodeId): boolean => this.o.alive(id);

    // 1. crashed members: commit their removal now, repair afterwards
    const gone = inForce.members.filter((m) => !alive(m.id));
    const remaining = inForce.members.filter((m) => alive(m.id));
    // the grace ends when every missing member is back (or removed)
    if (gone.length === 0) this.orphanedSince = undefined;
    if (gone.length > 0 && remaining.length > 0) {
      const now = this.o.now();
      const grace = this.o.orphanGraceMs ?? 0;
      if (this.orphanedSince === undefined) {
        const orphaned = orphanedPartitions(inForce, alive, this.unrepaired(store.list(), store));
        if (orphaned > 0) {
          this.orphanedSince = now;
          if (grace > 0) {
            this.o.logger.warn({ gone: gone.map((m) => m.id), orphaned, graceMs: grace }, 'every holder of some partitions is missing: waiting for them before removing them');
            this.o.event('migration', `${gone.map((m) => m.id).join(', ')} missing with every copy of ${orphaned} partitions: waiting up to ${Math.round(grace / 1000)} s before removing`);
          }
        }
      }
      // members that vanished together with every copy of some partitions are all waited for,
      // even once the first of them is back and the rest alone would orphan nothing
      if (this.orphanedSince !== undefined && now - this.orphanedSince < grace) return;
      const next = nextTable(inForce, remaining, this.o.placement);
      if (await tables.commit(inForce.version, next)) {
        this.o.event('migration', `removed ${gone.map((m) => m.id).join(', ')} (v${next.version}); repairing replicas`);
        if (copyMoves(inForce, next).length > 0) await this.create('repair', inForce, next);
        await this.supersedeOpen(next, `table v${next.version} removed ${gone.map((m) => m.id).join(', ')}`);
      }
      return;
    }

    const desired = tables.desiredMembers();
    const desiredSig = memberSig(desired);
    const records = store.list();

    // 2. open records
    let preparing = false;
    for (const m of records) {
      if (!isOpen(m.state)) continue;
      if (m.state === 'cancelling') {
        const rolled = m.rollbackRequested === true && m.kind !== 'repair';
        await this.finish(m.id, rolled ? 'rolled_back' : 'cancelled', undefined, m.kind === 'repair' ? undefined : memberSig(m.targetTable.members));
        // end the pass: the records read above are stale now (the hold set just now is not in them)
        return;
      }
      if (m.kind === 'repair') {
        if (pendingPartitions(m, store, alive).length === 0) await this.finish(m.id, 'done');
        continue;
      }
      if (inForce.version !== m.fromVersion) {
        await this.finish(m.id, 'superseded', `table v${inForce.version} is in force`);
        continue;
      }
      const targetSig = memberSig(m.targetTable.members);
      const idsOnly = (ms: readonly Member[]): string => ms.map((x) => x.id).join(',');
      if ((m.kind === 'prepare' && targetSig !== desiredSig) || (m.kind === 'rebalance' && idsOnly(m.targetTable.members) !== idsOnly(desired))) {
        await this.finish(m.id, 'superseded', 'membership changed');
        continue;
      }
      if (m.targetTable.members.some((x) => !alive(x.id))) {
        await this.finish(m.id, 'superseded', 'a target member is gone');
        continue;
      }
      const pending = pendingPartitions(m, store, alive);
      if (pending.length > 0) {
        preparing = true;
        continue;
      }
      const target = m.targetTable.version === inForce.version + 1 ? m.targetTable : reversion(m.targetTable, inForce.version + 1, this.o.now());
      if (await tables.commit(inForce.version, target)) {
        await this.finish(m.id, 'done', undefined, undefined, this.o.now());
        if (m.kind === 'rollback' && m.rollbackOf !== undefined) await this.finish(m.rollbackOf, 'rolled_back', `rolled back by ${m.id}`);
        this.o.logger.info({ migration: m.id, version: target.version }, 'migration committed');
        return;
      }
      preparing = true;
    }

    // 3. rollback requests on committed migrations
    for (const m of records) {
      if (m.state === 'cancelled' && m.rollbackRequested === true) {
        // never committed: the previous table is still in force; partial copies are dropped by
        // each receiver's cleanup once nothing refers to them
        await this.finish(m.id, 'rolled_back', 'rolled back: the previous table was never replaced');
        return;
      }
      if (m.state !== 'done' || m.rollbackRequested !== true || m.kind === 'repair') continue;
      if (records.some((r) => r.rollbackOf === m.id && isOpen(r.state))) continue;
      if (preparing) break;
      const back = m.fromTable.members.filter((x) => alive(x.id));
      if (back.length !== m.fromTable.members.length) {
        await this.o.store.update(m.id, (cur) => ({ ...cur, rollbackRequested: false, reason: 'rollback refused: a member of the previous table is gone', updatedAt: this.o.now() }));
        continue;
      }
      const target = reversion(m.fromTable, inForce.version + 1, this.o.now());
      await this.create('rollback', inForce, target, { rollbackOf: m.id, heldSig: memberSig(m.targetTable.members) });
      await store.update(m.id, (cur) => ({ ...cur, rollbackRequested: false, updatedAt: this.o.now() }));
      return;
    }

    // 4. plan a warm handoff for joins, graceful leaves and weight changes
    if (preparing || desired.length === 0 || desiredSig === memberSig(inForce.members)) return;
    if (this.held(records, desiredSig)) return;
    const target = nextTable(inForce, desired, this.o.placement);
    await this.create('prepare', inForce, target);
  }

  /**
   * The rebalancer's way in: copy data to `target`'s new holders, then commit it, instead of
   * writing it in force at once. `target` must be the next version of the table in force.
   * Returns false (nothing written) when another migration is open or the table moved on.
   */
  async propose(inForce: PartitionTable, target: PartitionTable, meta?: RebalanceMeta): Promise<boolean> {
    if (target.version !== inForce.version + 1) return false;
    if (this.o.store.list().some((m) => isOpen(m.state) && m.kind !== 'repair')) return false;
    await this.create('rebalance', inForce, target, meta !== undefined ? { rebalance: meta } : {});
    return true;
  }

  /** An operator stopped exactly this change (cancel or rollback): do not plan it again by itself. */
  private held(records: readonly Migration[], desiredSig: string): boolean {
    const last = [...records].reverse().find((m) => m.kind !== 'repair');
    return last?.heldSig !== undefined && last.heldSig === desiredSig && (last.state === 'cancelled' || last.state === 'rolled_back' || last.kind === 'rollback');
  }

  private async create(kind: MigrationKind, from: PartitionTable, target: PartitionTable, extra: Partial<MigrationDoc> = {}): Promise<void> {
    const now = this.o.now();
    const doc: MigrationDoc = {
      id: newMigrationId(now, from.version),
      kind,
      state: 'running',
      fromVersion: from.version,
      from: encodeTable(from),
      target: encodeTable(target),
      createdAt: now,
      updatedAt: now,
      ...extra,
    };
    if (await this.o.store.create(doc)) {
      // wait (bounded) until our own watch shows it: the next pass must see it as open, or it
      // would plan the same change twice
      for (let i = 0; i < 100 && this.o.store.get(doc.id) === undefined; i++) await new Promise((r) => setTimeout(r, 20));
      const moves = copyMoves(from, target).length;
      this.o.logger.info({ migration: doc.id, kind, from: from.version, members: target.members.map((m: Member) => m.id), partitions: moves }, 'migration planned');
    }
    await this.prune();
  }

  private async finish(id: string, state: Migration['state'], reason?: string, heldSig?: string, committedAt?: number): Promise<void> {
    await this.o.store.update(id, (cur) => {
      if (cur.state === state && reason === undefined) return null;
      // the local list may lag etcd: never move a record that already ended, except the
      // operator-driven endings (a rollback of a cancelled or committed migration)
      const allowed = isOpen(cur.state) || (state === 'rolled_back' && (cur.state === 'cancelled' || cur.state === 'done')) || (cur.state === state);
      if (!allowed) return null;
      return {
        ...cur,
        state,
        updatedAt: this.o.now(),
        ...(reason !== undefined ? { reason } : {}),
        ...(heldSig !== undefined ? { heldSig } : {}),
        ...(committedAt !== undefined ? { committedAt } : {}),
      };
    });
  }

  private async supersedeOpen(inForce: PartitionTable, reason: string): Promise<void> {
    for (const m of this.o.store.list()) {
      if (m.kind !== 'repair' && isOpen(m.state) && m.fromVersion !== inForce.version) await this.finish(m.id, 'superseded', reason);
    }
  }

  /** Keep the newest finished records only, so the prefix stays small. */
  private async prune(): Promise<void> {
    const keep = this.o.keepFinished ?? 20;
    const finished = this.o.store.list().filter((m) => !isOpen(m.state));
    for (const m of finished.slice(0, Math.max(0, finished.length - keep))) await this.o.store.remove(m.id);
  }
}

/** `t` with another version and creation time (for a commit after the version moved on, and rollbacks). */
export function reversion(t: PartitionTable, version: number, createdAt: number): PartitionTable {
  const raw = JSON.parse(encodeTable(t)) as Record<string, unknown>;
  return decodeTable(JSON.stringify({ ...raw, version, createdAt }));
}
