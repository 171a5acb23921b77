/**
 * Repair tail pass. A repair starts after the table without the crashed node is in force, so
 * writes coordinated under the new table reach the new holder by replication. But a write
 * coordinated under the OLD table (by a node whose table had not changed yet, or still in flight
 * when the table changed) goes to the old holders only; when it lands at a holder after the
 * repair copy read that key, the new holder never gets it and nothing repairs it.
 *
 * Such a write started before its coordinator saw the new table (at most a watch delay after the
 * repair was created) and is never applied after its fence (at most request_timeout after it
 * started). So once a repair is done and request_timeout (plus a margin) has passed since it was
 * created, this node pulls from the other holders of each partition it received the records with
 * a version from `createdAt - request_timeout - margin` on (catch-up pages, by version watermark,
 * merged last-writer-wins): only the writes around the repair, bounded. A second pass follows
 * `repeatMs` later, for a coordinator whose table lagged longer (a node that was paused, or whose
 * etcd watch reconnected).
 */
import type { NodeId } from '../../core/types.ts';
import { LOGICAL_BITS } from '../../core/version.ts';
import type { Logger } from '../../observe/logger.ts';
import type { CatchUp } from '../catchup.ts';
import type { ClusterEvents } from '../events.ts';
import { copyMoves } from './plan.ts';
import type { Migration } from './record.ts';

export interface RepairTailOptions {
  self: NodeId;
  /** A catch-up of its own, whose minVersion is this pass's `from` (see minVersion). */
  catchUp: CatchUp;
  requestTimeoutMs(): number;
  /** Clock skew allowed between the leader (which stamps a repair's creation) and the nodes that version writes. Default 2000 ms. */
  marginMs?: number;
  /** The second pass runs this long after the first. Default 10 000 ms. */
  repeatMs?: number;
  /** A pass pulled these partitions. */
  onPassDone?(partitions: number[]): void;
  logger?: Logger;
  events?: ClusterEvents;
}

export class RepairTail {
  private readonly opts: RepairTailOptions;
  private readonly handled = new Set<string>();
  // partition -> the version it is pulled from
  private readonly from = new Map<number, number>();
  private timers: NodeJS.Timeout[] = [];
  private running: Promise<void> | undefined;
  private stopped = false;
  // partitions marked for the pass that is running or about to
  private readonly marked = new Set<number>();

  constructor(opts: RepairTailOptions) {
    this.opts = opts;
  }

  /** The version partition `p` is pulled from (the catch-up's minVersion). */
  minVersion(p: number): number {
    return this.from.get(p) ?? 0;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  /** The migration records changed: schedule the passes of repairs that just finished. */
  schedule(records: readonly Migration[]): void {
    if (this.stopped) return;
    const now = Date.now();
    const known = new Set<string>();
    for (const m of records) {
      known.add(m.id);
      if (m.kind !== 'repair' || m.state !== 'done' || this.handled.has(m.id)) continue;
      this.handled.add(m.id);
      // an old record seen at start: the writes around it settled long ago
      if (now - m.updatedAt > 60_000) continue;
      const mine = copyMoves(m.fromTable, m.targetTable)
        .filter((mv) => mv.receivers.includes(this.opts.self))
        .map((mv) => mv.partition);
      if (mine.length === 0) continue;
      const timeout = this.opts.requestTimeoutMs();
      const from = Math.max(0, m.createdAt - timeout - (this.opts.marginMs ?? 2000)) * LOGICAL_BITS;
      const wait = Math.max(200, m.createdAt + timeout + 1000 - now);
      for (const at of [wait, wait + (this.opts.repeatMs ?? 10_000)]) {
        const timer = setTimeout(() => {
          this.timers = this.timers.filter((t) => t !== timer);
          if (this.stopped) return;
          for (const p of mine) this.from.set(p, Math.min(this.from.get(p) ?? from, from));
          this.opts.catchUp.mark(mine);
          for (const p of mine) this.marked.add(p);
          this.opts.logger?.info({ migration: m.id, partitions: mine.length }, 'repair tail: pulling writes coordinated under the previous table');
          this.running ??= this.run().finally(() => (this.running = undefined));
        }, at);
        timer.unref();
        this.timers.push(timer);
      }
    }
    for (const id of this.handled) if (!known.has(id)) this.handled.delete(id);
  }

  private async run(): Promise<void> {
    const tail = this.opts.catchUp;
    let records = 0;
    let applied = 0;
    const failed = new Set<number>();
    // partitions marked while a run was going are caught by the next round
    while (tail.pending() > 0 && !this.stopped) {
      const r = await tail.run();
      records += r.records;
      applied += r.applied;
      for (const p of r.failed) failed.add(p);
    }
    this.from.clear();
    // a partition no holder answered for stays marked uncopied (moves.ts) until its bound
    const done = [...this.marked].filter((p) => !failed.has(p));
    this.marked.clear();
    if (!this.stopped) this.opts.onPassDone?.(done);
    this.opts.logger?.info({ records, applied, failed: failed.size }, 'repair tail done');
    if (applied > 0) this.opts.events?.note('migration', `repair tail: ${applied} writes made under the previous table caught up`);
  }
}
