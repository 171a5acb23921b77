/**
 * How far each peer's wall clock is from this node's, measured by the heartbeats (Cristian's
 * method): a Ping answer carries the peer's clock when it answered, so with `sent` and
 * `received` on this node's clock the peer's clock was `answer - (sent + received) / 2` ahead,
 * give or take half the round trip. The sample with the shortest round trip among the recent
 * ones bounds the offset best.
 *
 * What it is for: a peer message carries its sender's deadline as a wall-clock time (peer/
 * protocol.ts), and a write must never be applied after its sender gave up (the fence,
 * router.ts). Read on a clock 3 s ahead of the sender's, every deadline looked 3 s past and every
 * forwarded write failed (npm run chaos -- --hosts, clock skew +3 s at node-3: 494 writes failed
 * with 504); read on a clock behind, a write could be applied seconds after its sender gave up.
 * So a receiver moves each deadline onto its own clock, to the earliest time it can mean.
 */
import type { NodeId } from '../../core/types.ts';

/** Samples kept per peer (at one heartbeat interval each: a few seconds of history). */
const SAMPLES = 4;

interface Sample {
  /** Peer clock minus this node's clock, at the middle of the round trip. */
  offset: number;
  /** Half the round trip: the offset is within +-error. */
  error: number;
}

export class PeerClocks {
  private readonly samples = new Map<NodeId, Sample[]>();

  /** A heartbeat sent at `sent` and answered at `received` (this node's clock) said the peer's clock read `peerNow`. */
  sample(peer: NodeId, sent: number, peerNow: number, received: number): void {
    if (!Number.isFinite(peerNow) || peerNow <= 0 || received < sent) return;
    const s: Sample = { offset: peerNow - (sent + received) / 2, error: (received - sent) / 2 };
    let list = this.samples.get(peer);
    // a sample that cannot agree with the best one (their intervals do not overlap) means a
    // clock moved (stepped by NTP, or faked in a test): the older samples are wrong now
    const best = list === undefined ? undefined : bestOf(list);
    if (list === undefined || (best !== undefined && Math.abs(s.offset - best.offset) > s.error + best.error)) this.samples.set(peer, (list = []));
    list.push(s);
    if (list.length > SAMPLES) list.shift();
  }

  /** The peer's clock minus this node's, and its error bound; undefined before the first heartbeat answer. */
  offset(peer: NodeId): Sample | undefined {
    const list = this.samples.get(peer);
    return list === undefined ? undefined : bestOf(list);
  }

  /**
   * A time `peerTime` on `peer`'s clock, as the earliest time on this node's clock it can be:
   * never later than the true one, and earlier by at most the best recent round trip (well under
   * a millisecond between healthy nodes). A peer not measured yet: unchanged.
   */
  toLocal(peer: NodeId | undefined, peerTime: number): number {
    const o = peer === undefined ? undefined : this.offset(peer);
    return o === undefined ? peerTime : peerTime - o.offset - o.error;
  }

  forget(peer: NodeId): void {
    this.samples.delete(peer);
  }
}

function bestOf(list: readonly Sample[]): Sample | undefined {
  let best: Sample | undefined;
  for (const s of list) if (best === undefined || s.error < best.error) best = s;
  return best;
}
