/**
 * The one predicate the read path asks: may this holder's copy of this partition lack
 * acknowledged writes right now? A copy that may is never read alone (router.ts: the newest copy
 * across the holders answers). What each node can know:
 *
 * - itself: it does not trust its own copy (trust.ts: after a pause, a lost lease, a table found
 *   behind, until it has confirmed the table and caught up); it is catching the partition up
 *   after starting as a listed holder;
 *   a peer is replaying hinted writes to it, or another holder of the partition said (in a
 *   heartbeat answer) that it holds hints for it; a table change made it a holder of the
 *   partition before the repair copied the data there;
 * - a peer: it just recovered from unusable (probation); it is published as catching up
 *   ('joining'); this node holds hints for it or is replaying them. What only the peer knows of
 *   itself (the list above) comes with its answer to a copy read instead (RecordAnswer.lacking).
 */
import type { NodeId } from '../core/types.ts';

/** Where each fact comes from; every source is O(1) on the request path. */
export interface FreshnessSources {
  readonly self: NodeId;
  /** This node may answer from its own copy (trust.ts). */
  selfTrusted(): boolean;
  /** The peer just recovered from unusable (health/classifier.ts probation). */
  recovered(id: NodeId): boolean;
  /** The peer is published as catching up (registry status 'joining'). */
  joining(id: NodeId): boolean;
  /** This node is catching the partition up from the other holders (catchup.ts). */
  catchingUp(partition: number): boolean;
  /** Hinted writes for this node are arriving, or another holder of the partition holds some (handoff.ts). */
  hintsForSelf(partition: number): boolean;
  /** This node holds hints for the peer or is replaying them (handoff.ts). */
  hintsFor(id: NodeId): boolean;
  /** A table change made this node a holder of the partition before its copy arrived (migration). */
  uncopied(partition: number): boolean;
}

export class Freshness {
  private readonly s: FreshnessSources;

  constructor(sources: FreshnessSources) {
    this.s = sources;
  }

  mayLackWrites(id: NodeId, partition: number): boolean {
    const s = this.s;
    if (id === s.self) return !s.selfTrusted() || s.catchingUp(partition) || s.hintsForSelf(partition) || s.uncopied(partition);
    return s.recovered(id) || s.joining(id) || s.hintsFor(id);
  }
}
