/**
 * Who is in the cluster, as this node sees it: the registry's membership by id, with change
 * listeners. Components get this (`Members`) instead of the registry, so they can read the
 * current members without caring whether they come from etcd or a static list.
 */
import { systemClock, type Clock, type NodeId, type NodeInfo } from '../core/types.ts';
import type { Disposer, Registry } from '../discovery/registry.ts';
import type { ClusterEvents } from './events.ts';

/** The read side every component uses. */
export interface Members {
  readonly self: NodeId;
  member(id: NodeId): NodeInfo | undefined;
  list(): readonly NodeInfo[];
  onChange(listener: (members: readonly NodeInfo[]) => void): Disposer;
}

export class Membership implements Members {
  readonly self: NodeId;
  private readonly registry: Registry;
  private readonly events: ClusterEvents | undefined;
  private byId = new Map<NodeId, NodeInfo>();
  // the last info of members that left, so a table change can tell a graceful leave from a
  // crash (bounded: the oldest are forgotten)
  private readonly departed = new Map<NodeId, { info: NodeInfo; at: number }>();
  private readonly listeners = new Set<(members: readonly NodeInfo[]) => void>();
  private off: Disposer | undefined;

  private readonly now: () => number;

  constructor(opts: { self: NodeId; registry: Registry; events?: ClusterEvents; clock?: Clock }) {
    this.self = opts.self;
    const clock = opts.clock ?? systemClock;
    this.now = () => clock.now();
    this.registry = opts.registry;
    this.events = opts.events;
  }

  /** Publish `info` and follow the membership. */
  async start(info: NodeInfo): Promise<void> {
    this.off = this.registry.onChange((m) => this.set(m));
    await this.registry.start(info);
    this.set(this.registry.members());
  }

  async stop(): Promise<void> {
    this.off?.();
    await this.registry.stop();
  }

  /** Change what this node publishes (status, weight). */
  update(info: NodeInfo): Promise<void> {
    return this.registry.update(info);
  }

  member(id: NodeId): NodeInfo | undefined {
    return this.byId.get(id);
  }

  list(): readonly NodeInfo[] {
    return [...this.byId.values()];
  }

  /** Did `id`, no longer a member, publish `leaving` before it went (a drain, not a crash)? */
  leftGracefully(id: NodeId): boolean {
    return (this.byId.get(id) ?? this.departed.get(id)?.info)?.status === 'leaving';
  }

  /** Members that left since this node started, oldest first: who, whether they drained first, when. */
  departures(): { id: NodeId; graceful: boolean; at: number }[] {
    return [...this.departed].map(([id, d]) => ({ id, graceful: d.info.status === 'leaving', at: d.at }));
  }

  onChange(listener: (members: readonly NodeInfo[]) => void): Disposer {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  private set(members: readonly NodeInfo[]): void {
    const before = this.byId;
    this.byId = new Map(members.map((m) => [m.id, m]));
    for (const id of this.byId.keys()) this.departed.delete(id);
    for (const [id, info] of before) {
      if (this.byId.has(id)) continue;
      this.departed.set(id, { info, at: this.now() });
      if (this.departed.size > MAX_DEPARTED) this.departed.delete(this.departed.keys().next().value!);
    }
    // the first view (this node's start) is the cluster as it is, not a change
    if (before.size > 0 && this.events !== undefined) {
      const events = this.events;
      for (const [id, info] of this.byId) {
        const old = before.get(id);
        if (old === undefined) {
          events.emit('join', { node: id, address: info.address, zone: info.zone ?? null }, `${id} joined${info.zone !== undefined ? ` (zone ${info.zone})` : ''}`);
        } else if (old.status !== info.status) {
          events.note('status', `${id} is ${info.status}`);
        }
      }
      for (const [id, info] of before) {
        if (this.byId.has(id)) continue;
        const graceful = info.status === 'leaving';
        events.emit('leave', { node: id, graceful }, graceful ? `${id} left (graceful leave)` : `${id} is gone: its registration expired (a crash or a lost lease)`);
      }
    }
    for (const l of this.listeners) l(members);
  }
}

/** Departed members remembered for leftGracefully(). */
const MAX_DEPARTED = 256;
