/**
 * Hinted handoff: writes a holder did not get (it was unreachable when the write was applied,
 * or did not confirm it) are kept here, per peer, and replayed to it through the ordinary
 * replication endpoint once the failure detector sees it healthy again.
 *
 * - Newest wins: one hint per key per peer, the winner of compareWrites. Replaying an old hint
 *   is harmless anyway (the receiver applies the same LWW rule), so replay is safe to repeat.
 * - Bounded: at most `maxRecords` hints and `maxBytes` of values per peer; beyond that the
 *   oldest hints are dropped and counted. A dropped hint is a write the peer will only get from
 *   the migration engine's catch-up when it returns (or never, if nobody else holds it).
 * - Replay order: oldest first, in batches.
 */
import type { NodeId } from '../core/types.ts';
import { compareWrites } from '../core/version.ts';
import type { WireRecord } from '../peer/codec.ts';

export interface HintQueueOptions {
  /** Hints kept per peer. Default 100 000. */
  maxRecords?: number;
  /** Value bytes kept per peer. Default 64 MiB. */
  maxBytes?: number;
}

interface PeerHints {
  // insertion order = age (a replaced hint moves to the newest end)
  readonly byKey: Map<string, WireRecord>;
  bytes: number;
  dropped: number;
}

export interface HintStats {
  pending: number;
  bytes: number;
  dropped: number;
}

const sizeOf = (r: WireRecord): number => (r.value?.length ?? 0) + r.key.length + r.group.length + 24;
const keyOf = (r: WireRecord): string => `${r.group}\u0000${r.key}`;

export class HintQueue {
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  private readonly peers = new Map<NodeId, PeerHints>();

  constructor(opts: HintQueueOptions = {}) {
    this.maxRecords = opts.maxRecords ?? 100_000;
    this.maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
    if (!Number.isInteger(this.maxRecords) || this.maxRecords < 1) throw new RangeError(`maxRecords must be an integer >= 1. Got: ${this.maxRecords}`);
    if (!(this.maxBytes > 0)) throw new RangeError(`maxBytes must be > 0. Got: ${this.maxBytes}`);
  }

  /** Remember writes for `peer`. Returns how many older hints were dropped to stay in bounds. */
  add(peer: NodeId, records: readonly WireRecord[]): number {
    const h = this.hints(peer);
    for (const r of records) this.insert(h, r);
    return this.trim(h);
  }

  /** Remove and return up to `max` hints for `peer`, oldest first. */
  take(peer: NodeId, max: number): WireRecord[] {
    const h = this.peers.get(peer);
    if (h === undefined) return [];
    const out: WireRecord[] = [];
    for (const [k, r] of h.byKey) {
      if (out.length >= max) break;
      out.push(r);
      h.byKey.delete(k);
      h.bytes -= sizeOf(r);
    }
    if (h.byKey.size === 0 && h.dropped === 0) this.peers.delete(peer);
    return out;
  }

  /**
   * Give back hints whose replay failed, ahead of the newer ones; a hint superseded meanwhile
   * (a newer write of the key was queued) is not restored.
   */
  restore(peer: NodeId, records: readonly WireRecord[]): void {
    const h = this.hints(peer);
    const newer = [...h.byKey.values()];
    h.byKey.clear();
    h.bytes = 0;
    for (const r of records) this.insert(h, r);
    for (const r of newer) this.insert(h, r);
    this.trim(h);
  }

  pending(peer: NodeId): number {
    return this.peers.get(peer)?.byKey.size ?? 0;
  }

  /** Peers with hints waiting. */
  waiting(): NodeId[] {
    return [...this.peers].filter(([, h]) => h.byKey.size > 0).map(([id]) => id);
  }

  stats(): Record<NodeId, HintStats> {
    const out: Record<NodeId, HintStats> = {};
    for (const [id, h] of this.peers) out[id] = { pending: h.byKey.size, bytes: h.bytes, dropped: h.dropped };
    return out;
  }

  /** Hints dropped for `peer` and not yet reported to it. */
  dropped(peer: NodeId): number {
    return this.peers.get(peer)?.dropped ?? 0;
  }

  /** `peer` was told of `n` dropped hints (it catches up from this node instead): stop counting them. */
  ackDropped(peer: NodeId, n: number): void {
    const h = this.peers.get(peer);
    if (h === undefined) return;
    h.dropped = Math.max(0, h.dropped - n);
    if (h.byKey.size === 0 && h.dropped === 0) this.peers.delete(peer);
  }

  /** Forget every hint for a peer (e.g. it was removed from the cluster long ago). */
  clear(peer: NodeId): void {
    this.peers.delete(peer);
  }

  private hints(peer: NodeId): PeerHints {
    let h = this.peers.get(peer);
    if (h === undefined) this.peers.set(peer, (h = { byKey: new Map(), bytes: 0, dropped: 0 }));
    return h;
  }

  private insert(h: PeerHints, r: WireRecord): void {
    const k = keyOf(r);
    const old = h.byKey.get(k);
    if (old !== undefined) {
      if (compareWrites(r, old) <= 0) return; // the queued hint is newer or the same
      h.byKey.delete(k);
      h.bytes -= sizeOf(old);
    }
    h.byKey.set(k, r);
    h.bytes += sizeOf(r);
  }

  private trim(h: PeerHints): number {
    let dropped = 0;
    for (const [k, r] of h.byKey) {
      if (h.byKey.size <= this.maxRecords && h.bytes <= this.maxBytes) break;
      h.byKey.delete(k);
      h.bytes -= sizeOf(r);
      dropped++;
    }
    h.dropped += dropped;
    return dropped;
  }
}

export interface HandoffOptions {
  queue: HintQueue;
  /** Deliver one batch to a peer (POST /_jincache/replicate); rejects when it did not confirm. */
  send: (peer: NodeId, records: WireRecord[]) => Promise<void>;
  /** Hints per batch. Default 500. */
  batchSize?: number;
  onReplayed?: (peer: NodeId, count: number) => void;
  onFailed?: (peer: NodeId, error: unknown) => void;
}

/** Drains a peer's hints when asked (the plugin asks when the peer turns healthy, and periodically). */
export class Handoff {
  private readonly opts: HandoffOptions;
  // peers with a replay running: one at a time per peer, so batches keep their order
  private readonly running = new Map<NodeId, Promise<number>>();

  constructor(opts: HandoffOptions) {
    this.opts = opts;
  }

  /** Replay every hint for `peer`, oldest first. Resolves with how many were delivered. */
  replay(peer: NodeId): Promise<number> {
    const current = this.running.get(peer);
    if (current !== undefined) return current;
    const run = this.drain(peer).finally(() => this.running.delete(peer));
    this.running.set(peer, run);
    return run;
  }

  isReplaying(peer: NodeId): boolean {
    return this.running.has(peer);
  }

  private async drain(peer: NodeId): Promise<number> {
    const { queue, send } = this.opts;
    const batchSize = this.opts.batchSize ?? 500;
    let delivered = 0;
    for (;;) {
      const batch = queue.take(peer, batchSize);
      if (batch.length === 0) break;
      try {
        await send(peer, batch);
      } catch (e) {
        queue.restore(peer, batch);
        this.opts.onFailed?.(peer, e);
        break;
      }
      delivered += batch.length;
    }
    if (delivered > 0) this.opts.onReplayed?.(peer, delivered);
    return delivered;
  }
}
