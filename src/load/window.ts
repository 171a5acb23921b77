/**
 * Sliding-window rate counters: a ring of time buckets (by default 10 x 1 s for `load.window`
 * 10s), so a rate reflects the last window only and not the node's whole life.
 *
 * Why buckets and not an EWMA: an operator reading "qps 1200" expects the requests of the last
 * 10 s divided by 10, and a window forgets a burst exactly `window` after it ended instead of
 * asymptotically. Why not one timestamp per event: memory would grow with the request rate.
 *
 * Cost: `add` is O(1): one clock read, and when the clock has crossed into a new bucket, zeroing
 * at most `buckets` slots. No allocation after construction.
 */
import type { Clock } from '../core/types.ts';
import { systemClock } from '../core/types.ts';

/** `load.window` when none is configured (SPEC §5). */
export const DEFAULT_WINDOW_MS = 10_000;
/** Buckets per window: 10 gives 1 s resolution for the default window. */
export const DEFAULT_BUCKETS = 10;

export interface RateWindowOptions {
  /** Length of the window in ms. @default 10000 (config `load.window`) */
  windowMs?: number;
  /** Number of buckets the window is cut into; the rate forgets old events one bucket at a time. @default 10 */
  buckets?: number;
  /** Source of time for `add()` and `rate()`. @default systemClock */
  clock?: Clock;
}

export class LoadWindowError extends Error {
  readonly code = 'LOAD_INVALID_OPTION';
  override name = 'LoadWindowError';
}

export function isLoadWindowError(e: unknown): e is LoadWindowError {
  return e instanceof LoadWindowError;
}

/** Validates and returns [windowMs, buckets, bucketMs]. Shared with RateVector. */
function checkShape(opts: { windowMs?: number; buckets?: number }): [number, number, number] {
  const windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
  const buckets = opts.buckets ?? DEFAULT_BUCKETS;
  if (!Number.isFinite(windowMs) || windowMs <= 0) {
    throw new LoadWindowError(`windowMs must be a finite number > 0. Got: ${windowMs}`);
  }
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > 3600) {
    throw new LoadWindowError(`buckets must be an integer from 1 to 3600. Got: ${buckets}`);
  }
  return [windowMs, buckets, windowMs / buckets];
}

/**
 * One sliding-window counter. Bucket b holds the events whose time t has
 * floor(t / bucketMs) === b; the ring keeps the last `buckets` of them.
 */
export class RateWindow {
  readonly windowMs: number;
  readonly bucketMs: number;
  private readonly clock: Clock;
  private readonly counts: Float64Array;
  /** Absolute bucket number of the newest slot; -1 until the first event or read. */
  private head = -1;
  /** Time of the first event or read: before a full window has passed, rates divide by less. */
  private startedAt = Number.NaN;
  /** Sum of all slots, kept up to date so `rate()` is O(1) too. */
  private sum = 0;

  constructor(opts: RateWindowOptions = {}) {
    const [windowMs, buckets, bucketMs] = checkShape(opts);
    this.windowMs = windowMs;
    this.bucketMs = bucketMs;
    this.clock = opts.clock ?? systemClock;
    this.counts = new Float64Array(buckets);
  }

  /** Count `n` events now. */
  add(n = 1): void {
    this.addAt(this.clock.now(), n);
  }

  /**
   * Count `n` events at time `now` (ms). For callers that already read the clock, or that
   * accumulate events in a plain field and flush them once per tick (the load monitor does:
   * the request path then does no clock read at all). Times must not go backwards by more than
   * a bucket; an event older than the newest bucket lands in the newest one.
   */
  addAt(now: number, n: number): void {
    this.advance(now);
    const i = this.head % this.counts.length;
    this.counts[i]! += n;
    this.sum += n;
  }

  /** Events in the window that ends now. */
  total(now: number = this.clock.now()): number {
    this.advance(now);
    return this.sum;
  }

  /**
   * Events per second over the window that ends now. The span divided by is the part of the
   * window actually covered: the full buckets plus the elapsed part of the newest, and no more
   * than the time since the first event, so a window that just started is not diluted by time
   * that was never observed.
   */
  rate(now: number = this.clock.now()): number {
    this.advance(now);
    const n = this.counts.length;
    let span = (n - 1) * this.bucketMs + (now - this.head * this.bucketMs);
    if (now - this.startedAt < span) span = now - this.startedAt;
    // at least one bucket: a burst in the first millisecond is not a rate of millions per second
    if (span < this.bucketMs) span = this.bucketMs;
    return (this.sum * 1000) / span;
  }

  /** Forget everything. */
  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.head = -1;
    this.startedAt = Number.NaN;
  }

  private advance(now: number): void {
    const b = Math.floor(now / this.bucketMs);
    if (this.head < 0) {
      this.head = b;
      this.startedAt = now;
      return;
    }
    if (b <= this.head) return;
    const n = this.counts.length;
    // zero the slots being reused; after a gap of a whole window or more, that is all of them
    const steps = b - this.head >= n ? n : b - this.head;
    for (let k = 1; k <= steps; k++) {
      const i = (this.head + k) % n;
      this.sum -= this.counts[i]!;
      this.counts[i] = 0;
    }
    if (steps === n) this.sum = 0; // drop float residue
    this.head = b;
  }
}

export interface RateVectorOptions {
  /** Number of independent counters (e.g. one per partition). Required. */
  size: number;
  /** Length of the window in ms. @default 10000 */
  windowMs?: number;
  /** Number of buckets. @default 10 */
  buckets?: number;
}

/**
 * `size` counters sharing one window, for per-partition request rates and for the monitor's
 * request counters. The hot path is a bare `current[i] += n` with no clock read; the owner calls
 * `rotate(now)` once per bucket (the monitor's tick), which closes the current bucket into the
 * ring in O(size).
 *
 * Rates divide by the time the closed buckets really covered (each bucket remembers the time
 * from the previous rotate to its own), so a late or early tick does not skew them; events
 * flushed by a tick are not misattributed to the tiny elapsed part of a clock-aligned bucket,
 * which is why the monitor uses this and not RateWindow.
 *
 * Memory: (buckets + 2) x size x 8 bytes; 4096 partitions x 10 buckets is ~390 KiB.
 */
export class RateVector {
  readonly size: number;
  readonly windowMs: number;
  readonly bucketMs: number;
  /** Counts since the last rotate(); the request path writes here directly. */
  readonly current: Float64Array;
  /** buckets x size, closed buckets; slot `slot` is the oldest. */
  private readonly ring: Float64Array;
  /** Per counter: sum over the closed buckets in the ring. */
  private readonly sums: Float64Array;
  /** Per slot: ms the bucket covered. */
  private readonly durations: Float64Array;
  private readonly buckets: number;
  private slot = 0;
  /** Σ durations of the closed buckets. */
  private spanMs = 0;
  private lastRotate = Number.NaN;

  constructor(opts: RateVectorOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1 || opts.size > 1 << 24) {
      throw new LoadWindowError(`size must be an integer from 1 to ${1 << 24}. Got: ${opts.size}`);
    }
    const [windowMs, buckets, bucketMs] = checkShape(opts);
    this.size = opts.size;
    this.windowMs = windowMs;
    this.bucketMs = bucketMs;
    this.buckets = buckets;
    this.current = new Float64Array(opts.size);
    this.ring = new Float64Array(buckets * opts.size);
    this.sums = new Float64Array(opts.size);
    this.durations = new Float64Array(buckets);
  }

  /** Count `n` events for counter `i` (no bounds check beyond the typed array's own). */
  inc(i: number, n = 1): void {
    this.current[i]! += n;
  }

  /** Mark `now` as the start of the current bucket (e.g. when the owner starts ticking). */
  restart(now: number): void {
    this.lastRotate = now;
  }

  /**
   * Close the current bucket: it replaces the oldest in the ring and covers the time since the
   * previous rotate() or restart() (bucketMs for the very first). Call once per `bucketMs`.
   */
  rotate(now: number): void {
    const base = this.slot * this.size;
    const ring = this.ring;
    const sums = this.sums;
    const cur = this.current;
    for (let i = 0; i < this.size; i++) {
      const c = cur[i]!;
      const old = ring[base + i]!;
      if (c !== 0 || old !== 0) {
        sums[i]! += c - old;
        ring[base + i] = c;
        cur[i] = 0;
      }
    }
    const d = Number.isNaN(this.lastRotate) ? this.bucketMs : Math.max(0, now - this.lastRotate);
    this.spanMs += d - this.durations[this.slot]!;
    this.durations[this.slot] = d;
    this.slot = (this.slot + 1) % this.buckets;
    this.lastRotate = now;
  }

  /**
   * Calls `fn(i, ratePerSecond)` for every counter with a nonzero rate over the closed buckets
   * (events since the last rotate are not included: call right after rotate()).
   */
  forEachRate(fn: (i: number, perSecond: number) => void): void {
    if (!(this.spanMs > 0)) return;
    const scale = 1000 / this.spanMs;
    const sums = this.sums;
    for (let i = 0; i < this.size; i++) {
      const s = sums[i]!;
      // sums are differences of floats; treat tiny residue as zero
      if (s > 1e-9) fn(i, s * scale);
    }
  }

  /** Rate of counter `i` per second over the closed buckets. */
  rate(i: number): number {
    const s = this.sums[i] ?? 0;
    return s > 1e-9 && this.spanMs > 0 ? (s * 1000) / this.spanMs : 0;
  }
}
