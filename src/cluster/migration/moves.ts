/**
 * What the request path must know about data on the move, rebuilt from the migration records and
 * the table in force (the request path only reads maps):
 * - extra replicas: while a migration prepares, writes at a partition's holders also go to its
 *   new holders, so the copy they receive does not miss writes made during it;
 * - previous holders: after a commit (and during a repair) a miss at a new holder asks the
 *   holders that had the data, for `previousHoldersMs`;
 * - uncopied: a table change made this node a holder of a partition without copying the data
 *   first (a crashed node's removal: the repair copies it afterwards). Until the repair's first
 *   tail pass has pulled what was coordinated under the previous table (tail.ts: writes that
 *   landed at the old holders after the repair copied the key), reads served here take the
 *   newest copy among the holders (freshness.ts). Bounded by previousHoldersMs whatever happens
 *   to the repair.
 */
import type { PartitionTable } from '../../core/placement/table.ts';
import type { NodeId } from '../../core/types.ts';
import type { Moves } from '../router.ts';
import { copyMoves, preparedFrom, uncopiedReceipts } from './plan.ts';
import type { Migration } from './record.ts';

const EMPTY: readonly NodeId[] = Object.freeze([]);

export interface MoveStateOptions {
  self: NodeId;
  /** The migration records (the store's current list). */
  records(): readonly Migration[];
  table(): PartitionTable;
  /** How long after a commit the previous holders are still asked on a miss. Default 30 s. */
  previousHoldersMs?: number;
  logger?: { info(o: object, m: string): void };
}

export class MoveState implements Moves {
  private readonly opts: MoveStateOptions;
  private extra = new Map<number, readonly NodeId[]>();
  private previous = new Map<number, readonly NodeId[]>();
  private previousUntil = 0;
  private sig = '';
  // partition -> until when this node's copy may lack writes; shortened once the repair is done
  private readonly pending = new Map<number, { from: number; version: number; since: number; until: number }>();

  constructor(opts: MoveStateOptions) {
    this.opts = opts;
  }

  private get window(): number {
    return this.opts.previousHoldersMs ?? 30_000;
  }

  extraReplicas(p: number): readonly NodeId[] {
    return this.extra.get(p) ?? EMPTY;
  }

  previousHolders(p: number): readonly NodeId[] {
    if (this.previous.size === 0) return EMPTY;
    if (Date.now() > this.previousUntil) {
      this.previous = new Map();
      return EMPTY;
    }
    return this.previous.get(p) ?? EMPTY;
  }

  uncopied(p: number): boolean {
    if (this.pending.size === 0) return false;
    const u = this.pending.get(p);
    if (u === undefined) return false;
    if (Date.now() < u.until) return true;
    this.pending.delete(p);
    return false;
  }

  /** Partitions marked uncopied now (GET /cluster). */
  uncopiedCount(): number {
    return this.pending.size;
  }

  /** A new table is in force: mark what it made this node hold before a copy. */
  tableChanged(prev: PartitionTable, next: PartitionTable): void {
    const self = this.opts.self;
    const now = Date.now();
    for (const p of this.pending.keys()) if (!(next.assignments[p] ?? []).includes(self)) this.pending.delete(p);
    const fresh = uncopiedReceipts(prev, next, self, this.opts.records());
    if (fresh.length === 0) return;
    const until = now + this.window;
    for (const p of fresh) this.pending.set(p, { from: prev.version, version: next.version, since: now, until });
    this.opts.logger?.info({ version: next.version, partitions: fresh.length }, 'made a holder before a copy: reading the newest copy among holders until the repair is done');
  }

  /** The records or the table changed: settle what the repairs finished and rebuild the maps. */
  refresh(): void {
    this.settle();
    this.rebuild();
  }

  /** The repair tail pass pulled these partitions (tail.ts): what the previous table's coordinators wrote is here. */
  tailDone(partitions: readonly number[]): void {
    for (const p of partitions) this.pending.delete(p);
  }

  private settle(): void {
    if (this.pending.size === 0) return;
    const records = this.opts.records();
    for (const [p, u] of this.pending) {
      // the record of a migration that copied first arrived after the table: nothing lacks
      if (preparedFrom(records, u.from)) this.pending.delete(p);
    }
  }

  private rebuild(): void {
    const inForce = this.opts.table();
    const records = this.opts.records();
    // progress reports change the store on every node several times a second; the maps only
    // depend on the records' states and the table in force
    const now = Date.now();
    const sig = `${inForce.version}|${Math.floor(now / 1000)}|${records.map((m) => `${m.id}:${m.state}:${m.committedAt ?? ''}`).join(',')}`;
    if (sig === this.sig) return;
    this.sig = sig;
    const extra = new Map<number, NodeId[]>();
    const previous = new Map<number, NodeId[]>();
    const add = (map: Map<number, NodeId[]>, p: number, ids: readonly NodeId[]): void => {
      if (ids.length === 0) return;
      const cur = map.get(p);
      map.set(p, cur === undefined ? [...ids] : [...new Set([...cur, ...ids])]);
    };
    let until = 0;
    for (const m of records) {
      const preparing = m.state === 'running' && m.kind !== 'repair' && m.fromVersion === inForce.version;
      const repairing = m.state === 'running' && m.kind === 'repair';
      const recent = m.state === 'done' && m.committedAt !== undefined && now - m.committedAt < this.window && m.targetTable.version === inForce.version;
      if (!preparing && !repairing && !recent) continue;
      for (const mv of copyMoves(m.fromTable, m.targetTable)) {
        // while preparing, writes at the owner also go to the receivers
        if (preparing) add(extra, mv.partition, mv.receivers);
        // after a commit (or during a repair) a miss asks the holders that had the data
        else add(previous, mv.partition, mv.from.filter((id) => !(m.targetTable.assignments[mv.partition] ?? []).includes(id) || repairing));
      }
      if (recent) until = Math.max(until, m.committedAt! + this.window);
      if (repairing) until = Math.max(until, now + this.window);
    }
    this.extra = extra;
    this.previous = previous;
    this.previousUntil = until;
  }
}
