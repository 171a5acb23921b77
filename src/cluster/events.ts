/**
 * What happens to the cluster, as typed events: components emit them, library users subscribe
 * (`node.on('join', handler)` returns a disposer), and the dashboard reads the bounded feed of
 * the latest ones with a human sentence each.
 */
import type { Clock, NodeId } from '../core/types.ts';
import type { Disposer } from '../discovery/registry.ts';

export interface ClusterEventMap {
  /** A node registered (etcd) or was listed (static peers). */
  join: { node: NodeId };
  /** A node left the membership: deregistered, or its lease ran out after a crash. */
  leave: { node: NodeId };
  /** The failure detector stopped trusting a peer (`health` suspected or down). */
  suspect: { node: NodeId; health: 'suspected' | 'down'; from: string };
  /** A peer the detector distrusted answers again. */
  recover: { node: NodeId; health: 'healthy' | 'slow'; from: string };
  /** A new partition table version is in force on this node. */
  table: { version: number; previous: number };
  /** A migration changed state (or a step of it finished). */
  migration: { id: string | null; state: string };
  /** A rebalance plan was accepted (or an imbalance was detected). */
  rebalance: { strategy: string | null; moves: number; automatic: boolean; version: number | null };
  /** The elected leader changed. */
  leader: { leader: NodeId | null };
  /** A live config override was applied or refused. */
  config: { group: string; applied: boolean };
  /** Anything else worth a line in the feed (handoff, catch-up, storage, status). */
  info: { topic: string };
}

export type ClusterEventKind = keyof ClusterEventMap;

/** One line of the dashboard feed. */
export interface ClusterEvent {
  at: number;
  kind: string;
  message: string;
}

const FEED_SIZE = 200;

export class ClusterEvents {
  private readonly clock: Clock;
  private readonly listeners = new Map<ClusterEventKind, Set<(data: never) => void>>();
  private readonly recent: ClusterEvent[] = [];

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** Call `handler` for every `kind` event from now on; the disposer stops it. */
  on<K extends ClusterEventKind>(kind: K, handler: (data: ClusterEventMap[K]) => void): Disposer {
    let set = this.listeners.get(kind);
    if (set === undefined) this.listeners.set(kind, (set = new Set()));
    const h = handler as (data: never) => void;
    set.add(h);
    return () => void set.delete(h);
  }

  /** Emit an event; `message` is its line in the feed (`feedKind` overrides the feed's label). */
  emit<K extends ClusterEventKind>(kind: K, data: ClusterEventMap[K], message: string, feedKind: string = kind): void {
    this.recent.push({ at: this.clock.now(), kind: feedKind, message });
    if (this.recent.length > FEED_SIZE) this.recent.splice(0, this.recent.length - FEED_SIZE);
    const set = this.listeners.get(kind);
    if (set === undefined) return;
    for (const h of set) {
      try {
        (h as (d: ClusterEventMap[K]) => void)(data);
      } catch {
        // a listener's bug must not break the component that emitted the event
      }
    }
  }

  /** A line in the feed that is not a typed event of its own (handoff, catch-up, storage...). */
  note(topic: string, message: string): void {
    this.emit('info', { topic }, message, topic);
  }

  /** The latest events, oldest first. */
  feed(): readonly ClusterEvent[] {
    return this.recent;
  }
}
