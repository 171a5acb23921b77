/**
 * Pure migration planning on top of the placement core: which partitions need a copy, who sends
 * it, and the per-partition checksum both sides compare. No I/O, no clock.
 */
import type { PartitionTable } from '../../core/placement/table.ts';
import { planMigration } from '../../core/placement/table.ts';
import { defaultHash, fmix32 } from '../../core/placement/hash.ts';
import type { NodeId } from '../../core/types.ts';
import type { Migration } from './record.ts';

/** A partition some node must receive: holders before and the holders that lack its data. */
export interface CopyMove {
  partition: number;
  from: readonly NodeId[];
  /** Target holders not among `from`: they need the data. */
  receivers: NodeId[];
}

/**
 * Partitions whose target holders include nodes that did not hold them before. Partitions that
 * only lose a holder or reorder their holders (a backup promoted to owner) move no data.
 */
export function copyMoves(from: PartitionTable, target: PartitionTable): CopyMove[] {
  const out: CopyMove[] = [];
  for (const m of planMigration(from, target)) {
    const receivers = m.to.filter((id) => !m.from.includes(id));
    if (receivers.length > 0 && m.from.length > 0) out.push({ partition: m.partition, from: m.from, receivers });
  }
  return out;
}

/**
 * Partitions `self` became a holder of in the change from `prev` to `next` without their data
 * being copied to it first. Only a crashed node's removal is committed at once (and repaired
 * afterwards); joins, graceful leaves and rebalances are migrations that copy to their receivers
 * before they commit. So: a change that drops a member, unless a migration planned from `prev`
 * (other than a repair) is known (its record may arrive after the table: see preparedFrom).
 */
export function uncopiedReceipts(prev: PartitionTable, next: PartitionTable, self: NodeId, records: readonly Migration[]): number[] {
  if (prev.members.length === 0 || next.version <= prev.version) return [];
  if (prev.members.every((m) => next.members.some((n) => n.id === m.id))) return [];
  if (preparedFrom(records, prev.version)) return [];
  return copyMoves(prev, next)
    .filter((mv) => mv.receivers.includes(self))
    .map((mv) => mv.partition);
}

/** A migration other than a repair was planned from table `version` (it copies before it commits). */
export function preparedFrom(records: readonly Migration[], version: number): boolean {
  return records.some((m) => m.kind !== 'repair' && m.fromVersion === version && (m.state === 'running' || m.state === 'done'));
}

/**
 * Partitions of `t` with no live holder that has their data: removing the missing members would
 * leave them with no copy anywhere. `lacks(p, id)`: `id` holds `p` in `t` but has not received
 * its data yet (a receiver of an unfinished repair).
 */
export function orphanedPartitions(t: PartitionTable, alive: (id: NodeId) => boolean, lacks: (partition: number, id: NodeId) => boolean = () => false): number {
  let n = 0;
  t.assignments.forEach((holders, p) => {
    if (holders.length > 0 && !holders.some((id) => alive(id) && !lacks(p, id))) n++;
  });
  return n;
}

/**
 * Who sends a partition: its previous owner when alive, otherwise the first previous holder that
 * is (a backup of a crashed owner). Every node evaluates this with its own view of liveness; the
 * copy is idempotent (last writer wins), so two senders during a disagreement only cost bandwidth.
 */
export function sourceOf(from: readonly NodeId[], alive: (id: NodeId) => boolean): NodeId | undefined {
  for (const id of from) if (alive(id)) return id;
  return undefined;
}

/**
 * Order-independent checksum of a partition's live entries: count and a 32-bit sum of
 * mix(hash(group, key), version). Tombstones are left out: a target may remember a delete that
 * the source already forgot (tombstones expire), which is not a difference in data.
 *
 * The version is mixed in numerically (its two 32-bit halves through murmur3's finaliser) rather
 * than hashed as text: the source adds every entry while it encodes a batch and the target sums
 * a whole partition when asked, so this runs once per entry on both sides.
 */
export interface Checksum {
  count: number;
  sum: number;
}

export function emptyChecksum(): Checksum {
  return { count: 0, sum: 0 };
}

const TWO_32 = 2 ** 32;

// group name -> its hash (a handful of groups; hashed once)
const groupHashes = new Map<string, number>();

/** The term one entry adds to a partition's sum: hash(key) mixed with hash(group) and the version. */
export function entryTerm(group: string, key: string, version: number): number {
  let gh = groupHashes.get(group);
  if (gh === undefined) {
    gh = fmix32(defaultHash(group) ^ 0x5bd1e995);
    if (groupHashes.size < 1024) groupHashes.set(group, gh);
  }
  const lo = version % TWO_32 >>> 0;
  const hi = Math.floor(version / TWO_32) >>> 0;
  return fmix32((fmix32((defaultHash(key) ^ gh) >>> 0) ^ fmix32(lo ^ Math.imul(hi, 0x9e3779b1))) >>> 0);
}

export function addToChecksum(c: Checksum, group: string, key: string, version: number): void {
  c.count++;
  c.sum = (c.sum + entryTerm(group, key, version)) >>> 0;
}

/**
 * A receiver's verify fast path for one partition: `sent` is the sender's [count, sum] of what it
 * sent, `taken` the receiver's sums of the records it applied from the batches. Returns the
 * answer when they are equal (everything sent was taken), undefined when the receiver must walk
 * the partition and answer what it holds.
 */
export function takenAnswer(sent: unknown, taken: Checksum | undefined): [number, number] | undefined {
  const t = taken ?? emptyChecksum();
  return Array.isArray(sent) && sent.length === 2 && sent[0] === t.count && sent[1] === t.sum ? [t.count, t.sum] : undefined;
}

export function sameChecksum(a: Checksum, b: Checksum): boolean {
  return a.count === b.count && a.sum === b.sum;
}

/** Group consecutive items into runs whose weights sum to at most `limit` (an item heavier than the limit runs alone). */
export function packRuns<T>(items: readonly T[], weight: (t: T) => number, limit: number): T[][] {
  const runs: T[][] = [];
  let cur: T[] = [];
  let w = 0;
  for (const it of items) {
    const x = weight(it);
    if (cur.length > 0 && w + x > limit) {
      runs.push(cur);
      cur = [];
      w = 0;
    }
    cur.push(it);
    w += x;
  }
  if (cur.length > 0) runs.push(cur);
  return runs;
}
