/**
 * May this node answer from its own copy? Not after it was paused (SIGSTOP, a long GC, a VM
 * freeze), its etcd lease was lost, or a peer showed it its table is behind: meanwhile the other
 * nodes routed around it, coordinated writes it never saw, and may have moved partitions away.
 *
 * Detecting a pause: a timer ticks every `tickMs`; a gap between ticks longer than `stallMs` is
 * a stall. The request path checks the gap too (`trusted()`), because after SIGCONT the event
 * loop runs the I/O that piled up (the requests queued during the pause) *before* any timer:
 * those requests must already see the node as untrusted.
 *
 * Those queued requests were sent during the stall, but the node reads them with its clock past
 * it: counted from then, a write's deadline would let it be applied long after its client gave up
 * and after writes acknowledged meanwhile elsewhere. `receivedSince()` gives the front door the
 * earliest time a request read now may have arrived: the stall's start, until the event loop has
 * waited for I/O again. That takes many turns, not one (Node accepts the connections queued in
 * the kernel a few per turn: 60 of them took 65 ms and dozens of turns, measured), but while any
 * socket has unread data or a connection waits to be accepted the loop never blocks, so idle
 * time since the stall (`loopIdleMs`) says the backlog is read; a timer on time does not. And a call
 * to a peer that was in flight across the stall times out because of this node, not the peer:
 * `stalledSince(t)` lets the failure detector tell (health/detector.ts).
 *
 * While untrusted the node answers no read from its own copy, for its clients or its peers (the
 * router re-routes them, or answers with the newest copy of the other holders), and coordinates
 * no write another holder can take. It recovers by itself, retried with backoff:
 *  1. confirm the table: read the table version in force from etcd and wait until this node has
 *     installed it (static clusters: nothing to confirm), so it routes by the holders that took
 *     over meanwhile. When etcd cannot be reached (an outage of etcd itself costs every node its
 *     lease), a majority of the members answering heartbeats with this node's table version or
 *     an older one, and none with a newer one, confirms it instead: no table can be committed
 *     without etcd, and one committed while this node was cut off shows in their answers;
 *  2. learn what it missed: a write another holder acknowledged while this node did not confirm
 *     it became a hint for this node, and every heartbeat answer says how many hints the
 *     answering node holds for it (handoff.ts). Once every usable peer has answered a heartbeat
 *     sent after the stall ended, and none holds hints for it, nothing acknowledged is missing
 *     here; writes that reached it during the stall were applied from its socket backlog before
 *     those answers came back. (Writes replicated to it that did not arrive are hints by then.)
 * Only then is it trusted again. A node whose lease expired and was removed holds no partitions
 * under the confirmed table, and gets data back only through a join migration.
 */
import type { PartitionTable } from '../core/placement/table.ts';
import type { Clock, NodeId } from '../core/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { ClusterEvents } from './events.ts';

/**
 * Idle time of the event loop after a stall that shows its backlog is read. The loop does not
 * block while any socket has input: during a drain its idle time stays under 0.001 ms (measured);
 * the margin covers a scheduler that preempts the process inside an I/O wait that returns at once.
 */
export const DRAIN_IDLE_MS = 10;

export type TrustState =
  | { kind: 'trusted' }
  /** Recovering: `since` is when the node stopped trusting itself (the last tick before a stall). */
  | { kind: 'recovering'; reason: string; since: number; attempt: number; at: number };

export interface SelfTrustOptions {
  self: NodeId;
  clock: Clock;
  /** A gap between ticks longer than this is a stall. */
  stallMs: number;
  /** Default stallMs / 4. */
  tickMs?: number;
  /** The table version in force in the cluster (an etcd read); undefined: nothing to confirm (static). */
  confirmTable?: () => Promise<number>;
  /** When confirmTable fails: whether a majority of members answered since `t` with table `mine` or older, none newer. */
  tableAgreedSince?: (t: number, mine: number) => boolean;
  tables: { table(): PartitionTable; reached(version: number, timeoutMs: number): Promise<boolean> };
  /** Whether every usable peer has answered a heartbeat since `t` and none holds hints for this node. */
  settledSince(t: number): boolean;
  /** How long one recovery attempt waits for settledSince. Default 5000 ms. */
  settleTimeoutMs?: number;
  /** Time the event loop has spent waiting for I/O, ms, cumulative. Default: performance.eventLoopUtilization().idle. */
  loopIdleMs?: () => number;
  logger?: Logger;
  events?: ClusterEvents;
}

export class SelfTrust {
  private readonly opts: SelfTrustOptions;
  private readonly tickMs: number;
  private state: TrustState = { kind: 'trusted' };
  private lastTick: number;
  /**
   * The last stall: from the last tick before it to when it was noticed. `draining` until the
   * loop has been idle for DRAIN_IDLE_MS since (`idle`: loopIdleMs when it was noticed, which
   * counts a stop inside the I/O wait as idle): requests that queued during it may still be read.
   */
  private stall: { since: number; noticed: number; idle: number; draining: boolean } | undefined;
  private readonly loopIdleMs: () => number;
  private timer: NodeJS.Timeout | undefined;
  private recovering: Promise<void> | undefined;
  private stopped = false;
  /** tableSeen checks in flight, by version. */
  private readonly seen = new Map<number, Promise<void>>();
  /** Recoveries completed (GET /cluster). */
  recoveries = 0;

  constructor(opts: SelfTrustOptions) {
    if (!(opts.stallMs > 0)) throw new RangeError(`stallMs must be > 0. Got: ${opts.stallMs}`);
    this.opts = opts;
    this.tickMs = opts.tickMs ?? Math.max(10, Math.floor(opts.stallMs / 4));
    this.lastTick = opts.clock.now();
    this.loopIdleMs = opts.loopIdleMs ?? (() => performance.eventLoopUtilization().idle);
  }

  start(): void {
    this.lastTick = this.opts.clock.now();
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  /** The state now (GET /cluster). */
  current(): TrustState {
    return this.state;
  }

  /**
   * O(1), on the request path: may this node answer from its own copy now? A gap since the last
   * tick longer than `stallMs` counts as a stall at once (see the file comment).
   */
  trusted(): boolean {
    this.noticeStall(this.opts.clock.now());
    return this.state.kind === 'trusted';
  }

  /**
   * O(1), on the request path: the earliest time a request this node reads now may have reached
   * it. Now, except right after a stall, while the requests that queued in its sockets are read:
   * then the stall's start (the front door counts a write's deadline from it).
   */
  receivedSince(): number {
    const now = this.opts.clock.now();
    this.noticeStall(now);
    const stall = this.stall;
    if (stall?.draining !== true) return now;
    if (this.loopIdleMs() - stall.idle < DRAIN_IDLE_MS) return stall.since;
    stall.draining = false;
    return now;
  }

  /** Whether this node stalled after time `t` (ms since epoch): a peer call started at `t` that timed out may have timed out because of it. */
  stalledSince(t: number): boolean {
    this.noticeStall(this.opts.clock.now());
    return this.stall !== undefined && this.stall.noticed > t;
  }

  /** A gap since the last tick longer than stallMs is a stall: recorded, and trust withdrawn, the first time anything looks. */
  private noticeStall(now: number): void {
    if (now - this.lastTick <= this.opts.stallMs || this.stall?.since === this.lastTick) return;
    this.stall = { since: this.lastTick, noticed: now, idle: this.loopIdleMs(), draining: true };
    // also while recovering: a stall then restarts the recovery from it
    this.distrust(`stalled for ${now - this.lastTick} ms`, this.lastTick);
  }

  /**
   * A peer routes by table `version`, newer than this node's (a message stamp, a heartbeat
   * answer). Wait up to `waitMs` for it; if it does not arrive, ask etcd which table is in force:
   * only when that one is newer than this node's (or etcd cannot say) has this node missed
   * something, and it stops trusting its copy. A peer ahead of etcd (a stamp no table has) costs
   * nothing.
   */
  async tableSeen(version: number, waitMs: number): Promise<void> {
    const { tables } = this.opts;
    if (version <= tables.table().version) return;
    // every heartbeat answer may report it: one check per version at a time
    const running = this.seen.get(version);
    if (running !== undefined) return running;
    const check = this.checkSeen(version, waitMs).finally(() => this.seen.delete(version));
    this.seen.set(version, check);
    return check;
  }

  private async checkSeen(version: number, waitMs: number): Promise<void> {
    const { tables, confirmTable } = this.opts;
    if (waitMs > 0 && (await tables.reached(version, waitMs))) return;
    const mine = tables.table().version;
    if (confirmTable !== undefined) {
      try {
        if ((await confirmTable()) <= mine) return;
      } catch {
        // etcd cannot say: assume the peer is right
      }
    }
    if (tables.table().version >= version) return; // it arrived meanwhile
    this.distrust(`a peer routes by table v${version}; this node has v${mine}`);
  }

  /** Stop trusting this node's copy (lease lost, table behind); it recovers by itself. */
  distrust(reason: string, since = this.opts.clock.now()): void {
    if (this.stopped) return;
    if (this.state.kind === 'recovering') {
      // a second reason while recovering: recover from the earlier start
      this.state = { ...this.state, since: Math.min(this.state.since, since), at: this.opts.clock.now() };
      return;
    }
    this.state = { kind: 'recovering', reason, since, attempt: 0, at: this.opts.clock.now() };
    this.opts.logger?.warn({ reason }, 'not answering from this node\'s own copy until it has confirmed the table and caught up');
    this.opts.events?.note('status', `${this.opts.self} stopped answering from its own copy: ${reason}`);
    this.recovering ??= this.recover().finally(() => (this.recovering = undefined));
  }

  private tick(): void {
    const now = this.opts.clock.now();
    this.noticeStall(now);
    this.lastTick = now;
  }

  private async recover(): Promise<void> {
    for (let attempt = 0; !this.stopped && this.state.kind === 'recovering'; attempt++) {
      const at = this.state.at;
      this.state = { ...this.state, attempt };
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)).unref());
      try {
        const confirm = this.opts.confirmTable;
        if (confirm !== undefined) {
          let version: number | undefined;
          try {
            version = await confirm();
          } catch (e) {
            // etcd unreachable: the peers may confirm the table instead
            const agreed = this.opts.tableAgreedSince?.(at, this.opts.tables.table().version) ?? false;
            if (!agreed) throw new Error(`cannot confirm the table: etcd: ${(e as Error).message}; a majority of peers has not answered with this table since`);
          }
          if (version !== undefined && !(await this.opts.tables.reached(version, 5000))) throw new Error(`table v${version} did not arrive`);
        }
        const end = this.opts.clock.now() + (this.opts.settleTimeoutMs ?? 5000);
        while (!this.opts.settledSince(at)) {
          if (this.stopped || this.opts.clock.now() > end) throw new Error('peers have not all answered since the stall, or hold hints for this node');
          await new Promise((r) => setTimeout(r, 25).unref());
        }
        // another stall (or reason) while recovering restarts from it
        if (this.state.kind === 'recovering' && this.state.at !== at) continue;
        const reason = this.state.kind === 'recovering' ? this.state.reason : '';
        this.state = { kind: 'trusted' };
        this.recoveries++;
        this.opts.logger?.info({ reason, attempts: attempt + 1 }, 'answering from this node\'s own copy again');
        this.opts.events?.note('status', `${this.opts.self} confirmed table v${this.opts.tables.table().version} and its peers' hints: answering from its own copy again`);
        return;
      } catch (e) {
        if (attempt === 0 || attempt % 10 === 0) this.opts.logger?.warn({ err: (e as Error).message, attempt }, 'recovery after a pause failed; retrying');
      }
    }
  }
}
