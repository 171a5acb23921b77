/**
 * The failure detector's I/O half: heartbeats every `heartbeatIntervalMs` (the Ping message,
 * with a short timeout) to every member, passive observations of real requests (`call`), and
 * membership from the registry, all fed to the pure HealthClassifier. Every peer call goes
 * through the peer's circuit breaker; heartbeats are the breaker's half-open probes. Both halves
 * of Ping live here: the answer also says how many hinted writes the answering node holds for
 * the pinging one (handoff.ts), so a node cut off in one direction learns it is behind.
 */
import type { Clock, NodeId, NodeInfo } from '../../core/types.ts';
import type { Logger } from '../../observe/logger.ts';
import type { Metrics, PeerErrorKind } from '../../observe/metrics.ts';
import type { PeerCaller } from '../../peer/client.ts';
import { Ping } from '../../peer/messages.ts';
import type { PeerServer } from '../../peer/server.ts';
import type { Members } from '../membership.ts';
import { JincacheError, isJincacheError } from '../../core/errors.ts';
import { PeerBreakers, isBreakerOpen, isPeerFailure, type BreakerOptions, type BreakerState } from './breakers.ts';
import { HealthClassifier, type PeerHealth } from './classifier.ts';
import type { PeerClocks } from './clocks.ts';
import { failureKind } from './errors.ts';

export interface DetectorOptions {
  self: NodeId;
  clock: Clock;
  client: PeerCaller;
  members: Members;
  /** Serves Ping. */
  server: PeerServer;
  /** Time between heartbeats to each peer. Default 5000 ms (config fault_tolerance.heartbeat_interval). */
  heartbeatIntervalMs?: number;
  /** Heartbeat timeout. Default min(heartbeat interval, 1000 ms), at least 100 ms. */
  pingTimeoutMs?: number;
  /** Latency over which a peer is "slow". Default 500 ms. */
  slowThresholdMs?: number;
  /** How long a recovered peer stays out of the read path. Default max(3000, 4 heartbeats). */
  probationMs?: number;
  breaker?: BreakerOptions;
  metrics?: Metrics;
  logger?: Logger;
  /**
   * Called when a peer's health class changes; `starting` when the peer has not answered this
   * node yet (its unreachability so far, and its first answer, are a start-up, not a failure).
   */
  onTransition?: (id: NodeId, from: PeerHealth, to: PeerHealth, starting: boolean) => void;
  /** Hinted writes this node holds for a peer, told to it in the Ping answer. Default: none. */
  hintsHeldFor?: (id: NodeId) => number;
  /**
   * Called with every successful heartbeat answer: how many hints the peer holds for this node,
   * its table version and RESP address, and when the heartbeat was sent (what the answer can
   * speak for: one that waited in this node's socket during a pause is as old as its heartbeat).
   */
  onPingAnswer?: (id: NodeId, hintsForMe: number, table: number, resp: string, sentAt: number) => void;
  /**
   * Whether this node itself stalled after time `t` (trust.ts SelfTrust.stalledSince). A call
   * started at `t` that timed out across this node's own pause says nothing about the peer, so it
   * counts against neither its health nor its breaker. Default: never.
   */
  stalledSince?: (t: number) => boolean;
  /** Fed with every heartbeat answer: how far each peer's clock is from this node's. Default: not measured. */
  clocks?: PeerClocks;
  /** The table version this node routes by, told in its Ping answers. Default 0. */
  tableVersion?: () => number;
  /** `host:port` of this node's Redis listener, told in its Ping answers. Default none. */
  respAddress?: string;
}

export class FailureDetector {
  readonly classifier: HealthClassifier;
  readonly breakers: PeerBreakers;
  private readonly opts: DetectorOptions;
  private readonly intervalMs: number;
  private readonly pingTimeoutMs: number;
  private members: NodeId[] = [];
  private timer: NodeJS.Timeout | undefined;
  // peers with a heartbeat in flight: never more than one per peer
  private readonly pinging = new Set<NodeId>();
  // when each peer was last pinged
  private readonly lastPing = new Map<NodeId, number>();
  // the timer ticks this often; usable peers are pinged every interval, the others every tick
  private readonly tickMs: number;
  private readonly probationMs: number;
  private offMembers: (() => void) | undefined;
  // peers that answered a call at least once, and those whose unreachability was not reported
  // because they had never answered yet (see emitTransitions)
  private readonly answered = new Set<NodeId>();
  private readonly notYetUp = new Set<NodeId>();
  // heartbeats served here: when each peer last pinged this node, and who waits for its next one
  private readonly pingedAt = new Map<NodeId, number>();
  private readonly pingWaiters = new Map<NodeId, Set<() => void>>();
  // when each peer that is down now turned down
  private readonly downSince = new Map<NodeId, number>();

  constructor(opts: DetectorOptions) {
    this.opts = opts;
    this.intervalMs = opts.heartbeatIntervalMs ?? 5000;
    this.pingTimeoutMs = opts.pingTimeoutMs ?? Math.max(100, Math.min(this.intervalMs, 1000));
    this.probationMs = opts.probationMs ?? Math.max(3000, 4 * this.intervalMs);
    this.classifier = new HealthClassifier({ clock: opts.clock, slowThresholdMs: opts.slowThresholdMs ?? 500, probationMs: this.probationMs });
    this.breakers = new PeerBreakers(opts.breaker);
    this.tickMs = Math.min(this.intervalMs, 250);
    opts.server.handle(Ping, (_req, meta) => {
      if (meta.from !== undefined) this.pinged(meta.from);
      return { id: opts.self, hints: meta.from === undefined ? 0 : (opts.hintsHeldFor?.(meta.from) ?? 0), table: opts.tableVersion?.() ?? 0, resp: opts.respAddress ?? '', now: opts.clock.now() };
    });
  }

  /**
   * Resolves once `peer` has pinged this node again and been answered (the answer tells it of the
   * hints held here for it: Ping's `hints`), or at `deadline`; at once when `peer` has not pinged
   * here within two heartbeat intervals (it does not reach this node, so no answer can tell it)
   * or is down (no process answers there, or it is no member).
   * A write hinted for a holder the detector calls unusable waits for this before it is
   * acknowledged (router.ts): a holder wrongly taken for unreachable, still serving its copy,
   * learns that it lacks the write before any client can have seen the acknowledgment.
   */
  nextPingFrom(peer: NodeId, deadline: number): Promise<void> {
    const now = this.opts.clock.now();
    const last = this.pingedAt.get(peer);
    // a peer with no process (refused) or no membership serves no copy: nothing to tell it,
    // unless it has pinged here since it turned down (restarted: it is catching up, then serves)
    if (last === undefined || now - last > 2 * this.intervalMs || now >= deadline || this.isDown(peer)) return Promise.resolve();
    return new Promise((resolve) => {
      let waiters = this.pingWaiters.get(peer);
      if (waiters === undefined) this.pingWaiters.set(peer, (waiters = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, deadline - now);
      waiters.add(done);
    });
  }

  /** A heartbeat from `peer` is being answered: wake who waits for it once the answer is on its way. */
  private pinged(peer: NodeId): void {
    this.pingedAt.set(peer, this.opts.clock.now());
    const waiters = this.pingWaiters.get(peer);
    if (waiters === undefined || waiters.size === 0) return;
    this.pingWaiters.delete(peer);
    setImmediate(() => {
      for (const done of waiters) done();
    });
  }

  start(): void {
    this.offMembers = this.opts.members.onChange((m) => this.setMembers(m));
    this.setMembers(this.opts.members.list());
    this.timer = setInterval(() => this.heartbeat(), this.tickMs);
    this.timer.unref();
    this.heartbeat();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.offMembers?.();
  }

  /**
   * Resolve once every member has answered a ping and is usable, or after `timeoutMs`. A node that starts
   * together with its peers first sees "connection refused" from the ones still starting; if it
   * served at once it would route writes around owners that are up a moment later, and those
   * owners would then answer reads without the write until the hint arrives.
   */
  async settle(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (this.members.every((id) => this.classifier.confirmed(id))) return true;
      if (Date.now() >= end) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** The registry's membership (this node excluded or not: it is skipped). */
  setMembers(members: readonly NodeInfo[]): void {
    this.members = members.map((m) => m.id).filter((id) => id !== this.opts.self);
    this.classifier.setMembers(this.members);
    this.emitTransitions();
  }

  /** May the router send to `id` now? */
  usable(id: NodeId): boolean {
    return id === this.opts.self || (this.classifier.usable(id) && this.breakers.allows(id));
  }

  /**
   * Surely not running: down (connection refused, or no member) and no heartbeat from it since
   * it turned down. A restarted peer pings before this node's own heartbeat reaches it again;
   * from its first ping it is up, so commands go to it as their coordinator at once.
   */
  isDown(id: NodeId): boolean {
    if (this.health(id) !== 'down') return false;
    const downAt = this.downSince.get(id);
    const pinged = this.pingedAt.get(id);
    return downAt === undefined || pinged === undefined || pinged <= downAt;
  }

  health(id: NodeId): PeerHealth {
    return id === this.opts.self ? 'healthy' : this.classifier.health(id);
  }

  breaker(id: NodeId): BreakerState {
    return this.breakers.state(id);
  }

  /** Run a real request to `peer` through its breaker and learn from its outcome. */
  async call<T>(peer: NodeId, fn: () => Promise<T>, probe = false): Promise<T> {
    const started = performance.now();
    const startedAt = this.opts.clock.now();
    const stalled = this.opts.stalledSince;
    try {
      const out = await this.breakers.execute(peer, stalled === undefined ? fn : () => excusingOwnStall(fn, startedAt, stalled), probe);
      const ms = performance.now() - started;
      this.classifier.success(peer, ms);
      this.opts.metrics?.peerRequest(peer, 'ok', ms / 1000);
      this.emitTransitions();
      this.answered.add(peer);
      return out;
    } catch (e) {
      // not the peer's failure: the breaker let it through uncounted, the classifier never sees it
      if (e instanceof OwnStall) throw e.error;
      if (isBreakerOpen(e)) {
        this.opts.metrics?.peerRequest(peer, 'rejected');
        this.opts.metrics?.peerError(peer, 'breaker_open');
        throw new JincacheError('PEER_UNAVAILABLE', `circuit breaker for ${peer} is open`, { cause: e });
      }
      const ms = performance.now() - started;
      if (isPeerFailure(e)) {
        const kind = failureKind(e);
        this.classifier.failure(peer, kind);
        this.opts.metrics?.peerRequest(peer, kind === 'timeout' ? 'timeout' : 'error', ms / 1000);
        this.opts.metrics?.peerError(peer, metricKind(kind));
        // confirm at once instead of waiting for the next heartbeat: a dead peer refuses the
        // ping (down), a hung one times out again (suspected), so rerouting starts within ms
        if (!probe && this.classifier.usable(peer)) this.ping(peer);
        this.emitTransitions();
      } else {
        this.opts.metrics?.peerRequest(peer, 'error', ms / 1000);
        this.opts.metrics?.peerError(peer, isJincacheError(e) && e.code === 'UNAUTHORIZED' ? 'unauthorized' : 'other');
      }
      throw e;
    }
  }

  /** One tick: ping every member that is due and has no ping in flight. */
  heartbeat(): void {
    const now = this.opts.clock.now();
    for (const id of this.members) {
      if (this.classifier.needsPing(id, this.lastPing.get(id) ?? 0, this.intervalMs)) this.ping(id, now);
    }
    this.emitTransitions();
  }

  /** Ping one peer unless a ping to it is in flight. */
  private ping(id: NodeId, now = this.opts.clock.now()): void {
    if (this.pinging.has(id)) return;
    const member = this.opts.members.member(id);
    if (member === undefined) return;
    this.lastPing.set(id, now);
    this.pinging.add(id);
    const deadline = Date.now() + this.pingTimeoutMs;
    this.call(id, () => this.opts.client.call(Ping, member.address, undefined, { from: this.opts.self, deadline }), true)
      .then((answer) => {
        this.opts.clocks?.sample(id, now, answer.now, this.opts.clock.now());
        this.opts.onPingAnswer?.(id, answer.hints, answer.table, answer.resp, now);
      })
      .catch(() => {
        // counted by call(); the classifier and the breaker have it
      })
      .finally(() => this.pinging.delete(id));
  }

  private emitTransitions(): void {
    const changes = this.classifier.transitions();
    if (changes.length === 0) return;
    for (const { id, from, to } of changes) {
      if (to === 'down') this.downSince.set(id, this.opts.clock.now());
      else this.downSince.delete(id);
      const log = this.opts.logger;
      const unusable = to === 'suspected' || to === 'down';
      // A peer that never answered was not healthy and then lost: it is still starting (the
      // nodes of a cluster start together). Its first refusals and its first answer are not
      // news; a peer that answered before and stops answering is.
      let starting = false;
      if (unusable && !this.answered.has(id)) {
        this.notYetUp.add(id);
        starting = true;
        log?.debug({ peer: id, to }, 'peer not answering yet');
      } else if (!unusable && this.notYetUp.delete(id)) {
        starting = true;
        log?.debug({ peer: id, to }, 'peer answers');
      } else if (unusable && this.opts.members.member(id)?.status === 'leaving') {
        // it said it was leaving: its going away is the plan, not a failure
        log?.info({ peer: id, from, to }, 'peer health changed (it is leaving)');
      } else if (unusable) log?.warn({ peer: id, from, to }, 'peer health changed');
      else log?.info({ peer: id, from, to }, 'peer health changed');
      this.opts.onTransition?.(id, from, to, starting);
    }
  }
}

/** A peer failure that this node's own stall explains (see DetectorOptions.stalledSince). */
class OwnStall {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

/** Run `fn`; a timeout of a call in flight across this node's own stall comes out as OwnStall, which the breaker does not count. */
async function excusingOwnStall<T>(fn: () => Promise<T>, startedAt: number, stalledSince: (t: number) => boolean): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (failureKind(e) === 'timeout' && stalledSince(startedAt)) throw new OwnStall(e);
    throw e;
  }
}

function metricKind(kind: ReturnType<typeof failureKind>): PeerErrorKind {
  switch (kind) {
    case 'refused':
      return 'connect';
    case 'timeout':
      return 'timeout';
    case 'reset':
      return 'reset';
    default:
      return 'other';
  }
}
