/**
 * What the Redis Cluster commands and redirects (cluster.ts) read of the cluster: the seam the
 * node implements (src/node/resp-cluster.ts) and the unit tests fake. Types only, in a file of
 * their own so session.ts (CommandEnv) and cluster.ts can both name them without importing each
 * other.
 */
import type { RedirectMode } from '../../config/schema.ts';
import type { PartitionTable } from '../../core/placement/table.ts';
import type { NodeId } from '../../core/types.ts';

export type { RedirectMode };

/**
 * A node's health as Redis Cluster reports it: `online` (requests may go there: the failure
 * detector finds it usable), `pfail` (suspected: Redis's `fail?`), `fail` (down).
 */
export type NodeHealth = 'online' | 'pfail' | 'fail';

/** A node as cluster clients see it: only members with a RESP listener are listed. */
export interface ClusterNode {
  readonly id: NodeId;
  /** Host of its RESP listener, as clients connect to it (an IPv6 address without brackets). */
  readonly host: string;
  /** Port of its RESP listener. */
  readonly port: number;
  /** Port of its peer listener: the `@cport` of CLUSTER NODES (jincache's cluster bus). */
  readonly busPort: number;
  readonly health: NodeHealth;
  /** ms since epoch of its last heartbeat answer (this node: now); 0 = none yet. */
  readonly pongAt: number;
}

/** The cluster as a node's RESP listener presents it. Every method answers from memory. */
export interface ClusterView {
  /** This node's id. */
  readonly self: NodeId;
  /** `resp.redirects` in force: who gets MOVED and CROSSSLOT (SPEC §6). */
  redirects(): RedirectMode;
  /** The partition table in force. */
  table(): PartitionTable;
  /** Every member that has a RESP listener, sorted by id. */
  nodes(): readonly ClusterNode[];
  /** One member as nodes() lists it; undefined when it has no RESP listener (or it is not known yet). */
  node(id: NodeId): ClusterNode | undefined;
  /**
   * Whether `id` is known to route by this node's table (or the table has been in force long
   * enough that it surely does): a client is only sent to such a node, so two nodes on
   * different table versions never send a client back and forth between them.
   */
  current(id: NodeId): boolean;
  /** Keys with a live value in this node's copy of `slot` (the default group). */
  countKeysInSlot(slot: number): number;
  /** Up to `count` of those keys (byte strings). */
  keysInSlot(slot: number, count: number): string[];
}

/** A connection's Redis Cluster state (Session.cluster), set by CLUSTER SLOTS/SHARDS/NODES, READONLY, ASKING. */
export interface ClusterSession {
  /** Gets MOVED and CROSSSLOT under `resp.redirects: auto`. */
  aware: boolean;
  /**
   * READONLY (until READWRITE), as Redis shows it in CLIENT LIST's flags. Reads at a backup are
   * served on every connection (see redirect()), so it decides nothing else.
   */
  readonly: boolean;
}
