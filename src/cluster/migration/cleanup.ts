/**
 * Copy-then-delete: drop the partitions this node holds data for but that nobody assigns to it
 * any more (not in the table in force, not in an open migration, not a recent previous holder),
 * after a grace period so late forwarded reads still find them.
 */
import type { Group } from '../../cache/group.ts';
import type { PartitionTable } from '../../core/placement/table.ts';
import type { NodeId } from '../../core/types.ts';
import { isOpen, type Migration } from './record.ts';

export interface CleanupOptions {
  self: NodeId;
  table(): PartitionTable;
  records(): readonly Migration[];
  groups: ReadonlyMap<string, Group>;
  /** How long a partition nobody refers to is kept before it is dropped. Default 10 s. */
  graceMs?: number;
  /** A committed migration's previous holders keep their data this long. Default 30 s. */
  previousHoldersMs?: number;
  logger?: { info(o: object, m: string): void };
}

export class PartitionCleanup {
  private readonly opts: CleanupOptions;
  // partition -> when this node first saw it unreferenced
  private readonly since = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: CleanupOptions) {
    this.opts = opts;
  }

  start(): void {
    this.timer = setInterval(() => this.run(), 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One pass (the timer runs it every second). Returns the entries dropped. */
  run(): number {
    const { self } = this.opts;
    const table = this.opts.table();
    if (table.members.length === 0) return 0;
    const needed = new Uint8Array(table.partitionCount);
    const mark = (t: PartitionTable): void =>
      t.assignments.forEach((h, p) => {
        if (h.includes(self)) needed[p] = 1;
      });
    mark(table);
    const now = Date.now();
    for (const m of this.opts.records()) {
      if (isOpen(m.state)) {
        mark(m.fromTable);
        mark(m.targetTable);
      } else if (m.state === 'done' && m.committedAt !== undefined && now - m.committedAt < (this.opts.previousHoldersMs ?? 30_000)) {
        mark(m.fromTable);
      }
    }
    const grace = this.opts.graceMs ?? 10_000;
    const seen = new Set<number>();
    let dropped = 0;
    for (const g of this.opts.groups.values()) {
      for (const p of g.store.partitions()) {
        if (needed[p] === 1) continue;
        seen.add(p);
        const since = this.since.get(p);
        if (since === undefined) this.since.set(p, now);
        else if (now - since >= grace) dropped += g.store.dropPartition(p);
      }
    }
    for (const p of this.since.keys()) if (!seen.has(p)) this.since.delete(p);
    if (dropped > 0) this.opts.logger?.info({ entries: dropped }, 'dropped partitions this node no longer holds');
    return dropped;
  }
}
