/**
 * Cluster-level load balancing (issue 6): wraps the node's LoadPlugin (monitor, top-K, strategies)
 * with the cluster I/O it needs — load reports published to etcd `/jincache/load/{id}` under the
 * node's lease, the cluster's reports read back, `POST /cluster/rebalance`, and the leader's
 * periodic check (hysteresis and rate limit from the RebalanceGovernor).
 *
 * A plan that is not a dry run becomes the next partition table version (compare-and-swap in the
 * table store); the migration engine then moves the data.
 */
import { isRebalanceError } from '../core/rebalance/errors.ts';
import type { RebalancePlan } from '../core/rebalance/strategies.ts';
import type { NodeId } from '../core/types.ts';
import { LoadPlugin, type RebalanceRequest } from '../load/plugin.ts';
import type { LoadReport } from '../load/monitor.ts';
import { shrinkRates } from '../load/shrink.ts';
import type { MetricsSnapshot, RequestOp } from '../observe/metrics.ts';
import { JincacheError } from '../core/errors.ts';
import type { ControlHandler, NodeContext, NodePlugin } from './plugin.ts';
import type { PeerRoute } from '../front/http/server.ts';

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

export class RebalancerPlugin implements NodePlugin {
  readonly name = 'rebalancer';
  readonly load: LoadPlugin;
  private ctx: NodeContext | undefined;
  private reports = new Map<NodeId, LoadReport>();
  private timer: NodeJS.Timeout | undefined;
  private refresher: NodeJS.Timeout | undefined;
  private busy = false;

  constructor() {
    this.load = new LoadPlugin({ publish: (r) => this.publish(r) });
  }

  async start(ctx: NodeContext): Promise<void> {
    this.ctx = ctx;
    // load.enabled: false leaves the monitor unstarted, so record() costs one optional call
    if (!ctx.config.load.enabled) return;
    await this.load.start(ctx);
    this.refresher = setInterval(() => void this.refresh(), 1000);
    this.refresher.unref();
    if (ctx.config.rebalance.enabled) {
      this.timer = setInterval(() => void this.check(), ctx.config.rebalance.interval);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.refresher);
    await this.load.stop();
  }

  /** Request-path hook: one call per key operation served by this node. */
  record(op: RequestOp, group: string, key: string, partition: number, bytesIn: number, bytesOut: number): void {
    this.load.record(op, group, key, partition, bytesIn, bytesOut);
  }

  controlRoutes(): ReadonlyMap<string, ControlHandler> {
    return new Map([['POST /cluster/rebalance', (body: unknown) => this.handleRebalance(body)]]);
  }

  metrics(): Partial<MetricsSnapshot> {
    return this.load.metrics();
  }

  clusterInfo(): Record<string, unknown> {
    const own = this.load.report();
    const reports = new Map(this.reports);
    if (own !== undefined && this.ctx !== undefined) reports.set(this.ctx.id, own);
    const nodeStats: Record<NodeId, Record<string, number>> = {};
    const hot: { group: string; key: string; count: number; node: NodeId }[] = [];
    for (const [id, r] of reports) {
      nodeStats[id] = { loadScore: r.score, qps: r.qps.total, memoryBytes: r.rssBytes, storedBytes: r.storedBytes, entries: r.entries, cpu: r.cpu };
      for (const h of r.hotKeys) hot.push({ group: h.group, key: h.key, count: h.count, node: id });
    }
    hot.sort((a, b) => b.count - a.count);
    return { nodeStats, hotKeys: hot.slice(0, this.ctx?.config.load.hot_key_top_k ?? 16), load: own };
  }

  /** The latest report of every node (this node's own is always fresh). */
  nodeReports(): LoadReport[] {
    const own = this.load.report();
    const out = new Map(this.reports);
    if (own !== undefined && this.ctx !== undefined) out.set(this.ctx.id, own);
    const members = new Set(this.ctx?.table().members.map((m) => m.id) ?? []);
    const windowSeconds = (this.ctx?.config.load.window ?? 10_000) / 1000;
    // planners see de-noised per-partition rates (see shrink.ts for why)
    return [...out.values()].filter((r) => members.has(r.id)).map((r) => ({ ...r, partitionQps: shrinkRates(r.partitionQps, windowSeconds) }));
  }

  private async handleRebalance(body: unknown): Promise<RebalanceAnswer> {
    const req = parseRequest(body);
    await this.refresh();
    return this.run(req, 'requested');
  }

  /** Plan with the given strategy; apply unless a dry run. */
  private async run(req: RebalanceRequest, why: string): Promise<RebalanceAnswer> {
    const ctx = this.ctx!;
    let plan: RebalancePlan;
    try {
      plan = this.load.rebalance(req, this.nodeReports());
    } catch (e) {
      if (isRebalanceError(e)) throw new JincacheError('BAD_REQUEST', e.message);
      throw e;
    }
    const answer: RebalanceAnswer = {
      strategy: plan.strategy,
      dryRun: req.dryRun === true,
      applied: false,
      ringVersion: ctx.table().version,
      moves: plan.moves,
      ...(plan.weights ? { weights: plan.weights } : {}),
      before: plan.before,
      after: plan.after,
      mean: plan.mean,
      withinThreshold: plan.withinThreshold,
    };
    if (req.dryRun) return answer;
    if (plan.nextTable === undefined || plan.moves.length === 0) return { ...answer, reason: 'nothing to move' };
    if (ctx.tableStore === undefined) {
      throw new JincacheError('NOT_IMPLEMENTED', 'applying a rebalance needs etcd: a static cluster derives its table from the membership (use dryRun to see the plan)');
    }
    if (ctx.election?.isLeader() !== true) return this.forwardToLeader(req, answer);
    const current = ctx.table();
    // the migration engine copies the moving partitions first and commits the table when they
    // are in place (warm handoff); false when the table changed meanwhile or a plan is running
    const accepted = plan.nextTable.version === current.version + 1 && (await ctx.tables.propose(plan.nextTable));
    if (!accepted) return { ...answer, reason: 'the partition table changed while planning, or a migration is running; run again' };
    this.load.governor?.rebalanced();
    ctx.event('rebalance', `${why} ${plan.strategy} rebalance: ${plan.moves.length} partitions move (table v${plan.nextTable.version})`);
    ctx.logger.info({ strategy: plan.strategy, moves: plan.moves.length, version: plan.nextTable.version, why }, 'rebalance accepted');
    return { ...answer, applied: true, ringVersion: plan.nextTable.version };
  }

  /** Only the leader changes the table: hand an applying request to it. */
  private async forwardToLeader(req: RebalanceRequest, answer: RebalanceAnswer): Promise<RebalanceAnswer> {
    const ctx = this.ctx!;
    const leader = ctx.election?.leader();
    // "the leader is me" while not elected: leadership is changing; never forward to ourselves
    const member = leader && leader !== ctx.id ? ctx.member(leader) : undefined;
    if (member === undefined) return { ...answer, reason: 'no leader is elected right now; run again' };
    const res = await fetch(new URL('/cluster/rebalance', member.api_address ?? member.address), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(req),
      signal: AbortSignal.timeout(ctx.config.fault_tolerance.request_timeout * 3),
    });
    const body = (await res.json()) as RebalanceAnswer & { message?: string };
    if (!res.ok) throw new JincacheError(res.status === 400 ? 'BAD_REQUEST' : 'PEER_UNAVAILABLE', body.message ?? `leader answered ${res.status}`);
    return body;
  }

  /** The leader's periodic check: act only on sustained imbalance, at most once per min_interval. */
  private async check(): Promise<void> {
    const ctx = this.ctx;
    if (ctx === undefined || this.busy || ctx.election?.isLeader() !== true) return;
    this.busy = true;
    try {
      await this.refresh();
      const decision = this.load.governor?.check(this.nodeReports());
      if (decision?.action !== 'rebalance') return;
      ctx.event('imbalance', `load imbalance sustained over ${decision.streak} checks`);
      await this.run({ strategy: ctx.config.rebalance.strategy }, 'automatic');
    } catch (e) {
      ctx.logger.warn({ err: e }, 'automatic rebalance failed');
    } finally {
      this.busy = false;
    }
  }

  private async publish(report: LoadReport): Promise<void> {
    const etcd = this.ctx?.etcd;
    if (etcd === undefined) return;
    const lease = etcd.registry.leaseId();
    if (lease === '') return; // between leases (rejoining): the next tick publishes
    await etcd.client.put(`${etcd.prefix}/load/${this.ctx!.id}`).value(JSON.stringify(report)).lease(lease);
  }

  peerRoutes(): ReadonlyMap<string, PeerRoute> {
    return new Map<string, PeerRoute>([
      ['/_jincache/load', async () => ({ status: 200, body: JSON.stringify(this.load.report() ?? null), headers: { 'content-type': 'application/json' } })],
    ]);
  }

  /** Static clusters have no etcd to publish to: ask each usable peer for its report instead. */
  private async refreshFromPeers(ctx: NodeContext): Promise<void> {
    const next = new Map<NodeId, LoadReport>();
    await Promise.all(
      ctx.members().map(async (m) => {
        if (m.id === ctx.id || !ctx.usable(m.id)) return;
        try {
          const res = await ctx.peers.request(m.address, { method: 'GET', path: '/_jincache/load', deadline: Date.now() + 500 });
          const r = res.status === 200 ? (JSON.parse(res.body.toString('utf8')) as LoadReport | null) : null;
          if (r !== null && r.id === m.id) next.set(m.id, r);
        } catch {
          // unreachable or slow: its row shows no load this round
        }
      }),
    );
    this.reports = next;
  }

  private async refresh(): Promise<void> {
    const ctx = this.ctx;
    if (ctx === undefined) return;
    const etcd = ctx.etcd;
    if (etcd === undefined) return this.refreshFromPeers(ctx);
    try {
      const all = await etcd.client.getAll().prefix(`${etcd.prefix}/load/`).strings();
      const next = new Map<NodeId, LoadReport>();
      for (const raw of Object.values(all)) {
        try {
          const r = JSON.parse(raw) as LoadReport;
          if (typeof r.id === 'string' && typeof r.score === 'number') next.set(r.id, r);
        } catch {
          // a malformed report is ignored; its node publishes again within a second
        }
      }
      this.reports = next;
    } catch {
      // etcd unreachable: keep the last reports
    }
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
