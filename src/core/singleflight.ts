/**
 * Duplicate call suppression, after groupcache's `singleflight`: while a call for a key is in
 * flight, further calls for the same key wait for it and share its outcome instead of running
 * their own. This is what turns 100 concurrent misses for one key into one origin load.
 *
 * Pure: no timers, no I/O. The key is forgotten as soon as the call settles (fulfilled or
 * rejected), so results are never cached here and a failure is not sticky: the next call after
 * settlement runs `fn` again.
 */
export class Singleflight<K, V> {
  // in-flight calls by key; an entry lives from the first call until its promise settles
  private readonly calls = new Map<K, Promise<V>>();

  /**
   * Run `fn` for `key` unless a call for `key` is already in flight, in which case return that
   * call's promise. Every concurrent caller receives the same promise, so the same value or the
   * same error. A synchronous throw from `fn` is delivered as a rejection (and is not shared,
   * since nothing was in flight).
   */
  do(key: K, fn: () => Promise<V>): Promise<V> {
    const pending = this.calls.get(key);
    if (pending !== undefined) return pending;
    let started: Promise<V>;
    try {
      started = fn();
    } catch (err) {
      return Promise.reject(err);
    }
    // The key is removed inside `finally`, i.e. before any waiter resumes: a waiter that calls
    // do() again from its continuation starts a fresh call rather than joining a settled one.
    // The identity check keeps a fresh call (started by such a waiter) from being removed by
    // an older one.
    const shared: Promise<V> = started.finally(() => {
      if (this.calls.get(key) === shared) this.calls.delete(key);
    });
    this.calls.set(key, shared);
    return shared;
  }

  /** Number of keys with a call in flight. */
  inFlight(): number {
    return this.calls.size;
  }
}
