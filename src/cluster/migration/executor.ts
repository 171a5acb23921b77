/**
 * The per-node half of a migration: for every partition this node is the source of, stream its
 * entries (values and tombstones, with their versions) to each receiver in bounded batches, then
 * compare checksums. Every node runs one executor; it never changes the table.
 *
 * Safety comes from the data, not from ordering: receivers apply batches with the last-writer-wins
 * rule (LocalData.apply), so a migrated entry never overwrites a newer write and never brings back
 * a deleted key. Writes that land at the owner while a partition is copied reach the receivers
 * through the router's extraReplicas hook (active from the moment the record is seen, before the
 * first batch), so a copy plus those writes is complete.
 *
 * Load control: at most `concurrency` batches in flight per node, an optional byte/s cap, and a
 * turn of the event loop (setImmediate) between batches, so serving traffic and heartbeats keep
 * their latency. A batch that fails is retried with exponential backoff (5 tries); a work unit
 * that still fails is retried after a pause for as long as the migration runs.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { NodeId, NodeInfo } from '../../core/types.ts';
import type { PartitionTable } from '../../core/placement/table.ts';
import { encodeRecords, type WireRecord } from '../../transport/codec.ts';
import type { PeerClient } from '../../transport/peer-client.ts';
import type { LocalData } from '../local-data.ts';
import { addToChecksum, copyMoves, emptyChecksum, packRuns, sameChecksum, sourceOf, type Checksum } from './plan.ts';
import type { Migration, NodeProgress, PartitionProgress } from './record.ts';

export interface ExecutorSettings {
  /** Entries per batch (config migration.batch_size, default 100). */
  batchSize: number;
  /** Bytes per batch (config migration.batch_bytes, default 1 MiB). */
  batchBytes: number;
  /** Batches in flight per node (config migration.concurrency, default 2). */
  concurrency: number;
  /** Byte/s cap over this node's sends; undefined = none (config migration.bandwidth). */
  bandwidth?: number;
  /** Per-request timeout (config migration.migration_timeout, default 30 s). */
  requestTimeoutMs: number;
}

export interface ExecutorOptions {
  self: NodeId;
  local: LocalData;
  peers: PeerClient;
  member(id: NodeId): NodeInfo | undefined;
  settings(): ExecutorSettings;
  /** Called when some job's progress changed (the plugin throttles reports). */
  onProgress(): void;
  logger: { info(o: object, m: string): void; warn(o: object, m: string): void };
  /** Milliseconds clock for rates. Default Date.now. */
  now?: () => number;
}

/** Bytes an entry costs on the wire (codec frame). */
function wireSize(group: string, key: string, value: Buffer | null): number {
  return 24 + group.length + Buffer.byteLength(key) + (value?.length ?? 0);
}

class Aborted extends Error {
  readonly code = 'MIGRATION_ABORTED';
}

/** Checksum of the live entries this node holds for `p`, over every group. */
export function localChecksum(local: LocalData, p: number): Checksum {
  const c = emptyChecksum();
  for (const [name, g] of local.groups) {
    for (const [key, e] of g.store.partitionEntries(p)) if (e.value !== null) addToChecksum(c, name, key, e.version);
  }
  return c;
}

interface Unit {
  receiver: NodeId;
  partitions: number[];
  attempts: number;
}

/** One migration as seen by this node. */
class Job {
  readonly migration: Migration;
  readonly parts = new Map<number, PartitionProgress & { pendingReceivers: Set<NodeId> }>();
  private readonly exec: Executor;
  private aborted = false;
  private started = 0;
  private sent = 0;
  private pacedUntil = 0;
  finished = false;

  constructor(exec: Executor, m: Migration, inForce: PartitionTable) {
    this.exec = exec;
    this.migration = m;
    const o = exec.opts;
    const alive = (id: NodeId): boolean => id === o.self || o.member(id) !== undefined;
    for (const mv of copyMoves(m.fromTable, m.targetTable)) {
      if (sourceOf(mv.from, alive) !== o.self) continue;
      // a repair runs after the table changed again: only receivers that still hold p need it
      const receivers = mv.receivers.filter((id) => alive(id) && (m.kind !== 'repair' || (inForce.assignments[mv.partition]?.includes(id) ?? false)));
      let keys = 0;
      for (const g of o.local.groups.values()) keys += g.store.partitionKeyCount(mv.partition);
      const done = receivers.length === 0 || keys === 0;
      this.parts.set(mv.partition, {
        partition: mv.partition,
        targets: receivers,
        // an empty partition needs no transfer: writes from now on reach receivers directly
        state: done ? 'done' : 'pending',
        entriesDone: 0,
        entriesTotal: keys * receivers.length,
        bytesDone: 0,
        bytesTotal: 0,
        verified: done,
        pendingReceivers: new Set(done ? [] : receivers),
      });
    }
  }

  abort(): void {
    this.aborted = true;
  }

  isAborted(): boolean {
    return this.aborted;
  }

  progress(): NodeProgress {
    const now = this.exec.now();
    const secs = this.started === 0 ? 0 : (now - this.started) / 1000;
    return {
      node: this.exec.opts.self,
      at: now,
      rate: secs > 0 ? this.sent / secs : 0,
      partitions: [...this.parts.values()].map(({ pendingReceivers: _p, ...rest }) => ({ ...rest, targets: [...rest.targets] })),
    };
  }

  async run(): Promise<void> {
    this.started = this.exec.now();
    const o = this.exec.opts;
    try {
      for (let round = 0; !this.aborted; round++) {
        const units = this.units();
        if (units.length === 0) break;
        if (round > 0) await sleep(Math.min(5000, 500 * round));
        if (this.aborted) break;
        const queue = [...units];
        const workers = Array.from({ length: Math.max(1, this.exec.opts.settings().concurrency) }, async () => {
          for (let u = queue.shift(); u !== undefined && !this.aborted; u = queue.shift()) {
            try {
              await this.copyUnit(u);
            } catch (e) {
              if (e instanceof Aborted) return;
              o.logger.warn({ migration: this.migration.id, to: u.receiver, partitions: u.partitions.length, err: (e as Error).message }, 'migration unit failed; will retry');
              for (const p of u.partitions) {
                const st = this.parts.get(p);
                if (st !== undefined && st.state !== 'done') st.state = 'failed';
              }
              o.onProgress();
            }
          }
        });
        await Promise.all(workers);
      }
    } finally {
      this.finished = true;
      o.onProgress();
    }
  }

  /** Remaining work, per receiver, packed into runs of about one batch of entries. */
  private units(): Unit[] {
    const byReceiver = new Map<NodeId, number[]>();
    for (const st of this.parts.values()) {
      for (const r of st.pendingReceivers) {
        let list = byReceiver.get(r);
        if (list === undefined) byReceiver.set(r, (list = []));
        list.push(st.partition);
      }
    }
    const { batchSize } = this.exec.opts.settings();
    const out: Unit[] = [];
    for (const [receiver, ps] of byReceiver) {
      ps.sort((a, b) => a - b);
      const keysOf = (p: number): number => (this.parts.get(p)!.entriesTotal / Math.max(1, this.parts.get(p)!.targets.length)) || 1;
      for (const run of packRuns(ps, keysOf, batchSize)) out.push({ receiver, partitions: run, attempts: 0 });
    }
    return out;
  }

  private async copyUnit(u: Unit): Promise<void> {
    const o = this.exec.opts;
    const member = o.member(u.receiver);
    if (member === undefined) throw new Error(`receiver ${u.receiver} is not a member`);
    for (let attempt = 0; attempt < 3; attempt++) {
      const s = o.settings();
      let batch: WireRecord[] = [];
      let bytes = 0;
      const flush = async (): Promise<void> => {
        if (batch.length === 0) return;
        const body = encodeRecords(batch);
        batch = [];
        bytes = 0;
        await this.send(member.address, `/_jincache/migrate/batch?m=${this.migration.id}`, body);
      };
      for (const p of u.partitions) {
        const st = this.parts.get(p)!;
        st.state = 'copying';
        for (const [name, g] of o.local.groups) {
          for (const [key, e] of g.store.partitionEntries(p)) {
            batch.push({ group: name, key, value: e.value, version: e.version, expiresAt: e.value === null ? 0 : e.expiresAt });
            const size = wireSize(name, key, e.value);
            bytes += size;
            st.entriesDone++;
            st.bytesDone += size;
            if (attempt === 0) st.bytesTotal += size;
            this.sent++;
            if (batch.length >= s.batchSize || bytes >= s.batchBytes) await flush();
          }
        }
      }
      await flush();
      for (const p of u.partitions) this.parts.get(p)!.state = 'verifying';
      const theirs = await this.checksums(member.address, u.partitions);
      const mismatched: number[] = [];
      u.partitions.forEach((p, i) => {
        const t = theirs[i];
        if (t === undefined || !sameChecksum(localChecksum(o.local, p), t)) mismatched.push(p);
      });
      for (const p of u.partitions) {
        if (mismatched.includes(p) && attempt < 2) continue;
        const st = this.parts.get(p)!;
        st.pendingReceivers.delete(u.receiver);
        if (mismatched.includes(p)) {
          // writes racing the check can keep sums apart; the data itself is merged by LWW
          o.logger.warn({ migration: this.migration.id, partition: p, to: u.receiver }, 'checksum still differs after 3 copies; accepting');
          st.verified = false;
        } else if (st.pendingReceivers.size === 0 && st.state !== 'failed') {
          st.verified = true;
        }
        if (st.pendingReceivers.size === 0) {
          st.state = 'done';
          st.entriesDone = Math.max(st.entriesDone, st.entriesTotal);
          st.entriesTotal = Math.max(st.entriesDone, st.entriesTotal);
          st.bytesTotal = Math.max(st.bytesTotal, st.bytesDone);
        }
      }
      o.onProgress();
      if (mismatched.length === 0 || attempt === 2) return;
      u.partitions = mismatched;
    }
  }

  private async checksums(address: string, ps: number[]): Promise<(Checksum | undefined)[]> {
    const res = await this.request(address, { method: 'GET', path: `/_jincache/migrate/checksum?p=${ps.join(',')}` });
    const body = JSON.parse(res.toString('utf8')) as { sums: [number, number][] };
    return ps.map((_, i) => {
      const s = body.sums[i];
      return s === undefined ? undefined : { count: s[0], sum: s[1] };
    });
  }

  private async send(address: string, path: string, body: Buffer): Promise<void> {
    await this.request(address, { method: 'POST', path, body });
    const { bandwidth } = this.exec.opts.settings();
    if (bandwidth !== undefined && bandwidth > 0) {
      // pace: this batch may not finish before the previous ones plus its own share of the cap
      const now = this.exec.now();
      this.pacedUntil = Math.max(this.pacedUntil, now) + (body.length / bandwidth) * 1000;
      if (this.pacedUntil > now) await sleep(this.pacedUntil - now);
    }
    // let serving traffic and heartbeats run between batches
    await nextTurn();
  }

  /** One peer request with bounded retries (100 ms doubling, 5 tries); stops at once when aborted. */
  private async request(address: string, req: { method: 'GET' | 'POST'; path: string; body?: Buffer }): Promise<Buffer> {
    let last: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (this.aborted) throw new Aborted('migration stopped');
      try {
        const res = await this.exec.opts.peers.request(address, { ...req, deadline: Date.now() + this.exec.opts.settings().requestTimeoutMs });
        if (res.status >= 200 && res.status < 300) return res.body;
        last = new Error(`${req.method} ${req.path.split('?')[0]} answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`);
        if (res.status >= 400 && res.status < 500 && res.status !== 404) break;
      } catch (e) {
        last = e;
      }
      await sleep(100 * 2 ** attempt);
    }
    if (this.aborted) throw new Aborted('migration stopped');
    throw last instanceof Error ? last : new Error(String(last));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref?.());
}

export class Executor {
  readonly opts: ExecutorOptions;
  private readonly jobs = new Map<string, Job>();

  constructor(opts: ExecutorOptions) {
    this.opts = opts;
  }

  now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /**
   * Bring the jobs in line with the stored migrations and the table in force: start a job for
   * each running migration this node has not started, stop the ones that ended, were cancelled,
   * or whose planned-against version is no longer in force (a newer plan takes over).
   */
  sync(migrations: readonly Migration[], inForce: PartitionTable): void {
    const wanted = new Map<string, Migration>();
    for (const m of migrations) {
      if (m.state !== 'running') continue;
      if (m.kind !== 'repair' && inForce.version !== m.fromVersion) continue;
      wanted.set(m.id, m);
    }
    for (const [id, job] of this.jobs) {
      if (!wanted.has(id)) {
        job.abort();
        this.jobs.delete(id);
      }
    }
    for (const [id, m] of wanted) {
      if (this.jobs.has(id)) continue;
      const job = new Job(this, m, inForce);
      this.jobs.set(id, job);
      if (job.parts.size > 0) this.opts.logger.info({ migration: id, kind: m.kind, partitions: job.parts.size }, 'migration: sending partitions');
      void job.run();
    }
  }

  /** Jobs this node runs now (for progress reports). */
  active(): { id: string; progress: NodeProgress; finished: boolean }[] {
    return [...this.jobs.values()].map((j) => ({ id: j.migration.id, progress: j.progress(), finished: j.finished }));
  }

  stop(): void {
    for (const j of this.jobs.values()) j.abort();
    this.jobs.clear();
  }
}
