/**
 * What happens to the cluster, as typed events: components emit them, library users subscribe
 * (`node.on('join', handler)` returns a disposer), and the dashboard reads the bounded feed of
 * the latest ones with a human sentence each.
 */
import type { Clock, NodeId } from '../core/types.ts';
import type { Disposer } from '../discovery/registry.ts';

export interface ClusterEventMap {
  /** A node registered (etcd), as seen by this node. Static peers are members from the start: no event. */
  join: { node: NodeId; address: string; zone: string | null };
  /**
   * A node left the membership: `graceful` when it had published `leaving` first (a drain: its
   * partitions were handed over), otherwise its registration vanished (its lease ran out: a crash).
   */
  leave: { node: NodeId; graceful: boolean };
  /** The failure detector stopped trusting a peer (`health` suspected or down). */
  suspect: { node: NodeId; health: 'suspected' | 'down'; from: string };
  /** A peer the detector distrusted answers again. */
  recover: { node: NodeId; health: 'healthy' | 'slow'; from: string };
  /**
   * A partition table version is in force on this node (every node emits it for every version
   * it installs, the first one included: `previous` null). `cause` says what changed it.
   */
  table: { version: number; previous: number | null; joined: NodeId[]; left: NodeId[]; cause: TableChangeCause };
  /** A migration record appeared or changed state (every node follows the records in etcd). */
  migration: { id: string; kind: string; state: string; change: string; fromVersion: number; toVersion: number };
  /**
   * A rebalance plan was accepted: every node emits it when the plan's migration record appears
   * (`automatic` when the leader's periodic check made it; `version` is the table it leads to).
   * The leader also emits one when it detects a sustained imbalance (`moves` 0, `version` null).
   */
  rebalance: { strategy: string | null; moves: number; automatic: boolean; version: number | null };
  /** The elected leader changed. */
  leader: { leader: NodeId | null };
  /** A live config override was applied or refused. */
  config: { group: string; applied: boolean };
  /** Anything else worth a line in the feed (handoff, catch-up, storage, status). */
  info: { topic: string };
}

/**
 * Why a table version replaced the previous one: the first table this node installed, members
 * that joined, members that left gracefully, members removed because they vanished (a crash),
 * several of those at once, or the same members with other weights or owners (a rebalance or a
 * rollback of one).
 */
export type TableChangeCause = 'start' | 'join' | 'leave' | 'crash' | 'membership' | 'rebalance';

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
