/**
 * Hot-key detection: the Space-Saving heavy-hitter sketch (Metwally, Agrawal, El Abbadi 2005),
 * weighted, with exponential decay so yesterday's hot key cools down.
 *
 * The sketch tracks at most `capacity` keys. An offered key that is tracked gets its weight
 * added; an untracked key replaces the tracked key with the smallest count c, inheriting c as
 * both its count and its `error` (it may have been seen up to c times while untracked). So for
 * every tracked key:  count - error <= true weight <= count, and error <= total / capacity.
 * Any key whose true weight exceeds total / capacity is guaranteed to be tracked. Memory is
 * bounded by `capacity` whatever the number of distinct keys.
 *
 * The smallest count is found through a binary min-heap of slots, so `offer` is O(log capacity)
 * with no allocation except the Map entry of a newly tracked key (a replaced key's entry is
 * deleted). Decay multiplies every count by the same factor, which keeps the heap order, so it
 * is a plain O(capacity) pass with no re-heaping.
 */

/** Keys tracked when no capacity is given: 16x the default `load.hot_key_top_k`. */
export const DEFAULT_TOPK_CAPACITY = 256;

export interface SpaceSavingOptions {
  /** Keys tracked at most; memory is O(capacity). Must be >= the k you ask `top` for. @default 256 */
  capacity?: number;
}

export interface HeavyHitter {
  key: string;
  /** Estimated (decayed) weight: an upper bound of the true weight. */
  count: number;
  /** Maximum overestimate: the true weight is at least count - error. */
  error: number;
}

export class TopKError extends Error {
  readonly code = 'LOAD_INVALID_OPTION';
  override name = 'TopKError';
}

export function isTopKError(e: unknown): e is TopKError {
  return e instanceof TopKError;
}

export class SpaceSaving {
  readonly capacity: number;
  /** key -> slot; holds exactly the tracked keys */
  private readonly index = new Map<string, number>();
  /** slot -> key ('' for a free slot: slots < size are all used) */
  private readonly keys: string[];
  private readonly counts: Float64Array;
  private readonly errors: Float64Array;
  /** min-heap of slots by counts[slot]; heap[0] is the smallest */
  private readonly heap: Int32Array;
  /** slot -> its position in heap */
  private readonly pos: Int32Array;
  private n = 0;
  private weight = 0;
  /** slot -> the age (see advance) at which its key was last offered */
  private readonly lastOffered: Float64Array;
  private age = 0;

  constructor(opts: SpaceSavingOptions = {}) {
    const capacity = opts.capacity ?? DEFAULT_TOPK_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 20) {
      throw new TopKError(`capacity must be an integer from 1 to ${1 << 20}. Got: ${capacity}`);
    }
    this.capacity = capacity;
    this.keys = new Array<string>(capacity).fill('');
    this.counts = new Float64Array(capacity);
    this.errors = new Float64Array(capacity);
    this.heap = new Int32Array(capacity);
    this.pos = new Int32Array(capacity);
    this.lastOffered = new Float64Array(capacity);
  }

  /**
   * One step of the caller's clock (the load monitor calls it once per tick). `top` can then
   * leave out keys not offered for a number of steps: decay alone never takes a count to zero,
   * so without it a key hot an hour ago would still be listed, with a tiny count.
   */
  advance(): void {
    this.age++;
  }

  /** Keys tracked now (<= capacity). */
  get size(): number {
    return this.n;
  }

  /** Total (decayed) weight offered: the bound on errors is total / capacity. */
  get total(): number {
    return this.weight;
  }

  /** Count `weight` (> 0) occurrences of `key`. */
  offer(key: string, weight = 1): void {
    if (!(weight > 0)) return; // also rejects NaN: a bad weight must not poison the heap
    this.weight += weight;
    const slot = this.index.get(key);
    if (slot !== undefined) {
      this.lastOffered[slot] = this.age;
      this.counts[slot]! += weight;
      this.siftDown(this.pos[slot]!);
      return;
    }
    if (this.n < this.capacity) {
      const s = this.n++;
      this.keys[s] = key;
      this.counts[s] = weight;
      this.errors[s] = 0;
      this.lastOffered[s] = this.age;
      this.index.set(key, s);
      this.heap[s] = s;
      this.pos[s] = s;
      this.siftUp(s);
      return;
    }
    // replace the minimum: the newcomer may have occurred up to min times unseen
    const s = this.heap[0]!;
    const min = this.counts[s]!;
    this.index.delete(this.keys[s]!);
    this.keys[s] = key;
    this.index.set(key, s);
    this.errors[s] = min;
    this.lastOffered[s] = this.age;
    this.counts[s] = min + weight;
    this.siftDown(0);
  }

  /** Multiply every count, error and the total by `factor` in (0, 1]. */
  decay(factor: number): void {
    if (!(factor > 0 && factor <= 1)) {
      throw new TopKError(`decay factor must be in (0, 1]. Got: ${factor}`);
    }
    if (factor === 1) return;
    for (let s = 0; s < this.n; s++) {
      this.counts[s]! *= factor;
      this.errors[s]! *= factor;
    }
    this.weight *= factor;
  }

  /** Estimated count of `key`, 0 when not tracked. */
  estimate(key: string): number {
    const s = this.index.get(key);
    return s === undefined ? 0 : this.counts[s]!;
  }

  /**
   * The `k` largest counts, largest first (ties by key, so the order is deterministic), among
   * the keys offered within the last `seenWithin` steps of advance() (default: any).
   */
  top(k: number, seenWithin = Number.POSITIVE_INFINITY): HeavyHitter[] {
    const want = Math.max(0, Math.floor(k));
    if (want === 0 || this.n === 0) return [];
    const slots: number[] = [];
    for (let s = 0; s < this.n; s++) if (this.age - this.lastOffered[s]! < seenWithin) slots.push(s);
    const m = Math.min(want, slots.length);
    if (m === 0) return [];
    slots.sort((a, b) => this.counts[b]! - this.counts[a]! || (this.keys[a]! < this.keys[b]! ? -1 : 1));
    const out: HeavyHitter[] = new Array(m);
    for (let i = 0; i < m; i++) {
      const s = slots[i]!;
      out[i] = { key: this.keys[s]!, count: this.counts[s]!, error: this.errors[s]! };
    }
    return out;
  }

  clear(): void {
    this.index.clear();
    this.keys.fill('');
    this.n = 0;
    this.weight = 0;
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const counts = this.counts;
    const s = heap[i]!;
    const c = counts[s]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const ps = heap[parent]!;
      if (counts[ps]! <= c) break;
      heap[i] = ps;
      this.pos[ps] = i;
      i = parent;
    }
    heap[i] = s;
    this.pos[s] = i;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const counts = this.counts;
    const n = this.n;
    const s = heap[i]!;
    const c = counts[s]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let child = l;
      if (r < n && counts[heap[r]!]! < counts[heap[l]!]!) child = r;
      const cs = heap[child]!;
      if (counts[cs]! >= c) break;
      heap[i] = cs;
      this.pos[cs] = i;
      i = child;
    }
    heap[i] = s;
    this.pos[s] = i;
  }
}
