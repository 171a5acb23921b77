/**
 * The failure detector's pure core: from observations of one peer (heartbeat answers, real
 * requests and their latency, failures by kind, membership) decide its health class.
 * No timers and no I/O here: the plugin feeds it and a Clock is injected, so tests drive time.
 *
 *   healthy    answers, recent latency under `slowThresholdMs`
 *   slow       answers, but the latency average is over `slowThresholdMs` (still routed to)
 *   suspected  `suspectAfter` failures in a row (timeouts, resets) while it is still a member:
 *              unreachable from here, maybe partitioned or paused; requests reroute at once
 *   down       gone from the membership (lease expired), or connection refused (no process)
 *
 * A single success clears a failure streak: heartbeats keep probing a suspected peer, so a peer
 * that comes back is usable again within one heartbeat interval. After such a recovery it stays
 * "on probation" for `probationMs`: routable for writes, but reads prefer the holder that served
 * for it meanwhile, until hinted writes had time to reach it (see handoff.ts).
 */
import type { Clock, NodeId } from '../../core/types.ts';

export type PeerHealth = 'healthy' | 'slow' | 'suspected' | 'down';

/** Why a request to a peer failed, as far as routing cares. */
export type FailureKind = 'refused' | 'timeout' | 'reset' | 'other';

export interface ClassifierOptions {
  clock: Clock;
  /** Latency average above which a peer is "slow". Default 500 ms (config fault_tolerance.slow_threshold). */
  slowThresholdMs?: number;
  /** Consecutive failures that make a member "suspected". Default 2. */
  suspectAfter?: number;
  /** How long a recovered peer is kept out of the read path. Default 3000 ms. */
  probationMs?: number;
  /** Weight of the newest latency sample in the moving average, 0 < a <= 1. Default 0.3. */
  latencyWeight?: number;
}

interface PeerState {
  member: boolean;
  /** failures since the last success */
  streak: number;
  lastFailure: FailureKind | undefined;
  /** exponentially weighted latency of successful calls, ms; NaN before the first sample */
  latencyMs: number;
  lastOkAt: number;
  lastFailAt: number;
  /** when it last turned usable after being unusable; 0 = never was unusable */
  recoveredAt: number;
  /** the class at the last transitions() call, for change events */
  reported: PeerHealth;
  /** usability after the last observation, for the probation clock */
  wasUsable: boolean;
  /** answered at least once: only a peer that served before can have missed writes meanwhile */
  seenOk: boolean;
}

export interface PeerReport {
  id: NodeId;
  health: PeerHealth;
  latencyMs: number | null;
  failures: number;
  lastOkAt: number;
  lastFailAt: number;
  probation: boolean;
}

export class HealthClassifier {
  private readonly clock: Clock;
  private readonly slowThresholdMs: number;
  private readonly suspectAfter: number;
  private readonly probationMs: number;
  private readonly latencyWeight: number;
  // every peer ever seen; entries of removed members stay (as 'down') so a return is noticed
  private readonly peers = new Map<NodeId, PeerState>();

  constructor(opts: ClassifierOptions) {
    this.clock = opts.clock;
    this.slowThresholdMs = opts.slowThresholdMs ?? 500;
    this.suspectAfter = opts.suspectAfter ?? 2;
    this.probationMs = opts.probationMs ?? 3000;
    this.latencyWeight = opts.latencyWeight ?? 0.3;
    if (!(this.slowThresholdMs > 0)) throw new RangeError(`slowThresholdMs must be > 0. Got: ${this.slowThresholdMs}`);
    if (!Number.isInteger(this.suspectAfter) || this.suspectAfter < 1) throw new RangeError(`suspectAfter must be an integer >= 1. Got: ${this.suspectAfter}`);
    if (!(this.latencyWeight > 0 && this.latencyWeight <= 1)) throw new RangeError(`latencyWeight must be in (0, 1]. Got: ${this.latencyWeight}`);
  }

  /** The current membership (the registry's view); peers not in it are 'down'. */
  setMembers(ids: Iterable<NodeId>): void {
    const now = new Set(ids);
    for (const id of now) this.entry(id).member = true;
    for (const [id, s] of this.peers) {
      if (!now.has(id) && s.member) {
        s.member = false;
        this.noteTransition(s);
      } else if (now.has(id)) this.noteTransition(s);
    }
  }

  success(id: NodeId, latencyMs: number): void {
    const s = this.entry(id);
    s.streak = 0;
    s.lastFailure = undefined;
    s.lastOkAt = this.clock.now();
    s.latencyMs = Number.isNaN(s.latencyMs) ? latencyMs : s.latencyMs + this.latencyWeight * (latencyMs - s.latencyMs);
    this.noteTransition(s);
    s.seenOk = true;
  }

  failure(id: NodeId, kind: FailureKind): void {
    const s = this.entry(id);
    s.streak++;
    s.lastFailure = kind;
    s.lastFailAt = this.clock.now();
    // a timeout says nothing good about latency: count it as one slow sample
    if (kind === 'timeout') s.latencyMs = Number.isNaN(s.latencyMs) ? this.slowThresholdMs * 2 : Math.max(s.latencyMs, this.slowThresholdMs * 2);
    this.noteTransition(s);
  }

  health(id: NodeId): PeerHealth {
    const s = this.peers.get(id);
    return s === undefined ? 'healthy' : classify(s, this.suspectAfter, this.slowThresholdMs);
  }

  /** May requests be routed to this peer? (healthy or slow; unknown peers are given the benefit of the doubt) */
  usable(id: NodeId): boolean {
    const h = this.health(id);
    return h === 'healthy' || h === 'slow';
  }

  /** Answered at least once and usable now (not merely "not known to have failed"). */
  confirmed(id: NodeId): boolean {
    const s = this.peers.get(id);
    return s !== undefined && s.seenOk && this.usable(id);
  }

  /** Usable, but recovered from unusable less than `probationMs` ago. */
  onProbation(id: NodeId): boolean {
    const s = this.peers.get(id);
    if (s === undefined || s.recoveredAt === 0 || !this.usable(id)) return false;
    return this.clock.now() - s.recoveredAt < this.probationMs;
  }

  /** Peers whose class changed since the last call, with their new class (for events and replay). */
  transitions(): { id: NodeId; from: PeerHealth; to: PeerHealth }[] {
    const out: { id: NodeId; from: PeerHealth; to: PeerHealth }[] = [];
    for (const [id, s] of this.peers) {
      const now = classify(s, this.suspectAfter, this.slowThresholdMs);
      if (now !== s.reported) {
        out.push({ id, from: s.reported, to: now });
        s.reported = now;
      }
    }
    return out;
  }

  report(): PeerReport[] {
    return [...this.peers].map(([id, s]) => ({
      id,
      health: classify(s, this.suspectAfter, this.slowThresholdMs),
      latencyMs: Number.isNaN(s.latencyMs) ? null : Math.round(s.latencyMs * 10) / 10,
      failures: s.streak,
      lastOkAt: s.lastOkAt,
      lastFailAt: s.lastFailAt,
      probation: this.onProbation(id),
    }));
  }

  /** Peers this detector knows, members or not. */
  known(): NodeId[] {
    return [...this.peers.keys()];
  }

  /** When to ping a peer next: usable peers every interval, the others at every tick (fast recovery). */
  needsPing(id: NodeId, lastPingAt: number, intervalMs: number): boolean {
    return !this.usable(id) || this.clock.now() - lastPingAt >= intervalMs;
  }

  /** Forget a peer entirely (it left the cluster long ago). */
  forget(id: NodeId): void {
    this.peers.delete(id);
  }

  private entry(id: NodeId): PeerState {
    let s = this.peers.get(id);
    if (s === undefined) {
      s = { member: true, streak: 0, lastFailure: undefined, latencyMs: Number.NaN, lastOkAt: 0, lastFailAt: 0, recoveredAt: 0, reported: 'healthy', wasUsable: true, seenOk: false };
      this.peers.set(id, s);
    }
    return s;
  }

  /** Stamp the recovery time when a peer turns usable again (the probation clock). */
  private noteTransition(s: PeerState): void {
    const now = classify(s, this.suspectAfter, this.slowThresholdMs);
    const isUsable = now === 'healthy' || now === 'slow';
    if (!s.wasUsable && isUsable && s.seenOk) s.recoveredAt = this.clock.now();
    s.wasUsable = isUsable;
  }
}

function classify(s: PeerState, suspectAfter: number, slowThresholdMs: number): PeerHealth {
  if (!s.member) return 'down';
  if (s.streak >= suspectAfter) return s.lastFailure === 'refused' ? 'down' : 'suspected';
  // connection refused means no process listens there: no need to wait for a second failure
  if (s.streak > 0 && s.lastFailure === 'refused') return 'down';
  if (s.latencyMs > slowThresholdMs) return 'slow';
  return 'healthy';
}
