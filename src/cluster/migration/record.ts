/**
 * What a migration is, as stored at `/jincache/migrations/{id}` (SPEC §4), and the per-node
 * progress reports under `/jincache/migrations/{id}/nodes/{nodeId}`. Pure: parsing and shapes only.
 *
 * Kinds:
 *  - `prepare`: join, weight change or graceful leave. `from` is the table in force, `target` is
 *    NOT in force yet; nodes copy data to the target's new holders, then the leader commits the
 *    target (version = fromVersion + 1). Warm handoff: the new holders have the data before they
 *    are holders of record.
 *  - `repair`: a crashed node was removed; `target` is already in force and the executor
 *    re-replicates the partitions whose new holders lack the data, from a surviving holder.
 *  - `rollback`: a prepare migration back to the assignments a committed migration replaced.
 *  - `rebalance`: a prepare migration to a table the rebalancer proposed (new weights), through
 *    TableManager.propose.
 *
 * State machine (only the leader moves a record out of `running`/`cancelling`, except that any
 * node or the CLI may ask for a cancel or a rollback):
 *   running -> done | superseded | failed | cancelling
 *   cancelling -> cancelled -> rolled_back (rollback of a prepare that never committed)
 *   done -> (rollbackRequested) -> rolled_back once its rollback migration committed
 */
import { decodeTable, type PartitionTable } from '../../core/placement/table.ts';
import type { Member, NodeId } from '../../core/types.ts';

export type MigrationKind = 'prepare' | 'repair' | 'rollback' | 'rebalance';

export type MigrationState = 'running' | 'cancelling' | 'cancelled' | 'rolled_back' | 'done' | 'superseded' | 'failed';

export const MIGRATION_STATES: readonly MigrationState[] = ['running', 'cancelling', 'cancelled', 'rolled_back', 'done', 'superseded', 'failed'];

/** States in which nodes still copy data. */
export function isActive(state: MigrationState): boolean {
  return state === 'running';
}

/** States that may still change without an operator (the leader finalises them). */
export function isOpen(state: MigrationState): boolean {
  return state === 'running' || state === 'cancelling';
}

/** The stored JSON. Tables are `encodeTable` strings so the record is self-contained. */
export interface MigrationDoc {
  id: string;
  kind: MigrationKind;
  state: MigrationState;
  /** Version of the table in force when it was planned (`from`'s version). */
  fromVersion: number;
  from: string;
  target: string;
  createdAt: number;
  updatedAt: number;
  committedAt?: number;
  /** Set by `jincache migrations rollback` (or the control route); the leader acts on it. */
  rollbackRequested?: boolean;
  /** For kind `rollback`: the migration it undoes. */
  rollbackOf?: string;
  /**
   * Member signature the planner must not plan again by itself (set on cancel and on rollback):
   * an operator stopped exactly this change. Cleared by any other membership change.
   */
  heldSig?: string;
  /** Why it ended (superseded by, failure reason). */
  reason?: string;
  /** For kind `rebalance`: the plan it carries out (every node emits it as a 'rebalance' event). */
  rebalance?: RebalanceMeta;
}

/** What a rebalance migration carries out. */
export interface RebalanceMeta {
  strategy: string;
  /** the leader's periodic check made it (not POST /cluster/rebalance) */
  automatic: boolean;
  /** owner moves in the plan */
  moves: number;
}

/** A parsed record: the doc plus its decoded tables. */
export interface Migration extends MigrationDoc {
  fromTable: PartitionTable;
  targetTable: PartitionTable;
}

export class MigrationRecordError extends Error {
  readonly code = 'MIGRATION_RECORD_INVALID';
  override name = 'MigrationRecordError';
}

export function isMigrationRecordError(e: unknown): e is MigrationRecordError {
  return e instanceof MigrationRecordError;
}

const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;

export function isMigrationId(s: string): boolean {
  return ID_PATTERN.test(s);
}

/** Parse and validate a stored record. Throws MigrationRecordError naming the problem. */
export function parseMigration(raw: string): Migration {
  let o: unknown;
  try {
    o = JSON.parse(raw);
  } catch (e) {
    throw new MigrationRecordError(`migration record is not JSON: ${(e as Error).message}`);
  }
  if (typeof o !== 'object' || o === null) throw new MigrationRecordError('migration record must be an object');
  const d = o as Partial<MigrationDoc>;
  if (typeof d.id !== 'string' || !isMigrationId(d.id)) throw new MigrationRecordError(`migration id invalid: ${String(d.id)}`);
  if (d.kind !== 'prepare' && d.kind !== 'repair' && d.kind !== 'rollback' && d.kind !== 'rebalance') throw new MigrationRecordError(`migration ${d.id}: bad kind ${String(d.kind)}`);
  if (!MIGRATION_STATES.includes(d.state as MigrationState)) throw new MigrationRecordError(`migration ${d.id}: bad state ${String(d.state)}`);
  if (typeof d.from !== 'string' || typeof d.target !== 'string') throw new MigrationRecordError(`migration ${d.id}: from and target tables required`);
  if (!Number.isInteger(d.fromVersion)) throw new MigrationRecordError(`migration ${d.id}: fromVersion must be an integer`);
  const doc = d as MigrationDoc;
  let fromTable: PartitionTable;
  let targetTable: PartitionTable;
  try {
    fromTable = decodeTable(doc.from);
    targetTable = decodeTable(doc.target);
  } catch (e) {
    throw new MigrationRecordError(`migration ${d.id}: ${(e as Error).message}`);
  }
  return { ...doc, createdAt: Number(doc.createdAt) || 0, updatedAt: Number(doc.updatedAt) || 0, fromTable, targetTable };
}

/** The stored JSON of a record (drops the decoded tables). */
export function serializeMigration(m: MigrationDoc): string {
  const { fromTable: _f, targetTable: _t, ...doc } = m as Migration;
  return JSON.stringify(doc);
}

/** Member ids and weights as one comparable string. */
export function memberSig(members: readonly Member[]): string {
  return [...members]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((m) => `${m.id}:${m.weight}${m.zone !== undefined ? `@${m.zone}` : ''}`)
    .join(',');
}

// ---- progress reports ------------------------------------------------------------------------

/** Per-partition copy state as reported by its source node. */
export type PartitionState = 'pending' | 'copying' | 'verifying' | 'done' | 'failed';

const PSTATE: readonly PartitionState[] = ['pending', 'copying', 'verifying', 'done', 'failed'];

export interface PartitionProgress {
  partition: number;
  /** Nodes receiving a copy. */
  targets: NodeId[];
  state: PartitionState;
  entriesDone: number;
  entriesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Checksums matched at every target. */
  verified: boolean;
}

/** What one node reports for one migration (only the partitions it is the source of). */
export interface NodeProgress {
  node: NodeId;
  at: number;
  /** Entries per second over the node's copying so far. */
  rate: number;
  partitions: PartitionProgress[];
}

/** Compact JSON for etcd: partitions as tuples. */
export function encodeProgress(p: NodeProgress): string {
  return JSON.stringify({
    node: p.node,
    at: p.at,
    rate: Math.round(p.rate),
    parts: p.partitions.map((x) => [x.partition, PSTATE.indexOf(x.state), x.entriesDone, x.entriesTotal, x.bytesDone, x.bytesTotal, x.verified ? 1 : 0, x.targets.join(',')]),
  });
}

export function decodeProgress(raw: string): NodeProgress | undefined {
  try {
    const o = JSON.parse(raw) as { node: string; at: number; rate: number; parts: [number, number, number, number, number, number, number, string][] };
    if (typeof o.node !== 'string' || !Array.isArray(o.parts)) return undefined;
    return {
      node: o.node,
      at: o.at,
      rate: o.rate ?? 0,
      partitions: o.parts.map(([partition, s, entriesDone, entriesTotal, bytesDone, bytesTotal, v, targets]) => ({
        partition,
        state: PSTATE[s] ?? 'pending',
        entriesDone,
        entriesTotal,
        bytesDone,
        bytesTotal,
        verified: v === 1,
        targets: targets === '' ? [] : targets.split(','),
      })),
    };
  } catch {
    return undefined;
  }
}
