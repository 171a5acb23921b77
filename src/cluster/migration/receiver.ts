/**
 * The receiving side of a migration (executor.ts is the sending side): MigrateReady, MigrateBatch
 * and MigrateVerify.
 *
 * Verify fast path: while applying a migration's batches the receiver sums what it took, per
 * partition. When the sender's sums of what it sent equal those, and no store evicted anything
 * since the first batch, everything sent is held here (or was replaced by newer writes) and the
 * partition is not walked again. Anything else (a record lost to a newer one, a retried batch, an
 * eviction) walks the partition and answers what is held. A persistent node flushes its disk
 * first: the source drops its copy once the answer says the data is here.
 */
import type { Group } from '../../cache/group.ts';
import { JincacheError } from '../../core/errors.ts';
import { MigrateBatch, MigrateReady, MigrateVerify, type MigrateReadyRequest, type Sum } from '../../peer/messages.ts';
import type { PeerServer } from '../../peer/server.ts';
import type { NodeStorage } from '../../storage/node-storage.ts';
import type { LocalData } from '../local-data.ts';
import { applyBatch } from './batch.ts';
import { partitionChecksum, type DiskSource } from './executor.ts';
import { addToChecksum, emptyChecksum, takenAnswer, type Checksum } from './plan.ts';
import { isMigrationId } from './record.ts';

/** Sums of the records a receiver applied from one migration's batches, and its evictions then. */
interface Taken {
  evictions: number;
  sums: Map<number, Checksum>;
  /** Sources that said what they will send (MigrateReady), and per group: keys held when the first did, and the entries announced since. */
  sources: Set<string>;
  expected: Map<string, { base: number; entries: number }>;
}

export interface ReceiverOptions {
  local: LocalData;
  groups: ReadonlyMap<string, Group>;
  partitionOf(key: string): number;
  partitionCount(): number;
  maxValueBytes(): number;
  storage?: NodeStorage;
  /** Batches are taken only while this says so (started, not stopping). */
  accepting(): boolean;
  /** The node's HeldClock: held while a slice of a batch is applied (ApplyLimits.clockHold). */
  clockHold?: { hold(): void; release(): void };
  server: PeerServer;
}

export class MigrationReceiver {
  private readonly opts: ReceiverOptions;
  // migration id -> what this node applied of its batches
  private readonly taken = new Map<string, Taken>();

  constructor(opts: ReceiverOptions) {
    this.opts = opts;
    const server = opts.server;
    server.handle(MigrateReady, (req, meta) => {
      this.check();
      this.expect(req, meta.from);
    });
    server.handle(MigrateBatch, (req) => this.batch(req.migration, req.batch));
    server.handle(MigrateVerify, async (req) => ({ sums: await this.verify(req.migration, req.partitions, req.sums) }));
  }

  /** Forget the sums of migrations that are no longer open. */
  forget(open: (id: string) => boolean): void {
    for (const id of this.taken.keys()) if (!open(id)) this.taken.delete(id);
  }

  /** Where partitions are read from when memory may not hold them all (see diskSourceOf). */
  disk(): DiskSource | undefined {
    return diskSourceOf(this.opts.groups, this.opts.storage);
  }

  private check(): void {
    // peers may send as soon as this node is registered, before it takes batches
    if (!this.opts.accepting()) throw new JincacheError('PEER_UNAVAILABLE', 'migration is not running on this node yet');
  }

  /**
   * A source says what it is about to send: each group's store is sized for what it held when the
   * first source said so plus everything announced since (GroupStore.reserve: resizing the key
   * index as the entries arrived was a quarter of applying them). Once per source: a Ready asked
   * again adds nothing.
   */
  private expect(req: MigrateReadyRequest, from: string | undefined): void {
    if (req.expected.length === 0 || from === undefined) return;
    const taken = this.takenFor(req.migration);
    if (taken === undefined || taken.sources.has(from)) return;
    taken.sources.add(from);
    for (const { group, entries } of req.expected) {
      const store = this.opts.groups.get(group)?.store;
      if (store === undefined) continue;
      let e = taken.expected.get(group);
      if (e === undefined) taken.expected.set(group, (e = { base: store.keyCount, entries: 0 }));
      e.entries += entries;
      store.reserve(e.base + e.entries);
    }
  }

  private async batch(id: string, batch: Buffer): Promise<{ received: number; applied: number }> {
    this.check();
    const taken = this.takenFor(id);
    const { partitionOf } = this.opts;
    const out = await applyBatch(batch, this.opts.local, {
      maxRecords: 1_000_000,
      maxValueBytes: this.opts.maxValueBytes(),
      ...(this.opts.clockHold !== undefined ? { clockHold: this.opts.clockHold } : {}),
      ...(taken !== undefined
        ? {
            onApplied: (group: string, key: string, version: number) => {
              const p = partitionOf(key);
              let c = taken.sums.get(p);
              if (c === undefined) taken.sums.set(p, (c = emptyChecksum()));
              addToChecksum(c, group, key, version);
            },
          }
        : {}),
    });
    // a persistent node answers once its disk writes have caught up enough (bounded buffer)
    await this.opts.storage?.persister.backpressure();
    return out;
  }

  private async verify(id: string, ps: readonly number[], sent: readonly Sum[]): Promise<Sum[]> {
    this.check();
    const count = this.opts.partitionCount();
    if (ps.some((p) => p >= count)) throw new JincacheError('BAD_REQUEST', 'partitions out of range');
    // what is confirmed is on disk: the source drops its copy once this answer says so
    await this.opts.storage?.flush();
    return this.checksums(ps, this.takenFor(id, false), sent);
  }

  private takenFor(id: string, create = true): Taken | undefined {
    if (!isMigrationId(id)) return undefined;
    let t = this.taken.get(id);
    if (t === undefined && create) this.taken.set(id, (t = { evictions: this.evictions(), sums: new Map(), sources: new Set(), expected: new Map() }));
    return t;
  }

  private evictions(): number {
    let n = 0;
    for (const g of this.opts.groups.values()) n += g.store.stats().evictions;
    return n;
  }

  /** Sums of this node's live entries per partition, a turn of the event loop every few thousand (see the file comment). */
  private async checksums(ps: readonly number[], taken: Taken | undefined, sent: readonly Sum[]): Promise<Sum[]> {
    const disk = this.disk();
    const fast = taken !== undefined && taken.evictions === this.evictions();
    const out: Sum[] = [];
    let work = 0;
    for (let i = 0; i < ps.length; i++) {
      const p = ps[i]!;
      const answer = fast ? takenAnswer(sent[i], taken.sums.get(p)) : undefined;
      if (answer !== undefined) {
        out.push(answer);
        continue;
      }
      const c = await partitionChecksum(this.opts.local, p, disk);
      out.push([c.count, c.sum]);
      work += c.count + 1;
      if (work >= 8192) {
        work = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
    return out;
  }
}

/**
 * On a persistent node whose memory may not hold every record of a group (the store evicted, or
 * the warm load stopped at its budget), partitions are read from disk; otherwise memory is
 * complete and faster. Undefined on memory nodes.
 */
export function diskSourceOf(groups: ReadonlyMap<string, Group>, storage: NodeStorage | undefined): DiskSource | undefined {
  if (storage === undefined) return undefined;
  return (group, partition) => {
    const st = groups.get(group)?.store.stats();
    // a warm load cut short by the budget leaves the store (nearly) full without evictions
    if (st === undefined || (st.evictions === 0 && st.bytes < st.maxBytes * 0.9)) return undefined;
    return storage.partitionRecords(group, partition);
  };
}
