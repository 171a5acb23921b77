import type { Clock } from '../core/types.ts';
import { Singleflight } from '../core/singleflight.ts';
import { HotCache } from './hot-cache.ts';
import { isLoaderError, LoaderError } from './loader.ts';
import type { Loader } from './loader.ts';
import { GroupStore } from './store.ts';

/** Default share of a group's bytes given to its hot cache (groupcache uses 1/8 too). */
export const DEFAULT_HOT_CACHE_FRACTION = 1 / 8;

export interface GroupOptions {
  /** Group name (the keyspace). Required, non-empty. */
  name: string;
  /**
   * Byte budget of the whole group on this node, hot cache included: the hot cache gets
   * floor(maxBytes × hotCacheFraction), the store the rest. Required, a positive integer.
   */
  maxBytes: number;
  /** Source of "now" for expiry. Required. */
  clock: Clock;
  /** Partition of a key. Required. */
  partitionOf: (key: string) => number;
  /** Origin of values on a miss. Default none: the group is a plain key-value store. */
  loader?: Loader | undefined;
  /** Share of maxBytes for the hot cache, in [0, 1); 0 disables it. Default 1/8. */
  hotCacheFraction?: number | undefined;
}

/**
 * A named keyspace on this node: the entries it owns or backs up (store), copies of hot values
 * owned elsewhere (hot), and its origin loader. Routing decides which of them a request uses;
 * this class only guarantees that concurrent misses for one key cost one origin load.
 */
export class Group {
  readonly name: string;
  readonly store: GroupStore;
  readonly hot: HotCache;
  readonly loader: Loader | undefined;

  private hotCacheFraction: number;
  private maxBytes: number;
  private readonly flights = new Singleflight<string, Buffer | null>();
  private started = 0;

  constructor(opts: GroupOptions) {
    const fraction = opts.hotCacheFraction ?? DEFAULT_HOT_CACHE_FRACTION;
    if (!(fraction >= 0 && fraction < 1)) {
      throw new RangeError(`Group hotCacheFraction must be in [0, 1). Got: ${fraction}`);
    }
    requireBytes(opts.maxBytes);
    this.name = opts.name;
    this.hotCacheFraction = fraction;
    this.maxBytes = opts.maxBytes;
    const { storeBytes, hotBytes } = this.split(opts.maxBytes);
    this.store = new GroupStore({ name: opts.name, maxBytes: storeBytes, clock: opts.clock, partitionOf: opts.partitionOf });
    this.hot = new HotCache({ maxBytes: hotBytes, clock: opts.clock });
    this.loader = opts.loader;
  }

  /**
   * Load `key` from the origin. Concurrent calls for one key share one loader call (the node
   * stores the result; it should do so before awaiting anything else, so that a miss arriving
   * right after the load settles finds it). Rejects with a LoaderError: kind 'no_loader' when
   * the group has none, the loader's own LoaderError, or kind 'failed' wrapping anything else.
   *
   * `signal` abandons this caller's wait only (rejecting with its reason): the shared load goes
   * on for the other callers and is bounded by the loader's own timeout.
   */
  load(key: string, signal?: AbortSignal): Promise<Buffer | null> {
    const loader = this.loader;
    if (loader === undefined) {
      return Promise.reject(new LoaderError('no_loader', `group "${this.name}" has no loader`));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    const shared = this.flights.do(key, () => this.run(loader, key));
    return signal === undefined ? shared : abandonable(shared, signal);
  }

  /** Origin loads actually started (misses joined to a load in flight do not count). */
  loadsStarted(): number {
    return this.started;
  }

  /** Byte budget and hot-cache share in force. */
  budget(): { maxBytes: number; hotCacheFraction: number } {
    return { maxBytes: this.maxBytes, hotCacheFraction: this.hotCacheFraction };
  }

  /** Change the group's byte budget and, optionally, the hot cache's share of it (hot reload). */
  resize(maxBytes: number, hotCacheFraction = this.hotCacheFraction): void {
    requireBytes(maxBytes);
    if (!(hotCacheFraction >= 0 && hotCacheFraction < 1)) {
      throw new RangeError(`Group hotCacheFraction must be in [0, 1). Got: ${hotCacheFraction}`);
    }
    this.maxBytes = maxBytes;
    this.hotCacheFraction = hotCacheFraction;
    const { storeBytes, hotBytes } = this.split(maxBytes);
    this.store.resize(storeBytes);
    this.hot.resize(hotBytes);
  }

  private split(maxBytes: number): { storeBytes: number; hotBytes: number } {
    const hotBytes = Math.floor(maxBytes * this.hotCacheFraction);
    // the store needs at least one byte of budget even for absurdly small groups
    return { storeBytes: Math.max(1, maxBytes - hotBytes), hotBytes };
  }

  private async run(loader: Loader, key: string): Promise<Buffer | null> {
    this.started++;
    let value: unknown;
    try {
      // Nobody aborts this signal: the load is shared, so no single caller may cancel it.
      // A fresh controller per load keeps long-lived signals out of AbortSignal.any chains.
      value = await loader(key, new AbortController().signal);
    } catch (err) {
      if (isLoaderError(err)) throw err;
      throw new LoaderError('failed', `loader of group "${this.name}" failed for key ${JSON.stringify(key)}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
    if (value === null || Buffer.isBuffer(value)) return value;
    // library loaders written in plain JS may hand back a Uint8Array: accept it without a copy
    if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    throw new LoaderError('failed', `loader of group "${this.name}" returned ${typeof value} for key ${JSON.stringify(key)}; expected a Buffer or null`);
  }
}

function requireBytes(maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new RangeError(`Group maxBytes must be a positive integer. Got: ${maxBytes}`);
  }
}

/** `shared`, unless `signal` aborts first. */
function abandonable<T>(shared: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    shared.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
