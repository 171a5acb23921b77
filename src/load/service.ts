/**
 * The node's load service: owns its LoadMonitor, publishes the report every tick, shows it in
 * GET /cluster, and plans rebalances from the reports of all nodes.
 *
 * I/O is the caller's: reports leave through the `publish` option (the node wires it to etcd
 * `/jincache/load/{id}` under its lease), and `rebalance()` returns a plan without applying it
 * (the leader stores `plan.nextTable` as the new ring version; the migration engine moves data).
 */
import type { Config } from '../config/schema.ts';
import type { PartitionTable } from '../core/placement/table.ts';
import type { Clock, NodeId } from '../core/types.ts';
import { RebalanceGovernor } from '../core/rebalance/governor.ts';
import { RebalanceError } from '../core/rebalance/errors.ts';
import { isStrategy, planRebalance, STRATEGIES, type NodeLoad, type RebalancePlan } from '../core/rebalance/strategies.ts';
import type { MetricsSnapshot, RequestOp } from '../observe/metrics.ts';
import { LoadMonitor, type HotKey, type LoadMonitorOptions, type LoadReport } from './monitor.ts';
import { capacityFromConfig } from './score.ts';

/** Share of `rebalance.threshold` a plan aims for (see rebalance()). */
export const PLAN_MARGIN = 0.5;

export interface LoadServiceOptions {
  id: NodeId;
  clock: Clock;
  logger: { warn(obj: object, msg?: string): void };
  /** config `load` (read at start). */
  load: Config['load'];
  /** config `rebalance`, read at every use (live config: threshold). */
  rebalance(): Config['rebalance'];
  /** Virtual nodes per unit of weight (config cache.lru_replicas). */
  vnodesPerWeight: number;
  table(): PartitionTable;
  /** Bytes and entries this node stores, over every group. */
  stored(): { bytes: number; entries: number };
  /**
   * Called with every report (once per tick). A call is skipped while the previous one is still
   * pending, so a slow store never piles up writes; a rejection is logged at warn, once per
   * failure streak. @default none: the report is only shown in GET /cluster
   */
  publish?: (report: LoadReport) => Promise<void>;
  /** Overrides of the monitor's options (tests: clock, probe, timers). @default from `load` */
  monitor?: Partial<Omit<LoadMonitorOptions, 'id'>>;
}

export interface RebalanceRequest {
  /** One of the three strategies. @default config `rebalance.strategy` */
  strategy?: string;
  /** Plan only; the caller applies nothing. The plan is the same either way. @default false */
  dryRun?: boolean;
}

export class LoadService {
  private readonly opts: LoadServiceOptions;
  private started = false;
  private mon: LoadMonitor | undefined;
  private gov: RebalanceGovernor | undefined;
  private publishing = false;
  private failing = false;
  private offReport: (() => void) | undefined;

  constructor(opts: LoadServiceOptions) {
    this.opts = opts;
  }

  start(): void {
    const { load, clock } = this.opts;
    this.started = true;
    this.mon = new LoadMonitor({
      id: this.opts.id,
      clock,
      windowMs: load.window,
      buckets: 10,
      partitionCount: this.opts.table().partitionCount,
      hotKeys: load.hot_key_top_k,
      capacity: capacityFromConfig(load),
      weights: load.score_weights,
      stored: this.opts.stored,
      ...this.opts.monitor,
    });
    this.gov = new RebalanceGovernor({
      clock,
      threshold: () => this.opts.rebalance().threshold,
      minIntervalMs: this.opts.rebalance().min_interval,
    });
    const publish = this.opts.publish;
    if (publish !== undefined) this.offReport = this.mon.onReport((r) => this.publish(publish, r));
    this.mon.start();
  }

  stop(): void {
    this.started = false;
    this.offReport?.();
    this.offReport = undefined;
    this.mon?.stop();
  }

  /**
   * The request-path hook: call once per key operation this node serves (after routing, on the
   * node that holds the data). A no-op before start().
   */
  record(op: RequestOp, group: string, key: string, partition: number, bytesIn: number, bytesOut: number): void {
    this.mon?.record(op, group, key, partition, bytesIn, bytesOut);
  }

  /** The monitor (undefined before start()), for callers that want to skip the indirection. */
  get monitor(): LoadMonitor | undefined {
    return this.mon;
  }

  /** Hysteresis and rate limit for the leader's periodic check (undefined before start()). */
  get governor(): RebalanceGovernor | undefined {
    return this.gov;
  }

  /** The latest report, undefined before start(). */
  report(): LoadReport | undefined {
    return this.mon?.report();
  }

  /** GET /cluster: this node's report, and its hot keys in place of the node's empty list. */
  clusterInfo(): Record<string, unknown> {
    const r = this.mon?.report();
    return r === undefined ? {} : { load: r, hotKeys: r.hotKeys };
  }

  /** Fields for the node's MetricsSnapshot provider. */
  metrics(): Partial<MetricsSnapshot> {
    const r = this.mon?.report();
    if (r === undefined) return {};
    return {
      loadScore: r.score,
      hotKeys: r.hotKeys,
      load: { qps: r.qps, bytesInPerSec: r.bytesInPerSec, bytesOutPerSec: r.bytesOutPerSec, rssBytes: r.rssBytes, cpu: r.cpu, elu: r.elu, lagMs: r.lagMs },
    };
  }


  /**
   * Plan a rebalance of the current table from every member's report (this node's included:
   * pass what `/jincache/load/` holds). Throws RebalanceError UNKNOWN_STRATEGY for a bad name.
   * Applies nothing, dry run or not: the caller stores `plan.nextTable` unless `dryRun`.
   */
  rebalance(request: RebalanceRequest, reports: readonly NodeLoad[]): RebalancePlan {
    if (!this.started) throw new RebalanceError('INVALID_OPTION', 'the load service is not started');
    const settings = this.opts.rebalance();
    const strategy = request.strategy ?? settings.strategy;
    if (!isStrategy(strategy)) {
      throw new RebalanceError('UNKNOWN_STRATEGY', `strategy must be one of ${STRATEGIES.join(', ')}. Got: ${JSON.stringify(strategy)}`);
    }
    return planRebalance(strategy, this.opts.table(), reports, {
      // Plan to half the threshold. Per-partition rates are noisy samples, and a greedy planner
      // picks exactly the partitions whose sample ran high, so it over-predicts what a move
      // sheds (selection bias). Measured on a real cluster, planning to the threshold itself
      // left the hot node at 1.2-1.5x the mean; the margin absorbs that error.
      threshold: settings.threshold * PLAN_MARGIN,
      clock: this.opts.clock,
      placement: { vnodesPerWeight: this.opts.vnodesPerWeight },
    });
  }

  private publish(publish: (r: LoadReport) => Promise<void>, r: LoadReport): void {
    if (this.publishing) return;
    this.publishing = true;
    publish(r).then(
      () => {
        this.publishing = false;
        this.failing = false;
      },
      (err: unknown) => {
        this.publishing = false;
        if (!this.failing) this.opts.logger.warn({ err }, 'publishing the load report failed');
        this.failing = true;
      },
    );
  }
}
