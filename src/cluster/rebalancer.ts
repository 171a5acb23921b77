/**
 * Cluster-level load balancing: the node's LoadService (monitor, top-K, strategies) with the
 * cluster I/O it needs: load reports published to etcd `/jincache/load/{id}` under the node's
 * lease (or fetched from each peer in a static cluster), `POST /cluster/rebalance`, and the
 * leader's periodic check (hysteresis and rate limit from the RebalanceGovernor).
 *
 * A plan that is not a dry run becomes the next partition table version through the migration
 * engine (TableManager.propose: the moving partitions are copied before the table commits). Only
 * the leader changes the table: another node hands an applying request to it (RebalanceMessage).
 */
import type { Config } from '../config/schema.ts';
import { isRebalanceError } from '../core/rebalance/errors.ts';
import type { RebalancePlan } from '../core/rebalance/strategies.ts';
import type { NodeId } from '../core/types.ts';
import { JincacheError } from '../core/errors.ts';
import type { Election } from '../discovery/registry.ts';
import type { LoadReport } from '../load/monitor.ts';
import type { LoadService, RebalanceRequest } from '../load/service.ts';
import { shrinkRates } from '../load/shrink.ts';
import type { Logger } from '../observe/logger.ts';
import type { PeerCaller } from '../peer/client.ts';
import { LoadReportMessage, RebalanceMessage } from '../peer/messages.ts';
import type { PeerServer } from '../peer/server.ts';
import type { ClusterEvents } from './events.ts';
import type { Members } from './membership.ts';
import type { TableManager } from './table-manager.ts';

/** What POST /cluster/rebalance answers: the plan without its table, plus what was done. */
export interface RebalanceAnswer {
  strategy: string;
  dryRun: boolean;
  applied: boolean;
  ringVersion: number;
  moves: RebalancePlan['moves'];
  weights?: Record<NodeId, number>;
  before: Record<NodeId, number>;
  after: Record<NodeId, number>;
  mean: number;
  withinThreshold: boolean;
  reason?: string;
}

/** Where load reports live in an etcd cluster. */
export interface ReportStore {
  publish(report: LoadReport): Promise<void>;
  readAll(): Promise<LoadReport[]>;
}

export interface RebalancerOptions {
  self: NodeId;
  load: LoadService;
  /** config `rebalance`, read at every use (live: threshold). */
  settings(): Config['rebalance'];
  /** config `load.window` and `load.hot_key_top_k`. */
  windowMs: number;
  hotKeyTopK: number;
  tables: TableManager;
  /** etcd clusters only: who may change the table. */
  election?: Election;
  /** etcd clusters only: where the reports are published. */
  reports?: ReportStore;
  members: Members;
  usable(id: NodeId): boolean;
  client: PeerCaller;
  server: PeerServer;
  requestTimeoutMs(): number;
  logger: Logger;
  events: ClusterEvents;
}

export class Rebalancer {
  private readonly opts: RebalancerOptions;
  private reports = new Map<NodeId, LoadReport>();
  private timer: NodeJS.Timeout | undefined;
  private refresher: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(opts: RebalancerOptions) {
    this.opts = opts;
    opts.server.handle(LoadReportMessage, () => opts.load.report() ?? null);
    opts.server.handle(RebalanceMessage, (req) => this.run(req, 'requested'));
  }

  start(): void {
    this.refresher = setInterval(() => void this.refresh(), 1000);
    this.refresher.unref();
    const s = this.opts.settings();
    if (s.enabled) {
      this.timer = setInterval(() => void this.check(), s.interval);
      this.timer.unref();
    }
  }

  stop(): void {
    clearInterval(this.timer);
    clearInterval(this.refresher);
  }

  /** GET /cluster: per-node load figures, the hottest keys cluster-wide, this node's report. */
  info(): Record<string, unknown> {
    const nodeStats: Record<NodeId, Record<string, number>> = {};
    const hot: { group: string; key: string; count: number; node: NodeId }[] = [];
    for (const [id, r] of this.allReports()) {
      nodeStats[id] = { loadScore: r.score, qps: r.qps.total, memoryBytes: r.rssBytes, storedBytes: r.storedBytes, entries: r.entries, cpu: r.cpu };
      for (const h of r.hotKeys) hot.push({ group: h.group, key: h.key, count: h.count, node: id });
    }
    hot.sort((a, b) => b.count - a.count);
    return { nodeStats, hotKeys: hot.slice(0, this.opts.hotKeyTopK), load: this.opts.load.report() };
  }

  private allReports(): Map<NodeId, LoadReport> {
    const own = this.opts.load.report();
    const out = new Map(this.reports);
    if (own !== undefined) out.set(this.opts.self, own);
    return out;
  }

  /** The latest report of every table member (this node's own is always fresh), de-noised for the planners. */
  nodeReports(): LoadReport[] {
    const members = new Set(this.opts.tables.table().members.map((m) => m.id));
    const windowSeconds = this.opts.windowMs / 1000;
    // planners see de-noised per-partition rates (see shrink.ts for why)
    return [...this.allReports().values()].filter((r) => members.has(r.id)).map((r) => ({ ...r, partitionQps: shrinkRates(r.partitionQps, windowSeconds) }));
  }

  /** POST /cluster/rebalance. */
  async handle(body: unknown): Promise<RebalanceAnswer> {
    const req = parseRequest(body);
    await this.refresh();
    return this.run(req, 'requested');
  }

  /** Plan with the given strategy; apply unless a dry run. */
  private async run(req: RebalanceRequest, why: string): Promise<RebalanceAnswer> {
    const { tables, election } = this.opts;
    let plan: RebalancePlan;
    try {
      plan = this.opts.load.rebalance(req, this.nodeReports());
    } catch (e) {
      if (isRebalanceError(e)) throw new JincacheError('BAD_REQUEST', e.message);
      throw e;
    }
    const answer: RebalanceAnswer = {
      strategy: plan.strategy,
      dryRun: req.dryRun === true,
      applied: false,
      ringVersion: tables.table().version,
      moves: plan.moves,
      ...(plan.weights ? { weights: plan.weights } : {}),
      before: plan.before,
      after: plan.after,
      mean: plan.mean,
      withinThreshold: plan.withinThreshold,
    };
    if (req.dryRun) return answer;
    if (plan.nextTable === undefined || plan.moves.length === 0) return { ...answer, reason: 'nothing to move' };
    if (election === undefined) {
      throw new JincacheError('NOT_IMPLEMENTED', 'applying a rebalance needs etcd: a static cluster derives its table from the membership (use dryRun to see the plan)');
    }
    if (!election.isLeader()) return this.forwardToLeader(req, answer);
    const current = tables.table();
    // the migration engine copies the moving partitions first and commits the table when they
    // are in place (warm handoff); false when the table changed meanwhile or a plan is running
    const automatic = why === 'automatic';
    // every node emits the 'rebalance' event when it sees the migration record (service.ts)
    const accepted = plan.nextTable.version === current.version + 1 && (await tables.propose(plan.nextTable, { strategy: plan.strategy, automatic, moves: plan.moves.length }));
    if (!accepted) return { ...answer, reason: 'the partition table changed while planning, or a migration is running; run again' };
    this.opts.load.governor?.rebalanced();
    this.opts.logger.info({ strategy: plan.strategy, moves: plan.moves.length, version: plan.nextTable.version, why }, 'rebalance accepted');
    return { ...answer, applied: true, ringVersion: plan.nextTable.version };
  }

  /** Only the leader changes the table: hand an applying request to it. */
  private async forwardToLeader(req: RebalanceRequest, answer: RebalanceAnswer): Promise<RebalanceAnswer> {
    const leader = this.opts.election?.leader();
    // "the leader is me" while not elected: leadership is changing; never forward to ourselves
    const member = leader && leader !== this.opts.self ? this.opts.members.member(leader) : undefined;
    if (member === undefined) return { ...answer, reason: 'no leader is elected right now; run again' };
    const deadline = Date.now() + this.opts.requestTimeoutMs() * 3;
    return (await this.opts.client.call(RebalanceMessage, member.address, { ...(req.strategy !== undefined ? { strategy: req.strategy } : {}), dryRun: false }, { from: this.opts.self, deadline })) as RebalanceAnswer;
  }

  /** The leader's periodic check: act only on sustained imbalance, at most once per min_interval. */
  private async check(): Promise<void> {
    if (this.busy || this.opts.election?.isLeader() !== true) return;
    this.busy = true;
    try {
      await this.refresh();
      const decision = this.opts.load.governor?.check(this.nodeReports());
      if (decision?.action !== 'rebalance') return;
      this.opts.events.emit('rebalance', { strategy: null, moves: 0, automatic: true, version: null }, `load imbalance sustained over ${decision.streak} checks`, 'imbalance');
      await this.run({ strategy: this.opts.settings().strategy }, 'automatic');
    } catch (e) {
      this.opts.logger.warn({ err: e }, 'automatic rebalance failed');
    } finally {
      this.busy = false;
    }
  }

  /** Publish this node's report (the load service calls it every tick). */
  publish(report: LoadReport): Promise<void> {
    return this.opts.reports?.publish(report) ?? Promise.resolve();
  }

  private async refresh(): Promise<void> {
    const store = this.opts.reports;
    if (store === undefined) return this.refreshFromPeers();
    try {
      const next = new Map<NodeId, LoadReport>();
      for (const r of await store.readAll()) next.set(r.id, r);
      this.reports = next;
    } catch {
      // etcd unreachable: keep the last reports
    }
  }

  /** Static clusters have no etcd to publish to: ask each usable peer for its report instead. */
  private async refreshFromPeers(): Promise<void> {
    const { members, self } = this.opts;
    const next = new Map<NodeId, LoadReport>();
    await Promise.all(
      members.list().map(async (m) => {
        if (m.id === self || !this.opts.usable(m.id)) return;
        try {
          const r = (await this.opts.client.call(LoadReportMessage, m.address, undefined, { from: self, deadline: Date.now() + 500 })) as LoadReport | null;
          if (r !== null && r.id === m.id) next.set(m.id, r);
        } catch {
          // unreachable or slow: its row shows no load this round
        }
      }),
    );
    this.reports = next;
  }
}

function parseRequest(body: unknown): RebalanceRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new JincacheError('BAD_REQUEST', 'expected a JSON object {"strategy": "...", "dryRun": bool}');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (k !== 'strategy' && k !== 'dryRun') throw new JincacheError('BAD_REQUEST', `unknown field "${k}": expected strategy and dryRun`);
  if (b.strategy !== undefined && typeof b.strategy !== 'string') throw new JincacheError('BAD_REQUEST', 'strategy must be a string');
  if (b.dryRun !== undefined && typeof b.dryRun !== 'boolean') throw new JincacheError('BAD_REQUEST', 'dryRun must be true or false');
  return { ...(b.strategy !== undefined ? { strategy: b.strategy as string } : {}), dryRun: b.dryRun === true };
}
