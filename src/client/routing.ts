/**
 * What the client knows about placement, and the order in which it tries nodes for a key.
 * Pure: no I/O, no clock. The client feeds it the JSON a node answers and asks it where to go.
 *
 * A node's `GET /cluster` lists each partition's owner only. If a node also serves the whole
 * table (`GET /cluster/table`, encodeTable's JSON), {@link withFullTable} adds the backups, so
 * failover tries a replica before an arbitrary node.
 */
import { keyFromText } from '../core/keys.ts';
import { isPartitionCount, partitionOf } from '../core/placement/hash.ts';
import type { PartitionTable } from '../core/placement/table.ts';
import { JincacheClientError } from './errors.ts';

/** One node as `GET /cluster` describes it. Fields not listed are kept as they came. */
export interface ClusterNodeInfo {
  id: string;
  /** Base URL of the node's peer listener. */
  address: string;
  /** Base URL of the node's client API (the one the client talks to). */
  apiAddress: string;
  status: string;
  health: string;
  weight?: number;
  partitionsOwned?: number;
  partitionsReplica?: number;
  [extra: string]: unknown;
}

/** The body of `GET /cluster` (README, HTTP API). Fields not listed are kept as they came. */
export interface ClusterInfo {
  /** Id of the node that answered. */
  self: string;
  ringVersion: number;
  leader?: string | null;
  partitionCount: number;
  replicationFactor: number;
  nodes: ClusterNodeInfo[];
  partitions: { owners: (string | null)[]; underReplicated?: number; [extra: string]: unknown };
  [extra: string]: unknown;
}

/** The client's routing state: one immutable snapshot per learned table version. */
export interface RoutingTable {
  /** The cluster's partition table version this snapshot was learned from. */
  readonly version: number;
  readonly partitionCount: number;
  /** Node id -> client API base URL (no trailing slash). */
  readonly apis: ReadonlyMap<string, string>;
  /** Node ids in id order, for a deterministic failover order. */
  readonly nodeIds: readonly string[];
  /** [partition] -> holder ids, owner first; the owner only unless backups were learned. */
  readonly holders: readonly (readonly string[])[];
  /** True when `holders` include the backups (learned from a full table). */
  readonly hasBackups: boolean;
}

/** Validate a `GET /cluster` body. Throws JincacheClientError 'bad_response' naming the field. */
export function parseClusterInfo(body: unknown): ClusterInfo {
  const bad = (what: string): never => {
    throw new JincacheClientError('bad_response', `GET /cluster: ${what}`);
  };
  if (typeof body !== 'object' || body === null || Array.isArray(body)) bad('expected a JSON object');
  const o = body as Record<string, unknown>;
  if (!isCount(o.ringVersion, 0)) bad(`ringVersion must be an integer >= 0, got ${short(o.ringVersion)}`);
  if (!isPartitionCount(o.partitionCount)) bad(`partitionCount must be a divisor of 16384, got ${short(o.partitionCount)}`);
  if (!Array.isArray(o.nodes)) bad('nodes must be an array');
  for (const [i, n] of (o.nodes as unknown[]).entries()) {
    const node = n as Record<string, unknown> | null;
    if (typeof node !== 'object' || node === null || typeof node.id !== 'string' || node.id === '') bad(`nodes[${i}].id must be a non-empty string`);
    if (typeof node!.apiAddress !== 'string' || !isHttpBase(node!.apiAddress)) bad(`nodes[${i}].apiAddress must be an http base URL, got ${short(node!.apiAddress)}`);
  }
  const partitions = o.partitions as Record<string, unknown> | null | undefined;
  if (typeof partitions !== 'object' || partitions === null || !Array.isArray(partitions.owners)) bad('partitions.owners must be an array');
  const owners = partitions!.owners as unknown[];
  if (owners.length !== o.partitionCount) bad(`partitions.owners has ${owners.length} entries for ${String(o.partitionCount)} partitions`);
  for (const [p, owner] of owners.entries()) {
    if (owner !== null && typeof owner !== 'string') bad(`partitions.owners[${p}] must be a node id or null, got ${short(owner)}`);
  }
  return o as unknown as ClusterInfo;
}

/** A routing snapshot from a validated `GET /cluster` body (owners only). */
export function routingFromCluster(info: ClusterInfo): RoutingTable {
  const apis = new Map<string, string>();
  for (const n of [...info.nodes].sort((a, b) => compare(a.id, b.id))) apis.set(n.id, n.apiAddress.replace(/\/+$/, ''));
  // one shared empty array for unowned partitions keeps the snapshot small
  const none: readonly string[] = [];
  const holders = info.partitions.owners.map((o) => (o === null ? none : [o]));
  return { version: info.ringVersion, partitionCount: info.partitionCount, apis, nodeIds: [...apis.keys()], holders, hasBackups: false };
}

/**
 * `rt` with the backups of `table` added, when both describe the same table (same version and
 * partition count); otherwise `rt` unchanged, because mixing two versions would misroute.
 */
export function withFullTable(rt: RoutingTable, table: PartitionTable): RoutingTable {
  if (table.version !== rt.version || table.partitionCount !== rt.partitionCount) return rt;
  return { ...rt, holders: table.assignments, hasBackups: true };
}

/**
 * The partition of `key` under `rt`, as every node computes it: the partition of the hash slot of
 * the key's UTF-8 bytes (the HTTP API's keys are text; a node hashes their bytes, SPEC §2).
 */
export function partitionFor(rt: RoutingTable, key: string): number {
  return partitionOf(keyFromText(key), rt.partitionCount);
}

/**
 * Node ids to try for `key`, best first: the partition's holders (owner, then backups), then
 * every other node (any node forwards to the owner), starting at an offset taken from the
 * partition so failover load spreads over the survivors. Nodes `isDown` reports go last, in
 * the same order, rather than being dropped: the mark may be stale, and trying beats failing.
 */
export function candidates(rt: RoutingTable, key: string, isDown: (id: string) => boolean): string[] {
  const p = partitionFor(rt, key);
  const holders = rt.holders[p] ?? [];
  const order: string[] = [];
  for (const id of holders) if (rt.apis.has(id)) order.push(id);
  const n = rt.nodeIds.length;
  for (let i = 0; i < n; i++) {
    const id = rt.nodeIds[(p + i) % n]!;
    if (!order.includes(id)) order.push(id);
  }
  const up = order.filter((id) => !isDown(id));
  return up.length === order.length ? up : [...up, ...order.filter((id) => isDown(id))];
}

/** A base URL the client can send to: http://host:port with nothing after it but slashes. */
export function isHttpBase(s: string): boolean {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return false;
  }
  return u.protocol === 'http:' && u.hostname !== '' && (u.pathname === '/' || /^\/+$/.test(u.pathname)) && u.search === '' && u.hash === '';
}

function isCount(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
