/**
 * What GET /cluster/migrations, the CLI and the dashboard show of a migration: its record in
 * etcd joined with the progress every sending node reports.
 */
import type { NodeId } from '../../core/types.ts';
import { copyMoves } from './plan.ts';
import { isOpen, type Migration, type NodeProgress } from './record.ts';

/** Summary of one migration for GET /cluster/migrations and the CLI. */
export interface MigrationView {
  id: string;
  kind: string;
  /** What it changes (describeMigration): join, leave, crash, rebalance, rollback, weights, membership. */
  change: MigrationChange['change'];
  /** e.g. "leave of node-3". */
  label: string;
  joined: NodeId[];
  left: NodeId[];
  state: string;
  fromVersion: number;
  toVersion: number;
  members: NodeId[];
  createdAt: number;
  updatedAt: number;
  committedAt: number | null;
  reason: string | null;
  rollbackRequested: boolean;
  /** Set when an operator stopped this change: the planner will not plan it again by itself. */
  held: boolean;
  partitions: { total: number; done: number; failed: number; copying: number };
  entries: { done: number; total: number };
  bytes: { done: number; total: number };
  /** Entries per second, summed over the sending nodes. */
  rate: number;
  etaSeconds: number | null;
  nodes: { node: NodeId; partitions: number; done: number; rate: number; at: number }[];
  /** Per partition, for open migrations only. */
  detail?: { partition: number; source: NodeId; targets: NodeId[]; state: string; entriesDone: number; entriesTotal: number; bytesDone: number; bytesTotal: number; verified: boolean }[];
}

/** What a migration changes, in a person's words: the members that join or leave, or a rebalance. */
export interface MigrationChange {
  /** join | leave | crash (the repair after a removal) | rebalance | rollback | weights | membership */
  change: 'join' | 'leave' | 'crash' | 'rebalance' | 'rollback' | 'weights' | 'membership';
  joined: NodeId[];
  left: NodeId[];
  /** e.g. "join of node-4", "leave of node-3", "repair after node-2 was removed" */
  label: string;
}

export function describeMigration(m: Migration): MigrationChange {
  const before = new Set(m.fromTable.members.map((x) => x.id));
  const after = new Set(m.targetTable.members.map((x) => x.id));
  const joined = [...after].filter((id) => !before.has(id));
  const left = [...before].filter((id) => !after.has(id));
  const names = (ids: NodeId[]): string => ids.join(', ');
  if (m.kind === 'repair') return { change: 'crash', joined, left, label: left.length > 0 ? `repair after ${names(left)} was removed` : 'repair' };
  if (m.kind === 'rollback') return { change: 'rollback', joined, left, label: m.rollbackOf !== undefined ? `rollback of ${m.rollbackOf}` : 'rollback' };
  if (m.kind === 'rebalance') return { change: 'rebalance', joined, left, label: 'rebalance' };
  if (joined.length > 0 && left.length === 0) return { change: 'join', joined, left, label: `join of ${names(joined)}` };
  if (left.length > 0 && joined.length === 0) return { change: 'leave', joined, left, label: `leave of ${names(left)}` };
  if (joined.length === 0 && left.length === 0) return { change: 'weights', joined, left, label: 'weight change' };
  return { change: 'membership', joined, left, label: `${names(joined)} joining, ${names(left)} leaving` };
}

export function viewOf(m: Migration, progress: ReadonlyMap<NodeId, NodeProgress>, withDetail: boolean): MigrationView {
  const moves = copyMoves(m.fromTable, m.targetTable);
  const byPartition = new Map<number, { source: NodeId; p: NodeProgress['partitions'][number] }>();
  const nodes: MigrationView['nodes'] = [];
  let rate = 0;
  for (const rep of progress.values()) {
    let done = 0;
    for (const p of rep.partitions) {
      byPartition.set(p.partition, { source: rep.node, p });
      if (p.state === 'done') done++;
    }
    if (isOpen(m.state)) rate += rep.rate;
    nodes.push({ node: rep.node, partitions: rep.partitions.length, done, rate: Math.round(rep.rate), at: rep.at });
  }
  let done = 0;
  let failed = 0;
  let copying = 0;
  const entries = { done: 0, total: 0 };
  const bytes = { done: 0, total: 0 };
  for (const { p } of byPartition.values()) {
    if (p.state === 'done') done++;
    else if (p.state === 'failed') failed++;
    else if (p.state === 'copying' || p.state === 'verifying') copying++;
    entries.done += Math.min(p.entriesDone, p.entriesTotal);
    entries.total += p.entriesTotal;
    bytes.done += p.bytesDone;
    bytes.total += Math.max(p.bytesTotal, p.bytesDone);
  }
  const committed = m.state === 'done';
  if (committed) done = moves.length;
  const left = entries.total - entries.done;
  const what = describeMigration(m);
  const view: MigrationView = {
    id: m.id,
    kind: m.kind,
    change: what.change,
    label: what.label,
    joined: what.joined,
    left: what.left,
    state: m.state,
    fromVersion: m.fromVersion,
    toVersion: m.targetTable.version,
    members: m.targetTable.members.map((x) => x.id),
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
    committedAt: m.committedAt ?? null,
    reason: m.reason ?? null,
    rollbackRequested: m.rollbackRequested === true,
    held: m.heldSig !== undefined,
    partitions: { total: moves.length, done, failed, copying },
    entries,
    bytes,
    rate: Math.round(rate),
    etaSeconds: isOpen(m.state) && rate > 0 ? Math.round((left / rate) * 10) / 10 : isOpen(m.state) ? null : 0,
    nodes,
  };
  if (withDetail) {
    view.detail = moves.map((mv) => {
      const e = byPartition.get(mv.partition);
      return {
        partition: mv.partition,
        source: e?.source ?? mv.from[0] ?? '',
        targets: e?.p.targets ?? mv.receivers,
        state: e?.p.state ?? (committed ? 'done' : 'pending'),
        entriesDone: e?.p.entriesDone ?? 0,
        entriesTotal: e?.p.entriesTotal ?? 0,
        bytesDone: e?.p.bytesDone ?? 0,
        bytesTotal: e?.p.bytesTotal ?? 0,
        verified: e?.p.verified ?? false,
      };
    });
  }
  return view;
}
