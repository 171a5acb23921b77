/**
 * Who is in the cluster, as this node sees it: the registry's membership by id, with change
 * listeners. Components get this (`Members`) instead of the registry, so they can read the
 * current members without caring whether they come from etcd or a static list.
 */
import type { NodeId, NodeInfo } from '../core/types.ts';
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
  private readonly listeners = new Set<(members: readonly NodeInfo[]) => void>();
  private off: Disposer | undefined;

  constructor(opts: { self: NodeId; registry: Registry; events?: ClusterEvents }) {
    this.self = opts.self;
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

  onChange(listener: (members: readonly NodeInfo[]) => void): Disposer {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  private set(members: readonly NodeInfo[]): void {
    const before = this.byId;
    this.byId = new Map(members.map((m) => [m.id, m]));
    if (before.size > 0) {
      for (const id of this.byId.keys()) if (!before.has(id)) this.events?.emit('join', { node: id }, `${id} joined`);
      for (const id of before.keys()) if (!this.byId.has(id)) this.events?.emit('leave', { node: id }, `${id} left`);
    }
    for (const l of this.listeners) l(members);
  }
}
