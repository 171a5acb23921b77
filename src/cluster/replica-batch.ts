/**
 * Replication batched per turn of the event loop and per peer. Every write a coordinator applies
 * is sent to the partition's other holders (router.ts replicate); sent one HTTP request each, the
 * peer protocol's framing (headers, a request object, a socket write, the breaker) cost more
 * than the record itself: a 3-node cluster under redis-benchmark spent most of its time in
 * node:http (BENCHMARKS.md "Where the time goes"). Here the records sent to one peer during one
 * turn of the event loop (every socket read of that turn: the writes of all connections) go out
 * as one Replicate request when the turn ends.
 *
 * Each write keeps its own outcome and deadline: replicate() resolves once the request carrying
 * its records is confirmed (undefined), or with the error when it fails, or with TIMEOUT at the
 * write's own deadline if the batch has not been confirmed by then (the caller hints the
 * records, as it did when its own request timed out). The request is given the latest deadline
 * of its writes; one timer per batch settles the writes whose deadlines come earlier.
 *
 * A batch that reaches `maxRecords` records or `maxBytes` value bytes is sent at once and the
 * next write starts another. So is one whose writes were routed by another partition table than
 * the next write's: a request names the one table its records were routed by (a receiver with a
 * newer table passes them on to the holders it lists, router.ts serveReplicate), which must be
 * the table of the write, not whichever the node has when the turn ends.
 */
import { JincacheError, isJincacheError } from '../core/errors.ts';
import type { Clock, NodeId } from '../core/types.ts';
import type { WireRecord } from '../peer/codec.ts';

export interface ReplicaBatchOptions {
  /**
   * Send one Replicate request to `peer` with `records`, due by `deadline` (ms since epoch),
   * saying it was routed by partition table `table`.
   */
  send(peer: NodeId, records: WireRecord[], deadline: number, table: number): Promise<void>;
  clock: Clock;
  /** Run `fn` at the end of this turn of the event loop. Default setImmediate. */
  defer?: (fn: () => void) => void;
  /** Run `fn` after `ms`; returns its canceller. Default setTimeout / clearTimeout. */
  after?: (ms: number, fn: () => void) => () => void;
  /** Most records in one request. Default 4096. */
  maxRecords?: number;
  /** Most value bytes in one request. Default 4 MiB. */
  maxBytes?: number;
}

interface Waiter {
  deadline: number;
  settle: (failure: JincacheError | undefined) => void;
  settled: boolean;
}

interface Batch {
  peer: NodeId;
  records: WireRecord[];
  waiters: Waiter[];
  bytes: number;
  /** The latest deadline of its writes: the request's. */
  deadline: number;
  /** The table version its writes were routed by (one per batch). */
  table: number;
}

export const DEFAULT_BATCH_RECORDS = 4096;
export const DEFAULT_BATCH_BYTES = 4 * 1024 * 1024;

const defaultDefer = (fn: () => void): void => void setImmediate(fn);
const defaultAfter = (ms: number, fn: () => void): (() => void) => {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
};

export class ReplicaBatcher {
  private readonly send: ReplicaBatchOptions['send'];
  private readonly clock: Clock;
  private readonly defer: (fn: () => void) => void;
  private readonly after: (ms: number, fn: () => void) => () => void;
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  /** Batches being filled this turn, by peer. */
  private readonly open = new Map<NodeId, Batch>();
  private deferred = false;
  /** Requests sent so far (one per batch): for tests and INFO-style counters. */
  requests = 0;

  constructor(opts: ReplicaBatchOptions) {
    this.send = opts.send;
    this.clock = opts.clock;
    this.defer = opts.defer ?? defaultDefer;
    this.after = opts.after ?? defaultAfter;
    this.maxRecords = positive('maxRecords', opts.maxRecords ?? DEFAULT_BATCH_RECORDS);
    this.maxBytes = positive('maxBytes', opts.maxBytes ?? DEFAULT_BATCH_BYTES);
  }

  /**
   * Send `records`, routed by partition table version `table`, to `peer` with the other writes
   * of this turn. Resolves undefined once they are confirmed, else with why not (never rejects).
   */
  replicate(peer: NodeId, records: readonly WireRecord[], deadline: number, table: number): Promise<JincacheError | undefined> {
    let bytes = 0;
    for (const r of records) bytes += r.key.length + (r.value?.length ?? 0);
    let batch = this.open.get(peer);
    if (
      batch !== undefined &&
      (batch.table !== table || batch.records.length + records.length > this.maxRecords || batch.bytes + bytes > this.maxBytes)
    ) {
      this.open.delete(peer);
      this.dispatch(batch);
      batch = undefined;
    }
    if (batch === undefined) {
      batch = { peer, records: [], waiters: [], bytes: 0, deadline, table };
      this.open.set(peer, batch);
      if (!this.deferred) {
        this.deferred = true;
        this.defer(this.flush);
      }
    }
    for (const r of records) batch.records.push(r);
    batch.bytes += bytes;
    if (deadline > batch.deadline) batch.deadline = deadline;
    const b = batch;
    return new Promise((resolve) => {
      b.waiters.push({ deadline, settle: resolve, settled: false });
    });
  }

  /** Send every batch filled this turn. */
  private readonly flush = (): void => {
    this.deferred = false;
    const batches = [...this.open.values()];
    this.open.clear();
    for (const b of batches) this.dispatch(b);
  };

  private dispatch(b: Batch): void {
    this.requests++;
    let cancel: (() => void) | undefined;
    // the writes whose own deadline comes before the request's: TIMEOUT at theirs
    const arm = (): void => {
      let earliest = Infinity;
      for (const w of b.waiters) if (!w.settled && w.deadline < earliest) earliest = w.deadline;
      if (earliest >= b.deadline) return;
      cancel = this.after(Math.max(0, earliest - this.clock.now()), () => {
        const now = this.clock.now();
        for (const w of b.waiters) {
          if (w.settled || w.deadline > now) continue;
          w.settled = true;
          w.settle(new JincacheError('TIMEOUT', `replication to ${b.peer} was not confirmed by the write's deadline`));
        }
        arm();
      });
    };
    arm();
    const done = (failure: JincacheError | undefined): void => {
      cancel?.();
      for (const w of b.waiters) {
        if (w.settled) continue;
        w.settled = true;
        w.settle(failure);
      }
    };
    let sent: Promise<void>;
    try {
      sent = this.send(b.peer, b.records, b.deadline, b.table);
    } catch (e) {
      sent = Promise.reject(e);
    }
    sent.then(
      () => done(undefined),
      (e: unknown) => done(isJincacheError(e) ? e : new JincacheError('PEER_UNAVAILABLE', String(e))),
    );
  }
}

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`ReplicaBatcher ${name} must be a positive integer. Got: ${v}`);
  return v;
}
