/**
 * Progress of this node's migration jobs, written to etcd (`/jincache/migrations/{id}`
 * progress) at most once per `intervalMs`, except that a job that just finished reports at once:
 * the leader commits as soon as the last source reports. One write in flight at a time, so two
 * puts of the same key can never land out of order and leave an older progress after the final.
 */
import type { Executor } from './executor.ts';
import type { MigrationStore } from './store.ts';

export class ProgressReporter {
  private readonly executor: Executor;
  private readonly store: MigrationStore;
  private readonly intervalMs: number;
  private readonly logger: { warn(o: object, m: string): void } | undefined;
  private last = 0;
  private timer: NodeJS.Timeout | undefined;
  // the pending timer fires at once (a finished job's report)
  private now = false;
  private writing: Promise<void> = Promise.resolve();
  private readonly reported = new Map<string, string>();
  private stopped = false;

  constructor(opts: { executor: Executor; store: MigrationStore; intervalMs?: number; logger?: { warn(o: object, m: string): void } }) {
    this.executor = opts.executor;
    this.store = opts.store;
    this.intervalMs = opts.intervalMs ?? 500;
    this.logger = opts.logger;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Some job's progress changed. */
  schedule(): void {
    if (this.stopped) return;
    const finishing = this.executor.active().some((j) => j.finished && !this.reported.has(`${j.id}#final`));
    if (this.timer !== undefined) {
      if (!finishing || this.now) return;
      clearTimeout(this.timer);
    }
    this.now = finishing;
    const wait = finishing ? 0 : Math.max(0, this.last + this.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.now = false;
      this.last = Date.now();
      this.writing = this.writing.then(() => this.report()).catch(() => undefined);
    }, wait);
  }

  private async report(): Promise<void> {
    for (const job of this.executor.active()) {
      if (job.progress.partitions.length === 0 && this.reported.has(job.id)) continue;
      // the time and rate change on every call: compare the partition states only
      const sig = JSON.stringify(job.progress.partitions.map((p) => [p.partition, p.state, p.entriesDone]));
      if (this.reported.get(job.id) === sig) continue;
      try {
        await this.store.putProgress(job.id, job.progress);
        this.reported.set(job.id, sig);
        if (job.finished) this.reported.set(`${job.id}#final`, sig);
      } catch (e) {
        this.logger?.warn({ migration: job.id, err: (e as Error).message }, 'progress report failed; will retry');
        this.schedule();
      }
    }
  }
}
