/**
 * How cluster components plug into a node without each editing the composition root:
 * a plugin gets the node's context at start, may add node-to-node routes and contribute to
 * GET /cluster, and is stopped in reverse order. Failure detection, handoff, migration, the load
 * monitor and the rebalancer are plugins.
 */
import type { Group } from '../cache/group.ts';
import type { Config } from '../config/schema.ts';
import type { PartitionTable } from '../core/placement/table.ts';
import type { Clock, NodeId, NodeInfo } from '../core/types.ts';
import type { Disposer, Election, Registry, TableStore } from '../discovery/registry.ts';
import type { Logger } from '../observe/logger.ts';
import type { Metrics, MetricsSnapshot, RequestOp } from '../observe/metrics.ts';
import type { EtcdCoordination } from '../discovery/etcd-coordination.ts';
import type { NodeStorage } from '../storage/node-storage.ts';
import type { PeerRoute } from '../front/http/server.ts';
import type { PeerClient } from '../peer/client.ts';
import type { GetResult } from './kv.ts';
import type { LocalData } from './local-data.ts';
import type { Router } from './router.ts';
import type { TableManager } from './table-manager.ts';

/** A cluster event shown in the dashboard feed (join, leave, suspicion, rebalance, migration). */
export interface ClusterEvent {
  at: number;
  kind: string;
  message: string;
}

export interface NodeContext {
  readonly id: NodeId;
  readonly info: NodeInfo;
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly groups: ReadonlyMap<string, Group>;
  readonly local: LocalData;
  readonly router: Router;
  readonly peers: PeerClient;
  readonly registry: Registry;
  readonly tables: TableManager;
  readonly tableStore: TableStore | undefined;
  readonly election: Election | undefined;
  /** The etcd bundle (client, registry with its lease, prefix) when the node runs with etcd. */
  readonly etcd: EtcdCoordination | undefined;
  /** LevelDB persistence (flush, partitionRecords, catchUpFrom) when `storage.engine: leveldb`. */
  readonly storage: NodeStorage | undefined;
  partitionOf(key: string): number;
  /** The failure detector's verdict (every plugin's `usable` hook). */
  usable(id: NodeId): boolean;
  table(): PartitionTable;
  members(): readonly NodeInfo[];
  member(id: NodeId): NodeInfo | undefined;
  onMembers(listener: (members: readonly NodeInfo[]) => void): Disposer;
  /** Add an event to the node's bounded event feed. */
  event(kind: string, message: string): void;
}

/**
 * Hooks a plugin may give the router. Each is consulted on the request path, so keep them O(1).
 * When several plugins give the same hook, the node combines them (union of node lists; a node is
 * usable only if every plugin says so).
 */
export interface RoutingHooks {
  /** Failure detector: may requests be sent to this node now? Default: yes. */
  usable?(id: NodeId): boolean;
  /** Extra nodes that must also receive writes of this partition (e.g. pending holders while it migrates). */
  extraReplicas?(partition: number): readonly NodeId[];
  /** Nodes that may still hold this partition's data (e.g. its previous owner); a miss at the owner asks them before the origin. */
  previousHolders?(partition: number): readonly NodeId[];
  /**
   * This node's copy of the partition may lack acknowledged writes: a table change made it a
   * holder without copying the data first (a crashed node's removal; the repair copies it
   * afterwards). Reads it serves are answered with the newest copy among the holders meanwhile.
   */
  lacking?(partition: number): boolean;
  /** A mirrored copy of another owner's hot key (hot-key mirroring). */
  mirrorGet?(group: string, key: string): GetResult | undefined;
  /** Before a write of this key is acknowledged (mirror invalidation). */
  beforeOwnerWrite?(group: string, key: string, version: number, deadline: number): Promise<void>;
  /** Whether beforeOwnerWrite has work to do for this key now (false lets a write skip it). Default: assumed true. */
  writeWaits?(group: string, key: string): boolean;
}

/** Answer of a plugin to POST /cluster/rebalance or GET /cluster/migrations. */
export type ControlHandler = (body: unknown) => Promise<unknown>;

export interface NodePlugin {
  readonly name: string;
  start(ctx: NodeContext): Promise<void>;
  stop(): Promise<void>;
  /** Node-to-node routes under /_jincache/, by path prefix. */
  peerRoutes?(): ReadonlyMap<string, PeerRoute>;
  /**
   * Fields merged into GET /cluster. Two names are special: `nodeStats` ({ [nodeId]: { loadScore,
   * qps, memoryBytes, storedBytes, entries } }) and `health` ({ [nodeId]: state }) are merged
   * into the rows of `nodes` instead of appearing at the top level.
   */
  clusterInfo?(): Record<string, unknown>;
  /** Request-path hook: one call per key operation this node serves as owner. Keep it O(1). */
  record?(op: RequestOp, group: string, key: string, partition: number, bytesIn: number, bytesOut: number): void;
  /** Gauges for GET /metrics, merged into the node's snapshot. */
  metrics?(): Partial<MetricsSnapshot>;
  /** Router hooks (failover, migration). Read once after start. */
  routing?(): RoutingHooks;
  /**
   * Client-API control routes this plugin answers, by "METHOD /path" (e.g. "POST /cluster/rebalance").
   * A `{name}` segment matches one path segment and is passed in the body as `name`.
   */
  controlRoutes?(): ReadonlyMap<string, ControlHandler>;
  /** Graceful shutdown, before any plugin stops: hand this node's work over (e.g. its partitions). */
  drain?(): Promise<void>;
}
