/**
 * The Redis Cluster protocol on every node's RESP listener (SPEC §6): CLUSTER SLOTS | SHARDS |
 * NODES | INFO | MYID | KEYSLOT | COUNTKEYSINSLOT | GETKEYSINSLOT, READONLY, READWRITE, ASKING
 * (CLUSTER_COMMANDS), and redirect(), which the dispatcher asks before running a key command.
 *
 * How jincache's placement reads as a Redis Cluster:
 * - A partition is a contiguous range of slots (core/placement/hash.ts) and its holders are the
 *   table's owner and backups. The master a client is shown for a range is the holder a write is
 *   coordinated at: the first holder that is up (the router's writeOrder in
 *   cluster/health/failover.ts), so after a crash the slots pass to a backup as soon as the failure
 *   detector notices, long before the table changes. The other holders that are up are its
 *   replicas. Adjacent partitions with the same holders form one range.
 * - A jincache node owns some partitions and backs up others, which Redis's NODES line (one
 *   master per replica) cannot say: CLUSTER NODES lists every node as a master of the slots it
 *   serves; CLUSTER SLOTS and SHARDS list the backups as each range's replicas.
 * - Node ids are the SHA-1 of the jincache id (40 hex chars: the same on every node, and after a
 *   restart); every epoch is the table version; the `@cport` is the node's peer port.
 * - No ASK, ever. jincache moves a partition by copying it while its old holders still own it
 *   (the new holders receive its writes meanwhile) and then committing the new table at once; a
 *   miss at a new holder asks the previous ones (cluster/migration/moves.ts). There is no moment
 *   when a slot's keys are split between two nodes, which is what ASK is for; the commit is a
 *   table change, and clients get MOVED. ASKING is accepted and only marks the connection.
 * - A redirect is advice: every node serves every key correctly (the router forwards it), so
 *   when in doubt (the master has no RESP address, or may still route by an older table) the
 *   node serves the key itself rather than risk sending the client back and forth.
 *
 * Pure: every answer is built from the ClusterView (cluster-view.ts) the node implements.
 */
import { createHash } from 'node:crypto';
import { SLOT_COUNT, partitionOfSlot, slotOf, slotOfBytes } from '../../core/placement/hash.ts';
import type { PartitionTable } from '../../core/placement/table.ts';
import type { NodeId } from '../../core/types.ts';
import type { ClusterNode, ClusterSession, ClusterView } from './cluster-view.ts';
import { denied, notInteger, parseInteger, wrongArity, type CommandSpec, type Session } from './session.ts';
import { OK, array, bulk, error, integer, map, simple, verbatim, type RespReply } from './writer.ts';

export type { ClusterNode, ClusterSession, ClusterView, NodeHealth, RedirectMode } from './cluster-view.ts';

/** A key as the dispatcher has it: a byte string (one char per byte) or the bytes themselves. */
export type KeyArg = string | Uint8Array;

/** Redis's words (cluster.c). */
export const CROSSSLOT = error("CROSSSLOT Keys in request don't hash to the same slot");
export const CLUSTERDOWN = error('CLUSTERDOWN Hash slot not served');
const DISABLED = error('ERR This instance has cluster support disabled');

function slotOfKey(key: KeyArg): number {
  return typeof key === 'string' ? slotOf(key) : slotOfBytes(key);
}

/**
 * What a cluster client must be told before this node runs a command on `keys`, or undefined to
 * run it here. Called by the dispatcher after the permission check, with the command's keys (one
 * key or a list: a list of none means no keys) and whether it only reads.
 *
 * - No view, `resp.redirects: never`, or (under `auto`) a connection that is not cluster-aware:
 *   undefined at once, without looking at the keys (the plain path costs two loads).
 * - Keys in more than one slot: `-CROSSSLOT Keys in request don't hash to the same slot`.
 * - A slot no node holds (a table with no members): `-CLUSTERDOWN Hash slot not served`.
 * - A read of a slot this node holds, as owner or backup: undefined. Redis sends a replica's
 *   reads to its master unless the connection sent READONLY; here a node is a backup of some
 *   slots and the master of others, so clients keep one connection to it, which cannot be both
 *   (ioredis with `scaleReads: 'slave'` sends such reads without READONLY and, redirected, would
 *   be redirected back to the backup on its next try). Reads are answered wherever they arrive,
 *   so this costs at most a hop.
 * - A slot served by another node: `-MOVED <slot> <host>:<port>` naming it, unless that node has
 *   no RESP address or may still route by an older table (ClusterView.current): then undefined,
 *   and the key is forwarded as for a plain connection.
 */
export function redirect(session: Session, keys: KeyArg | readonly KeyArg[], view: ClusterView | undefined, access: 'read' | 'write'): RespReply | undefined {
  if (view === undefined) return undefined;
  const mode = view.redirects();
  if (mode === 'never' || (mode === 'auto' && session.cluster?.aware !== true)) return undefined;
  let slot: number;
  if (typeof keys === 'string' || keys instanceof Uint8Array) {
    slot = slotOfKey(keys);
  } else {
    const list = keys as readonly KeyArg[];
    if (list.length === 0) return undefined;
    slot = slotOfKey(list[0]!);
    for (let i = 1; i < list.length; i++) if (slotOfKey(list[i]!) !== slot) return CROSSSLOT;
  }
  const table = view.table();
  const holders = table.assignments[partitionOfSlot(slot, table.partitionCount)] ?? [];
  if (holders.length === 0) return CLUSTERDOWN;
  if (access === 'read' && holders.includes(view.self)) return undefined;
  const master = masterOf(view, holders);
  if (master === undefined || master.id === view.self || !view.current(master.id)) return undefined;
  return error(`MOVED ${slot} ${master.host}:${master.port}`);
}

/**
 * The node CLUSTER SLOTS names as the master of `slot` (undefined: none). For commands a Redis
 * Cluster client sends to every master and merges (DBSIZE, KEYS, SCAN, FLUSHALL...): on a
 * cluster-aware connection a node should answer for the slots it is master of, so the sum is the
 * cluster's.
 */
export function masterOfSlot(view: ClusterView, slot: number): NodeId | undefined {
  const table = view.table();
  return masterOf(view, table.assignments[partitionOfSlot(slot, table.partitionCount)] ?? [])?.id;
}

/**
 * The node clients are sent to for a partition: its first holder that is up and has a RESP
 * listener; when none is, any node that is up (it forwards), else the first holder clients can
 * reach at all.
 */
function masterOf(view: ClusterView, holders: readonly NodeId[]): ClusterNode | undefined {
  for (const id of holders) {
    const n = view.node(id);
    if (n !== undefined && n.health === 'online') return n;
  }
  return fallbackMaster(view, holders);
}

function fallbackMaster(view: ClusterView, holders: readonly NodeId[]): ClusterNode | undefined {
  const up = view.nodes().find((n) => n.health === 'online');
  if (up !== undefined) return up;
  for (const id of holders) {
    const n = view.node(id);
    if (n !== undefined) return n;
  }
  return undefined;
}

// ---- the slot map ------------------------------------------------------------------------

/** Slots first..last (inclusive) and the nodes serving them, master first. */
export interface SlotRange {
  readonly first: number;
  readonly last: number;
  readonly served: readonly ClusterNode[];
}

interface SlotMap {
  readonly signature: string;
  readonly nodes: readonly ClusterNode[];
  readonly ranges: readonly SlotRange[];
  /** CLUSTER SLOTS and SHARDS for these ranges, built on first use (thousands of ranges: clients ask every few seconds). */
  replies: { slots?: RespReply; shards?: RespReply };
}

// the last map built per view: CLUSTER SLOTS is asked often, and the table and health rarely change
const maps = new WeakMap<ClusterView, SlotMap>();

/** Every slot range clients can be served at, ascending; contiguous ranges with the same nodes merged. */
export function slotRanges(view: ClusterView): readonly SlotRange[] {
  return slotMap(view).ranges;
}

function slotMap(view: ClusterView): SlotMap {
  const table = view.table();
  const nodes = view.nodes();
  const signature = `${table.version}|${nodes.map((n) => `${n.id}@${n.host}:${n.port}/${n.health}`).join(',')}`;
  const cached = maps.get(view);
  // the cached ranges and replies, with the nodes as they are now (their pong times move on)
  if (cached !== undefined && cached.signature === signature) return { ...cached, nodes };
  const built: SlotMap = { signature, nodes, ranges: rangesOf(table, nodes), replies: {} };
  maps.set(view, built);
  return built;
}

/** The slot ranges of a table, adjacent partitions served by the same nodes merged. */
function rangesOf(table: PartitionTable, nodes: readonly ClusterNode[]): SlotRange[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const per = SLOT_COUNT / table.partitionCount;
  const ranges: SlotRange[] = [];
  let key = '';
  for (let p = 0; p < table.partitionCount; p++) {
    const served = servedBy(table.assignments[p] ?? [], byId, nodes);
    if (served.length === 0) {
      key = '';
      continue;
    }
    const k = served.map((n) => n.id).join('\0');
    const last = ranges[ranges.length - 1];
    if (k === key && last !== undefined && last.last === p * per - 1) {
      ranges[ranges.length - 1] = { first: last.first, last: (p + 1) * per - 1, served: last.served };
    } else {
      ranges.push({ first: p * per, last: (p + 1) * per - 1, served });
    }
    key = k;
  }
  return ranges;
}

/** masterOf, then the partition's other holders that are up: the nodes serving its slots. */
function servedBy(holders: readonly NodeId[], byId: ReadonlyMap<NodeId, ClusterNode>, nodes: readonly ClusterNode[]): ClusterNode[] {
  const up: ClusterNode[] = [];
  for (const id of holders) {
    const n = byId.get(id);
    if (n !== undefined && n.health === 'online') up.push(n);
  }
  if (up.length > 0 || holders.length === 0) return up;
  const any = nodes.find((n) => n.health === 'online') ?? holders.map((id) => byId.get(id)).find((n) => n !== undefined);
  return any === undefined ? [] : [any];
}

// ---- replies -----------------------------------------------------------------------------

const hexIds = new Map<NodeId, string>();

/** The 40-hex-char Redis Cluster id of a jincache node: SHA-1 of its id, stable everywhere. */
export function clusterNodeId(id: NodeId): string {
  let hex = hexIds.get(id);
  if (hex === undefined) {
    hex = createHash('sha1').update(id, 'utf8').digest('hex');
    if (hexIds.size > 10_000) hexIds.clear(); // ids come from the membership: a bound, not a cache policy
    hexIds.set(id, hex);
  }
  return hex;
}

/** CLUSTER SLOTS: [first, last, master, replicas...], each node [ip, port, id, {}] (Redis 7). */
export function slotsReply(view: ClusterView): RespReply {
  const m = slotMap(view);
  const node = (n: ClusterNode): RespReply => array([bulk(n.host), integer(n.port), bulk(clusterNodeId(n.id)), map([])]);
  return (m.replies.slots ??= array(m.ranges.map((r) => array([integer(r.first), integer(r.last), ...r.served.map(node)]))));
}

/** CLUSTER SHARDS: one shard per distinct set of serving nodes, its slots as [first, last, ...] pairs. */
export function shardsReply(view: ClusterView): RespReply {
  const m = slotMap(view);
  return (m.replies.shards ??= buildShards(m.ranges));
}

function buildShards(ranges: readonly SlotRange[]): RespReply {
  const shards = new Map<string, { slots: number[]; served: readonly ClusterNode[] }>();
  for (const r of ranges) {
    const key = r.served.map((n) => n.id).join('\0');
    let s = shards.get(key);
    if (s === undefined) shards.set(key, (s = { slots: [], served: r.served }));
    s.slots.push(r.first, r.last);
  }
  const nodeMap = (n: ClusterNode, role: 'master' | 'replica'): RespReply =>
    map([
      [bulk('id'), bulk(clusterNodeId(n.id))],
      [bulk('port'), integer(n.port)],
      [bulk('ip'), bulk(n.host)],
      [bulk('endpoint'), bulk(n.host)],
      [bulk('role'), bulk(role)],
      [bulk('replication-offset'), integer(0)],
      // Redis says "failed" only for FAIL; a suspected (PFAIL) node is still online
      [bulk('health'), bulk(n.health === 'fail' ? 'failed' : 'online')],
    ]);
  return array(
    [...shards.values()].map((s) =>
      map([
        [bulk('slots'), array(s.slots.map((x) => integer(x)))],
        [bulk('nodes'), array(s.served.map((n, i) => nodeMap(n, i === 0 ? 'master' : 'replica')))],
      ]),
    ),
  );
}

/** The slots each node is master of, contiguous ranges merged (CLUSTER NODES's last columns). */
function masterSlots(ranges: readonly SlotRange[]): Map<NodeId, [number, number][]> {
  const out = new Map<NodeId, [number, number][]>();
  for (const r of ranges) {
    const id = r.served[0]!.id;
    let list = out.get(id);
    if (list === undefined) out.set(id, (list = []));
    const last = list[list.length - 1];
    if (last !== undefined && last[1] === r.first - 1) last[1] = r.last;
    else list.push([r.first, r.last]);
  }
  return out;
}

/**
 * CLUSTER NODES: one line per node, `id ip:port@cport flags master ping-sent pong-recv
 * config-epoch link-state slots...`, each ending in "\n" (Redis 7.0's format).
 */
export function nodesText(view: ClusterView): string {
  const { nodes, ranges } = slotMap(view);
  const slots = masterSlots(ranges);
  const epoch = view.table().version;
  let out = '';
  for (const n of nodes) {
    const flags = [...(n.id === view.self ? ['myself'] : []), 'master', ...(n.health === 'pfail' ? ['fail?'] : n.health === 'fail' ? ['fail'] : [])].join(',');
    const own = (slots.get(n.id) ?? []).map(([a, b]) => (a === b ? ` ${a}` : ` ${a}-${b}`)).join('');
    out += `${clusterNodeId(n.id)} ${n.host}:${n.port}@${n.busPort} ${flags} - 0 ${n.pongAt} ${epoch} ${n.health === 'fail' ? 'disconnected' : 'connected'}${own}\n`;
  }
  return out;
}

/** CLUSTER INFO, Redis 7.0's fields ("\r\n" after each line). */
export function infoText(view: ClusterView): string {
  const { nodes, ranges } = slotMap(view);
  let assigned = 0;
  let pfail = 0;
  let fail = 0;
  const masters = new Set<NodeId>();
  for (const r of ranges) {
    const n = r.last - r.first + 1;
    assigned += n;
    const master = r.served[0]!;
    masters.add(master.id);
    if (master.health === 'pfail') pfail += n;
    else if (master.health === 'fail') fail += n;
  }
  const epoch = view.table().version;
  const fields: [string, string | number][] = [
    ['cluster_state', assigned === SLOT_COUNT && fail === 0 ? 'ok' : 'fail'],
    ['cluster_slots_assigned', assigned],
    ['cluster_slots_ok', assigned - pfail - fail],
    ['cluster_slots_pfail', pfail],
    ['cluster_slots_fail', fail],
    ['cluster_known_nodes', nodes.length],
    ['cluster_size', masters.size],
    ['cluster_current_epoch', epoch],
    ['cluster_my_epoch', epoch],
    // jincache's nodes talk over HTTP (the peer protocol), not a cluster bus
    ['cluster_stats_messages_sent', 0],
    ['cluster_stats_messages_received', 0],
    ['total_cluster_links_buffer_limit_exceeded', 0],
  ];
  return fields.map(([k, v]) => `${k}:${v}\r\n`).join('');
}

// ---- the commands ------------------------------------------------------------------------

function clusterState(session: Session): ClusterSession {
  return (session.cluster ??= { aware: false, readonly: false });
}

type Sub = (view: ClusterView, session: Session, args: Buffer[]) => RespReply;

/** Subcommands: arity as Redis counts it (the whole command, CLUSTER included), and the body. */
const SUBCOMMANDS: Record<string, { arity: number; run: Sub }> = {
  slots: {
    arity: 2,
    run(view, session) {
      clusterState(session).aware = true;
      return slotsReply(view);
    },
  },
  shards: {
    arity: 2,
    run(view, session) {
      clusterState(session).aware = true;
      return shardsReply(view);
    },
  },
  nodes: {
    arity: 2,
    run(view, session) {
      clusterState(session).aware = true;
      return verbatim(nodesText(view));
    },
  },
  info: { arity: 2, run: (view) => verbatim(infoText(view)) },
  myid: { arity: 2, run: (view) => bulk(clusterNodeId(view.self)) },
  keyslot: { arity: 3, run: (_view, _s, args) => integer(slotOfBytes(args[2]!)) },
  countkeysinslot: {
    arity: 3,
    run(view, session, args) {
      const refused = denied(session, 'read', 'cluster|countkeysinslot');
      if (refused !== undefined) return refused;
      const slot = parseInteger(args[2]!);
      if (slot === null) return notInteger;
      if (slot < 0 || slot >= SLOT_COUNT) return error('ERR Invalid slot');
      return integer(view.countKeysInSlot(slot));
    },
  },
  getkeysinslot: {
    arity: 4,
    run(view, session, args) {
      const refused = denied(session, 'read', 'cluster|getkeysinslot');
      if (refused !== undefined) return refused;
      const slot = parseInteger(args[2]!);
      if (slot === null) return notInteger;
      const count = parseInteger(args[3]!);
      if (count === null) return notInteger;
      if (slot < 0 || slot >= SLOT_COUNT || count < 0) return error('ERR Invalid slot or number of keys');
      return array(view.keysInSlot(slot, count).map((k) => bulk(Buffer.from(k, 'latin1'))));
    },
  },
  help: {
    arity: 2,
    run: () =>
      array(
        [
          'CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
          'COUNTKEYSINSLOT <slot>',
          '    Return the number of keys in <slot> held by this node.',
          'GETKEYSINSLOT <slot> <count>',
          '    Return key names stored by this node in a slot.',
          'INFO',
          '    Return information about the cluster.',
          'KEYSLOT <key>',
          '    Return the hash slot for <key>.',
          'MYID',
          '    Return the node id.',
          'NODES',
          '    Return cluster configuration seen by node. Output format:',
          '    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...',
          'SHARDS',
          '    Return information about slot range mappings and the nodes associated with them.',
          'SLOTS',
          '    Return information about slots range mappings. Each range is made of:',
          '    start, end, master and replicas IP addresses, ports and ids',
          'HELP',
          '    Print this help.',
        ].map((line) => simple(line)),
      ),
  },
};

export const CLUSTER_COMMANDS: Record<string, CommandSpec> = {
  cluster: {
    perm: 'user',
    arity: -2,
    flags: [],
    keys: [0, 0, 0],
    run(env, session, args) {
      const name = args[1]!.toString('latin1').toLowerCase();
      const sub = Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined;
      if (sub === undefined) return error(`ERR unknown subcommand '${args[1]!.toString('utf8')}'. Try CLUSTER HELP.`);
      if (sub.arity > 0 ? args.length !== sub.arity : args.length < -sub.arity) return wrongArity(`cluster|${name}`);
      if (env.cluster === undefined) return DISABLED;
      return sub.run(env.cluster, session, args);
    },
  },
  readonly: {
    perm: 'user',
    arity: 1,
    flags: ['loading', 'stale', 'fast'],
    keys: [0, 0, 0],
    run(env, session) {
      if (env.cluster === undefined) return DISABLED;
      const s = clusterState(session);
      s.aware = true;
      s.readonly = true;
      return OK;
    },
  },
  readwrite: {
    perm: 'user',
    arity: 1,
    flags: ['loading', 'stale', 'fast'],
    keys: [0, 0, 0],
    run(env, session) {
      if (env.cluster === undefined) return DISABLED;
      clusterState(session).readonly = false;
      return OK;
    },
  },
  asking: {
    perm: 'user',
    arity: 1,
    flags: ['fast'],
    keys: [0, 0, 0],
    run(env, session) {
      if (env.cluster === undefined) return DISABLED;
      // jincache never sends ASK (see the opening comment): nothing to remember but awareness
      clusterState(session).aware = true;
      return OK;
    },
  },
};
