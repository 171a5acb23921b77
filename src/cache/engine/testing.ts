/**
 * An in-memory slot for tests and tools: a Map of entries behind the EngineView seam, changes
 * applied with increasing versions, and a helper that runs a command by its text arguments.
 * What the coordinator does with a real store, minus replication.
 */
import type { Reply } from '../reply.ts';
import { execute, executeTransaction } from './index.ts';
import type { EngineChange, EngineContext, EngineEntry, EngineOutcome, EngineView, Watched } from './types.ts';

export class MapView implements EngineView {
  readonly entries = new Map<string, EngineEntry>();
  /** The version of each key's last write, deletes included (tombstones, never forgotten here). */
  readonly versions = new Map<string, number>();
  /** The version the next applied change gets. */
  nextVersion = 1;
  /** The clock expiry is judged by (the view hides expired entries, as the store does). */
  now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  get(key: string): EngineEntry | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt !== 0 && e.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  version(key: string): number {
    return this.versions.get(key) ?? 0;
  }

  apply(changes: readonly EngineChange[]): void {
    for (const c of changes) {
      const version = this.nextVersion++;
      this.versions.set(c.key, version);
      if (c.value === null) this.entries.delete(c.key);
      else this.entries.set(c.key, { type: c.type, value: c.value, expiresAt: c.expiresAt, version });
    }
  }
}

/** Arguments from byte strings (latin1: one char a byte). */
export function argv(...args: string[]): Buffer[] {
  return args.map((a) => Buffer.from(a, 'latin1'));
}

/** A slot and a context together: run commands and apply their changes, as a coordinator would. */
export class Slot {
  readonly view: MapView;
  ctx: EngineContext;

  constructor(ctx: EngineContext) {
    this.ctx = ctx;
    this.view = new MapView(() => this.ctx.now);
  }

  run(...args: string[]): Reply {
    return this.outcome(...args).reply;
  }

  outcome(...args: string[]): EngineOutcome {
    const out = execute(argv(...args), this.view, this.ctx);
    this.view.apply(out.changes);
    return out;
  }

  transaction(commands: readonly (readonly string[])[], watched?: readonly Watched[]): EngineOutcome {
    const out = executeTransaction(commands.map((c) => argv(...c)), this.view, this.ctx, watched);
    this.view.apply(out.changes);
    return out;
  }
}
