import type { Clock, Version } from './types.ts';

/** Logical slots per millisecond in a {@link Version}. 2^53 / 1024 ms is past the year 2200. */
export const LOGICAL_BITS = 1024;

/**
 * Hybrid logical clock (Kulkarni et al.): versions are close to wall time, strictly increase on
 * one node, and move past any version this node has seen, so a write that causally follows
 * another always carries a higher version even when node clocks disagree.
 *
 * Conflict rule (documented in README): the entry with the higher version wins; on an exact tie
 * (two nodes, same version) the byte-wise greater value wins, and a tombstone loses to a value.
 * Every replica applies the same rule, so replicas converge whatever the arrival order.
 */
export class HybridClock {
  // the last version handed out or observed; versions never go below it
  private last: Version = 0;

  private readonly clock: Clock;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** A new version, greater than every version issued or observed so far. */
  next(): Version {
    const physical = this.clock.now() * LOGICAL_BITS;
    this.last = physical > this.last ? physical : this.last + 1;
    return this.last;
  }

  /** Move past a version seen from elsewhere (a replicated or migrated entry). */
  observe(version: Version): void {
    if (version > this.last) this.last = version;
  }
}

/** Wall-clock milliseconds a version was issued at. */
export function versionTime(version: Version): number {
  return Math.floor(version / LOGICAL_BITS);
}

/**
 * Total order used to resolve conflicting writes of one key. Returns >0 when `a` wins.
 * `null` value = tombstone (a delete).
 */
export function compareWrites(
  a: { version: Version; value: Uint8Array | null },
  b: { version: Version; value: Uint8Array | null },
): number {
  if (a.version !== b.version) return a.version - b.version;
  if (a.value === null || b.value === null) {
    if (a.value === b.value) return 0;
    return a.value === null ? -1 : 1;
  }
  return Buffer.compare(a.value, b.value);
}
