/**
 * The fault-tolerance plugin: failure detector (heartbeats, breakers, passive observations),
 * failover in the router, hinted handoff, and recovery (catch-up on return, catchup.ts). It
 * lends the router a FailoverSupport, gives the node a `usable` routing hook, serves the fenced
 * write, record, hint and catch-up endpoints, and reports peer health in GET /cluster
 * (`health`, `breakers`, `hints`, `catchup`).
 *
 * When is a holder's copy "behind" (FailoverSupport.behind: never read alone, the newest of
 * every holder's copy answers)? The rule, from what each node can know:
 * - itself, for a partition: while it catches the partition up after starting as a listed
 *   holder (it is published 'joining' meanwhile); while another holder of the partition says it
 *   holds hints for it (every heartbeat answer, GET /_jincache/ft/ping, carries that count, so a
 *   node cut off one way learns it is behind even before the link heals); and while a peer is
 *   replaying hinted writes to it (each hint batch says how many are left; the last says 0, so
 *   "done" is known exactly; a sender that turns unusable or stays silent for
 *   `incomingHintsTtlMs` no longer counts);
 * - a peer: while it is published 'joining' (catching up), or while this node holds hints for
 *   it or is replaying them (a coordinator knows exactly when its hints for X are delivered).
 * A read served here for a partition this node is behind on asks every holder even when the
 * reader routed it here (its view may lag): the acknowledged value wins by LWW.
 * Hints dropped for overflow are reported with the next batch; the receiver then catches up the
 * partitions it shares with the sender.
 */
import type { NodeId } from '../core/types.ts';
import type { PeerRoute } from '../front/http/server.ts';
import { encodeRecords, type WireRecord } from '../peer/codec.ts';
import { JincacheError } from '../core/errors.ts';
import { Handoff, HintQueue, type HintQueueOptions } from './handoff.ts';
import { FailureDetector } from './health/detector.ts';
import type { PeerHealth } from './health/classifier.ts';
import type { BreakerState } from './health/breakers.ts';
import type { NodeContext, NodePlugin, RoutingHooks } from './plugin.ts';
import { FENCE_HEADER, RECORD_ROUTE, WRITE_ROUTE, type FailoverSupport, type WriteOp } from './router.ts';
import { CATCHUP_ROUTE, CatchUp, type CatchUpReport } from './catchup.ts';
import { decodeRecords } from '../peer/codec.ts';
import { FROM_HEADER, tableStampOf } from '../peer/client.ts';

/** Path of the hint delivery endpoint: a record batch plus how many hints the sender still holds. */
export const HINTS_ROUTE = '/_jincache/ft/hints';
/** Heartbeat endpoint: GET /_jincache/ft/ping?from=ID answers {"id", "hints": hints held here for ID}. */
export const PING_ROUTE = '/_jincache/ft/ping';
const LEFT_HEADER = 'x-jincache-hints-left';
const DROPPED_HEADER = 'x-jincache-hints-dropped';

export interface FaultPluginOptions {
  hints?: HintQueueOptions;
  /** Hints per replay batch. Default 500. */
  replayBatch?: number;
  /** A hint sender that said more are coming but sent nothing for this long no longer makes this node "behind". Default 10 000 ms. */
  incomingHintsTtlMs?: number;
  /** Catch-up page size, records. Default 2000. */
  catchUpPageRecords?: number;
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
  private catchup: CatchUp | undefined;
  private lastCatchUp: CatchUpReport | undefined;
  // hint senders that said more hints are coming: sender -> { left, at }
  private readonly incoming = new Map<NodeId, { left: number; at: number }>();
  // hints each peer said (in its last heartbeat answer) it holds for this node: peer -> { hints, at }
  private readonly heldForMe = new Map<NodeId, { hints: number; at: number }>();
  private stopped = false;
  // until then health changes are logged but kept out of the event feed: while a cluster starts,
  // peers that are still starting flap between down and healthy
  private quietUntil = 0;

  constructor(opts: FaultPluginOptions = {}) {
    this.opts = opts;
  }

  async start(ctx: NodeContext): Promise<void> {
    this.ctx = ctx;
    this.stopped = false;
    // First, before any read can be answered from a copy that missed writes: rejoining with the
    // same id while the table in force lists this node (a crash or restart within the lease),
    // every partition it holds is behind until caught up.
    const catchup = new CatchUp({
      ctx,
      ...(this.opts.catchUpPageRecords !== undefined ? { pageRecords: this.opts.catchUpPageRecords } : {}),
      call: (peer, fn) => (this.detector === undefined ? fn() : this.detector.call(peer, fn)),
      usable: (peer) => this.detector?.usable(peer) ?? true,
    });
    this.catchup = catchup;
    const held = CatchUp.heldPartitions(ctx);
    if (held.length > 0) {
      catchup.mark(held);
      ctx.logger.info({ partitions: held.length }, 'starting as a holder: catching up from the other holders before serving reads from this copy');
      await this.publishStatus('joining');
    }
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
      pingPath: `${PING_ROUTE}?from=${encodeURIComponent(ctx.id)}`,
      onPingAnswer: (id, status, body) => this.pingAnswer(id, status, body),
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
    const settleMs = Math.max(1000, Math.min(3000, 2 * heartbeat));
    this.quietUntil = Date.now() + 2 * settleMs;
    if (!(await detector.settle(settleMs))) {
      ctx.logger.warn({ health: Object.fromEntries(detector.classifier.report().map((r) => [r.id, r.health])) }, 'starting while some peers do not answer');
    }
    // retry replays that failed, and catch peers that recovered without a class change
    this.replayTimer = setInterval(() => this.replayAll(), Math.max(250, heartbeat));
    this.replayTimer.unref();
    const support: FailoverSupport = {
      onProbation: (id) => (id === ctx.id ? detector.selfOnProbation() : detector.classifier.onProbation(id)),
      behind: (id, partition) => this.behind(id, partition),
      catchingUp: (id) => ctx.member(id)?.status === 'joining',
      call: (peer, fn) => detector.call(peer, fn),
      hint: (peer, records) => {
        const dropped = hints.add(peer, records);
        if (dropped > 0) ctx.logger.warn({ peer, dropped }, 'hint queue full: oldest hints dropped');
      },
      maxRetries: ft.max_retries,
    };
    ctx.router.useFailover(support);
    if (held.length > 0) void this.runCatchUp('rejoin');
  }

  /** Catch up every partition marked behind, then publish 'active' again. */
  private async runCatchUp(reason: string): Promise<void> {
    const ctx = this.ctx;
    const catchup = this.catchup;
    if (ctx === undefined || catchup === undefined) return;
    const report = await catchup.run();
    this.lastCatchUp = report;
    ctx.logger.info({ reason, ...report }, 'caught up');
    // a cluster's first start: every holder starts empty, nothing to report in the feed
    if (report.records === 0 && report.failed.length === 0 && reason === 'rejoin') {
      if (!this.stopped) await this.publishStatus('active');
      return;
    }
    ctx.event(
      'catchup',
      `caught up ${report.caughtUp}/${report.partitions} partitions (${reason}): ${report.records} records received, ${report.applied} newer, ${report.pages} pages, ${report.full ? 'full' : 'since the disk watermark'}, ${report.ms} ms${report.failed.length > 0 ? `; no holder answered for ${report.failed.length}` : ''}`,
    );
    if (reason === 'rejoin' && !this.stopped) await this.publishStatus('active');
  }

  /** Publish this node's status in the registry; retried for a while when etcd does not answer. */
  private async publishStatus(status: 'joining' | 'active'): Promise<void> {
    const ctx = this.ctx;
    if (ctx === undefined) return;
    for (let attempt = 0; attempt < 20 && !this.stopped; attempt++) {
      try {
        await ctx.registry.update({ ...ctx.info, status });
        ctx.event('status', `${ctx.id} is ${status}`);
        return;
      } catch (e) {
        ctx.logger.warn({ status, err: (e as Error).message }, 'could not publish status; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** See the module comment: may `id`'s copy of `partition` lack acknowledged writes? */
  private behind(id: NodeId, partition: number): boolean {
    const ctx = this.ctx;
    const d = this.detector;
    if (ctx === undefined || d === undefined) return false;
    if (id === ctx.id) return (this.catchup?.behind(partition) ?? false) || this.hintsIncoming() || this.hintsHeldForMe(partition);
    if (ctx.member(id)?.status === 'joining') return true;
    // only worth a newest-of-all read while it is usable (unusable holders are not read anyway)
    return d.usable(id) && ((this.hints?.pending(id) ?? 0) > 0 || (this.handoff?.isReplaying(id) ?? false));
  }

  /** A heartbeat answer: how many hints the peer holds for this node. */
  private pingAnswer(id: NodeId, status: number, body: Buffer): void {
    if (status !== 200) return;
    try {
      const hints = (JSON.parse(body.toString('utf8')) as { hints?: unknown }).hints;
      if (typeof hints === 'number' && hints > 0) this.heldForMe.set(id, { hints, at: Date.now() });
      else this.heldForMe.delete(id);
    } catch {
      // an older node's plain ping: says nothing about hints
    }
  }

  /** Another holder of `partition` said, in a recent heartbeat answer, that it holds hints for this node. */
  private hintsHeldForMe(partition: number): boolean {
    const ctx = this.ctx;
    if (this.heldForMe.size === 0 || ctx === undefined) return false;
    const ttl = this.opts.incomingHintsTtlMs ?? 10_000;
    const now = Date.now();
    for (const [peer, st] of this.heldForMe) if (now - st.at > ttl || ctx.member(peer) === undefined) this.heldForMe.delete(peer);
    const holders = ctx.table().assignments[partition] ?? [];
    return holders.some((id) => id !== ctx.id && this.heldForMe.has(id));
  }

  /** GET /_jincache/ft/ping?from=ID: the heartbeat, with the number of hints held here for ID. */
  private servePing(url: string): { status: number; body: string; headers: Record<string, string> } {
    const q = url.indexOf('?');
    const from = new URLSearchParams(q < 0 ? '' : url.slice(q + 1)).get('from');
    const hints = from === null ? 0 : (this.hints?.pending(from) ?? 0);
    return { status: 200, body: JSON.stringify({ id: this.ctx?.id ?? null, hints }), headers: { 'content-type': 'application/json' } };
  }

  /** A usable peer is replaying hinted writes to this node and has not said it is done. */
  private hintsIncoming(): boolean {
    if (this.incoming.size === 0) return false;
    const ttl = this.opts.incomingHintsTtlMs ?? 10_000;
    const now = Date.now();
    for (const [sender, st] of this.incoming) {
      if (st.left === 0 || now - st.at > ttl || this.ctx?.member(sender) === undefined || !(this.detector?.usable(sender) ?? true)) this.incoming.delete(sender);
    }
    return this.incoming.size > 0;
  }

  /** POST /_jincache/ft/hints: apply a batch of hinted writes; remember whether more are coming. */
  private serveHints(req: { headers: Record<string, string | string[] | undefined> }, body: Buffer): { status: number } {
    const ctx = this.ctx;
    if (ctx === undefined) throw new JincacheError('PEER_UNAVAILABLE', 'node is stopping');
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const from = header(FROM_HEADER);
    const left = Number(header(LEFT_HEADER) ?? 0);
    const dropped = Number(header(DROPPED_HEADER) ?? 0);
    const records = decodeRecords(body, { maxRecords: 1_000_000, maxValueBytes: ctx.config.cache.max_value_bytes });
    ctx.local.apply(records);
    if (from !== undefined && from !== ctx.id) {
      if (Number.isFinite(left) && left > 0) this.incoming.set(from, { left, at: Date.now() });
      else this.incoming.delete(from);
      // the sender lost hints for us: what we share with it may miss writes; pull it from there
      if (Number.isFinite(dropped) && dropped > 0 && this.catchup !== undefined) {
        const shared: number[] = [];
        ctx.table().assignments.forEach((holders, p) => {
          if (holders.includes(ctx.id) && holders.includes(from)) shared.push(p);
        });
        ctx.logger.warn({ from, dropped, partitions: shared.length }, 'a peer dropped hinted writes for this node; catching up what we share');
        this.catchup.mark(shared);
        void this.runCatchUp(`${dropped} hints dropped by ${from}`);
      }
    }
    return { status: 204 };
  }

  async stop(): Promise<void> {
    this.stopped = true;
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
    return {
      health,
      breakers,
      hints: this.hints?.stats() ?? {},
      catchup: {
        pending: this.catchup?.pending() ?? 0,
        hintsIncoming: this.hintsIncoming(),
        hintsHeldForMe: Object.fromEntries([...this.heldForMe].map(([id, st]) => [id, st.hints])),
        last: this.lastCatchUp ?? null,
      },
    };
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
      [WRITE_ROUTE, (req, body, url) => this.serveWrite(req.headers[FENCE_HEADER], tableStampOf(req.headers), body, url)],
      [RECORD_ROUTE, async (req, _body, url) => this.serveRecord(url, tableStampOf(req.headers))],
      [HINTS_ROUTE, async (req, body) => this.serveHints(req, body)],
      [PING_ROUTE, async (_req, _body, url) => this.servePing(url)],
      [CATCHUP_ROUTE, async (_req, _body, url) => {
        if (this.catchup === undefined) throw new JincacheError('PEER_UNAVAILABLE', 'node is starting');
        return this.catchup.serve(url);
      }],
    ]);
  }

  /**
   * GET /_jincache/ft/record/{group}/{key}: this node's own copy with its version, tombstones
   * included. 421 when the sender routed by an older table and this node no longer holds the key
   * (its copy may lack writes; the sender's newest-copy read then asks the holders the normal way).
   */
  private serveRecord(url: string, senderTable: number | undefined): { status: number; body?: Buffer | string; headers?: Record<string, string> } {
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
    if (ctx.router.misdirected(key, senderTable)) {
      return { status: 421, body: '{"error":"misdirected","message":"this node no longer holds the key under the newer partition table"}', headers: { 'content-type': 'application/json' } };
    }
    const rec = ctx.local.record(group, key);
    if (rec === undefined) return { status: 404, body: '{"error":"not_found","message":"absent"}', headers: { 'content-type': 'application/json' } };
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'x-jincache-version': String(rec.version) };
    if (rec.expiresAt > 0) headers['x-jincache-expires'] = String(rec.expiresAt);
    if (rec.value === null) headers['x-jincache-tombstone'] = '1';
    return { status: 200, body: rec.value ?? '', headers };
  }

  /** POST /_jincache/ft/write/{op}/{group}/{key}?ttl_ms=&cond= with the fence header: coordinate a write here. */
  private async serveWrite(fenceHeader: string | string[] | undefined, senderTable: number | undefined, body: Buffer, url: string): Promise<{ status: number; headers?: Record<string, string> }> {
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
    const out = await ctx.router.coordinateForPeer(
      {
        op,
        group,
        key,
        ...(op === 'put' ? { value: body } : {}),
        ...(ttlMs !== undefined ? { ttlMs } : {}),
        ...(cond === 'nx' || cond === 'xx' ? { condition: cond } : {}),
      },
      fence,
      senderTable,
    );
    return { status: 204, headers: { 'x-jincache-applied': out.applied ? '1' : '0', 'x-jincache-existed': out.existed ? '1' : '0' } };
  }

  private transition(id: NodeId, from: PeerHealth, to: PeerHealth): void {
    if (Date.now() >= this.quietUntil) this.ctx?.event('health', `${id}: ${from} -> ${to}`);
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
    const hints = this.hints;
    const dropped = hints?.dropped(peer) ?? 0;
    const headers: Record<string, string> = { [FROM_HEADER]: ctx.id, [LEFT_HEADER]: String(hints?.pending(peer) ?? 0) };
    if (dropped > 0) headers[DROPPED_HEADER] = String(dropped);
    const res = await d.call(peer, () => ctx.peers.request(member.address, { method: 'POST', path: HINTS_ROUTE, body: encodeRecords(records), headers, deadline }));
    if (res.status !== 204) throw new JincacheError('PEER_UNAVAILABLE', `${peer} answered ${res.status} to a hint replay`);
    if (dropped > 0) hints?.ackDropped(peer, dropped);
  }
}
