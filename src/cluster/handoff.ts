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
import type { PartitionTable } from '../core/placement/table.ts';
import { Hints } from '../peer/messages.ts';
import type { PeerServer } from '../peer/server.ts';
import type { Logger } from '../observe/logger.ts';
import type { ClusterEvents } from './events.ts';
import type { Members } from './membership.ts';
import type { Peers } from './peers.ts';

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
  /** Deliver one batch to a peer (the Hints message); rejects when it did not confirm. */
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

export interface HintedHandoffOptions {
  self: NodeId;
  peers: Peers;
  members: Members;
  tables: { table(): PartitionTable };
  /** The failure detector's verdict. */
  usable(id: NodeId): boolean;
  /** Applies received hints (last writer wins). */
  local: { apply(records: readonly WireRecord[]): number };
  /** Serves Hints. */
  server: PeerServer;
  /** Budget of one replay batch. */
  requestTimeoutMs(): number;
  /**
   * A peer dropped hints meant for this node (its queue overflowed): what this node shares with
   * it may miss writes; catch those partitions up from there.
   */
  onDropped(from: NodeId, partitions: number[]): void;
  /** Replay retry period. Default 500 ms. */
  replayIntervalMs?: number;
  queue?: HintQueueOptions;
  /** Hints per replay batch. Default 500. */
  replayBatch?: number;
  /** A hint sender that said more are coming but sent nothing for this long no longer counts. Default 10 000 ms. */
  incomingTtlMs?: number;
  logger?: Logger;
  events?: ClusterEvents;
}

/**
 * Hinted handoff as a component: the queue of hints this node keeps for others, their replay
 * (when a peer turns healthy, and periodically), and what this node knows of hints meant for
 * itself: a peer replaying hints to it (each batch says how many are left, the last says 0),
 * and the counts other holders report in their heartbeat answers. Both halves of Hints are here.
 */
export class HintedHandoff {
  private readonly opts: HintedHandoffOptions;
  readonly queue: HintQueue;
  private readonly handoff: Handoff;
  /** Writes about to be hinted, per peer (announce). */
  private readonly announced = new Map<NodeId, number>();
  private timer: NodeJS.Timeout | undefined;
  // hint senders that said more hints are coming: sender -> { left, at }
  private readonly incoming = new Map<NodeId, { left: number; at: number }>();
  // hints each peer said (in its last heartbeat answer) it holds for this node
  private readonly heldForMe = new Map<NodeId, { hints: number; at: number }>();
  // when the last heartbeat each peer answered was sent (its answer speaks for the peer's state
  // from then on), and the table version it answered with
  private readonly answeredAt = new Map<NodeId, number>();
  private readonly answeredTable = new Map<NodeId, number>();

  constructor(opts: HintedHandoffOptions) {
    this.opts = opts;
    this.queue = new HintQueue(opts.queue);
    this.handoff = new Handoff({
      queue: this.queue,
      batchSize: opts.replayBatch ?? 500,
      send: (peer, records) => this.deliver(peer, records),
      onReplayed: (peer, n) => {
        opts.logger?.info({ peer, hints: n }, 'replayed hinted writes');
        opts.events?.note('handoff', `${n} hinted writes replayed to ${peer}`);
      },
      onFailed: (peer, err) => opts.logger?.debug({ peer, err: (err as Error).message }, 'hint replay failed; will retry'),
    });
    opts.server.handle(Hints, (req, meta) => this.serve(req, meta.from));
  }

  start(): void {
    // retry replays that failed, and catch peers that recovered without a class change
    this.timer = setInterval(() => this.replayAll(), this.opts.replayIntervalMs ?? 500);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Keep writes for a holder that did not get them. */
  hint(peer: NodeId, records: readonly WireRecord[]): void {
    const dropped = this.queue.add(peer, records);
    if (dropped > 0) this.opts.logger?.warn({ peer, dropped }, 'hint queue full: oldest hints dropped');
  }

  /** A peer turned usable: replay what it missed. */
  replay(peer: NodeId): void {
    if (this.queue.pending(peer) > 0) void this.handoff.replay(peer);
  }

  /**
   * What a heartbeat answer tells `peer` (Ping's `hints`): how many hinted writes this node holds
   * for it, at least 1 while a replay is in flight (the queue may be empty while the last batch is
   * on its way, not yet applied there).
   */
  hintsToTell(peer: NodeId): number {
    const n = this.queue.pending(peer) + (this.announced.get(peer) ?? 0);
    return n > 0 ? n : this.handoff.isReplaying(peer) ? 1 : 0;
  }

  /**
   * Until the returned release, heartbeat answers tell `peer` that this node holds hints for it:
   * a write about to be hinted for it is announced before it is applied here (router.ts
   * tellFirst), so the peer stops answering from its copy alone before anyone can read the write.
   */
  announce(peer: NodeId): () => void {
    this.announced.set(peer, (this.announced.get(peer) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.announced.get(peer) ?? 1) - 1;
      if (n > 0) this.announced.set(peer, n);
      else this.announced.delete(peer);
    };
  }

  /** This node holds hints for a usable peer, or is replaying them (its copy may lack those writes). */
  hintsFor(id: NodeId): boolean {
    return this.opts.usable(id) && (this.queue.pending(id) > 0 || this.handoff.isReplaying(id));
  }

  /** Hints for this node are arriving, or another holder of the partition said it holds some. */
  hintsForSelf(partition: number): boolean {
    return this.hintsIncoming() || this.heldFor(partition);
  }

  /**
   * A heartbeat answer from `peer`: it holds `hints` hinted writes for this node, and routes by
   * table `table`. `sentAt`: when the heartbeat was sent (default now). An answer read after a
   * pause of this node may have waited in its socket all along: it says nothing about what the
   * peer acknowledged during the pause, so it counts from its heartbeat's time, not from now.
   */
  noteHeld(peer: NodeId, hints: number, table = 0, sentAt = Date.now()): void {
    const now = Date.now();
    this.answeredAt.set(peer, sentAt);
    this.answeredTable.set(peer, table);
    if (hints > 0) this.heldForMe.set(peer, { hints, at: now });
    else this.heldForMe.delete(peer);
  }

  /**
   * Every usable peer answered a heartbeat sent after `t`, and none said it holds hints for this node:
   * no write acknowledged without this node is waiting to reach it (trust.ts).
   */
  settledSince(t: number): boolean {
    for (const m of this.opts.members.list()) {
      if (m.id === this.opts.self || !this.opts.usable(m.id)) continue;
      if ((this.answeredAt.get(m.id) ?? 0) <= t || this.heldForMe.has(m.id)) return false;
    }
    return !this.hintsIncoming();
  }

  /**
   * A majority of the members (this node counted) answered a heartbeat sent after `t` routing by table
   * `mine` or an older one, and none answered with a newer one: no table change committed since
   * `t` has reached them. A node that cannot reach etcd confirms its table this way (trust.ts);
   * during an outage of etcd itself no table can change.
   */
  tableAgreedSince(t: number, mine: number): boolean {
    const members = this.opts.members.list();
    let agree = 1;
    for (const m of members) {
      if (m.id === this.opts.self) continue;
      const at = this.answeredAt.get(m.id) ?? 0;
      const table = this.answeredTable.get(m.id) ?? 0;
      if (table > mine) return false;
      if (at > t) agree++;
    }
    return agree > members.length / 2;
  }

  /** GET /cluster: hints held per peer, and what this node knows of hints meant for it. */
  info(): { hints: Record<NodeId, HintStats>; hintsIncoming: boolean; hintsHeldForMe: Record<NodeId, number> } {
    return {
      hints: this.queue.stats(),
      hintsIncoming: this.hintsIncoming(),
      hintsHeldForMe: Object.fromEntries([...this.heldForMe].map(([id, st]) => [id, st.hints])),
    };
  }

  private hintsIncoming(): boolean {
    if (this.incoming.size === 0) return false;
    const ttl = this.opts.incomingTtlMs ?? 10_000;
    const now = Date.now();
    for (const [sender, st] of this.incoming) {
      if (st.left === 0 || now - st.at > ttl || this.opts.members.member(sender) === undefined || !this.opts.usable(sender)) this.incoming.delete(sender);
    }
    return this.incoming.size > 0;
  }

  private heldFor(partition: number): boolean {
    if (this.heldForMe.size === 0) return false;
    const ttl = this.opts.incomingTtlMs ?? 10_000;
    const now = Date.now();
    for (const [peer, st] of this.heldForMe) if (now - st.at > ttl || this.opts.members.member(peer) === undefined) this.heldForMe.delete(peer);
    const holders = this.opts.tables.table().assignments[partition] ?? [];
    return holders.some((id) => id !== this.opts.self && this.heldForMe.has(id));
  }

  /** Hints: apply a batch of hinted writes; remember whether more are coming. */
  private serve(req: { records: WireRecord[]; left: number; dropped: number }, from: NodeId | undefined): void {
    this.opts.local.apply(req.records);
    if (from === undefined || from === this.opts.self) return;
    if (req.left > 0) this.incoming.set(from, { left: req.left, at: Date.now() });
    else this.incoming.delete(from);
    if (req.dropped > 0) {
      const shared: number[] = [];
      this.opts.tables.table().assignments.forEach((holders, p) => {
        if (holders.includes(this.opts.self) && holders.includes(from)) shared.push(p);
      });
      this.opts.logger?.warn({ from, dropped: req.dropped, partitions: shared.length }, 'a peer dropped hinted writes for this node; catching up what we share');
      this.opts.onDropped(from, shared);
    }
  }

  private replayAll(): void {
    for (const peer of this.queue.waiting()) if (this.opts.usable(peer)) void this.handoff.replay(peer);
  }

  /** Deliver one batch, saying how many hints are left (and how many were dropped) after it. */
  private async deliver(peer: NodeId, records: WireRecord[]): Promise<void> {
    const dropped = this.queue.dropped(peer);
    const deadline = Date.now() + this.opts.requestTimeoutMs();
    await this.opts.peers.call(Hints, peer, { records, left: this.queue.pending(peer), dropped }, deadline);
    if (dropped > 0) this.queue.ackDropped(peer, dropped);
  }
}
