/**
 * Request routing: every KvService call is served by the key's owner. A call arriving at another
 * node is forwarded once (marked, so the owner never forwards it again); the owner applies the
 * write, replicates it to the partition's backups and only then answers.
 */
import type { PartitionTable } from '../core/placement/table.ts';
import { holdersOf } from '../core/placement/table.ts';
import type { NodeId, NodeInfo } from '../core/types.ts';
import type { WireRecord } from '../transport/codec.ts';
import { encodeRecords } from '../transport/codec.ts';
import type { PeerClient, PeerResponse } from '../transport/peer-client.ts';
import { JincacheError, isErrorCode, isJincacheError, type JincacheErrorCode } from './errors.ts';
import type { GetResult, KvService, PutOptions, RequestOptions } from './kv.ts';
import type { LocalData } from './local-data.ts';

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
}

/** Path of the owner-local KV endpoints on the peer listener. */
export function kvPath(group: string, key: string): string {
  return `/_jincache/kv/${encodeURIComponent(group)}/${encodeURIComponent(key)}`;
}

export class Router implements KvService {
  readonly defaultGroup: string;
  private readonly view: ClusterView;
  private readonly local: LocalData;
  private readonly peers: PeerClient;
  private readonly requestTimeoutMs: number;
  private readonly syncReplication: boolean;
  private readonly onReplicationFailure: RouterOptions['onReplicationFailure'];

  constructor(opts: RouterOptions) {
    this.view = opts.view;
    this.local = opts.local;
    this.peers = opts.peers;
    this.defaultGroup = opts.defaultGroup;
    this.requestTimeoutMs = opts.requestTimeoutMs;
    this.syncReplication = opts.syncReplication ?? true;
    this.onReplicationFailure = opts.onReplicationFailure;
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

  async get(group: string, key: string, opts: RequestOptions = {}): Promise<GetResult | null> {
    this.local.group(group); // unknown group fails here, before any network
    const owner = this.ownerOf(key);
    if (owner === this.view.self) return this.getAsOwner(group, key, this.deadline(opts));
    const res = await this.send(owner, { method: 'GET', path: kvPath(group, key), deadline: this.deadline(opts) });
    if (res.status === 404) return null;
    expectStatus(res, 200);
    return {
      value: res.body,
      source: res.headers['x-cache'] === 'load' ? 'load' : 'hit',
      expiresAt: Number(res.headers['x-jincache-expires'] ?? 0),
    };
  }

  async put(group: string, key: string, value: Buffer, opts: PutOptions & RequestOptions = {}): Promise<boolean> {
    this.local.group(group);
    const owner = this.ownerOf(key);
    const deadline = this.deadline(opts);
    if (owner === this.view.self) return this.putAsOwner(group, key, value, opts, deadline);
    const q = new URLSearchParams();
    if (opts.ttlMs) q.set('ttl_ms', String(opts.ttlMs));
    if (opts.condition) q.set('cond', opts.condition);
    const qs = q.size > 0 ? `?${q}` : '';
    const res = await this.send(owner, { method: 'PUT', path: kvPath(group, key) + qs, body: value, deadline });
    if (res.status === 412) return false;
    expectStatus(res, 204);
    return true;
  }

  async delete(group: string, key: string, opts: RequestOptions = {}): Promise<boolean> {
    this.local.group(group);
    const owner = this.ownerOf(key);
    const deadline = this.deadline(opts);
    if (owner === this.view.self) return this.deleteAsOwner(group, key, deadline);
    const res = await this.send(owner, { method: 'DELETE', path: kvPath(group, key), deadline });
    expectStatus(res, 204);
    return res.headers['x-jincache-existed'] === '1';
  }

  async expire(group: string, key: string, ttlMs: number, opts: RequestOptions = {}): Promise<boolean> {
    this.local.group(group);
    const owner = this.ownerOf(key);
    const deadline = this.deadline(opts);
    if (owner === this.view.self) return this.expireAsOwner(group, key, ttlMs, deadline);
    const path = `/_jincache/expire/${encodeURIComponent(group)}/${encodeURIComponent(key)}?ttl_ms=${ttlMs}`;
    const res = await this.send(owner, { method: 'POST', path, deadline });
    if (res.status === 404) return false;
    expectStatus(res, 204);
    return true;
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

  // ---- owner side: called for local keys and by the peer endpoints ----

  /**
   * Read as the owner: the local cache, then (for a partition that just moved here) the nodes
   * that held it before, then the origin loader.
   */
  async getAsOwner(group: string, key: string, deadline: number): Promise<GetResult | null> {
    const hit = this.local.cached(group, key);
    if (hit !== undefined) return hit;
    const partition = this.view.partitionOf(key);
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

  async putAsOwner(group: string, key: string, value: Buffer, opts: PutOptions, deadline: number): Promise<boolean> {
    const out = this.local.put(group, key, value, opts);
    if (out.record) await this.replicate(key, [out.record], deadline);
    return out.applied;
  }

  async deleteAsOwner(group: string, key: string, deadline: number): Promise<boolean> {
    const out = this.local.delete(group, key);
    if (out.record) await this.replicate(key, [out.record], deadline);
    return out.existed ?? false;
  }

  async expireAsOwner(group: string, key: string, ttlMs: number, deadline: number): Promise<boolean> {
    const out = this.local.expire(group, key, ttlMs);
    if (out.record) await this.replicate(key, [out.record], deadline);
    return out.applied;
  }

  /**
   * Send a write to the partition's backups. With sync replication the caller waits for them;
   * a backup that does not confirm gets the write later through `onReplicationFailure`.
   */
  private async replicate(key: string, records: WireRecord[], deadline: number): Promise<void> {
    const partition = this.view.partitionOf(key);
    const holders = holdersOf(this.view.table(), partition);
    const extra = this.view.extraReplicas(partition);
    const backups = (extra.length === 0 ? holders : [...new Set([...holders, ...extra])]).filter((id) => id !== this.view.self);
    if (backups.length === 0) return;
    const body = encodeRecords(records);
    const sends = backups.map(async (id) => {
      try {
        const res = await this.send(id, { method: 'POST', path: '/_jincache/replicate', body, deadline });
        expectStatus(res, 204);
      } catch (e) {
        const err = isJincacheError(e) ? e : new JincacheError('PEER_UNAVAILABLE', String(e));
        this.onReplicationFailure?.(id, records, err);
      }
    });
    if (this.syncReplication) await Promise.all(sends);
  }

  private deadline(opts: RequestOptions): number {
    return opts.deadline ?? Date.now() + this.requestTimeoutMs;
  }

  private async send(id: NodeId, req: Parameters<PeerClient['request']>[1]): Promise<PeerResponse> {
    const member = this.view.member(id);
    if (member === undefined) throw new JincacheError('PEER_UNAVAILABLE', `node ${id} is not a member`);
    return this.peers.request(member.address, req);
  }
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
