import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/types.ts';
/**
 * Bytes charged per hot entry on top of its key and value: an lru-cache entry is a JS object,
 * a key string and a Buffer (this was GroupStore's estimate before the store moved its keys off
 * the V8 heap; the hot cache did not, so it keeps the old figure).
 */
export const HOT_ENTRY_OVERHEAD_BYTES = 128;

export interface HotCacheOptions {
  /**
   * Byte budget: key UTF-8 bytes + value bytes + HOT_ENTRY_OVERHEAD_BYTES per entry. Required,
   * an integer >= 0; 0 disables the hot cache (set() keeps nothing).
   */
  maxBytes: number;
  /** Source of "now" for expiry. Required. */
  clock: Clock;
}

export interface HotEntry {
  value: Buffer;
  /** The value's own absolute expiry in ms since the epoch, 0 = never. */
  expiresAt: number;
  /** When this copy is dropped whatever the value's expiry (a mirror's lease), 0 = never. */
  until: number;
}

function requireBytes(maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new RangeError(`HotCache maxBytes must be an integer >= 0. Got: ${maxBytes}`);
  }
}

/**
 * groupcache's hot cache: copies of values owned by other nodes, so a key that is hot
 * everywhere is not fetched over the network on every request. jincache fills it with the hot
 * keys their owners mirror here (cluster/mirror.ts): each copy is a lease (`until`) that the
 * owner invalidates before it acknowledges a write, so no read after an acknowledged write
 * returns the old value. The owner stays authoritative; the TTL of the owner's entry is honoured
 * (expiresAt is absolute, read against the injected clock). Kept small (hot_cache_fraction of
 * the group's bytes, 1/8 by default) so copies never crowd out the keys this node holds.
 */
export class HotCache {
  private readonly clock: Clock;
  private maxBytes: number;
  // undefined while disabled (maxBytes 0): lru-cache needs a positive maxSize
  private lru: LRUCache<string, HotEntry> | undefined;

  constructor(opts: HotCacheOptions) {
    requireBytes(opts.maxBytes);
    this.clock = opts.clock;
    this.maxBytes = opts.maxBytes;
    this.lru = HotCache.makeLru(opts.maxBytes);
  }

  private static makeLru(maxBytes: number): LRUCache<string, HotEntry> | undefined {
    if (maxBytes === 0) return undefined;
    return new LRUCache<string, HotEntry>({
      maxSize: maxBytes,
      // values bigger than the whole budget are refused by lru-cache itself
      sizeCalculation: (entry, key) => Buffer.byteLength(key) + entry.value.length + HOT_ENTRY_OVERHEAD_BYTES,
    });
  }

  /** The cached copy, unless absent or expired (an expired copy is dropped). Updates recency. */
  get(key: string): Buffer | undefined {
    return this.entry(key)?.value;
  }

  /** The cached copy with its expiry, unless absent, expired or past its `until`. Updates recency. */
  entry(key: string): HotEntry | undefined {
    const entry = this.lru?.get(key);
    if (entry === undefined) return undefined;
    const now = this.clock.now();
    if ((entry.expiresAt !== 0 && entry.expiresAt <= now) || (entry.until !== 0 && entry.until <= now)) {
      this.lru?.delete(key);
      return undefined;
    }
    return entry;
  }

  /**
   * Keep a copy of a value expiring at `expiresAt` (ms epoch, 0 = never), until `until` at the
   * latest (0 = no such bound). An already expired value, or one larger than the whole budget,
   * is not kept, and any older copy is dropped. Returns whether the copy is kept.
   */
  set(key: string, value: Buffer, expiresAt: number, until = 0): boolean {
    if (this.lru === undefined) return false;
    const now = this.clock.now();
    if ((expiresAt !== 0 && expiresAt <= now) || (until !== 0 && until <= now)) {
      this.lru.delete(key);
      return false;
    }
    this.lru.set(key, { value, expiresAt, until });
    return this.lru.has(key);
  }

  /** Drop a copy (the owner changed or deleted the key). True if one was held. */
  delete(key: string): boolean {
    return this.lru?.delete(key) ?? false;
  }

  clear(): void {
    this.lru?.clear();
  }

  /** Change the budget; shrinking drops least recently used copies. 0 disables the cache. */
  resize(maxBytes: number): void {
    requireBytes(maxBytes);
    if (maxBytes === this.maxBytes) return;
    const old = this.lru;
    this.maxBytes = maxBytes;
    this.lru = HotCache.makeLru(maxBytes);
    if (old === undefined || this.lru === undefined) return;
    // least recently used first, so the new cache keeps the recency order and, when smaller,
    // evicts the right ones (rentries() is typed as (K | V)[] upstream)
    for (const [key, entry] of old.rentries() as Iterable<[string, HotEntry]>) this.lru.set(key, entry);
  }

  stats(): { bytes: number; entries: number } {
    return { bytes: this.lru?.calculatedSize ?? 0, entries: this.lru?.size ?? 0 };
  }
}
