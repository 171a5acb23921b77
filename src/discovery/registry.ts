import type { NodeId, NodeInfo } from '../core/types.ts';
import type { PartitionTable } from '../core/placement/table.ts';

/** Called with the complete, current membership (never a diff). The newest call always wins. */
export type MembershipListener = (members: readonly NodeInfo[]) => void;

/** Undo a subscription. */
export type Disposer = () => void;

/**
 * Discovery seam: who is in the cluster. Implementations: {@link StaticRegistry} (`--peers`)
 * and the etcd registry (src/discovery/etcd-registry.ts).
 */
export interface Registry {
  /** Publish this node and begin watching membership. Resolves once the first membership is known. */
  start(self: NodeInfo): Promise<void>;
  /** Leave the cluster (graceful: peers see the node gone at once), stop watching. */
  stop(): Promise<void>;
  /** Update what this node publishes (status, weight...). */
  update(self: NodeInfo): Promise<void>;
  /** The current membership, sorted by id. */
  members(): readonly NodeInfo[];
  /** Subscribe to membership changes. */
  onChange(listener: MembershipListener): Disposer;
  /** Called when this node's registration was lost (its lease expired) and it re-registers. Default: never (static). */
  onLeaseLost?(listener: () => void): Disposer;
}

/**
 * Where the authoritative partition table lives. Static clusters derive it locally from the
 * sorted membership; etcd clusters keep it at `/jincache/ring`, written by the elected leader.
 */
export interface TableStore {
  /** The stored table, or null when none was written yet. */
  load(): Promise<PartitionTable | null>;
  /**
   * Write `next` only if the stored version is still `expectedVersion` (0 = none stored) and,
   * when `guardKey` is given, that key still exists (the writer's leadership key: a leader whose
   * lease expired while it was paused cannot write any more). Returns false otherwise.
   */
  compareAndSwap(expectedVersion: number, next: PartitionTable, guardKey?: string): Promise<boolean>;
  /** Subscribe to stored-table changes. */
  onChange(listener: (table: PartitionTable) => void): Disposer;
}

/** Leader election for cluster-wide duties (table writer, rebalancer, migration coordinator). */
export interface Election {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The current leader's node id, or null while unknown. */
  leader(): NodeId | null;
  isLeader(): boolean;
  /** While leader: the store key that proves it (it disappears with the leader's lease); writes a leader makes are guarded by it. */
  leaderKey?(): string | null;
  onChange(listener: (leader: NodeId | null) => void): Disposer;
}
