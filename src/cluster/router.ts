/**
 * Request routing: every KvService call is served by the key's owner. A call arriving at another
 * node is forwarded once (marked, so the owner never forwards it again); the owner applies the
 * write, replicates it to the partition's backups and only then answers.
 *
 * With failover support attached (the fault-tolerance plugin, see fault-plugin.ts):
 * - a read goes to the first holder of the preference list the failure detector finds usable
 *   (and not just recovered), and on failure to the next one, retried with backoff within the
 *   caller's deadline; a loader group whose holders all fail loads locally (groupcache);
 * - a write goes to the first usable holder, which becomes its coordinator: it gives the write
 *   a version, applies it, replicates it to the other usable holders and keeps a hint for the
 *   unusable ones (hinted handoff, handoff.ts). Forwarded writes carry a *fence*: the time
 *   after which the coordinator must not apply them. A sender that gives up on an attempt at
 *   time t sent it with fence t, so a write stuck in a paused or partitioned node can never be
 *   applied later with a version newer than a write acknowledged after it: that is what makes
 *   a write retried at another holder safe (see README "Fault tolerance").
 *
 * Every peer request carries the version of the table its sender routed by (TABLE_HEADER). The
 * tables of two nodes differ for a moment after each change (a watch delay, a paused process),
 * and a node routing by an older table may pick a node that no longer holds the partition, or
 * replicate to holders that are no longer all of them. The receiver corrects it: a read that
 * reached a node no longer holding the key under its newer table is routed again by that
 * table; replicated records are sent on to the holders its newer table lists; a write stamped
 * with a table newer than the receiver's waits (briefly) for that table before it is
 * coordinated, so it is replicated to the right holders.
 */
import type { PartitionTable } from '../core/placement/table.ts';
import { holdersOf } from '../core/placement/table.ts';
import { systemClock, type NodeId, type NodeInfo } from '../core/types.ts';
import { HybridClock, compareWrites } from '../core/version.ts';
import type { WireRecord } from '../peer/codec.ts';
import { encodeRecords } from '../peer/codec.ts';
import { FROM_HEADER, TABLE_HEADER, type PeerClient, type PeerResponse } from '../peer/client.ts';
import { JincacheError, isErrorCode, isJincacheError, type JincacheErrorCode } from '../core/errors.ts';
import { readOrder, replicaPlan, writeOrder } from './health/failover.ts';
import { notDelivered } from './health/errors.ts';
import { isPeerFailure, withRetry } from './health/breakers.ts';
import type { GetResult, KvService, PutOptions, RequestOptions } from './kv.ts';
import type { LocalData, WriteRequest } from './local-data.ts';

/** What the router needs to know about the cluster, read fresh on every call. */
export interface ClusterView {
  readonly self: NodeId;
  table(): PartitionTable;
  partitionOf(key: string): number;
  member(id: NodeId): NodeInfo | undefined;
  /** Failure detector's verdict; unusable nodes are skipped where an alternative exists. */
  usable(id: NodeId): boolean;
  /** Nodes that must receive this partition's writes besides its holders (pending holders while it migrates). */
  extraReplicas(partition: number): readonly NodeId[];
  /** Nodes that may still hold this partition's data; a miss at the owner asks them before the origin. */
  previousHolders(partition: number): readonly NodeId[];
  /** This node's copy of the partition may lack acknowledged writes (made a holder without a copy first; see RoutingHooks.lacking). Default: never. */
  lacking?(partition: number): boolean;
  /** A mirrored copy of another owner's hot key, served where the read arrives. */
  mirrorGet(group: string, key: string): GetResult | undefined;
  /** Before a write is acknowledged: no mirror may serve the old value after this resolves. */
  beforeOwnerWrite(group: string, key: string, version: number, deadline: number): Promise<void>;
  /** Whether beforeOwnerWrite has work to do for this key now. Default: assumed true. */
  writeWaits?(group: string, key: string): boolean;
  /** Resolves true once the table in force has at least `version` (false after `timeoutMs`). Default: resolves false at once. */
  tableReached?(version: number, timeoutMs: number): Promise<boolean>;
}

/** What the fault-tolerance plugin lends the router. */
export interface FailoverSupport {
  /** Just recovered from unusable: may lack handed-off writes; reads prefer another holder. */
  onProbation(id: NodeId): boolean;
  /**
   * Known to lack acknowledged writes of this partition for now: catching up after a restart
   * (catchup.ts), receiving hinted writes, or a coordinator here still holds hints for it. Its
   * copy is never read alone (the newest of every holder's copy answers). Default: never.
   */
  behind?(id: NodeId, partition: number): boolean;
  /**
   * Published as catching up (registry status 'joining'): it does not coordinate writes while
   * another holder can (a conditional write is never decided on a stale copy). Unlike `behind`,
   * every node gets the same answer (the registry), so every node picks the same coordinator.
   * Default: never.
   */
  catchingUp?(id: NodeId): boolean;
  /** Run one peer call through the peer's breaker, recording its outcome for the failure detector. */
  call<T>(peer: NodeId, fn: () => Promise<T>): Promise<T>;
  /** Keep writes for a holder that did not get them, to replay when it is back. */
  hint(peer: NodeId, records: WireRecord[]): void;
  /** Retries after a failed attempt (config fault_tolerance.max_retries). */
  readonly maxRetries: number;
}

export interface RouterOptions {
  view: ClusterView;
  local: LocalData;
  peers: PeerClient;
  defaultGroup: string;
  /** Per-request budget when the caller gives no deadline (config fault_tolerance.request_timeout). */
  requestTimeoutMs: number;
  /** Wait for backups before acknowledging (config replication.sync). Default true. */
  syncReplication?: boolean;
  /** Called with writes a backup did not confirm, so they can be handed to it later. */
  onReplicationFailure?: (peer: NodeId, records: WireRecord[], error: JincacheError) => void;
  /** Versions for coordinated writes. Default: a hybrid clock on the system clock. */
  hlc?: HybridClock;
}

/** The write operations a coordinator applies. */
export type { WriteOp, WriteRequest } from './local-data.ts';

/** Path of the owner-local KV endpoints on the peer listener. */
export function kvPath(group: string, key: string): string {
  return `/_jincache/kv/${encodeURIComponent(group)}/${encodeURIComponent(key)}`;
}

/** Path prefix of the fenced coordinated-write endpoint (served by the fault-tolerance plugin). */
export const WRITE_ROUTE = '/_jincache/ft/write/';
/** Path prefix of the versioned-record endpoint (tombstones included), served by the plugin. */
export const RECORD_ROUTE = '/_jincache/ft/record/';
/** Header carrying a forwarded write's fence, ms since epoch. */
export const FENCE_HEADER = 'x-jincache-fence';
/** Longest a peer request waits for this node to receive the newer table its sender routed by. */
export const TABLE_WAIT_MS = 250;

export function writePath(w: WriteRequest): string {
  const q = new URLSearchParams();
  if (w.ttlMs !== undefined && w.ttlMs > 0) q.set('ttl_ms', String(w.ttlMs));
  if (w.condition !== undefined) q.set('cond', w.condition);
  const qs = q.size > 0 ? `?${q}` : '';
  return `${WRITE_ROUTE}${w.op}/${encodeURIComponent(w.group)}/${encodeURIComponent(w.key)}${qs}`;
}

export class Router implements KvService {
  readonly defaultGroup: string;
  private readonly view: ClusterView;
  private readonly local: LocalData;
  private readonly peers: PeerClient;
  private readonly requestTimeoutMs: number;
  private readonly syncReplication: boolean;
  private readonly onReplicationFailure: RouterOptions['onReplicationFailure'];
  private readonly hlc: HybridClock;
  private failover: FailoverSupport | undefined;
  /** Peer requests this node answered for a sender whose table was older (re-routed reads, forwarded replicas, refused record reads). */
  staleRoutes = 0;

  constructor(opts: RouterOptions) {
    this.view = opts.view;
    this.local = opts.local;
    this.peers = opts.peers;
    this.defaultGroup = opts.defaultGroup;
    this.requestTimeoutMs = opts.requestTimeoutMs;
    this.syncReplication = opts.syncReplication ?? true;
    this.onReplicationFailure = opts.onReplicationFailure;
    this.hlc = opts.hlc ?? new HybridClock(systemClock);
  }

  /** Attach (or detach, with undefined) failover support. Without it every call goes to the owner. */
  useFailover(f: FailoverSupport | undefined): void {
    this.failover = f;
  }

  /** The node's own data, for endpoints that must be served locally. */
  localData(): LocalData {
    return this.local;
  }

  /** The owner of a key's partition under the current table. */
  ownerOf(key: string): NodeId {
    const owner = holdersOf(this.view.table(), this.view.partitionOf(key))[0];
    if (owner === undefined) throw new JincacheError('NO_OWNER', 'the partition table has no members yet');
    return owner;
  }

  private holders(key: string): readonly NodeId[] {
    const holders = holdersOf(this.view.table(), this.view.partitionOf(key));
    if (holders.length === 0) throw new JincacheError('NO_OWNER', 'the partition table has no members yet');
    return holders;
  }

  /**
   * Synchronous read, for callers that can skip a promise when the answer is already here (the
   * Redis listener): the value when this node may answer from its own copy right now (it owns the
   * key and no holder is on probation or behind) or from a mirror; undefined means "call get()"
   * (a miss, a remote owner, a holder that may lack writes).
   */
  getLocal(group: string, key: string): GetResult | undefined {
    const holders = this.holders(key);
    if (holders[0] !== this.view.self) return this.view.mirrorGet(group, key);
    const ft = this.failover;
    if (ft !== undefined) {
      const partition = this.view.partitionOf(key);
      if (this.view.lacking?.(partition) ?? false) return undefined;
      for (const id of holders) if (ft.onProbation(id) || (ft.behind?.(id, partition) ?? false)) return undefined;
    }
    return this.local.cachedHit(group, key);
  }

  /**
   * Synchronous put, for callers that can skip promises when a write needs no network (the Redis
   * listener): applied here when this node coordinates the key's writes and nobody else must get
   * it first (the key's only holder: one node, or replication factor 1; no partition move in
   * progress, no mirror to invalidate, not catching up). Returns whether it was applied (false:
   * an NX/XX condition did not hold), or undefined: "call put()".
   */
  putLocal(group: string, key: string, value: Buffer, opts: PutOptions = {}): boolean | undefined {
    const self = this.view.self;
    const table = this.view.table();
    // a key with more than one holder never qualifies: decided before hashing the key
    if (Math.min(table.replicationFactor, table.members.length) !== 1) return undefined;
    const partition = this.view.partitionOf(key);
    const holders = holdersOf(table, partition);
    if (holders.length !== 1 || holders[0] !== self) return undefined;
    if (this.view.extraReplicas(partition).length > 0) return undefined;
    if (this.view.writeWaits?.(group, key) ?? true) return undefined;
    if (this.failover?.catchingUp?.(self) ?? false) return undefined;
    return this.local.write({ op: 'put', group, key, value, ttlMs: opts.ttlMs, condition: opts.condition }).record !== undefined;
  }

  async get(group: string, key: string, opts: RequestOptions = {}): Promise<GetResult | null> {
    this.local.group(group); // unknown group fails here, before any network
    const deadline = this.deadline(opts);
    const ft = this.failover;
    const holders = this.holders(key);
    // a hot key mirrored here by its owner: answered locally (the owner reads its own copy)
    if (holders[0] !== this.view.self) {
      const mirrored = this.view.mirrorGet(group, key);
      if (mirrored !== undefined) return mirrored;
    }
    if (ft === undefined) {
      const owner = holders[0]!;
      return owner === this.view.self ? this.getAsOwner(group, key, deadline) : this.getFrom(owner, group, key, deadline);
    }
    const partition = this.view.partitionOf(key);
    const suspect = (id: NodeId): boolean => ft.onProbation(id) || (ft.behind?.(id, partition) ?? false);
    const order = readOrder(holders, { usable: (id) => this.view.usable(id), onProbation: suspect });
    // a holder just came back (or is catching up, or has hints coming) and may lack writes
    // handed off meanwhile, while the holder that served for it may lack the ones it took
    // since: ask every holder, the newest copy wins
    const checked = holders.some(suspect);
    if (checked) {
      const newest = await this.newestRead(group, key, holders, deadline);
      if (newest !== undefined) return newest;
    }
    // the common case: this node is the holder to read from
    if (order[0] === this.view.self) return this.getAsOwner(group, key, deadline, checked);
    try {
      return await withRetry(
        (n) => {
          const target = order[n % order.length]!;
          if (target === this.view.self) return this.getAsOwner(group, key, deadline, checked);
          return this.getFrom(target, group, key, attemptDeadline(deadline, n, order.length));
        },
        { maxRetries: Math.max(ft.maxRetries, 0), deadline },
      );
    } catch (e) {
      // every holder failed: a loader group loads here, through the group's singleflight
      // (groupcache's fallback); a plain key-value group has nothing else to ask
      if (isPeerFailure(e) && this.local.group(group).loader !== undefined && Date.now() < deadline) return this.local.load(group, key);
      throw e;
    }
  }

  async put(group: string, key: string, value: Buffer, opts: PutOptions & RequestOptions = {}): Promise<boolean> {
    this.local.group(group);
    const out = await this.write({ op: 'put', group, key, value, ttlMs: opts.ttlMs, condition: opts.condition }, this.deadline(opts));
    return out.applied;
  }

  async delete(group: string, key: string, opts: RequestOptions = {}): Promise<boolean> {
    this.local.group(group);
    const out = await this.write({ op: 'delete', group, key }, this.deadline(opts));
    return out.existed;
  }

  async expire(group: string, key: string, ttlMs: number, opts: RequestOptions = {}): Promise<boolean> {
    this.local.group(group);
    const out = await this.write({ op: 'expire', group, key, ttlMs }, this.deadline(opts));
    return out.applied;
  }

  async count(group: string): Promise<number> {
    this.local.group(group);
    const table = this.view.table();
    const owners = new Set<NodeId>();
    for (const holders of table.assignments) if (holders[0] !== undefined) owners.add(holders[0]);
    const deadline = Date.now() + this.requestTimeoutMs;
    const counts = await Promise.all(
      [...owners].map(async (id) => {
        if (id === this.view.self) return this.countOwned(group);
        const res = await this.send(id, { method: 'GET', path: `/_jincache/count/${encodeURIComponent(group)}`, deadline });
        expectStatus(res, 200);
        return (JSON.parse(res.body.toString('utf8')) as { count: number }).count;
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Live entries of a group in the partitions this node owns. */
  countOwned(group: string): number {
    const table = this.view.table();
    const mine: number[] = [];
    table.assignments.forEach((holders, p) => {
      if (holders[0] === this.view.self) mine.push(p);
    });
    return this.local.count(group, mine);
  }

  // ---- writes ----

  /**
   * Send a write to its coordinator. Without failover support: the owner (old protocol,
   * PUT/DELETE /_jincache/kv). With it: the first usable holder over the fenced endpoint, and on
   * a failed attempt the next holder. Unconditional puts and deletes are retried after a timeout
   * (the fence makes a late copy harmless and the value is the same); conditional writes and
   * expires only when the attempt surely never arrived (connection refused, breaker open).
   */
  private async write(w: WriteRequest, deadline: number): Promise<{ applied: boolean; existed: boolean }> {
    const holders = this.holders(w.key);
    const ft = this.failover;
    if (ft === undefined) {
      const owner = holders[0]!;
      if (owner === this.view.self) return this.coordinateWrite(w, deadline);
      return this.legacyWrite(owner, w, deadline);
    }
    const order = writeOrder(holders, { usable: (id) => this.view.usable(id), behind: (id) => ft.catchingUp?.(id) ?? false });
    if (order[0] === this.view.self) return this.coordinateWrite(w, deadline);
    const idempotent = w.condition === undefined && w.op !== 'expire';
    return withRetry(
      async (n) => {
        const target = order[n % order.length]!;
        if (target === this.view.self) return this.coordinateWrite(w, deadline);
        const fence = attemptDeadline(deadline, n, order.length);
        const res = await this.send(target, {
          method: 'POST',
          path: writePath(w),
          ...(w.value !== undefined ? { body: w.value } : {}),
          headers: { [FENCE_HEADER]: String(fence) },
          deadline: fence,
        });
        if (res.status === 412) return { applied: false, existed: false };
        expectStatus(res, 204);
        return { applied: res.headers['x-jincache-applied'] !== '0', existed: res.headers['x-jincache-existed'] === '1' };
      },
      { maxRetries: Math.max(ft.maxRetries, 0), deadline, retryable: (e) => (idempotent ? isPeerFailure(e) : notDelivered(e)) },
    );
  }

  /** Write through the owner's pre-failover endpoints (no fence; used when the plugin is absent). */
  private async legacyWrite(owner: NodeId, w: WriteRequest, deadline: number): Promise<{ applied: boolean; existed: boolean }> {
    if (w.op === 'expire') {
      const path = `/_jincache/expire/${encodeURIComponent(w.group)}/${encodeURIComponent(w.key)}?ttl_ms=${w.ttlMs ?? 0}`;
      const res = await this.send(owner, { method: 'POST', path, deadline });
      if (res.status === 404) return { applied: false, existed: false };
      expectStatus(res, 204);
      return { applied: true, existed: true };
    }
    if (w.op === 'delete') {
      const res = await this.send(owner, { method: 'DELETE', path: kvPath(w.group, w.key), deadline });
      expectStatus(res, 204);
      return { applied: true, existed: res.headers['x-jincache-existed'] === '1' };
    }
    const q = new URLSearchParams();
    if (w.ttlMs) q.set('ttl_ms', String(w.ttlMs));
    if (w.condition) q.set('cond', w.condition);
    const qs = q.size > 0 ? `?${q}` : '';
    const res = await this.send(owner, { method: 'PUT', path: kvPath(w.group, w.key) + qs, body: w.value, deadline });
    if (res.status === 412) return { applied: false, existed: false };
    expectStatus(res, 204);
    return { applied: true, existed: false };
  }

  /**
   * Apply a write here as its coordinator and replicate it. `fence`: the write must not be
   * applied at or after this time (the sender has given up on it by then); it is also the
   * replication deadline. The version is above every version this node issued or holds for the
   * key, so the write wins over all it follows.
   */
  async coordinateWrite(w: WriteRequest, fence: number): Promise<{ applied: boolean; existed: boolean }> {
    // One synchronous block from the fence check to the apply: nothing can run in between.
    if (Date.now() >= fence) throw new JincacheError('TIMEOUT', `write of "${w.key}" arrived after its deadline; not applied`);
    const out = this.local.write(w);
    if (out.record === undefined) return { applied: false, existed: out.existed };
    // keep a quarter of the time left for the answer to travel back: a backup that has not
    // confirmed by then gets a hint instead, so a hung backup cannot time the whole write out
    const now = Date.now();
    await this.replicate(w.key, [out.record], now + Math.max(1, Math.floor(((fence - now) * 3) / 4)));
    return { applied: true, existed: out.existed };
  }

  // ---- owner side: called for local keys and by the peer endpoints ----

  /**
   * Read as the owner: the local cache, then (for a partition that just moved here) the nodes
   * that held it before, then the origin loader. While this node's copy is known to lack writes
   * (FailoverSupport.behind / probation of itself, or made a holder without a copy: lacking) and
   * the caller has not `checked` every holder yet, the newest copy among the holders answers: a
   * peer that routed a read here (its view of this node may lag) still gets the acknowledged value.
   */
  async getAsOwner(group: string, key: string, deadline: number, checked = false): Promise<GetResult | null> {
    const partition = this.view.partitionOf(key);
    const ft = this.failover;
    const self = this.view.self;
    if (!checked && ft !== undefined && (ft.onProbation(self) || (ft.behind?.(self, partition) ?? false) || (this.view.lacking?.(partition) ?? false))) {
      const holders = holdersOf(this.view.table(), partition);
      const newest = await this.newestRead(group, key, holders.includes(self) ? holders : [self, ...holders], deadline, true);
      if (newest !== undefined) return newest;
    }
    const hit = this.local.cached(group, key);
    if (hit !== undefined) return hit;
    const previous = this.view.previousHolders(partition);
    // a tombstone here is newer knowledge than whatever the previous holder kept
    if (previous.length > 0 && this.local.record(group, key) === undefined) {
      for (const id of previous) {
        if (id === this.view.self || !this.view.usable(id)) continue;
        try {
          const res = await this.send(id, { method: 'GET', path: `${kvPath(group, key)}?local=1`, deadline });
          if (res.status !== 200) continue;
          const record = {
            group,
            key,
            value: res.body,
            version: Number(res.headers['x-jincache-version']),
            expiresAt: Number(res.headers['x-jincache-expires'] ?? 0),
          };
          if (!Number.isFinite(record.version)) continue;
          this.local.apply([record]);
          const now = this.local.cached(group, key);
          if (now !== undefined) return now;
        } catch {
          // the previous holder is gone or slow: fall through to the next one, then the origin
        }
      }
    }
    return this.local.load(group, key);
  }

  /**
   * A read another node routed here, by table `senderTable` (undefined: not stamped). When this
   * node's table is newer and no longer lists it as a holder of the key, the sender's table is
   * stale and so may this node's copy be (the partition's writes go to its new holders): the
   * read is routed again, by this node's table. Versions only grow along such a chain, so it
   * ends. When the sender's table is newer, this node waits briefly to receive it first.
   */
  async getForPeer(group: string, key: string, deadline: number, senderTable: number | undefined): Promise<GetResult | null> {
    if (senderTable !== undefined) {
      const mine = this.view.table().version;
      if (senderTable > mine) await this.awaitTable(senderTable, deadline);
      else if (senderTable < mine && !this.holders(key).includes(this.view.self)) {
        this.staleRoutes++;
        return this.get(group, key, { deadline });
      }
    }
    return this.getAsOwner(group, key, deadline);
  }

  /**
   * Coordinate a write another node sent here (by table `senderTable`). A sender with a newer
   * table than this node's chose this node by it: wait briefly for that table, so the write is
   * replicated to the holders it lists.
   */
  async coordinateForPeer(w: WriteRequest, fence: number, senderTable: number | undefined): Promise<{ applied: boolean; existed: boolean }> {
    if (senderTable !== undefined && senderTable > this.view.table().version) await this.awaitTable(senderTable, fence);
    return this.coordinateWrite(w, fence);
  }

  /**
   * True when a peer that routed by `senderTable` asks this node for its own copy of `key` while
   * this node's newer table no longer lists it as a holder: the copy may lack writes, and the
   * sender should ask the key's holders instead.
   */
  misdirected(key: string, senderTable: number | undefined): boolean {
    if (senderTable === undefined || senderTable >= this.view.table().version) return false;
    const stale = !this.holders(key).includes(this.view.self);
    if (stale) this.staleRoutes++;
    return stale;
  }

  /**
   * Records replicated here by `from`, which routed by an older table than this node's: it sent
   * them to the holders its table lists, and this node's table may list others (a migration or
   * repair committed meanwhile). Send them on to this table's holders (but this node and the
   * sender) before the sender's write is acknowledged; a holder that does not confirm gets them
   * as a hint.
   */
  async forwardReplicated(records: readonly WireRecord[], from: NodeId | undefined, senderTable: number | undefined, deadline: number): Promise<void> {
    if (senderTable === undefined || senderTable >= this.view.table().version || records.length === 0) return;
    const byTarget = new Map<NodeId, WireRecord[]>();
    const ft = this.failover;
    for (const r of records) {
      const partition = this.view.partitionOf(r.key);
      const targets = [...holdersOf(this.view.table(), partition), ...this.view.extraReplicas(partition)];
      for (const id of targets) {
        if (id === this.view.self || id === from) continue;
        const list = byTarget.get(id);
        if (list === undefined) byTarget.set(id, [r]);
        else list.push(r);
      }
    }
    if (byTarget.size === 0) return;
    this.staleRoutes++;
    await Promise.all(
      [...byTarget].map(async ([id, recs]) => {
        if (ft !== undefined && !this.view.usable(id)) ft.hint(id, recs);
        else await this.replicateTo(id, recs, encodeRecords(recs), deadline);
      }),
    );
  }

  private async awaitTable(version: number, deadline: number): Promise<void> {
    const wait = Math.min(TABLE_WAIT_MS, deadline - Date.now() - 1);
    if (wait > 0) await this.view.tableReached?.(version, wait);
  }

  async putAsOwner(group: string, key: string, value: Buffer, opts: PutOptions, deadline: number): Promise<boolean> {
    return (await this.coordinateWrite({ op: 'put', group, key, value, ttlMs: opts.ttlMs, condition: opts.condition }, deadline)).applied;
  }

  async deleteAsOwner(group: string, key: string, deadline: number): Promise<boolean> {
    return (await this.coordinateWrite({ op: 'delete', group, key }, deadline)).existed;
  }

  async expireAsOwner(group: string, key: string, ttlMs: number, deadline: number): Promise<boolean> {
    return (await this.coordinateWrite({ op: 'expire', group, key, ttlMs }, deadline)).applied;
  }

  /**
   * Send a write to the partition's other holders. With sync replication the caller waits for
   * the reachable ones; a holder the detector calls unusable gets a hint at once, and one that
   * does not confirm gets the write later through `onReplicationFailure` and the hint queue.
   */
  private async replicate(key: string, records: WireRecord[], deadline: number): Promise<void> {
    const partition = this.view.partitionOf(key);
    const holders = holdersOf(this.view.table(), partition);
    const extra = this.view.extraReplicas(partition);
    const ft = this.failover;
    // every acknowledged write passes here: mirrors of the key are invalidated before the ack
    const invalidations = records.map((r) => this.view.beforeOwnerWrite(r.group, r.key, r.version, deadline));
    const plan = replicaPlan(this.view.self, holders, extra, { usable: (id) => ft === undefined || this.view.usable(id) });
    for (const id of plan.hint) ft?.hint(id, records);
    if (plan.send.length === 0) {
      await Promise.all(invalidations);
      return;
    }
    const body = encodeRecords(records);
    const sends = plan.send.map((id) => this.replicateTo(id, records, body, deadline));
    if (this.syncReplication) await Promise.all(sends);
    await Promise.all(invalidations);
  }

  /** Send replicated records to one holder; one that does not confirm gets them as a hint (never rejects). */
  private async replicateTo(id: NodeId, records: WireRecord[], body: Buffer, deadline: number): Promise<void> {
    try {
      const res = await this.send(id, { method: 'POST', path: '/_jincache/replicate', body, headers: { [FROM_HEADER]: this.view.self }, deadline });
      expectStatus(res, 204);
    } catch (e) {
      this.failover?.hint(id, records);
      this.onReplicationFailure?.(id, records, isJincacheError(e) ? e : new JincacheError('PEER_UNAVAILABLE', String(e)));
    }
  }

  /**
   * Read every usable holder's own copy (tombstones included) and answer with the newest;
   * holders with an older copy get the newest through the hint queue (read repair).
   * Undefined when inconclusive (a holder failed, or nothing is stored and a loader may know).
   * `bestEffort`: a holder that fails is left out instead of making the answer inconclusive
   * (the caller has nobody better to ask).
   */
  private async newestRead(group: string, key: string, holders: readonly NodeId[], deadline: number, bestEffort = false): Promise<GetResult | null | undefined> {
    const ft = this.failover;
    if (ft === undefined) return undefined;
    const targets = holders.filter((id) => this.view.usable(id));
    const answers = await Promise.allSettled(
      targets.map((id) => (id === this.view.self ? Promise.resolve(this.local.record(group, key) ?? null) : this.fetchRecord(id, group, key, deadline))),
    );
    let best: WireRecord | undefined;
    let failed = false;
    for (const a of answers) {
      if (a.status === 'rejected') failed ||= !bestEffort;
      else if (a.value !== null && (best === undefined || compareWrites(a.value, best) > 0)) best = a.value;
    }
    if (best !== undefined) {
      answers.forEach((a, i) => {
        const id = targets[i]!;
        if (a.status !== 'fulfilled' || (a.value !== null && compareWrites(best, a.value) <= 0)) return;
        if (id === this.view.self) this.local.apply([best]);
        else ft.hint(id, [best]);
      });
    }
    const loader = this.local.group(group).loader !== undefined;
    if (best === undefined) return failed || loader ? undefined : null;
    if (best.value === null || (best.expiresAt > 0 && best.expiresAt <= Date.now())) return loader ? undefined : null;
    return { value: best.value, source: 'hit', expiresAt: best.expiresAt };
  }

  private async fetchRecord(id: NodeId, group: string, key: string, deadline: number): Promise<WireRecord | null> {
    const res = await this.send(id, { method: 'GET', path: `${RECORD_ROUTE}${encodeURIComponent(group)}/${encodeURIComponent(key)}`, deadline });
    if (res.status === 404) return null;
    expectStatus(res, 200);
    const version = Number(res.headers['x-jincache-version']);
    if (!Number.isFinite(version)) throw new JincacheError('PEER_UNAVAILABLE', `${id} sent a record without a version`);
    return {
      group,
      key,
      value: res.headers['x-jincache-tombstone'] === '1' ? null : res.body,
      version,
      expiresAt: Number(res.headers['x-jincache-expires'] ?? 0),
    };
  }

  private async getFrom(id: NodeId, group: string, key: string, deadline: number): Promise<GetResult | null> {
    const res = await this.send(id, { method: 'GET', path: kvPath(group, key), deadline });
    if (res.status === 404) return null;
    expectStatus(res, 200);
    return {
      value: res.body,
      source: res.headers['x-cache'] === 'load' ? 'load' : 'hit',
      expiresAt: Number(res.headers['x-jincache-expires'] ?? 0),
    };
  }

  private deadline(opts: RequestOptions): number {
    return opts.deadline ?? Date.now() + this.requestTimeoutMs;
  }

  private async send(id: NodeId, req: Parameters<PeerClient['request']>[1]): Promise<PeerResponse> {
    const member = this.view.member(id);
    if (member === undefined) throw new JincacheError('PEER_UNAVAILABLE', `node ${id} is not a member`);
    const stamped = { ...req, headers: { ...req.headers, [TABLE_HEADER]: String(this.view.table().version) } };
    const ft = this.failover;
    if (ft === undefined) return this.peers.request(member.address, stamped);
    return ft.call(id, () => this.peers.request(member.address, stamped));
  }
}

/**
 * Deadline of attempt `n` out of a list of `candidates`: while another holder remains untried,
 * an attempt gets half of the time left, so a hung holder cannot eat the whole budget and the
 * next holder still has time to answer.
 */
export function attemptDeadline(deadline: number, n: number, candidates: number, now = Date.now()): number {
  if (n + 1 >= candidates) return deadline;
  return now + Math.max(1, Math.floor((deadline - now) / 2));
}

/** Turn a peer's non-success answer back into the error it described. */
function expectStatus(res: PeerResponse, status: number): void {
  if (res.status === status) return;
  let code: JincacheErrorCode = res.status >= 500 ? 'PEER_UNAVAILABLE' : 'BAD_REQUEST';
  let message = `peer answered ${res.status}`;
  try {
    const body = JSON.parse(res.body.toString('utf8')) as { error?: string; message?: string };
    const named = typeof body.error === 'string' ? body.error.toUpperCase() : '';
    if (isErrorCode(named)) code = named;
    if (typeof body.message === 'string') message = body.message;
  } catch {
    // not a JSON error body: keep the status-derived error
  }
  throw new JincacheError(code, message);
}
