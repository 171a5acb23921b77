/**
 * The node's side of the Redis Cluster protocol: the ClusterView its RESP listener answers
 * CLUSTER commands and redirects from (front/resp/cluster.ts), over the table in force, the
 * membership, the failure detector's verdicts and the default group's store.
 *
 * Where a member's RESP address comes from: with etcd, its registration (NodeInfo.resp_address);
 * with static peers (`--peers` names only peer URLs), its heartbeat answers (the Ping message
 * carries the answering node's RESP address), so every node knows the others' before it serves:
 * a node opens its RESP listener only after its peers answered a heartbeat (detector.settle).
 */
import type { GroupStore } from '../cache/store.ts';
import type { Members } from '../cluster/membership.ts';
import type { TableView } from '../cluster/router.ts';
import type { PeerHealth } from '../cluster/health/classifier.ts';
import type { RedirectMode } from '../config/schema.ts';
import { partitionOfSlot, slotOf } from '../core/placement/hash.ts';
import type { PartitionTable } from '../core/placement/table.ts';
import type { Clock, NodeId } from '../core/types.ts';
import type { Disposer } from '../discovery/registry.ts';
import type { ClusterNode, ClusterView, NodeHealth } from '../front/resp/cluster-view.ts';

/**
 * How long after a table change this node keeps serving keys itself rather than sending clients
 * to nodes not yet seen on the new table: etcd delivers a table to every node within
 * milliseconds, and a client sent to a node still on the old table would be sent straight back.
 */
export const TABLE_SETTLE_MS = 1000;

export interface RespClusterOptions {
  self: NodeId;
  /** This node's RESP address (`host:port`). */
  address: string;
  tables: TableView & { onChange(listener: (next: PartitionTable, prev: PartitionTable) => void): Disposer };
  members: Members;
  /** The failure detector: may requests go to a peer now, and its health class. */
  detector: { usable(id: NodeId): boolean; health(id: NodeId): PeerHealth };
  /** `resp.redirects` in force (live config). */
  redirects(): RedirectMode;
  /** The default group's store: the keys CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT count. */
  store(): GroupStore;
  clock: Clock;
  /** See TABLE_SETTLE_MS. @default TABLE_SETTLE_MS */
  settleMs?: number;
}

/** What a peer's heartbeat answers told: its RESP address, its table, when it last answered. */
interface Heard {
  resp: string;
  table: number;
  at: number;
}

/** A member's addresses as given, and what clients are told of them (host '' = unusable). */
interface Parsed {
  resp: string;
  peer: string | undefined;
  host: string;
  port: number;
  busPort: number;
}

export class RespCluster implements ClusterView {
  readonly self: NodeId;
  private readonly opts: RespClusterOptions;
  private readonly heard = new Map<NodeId, Heard>();
  // addresses parsed, by member (a member that changes address is parsed again)
  private readonly parsed = new Map<NodeId, Parsed>();
  // when the table in force was installed
  private tableSince: number;
  private readonly off: Disposer;

  constructor(opts: RespClusterOptions) {
    this.self = opts.self;
    this.opts = opts;
    this.tableSince = opts.clock.now();
    this.off = opts.tables.onChange(() => {
      this.tableSince = opts.clock.now();
    });
  }

  /** A heartbeat answer from `peer` (FailureDetector onPingAnswer). */
  onPingAnswer(peer: NodeId, table: number, resp: string): void {
    this.heard.set(peer, { resp, table, at: this.opts.clock.now() });
  }

  stop(): void {
    this.off();
  }

  redirects(): RedirectMode {
    return this.opts.redirects();
  }

  table(): PartitionTable {
    return this.opts.tables.table();
  }

  nodes(): readonly ClusterNode[] {
    const out: ClusterNode[] = [];
    for (const m of this.opts.members.list()) {
      const n = this.node(m.id);
      if (n !== undefined) out.push(n);
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  node(id: NodeId): ClusterNode | undefined {
    const self = id === this.self;
    const info = this.opts.members.member(id);
    if (info === undefined && !self) return undefined;
    const heard = this.heard.get(id);
    const resp = self ? this.opts.address : (info?.resp_address ?? heard?.resp);
    if (resp === undefined || resp === '') return undefined;
    const where = this.parse(id, resp, info?.address);
    if (where === undefined) return undefined;
    return {
      id,
      host: where.host,
      port: where.port,
      busPort: where.busPort,
      health: self ? 'online' : this.health(id),
      pongAt: self ? this.opts.clock.now() : (heard?.at ?? 0),
    };
  }

  /** host and port of `resp`, and the port of `peer` (parsed once per address: this runs per redirect). */
  private parse(id: NodeId, resp: string, peer: string | undefined): Parsed | undefined {
    const cached = this.parsed.get(id);
    if (cached !== undefined && cached.resp === resp && cached.peer === peer) return cached.host === '' ? undefined : cached;
    const at = resp.lastIndexOf(':');
    const port = Number(resp.slice(at + 1));
    const ok = at > 0 && Number.isInteger(port) && port > 0 && port < 65536;
    const out: Parsed = { resp, peer, host: ok ? resp.slice(0, at).replace(/^\[(.*)\]$/, '$1') : '', port, busPort: portOf(peer) };
    this.parsed.set(id, out);
    return ok ? out : undefined;
  }

  current(id: NodeId): boolean {
    if (this.opts.clock.now() - this.tableSince >= (this.opts.settleMs ?? TABLE_SETTLE_MS)) return true;
    return (this.heard.get(id)?.table ?? 0) >= this.table().version;
  }

  countKeysInSlot(slot: number): number {
    let n = 0;
    this.eachKey(slot, () => {
      n++;
      return true;
    });
    return n;
  }

  keysInSlot(slot: number, count: number): string[] {
    const out: string[] = [];
    if (count > 0) {
      this.eachKey(slot, (key) => {
        out.push(key);
        return out.length < count;
      });
    }
    return out;
  }

  private health(id: NodeId): NodeHealth {
    if (this.opts.detector.usable(id)) return 'online';
    return this.opts.detector.health(id) === 'down' ? 'fail' : 'pfail';
  }

  /** Each key with a live value in this node's copy of `slot`, until `each` returns false. */
  private eachKey(slot: number, each: (key: string) => boolean): void {
    const store = this.opts.store();
    const partition = partitionOfSlot(slot, this.table().partitionCount);
    for (const [key, entry] of store.partitionEntries(partition)) {
      if (entry.value === null || slotOf(key) !== slot) continue;
      if (!each(key)) return;
    }
  }
}

/** The port of a base URL like http://127.0.0.1:8001 (0 when there is none). */
function portOf(url: string | undefined): number {
  if (url === undefined) return 0;
  try {
    const u = new URL(url);
    return u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  } catch {
    return 0;
  }
}
