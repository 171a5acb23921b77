/**
 * Catch-up on return (issue 4, item 5): a node that starts while the partition table in force
 * already lists it as a holder (it crashed or was restarted with the same id before the leader
 * removed it) comes back with an empty store (memory engine) or one that stopped when it died
 * (LevelDB). Writes acknowledged meanwhile live on the other holders (and in their hint queues).
 * Before it answers reads for such a partition from its own copy, it pulls the partition from
 * every other reachable holder (values AND tombstones, with versions) and merges them by
 * last-writer-wins (LocalData.apply).
 *
 * - Persistent nodes pull only what changed while away: records above
 *   NodeStorage.catchUpFrom(group, partition) (the partition's watermark on disk minus a clock
 *   margin). Memory nodes pull everything.
 * - Bounded: one partition page (`pageRecords` records or `pageBytes` bytes) per request,
 *   `parallel` partitions at a time, a yield to the event loop after every page.
 * - While a partition is "behind", its reads here ask every holder and answer with the newest
 *   copy (router.ts, FailoverSupport.behind), writes keep arriving (replication is unchanged).
 *   Peers learn it from the registry: the node is published as 'joining' until the catch-up
 *   ends (fault-plugin.ts); they do not read from a 'joining' holder alone, and no node makes
 *   it the coordinator of a write while another holder is usable (a conditional write is never
 *   decided on a stale copy; the registry gives every node the same answer).
 *
 * Sound because every acknowledged write of a partition is held by the holder that coordinated
 * it (always a holder) when it was acknowledged: a page read from that holder at time t holds
 * every write acknowledged before t, and writes after t reach this node by replication or a hint.
 *
 * Source side (serveCatchUpPages): the CatchUpPage message answers the records of a partition
 * of a group with a version above `min` and a key after `after`, in key order, with the cursor
 * of the next page. A LevelDB source reads its disk (evicted entries too).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { NodeId, Version } from '../core/types.ts';
import { holdersOf } from '../core/placement/table.ts';
import type { PartitionTable } from '../core/placement/table.ts';
import type { WireRecord } from '../peer/codec.ts';
import { CatchUpPage, type CatchUpPageRequest } from '../peer/messages.ts';
import type { PeerServer } from '../peer/server.ts';
import type { Group } from '../cache/group.ts';
import type { NodeStorage } from '../storage/node-storage.ts';
import { JincacheError } from '../core/errors.ts';
import type { Logger } from '../observe/logger.ts';
import type { Members } from './membership.ts';
import type { Peers } from './peers.ts';

export interface CatchUpOptions {
  self: NodeId;
  tables: { table(): PartitionTable };
  members: Members;
  /** Names of the groups to pull. */
  groups(): Iterable<string>;
  /** Merges what is pulled, last writer wins. */
  local: { apply(records: readonly WireRecord[]): number };
  peers: Peers;
  /** Budget of one page request: 5 × request_timeout. */
  requestTimeoutMs(): number;
  logger?: Logger;
  /** Records per page. Default 2000. */
  pageRecords?: number;
  /** Value bytes per page (a page may exceed it by one record). Default 4 MiB. */
  pageBytes?: number;
  /** Partitions pulled at once. Default 4. */
  parallel?: number;
  /** Rounds over partitions whose holders all failed, with a growing pause between. Default 3. */
  attempts?: number;
  /** May this holder be asked now? Default: yes. */
  usable?: (peer: NodeId) => boolean;
  /**
   * Pull only records above this version of a partition. Default everything (0). Persistent
   * nodes pass the disk watermark (NodeStorage.catchUpFrom); the repair tail pass
   * (migration/tail.ts) pulls only the writes around a repair.
   */
  minVersion?: (group: string, partition: number) => Version;
  /** For the report: true when everything is pulled (memory nodes). Default true. */
  full?: boolean;
}

export interface CatchUpReport {
  /** partitions to catch up */
  partitions: number;
  /** caught up from at least one other holder (or no other holder exists) */
  caughtUp: number;
  /** no other holder answered: served from this node's own copy after all */
  failed: number[];
  /** records received / won the merge */
  records: number;
  applied: number;
  bytes: number;
  pages: number;
  /** true: memory engine, everything pulled; false: only records above the disk watermark */
  full: boolean;
  ms: number;
}

export class CatchUp {
  private readonly opts: CatchUpOptions;
  // partitions whose copy here may lack acknowledged writes
  private readonly behindSet = new Set<number>();
  private running: Promise<CatchUpReport> | undefined;

  constructor(opts: CatchUpOptions) {
    this.opts = opts;
  }

  /** Partitions of `table` that list `self` as one of several holders. */
  static heldPartitions(table: PartitionTable, self: NodeId): number[] {
    const out: number[] = [];
    table.assignments.forEach((holders, p) => {
      if (holders.includes(self) && holders.length > 1) out.push(p);
    });
    return out;
  }

  /** May this node's copy of `partition` lack acknowledged writes (a catch-up is pending)? */
  behind(partition: number): boolean {
    return this.behindSet.has(partition);
  }

  /** Partitions still to catch up. */
  pending(): number {
    return this.behindSet.size;
  }

  /** Mark partitions behind at once (before any read can reach them), then call run(). */
  mark(partitions: Iterable<number>): void {
    for (const p of partitions) this.behindSet.add(p);
  }

  /** Catch up every partition marked behind. One run at a time; a second call joins the first. */
  run(): Promise<CatchUpReport> {
    this.running ??= this.runAll().finally(() => (this.running = undefined));
    return this.running;
  }

  private async runAll(): Promise<CatchUpReport> {
    const started = performance.now();
    const report: CatchUpReport = { partitions: this.behindSet.size, caughtUp: 0, failed: [], records: 0, applied: 0, bytes: 0, pages: 0, full: this.opts.full ?? true, ms: 0 };
    const attempts = Math.max(1, this.opts.attempts ?? 3);
    let todo = [...this.behindSet].sort((a, b) => a - b);
    for (let round = 0; round < attempts && todo.length > 0; round++) {
      if (round > 0) await new Promise((r) => setTimeout(r, 500 * 2 ** (round - 1)));
      const failed: number[] = [];
      let i = 0;
      const worker = async (): Promise<void> => {
        while (i < todo.length) {
          const p = todo[i++]!;
          if (await this.partition(p, report)) {
            this.behindSet.delete(p);
            report.caughtUp++;
          } else failed.push(p);
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.opts.parallel ?? 4, todo.length) }, worker));
      todo = failed.sort((a, b) => a - b);
    }
    // nobody else answered for these: this node's copy is the best there is; stop holding reads
    for (const p of todo) this.behindSet.delete(p);
    report.failed = todo;
    report.ms = Math.round(performance.now() - started);
    return report;
  }

  /** Pull one partition from every other holder in force now. True when one answered completely (or none exists). */
  private async partition(p: number, report: CatchUpReport): Promise<boolean> {
    const { self, members } = this.opts;
    const table = this.opts.tables.table();
    if (p >= table.partitionCount) return true;
    const holders = holdersOf(table, p);
    // no longer assigned here (the table changed meanwhile): nothing to serve, nothing to catch up
    if (!holders.includes(self)) return true;
    const others = holders.filter((id) => id !== self && members.member(id) !== undefined);
    if (others.length === 0) return true;
    let complete = false;
    for (const peer of others) {
      if (this.opts.usable !== undefined && !this.opts.usable(peer)) continue;
      try {
        for (const group of this.opts.groups()) await this.pullGroup(peer, group, p, report);
        complete = true;
      } catch (e) {
        this.opts.logger?.debug({ peer, partition: p, err: (e as Error).message }, 'catch-up from a holder failed');
      }
    }
    return complete;
  }

  private async pullGroup(peer: NodeId, group: string, p: number, report: CatchUpReport): Promise<void> {
    const min = this.opts.minVersion?.(group, p) ?? 0;
    let after: string | null = null;
    for (;;) {
      const req: CatchUpPageRequest = { group, partition: p, min, after, limit: this.opts.pageRecords ?? 2000, bytes: this.opts.pageBytes ?? 4 * 1024 * 1024 };
      const page = await this.opts.peers.call(CatchUpPage, peer, req, Date.now() + this.opts.requestTimeoutMs() * 5);
      report.records += page.records.length;
      report.bytes += page.records.reduce((n, r) => n + (r.value?.length ?? 0) + r.key.length + 24, 0);
      report.pages++;
      report.applied += this.opts.local.apply(page.records);
      if (page.next === null) return;
      after = page.next;
      // let requests through between pages
      await yieldToLoop();
    }
  }
}

/**
 * The source side: serve CatchUpPage from `groups` (and, on a persistent node, its disk, which
 * holds evicted entries too). Pages are in key order; the newest of the disk's and memory's copy
 * of a key is sent.
 */
export function serveCatchUpPages(server: PeerServer, deps: { groups: ReadonlyMap<string, Group>; storage?: NodeStorage; partitionCount(): number }): void {
  server.handle(CatchUpPage, async (req) => {
    const { group, partition: p, min, after, limit, bytes: maxBytes } = req;
    const g = deps.groups.get(group);
    if (g === undefined) throw new JincacheError('UNKNOWN_GROUP', `unknown group "${group}"`);
    if (p >= deps.partitionCount()) throw new JincacheError('BAD_REQUEST', 'partition out of range');
    if (!(Number.isInteger(limit) && limit >= 1 && limit <= 100_000)) throw new JincacheError('BAD_REQUEST', 'limit must be 1..100000');
    if (!(maxBytes >= 1)) throw new JincacheError('BAD_REQUEST', 'bytes must be >= 1');
    const candidates: WireRecord[] = [];
    const take = (key: string, value: Buffer | null, version: number, expiresAt: number, type = 0): void => {
      if (version <= min || (after !== null && key <= after)) return;
      candidates.push(value !== null && type !== 0 ? { group, key, value, version, expiresAt, type } : { group, key, value, version, expiresAt: value === null ? 0 : expiresAt });
    };
    if (deps.storage !== undefined) {
      // the disk has the evicted entries too; memory may hold writes not yet flushed (flushed first)
      for await (const r of deps.storage.partitionRecords(group, p, { minVersion: min })) take(r.key, r.value, r.version, r.expiresAt, r.type);
    }
    for (const [key, e] of g.store.partitionEntries(p)) take(key, e.value, e.version, e.expiresAt, e.type);
    candidates.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : b.version - a.version));
    const page: WireRecord[] = [];
    let bytes = 0;
    let more = false;
    for (const r of candidates) {
      const last = page[page.length - 1];
      if (last !== undefined && last.key === r.key) continue; // disk and memory: the newest first
      if (page.length >= limit || bytes >= maxBytes) {
        more = true;
        break;
      }
      page.push(r);
      bytes += (r.value?.length ?? 0) + r.key.length + 32;
    }
    const last = page[page.length - 1];
    return { records: page, next: more && last !== undefined ? last.key : null };
  });
}
