/**
 * Consistent-hash ring of weighted virtual nodes (Karger et al.; groupcache's `consistenthash`).
 *
 * A node of weight w owns round(vnodesPerWeight · w) points on a 32-bit circle (at least one).
 * Virtual node i of node "a" sits at hash("a#i"). Because the ids are stable, raising a weight
 * only adds points (i = old..new-1) and lowering one only removes the highest-numbered points:
 * a weight change moves only the arcs it must.
 *
 * The ring is three parallel typed arrays sorted by (point, node id, vnode index), so a lookup is
 * a binary search with no allocation, and the order does not depend on the order nodes were
 * added: an incrementally built ring equals one built from scratch.
 *
 * In jincache the ring does not route keys directly: it gives the preference order that the
 * partition table (table.ts) uses to place partitions; see there.
 */
import type { HashFn, Member, NodeId } from '../types.ts';
import { checkWeight, PlacementError } from './errors.ts';
import { defaultHash } from './hash.ts';

/** Virtual nodes per unit of weight by default (SPEC §5 `cache.lru_replicas`). */
export const DEFAULT_VNODES_PER_WEIGHT = 150;

export interface HashRingOptions {
  /** Virtual nodes for a node of weight 1.0. @default 150 (config `cache.lru_replicas`) */
  vnodesPerWeight?: number;
  /** Hash of virtual-node ids and keys. @default defaultHash (murmur3_32 of UTF-8) */
  hash?: HashFn;
}

/** Number of virtual nodes for a weight: round(vnodesPerWeight · weight), at least 1. */
export function vnodeCount(weight: number, vnodesPerWeight: number): number {
  // At least one point, so a node with a tiny weight can still be found by a ring walk.
  return Math.max(1, Math.round(vnodesPerWeight * weight));
}

export function checkVnodesPerWeight(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 1e6) {
    throw new PlacementError('INVALID_OPTION', `vnodesPerWeight must be a number in (0, 1e6]. Got: ${String(v)}`);
  }
  return v;
}

function checkId(id: unknown): NodeId {
  if (typeof id !== 'string' || id.length === 0) {
    throw new PlacementError('INVALID_OPTION', `node id must be a non-empty string. Got: ${JSON.stringify(id)}`);
  }
  return id;
}

const EMPTY = new Uint32Array(0);

export class HashRing {
  private readonly vnodesPerWeight: number;
  private readonly hash: HashFn;
  // weight of each member, by id
  private readonly weights = new Map<NodeId, number>();
  // ordinal of each member, by id; ordinals index `ids` and are what `owner` stores
  private readonly ordinals = new Map<NodeId, number>();
  // member ids by ordinal (dense: compacted on removal)
  private ids: NodeId[] = [];
  // number of virtual nodes of each ordinal
  private counts: number[] = [];
  // the ring, sorted by (point, id, vnode index); entry i is vnode vindex[i] of ids[owner[i]]
  private points: Uint32Array = EMPTY;
  private owner: Uint32Array = EMPTY;
  private vindex: Uint32Array = EMPTY;

  constructor(members: readonly Member[] = [], opts: HashRingOptions = {}) {
    this.vnodesPerWeight = checkVnodesPerWeight(opts.vnodesPerWeight ?? DEFAULT_VNODES_PER_WEIGHT);
    this.hash = opts.hash ?? defaultHash;
    this.build(members);
  }

  /** Number of member nodes. */
  get nodeCount(): number {
    return this.ids.length;
  }

  /** Number of points (virtual nodes) on the ring. */
  get pointCount(): number {
    return this.points.length;
  }

  has(id: NodeId): boolean {
    return this.weights.has(id);
  }

  weightOf(id: NodeId): number | undefined {
    return this.weights.get(id);
  }

  /** The members, sorted by id. */
  nodes(): Member[] {
    return [...this.ids].sort(compareIds).map((id) => ({ id, weight: this.weights.get(id)! }));
  }

  /** Add a node with round(vnodesPerWeight · weight) points. Throws if it is already a member. */
  addNode(id: NodeId, weight = 1): void {
    checkId(id);
    checkWeight(weight, `node ${JSON.stringify(id)}`);
    if (this.weights.has(id)) {
      throw new PlacementError('DUPLICATE_NODE', `node ${JSON.stringify(id)} is already on the ring`);
    }
    const ord = this.ids.length;
    this.ids.push(id);
    this.counts.push(0);
    this.ordinals.set(id, ord);
    this.weights.set(id, weight);
    this.insertPoints(ord, 0, vnodeCount(weight, this.vnodesPerWeight));
  }

  /** Remove a node and all its points. Throws if it is not a member. */
  removeNode(id: NodeId): void {
    const ord = this.ordinalOf(id);
    this.removePoints(ord, 0);
    // compact ordinals: the last ordinal takes the removed one's place
    const last = this.ids.length - 1;
    if (ord !== last) {
      const moved = this.ids[last]!;
      this.ids[ord] = moved;
      this.counts[ord] = this.counts[last]!;
      this.ordinals.set(moved, ord);
      const owner = this.owner;
      for (let i = 0; i < owner.length; i++) if (owner[i] === last) owner[i] = ord;
    }
    this.ids.pop();
    this.counts.pop();
    this.ordinals.delete(id);
    this.weights.delete(id);
  }

  /**
   * Change a node's weight. Raising it adds virtual nodes count..newCount-1, lowering it removes
   * the ones numbered newCount and up; all other points stay where they are.
   */
  setWeight(id: NodeId, weight: number): void {
    const ord = this.ordinalOf(id);
    checkWeight(weight, `node ${JSON.stringify(id)}`);
    const have = this.counts[ord]!;
    const want = vnodeCount(weight, this.vnodesPerWeight);
    if (want > have) this.insertPoints(ord, have, want);
    else if (want < have) this.removePoints(ord, want);
    this.weights.set(id, weight);
  }

  /**
   * Up to `count` distinct nodes met walking clockwise from `point` (a 32-bit unsigned integer):
   * the node owning the first virtual node at or after `point`, then the next different one, ...
   * Returns min(count, nodeCount) ids; [] on an empty ring.
   */
  preference(point: number, count: number): NodeId[] {
    const want = Math.min(Math.max(0, Math.floor(count)), this.ids.length);
    const out: NodeId[] = [];
    if (want === 0) return out;
    const n = this.points.length;
    const owner = this.owner;
    // for a handful of nodes a linear scan of `picked` beats allocating a seen-set
    const seen = want > 8 ? new Uint8Array(this.ids.length) : undefined;
    const picked: number[] = [];
    let i = this.search(point >>> 0);
    for (let steps = 0; steps < n && out.length < want; steps++, i++) {
      if (i === n) i = 0;
      const o = owner[i]!;
      if (seen !== undefined) {
        if (seen[o] === 1) continue;
        seen[o] = 1;
      } else if (picked.includes(o)) {
        continue;
      }
      picked.push(o);
      out.push(this.ids[o]!);
    }
    return out;
  }

  /** The node a key maps to on the ring (first point at or after hash(key)); undefined when empty. */
  lookup(key: string): NodeId | undefined {
    const n = this.points.length;
    if (n === 0) return undefined;
    let i = this.search(this.hash(key) >>> 0);
    if (i === n) i = 0;
    return this.ids[this.owner[i]!];
  }

  /**
   * Visit the owners of the virtual nodes clockwise from `point`, one full turn at most, until
   * `visit` returns true. A node is visited once per virtual node it has on the way, so a caller
   * looking for "the first node that satisfies X" gets ring preference order without allocation.
   */
  walk(point: number, visit: (id: NodeId) => boolean): void {
    const n = this.points.length;
    let i = this.search(point >>> 0);
    for (let steps = 0; steps < n; steps++, i++) {
      if (i === n) i = 0;
      if (visit(this.ids[this.owner[i]!]!)) return;
    }
  }

  /**
   * The ring itself, for callers that walk it many times (the partition table): entry i is a
   * virtual node of `ids[owners[i]]` at `points[i]`, sorted clockwise. Read-only views, valid
   * until the next change to the ring.
   */
  view(): { points: Uint32Array; owners: Uint32Array; ids: readonly NodeId[] } {
    return { points: this.points, owners: this.owner, ids: this.ids };
  }

  /** Index in view() of the first point at or after `point`, wrapping to 0 (0 on an empty ring). */
  indexOf(point: number): number {
    const i = this.search(point >>> 0);
    return i === this.points.length ? 0 : i;
  }

  // index of the first point >= p, or points.length when there is none (wrap to 0)
  private search(p: number): number {
    const points = this.points;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < p) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private ordinalOf(id: NodeId): number {
    const ord = this.ordinals.get(id);
    if (ord === undefined) throw new PlacementError('UNKNOWN_NODE', `node ${JSON.stringify(id)} is not on the ring`);
    return ord;
  }

  // ring order: point, then node id, then vnode index (only ties on point need the rest)
  private before(pa: number, oa: number, va: number, pb: number, ob: number, vb: number): boolean {
    if (pa !== pb) return pa < pb;
    if (oa !== ob) return compareIds(this.ids[oa]!, this.ids[ob]!) < 0;
    return va < vb;
  }

  // Bulk construction: one sort instead of one merge per node (O(n log n) rather than O(n²)).
  private build(members: readonly Member[]): void {
    const sorted = [...members].sort((a, b) => compareIds(a.id, b.id));
    let total = 0;
    for (let i = 0; i < sorted.length; i++) {
      const m = sorted[i]!;
      checkId(m.id);
      checkWeight(m.weight, `node ${JSON.stringify(m.id)}`);
      if (i > 0 && sorted[i - 1]!.id === m.id) {
        throw new PlacementError('DUPLICATE_NODE', `node ${JSON.stringify(m.id)} is listed twice`);
      }
      const c = vnodeCount(m.weight, this.vnodesPerWeight);
      this.ordinals.set(m.id, i);
      this.weights.set(m.id, m.weight);
      this.ids.push(m.id);
      this.counts.push(c);
      total += c;
    }
    // Entries are generated in (id, vnode index) order, so sorting by (point, entry number) is
    // ring order. Packing both into one float64 lets the native numeric sort do it when the
    // entry number fits in 21 bits (2^32 · 2^21 = 2^53, still exact).
    const ep = new Uint32Array(total);
    const eo = new Uint32Array(total);
    const ev = new Uint32Array(total);
    let e = 0;
    for (let ord = 0; ord < this.ids.length; ord++) {
      const id = this.ids[ord]!;
      const c = this.counts[ord]!;
      for (let v = 0; v < c; v++, e++) {
        ep[e] = this.hash(`${id}#${v}`) >>> 0;
        eo[e] = ord;
        ev[e] = v;
      }
    }
    let order: ArrayLike<number>;
    if (total <= 1 << 21) {
      const keys = new Float64Array(total);
      for (let j = 0; j < total; j++) keys[j] = ep[j]! * 2097152 + j;
      keys.sort();
      const idx = new Uint32Array(total);
      for (let j = 0; j < total; j++) idx[j] = keys[j]! % 2097152;
      order = idx;
    } else {
      const idx = Array.from({ length: total }, (_, j) => j);
      idx.sort((a, b) => ep[a]! - ep[b]! || a - b);
      order = idx;
    }
    this.points = new Uint32Array(total);
    this.owner = new Uint32Array(total);
    this.vindex = new Uint32Array(total);
    for (let j = 0; j < total; j++) {
      const k = order[j]!;
      this.points[j] = ep[k]!;
      this.owner[j] = eo[k]!;
      this.vindex[j] = ev[k]!;
    }
  }

  // add virtual nodes from..to-1 of ordinal `ord`: sort the new points, then merge, O(ring size)
  private insertPoints(ord: number, from: number, to: number): void {
    const id = this.ids[ord]!;
    const k = to - from;
    const np = new Uint32Array(k);
    const nv = new Uint32Array(k);
    const order: number[] = [];
    for (let j = 0; j < k; j++) {
      np[j] = this.hash(`${id}#${from + j}`) >>> 0;
      nv[j] = from + j;
      order.push(j);
    }
    order.sort((a, b) => np[a]! - np[b]! || nv[a]! - nv[b]!);
    const n = this.points.length;
    const points = new Uint32Array(n + k);
    const owner = new Uint32Array(n + k);
    const vindex = new Uint32Array(n + k);
    let a = 0;
    let b = 0;
    for (let o = 0; o < n + k; o++) {
      const j = order[b];
      const takeNew =
        j !== undefined &&
        (a === n || this.before(np[j]!, ord, nv[j]!, this.points[a]!, this.owner[a]!, this.vindex[a]!));
      if (takeNew) {
        points[o] = np[j]!;
        owner[o] = ord;
        vindex[o] = nv[j]!;
        b++;
      } else {
        points[o] = this.points[a]!;
        owner[o] = this.owner[a]!;
        vindex[o] = this.vindex[a]!;
        a++;
      }
    }
    this.points = points;
    this.owner = owner;
    this.vindex = vindex;
    this.counts[ord] = to;
  }

  // remove the virtual nodes of ordinal `ord` numbered `from` and up
  private removePoints(ord: number, from: number): void {
    const keep = this.points.length - (this.counts[ord]! - from);
    const points = new Uint32Array(keep);
    const owner = new Uint32Array(keep);
    const vindex = new Uint32Array(keep);
    let o = 0;
    for (let i = 0; i < this.points.length; i++) {
      if (this.owner[i] === ord && this.vindex[i]! >= from) continue;
      points[o] = this.points[i]!;
      owner[o] = this.owner[i]!;
      vindex[o] = this.vindex[i]!;
      o++;
    }
    this.points = points;
    this.owner = owner;
    this.vindex = vindex;
    this.counts[ord] = from;
  }
}

/** Order node ids by UTF-16 code units: the same in every process, unlike localeCompare. */
export function compareIds(a: NodeId, b: NodeId): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
