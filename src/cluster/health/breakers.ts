/**
 * Per-peer circuit breakers (cockatiel) and the retry policy for idempotent peer calls.
 *
 * Breaker: a peer's breaker opens when the failure ratio over `windowMs` reaches `threshold`
 * (config fault_tolerance.circuit_threshold) with at least `minimumRps` calls per second, or
 * after `consecutiveFailures` peer failures in a row with no success between them. The streak
 * rule is what catches a peer that hangs (SIGSTOP, a stalled event loop) right after heavy
 * traffic: the ratio counts that traffic's successes until the window rolls past them, about
 * `windowMs` later, while every call since the hang has failed. The breaker lets one probe
 * through after `halfOpenAfterMs` (1 s by default: a paused or
 * partitioned peer is retried every second, never blacklisted for minutes). The failure
 * detector's heartbeats go through the breaker too, so they are the half-open probe even when
 * no request is routed to the peer. While a probe is in flight other calls are refused at once
 * (cockatiel would make them wait for the probe's verdict, which would stall the request path).
 *
 * Retry: exponential backoff with decorrelated jitter, at most `maxRetries` retries, never past
 * the caller's deadline (the whole execution races the deadline, and no attempt starts after it).
 */
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  SamplingBreaker,
  circuitBreaker,
  handleWhen,
  retry,
  type CircuitBreakerPolicy,
  type IBreaker,
} from 'cockatiel';
import type { NodeId } from '../../core/types.ts';
import { JincacheError, isJincacheError } from '../../core/errors.ts';

export type BreakerState = 'closed' | 'half-open' | 'open';

export interface BreakerOptions {
  /** Failure ratio that opens a peer's breaker, 0 < x <= 1. Default 0.5 (config fault_tolerance.circuit_threshold). */
  threshold?: number;
  /** Sampling window. Default 2000 ms. */
  windowMs?: number;
  /** Calls per second needed before the ratio counts (heartbeats alone reach it when nothing else is sent). Default 1. */
  minimumRps?: number;
  /** Time an open breaker waits before letting a probe through. Default 1000 ms. */
  halfOpenAfterMs?: number;
  /** Peer failures in a row (timeouts, refused connections; no success between) that open the breaker whatever the ratio. Default 3. */
  consecutiveFailures?: number;
}

/**
 * Failures that say something about the peer (not about the request): they feed the breaker and
 * the failure detector. A refusal the peer answered (NOT_SERVING: it does not trust its copy
 * after a pause) is not one: the peer is up and reachable, and a write must keep being
 * replicated to it, not hinted (a hint for a node that serves reads again a moment later is a
 * stale read there: issue 17).
 */
export function isPeerFailure(e: unknown): boolean {
  return isJincacheError(e) && (e.code === 'PEER_UNAVAILABLE' || e.code === 'TIMEOUT');
}

/** Worth an attempt at another holder: a peer failure, or a refusal (NOT_SERVING). */
export function isRetryable(e: unknown): boolean {
  return isPeerFailure(e) || (isJincacheError(e) && e.code === 'NOT_SERVING');
}

export function isBreakerOpen(e: unknown): e is BrokenCircuitError {
  return e instanceof BrokenCircuitError;
}

/** An open breaker, or an error made of one (the detector's PEER_UNAVAILABLE "circuit breaker ... is open"). */
function saysBreakerOpen(e: unknown): boolean {
  return isBreakerOpen(e) || (e instanceof Error && isBreakerOpen(e.cause));
}

export class PeerBreakers {
  private opts: Required<BreakerOptions>;
  private readonly breakers = new Map<NodeId, CircuitBreakerPolicy>();
  private readonly listeners = new Set<(peer: NodeId, state: BreakerState) => void>();

  constructor(opts: BreakerOptions = {}) {
    const threshold = opts.threshold ?? 0.5;
    if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`threshold must be in (0, 1]. Got: ${threshold}`);
    this.opts = {
      // cockatiel wants threshold < 1; "open only when every call failed" is the same as 0.999 for any real count
      threshold: Math.min(threshold, 0.999),
      windowMs: opts.windowMs ?? 2000,
      minimumRps: opts.minimumRps ?? 1,
      halfOpenAfterMs: opts.halfOpenAfterMs ?? 1000,
      consecutiveFailures: opts.consecutiveFailures ?? 3,
    };
    if (!(Number.isInteger(this.opts.consecutiveFailures) && this.opts.consecutiveFailures >= 1)) throw new RangeError(`consecutiveFailures must be an integer >= 1. Got: ${this.opts.consecutiveFailures}`);
  }

  /**
   * Change the failure ratio that opens a breaker (live config circuit_threshold). Breakers are
   * rebuilt with it, closed: a peer that is really down is still kept out by the failure
   * detector's health class, and its next failures open the new breaker.
   */
  setThreshold(threshold: number): void {
    if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`threshold must be in (0, 1]. Got: ${threshold}`);
    const t = Math.min(threshold, 0.999);
    if (t === this.opts.threshold) return;
    this.opts = { ...this.opts, threshold: t };
    this.breakers.clear();
  }

  /** The failure ratio in force. */
  get threshold(): number {
    return this.opts.threshold;
  }

  /**
   * Run a call to `peer` through its breaker. Throws BrokenCircuitError at once when the breaker
   * is open, or half-open with a probe already in flight (unless `probe` is set: heartbeats are
   * the probes and may wait their turn).
   */
  async execute<T>(peer: NodeId, fn: () => Promise<T>, probe = false): Promise<T> {
    const b = this.breaker(peer);
    if (!probe && b.state === CircuitState.HalfOpen) throw new BrokenCircuitError();
    return b.execute(fn);
  }

  state(peer: NodeId): BreakerState {
    const b = this.breakers.get(peer);
    if (b === undefined) return 'closed';
    switch (b.state) {
      case CircuitState.Closed:
        return 'closed';
      case CircuitState.HalfOpen:
        return 'half-open';
      case CircuitState.Open:
      case CircuitState.Isolated:
        return 'open';
      default:
        throw new Error(`unexpected circuit state ${String(b.state)}`);
    }
  }

  /** Closed: the router may send to this peer. */
  allows(peer: NodeId): boolean {
    const b = this.breakers.get(peer);
    return b === undefined || b.state === CircuitState.Closed;
  }

  onChange(listener: (peer: NodeId, state: BreakerState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  snapshot(): Record<NodeId, BreakerState> {
    const out: Record<NodeId, BreakerState> = {};
    for (const id of this.breakers.keys()) out[id] = this.state(id);
    return out;
  }

  private breaker(peer: NodeId): CircuitBreakerPolicy {
    let b = this.breakers.get(peer);
    if (b === undefined) {
      b = circuitBreaker(handleWhen(isPeerFailure), {
        halfOpenAfter: this.opts.halfOpenAfterMs,
        breaker: new RatioOrStreakBreaker(
          new SamplingBreaker({ threshold: this.opts.threshold, duration: this.opts.windowMs, minimumRps: this.opts.minimumRps }),
          new ConsecutiveBreaker(this.opts.consecutiveFailures),
        ),
      });
      b.onStateChange(() => {
        const s = this.state(peer);
        for (const l of this.listeners) l(peer, s);
      });
      this.breakers.set(peer, b);
    }
    return b;
  }
}

/** Opens when either rule says so; both see every outcome, so each keeps its own count. */
class RatioOrStreakBreaker implements IBreaker {
  private readonly ratio: IBreaker;
  private readonly streak: IBreaker;

  constructor(ratio: IBreaker, streak: IBreaker) {
    this.ratio = ratio;
    this.streak = streak;
  }

  get state(): unknown {
    return { ratio: this.ratio.state, streak: this.streak.state };
  }

  set state(value: unknown) {
    const v = value as { ratio: unknown; streak: unknown };
    this.ratio.state = v.ratio;
    this.streak.state = v.streak;
  }

  success(state: CircuitState): void {
    this.ratio.success(state);
    this.streak.success(state);
  }

  failure(state: CircuitState): boolean {
    const byRatio = this.ratio.failure(state);
    const byStreak = this.streak.failure(state);
    return byRatio || byStreak;
  }
}

export interface RetryOptions {
  /** Retries after the first attempt. Default 3 (config fault_tolerance.max_retries). */
  maxRetries?: number;
  /** Absolute deadline, ms since epoch: no attempt starts after it and the call rejects with TIMEOUT at it. */
  deadline: number;
  /** First backoff delay. Default 10 ms. */
  initialDelayMs?: number;
  /** Largest backoff delay. Default 200 ms. */
  maxDelayMs?: number;
  /** Which failures are worth another attempt. Default: peer failures and open breakers. */
  retryable?: (e: unknown) => boolean;
}

/**
 * Run `attempt(n)` (n = 0, 1, ...) until it succeeds, a non-retryable error, `maxRetries`
 * retries, or the deadline. Only idempotent operations may be passed here.
 */
export async function withRetry<T>(attempt: (n: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const retryable = opts.retryable ?? ((e: unknown) => isRetryable(e) || isBreakerOpen(e));
  const policy = retry(handleWhen(retryable), {
    maxAttempts: opts.maxRetries ?? 3,
    backoff: new ExponentialBackoff({ initialDelay: opts.initialDelayMs ?? 10, maxDelay: opts.maxDelayMs ?? 200 }),
  });
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new JincacheError('TIMEOUT', `deadline passed after retries`));
    }, Math.max(0, opts.deadline - Date.now()));
  });
  let lastError: unknown;
  // what a caller is told when every attempt failed: an open breaker (a holder taken for gone,
  // tried last) says less than what an earlier attempt at a usable one ran into
  let telling: unknown;
  try {
    return await Promise.race([
      policy.execute(async ({ attempt: n, signal }) => {
        if (signal.aborted || Date.now() >= opts.deadline) throw lastError ?? new JincacheError('TIMEOUT', 'deadline passed before the attempt');
        try {
          return await attempt(n);
        } catch (e) {
          lastError = e;
          if (telling === undefined || !saysBreakerOpen(e)) telling = e;
          throw e;
        }
      }, controller.signal),
      expired,
    ]);
  } catch (e) {
    // at the deadline, report what actually went wrong when we know it
    if (isJincacheError(e) && e.code === 'TIMEOUT' && lastError !== undefined && isJincacheError(lastError)) throw saysBreakerOpen(lastError) && isJincacheError(telling) ? telling : lastError;
    if (saysBreakerOpen(e) && telling !== undefined) throw telling;
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
