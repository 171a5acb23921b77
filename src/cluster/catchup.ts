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
 * Source side: GET /_jincache/catchup/partition?g=GROUP&p=P&min=V&after=KEY&limit=N answers
 * the records of partition P of GROUP with a version above V and a key after KEY, in key order,
 * as a transport codec batch; `x-jincache-more: 1` when there are more, `x-jincache-next` the
 * cursor (the last key, percent-encoded). A LevelDB source reads its disk (evicted entries too).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { NodeId, Version } from '../core/types.ts';
import { holdersOf } from '../core/placement/table.ts';
import { decodeRecords, encodeRecords, type WireRecord } from '../peer/codec.ts';
import type { PeerResponse } from '../peer/client.ts';
import { JincacheError } from '../core/errors.ts';
import type { NodeContext } from './plugin.ts';

/** Path of the partition-page endpoint on the peer listener. */
export const CATCHUP_ROUTE = '/_jincache/catchup/partition';

export interface CatchUpOptions {
  ctx: NodeContext;
  /** Records per page. Default 2000. */
  pageRecords?: number;
  /** Value bytes per page (a page may exceed it by one record). Default 4 MiB. */
  pageBytes?: number;
  /** Partitions pulled at once. Default 4. */
  parallel?: number;
  /** Rounds over partitions whose holders all failed, with a growing pause between. Default 3. */
  attempts?: number;
  /** Run one peer call (e.g. through the peer's breaker). Default: call directly. */
  call?: <T>(peer: NodeId, fn: () => Promise<T>) => Promise<T>;
  /** May this holder be asked now? Default: yes. */
  usable?: (peer: NodeId) => boolean;
  /**
   * Pull only records above this version of a partition. Default: the disk watermark
   * (NodeStorage.catchUpFrom) on persistent nodes, everything (0) on memory nodes. The repair
   * tail pass (migration/plugin.ts) pulls only the writes around a repair.
   */
  minVersion?: (group: string, partition: number) => Version;
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

  /** Partitions of the table in force that list this node as a holder. */
  static heldPartitions(ctx: NodeContext): number[] {
    const table = ctx.table();
    const out: number[] = [];
    table.assignments.forEach((holders, p) => {
      if (holders.includes(ctx.id) && holders.length > 1) out.push(p);
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
    const { ctx } = this.opts;
    const started = performance.now();
    const report: CatchUpReport = { partitions: this.behindSet.size, caughtUp: 0, failed: [], records: 0, applied: 0, bytes: 0, pages: 0, full: ctx.storage === undefined, ms: 0 };
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
    const { ctx } = this.opts;
    const table = ctx.table();
    if (p >= table.partitionCount) return true;
    const holders = holdersOf(table, p);
    // no longer assigned here (the table changed meanwhile): nothing to serve, nothing to catch up
    if (!holders.includes(ctx.id)) return true;
    const others = holders.filter((id) => id !== ctx.id && ctx.member(id) !== undefined);
    if (others.length === 0) return true;
    let complete = false;
    for (const peer of others) {
      if (this.opts.usable !== undefined && !this.opts.usable(peer)) continue;
      try {
        for (const group of ctx.groups.keys()) await this.pullGroup(peer, group, p, report);
        complete = true;
      } catch (e) {
        ctx.logger.debug({ peer, partition: p, err: (e as Error).message }, 'catch-up from a holder failed');
      }
    }
    return complete;
  }

  private async pullGroup(peer: NodeId, group: string, p: number, report: CatchUpReport): Promise<void> {
    const { ctx } = this.opts;
    const member = ctx.member(peer);
    if (member === undefined) throw new JincacheError('PEER_UNAVAILABLE', `${peer} is not a member`);
    const min = this.opts.minVersion?.(group, p) ?? ctx.storage?.catchUpFrom(group, p) ?? 0;
    let after: string | undefined;
    for (;;) {
      const q = new URLSearchParams({ g: group, p: String(p), min: String(min), limit: String(this.opts.pageRecords ?? 2000), bytes: String(this.opts.pageBytes ?? 4 * 1024 * 1024) });
      if (after !== undefined) q.set('after', after);
      const deadline = Date.now() + ctx.config.fault_tolerance.request_timeout * 5;
      const send = (): Promise<PeerResponse> => ctx.peers.request(member.address, { method: 'GET', path: `${CATCHUP_ROUTE}?${q}`, deadline });
      const res = await (this.opts.call ? this.opts.call(peer, send) : send());
      if (res.status !== 200) throw new JincacheError('PEER_UNAVAILABLE', `${peer} answered ${res.status} to a catch-up page`);
      const records = decodeRecords(res.body, { maxRecords: 1_000_000, maxValueBytes: ctx.config.cache.max_value_bytes });
      report.records += records.length;
      report.bytes += res.body.length;
      report.pages++;
      report.applied += ctx.local.apply(records);
      if (res.headers['x-jincache-more'] !== '1') return;
      const next = res.headers['x-jincache-next'];
      if (typeof next !== 'string') throw new JincacheError('PEER_UNAVAILABLE', `${peer} sent a catch-up page without a cursor`);
      after = decodeURIComponent(next);
      // let requests through between pages
      await yieldToLoop();
    }
  }

  /** The source side: one page of a partition (see the module comment). */
  async serve(url: string): Promise<{ status: number; body: Buffer; headers: Record<string, string> }> {
    const { ctx } = this.opts;
    const q = url.indexOf('?');
    const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const group = params.get('g') ?? '';
    const p = Number(params.get('p'));
    const min = Number(params.get('min') ?? 0);
    const limit = Number(params.get('limit') ?? 2000);
    const maxBytes = Number(params.get('bytes') ?? 4 * 1024 * 1024);
    const after = params.get('after');
    const g = ctx.groups.get(group);
    if (g === undefined) throw new JincacheError('UNKNOWN_GROUP', `unknown group "${group}"`);
    if (!Number.isInteger(p) || p < 0 || p >= ctx.table().partitionCount) throw new JincacheError('BAD_REQUEST', 'p must be a partition number');
    if (!(Number.isFinite(min) && min >= 0)) throw new JincacheError('BAD_REQUEST', 'min must be a version >= 0');
    if (!(Number.isInteger(limit) && limit >= 1 && limit <= 100_000)) throw new JincacheError('BAD_REQUEST', 'limit must be 1..100000');
    if (!(Number.isFinite(maxBytes) && maxBytes >= 1)) throw new JincacheError('BAD_REQUEST', 'bytes must be >= 1');
    const candidates: WireRecord[] = [];
    const take = (key: string, value: Buffer | null, version: number, expiresAt: number): void => {
      if (version <= min || (after !== null && key <= after)) return;
      candidates.push({ group, key, value, version, expiresAt: value === null ? 0 : expiresAt });
    };
    if (ctx.storage !== undefined) {
      // the disk has the evicted entries too; memory may hold writes not yet flushed (flushed first)
      for await (const r of ctx.storage.partitionRecords(group, p, { minVersion: min })) take(r.key, r.value, r.version, r.expiresAt);
    }
    for (const [key, e] of g.store.partitionEntries(p)) take(key, e.value, e.version, e.expiresAt);
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
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'x-jincache-more': more ? '1' : '0' };
    const last = page[page.length - 1];
    if (more && last !== undefined) headers['x-jincache-next'] = encodeURIComponent(last.key);
    return { status: 200, body: encodeRecords(page), headers };
  }
}
