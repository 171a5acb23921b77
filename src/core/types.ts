/**
 * Shared vocabulary of jincache. Pure types and tiny helpers only: no I/O here.
 */

/** A node's stable identifier, e.g. "node-1". */
export type NodeId = string;

/** Source of wall-clock time in milliseconds since the epoch. Injected everywhere time matters. */
export interface Clock {
  now(): number;
}

/** The real clock. Tests pass their own. */
export const systemClock: Clock = { now: () => Date.now() };

/** A 32-bit unsigned hash of a string. */
export type HashFn = (data: string) => number;

/** Lifecycle of a node as published in the registry (SPEC §4 NodeInfo.status). */
export type NodeStatus = 'joining' | 'active' | 'leaving';

/**
 * What a node publishes about itself (SPEC §4 `/jincache/nodes/{id}`).
 * `address` is the base URL of its peer listener (node-to-node traffic), e.g. "http://127.0.0.1:8001".
 */
export interface NodeInfo {
  id: NodeId;
  address: string;
  status: NodeStatus;
  /** ms since epoch of the last registration or heartbeat. */
  last_seen: number;
  /** Base URL of the client API listener when it differs from `address`. */
  api_address?: string;
  /** host:port of the Redis-protocol listener, when enabled. */
  resp_address?: string;
  /** Placement weight, default 1.0. */
  weight?: number;
  /** Failure domain (config `node.zone`): copies of a partition go to distinct zones when there are enough. */
  zone?: string;
}

/** A member of the placement table: a node id, its weight (1.0 = 150 virtual nodes) and its zone. */
export interface Member {
  id: NodeId;
  weight: number;
  /** Failure domain; a member without one is a domain of its own. */
  zone?: string;
}

/**
 * Entry version: a hybrid logical clock reading, `physicalMs * 1024 + logical`.
 * Higher wins; see src/core/version.ts for the conflict rule.
 */
export type Version = number;
