/**
 * The per-node load monitor: request rates by operation, bytes in/out, per-partition request
 * rates and hot keys from the request path; memory, CPU, event-loop utilization and lag from the
 * process; stored bytes and entries from a provider. Every `intervalMs` (one window bucket, 1 s
 * by default) it closes a bucket and builds a LoadReport with the node's load score.
 *
 * Cost on the request path (`record`, measured in bench/scenarios/rebalance.ts): a handful of
 * field increments, one typed-array increment for the partition, and a xorshift draw that sends
 * 1 request in `sampleEvery` (8) to its group's top-K sketch. No clock read, no allocation. The
 * counters are sliding windows closed on the tick (RateVector), so the rates are exact per
 * bucket; only the sketch is sampled, and its counts are scaled back up.
 *
 * Why sampling is safe for hot keys: a key worth mirroring carries a large share of the traffic,
 * so 1-in-8 still sees it thousands of times per window; sampling with a PRNG (not every 8th
 * request) avoids aliasing with periodic access patterns.
 */
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type ELDHistogram } from 'node:perf_hooks';
import type { Clock, NodeId } from '../core/types.ts';
import { systemClock } from '../core/types.ts';
import type { Disposer } from '../discovery/registry.ts';
import type { RequestOp } from '../observe/metrics.ts';
import { DEFAULT_SCORE_WEIGHTS, loadScore, type LoadCapacity, type ScoreWeights } from './score.ts';
import { SpaceSaving } from './topk.ts';
import { DEFAULT_BUCKETS, DEFAULT_WINDOW_MS, LoadWindowError, RateVector } from './window.ts';

/** SPEC §5 `load.capacity` defaults, for a monitor built without a config. */
export const DEFAULT_LOAD_CAPACITY: Readonly<LoadCapacity> = Object.freeze({
  qps: 20_000,
  storageBytes: 64 * 1024 * 1024,
  memoryBytes: 1024 ** 3,
  networkBytesPerSec: 100 * 1024 ** 2,
});

/** What one node publishes at `/jincache/load/{id}` and in GET /cluster. */
export interface LoadReport {
  id: NodeId;
  /** clock.now() when the report was built. */
  at: number;
  /** 0..1, see score.ts. */
  score: number;
  /** Requests per second over the window. get: get/mget/exists/ttl; put: put/mset/expire; total: all. */
  qps: { get: number; put: number; delete: number; total: number };
  bytesInPerSec: number;
  bytesOutPerSec: number;
  storedBytes: number;
  entries: number;
  rssBytes: number;
  /** Process CPU time per wall-clock time over the last interval (1 = one core). */
  cpu: number;
  /** Event-loop utilization over the last interval, 0..1. */
  elu: number;
  /** Mean event-loop delay over the last interval, ms. */
  lagMs: number;
  /** partition -> requests per second over the window; only partitions with traffic. */
  partitionQps: Record<number, number>;
  /**
   * Top keys by estimated requests in the last window (decayed; sampled and scaled back up),
   * largest first, at most `hotKeys` of them. qps = count / window seconds.
   */
  hotKeys: HotKey[];
}

export interface HotKey {
  group: string;
  key: string;
  count: number;
  qps: number;
}

/** Readings of the process, behind a seam so tests can drive them. */
export interface ProcessProbe {
  /** Called by LoadMonitor.start(). */
  start(): void;
  /** Called by LoadMonitor.stop(). */
  stop(): void;
  /** Resident set size, bytes. */
  rssBytes(): number;
  /** Total process CPU time (user + system), µs. */
  cpuMicros(): number;
  /** Event-loop utilization since the previous call, 0..1. */
  elu(): number;
  /** Mean event-loop delay since the previous call, ms. */
  lagMs(): number;
}

/** Event-loop delay sampling resolution: a 10 ms timer costs nothing measurable. */
const LAG_RESOLUTION_MS = 10;

/** The real process: memoryUsage().rss, cpuUsage(), eventLoopUtilization(), monitorEventLoopDelay(). */
export function processProbe(): ProcessProbe {
  let lastElu: EventLoopUtilization | undefined;
  let delay: ELDHistogram | undefined;
  return {
    start() {
      lastElu = performance.eventLoopUtilization();
      delay ??= monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
      delay.enable();
    },
    stop() {
      delay?.disable();
    },
    rssBytes: () => process.memoryUsage.rss(),
    cpuMicros() {
      const u = process.cpuUsage();
      return u.user + u.system;
    },
    elu() {
      const now = performance.eventLoopUtilization();
      const d = lastElu === undefined ? now : performance.eventLoopUtilization(now, lastElu);
      lastElu = now;
      return d.utilization;
    },
    lagMs() {
      if (delay === undefined || delay.count === 0) return 0;
      // the histogram records whole timer periods: the lag is what exceeds the resolution
      const lag = Math.max(0, delay.mean / 1e6 - LAG_RESOLUTION_MS);
      delay.reset();
      return lag;
    },
  };
}

export interface LoadTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export interface LoadMonitorOptions {
  /** This node's id, copied into reports. Required. */
  id: NodeId;
  /** Time of reports and windows. @default systemClock */
  clock?: Clock;
  /** Sliding window length, ms. @default 10000 (config `load.window`) */
  windowMs?: number;
  /** Buckets per window. @default 10 */
  buckets?: number;
  /** Tick period: one bucket is closed and one report built per tick. @default windowMs / buckets */
  intervalMs?: number;
  /** Partitions counted (the table's partitionCount). @default 4096 */
  partitionCount?: number;
  /** Hot keys reported; 0 turns hot-key tracking off (no sampling at all). @default 16 (config `load.hot_key_top_k`) */
  hotKeys?: number;
  /** Keys the sketch tracks. @default max(64, 16 x hotKeys) */
  sketchCapacity?: number;
  /** One request in this many is offered to the sketch; a power of two. @default 8 */
  sampleEvery?: number;
  /** What "fully loaded" means. @default DEFAULT_LOAD_CAPACITY (use capacityFromConfig) */
  capacity?: LoadCapacity;
  /** Score weights. @default DEFAULT_SCORE_WEIGHTS (config `load.score_weights`) */
  weights?: ScoreWeights;
  /** Stored bytes and entries of the node, read once per tick. @default zeros */
  stored?: () => { bytes: number; entries: number };
  /** Process readings. @default processProbe() */
  probe?: ProcessProbe;
  /** Timer functions for start()/stop(). @default the global setInterval/clearInterval (unref'd) */
  timers?: LoadTimers;
}

const realTimers: LoadTimers = {
  setInterval(fn, ms) {
    const h = setInterval(fn, ms);
    h.unref(); // a monitor never keeps a process alive on its own
    return h;
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

// indexes of the request counters
const C_GET = 0;
const C_PUT = 1;
const C_DELETE = 2;
const C_TOTAL = 3;
const C_IN = 4;
const C_OUT = 5;
const C_COUNT = 6;

export class LoadMonitor {
  readonly id: NodeId;
  readonly intervalMs: number;
  readonly windowMs: number;
  readonly partitionCount: number;
  private readonly clock: Clock;
  private readonly capacity: LoadCapacity;
  private readonly weights: ScoreWeights;
  private readonly stored: () => { bytes: number; entries: number };
  private readonly probe: ProcessProbe;
  private readonly timers: LoadTimers;
  private readonly hotKeys: number;
  private readonly sampleMask: number;
  private readonly sampleEvery: number;
  /** Per-tick decay of the sketch: 1 - 1/buckets, so its mean memory is one window. */
  private readonly decayFactor: number;
  /** Ticks per window (`buckets`). */
  private readonly buckets: number;

  /** Request counters by C_* index; `current` is written on the request path. */
  private readonly counters: RateVector;
  /** The same Float64Array as counters.current, held directly for the hot path. */
  private readonly c: Float64Array;
  private readonly partitions: RateVector;
  /** The same Float64Array as partitions.current. */
  private readonly pc: Float64Array;
  private rng = 0x9e3779b9 | 0;
  /**
   * The top-K sketches, one per group (undefined when hot keys are off), each of the configured
   * capacity: a sampled request is offered under its key alone. One sketch keyed by
   * `group + NUL + key` made and hashed a new string per sample, 4-5% of a GET or SET at
   * pipeline 16 (bench/profile.ts). Groups are the configured ones (record() is called for
   * served requests only), so their number is bounded by the config.
   */
  private readonly sketches: Map<string, SpaceSaving> | undefined;
  private readonly sketchCapacity: number;
  /** The sketch of the group record() saw last, for the next request of the same group. */
  private lastGroup: string | undefined = undefined;
  private lastSketch: SpaceSaving | undefined = undefined;

  // process readings of the last tick
  private lastTickAt = Number.NaN;
  private lastCpuMicros = Number.NaN;
  private cpu = 0;
  private elu = 0;
  private lagMs = 0;
  private rss = 0;

  private last: LoadReport | undefined;
  private readonly listeners = new Set<(r: LoadReport) => void>();
  private timer: unknown;

  constructor(opts: LoadMonitorOptions) {
    if (typeof opts.id !== 'string' || opts.id.length === 0) {
      throw new LoadWindowError(`id must be a non-empty string. Got: ${String(opts.id)}`);
    }
    this.id = opts.id;
    this.clock = opts.clock ?? systemClock;
    const windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
    const buckets = opts.buckets ?? DEFAULT_BUCKETS;
    this.counters = new RateVector({ size: C_COUNT, windowMs, buckets });
    this.c = this.counters.current;
    this.windowMs = windowMs;
    this.intervalMs = opts.intervalMs ?? windowMs / buckets;
    if (!(this.intervalMs > 0 && Number.isFinite(this.intervalMs))) {
      throw new LoadWindowError(`intervalMs must be a finite number > 0. Got: ${this.intervalMs}`);
    }
    this.partitionCount = opts.partitionCount ?? 4096;
    this.partitions = new RateVector({ size: this.partitionCount, windowMs, buckets });
    this.pc = this.partitions.current;
    this.hotKeys = opts.hotKeys ?? 16;
    if (!Number.isInteger(this.hotKeys) || this.hotKeys < 0) {
      throw new LoadWindowError(`hotKeys must be an integer >= 0. Got: ${this.hotKeys}`);
    }
    const sampleEvery = opts.sampleEvery ?? 8;
    if (!Number.isInteger(sampleEvery) || sampleEvery < 1 || sampleEvery > 1 << 20 || (sampleEvery & (sampleEvery - 1)) !== 0) {
      throw new LoadWindowError(`sampleEvery must be a power of two from 1 to ${1 << 20}. Got: ${sampleEvery}`);
    }
    this.sampleEvery = sampleEvery;
    this.sampleMask = sampleEvery - 1;
    this.sketchCapacity = opts.sketchCapacity ?? Math.max(64, 16 * this.hotKeys);
    this.sketches = this.hotKeys > 0 ? new Map() : undefined;
    if (this.sketches !== undefined) new SpaceSaving({ capacity: this.sketchCapacity }); // a bad capacity fails here, not on the first request
    this.decayFactor = 1 - 1 / buckets;
    this.buckets = buckets;
    this.capacity = opts.capacity ?? DEFAULT_LOAD_CAPACITY;
    this.weights = opts.weights ?? DEFAULT_SCORE_WEIGHTS;
    this.stored = opts.stored ?? (() => ({ bytes: 0, entries: 0 }));
    this.probe = opts.probe ?? processProbe();
    this.timers = opts.timers ?? realTimers;
  }

  /**
   * The request-path hook: one call per served key operation (on the node that serves it).
   * `partition` outside 0..partitionCount-1 is not counted per partition. Bytes are the request
   * and response payload sizes as the caller knows them.
   */
  record(op: RequestOp, group: string, key: string, partition: number, bytesIn: number, bytesOut: number): void {
    const c = this.c;
    switch (op) {
      case 'get':
      case 'mget':
      case 'exists':
      case 'ttl':
        c[C_GET]!++;
        break;
      case 'put':
      case 'mset':
      case 'expire':
        c[C_PUT]!++;
        break;
      case 'delete':
        c[C_DELETE]!++;
        break;
    }
    c[C_TOTAL]!++;
    c[C_IN]! += bytesIn;
    c[C_OUT]! += bytesOut;
    if (partition >= 0 && partition < this.partitionCount) this.pc[partition]!++;
    if (this.sketches !== undefined) {
      // xorshift32: a few ns, and no aliasing with periodic request patterns
      let x = this.rng;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.rng = x;
      if ((x & this.sampleMask) === 0) this.sketchOf(group).offer(key, 1);
    }
  }

  /** Start ticking every `intervalMs`. Idempotent. */
  start(): void {
    if (this.timer !== undefined) return;
    this.probe.start();
    this.lastTickAt = this.clock.now();
    this.counters.restart(this.lastTickAt);
    this.partitions.restart(this.lastTickAt);
    this.lastCpuMicros = this.probe.cpuMicros();
    // memory is a level, not a rate: known from the start, so the first report is not a zero
    this.rss = this.probe.rssBytes();
    this.timer = this.timers.setInterval(() => this.tick(), this.intervalMs);
  }

  /** Stop ticking. Idempotent; the last report stays readable. */
  stop(): void {
    if (this.timer === undefined) return;
    this.timers.clearInterval(this.timer);
    this.timer = undefined;
    this.probe.stop();
  }

  /**
   * Close one bucket: flush the request counters into the windows, read the process, build and
   * publish a report. Called by the timer; tests call it directly with a fake clock.
   */
  tick(): LoadReport {
    const now = this.clock.now();
    this.counters.rotate(now);
    this.partitions.rotate(now);

    const cpuMicros = this.probe.cpuMicros();
    const elapsed = now - this.lastTickAt;
    if (elapsed > 0 && Number.isFinite(this.lastCpuMicros)) this.cpu = (cpuMicros - this.lastCpuMicros) / (elapsed * 1000);
    this.lastCpuMicros = cpuMicros;
    this.lastTickAt = now;
    this.elu = this.probe.elu();
    this.lagMs = this.probe.lagMs();
    this.rss = this.probe.rssBytes();

    const report = this.build(now);
    // decay after reading: the reported counts include this bucket in full
    if (this.sketches !== undefined) {
      for (const s of this.sketches.values()) {
        s.decay(this.decayFactor);
        s.advance();
      }
    }
    this.last = report;
    for (const l of this.listeners) {
      try {
        l(report);
      } catch {
        // a listener's failure must not stop the monitor; listeners log their own errors
      }
    }
    return report;
  }

  /** The report of the last tick (before the first tick: one built now, with no process deltas). */
  report(): LoadReport {
    return this.last ?? this.build(this.clock.now());
  }

  /** Called with every new report; returns a disposer. */
  onReport(listener: (r: LoadReport) => void): Disposer {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The group's sketch, made on its first sampled request. */
  private sketchOf(group: string): SpaceSaving {
    if (group === this.lastGroup) return this.lastSketch!;
    let s = this.sketches!.get(group);
    if (s === undefined) {
      s = new SpaceSaving({ capacity: this.sketchCapacity });
      this.sketches!.set(group, s);
    }
    this.lastGroup = group;
    this.lastSketch = s;
    return s;
  }

  private build(now: number): LoadReport {
    const k = this.counters;
    const qps = { get: k.rate(C_GET), put: k.rate(C_PUT), delete: k.rate(C_DELETE), total: k.rate(C_TOTAL) };
    const bytesInPerSec = k.rate(C_IN);
    const bytesOutPerSec = k.rate(C_OUT);
    const stored = this.stored();
    const partitionQps: Record<number, number> = {};
    this.partitions.forEachRate((p, r) => {
      partitionQps[p] = r;
    });
    const hotKeys: HotKey[] = [];
    if (this.sketches !== undefined) {
      const windowSec = this.windowMs / 1000;
      // a key is hot while it has traffic: one not seen for a whole window is dropped (its
      // decayed count only tends to zero), so the list empties once the traffic stops
      for (const [group, sketch] of this.sketches) {
        for (const h of sketch.top(this.hotKeys, this.buckets)) {
          const count = h.count * this.sampleEvery;
          hotKeys.push({ group, key: h.key, count, qps: count / windowSec });
        }
      }
      // the hottest across groups, as one sketch ranked them
      hotKeys.sort((a, b) => b.count - a.count);
      if (hotKeys.length > this.hotKeys) hotKeys.length = this.hotKeys;
    }
    const score = loadScore(
      { qps: qps.total, storedBytes: stored.bytes, rssBytes: this.rss, cpu: this.cpu, bytesInPerSec, bytesOutPerSec },
      this.capacity,
      this.weights,
    );
    return {
      id: this.id,
      at: now,
      score,
      qps,
      bytesInPerSec,
      bytesOutPerSec,
      storedBytes: stored.bytes,
      entries: stored.entries,
      rssBytes: this.rss,
      cpu: this.cpu,
      elu: this.elu,
      lagMs: this.lagMs,
      partitionQps,
      hotKeys,
    };
  }
}
