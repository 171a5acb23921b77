/**
 * The versioned partition table: for every partition, its owner and an ordered list of backups.
 * It is THE single source of truth for placement; routing, replication and migration read it.
 *
 * Why a table and not just the ring: a memoryless ring (even with a bounded-load cap) balances
 * to within a few percent but moves 1.5-3x the ideal share of partitions when a node joins,
 * because the cap reshuffles arcs far from the new node. A table can instead change minimally
 * from its previous version (as Redis slots, Hazelcast and Olric do). The ring stays as the
 * tie-breaker: it decides *which* node gets a partition when several could, so the choice is
 * deterministic and spreads evenly.
 *
 * Algorithm (`place`), run once per role: the owner slot, then each backup slot.
 *   1. Quota. Each member gets floor(P · w / W) partitions of this role; the P - Σfloor left
 *      over go one each to the nodes with the largest remainders (ties: lower id). Nodes that
 *      already hold their rounded-up share keep their extra one first ("sticky" remainders),
 *      so a quota never drops below what a node holds merely because of rounding; this is what
 *      keeps a leave or a weight change from moving partitions of bystanders.
 *   2. Keep. Every previous assignment stays if its node is still a member and is not already
 *      a holder of that partition in an earlier slot.
 *   3. Shed. A node above quota drops its surplus: the partitions it ranks lowest by
 *      rendezvous score fmix32(hash(node) ^ point(partition)), a deterministic per-node order.
 *   4. Hand out. Each orphaned partition (ascending) goes to an under-quota node that is not
 *      yet a holder of it, preferring one that held it in the previous table (a backup
 *      promoted to owner already has the data, so nothing moves), otherwise the first such
 *      node walking the ring clockwise from the partition's point.
 *   5. Repair. When every under-quota node already holds the partition (possible for backup
 *      slots near the end of step 4), swap with a partition handed out in this same step so
 *      balance holds without touching partitions that were not moving anyway; if there is no
 *      such swap, go over quota by one: to a previous holder (nothing moves), else to the
 *      first distinct node on the ring. Bystanders never move to fix balance.
 * Quotas are capped so that no node is asked to hold a partition twice: a node with more than
 * 1/factor of the total weight holds every partition, and the others share the rest.
 * Measured (bench/scenarios/placement.ts, 4096 partitions, equal weights): max/mean partitions
 * per node <= 1.011 for owners and backups from 3 to 100 nodes (at 1000 nodes each holds 4 or 5,
 * so 1.22 is the floor for any placement); a join moves the new node's quota of owners, i.e.
 * 0.98-1.0x the ideal 1/(N+1), where a memoryless bounded-load ring moves 1.1-2.9x.
 *
 * Zones (config `node.zone`, a failure domain: a rack, a datacenter). The first Z copies of a
 * partition (Z = number of zones; a member without a zone is a zone of its own) go to distinct
 * zones: a node is "taken" for a slot when it, or another node of its zone, holds the partition
 * in an earlier slot. Quotas of such a slot are apportioned among zones first, each capped at
 * the partitions it does not hold yet, then within each zone. Shedding and the hand-out prefer
 * choices that do not push out a copy kept in a later slot of the same zone, and a stuck
 * partition may swap with one that was not moving (zoned tables only) rather than leave a node
 * over quota. In a zone-less cluster every "zone" check is the node check, so its tables are
 * byte for byte those of the zone-less algorithm. Measured (table.test.ts, 4096 partitions,
 * zones that each hold less than 1/factor of the weight, or `factor` equal zones): max/mean
 * <= 1.01; a join moves owners only to the new node and ~1.0x its share of copies; a leave moves
 * up to ~1.35x the leaving node's copies near the balance limit. A zone holding more than
 * 1/factor of the weight must hold a copy of every partition, so its nodes cannot be balanced
 * with the others.
 *
 * Determinism: members are sorted by id, every loop runs over partitions or sorted members in
 * index order, and all ties are broken by id or partition number. No Map/Set iteration order,
 * no randomness, no clock except `createdAt`. The same inputs give the same table everywhere.
 */
import type { Clock, HashFn, Member, NodeId } from '../types.ts';
import { systemClock } from '../types.ts';
import { checkWeight, PlacementError } from './errors.ts';
import { DEFAULT_PARTITION_COUNT, defaultHash, fmix32 } from './hash.ts';
import { checkVnodesPerWeight, compareIds, DEFAULT_VNODES_PER_WEIGHT, HashRing } from './ring.ts';

/** Copies of each partition, owner included, when none is configured (SPEC §5 `replication.factor`). */
export const DEFAULT_REPLICATION_FACTOR = 2;

/** Largest partition count accepted (a table of 2^24 partitions is already ~100 MB of JSON). */
export const MAX_PARTITION_COUNT = 1 << 24;

/** Largest replication factor accepted. */
export const MAX_REPLICATION_FACTOR = 64;

export interface PartitionTable {
  /** Starts at 1 and goes up by 1 with every change. */
  version: number;
  /** Fixed for the life of the cluster. */
  partitionCount: number;
  /** Copies of each partition, owner included. */
  replicationFactor: number;
  /** Sorted by id. */
  members: Member[];
  /**
   * [partition] -> [owner, backup1, ...], distinct nodes, length min(replicationFactor,
   * members.length); [] when there are no members.
   */
  assignments: NodeId[][];
  /** clock.now() when the table was built. */
  createdAt: number;
}

export interface PlacementOptions {
  /** Number of partitions; fixed when the cluster is created. @default 4096 */
  partitionCount?: number;
  /** Copies of each partition including the owner. @default 2 (for nextTable: the previous table's) */
  replicationFactor?: number;
  /** Ring virtual nodes per unit of weight. @default 150 (config `cache.lru_replicas`) */
  vnodesPerWeight?: number;
  /** Hash for ring points and partition points. @default defaultHash (murmur3_32) */
  hash?: HashFn;
  /** Source of `createdAt`. @default systemClock */
  clock?: Clock;
}

/** One partition whose holders change: old holders and new holders, owner first. */
export interface PartitionMove {
  partition: number;
  from: NodeId[];
  to: NodeId[];
}

// ---------------------------------------------------------------------------------------------
// Building tables

/** Build version 1 of a table from scratch. */
export function createTable(members: readonly Member[], opts: PlacementOptions = {}): PartitionTable {
  const partitionCount = checkPartitionCount(opts.partitionCount ?? DEFAULT_PARTITION_COUNT);
  const replicationFactor = checkReplicationFactor(opts.replicationFactor ?? DEFAULT_REPLICATION_FACTOR);
  const sorted = normalizeMembers(members);
  const assignments = place(undefined, sorted, partitionCount, replicationFactor, opts);
  return freezeTable({
    version: 1,
    partitionCount,
    replicationFactor,
    members: sorted,
    assignments,
    createdAt: (opts.clock ?? systemClock).now(),
  });
}

/**
 * The next version of `prev` for a new membership (and optionally a new replication factor),
 * changing as few assignments as the new quotas allow. The partition count never changes.
 */
export function nextTable(
  prev: PartitionTable,
  members: readonly Member[],
  opts: Omit<PlacementOptions, 'partitionCount'> = {},
): PartitionTable {
  const replicationFactor = checkReplicationFactor(opts.replicationFactor ?? prev.replicationFactor);
  const sorted = normalizeMembers(members);
  const assignments = place(prev, sorted, prev.partitionCount, replicationFactor, opts);
  return freezeTable({
    version: prev.version + 1,
    partitionCount: prev.partitionCount,
    replicationFactor,
    members: sorted,
    assignments,
    createdAt: (opts.clock ?? systemClock).now(),
  });
}

/** `t` plus one member. Throws DUPLICATE_NODE if `m.id` is already a member. */
export function addNode(t: PartitionTable, m: Member, opts: Omit<PlacementOptions, 'partitionCount'> = {}): PartitionTable {
  if (t.members.some((x) => x.id === m.id)) {
    throw new PlacementError('DUPLICATE_NODE', `node ${JSON.stringify(m.id)} is already a member`);
  }
  return nextTable(t, [...t.members, m], opts);
}

/** `t` without member `id`. Throws UNKNOWN_NODE if it is not a member. */
export function removeNode(t: PartitionTable, id: NodeId, opts: Omit<PlacementOptions, 'partitionCount'> = {}): PartitionTable {
  requireMember(t, id);
  return nextTable(
    t,
    t.members.filter((x) => x.id !== id),
    opts,
  );
}

/** `t` with member `id` re-weighted. Throws UNKNOWN_NODE / INVALID_WEIGHT. */
export function setWeight(
  t: PartitionTable,
  id: NodeId,
  weight: number,
  opts: Omit<PlacementOptions, 'partitionCount'> = {},
): PartitionTable {
  requireMember(t, id);
  checkWeight(weight, `node ${JSON.stringify(id)}`);
  return nextTable(
    t,
    t.members.map((x) => (x.id === id ? { ...x, weight } : x)),
    opts,
  );
}

// ---------------------------------------------------------------------------------------------
// Reading tables

/**
 * Exactly the partitions whose owner or replica list differs between the two tables, ascending.
 * Both tables must have the same partition count.
 */
export function planMigration(oldT: PartitionTable, newT: PartitionTable): PartitionMove[] {
  if (oldT.partitionCount !== newT.partitionCount) {
    throw new PlacementError(
      'TABLE_MISMATCH',
      `cannot plan between tables of ${oldT.partitionCount} and ${newT.partitionCount} partitions`,
    );
  }
  const moves: PartitionMove[] = [];
  for (let p = 0; p < oldT.partitionCount; p++) {
    const from = oldT.assignments[p] ?? [];
    const to = newT.assignments[p] ?? [];
    if (!sameList(from, to)) moves.push({ partition: p, from: [...from], to: [...to] });
  }
  return moves;
}

/** The owner of a partition, or undefined when the table has no members. */
export function ownerOf(t: PartitionTable, partition: number): NodeId | undefined {
  return holdersOf(t, partition)[0];
}

/** Owner then backups of a partition; [] when the table has no members. */
export function holdersOf(t: PartitionTable, partition: number): readonly NodeId[] {
  const holders = t.assignments[partition];
  if (holders === undefined || !Number.isInteger(partition)) {
    throw new PlacementError(
      'BAD_PARTITION',
      `partition must be an integer from 0 to ${t.partitionCount - 1}. Got: ${String(partition)}`,
    );
  }
  return holders;
}

/** Per member (sorted by id, members with nothing included): partitions owned and backups held. */
export function summarize(t: PartitionTable): Map<NodeId, { owned: number; replicas: number }> {
  const out = new Map<NodeId, { owned: number; replicas: number }>();
  for (const m of t.members) out.set(m.id, { owned: 0, replicas: 0 });
  for (const holders of t.assignments) {
    for (let s = 0; s < holders.length; s++) {
      const e = out.get(holders[s]!);
      if (e === undefined) continue; // impossible in a table built here; tolerate foreign ones
      if (s === 0) e.owned++;
      else e.replicas++;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Wire format

/** Format marker of encodeTable output, bumped on incompatible change. */
const TABLE_FORMAT = 1;

interface EncodedTable {
  format: number;
  version: number;
  partitionCount: number;
  replicationFactor: number;
  createdAt: number;
  /** [id, weight] or [id, weight, zone], sorted by id */
  members: ([NodeId, number] | [NodeId, number, string])[];
  /** member indexes, partition-major: holders of partition p at [p·w, p·w + w), w = min(rf, members) */
  holders: number[];
}

/** Compact JSON for etcd and HTTP: holders are member indexes, flattened (~9 KB per 1000 partitions at factor 2). */
export function encodeTable(t: PartitionTable): string {
  const index = new Map<NodeId, number>();
  t.members.forEach((m, i) => index.set(m.id, i));
  const width = Math.min(t.replicationFactor, t.members.length);
  const holders = new Array<number>(t.partitionCount * width);
  for (let p = 0; p < t.partitionCount; p++) {
    const list = t.assignments[p]!;
    for (let s = 0; s < width; s++) holders[p * width + s] = index.get(list[s]!)!;
  }
  const enc: EncodedTable = {
    format: TABLE_FORMAT,
    version: t.version,
    partitionCount: t.partitionCount,
    replicationFactor: t.replicationFactor,
    createdAt: t.createdAt,
    members: t.members.map((m) => (m.zone === undefined ? [m.id, m.weight] : [m.id, m.weight, m.zone])),
    holders,
  };
  return JSON.stringify(enc);
}

/** Parse and validate encodeTable output. Throws PlacementError 'BAD_TABLE' naming the problem. */
export function decodeTable(s: string): PartitionTable {
  let raw: unknown;
  try {
    raw = JSON.parse(s);
  } catch (err) {
    throw new PlacementError('BAD_TABLE', `partition table is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const bad = (what: string, value: unknown): never => {
    throw new PlacementError('BAD_TABLE', `partition table: ${what}. Got: ${short(value)}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('expected an object', raw);
  const o = raw as Record<string, unknown>;
  if (o.format !== TABLE_FORMAT) bad(`format must be ${TABLE_FORMAT}`, o.format);
  const version = o.version;
  if (!isInt(version) || version < 1) bad('version must be an integer >= 1', version);
  const partitionCount = o.partitionCount;
  if (!isInt(partitionCount) || partitionCount < 1 || partitionCount > MAX_PARTITION_COUNT) {
    bad(`partitionCount must be an integer from 1 to ${MAX_PARTITION_COUNT}`, partitionCount);
  }
  const replicationFactor = o.replicationFactor;
  if (!isInt(replicationFactor) || replicationFactor < 1 || replicationFactor > MAX_REPLICATION_FACTOR) {
    bad(`replicationFactor must be an integer from 1 to ${MAX_REPLICATION_FACTOR}`, replicationFactor);
  }
  const createdAt = o.createdAt;
  if (typeof createdAt !== 'number' || !Number.isFinite(createdAt)) bad('createdAt must be a finite number', createdAt);
  if (!Array.isArray(o.members)) bad('members must be an array', o.members);
  const members: Member[] = [];
  for (const [i, e] of (o.members as unknown[]).entries()) {
    if (!Array.isArray(e) || (e.length !== 2 && e.length !== 3) || typeof e[0] !== 'string' || e[0].length === 0) {
      bad(`members[${i}] must be [id, weight] or [id, weight, zone]`, e);
    }
    const [id, weight, zone] = e as [string, unknown, unknown];
    const labelled = (e as unknown[]).length === 3;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
      bad(`weight of member ${JSON.stringify(id)} must be a finite number > 0`, weight);
    }
    if (labelled && (typeof zone !== 'string' || zone.length === 0 || zone.length > MAX_ZONE_LENGTH)) {
      bad(`zone of member ${JSON.stringify(id)} must be a non-empty string`, zone);
    }
    if (i > 0 && compareIds(members[i - 1]!.id, id) >= 0) bad('members must be sorted by id without duplicates', id);
    members.push(labelled ? { id, weight: weight as number, zone: zone as string } : { id, weight: weight as number });
  }
  const pc = partitionCount as number;
  const width = Math.min(replicationFactor as number, members.length);
  const holders = o.holders;
  if (!Array.isArray(holders) || holders.length !== pc * width) {
    bad(`holders must be an array of ${pc * width} member indexes`, Array.isArray(holders) ? `length ${holders.length}` : holders);
  }
  const h = holders as unknown[];
  const assignments: NodeId[][] = new Array(pc);
  for (let p = 0; p < pc; p++) {
    const list: NodeId[] = [];
    for (let s = 0; s < width; s++) {
      const x = h[p * width + s];
      if (!isInt(x) || x < 0 || x >= members.length) bad(`holders of partition ${p} must be member indexes`, x);
      const id = members[x as number]!.id;
      if (list.includes(id)) bad(`holders of partition ${p} must be distinct`, id);
      list.push(id);
    }
    assignments[p] = list;
  }
  return freezeTable({
    version: version as number,
    partitionCount: pc,
    replicationFactor: replicationFactor as number,
    members,
    assignments,
    createdAt: createdAt as number,
  });
}

// ---------------------------------------------------------------------------------------------
// The placement algorithm (see the top of this file)

function place(
  prev: PartitionTable | undefined,
  members: readonly Member[],
  P: number,
  R: number,
  opts: Omit<PlacementOptions, 'partitionCount'>,
): NodeId[][] {
  const N = members.length;
  if (N === 0) return Array.from({ length: P }, () => []);
  const hash = opts.hash ?? defaultHash;
  const vnodesPerWeight = checkVnodesPerWeight(opts.vnodesPerWeight ?? DEFAULT_VNODES_PER_WEIGHT);
  const W = Math.min(R, N); // holders per partition
  const ring = new HashRing(members, { vnodesPerWeight, hash });

  const index = new Map<NodeId, number>();
  const nodeHash = new Uint32Array(N);
  for (let i = 0; i < N; i++) {
    index.set(members[i]!.id, i);
    nodeHash[i] = hash(members[i]!.id) >>> 0;
  }
  const walker = new RingWalker(ring, index);
  // a partition's place on the ring: hash of its decimal number
  const point = new Uint32Array(P);
  for (let p = 0; p < P; p++) point[p] = hash(String(p)) >>> 0;

  // previous holders as member indexes (-1 = gone), one array per previous slot
  const prevSlots: Int32Array[] = [];
  if (prev !== undefined) {
    if (prev.assignments.length !== P) {
      throw new PlacementError('TABLE_MISMATCH', `previous table has ${prev.assignments.length} assignments for ${P} partitions`);
    }
    let prevWidth = 0;
    for (const list of prev.assignments) prevWidth = Math.max(prevWidth, list.length);
    for (let s = 0; s < prevWidth; s++) {
      const slot = new Int32Array(P).fill(-1);
      for (let p = 0; p < P; p++) {
        const id = prev.assignments[p]![s];
        if (id !== undefined) slot[p] = index.get(id) ?? -1;
      }
      prevSlots.push(slot);
    }
  }

  // the new assignment: cur[p·W + s] = member index of slot s of partition p, -1 = unassigned
  const cur = new Int32Array(P * W).fill(-1);
  // is member n a holder of partition p in a slot before `r`?
  const heldBefore = (p: number, n: number, r: number): boolean => {
    for (let s = 0; s < r; s++) if (cur[p * W + s] === n) return true;
    return false;
  };
  // Zones: a member without one is a zone of its own, so in a zone-less cluster "zone taken" is
  // "node taken" and the tables are exactly those of the zone-less algorithm. The first Z slots
  // (Z = number of zones) of a partition go to distinct zones; past Z, only to distinct nodes.
  const { zoneOf, zoneCount: Z, zoned } = zonesOf(members);
  const zoneHeldBefore = (p: number, z: number, r: number): boolean => {
    for (let s = 0; s < r; s++) if (zoneOf[cur[p * W + s]!] === z) return true;
    return false;
  };
  // may member n not take slot r of partition p?
  const taken = zoned ? (p: number, n: number, r: number): boolean => heldBefore(p, n, r) || (r < Z && zoneHeldBefore(p, zoneOf[n]!, r)) : heldBefore;
  // would member n in slot r of p evict a previous holder of p in a later zone-distinct slot
  // (same zone, another node)? That copy would then have to move too.
  const laterConflict = (p: number, n: number, r: number): boolean => {
    for (let s = r + 1; s < prevSlots.length && s < Z; s++) {
      const m = prevSlots[s]![p]!;
      if (m >= 0 && m !== n && zoneOf[m] === zoneOf[n]) return true;
    }
    return false;
  };

  const weights = members.map((m) => m.weight);
  const counts = new Int32Array(N);
  const heldSoFar = new Int32Array(N); // partitions held in the slots already placed
  for (let r = 0; r < W; r++) {
    const prevSlot = prevSlots[r];
    // 1. quota (sticky for nodes already holding their rounded-up share)
    const prevCounts = new Int32Array(N);
    if (prevSlot !== undefined) for (let p = 0; p < P; p++) if (prevSlot[p]! >= 0) prevCounts[prevSlot[p]!]!++;
    // a node cannot hold a partition twice: its cap in this slot is what it does not hold yet
    const cap = new Int32Array(N);
    for (let n = 0; n < N; n++) cap[n] = P - heldSoFar[n]!;
    // with zones, a zone cannot hold a partition twice either: apportion among zones first
    const quota = zoned && r < Z ? zoneQuotas(weights, P, prevCounts, cap, zoneOf, Z, heldSoFar) : quotas(weights, P, prevCounts, cap);

    // 2. keep
    counts.fill(0);
    if (prevSlot !== undefined) {
      for (let p = 0; p < P; p++) {
        const n = prevSlot[p]!;
        if (n >= 0 && !taken(p, n, r)) {
          cur[p * W + r] = n;
          counts[n]!++;
        }
      }
    }

    // 3. shed surplus. First the partitions that some under-quota node can take (for a backup
    // slot, a node that already holds the partition in an earlier slot cannot), then by lowest
    // rendezvous score: shedding a partition nobody can take only forces a repair later.
    const surplus = new Int32Array(N);
    let anySurplus = false;
    let deficitNodes = 0;
    const deficit = new Uint8Array(N);
    for (let n = 0; n < N; n++) {
      surplus[n] = Math.max(0, counts[n]! - quota[n]!);
      if (surplus[n]! > 0) anySurplus = true;
      if (counts[n]! < quota[n]!) {
        deficit[n] = 1;
        deficitNodes++;
      }
    }
    if (anySurplus) {
      // blocked: every under-quota node already holds p (or its zone does) in an earlier slot
      const deficitInZone = new Int32Array(zoned ? Z : 0);
      if (zoned) for (let n = 0; n < N; n++) deficitInZone[zoneOf[n]!]! += deficit[n]!;
      const blocked = (p: number): number => {
        if (r === 0 || deficitNodes === 0) return 0;
        let k = 0;
        if (zoned && r < Z) {
          // count each zone of an earlier holder once
          for (let s = 0; s < r; s++) {
            const z = zoneOf[cur[p * W + s]!]!;
            let first = true;
            for (let t = 0; t < s; t++) if (zoneOf[cur[p * W + t]!] === z) first = false;
            if (first) k += deficitInZone[z]!;
          }
        } else {
          for (let s = 0; s < r; s++) k += deficit[cur[p * W + s]!]!;
        }
        return k >= deficitNodes ? 1 : 0;
      };
      // zones: 1 when every under-quota node that may take p would evict a later copy of p,
      // so shedding p costs a second move (shed the others first)
      const evicts = (p: number): number => {
        for (let n = 0; n < N; n++) if (deficit[n] === 1 && !taken(p, n, r) && !laterConflict(p, n, r)) return 0;
        return 1;
      };
      const held = new Map<number, number[]>(); // member -> its partitions in this slot (looked up, never iterated)
      for (let p = 0; p < P; p++) {
        const n = cur[p * W + r]!;
        if (n >= 0 && surplus[n]! > 0) {
          let list = held.get(n);
          if (list === undefined) held.set(n, (list = []));
          list.push(p);
        }
      }
      for (let n = 0; n < N; n++) {
        if (surplus[n] === 0) continue;
        const list = held.get(n)!;
        const h = nodeHash[n]!;
        const keys = new Map<number, number>();
        for (const p of list) keys.set(p, (blocked(p) * 2 + (zoned ? evicts(p) : 0)) * 2 ** 32 + fmix32(h ^ point[p]!));
        list.sort((a, b) => keys.get(a)! - keys.get(b)! || a - b);
        for (let k = 0; k < surplus[n]!; k++) {
          cur[list[k]! * W + r] = -1;
          counts[n]!--;
        }
      }
    }

    // 4. hand out orphans
    walker.reset();
    for (let n = 0; n < N; n++) if (counts[n]! >= quota[n]!) walker.drop(n);
    const fresh: number[] = []; // partitions handed out in this step, ascending
    const stuck: number[] = [];
    for (let p = 0; p < P; p++) {
      if (cur[p * W + r] !== -1) continue;
      let chosen = -1;
      // a previous holder already has the data: promoting it (or keeping it in another slot) moves nothing
      for (let s = 0; s < prevSlots.length && chosen < 0; s++) {
        const n = prevSlots[s]![p]!;
        if (n >= 0 && counts[n]! < quota[n]! && !taken(p, n, r)) chosen = n;
      }
      // with zones, first a node that does not push out a copy of p kept in a later slot
      if (chosen < 0 && zoned) chosen = walker.first(point[p]!, (n) => !taken(p, n, r) && !laterConflict(p, n, r));
      if (chosen < 0) chosen = walker.first(point[p]!, (n) => !taken(p, n, r));
      if (chosen < 0) {
        stuck.push(p);
        continue;
      }
      cur[p * W + r] = chosen;
      counts[chosen]!++;
      if (counts[chosen] === quota[chosen]) walker.drop(chosen);
      fresh.push(p);
    }

    // 5. repair: every under-quota node u already holds stuck partition p. Find a partition q
    // handed out in this same step whose slot-r node v may hold p, and give q to u and p to v:
    // u gains one, v stays level, and nothing moves that was not moving anyway. Failing that,
    // p goes over quota to a node that held it before (it keeps its copy: nothing moves), else
    // to the first distinct node on the ring. Going over quota by a partition, rather than
    // pulling a partition that is not moving into the swap, is deliberate: a leave or a weight
    // change must not move bystanders. It only happens when one node's share is close to
    // its cap (e.g. one node holding over ~70% of all copies), and the next change re-balances.
    const freshSet = new Uint8Array(P);
    for (const q of fresh) freshSet[q] = 1;
    const trySwap = (p: number, anyQ: boolean): boolean => {
      for (let u = 0; u < N; u++) {
        if (counts[u]! >= quota[u]!) continue;
        for (let q = 0; q < P; q++) {
          if (freshSet[q] === 0 && !anyQ) continue;
          const v = cur[q * W + r]!;
          // u replaces v as q's slot-r holder: u must be free for q apart from v itself
          if (v < 0 || u === v || taken(p, v, r) || taken(q, u, r)) continue;
          cur[q * W + r] = u;
          cur[p * W + r] = v;
          counts[u]!++;
          freshSet[p] = 1;
          return true;
        }
      }
      return false;
    };
    for (const p of stuck) {
      if (trySwap(p, false)) continue;
      // With zones a stuck partition is common (the under-quota nodes share a zone with one of
      // its holders), and going over quota for each would unbalance the table: swap with a
      // partition that was not moving instead. Its copy moves to u, p's to v, which is one
      // copy to u as u's quota asks anyway, not one more than a balanced table needs.
      if (zoned && trySwap(p, true)) continue;
      let chosen = -1;
      for (let s = 0; s < prevSlots.length && chosen < 0; s++) {
        const n = prevSlots[s]![p]!;
        if (n >= 0 && !taken(p, n, r)) chosen = n;
      }
      if (chosen < 0) {
        ring.walk(point[p]!, (id) => {
          const n = index.get(id)!;
          if (taken(p, n, r)) return false;
          chosen = n;
          return true;
        });
      }
      if (chosen < 0) throw new Error(`placement invariant broken: no distinct node for partition ${p}`);
      cur[p * W + r] = chosen;
      counts[chosen]!++;
    }
    for (let n = 0; n < N; n++) heldSoFar[n]! += counts[n]!;
  }

  const assignments: NodeId[][] = new Array(P);
  for (let p = 0; p < P; p++) {
    const list: NodeId[] = new Array(W);
    for (let s = 0; s < W; s++) list[s] = members[cur[p * W + s]!]!.id;
    assignments[p] = list;
  }
  return assignments;
}

/**
 * Ring walks that skip nodes already at quota. Walking the plain ring costs one step per
 * virtual node of every full node on the way, which adds up when most nodes are full (the end
 * of a hand-out) or one node has most of the points (skewed weights). Here the points of a node
 * are unlinked when it fills up (union-find "next live point" with path compression), so a
 * walk costs about one step per node it actually considers. The result is the same as walking
 * the ring and skipping full nodes.
 */
class RingWalker {
  private readonly total: number;
  // member index of each ring position
  private readonly member: Int32Array;
  // ring positions of each member: positions[start[n] .. start[n+1])
  private readonly start: Int32Array;
  private readonly positions: Int32Array;
  private readonly ring: HashRing;
  // next[i] = i while position i is live, else a later position (union-find parent)
  private readonly next: Int32Array;
  private readonly dropped: Uint8Array;
  private live = 0;

  constructor(ring: HashRing, index: ReadonlyMap<NodeId, number>) {
    this.ring = ring;
    const { owners, ids } = ring.view();
    const total = owners.length;
    this.total = total;
    const toMember = ids.map((id) => index.get(id)!);
    const N = ids.length;
    this.member = new Int32Array(total);
    this.start = new Int32Array(N + 1);
    for (let i = 0; i < total; i++) {
      const m = toMember[owners[i]!]!;
      this.member[i] = m;
      this.start[m + 1]!++;
    }
    for (let n = 0; n < N; n++) this.start[n + 1]! += this.start[n]!;
    this.positions = new Int32Array(total);
    const fill = this.start.slice(0, N);
    for (let i = 0; i < total; i++) this.positions[fill[this.member[i]!]!++] = i;
    this.next = new Int32Array(total);
    this.dropped = new Uint8Array(N);
  }

  /** Every node live again. */
  reset(): void {
    for (let i = 0; i < this.total; i++) this.next[i] = i;
    this.dropped.fill(0);
    this.live = this.total;
  }

  /** Skip member `n` from now on (it is full). */
  drop(n: number): void {
    if (this.dropped[n] === 1) return;
    this.dropped[n] = 1;
    for (let k = this.start[n]!; k < this.start[n + 1]!; k++) {
      const i = this.positions[k]!;
      this.next[i] = i + 1 === this.total ? 0 : i + 1;
    }
    this.live -= this.start[n + 1]! - this.start[n]!;
  }

  /** First live member clockwise from `point` that `accept`s, -1 when none does. */
  first(point: number, accept: (n: number) => boolean): number {
    if (this.live === 0) return -1;
    let i = this.find(this.ring.indexOf(point));
    // one full turn over the live points at most
    for (let steps = 0; steps < this.live; steps++) {
      const n = this.member[i]!;
      if (accept(n)) return n;
      i = this.find(i + 1 === this.total ? 0 : i + 1);
    }
    return -1;
  }

  private find(i: number): number {
    const next = this.next;
    let root = i;
    while (next[root] !== root) root = next[root]!;
    while (next[i] !== root) {
      const up = next[i]!;
      next[i] = root;
      i = up;
    }
    return root;
  }
}

/**
 * Apportion P seats by weight, each node getting at most `cap[n]` (a node cannot back up more
 * partitions than it does not own). Capped nodes are fixed at their cap and the other seats are
 * shared among the rest in proportion to weight (water-filling); then largest remainder. The
 * leftover seats go first to nodes that already hold more than their floor (so rounding alone
 * never takes a partition away from a node), then by largest remainder, then by lower member
 * index (= lower id). Requires Σcap >= P.
 */
export function quotas(weights: readonly number[], P: number, held: ArrayLike<number>, cap?: ArrayLike<number>): Int32Array {
  const N = weights.length;
  const quota = new Int32Array(N);
  const fixed = new Uint8Array(N);
  let seats = P;
  let total = 0;
  for (const w of weights) total += w;
  if (cap !== undefined) {
    // fix every node whose proportional share exceeds its cap, until none does
    for (let changed = true; changed; ) {
      changed = false;
      for (let i = 0; i < N; i++) {
        if (fixed[i] === 1 || (seats * weights[i]!) / total <= cap[i]!) continue;
        fixed[i] = 1;
        quota[i] = cap[i]!;
        seats -= cap[i]!;
        total -= weights[i]!;
        changed = true;
      }
    }
  }
  const frac = new Float64Array(N);
  let assigned = 0;
  for (let i = 0; i < N; i++) {
    if (fixed[i] === 1) continue;
    const exact = (seats * weights[i]!) / total;
    const f = Math.floor(exact);
    quota[i] = f;
    frac[i] = exact - f;
    assigned += f;
  }
  const left = seats - assigned;
  if (left > 0) {
    // remainders within 1e-9 of zero are rounding noise of an exact share
    const sticky = (i: number): number => (frac[i]! > 1e-9 && (held[i] ?? 0) > quota[i]! ? 1 : 0);
    const order: number[] = [];
    for (let i = 0; i < N; i++) if (fixed[i] === 0) order.push(i);
    order.sort((a, b) => sticky(b) - sticky(a) || frac[b]! - frac[a]! || a - b);
    for (let k = 0; k < left; k++) quota[order[k % order.length]!]!++;
  }
  return quota;
}

/**
 * Zone index of each member: members sharing a `zone` label share an index, a member without
 * one gets an index of its own. `zoned` is false when no member has a label (then the indexes
 * are the member indexes and zone checks are node checks).
 */
function zonesOf(members: readonly Member[]): { zoneOf: Int32Array; zoneCount: number; zoned: boolean } {
  const zoneOf = new Int32Array(members.length);
  const byLabel = new Map<string, number>(); // looked up, never iterated
  let count = 0;
  let zoned = false;
  for (let n = 0; n < members.length; n++) {
    const label = members[n]!.zone;
    if (label === undefined) {
      zoneOf[n] = count++;
      continue;
    }
    zoned = true;
    let z = byLabel.get(label);
    if (z === undefined) byLabel.set(label, (z = count++));
    zoneOf[n] = z;
  }
  return { zoneOf, zoneCount: count, zoned };
}

/**
 * Quotas for a slot whose holders must be in zones the partition does not use yet: the seats
 * are apportioned among zones first (weight = the zone's members' weights, capped at the
 * partitions the zone does not hold yet), then within each zone among its members (each capped
 * at the partitions it does not hold). A zone with more than 1/factor of the weight cannot get
 * its proportional share: it holds a copy of every partition and the other zones share the rest.
 */
function zoneQuotas(
  weights: readonly number[],
  P: number,
  held: ArrayLike<number>,
  cap: ArrayLike<number>,
  zoneOf: Int32Array,
  Z: number,
  heldSoFar: ArrayLike<number>,
): Int32Array {
  const N = weights.length;
  const zw = new Array<number>(Z).fill(0);
  const zheld = new Int32Array(Z);
  const zcap = new Int32Array(Z).fill(P);
  for (let n = 0; n < N; n++) {
    const z = zoneOf[n]!;
    zw[z]! += weights[n]!;
    zheld[z]! += held[n] ?? 0;
    // in the slots before this one a zone held each partition at most once
    zcap[z]! -= heldSoFar[n]!;
  }
  const zq = quotas(zw, P, zheld, zcap);
  const quota = new Int32Array(N);
  const inZone: number[][] = Array.from({ length: Z }, () => []);
  for (let n = 0; n < N; n++) inZone[zoneOf[n]!]!.push(n);
  for (let z = 0; z < Z; z++) {
    const ns = inZone[z]!;
    const q = quotas(
      ns.map((n) => weights[n]!),
      zq[z]!,
      ns.map((n) => held[n] ?? 0),
      ns.map((n) => cap[n]!),
    );
    ns.forEach((n, i) => (quota[n] = q[i]!));
  }
  return quota;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function normalizeMembers(members: readonly Member[]): Member[] {
  const out: Member[] = [];
  for (const m of members) {
    if (typeof m?.id !== 'string' || m.id.length === 0) {
      throw new PlacementError('INVALID_OPTION', `member id must be a non-empty string. Got: ${short(m?.id)}`);
    }
    const weight = checkWeight(m.weight, `node ${JSON.stringify(m.id)}`);
    out.push(m.zone === undefined ? { id: m.id, weight } : { id: m.id, weight, zone: checkZone(m.zone, m.id) });
  }
  out.sort((a, b) => compareIds(a.id, b.id));
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.id === out[i - 1]!.id) {
      throw new PlacementError('DUPLICATE_NODE', `node ${JSON.stringify(out[i]!.id)} is listed twice`);
    }
  }
  return out;
}

/** Largest zone label accepted. */
export const MAX_ZONE_LENGTH = 64;

function checkZone(zone: unknown, id: NodeId): string {
  if (typeof zone !== 'string' || zone.length === 0 || zone.length > MAX_ZONE_LENGTH) {
    throw new PlacementError('INVALID_OPTION', `zone of node ${JSON.stringify(id)} must be a non-empty string of at most ${MAX_ZONE_LENGTH} characters. Got: ${short(zone)}`);
  }
  return zone;
}

function checkPartitionCount(v: unknown): number {
  if (!isInt(v) || v < 1 || v > MAX_PARTITION_COUNT) {
    throw new PlacementError('INVALID_OPTION', `partitionCount must be an integer from 1 to ${MAX_PARTITION_COUNT}. Got: ${short(v)}`);
  }
  return v;
}

function checkReplicationFactor(v: unknown): number {
  if (!isInt(v) || v < 1 || v > MAX_REPLICATION_FACTOR) {
    throw new PlacementError(
      'INVALID_OPTION',
      `replicationFactor must be an integer from 1 to ${MAX_REPLICATION_FACTOR}. Got: ${short(v)}`,
    );
  }
  return v;
}

function requireMember(t: PartitionTable, id: NodeId): void {
  if (!t.members.some((x) => x.id === id)) {
    throw new PlacementError('UNKNOWN_NODE', `node ${JSON.stringify(id)} is not a member`);
  }
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function sameList(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function short(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

// Tables are shared between components and compared across versions: freezing turns an
// accidental in-place edit into an exception instead of a silent split brain.
function freezeTable(t: PartitionTable): PartitionTable {
  for (const list of t.assignments) Object.freeze(list);
  for (const m of t.members) Object.freeze(m);
  Object.freeze(t.assignments);
  Object.freeze(t.members);
  return Object.freeze(t);
}
