/**
 * The fault-tolerance plugin: failure detector (heartbeats, breakers, passive observations),
 * failover in the router, and hinted handoff. It lends the router a FailoverSupport, gives the
 * node a `usable` routing hook, serves the fenced write endpoint, and reports peer health in
 * GET /cluster (`health`, `breakers`, `hints`).
 */
import type { NodeId } from '../core/types.ts';
import type { PeerRoute } from '../transport/http/server.ts';
import { encodeRecords, type WireRecord } from '../transport/codec.ts';
import { JincacheError } from './errors.ts';
import { Handoff, HintQueue, type HintQueueOptions } from './handoff.ts';
import { FailureDetector } from './health/detector.ts';
import type { PeerHealth } from './health/classifier.ts';
import type { BreakerState } from './health/breakers.ts';
import type { NodeContext, NodePlugin, RoutingHooks } from './plugin.ts';
import { FENCE_HEADER, RECORD_ROUTE, WRITE_ROUTE, type FailoverSupport, type WriteOp } from './router.ts';

export interface FaultPluginOptions {
  hints?: HintQueueOptions;
  /** Hints per replay batch. Default 500. */
  replayBatch?: number;
}

export class FaultTolerancePlugin implements NodePlugin {
  readonly name = 'fault-tolerance';
  private readonly opts: FaultPluginOptions;
  private ctx: NodeContext | undefined;
  private detector: FailureDetector | undefined;
  private hints: HintQueue | undefined;
  private handoff: Handoff | undefined;
  private replayTimer: NodeJS.Timeout | undefined;
  private disposers: (() => void)[] = [];

  constructor(opts: FaultPluginOptions = {}) {
    this.opts = opts;
  }

  async start(ctx: NodeContext): Promise<void> {
    this.ctx = ctx;
    const ft = ctx.config.fault_tolerance;
    const heartbeat = ft.heartbeat_interval;
    const detector = new FailureDetector({
      self: ctx.id,
      clock: ctx.clock,
      peers: ctx.peers,
      member: (id) => ctx.member(id),
      heartbeatIntervalMs: heartbeat,
      pingTimeoutMs: Math.max(100, Math.min(heartbeat, ft.request_timeout, 1000)),
      slowThresholdMs: ft.slow_threshold,
      // a paused or partitioned peer is probed again every 0.5-2 s, never blacklisted for long
      breaker: { threshold: ft.circuit_threshold, halfOpenAfterMs: Math.min(2000, Math.max(500, 2 * heartbeat)) },
      metrics: ctx.metrics,
      logger: ctx.logger,
      onTransition: (id, from, to) => this.transition(id, from, to),
    });
    this.detector = detector;
    const hints = new HintQueue(this.opts.hints);
    this.hints = hints;
    this.handoff = new Handoff({
      queue: hints,
      batchSize: this.opts.replayBatch ?? 500,
      send: (peer, records) => this.deliver(peer, records),
      onReplayed: (peer, n) => {
        ctx.logger.info({ peer, hints: n }, 'replayed hinted writes');
        ctx.event('handoff', `${n} hinted writes replayed to ${peer}`);
      },
      onFailed: (peer, err) => ctx.logger.debug({ peer, err: (err as Error).message }, 'hint replay failed; will retry'),
    });
    detector.setMembers(ctx.members());
    this.disposers.push(ctx.onMembers((m) => detector.setMembers(m)));
    detector.start();
    // don't take traffic while peers that are merely starting look down (see settle())
    if (!(await detector.settle(Math.max(1000, Math.min(3000, 2 * heartbeat))))) {
      ctx.logger.warn({ health: Object.fromEntries(detector.classifier.report().map((r) => [r.id, r.health])) }, 'starting while some peers do not answer');
    }
    // retry replays that failed, and catch peers that recovered without a class change
    this.replayTimer = setInterval(() => this.replayAll(), Math.max(250, heartbeat));
    this.replayTimer.unref();
    const support: FailoverSupport = {
      onProbation: (id) => (id === ctx.id ? detector.selfOnProbation() : detector.classifier.onProbation(id)),
      call: (peer, fn) => detector.call(peer, fn),
      hint: (peer, records) => {
        const dropped = hints.add(peer, records);
        if (dropped > 0) ctx.logger.warn({ peer, dropped }, 'hint queue full: oldest hints dropped');
      },
      maxRetries: ft.max_retries,
    };
    ctx.router.useFailover(support);
  }

  async stop(): Promise<void> {
    this.ctx?.router.useFailover(undefined);
    this.detector?.stop();
    clearInterval(this.replayTimer);
    for (const d of this.disposers) d();
    this.disposers = [];
  }

  routing(): RoutingHooks {
    return { usable: (id) => this.detector?.usable(id) ?? true };
  }

  /** GET /cluster: `health` (every member, this node included), `breakers`, `hints`. */
  clusterInfo(): Record<string, unknown> {
    const ctx = this.ctx;
    const d = this.detector;
    if (ctx === undefined || d === undefined) return {};
    const health: Record<NodeId, PeerHealth> = {};
    const breakers: Record<NodeId, BreakerState> = {};
    for (const m of ctx.members()) {
      health[m.id] = d.health(m.id);
      if (m.id !== ctx.id) breakers[m.id] = d.breaker(m.id);
    }
    // peers that left but are still known (down), so the dashboard can show them going
    for (const id of d.classifier.known()) health[id] ??= d.health(id);
    return { health, breakers, hints: this.hints?.stats() ?? {} };
  }

  /** For the node's metrics provider: `peers` of the MetricsSnapshot. */
  /** Peer health and breaker gauges for GET /metrics. */
  metrics(): { peers: ReturnType<FaultTolerancePlugin['peerSnapshot']> } {
    return { peers: this.peerSnapshot() };
  }

  peerSnapshot(): { id: string; health: PeerHealth; breaker: BreakerState }[] {
    const ctx = this.ctx;
    const d = this.detector;
    if (ctx === undefined || d === undefined) return [];
    return ctx
      .members()
      .filter((m) => m.id !== ctx.id)
      .map((m) => ({ id: m.id, health: d.health(m.id), breaker: d.breaker(m.id) }));
  }

  peerRoutes(): ReadonlyMap<string, PeerRoute> {
    return new Map<string, PeerRoute>([
      [WRITE_ROUTE, (req, body, url) => this.serveWrite(req.headers[FENCE_HEADER], body, url)],
      [RECORD_ROUTE, async (_req, _body, url) => this.serveRecord(url)],
    ]);
  }

  /** GET /_jincache/ft/record/{group}/{key}: this node's own copy with its version, tombstones included. */
  private serveRecord(url: string): { status: number; body?: Buffer | string; headers?: Record<string, string> } {
    const ctx = this.ctx;
    if (ctx === undefined) throw new JincacheError('PEER_UNAVAILABLE', 'node is stopping');
    const q = url.indexOf('?');
    const parts = (q < 0 ? url : url.slice(0, q)).slice(RECORD_ROUTE.length).split('/');
    if (parts.length !== 2) throw new JincacheError('BAD_REQUEST', 'expected /_jincache/ft/record/{group}/{key}');
    let group: string;
    let key: string;
    try {
      group = decodeURIComponent(parts[0]!);
      key = decodeURIComponent(parts[1]!);
    } catch {
      throw new JincacheError('BAD_REQUEST', 'malformed percent-encoding in path');
    }
    const rec = ctx.local.record(group, key);
    if (rec === undefined) return { status: 404, body: '{"error":"not_found","message":"absent"}', headers: { 'content-type': 'application/json' } };
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'x-jincache-version': String(rec.version) };
    if (rec.expiresAt > 0) headers['x-jincache-expires'] = String(rec.expiresAt);
    if (rec.value === null) headers['x-jincache-tombstone'] = '1';
    return { status: 200, body: rec.value ?? '', headers };
  }

  /** POST /_jincache/ft/write/{op}/{group}/{key}?ttl_ms=&cond= with the fence header: coordinate a write here. */
  private async serveWrite(fenceHeader: string | string[] | undefined, body: Buffer, url: string): Promise<{ status: number; headers?: Record<string, string> }> {
    const ctx = this.ctx;
    if (ctx === undefined) throw new JincacheError('PEER_UNAVAILABLE', 'node is stopping');
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const parts = path.slice(WRITE_ROUTE.length).split('/');
    if (parts.length !== 3) throw new JincacheError('BAD_REQUEST', 'expected /_jincache/ft/write/{op}/{group}/{key}');
    const [opRaw, g, k] = parts as [string, string, string];
    if (opRaw !== 'put' && opRaw !== 'delete' && opRaw !== 'expire') throw new JincacheError('BAD_REQUEST', `unknown write op ${opRaw}`);
    const op: WriteOp = opRaw;
    let group: string;
    let key: string;
    try {
      group = decodeURIComponent(g);
      key = decodeURIComponent(k);
    } catch {
      throw new JincacheError('BAD_REQUEST', 'malformed percent-encoding in path');
    }
    const cfg = ctx.config.cache;
    if (key.length === 0) throw new JincacheError('BAD_REQUEST', 'empty key');
    if (Buffer.byteLength(key) > cfg.max_key_bytes) throw new JincacheError('KEY_TOO_LARGE', `key exceeds ${cfg.max_key_bytes} bytes`);
    if (body.length > cfg.max_value_bytes) throw new JincacheError('VALUE_TOO_LARGE', `value exceeds ${cfg.max_value_bytes} bytes`);
    const fence = Number(Array.isArray(fenceHeader) ? fenceHeader[0] : fenceHeader);
    if (!Number.isFinite(fence)) throw new JincacheError('BAD_REQUEST', `missing or bad ${FENCE_HEADER}`);
    const ttlRaw = params.get('ttl_ms');
    const ttlMs = ttlRaw === null ? undefined : Number(ttlRaw);
    if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs >= 0)) throw new JincacheError('BAD_REQUEST', `bad ttl_ms ${ttlRaw}`);
    const cond = params.get('cond');
    const out = await ctx.router.coordinateWrite(
      {
        op,
        group,
        key,
        ...(op === 'put' ? { value: body } : {}),
        ...(ttlMs !== undefined ? { ttlMs } : {}),
        ...(cond === 'nx' || cond === 'xx' ? { condition: cond } : {}),
      },
      fence,
    );
    return { status: 204, headers: { 'x-jincache-applied': out.applied ? '1' : '0', 'x-jincache-existed': out.existed ? '1' : '0' } };
  }

  private transition(id: NodeId, from: PeerHealth, to: PeerHealth): void {
    this.ctx?.event('health', `${id}: ${from} -> ${to}`);
    if ((to === 'healthy' || to === 'slow') && (this.hints?.pending(id) ?? 0) > 0) void this.handoff?.replay(id);
  }

  private replayAll(): void {
    const d = this.detector;
    if (d === undefined || this.hints === undefined) return;
    for (const peer of this.hints.waiting()) if (d.usable(peer)) void this.handoff?.replay(peer);
  }

  /** Deliver hints through the ordinary replication endpoint (the receiver applies LWW). */
  private async deliver(peer: NodeId, records: WireRecord[]): Promise<void> {
    const ctx = this.ctx;
    const d = this.detector;
    const member = ctx?.member(peer);
    if (ctx === undefined || d === undefined || member === undefined) throw new JincacheError('PEER_UNAVAILABLE', `${peer} is not a member`);
    const deadline = Date.now() + ctx.config.fault_tolerance.request_timeout;
    const res = await d.call(peer, () => ctx.peers.request(member.address, { method: 'POST', path: '/_jincache/replicate', body: encodeRecords(records), deadline }));
    if (res.status !== 204) throw new JincacheError('PEER_UNAVAILABLE', `${peer} answered ${res.status} to a hint replay`);
  }
}
