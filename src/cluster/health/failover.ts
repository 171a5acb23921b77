/**
 * Where a request goes when holders fail: pure functions of the preference list (holdersOf:
 * [owner, backups...]) and the failure detector's verdicts, so every node that agrees on the
 * verdicts picks the same substitute.
 */
import type { NodeId } from '../../core/types.ts';

export interface Verdicts {
  /** Requests may go there (healthy or slow, breaker closed). */
  usable(id: NodeId): boolean;
  /** Usable but just recovered: it may lack writes handed off meanwhile, so reads avoid it if they can. */
  onProbation(id: NodeId): boolean;
}

/**
 * Order in which a read tries the holders: usable holders not on probation (preference order),
 * then usable ones on probation, then the unusable ones as a last resort (the detector may be
 * wrong, and trying beats failing).
 */
export function readOrder(holders: readonly NodeId[], v: Verdicts): NodeId[] {
  const fresh: NodeId[] = [];
  const probation: NodeId[] = [];
  const rest: NodeId[] = [];
  for (const id of holders) {
    if (!v.usable(id)) rest.push(id);
    else if (v.onProbation(id)) probation.push(id);
    else fresh.push(id);
  }
  return [...fresh, ...probation, ...rest];
}

/**
 * Order in which a write tries coordinators: the usable holders in preference order (the first
 * one applies the write with a version and replicates it), then the unusable ones. A holder
 * known to be `behind` (catching up: its copy may lack acknowledged writes) comes after the
 * usable ones that are not: a conditional write or an expire is decided on the coordinator's
 * copy, so it must be decided where the newest copy is. It still receives the write.
 */
export function writeOrder(holders: readonly NodeId[], v: Pick<Verdicts, 'usable'> & { behind?(id: NodeId): boolean }): NodeId[] {
  const usable: NodeId[] = [];
  const behind: NodeId[] = [];
  const rest: NodeId[] = [];
  for (const id of holders) (!v.usable(id) ? rest : v.behind?.(id) ? behind : usable).push(id);
  return [...usable, ...behind, ...rest];
}

/**
 * Who receives a write applied at `coordinator`: the other holders (and extra replicas, e.g.
 * pending holders of a migrating partition), split into those sent to now and those that get a
 * hint because the detector says they are unreachable.
 */
export function replicaPlan(
  coordinator: NodeId,
  holders: readonly NodeId[],
  extra: readonly NodeId[],
  v: Pick<Verdicts, 'usable'>,
): { send: NodeId[]; hint: NodeId[] } {
  const send: NodeId[] = [];
  const hint: NodeId[] = [];
  const seen = new Set<NodeId>([coordinator]);
  for (const id of [...holders, ...extra]) {
    if (seen.has(id)) continue;
    seen.add(id);
    (v.usable(id) ? send : hint).push(id);
  }
  return { send, hint };
}

/**
 * Whether replicaPlan(coordinator, holders, extra, v) would hint anyone, without building the
 * plan: asked on every write before it is applied (router.ts tellFirst, appliesHere), where all
 * holders are usable nearly always.
 */
export function hintsAny(coordinator: NodeId, holders: readonly NodeId[], extra: readonly NodeId[], v: Pick<Verdicts, 'usable'>): boolean {
  for (const id of holders) if (id !== coordinator && !v.usable(id)) return true;
  for (const id of extra) if (id !== coordinator && !v.usable(id)) return true;
  return false;
}
