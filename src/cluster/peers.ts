/**
 * Messages to other members by id: the member's address from the membership, the sender and the
 * table version stamped on, and the call run through the peer's circuit breaker so the failure
 * detector learns from its outcome.
 */
import { JincacheError } from '../core/errors.ts';
import type { Clock, NodeId } from '../core/types.ts';
import type { CallMeta, PeerCaller } from '../peer/client.ts';
import type { PeerMessage } from '../peer/protocol.ts';
import type { Members } from './membership.ts';

/** Runs one call to a peer through its breaker (the failure detector). */
export interface Breakers {
  call<T>(peer: NodeId, fn: () => Promise<T>): Promise<T>;
}

export class Peers {
  private readonly client: PeerCaller;
  private readonly members: Members;
  private readonly tableVersion: () => number;
  private readonly breakers: Breakers;
  private readonly clock: Clock;

  /** `clock`: what deadlines are measured on. Default: the system clock. */
  constructor(opts: { client: PeerCaller; members: Members; tableVersion: () => number; breakers: Breakers; clock?: Clock }) {
    this.clock = opts.clock ?? { now: () => Date.now() };
    this.client = opts.client;
    this.members = opts.members;
    this.tableVersion = opts.tableVersion;
    this.breakers = opts.breakers;
  }

  /** Every other member's id. */
  others(): NodeId[] {
    return this.members.list().filter((m) => m.id !== this.members.self).map((m) => m.id);
  }

  /**
   * Send `req` as `message` to member `id`, due by `deadline` (ms since epoch), naming the table
   * it was routed by: `table`, default this node's current one.
   */
  call<Req, Res>(message: PeerMessage<Req, Res>, id: NodeId, req: Req, deadline: number, table = this.tableVersion()): Promise<Res> {
    const member = this.members.member(id);
    if (member === undefined) return Promise.reject(new JincacheError('PEER_UNAVAILABLE', `node ${id} is not a member`));
    // A deadline already past (a request this node read late, after a pause) is not sent: its
    // timeout would say nothing about the peer, yet count against it in its breaker and health.
    if (deadline <= this.clock.now()) return Promise.reject(new JincacheError('TIMEOUT', `${message.name} to ${id} not sent: its deadline passed before`));
    const meta: CallMeta = { from: this.members.self, table, deadline };
    return this.breakers.call(id, () => this.client.call(message, member.address, req, meta));
  }
}
