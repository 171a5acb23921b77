/**
 * Hot-key mirroring (issue 6): one hot key cannot be fixed by moving it, so its owner copies it
 * into a small mirror on every other node and reads of it are answered wherever they arrive.
 *
 * Consistency: no read after an acknowledged write may return the old value. The owner
 * invalidates every mirror of a key before it acknowledges a write of that key. A mirror is also a
 * lease: the holder drops it `leaseMs / 2` after receiving it, and an owner that could not reach a
 * holder waits `leaseMs` from the push before acknowledging — so even a partitioned holder has
 * dropped the copy by then (the margin covers network delay). A push that was in flight when a
 * write invalidated the key is refused by the holder, which remembers the invalidating version.
 */
import type { NodeId } from '../core/types.ts';
import { decodeRecords, encodeRecords, type WireRecord } from '../peer/codec.ts';
import type { PeerRoute } from '../front/http/server.ts';
import type { GetResult } from './kv.ts';
import type { NodeContext, NodePlugin, RoutingHooks } from './plugin.ts';

export interface MirrorOptions {
  /** The owner's current hot keys (from the load monitor), largest first. */
  hotKeys: () => readonly { group: string; key: string; qps: number }[] | undefined;
  /** How often hot keys are (re)pushed. Default 500 ms. */
  intervalMs?: number;
  /** Mirror lease. Default 2000 ms. */
  leaseMs?: number;
  /** A key is mirrored when its rate is at least this many requests/s. Default 20. */
  minQps?: number;
  /** Most keys mirrored per node. Default 32. */
  maxKeys?: number;
}

interface Pushed {
  /** When the last push was sent: holders drop the copy by pushedAt + leaseMs at the latest. */
  pushedAt: number;
  nodes: NodeId[];
}

interface Held {
  value: Buffer;
  version: number;
  expiresAt: number;
  until: number;
}

const sep = (group: string, key: string): string => `${group}\u0000${key}`;

export class MirrorPlugin implements NodePlugin {
  readonly name = 'mirror';
  private readonly opts: Required<MirrorOptions>;
  private ctx: NodeContext | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Owner side: keys this node pushed, and to whom. */
  private readonly pushed = new Map<string, Pushed>();
  /** Holder side: mirrored copies of other owners' hot keys. */
  private readonly held = new Map<string, Held>();
  /** Holder side: the version that last invalidated a key, for `leaseMs`: older pushes are refused. */
  private readonly fence = new Map<string, { version: number; until: number }>();
  private hits = 0;

  constructor(opts: MirrorOptions) {
    this.opts = { intervalMs: 500, leaseMs: 2000, minQps: 20, maxKeys: 32, ...opts };
  }

  async start(ctx: NodeContext): Promise<void> {
    this.ctx = ctx;
    this.timer = setInterval(() => void this.push(), this.opts.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.held.clear();
    this.pushed.clear();
  }

  routing(): RoutingHooks {
    return {
      mirrorGet: (group, key) => this.read(group, key),
      beforeOwnerWrite: (group, key, version, deadline) => this.invalidate(group, key, version, deadline),
      writeWaits: (group, key) => this.pushed.size > 0 && this.pushed.has(sep(group, key)),
    };
  }

  peerRoutes(): ReadonlyMap<string, PeerRoute> {
    return new Map<string, PeerRoute>([
      ['/_jincache/mirror/push', async (_req, body) => {
        const now = Date.now();
        const lease = Number(this.opts.leaseMs) / 2;
        for (const r of decodeRecords(body, { maxRecords: this.opts.maxKeys * 4, maxValueBytes: this.ctx!.config.cache.max_value_bytes })) {
          if (r.value === null) continue;
          const k = sep(r.group, r.key);
          const fence = this.fence.get(k);
          if (fence !== undefined && fence.until > now && r.version <= fence.version) continue;
          this.held.set(k, { value: r.value, version: r.version, expiresAt: r.expiresAt, until: now + lease });
        }
        return { status: 204 };
      }],
      ['/_jincache/mirror/invalidate', async (_req, body) => {
        const now = Date.now();
        for (const r of decodeRecords(body, { maxRecords: 1024, maxValueBytes: 0 })) {
          const k = sep(r.group, r.key);
          this.held.delete(k);
          this.fence.set(k, { version: r.version, until: now + this.opts.leaseMs });
        }
        return { status: 204 };
      }],
    ]);
  }

  clusterInfo(): Record<string, unknown> {
    return { mirrors: { pushed: this.pushed.size, held: this.held.size, hits: this.hits } };
  }

  /** Holder side: a live mirrored copy, or undefined. */
  private read(group: string, key: string): GetResult | undefined {
    if (this.held.size === 0) return undefined;
    const k = sep(group, key);
    const h = this.held.get(k);
    if (h === undefined) return undefined;
    const now = Date.now();
    if (h.until <= now || (h.expiresAt > 0 && h.expiresAt <= now)) {
      this.held.delete(k);
      return undefined;
    }
    this.hits++;
    return { value: h.value, source: 'hit', expiresAt: h.expiresAt };
  }

  /** Owner side, before acknowledging a write of `key`: no mirror may serve the old value after. */
  private async invalidate(group: string, key: string, version: number, deadline: number): Promise<void> {
    const k = sep(group, key);
    const p = this.pushed.get(k);
    if (p === undefined) return;
    this.pushed.delete(k);
    const ctx = this.ctx!;
    const leaseEnd = p.pushedAt + this.opts.leaseMs;
    if (leaseEnd <= Date.now()) return;
    const body = encodeRecords([{ group, key, value: null, version, expiresAt: 0 }]);
    const results = await Promise.allSettled(
      p.nodes.map(async (id) => {
        const m = ctx.member(id);
        if (m === undefined) throw new Error(`${id} gone`);
        const res = await ctx.peers.request(m.address, { method: 'POST', path: '/_jincache/mirror/invalidate', body, deadline: Math.min(deadline, leaseEnd) });
        if (res.status !== 204) throw new Error(`status ${res.status}`);
      }),
    );
    // a holder we could not reach drops the copy when its lease ends: wait that out
    if (results.some((r) => r.status === 'rejected')) {
      const wait = leaseEnd - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** Owner side: push this node's hot keys (the ones it owns) to every other member. */
  private async push(): Promise<void> {
    const ctx = this.ctx;
    if (ctx === undefined) return;
    const hot = this.opts.hotKeys() ?? [];
    const table = ctx.table();
    // a node the failure detector distrusts gets no mirror, so a write never waits out its lease
    const others = ctx.members().map((m) => m.id).filter((id) => id !== ctx.id && ctx.usable(id));
    if (others.length === 0) return;
    const records: WireRecord[] = [];
    for (const h of hot) {
      if (records.length >= this.opts.maxKeys) break;
      if (h.qps < this.opts.minQps) continue;
      if (table.assignments[ctx.partitionOf(h.key)]?.[0] !== ctx.id) continue;
      const rec = ctx.local.record(h.group, h.key);
      if (rec === undefined || rec.value === null) continue;
      records.push(rec);
    }
    if (records.length === 0) return;
    const pushedAt = Date.now();
    // record the push before sending: a write racing it must see the key as mirrored
    for (const r of records) this.pushed.set(sep(r.group, r.key), { pushedAt, nodes: others });
    const body = encodeRecords(records);
    await Promise.allSettled(
      others.map(async (id) => {
        const m = ctx.member(id);
        if (m !== undefined) await ctx.peers.request(m.address, { method: 'POST', path: '/_jincache/mirror/push', body, deadline: pushedAt + 1000 });
      }),
    );
  }
}
