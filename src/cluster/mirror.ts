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
 * Writes that go around an owner the writer cannot reach are coordinated by another holder, which
 * does not know where the owner pushed: it drops the key's mirrors everywhere before it
 * acknowledges, and a holder serves a mirror only while it can reach the owner.
 */
import type { PartitionTable } from '../core/placement/table.ts';
import type { NodeId } from '../core/types.ts';
import type { WireRecord } from '../peer/codec.ts';
import type { PeerCaller } from '../peer/client.ts';
import { MirrorInvalidate, MirrorPush } from '../peer/messages.ts';
import type { PeerServer } from '../peer/server.ts';
import type { Group } from '../cache/group.ts';
import type { GetResult } from './kv.ts';
import type { LocalData } from './local-data.ts';
import type { Members } from './membership.ts';
import type { Mirrors } from './router.ts';

export interface MirrorOptions {
  self: NodeId;
  members: Members;
  table(): PartitionTable;
  partitionOf(key: string): number;
  /** The failure detector's verdict: a node it distrusts gets no mirror. */
  usable(id: NodeId): boolean;
  local: LocalData;
  /** Each group's hot cache holds the copies mirrored here (hot_cache_fraction of its bytes; 0 keeps none). */
  groups: ReadonlyMap<string, Group>;
  client: PeerCaller;
  /** Serves MirrorPush and MirrorInvalidate. */
  server: PeerServer;
  /** May this node answer from (and push) its own copies now (trust.ts)? */
  selfTrusted(): boolean;
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

/**
 * Where a key was pushed: each node, with when the last push to it was sent (it drops the copy
 * by then + leaseMs at the latest). A node left out of a later push (the detector distrusts it
 * now) may still hold an earlier copy: it stays listed until that copy's lease ends.
 */
type Pushed = Map<NodeId, number>;

const sep = (group: string, key: string): string => `${group}\u0000${key}`;

export class Mirror implements Mirrors {
  private readonly opts: Required<MirrorOptions>;
  private timer: NodeJS.Timeout | undefined;
  /** Owner side: keys this node pushed, and to whom. */
  private readonly pushed = new Map<string, Pushed>();
  /** Holder side: keys of other owners mirrored into this node's hot caches, and the owner that pushed each. */
  private readonly held = new Map<string, NodeId>();
  /**
   * Owner side: partitions this node became the owner of by a table change, and when it noticed.
   * For a lease after that, mirrors the previous owner pushed may still be served: every write
   * of such a partition invalidates the key everywhere first (see invalidate).
   */
  private gained = new Map<number, number>();
  private seenTable: PartitionTable | undefined;
  /** Holder side: the version that last invalidated a key, for `leaseMs`: older pushes are refused. */
  private readonly fence = new Map<string, { version: number; until: number }>();
  private hits = 0;

  constructor(opts: MirrorOptions) {
    this.opts = { intervalMs: 500, leaseMs: 2000, minQps: 20, maxKeys: 32, ...opts };
    opts.server.handle(MirrorPush, (records, meta) => {
      const now = Date.now();
      // the copy lives half a lease from when the owner pushed it (the push's deadline), not from
      // when it was read here: a push that waited in the socket of a paused node is old news
      if (now >= meta.deadline) return;
      const until = Math.min(now + this.opts.leaseMs / 2, meta.deadline);
      for (const r of records.slice(0, this.opts.maxKeys * 4)) {
        if (r.value === null) continue;
        const k = sep(r.group, r.key);
        const fence = this.fence.get(k);
        if (fence !== undefined && fence.until > now && r.version <= fence.version) continue;
        // only the key's owner (as this node's table says) mirrors it
        if (meta.from === undefined || this.ownerOf(r.key) !== meta.from) continue;
        if (this.opts.groups.get(r.group)?.hot.set(r.key, r.value, r.expiresAt, until)) this.held.set(k, meta.from);
      }
    });
    opts.server.handle(MirrorInvalidate, (records) => {
      const now = Date.now();
      for (const r of records) this.dropHere(r.group, r.key, r.version);
      // fences of keys that were invalidated long ago are dropped, so the map stays bounded
      if (this.fence.size > 4096) for (const [k, f] of this.fence) if (f.until <= now) this.fence.delete(k);
    });
  }

  start(): void {
    this.timer = setInterval(() => void this.push(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    for (const g of this.opts.groups.values()) g.hot.clear();
    this.held.clear();
    this.pushed.clear();
  }

  get(group: string, key: string): GetResult | undefined {
    return this.read(group, key);
  }

  waits(group: string, key: string, partition?: number): boolean {
    // asked on every SET: no string built and no second hash of the key when nothing is mirrored
    if (this.pushed.size > 0 || this.held.size > 0) {
      const k = sep(group, key);
      if (this.pushed.has(k) || this.held.has(k)) return true;
    }
    return this.gainedRecently(partition ?? this.opts.partitionOf(key)) !== undefined;
  }

  private ownerOf(key: string): NodeId | undefined {
    return this.opts.table().assignments[this.opts.partitionOf(key)]?.[0];
  }

  /** When this node became the owner of `partition` by a table change, if that was less than a lease ago. */
  private gainedRecently(partition: number): number | undefined {
    const table = this.opts.table();
    if (table !== this.seenTable) {
      const before = this.seenTable;
      this.seenTable = table;
      const now = Date.now();
      for (const [p, at] of this.gained) if (now - at >= this.opts.leaseMs) this.gained.delete(p);
      if (before !== undefined) {
        table.assignments.forEach((holders, p) => {
          const was = before.assignments[p]?.[0];
          if (holders[0] === this.opts.self && was !== undefined && was !== this.opts.self) this.gained.set(p, now);
        });
      }
    }
    if (this.gained.size === 0) return undefined;
    const at = this.gained.get(partition);
    if (at === undefined) return undefined;
    if (Date.now() - at >= this.opts.leaseMs) {
      this.gained.delete(partition);
      return undefined;
    }
    return at;
  }

  beforeWrite(group: string, key: string, version: number, deadline: number): Promise<void> {
    return this.invalidate(group, key, version, deadline);
  }

  info(): Record<string, unknown> {
    return { mirrors: { pushed: this.pushed.size, held: this.held.size, hits: this.hits } };
  }

  /** Holder side: a live mirrored copy, or undefined. */
  private read(group: string, key: string): GetResult | undefined {
    // copies held here are as suspect as the node's own after a pause
    if (this.held.size === 0 || !this.opts.selfTrusted()) return undefined;
    const k = sep(group, key);
    const h = this.opts.groups.get(group)?.hot.entry(key);
    // A copy pushed by a node that is no longer the key's owner is dropped: the new owner
    // acknowledges writes without knowing of it (npm run chaos, kill -9 phase: after the restarted
    // node-2 became the owner of kill-9/k4, node-1, node-4 and node-5 answered the old owner's
    // mirror "4u84.c15.1733" for 130 ms over writes acknowledged through node-2, node-4, node-5).
    // Nor is one whose owner this node cannot reach: writes then go around the owner, to a
    // holder that does not know of its mirrors (npm run chaos, partition phase: node-4, cut off
    // from what its peers sent while it still reached them, kept pushing k5's old value;
    // node-1, node-2 and node-5 answered it for 500 ms over a write acknowledged by node-3).
    const owner = this.ownerOf(key);
    if (h === undefined || this.held.get(k) !== owner || owner === undefined || !this.opts.usable(owner)) {
      if (h !== undefined) this.opts.groups.get(group)?.hot.delete(key);
      this.held.delete(k);
      return undefined;
    }
    this.hits++;
    return { value: h.value, source: 'hit', expiresAt: h.expiresAt };
  }

  /** Owner side, before acknowledging a write of `key`: no mirror may serve the old value after. */
  private async invalidate(group: string, key: string, version: number, deadline: number): Promise<void> {
    const k = sep(group, key);
    // A copy of the key mirrored here by its owner: this node writes it as another holder,
    // around an owner it cannot reach, which pushed the copy everywhere and will not drop it for
    // this write. Or the partition came here from another owner less than a lease ago: a node
    // that has not yet installed the table may still serve that owner's mirror. Either way the
    // key's mirrors are dropped here and everywhere first (best effort: a node that does not
    // answer drops its copy when its lease ends).
    const gainedAt = this.gainedRecently(this.opts.partitionOf(key));
    const heldHere = this.held.has(k);
    if (heldHere) this.dropHere(group, key, version);
    const everywhere = heldHere || gainedAt !== undefined ? this.invalidateEverywhere(group, key, version, Math.min(deadline, (gainedAt ?? Date.now()) + this.opts.leaseMs)) : undefined;
    const p = this.pushed.get(k);
    this.pushed.delete(k);
    if (p !== undefined) {
      const now = Date.now();
      const records: WireRecord[] = [{ group, key, value: null, version, expiresAt: 0 }];
      const live = [...p].filter(([, at]) => at + this.opts.leaseMs > now);
      const results = await Promise.allSettled(
        live.map(async ([id, at]) => {
          const m = this.opts.members.member(id);
          if (m === undefined) throw new Error(`${id} gone`);
          await this.opts.client.call(MirrorInvalidate, m.address, records, { from: this.opts.self, deadline: Math.min(deadline, at + this.opts.leaseMs) });
        }),
      );
      // a holder we could not reach drops the copy when its lease ends: wait that out
      let leaseEnd = 0;
      results.forEach((r, i) => {
        if (r.status === 'rejected') leaseEnd = Math.max(leaseEnd, live[i]![1] + this.opts.leaseMs);
      });
      const wait = leaseEnd - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    await everywhere;
  }

  /** What MirrorInvalidate does at a holder, for one key. */
  private dropHere(group: string, key: string, version: number): void {
    const k = sep(group, key);
    this.opts.groups.get(group)?.hot.delete(key);
    this.held.delete(k);
    this.fence.set(k, { version, until: Date.now() + this.opts.leaseMs });
  }

  /** MirrorInvalidate to every other member the failure detector finds usable; never rejects. */
  private async invalidateEverywhere(group: string, key: string, version: number, deadline: number): Promise<void> {
    const records: WireRecord[] = [{ group, key, value: null, version, expiresAt: 0 }];
    const others = this.opts.members.list().filter((m) => m.id !== this.opts.self && this.opts.usable(m.id));
    await Promise.allSettled(others.map((m) => this.opts.client.call(MirrorInvalidate, m.address, records, { from: this.opts.self, deadline })));
  }

  /** Owner side: push this node's hot keys (the ones it owns) to every other member. */
  private async push(): Promise<void> {
    const { self, members, local } = this.opts;
    // an owner that does not trust its own copy (after a pause) pushes nothing from it
    if (!this.opts.selfTrusted()) return;
    const hot = this.opts.hotKeys() ?? [];
    const table = this.opts.table();
    // a node the failure detector distrusts gets no new mirror (a copy it got earlier is still
    // invalidated, or waited out, by the next write: see Pushed)
    const others = members.list().map((m) => m.id).filter((id) => id !== self && this.opts.usable(id));
    if (others.length === 0) return;
    const records: WireRecord[] = [];
    for (const h of hot) {
      if (records.length >= this.opts.maxKeys) break;
      if (h.qps < this.opts.minQps) continue;
      if (table.assignments[this.opts.partitionOf(h.key)]?.[0] !== self) continue;
      const rec = local.record(h.group, h.key);
      if (rec === undefined || rec.value === null) continue;
      records.push(rec);
    }
    if (records.length === 0) return;
    const pushedAt = Date.now();
    // record the push before sending: a write racing it must see the key as mirrored
    for (const r of records) {
      const k = sep(r.group, r.key);
      const to: Pushed = this.pushed.get(k) ?? new Map();
      for (const [id, at] of to) if (at + this.opts.leaseMs <= pushedAt) to.delete(id);
      for (const id of others) to.set(id, pushedAt);
      this.pushed.set(k, to);
    }
    await Promise.allSettled(
      others.map(async (id) => {
        const m = members.member(id);
        if (m !== undefined) await this.opts.client.call(MirrorPush, m.address, records, { from: self, deadline: pushedAt + this.opts.leaseMs / 2 });
      }),
    );
  }
}
