/**
 * The per-node half of a migration: for every partition this node is the source of, stream its
 * entries (values and tombstones, with their versions) to each receiver, and verify them by
 * checksum. Every node runs one executor; it never changes the table.
 *
 * Safety comes from the data, not from ordering: receivers apply batches with the last-writer-wins
 * rule (LocalData.apply), so a migrated entry never overwrites a newer write and never brings back
 * a deleted key. Writes that land at the owner while a partition is copied reach the receivers
 * through the router's extraReplicas hook (active from the moment the record is seen, before the
 * first batch), so a copy plus those writes is complete.
 *
 * Data path, per receiver: one pass over the partitions to send, in order, encoding each entry
 * straight into a batch buffer (BatchEncoder: no per-record objects) closed at
 * `migration.batch_bytes` or `migration.batch_size` records, with up to `migration.concurrency`
 * batches in flight. The checksum of each partition is summed while it is encoded; once every
 * batch holding the partition is acknowledged it is queued for verification, and one request
 * verifies whatever is queued while later batches are still being sent. Only a partition whose
 * sums differ (a write raced the copy) is summed again here; if they still differ it is copied
 * again (3 copies at most, then accepted unverified: LWW has merged the data anyway).
 *
 * Load control: at most `concurrency` batches in flight per receiver, an optional byte/s cap, and
 * a turn of the event loop (setImmediate) between batches and every ENCODE_SLICE records within
 * one, so serving traffic and heartbeats keep their latency. A batch that fails is retried with exponential backoff (5 tries); a receiver
 * whose stream still fails is retried after a pause for as long as the migration runs.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { NodeId, NodeInfo } from '../../core/types.ts';
import type { PartitionTable } from '../../core/placement/table.ts';
import type { PeerCaller } from '../../peer/client.ts';
import { MigrateBatch, MigrateReady, MigrateVerify, type MigrateReadyRequest } from '../../peer/messages.ts';
import type { PeerMessage } from '../../peer/protocol.ts';
import { isJincacheError } from '../../core/errors.ts';
import type { LocalData } from '../local-data.ts';
import { BatchEncoder, FRAME_OVERHEAD } from './batch.ts';
import { addToChecksum, copyMoves, emptyChecksum, sameChecksum, sourceOf, type Checksum } from './plan.ts';
import type { Migration, NodeProgress, PartitionProgress } from './record.ts';

export interface ExecutorSettings {
  /** Entries per batch at most (config migration.batch_size, default 10,000; SPEC §5 says 100, see docs/SPEC-CONFORMANCE.md). */
  batchSize: number;
  /** Bytes per batch (config migration.batch_bytes, default 1 MiB). */
  batchBytes: number;
  /** Batches in flight per receiver (config migration.concurrency, default 2). */
  concurrency: number;
  /** Byte/s cap over this node's sends; undefined = none (config migration.bandwidth). */
  bandwidth?: number;
  /** Per-request timeout (config migration.migration_timeout, default 30 s). */
  requestTimeoutMs: number;
}

/** One stored write of a key, as a source reads it (memory or disk). */
export interface SourceRecord {
  key: string;
  value: Buffer | null;
  version: number;
  expiresAt: number;
  /** Entry type (cache/engine/types.ts); absent = a string. */
  type?: number;
}

/**
 * Where a partition's records come from when memory may not hold them all (a persistent node
 * whose store evicted or was loaded partially): an async stream from disk. Returns undefined
 * when memory is complete for this group (the fast path). Default: always memory.
 */
export type DiskSource = (group: string, partition: number) => AsyncIterable<SourceRecord> | undefined;

export interface ExecutorOptions {
  self: NodeId;
  local: LocalData;
  client: PeerCaller;
  member(id: NodeId): NodeInfo | undefined;
  settings(): ExecutorSettings;
  /** Called when some job's progress changed (the plugin throttles reports). */
  onProgress(): void;
  logger: { info(o: object, m: string): void; warn(o: object, m: string): void };
  /** Milliseconds clock for rates. Default Date.now. */
  now?: () => number;
  /** See {@link DiskSource}. Default none (memory is complete). */
  disk?: DiskSource;
}

class Aborted extends Error {
  readonly code = 'MIGRATION_ABORTED';
}

/** Copies of one partition to one receiver before its checksum mismatch is accepted. */
const MAX_COPIES = 3;

/**
 * Records encoded between two turns of the event loop while a batch is built. A batch closes at
 * `batch_bytes` (1 MiB: ~8,000 records of 100 bytes, several ms of encoding on a loaded host),
 * and serving traffic on this node should not wait for a whole batch to be encoded.
 */
const ENCODE_SLICE = 1024;

/** Checksum of the live entries this node holds in memory for `p`, over every group. */
export function localChecksum(local: LocalData, p: number): Checksum {
  const c = emptyChecksum();
  for (const [name, g] of local.groups) {
    for (const [key, e] of g.store.partitionEntries(p)) if (e.value !== null) addToChecksum(c, name, key, e.version);
  }
  return c;
}

/** Checksum of `p` over memory, or over disk for the groups whose memory may be incomplete. */
export async function partitionChecksum(local: LocalData, p: number, disk: DiskSource | undefined): Promise<Checksum> {
  const c = emptyChecksum();
  for (const [name, g] of local.groups) {
    const fromDisk = disk?.(name, p);
    if (fromDisk === undefined) {
      for (const [key, e] of g.store.partitionEntries(p)) if (e.value !== null) addToChecksum(c, name, key, e.version);
    } else {
      for await (const r of fromDisk) if (r.value !== null && (r.expiresAt === 0 || r.expiresAt > Date.now())) addToChecksum(c, name, r.key, r.version);
    }
  }
  return c;
}

type PartState = PartitionProgress & {
  pendingReceivers: Set<NodeId>;
  /** receiver -> copies sent so far */
  copies: Map<NodeId, number>;
  /** Some receiver's sums were accepted while still different. */
  mismatched: boolean;
};

/** A partition whose records all went out to a receiver, with the sums of what was sent. */
interface Sent {
  p: number;
  sum: Checksum;
}

/** One migration as seen by this node. */
class Job {
  readonly migration: Migration;
  readonly parts = new Map<number, PartState>();
  private readonly exec: Executor;
  private aborted = false;
  private started = 0;
  private sent = 0;
  private pacedUntil = 0;
  private batches = 0;
  // ms from the start to: the receiver answering, the last batch encoded, the last one acknowledged
  private readonly timing = { ready: 0, encoded: 0, acked: 0 };
  finished = false;

  constructor(exec: Executor, m: Migration, inForce: PartitionTable) {
    this.exec = exec;
    this.migration = m;
    const o = exec.opts;
    const alive = (id: NodeId): boolean => id === o.self || o.member(id) !== undefined;
    for (const mv of copyMoves(m.fromTable, m.targetTable)) {
      if (sourceOf(mv.from, alive) !== o.self) continue;
      // a repair runs after the table changed again: only receivers that still hold p need it
      const receivers = mv.receivers.filter((id) => alive(id) && (m.kind !== 'repair' || (inForce.assignments[mv.partition]?.includes(id) ?? false)));
      let keys = 0;
      for (const g of o.local.groups.values()) keys += g.store.partitionKeyCount(mv.partition);
      // an empty partition needs no transfer: writes from now on reach receivers directly (a
      // persistent node streams from disk whatever memory says)
      const onDisk = o.disk !== undefined && [...o.local.groups.keys()].some((name) => o.disk!(name, mv.partition) !== undefined);
      const done = receivers.length === 0 || (keys === 0 && !onDisk);
      this.parts.set(mv.partition, {
        partition: mv.partition,
        targets: receivers,
        state: done ? 'done' : 'pending',
        entriesDone: 0,
        entriesTotal: keys * receivers.length,
        bytesDone: 0,
        bytesTotal: 0,
        verified: done,
        pendingReceivers: new Set(done ? [] : receivers),
        copies: new Map(),
        mismatched: false,
      });
    }
  }

  abort(): void {
    this.aborted = true;
  }

  isAborted(): boolean {
    return this.aborted;
  }

  progress(): NodeProgress {
    const now = this.exec.now();
    const secs = this.started === 0 ? 0 : (now - this.started) / 1000;
    return {
      node: this.exec.opts.self,
      at: now,
      rate: secs > 0 ? this.sent / secs : 0,
      partitions: [...this.parts.values()].map((st) => ({
        partition: st.partition,
        targets: [...st.targets],
        state: st.state,
        entriesDone: st.entriesDone,
        entriesTotal: st.entriesTotal,
        bytesDone: st.bytesDone,
        bytesTotal: st.bytesTotal,
        verified: st.verified,
      })),
    };
  }

  async run(): Promise<void> {
    this.started = this.exec.now();
    const o = this.exec.opts;
    try {
      for (let round = 0; !this.aborted; round++) {
        const work = this.remaining();
        if (work.size === 0) break;
        if (round > 0) await sleep(Math.min(5000, 500 * round));
        if (this.aborted) break;
        await Promise.all(
          [...work].map(async ([receiver, partitions]) => {
            try {
              await this.stream(receiver, partitions);
            } catch (e) {
              if (e instanceof Aborted) return;
              o.logger.warn({ migration: this.migration.id, to: receiver, partitions: partitions.length, err: (e as Error).message }, 'migration stream failed; will retry');
              for (const p of partitions) {
                const st = this.parts.get(p);
                if (st !== undefined && st.state !== 'done' && st.pendingReceivers.has(receiver)) st.state = 'failed';
              }
              o.onProgress();
            }
          }),
        );
      }
      if (!this.aborted && this.batches > 0) {
        o.logger.info({ migration: this.migration.id, entries: this.sent, batches: this.batches, ms: this.exec.now() - this.started, ...this.timing }, 'migration: partitions sent and verified');
      }
    } finally {
      this.finished = true;
      o.onProgress();
    }
  }

  /** Partitions still to copy, by receiver, in partition order. */
  private remaining(): Map<NodeId, number[]> {
    const byReceiver = new Map<NodeId, number[]>();
    for (const st of this.parts.values()) {
      for (const r of st.pendingReceivers) {
        let list = byReceiver.get(r);
        if (list === undefined) byReceiver.set(r, (list = []));
        list.push(st.partition);
      }
    }
    for (const list of byReceiver.values()) list.sort((a, b) => a - b);
    return byReceiver;
  }

  /**
   * Send `partitions` to `receiver` (see the file comment): batches in flight up to the window,
   * each partition queued for verification once every batch holding it is acknowledged.
   */
  private async stream(receiver: NodeId, partitions: number[]): Promise<void> {
    const o = this.exec.opts;
    const member = o.member(receiver);
    if (member === undefined) throw new Error(`receiver ${receiver} is not a member`);
    const address = member.address;
    const s = o.settings();
    const window = Math.max(1, s.concurrency);
    const enc = new BatchEncoder({ capacity: Math.max(64 * 1024, s.batchBytes), maxRecords: Math.max(1, s.batchSize) });
    // encode the first batches while a joining node finishes starting; send once it answers
    const receiverReady = this.waitReady(address, this.expected(partitions), s.requestTimeoutMs).then(() => {
      this.timing.ready ||= this.exec.now() - this.started;
    });
    receiverReady.catch(() => undefined); // only aborts reject it; the batches chained on it see that

    const inflight = new Set<Promise<void>>();
    let failure: unknown;
    let seq = 0;
    const acked: boolean[] = [];
    let low = 0; // every batch below `low` is acknowledged
    const endsIn = new Map<number, Sent[]>(); // batch -> partitions whose last record it holds
    let queued: Sent[] = [];
    let verifying: Promise<void> | undefined;
    const resend: number[] = [];

    const verifyQueued = (): void => {
      if (verifying !== undefined || queued.length === 0 || failure !== undefined) return;
      const items = queued;
      queued = [];
      verifying = this.verify(address, receiver, items, resend)
        .catch((e: unknown) => {
          failure ??= e;
        })
        .finally(() => {
          verifying = undefined;
          verifyQueued();
        });
    };
    const ready = (items: Sent[]): void => {
      for (const it of items) {
        const st = this.parts.get(it.p)!;
        if (st.state === 'copying') st.state = 'verifying';
        queued.push(it);
      }
      verifyQueued();
    };
    const launch = (body: Buffer): void => {
      const k = seq++;
      this.batches++;
      const pr: Promise<void> = receiverReady.then(() => this.send(address, body)).then(
        () => {
          acked[k] = true;
          while (acked[low] === true) {
            const done = endsIn.get(low);
            if (done !== undefined) {
              endsIn.delete(low);
              ready(done);
            }
            low++;
          }
        },
        (e: unknown) => {
          failure ??= e;
        },
      );
      const tracked = pr.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
    };
    const flush = async (): Promise<void> => {
      const body = enc.take();
      if (body !== undefined) launch(body);
      while (inflight.size >= window && failure === undefined) await Promise.race(inflight);
      if (failure !== undefined) throw failure;
      if (this.aborted) throw new Aborted('migration stopped');
      // let serving traffic and heartbeats run between batches
      await nextTurn();
    };
    const partitionSent = (it: Sent): void => {
      if (enc.count > 0) {
        // its last record is in the batch being built
        let list = endsIn.get(seq);
        if (list === undefined) endsIn.set(seq, (list = []));
        list.push(it);
      } else if (seq === 0 || seq - 1 < low) {
        ready([it]); // nothing of it is unacknowledged
      } else {
        let list = endsIn.get(seq - 1);
        if (list === undefined) endsIn.set(seq - 1, (list = []));
        list.push(it);
      }
    };
    const add = async (st: PartState, first: boolean, group: string, key: string, value: Buffer | null, version: number, expiresAt: number, type = 0): Promise<void> => {
      // tombstones travel without their local forget time
      const exp = value === null ? 0 : expiresAt;
      if (!enc.add(group, key, value, version, exp, type)) {
        await flush();
        enc.add(group, key, value, version, exp, type);
      }
      if (first) {
        const size = FRAME_OVERHEAD + group.length + key.length + (value?.length ?? 0);
        st.entriesDone++;
        st.bytesDone += size;
        st.bytesTotal += size;
        this.sent++;
      }
      if (enc.full) await flush();
    };

    let sinceTurn = 0;
    try {
      for (const p of partitions) {
        if (this.aborted) throw new Aborted('migration stopped');
        const st = this.parts.get(p)!;
        if (!st.pendingReceivers.has(receiver)) continue;
        const copies = st.copies.get(receiver) ?? 0;
        st.copies.set(receiver, copies + 1);
        const first = copies === 0;
        st.state = 'copying';
        const sum = emptyChecksum();
        for (const [group, g] of o.local.groups) {
          const fromDisk = o.disk?.(group, p);
          if (fromDisk === undefined) {
            for (const [key, e] of g.store.partitionEntries(p)) {
              // the common case never awaits: a batch fills without leaving this loop
              if (enc.full || !enc.add(group, key, e.value, e.version, e.value === null ? 0 : e.expiresAt, e.type)) {
                await add(st, first, group, key, e.value, e.version, e.expiresAt, e.type);
              } else if (first) {
                const size = FRAME_OVERHEAD + group.length + key.length + (e.value?.length ?? 0);
                st.entriesDone++;
                st.bytesDone += size;
                st.bytesTotal += size;
                this.sent++;
                if (enc.full) await flush();
              }
              if (e.value !== null) addToChecksum(sum, group, key, e.version);
              if (++sinceTurn >= ENCODE_SLICE) {
                sinceTurn = 0;
                await nextTurn();
              }
            }
          } else {
            const now = Date.now();
            for await (const r of fromDisk) {
              await add(st, first, group, r.key, r.value, r.version, r.expiresAt, r.type ?? 0);
              if (r.value !== null && (r.expiresAt === 0 || r.expiresAt > now)) addToChecksum(sum, group, r.key, r.version);
            }
          }
        }
        partitionSent({ p, sum });
      }
      // the last batch, then wait for every acknowledgement and verification
      const body = enc.take();
      if (body !== undefined) launch(body);
      this.timing.encoded = this.exec.now() - this.started;
      while (inflight.size > 0) await Promise.race(inflight);
      if (failure !== undefined) throw failure;
      this.timing.acked = this.exec.now() - this.started;
      while (verifying !== undefined) await verifying;
      if (failure !== undefined) throw failure;
    } finally {
      // leave nothing running behind a failure: later rounds start from the parts' state
      await Promise.allSettled([...inflight]);
      if (verifying !== undefined) await verifying.catch(() => undefined);
    }
    o.onProgress();
    // partitions whose copy differed: copy them again now (each at most MAX_COPIES times)
    if (resend.length > 0 && !this.aborted) await this.stream(receiver, resend.sort((a, b) => a - b));
  }

  /**
   * Compare what the receiver holds with what was sent; a partition that differs is summed again
   * here (a write may have raced its copy) and queued for another copy if it still differs.
   */
  private async verify(address: string, receiver: NodeId, items: Sent[], resend: number[]): Promise<void> {
    const o = this.exec.opts;
    const theirs = await this.checksums(address, items);
    for (let i = 0; i < items.length; i++) {
      const { p, sum } = items[i]!;
      const st = this.parts.get(p)!;
      const t = theirs[i];
      let same = t !== undefined && sameChecksum(sum, t);
      if (!same && t !== undefined) same = sameChecksum(await partitionChecksum(o.local, p, o.disk), t);
      if (!same && (st.copies.get(receiver) ?? 0) < MAX_COPIES) {
        resend.push(p);
        continue;
      }
      if (!same) {
        // writes racing the check can keep sums apart; the data itself is merged by LWW
        o.logger.warn({ migration: this.migration.id, partition: p, to: receiver }, `checksum still differs after ${MAX_COPIES} copies; accepting`);
        st.mismatched = true;
      }
      st.pendingReceivers.delete(receiver);
      if (st.pendingReceivers.size === 0) {
        st.state = 'done';
        st.verified = !st.mismatched;
        // what was sent is the total now (the key count estimate included tombstones and expired values)
        st.entriesTotal = st.entriesDone;
        st.bytesTotal = Math.max(st.bytesTotal, st.bytesDone);
      }
    }
    o.onProgress();
  }

  /** Entries per group this node holds in memory of `partitions`: what the receiver is told to expect. */
  private expected(partitions: readonly number[]): MigrateReadyRequest['expected'] {
    const out: { group: string; entries: number }[] = [];
    for (const [group, g] of this.exec.opts.local.groups) {
      let entries = 0;
      for (const p of partitions) entries += g.store.partitionKeyCount(p);
      if (entries > 0) out.push({ group, entries });
    }
    return out;
  }

  /**
   * A joining node is registered (and planned for) before its plugins start: ask every few ms
   * until it takes batches, instead of sending a full batch into its 503s and backing off.
   * Gives up after `timeoutMs` (the batches then retry as usual).
   */
  private async waitReady(address: string, expected: MigrateReadyRequest['expected'], timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    const req: MigrateReadyRequest = { migration: this.migration.id, expected };
    while (Date.now() < end) {
      if (this.aborted) throw new Aborted('migration stopped');
      try {
        await this.exec.opts.client.call(MigrateReady, address, req, { from: this.exec.opts.self, deadline: Date.now() + 1000 });
        return;
      } catch (e) {
        // not listening yet, still starting (503) or overloaded: ask again; anything else: just send
        if (isJincacheError(e) && e.status !== 503 && e.code !== 'PEER_UNAVAILABLE' && e.code !== 'TIMEOUT') return;
      }
      await sleep(20);
    }
  }

  /** The receiver's sums for `items` (it may answer from what it applied when they match ours, see the plugin). */
  private async checksums(address: string, items: readonly Sent[]): Promise<(Checksum | undefined)[]> {
    const ps = items.map((i) => i.p);
    const body = await this.request(MigrateVerify, address, { migration: this.migration.id, partitions: ps, sums: items.map((i): [number, number] => [i.sum.count, i.sum.sum]) });
    return ps.map((_, i) => {
      const s = body.sums[i];
      return s === undefined ? undefined : { count: s[0], sum: s[1] };
    });
  }

  private async send(address: string, body: Buffer): Promise<void> {
    const { bandwidth } = this.exec.opts.settings();
    if (bandwidth !== undefined && bandwidth > 0) {
      // pace: this batch may not start before the previous ones plus their share of the cap
      const now = this.exec.now();
      const wait = this.pacedUntil - now;
      this.pacedUntil = Math.max(this.pacedUntil, now) + (body.length / bandwidth) * 1000;
      if (wait > 0) await sleep(wait);
    }
    await this.request(MigrateBatch, address, { migration: this.migration.id, batch: body });
  }

  /** One peer request with bounded retries (100 ms doubling, 5 tries); stops at once when aborted. */
  private async request<Req, Res>(message: PeerMessage<Req, Res>, address: string, req: Req): Promise<Res> {
    let last: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (this.aborted) throw new Aborted('migration stopped');
      try {
        return await this.exec.opts.client.call(message, address, req, { from: this.exec.opts.self, deadline: Date.now() + this.exec.opts.settings().requestTimeoutMs });
      } catch (e) {
        last = e;
        // a request the receiver refused as malformed is not worth sending again
        if (isJincacheError(e) && e.status >= 400 && e.status < 500 && e.status !== 404) break;
      }
      await sleep(100 * 2 ** attempt);
    }
    if (this.aborted) throw new Aborted('migration stopped');
    throw last instanceof Error ? last : new Error(String(last));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref?.());
}

export class Executor {
  readonly opts: ExecutorOptions;
  private readonly jobs = new Map<string, Job>();

  constructor(opts: ExecutorOptions) {
    this.opts = opts;
  }

  now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /**
   * Bring the jobs in line with the stored migrations and the table in force: start a job for
   * each running migration this node has not started, stop the ones that ended, were cancelled,
   * or whose planned-against version is no longer in force (a newer plan takes over).
   */
  sync(migrations: readonly Migration[], inForce: PartitionTable): void {
    const wanted = new Map<string, Migration>();
    for (const m of migrations) {
      if (m.state !== 'running') continue;
      if (m.kind !== 'repair' && inForce.version !== m.fromVersion) continue;
      wanted.set(m.id, m);
    }
    for (const [id, job] of this.jobs) {
      if (!wanted.has(id)) {
        job.abort();
        this.jobs.delete(id);
      }
    }
    for (const [id, m] of wanted) {
      if (this.jobs.has(id)) continue;
      const job = new Job(this, m, inForce);
      this.jobs.set(id, job);
      if (job.parts.size > 0) this.opts.logger.info({ migration: id, kind: m.kind, partitions: job.parts.size }, 'migration: sending partitions');
      void job.run();
    }
  }

  /** Jobs this node runs now (for progress reports). */
  active(): { id: string; progress: NodeProgress; finished: boolean }[] {
    return [...this.jobs.values()].map((j) => ({ id: j.migration.id, progress: j.progress(), finished: j.finished }));
  }

  stop(): void {
    for (const j of this.jobs.values()) j.abort();
    this.jobs.clear();
  }
}
