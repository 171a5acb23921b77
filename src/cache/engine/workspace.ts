/**
 * What a command runs against: the view of one slot's live entries with the changes made so far
 * laid over it (by earlier commands of a transaction, or earlier in the same command), and the
 * context (now, the value limit, randomness, the client's protocol).
 *
 * Commands read with get() and write with put()/remove(); the workspace keeps one change per key,
 * its latest, in the order keys were first changed. A transaction marks the workspace before each
 * command and rolls back to the mark when the command answers an error, so a failed command
 * never leaves half its writes (Redis's commands check everything before they write; this makes
 * that a property of the engine rather than of each command).
 */
import type { EngineChange, EngineContext, EngineEntry, EngineType, EngineView } from './types.ts';

/** A key the workspace has changed: the change and the entry it reads as (null: deleted). */
interface Slot {
  change: EngineChange;
  entry: EngineEntry | null;
}

export class Workspace {
  readonly now: number;
  readonly maxValueBytes: number;
  readonly random: () => number;
  readonly protocol: 2 | 3;
  private readonly view: EngineView;
  /** One per changed key, in the order keys were first changed. */
  private readonly slots: Slot[] = [];
  /** Key → index in `slots`; built once a second key changes (one-key commands never need it). */
  private index: Map<string, number> | null = null;
  /** While a transaction runs: how to undo each write (slot index, what it held before; null: it was new). */
  private journal: { at: number; before: Slot | null }[] | null = null;

  constructor(view: EngineView, ctx: EngineContext) {
    this.view = view;
    this.now = ctx.now;
    this.maxValueBytes = ctx.maxValueBytes;
    this.random = ctx.random ?? Math.random;
    this.protocol = ctx.protocol ?? 2;
  }

  /** The live entry of `key`: changed here, or the view's when not expired at `now`. */
  get(key: string): EngineEntry | undefined {
    const i = this.slotOf(key);
    if (i >= 0) return this.slots[i]!.entry ?? undefined;
    const e = this.view.get(key);
    if (e === undefined || (e.expiresAt !== 0 && e.expiresAt <= this.now)) return undefined;
    return e;
  }

  /** Write `key`; an expiry at or before `now` deletes it instead (as the store would). */
  put(key: string, type: EngineType, value: Buffer, expiresAt: number): void {
    if (expiresAt !== 0 && expiresAt <= this.now) {
      this.remove(key);
      return;
    }
    this.record(key, { change: { key, type, value, expiresAt }, entry: { type, value, expiresAt, version: 0 } });
  }

  /** Delete `key` (whether or not it exists: callers check, so a delete is recorded only when needed). */
  remove(key: string): void {
    this.record(key, { change: { key, type: 0, value: null, expiresAt: 0 }, entry: null });
  }

  /** The changes so far, one per key. */
  changes(): EngineChange[] {
    const out = new Array<EngineChange>(this.slots.length);
    for (let i = 0; i < this.slots.length; i++) out[i] = this.slots[i]!.change;
    return out;
  }

  /** Start recording undo information (a transaction). */
  startJournal(): void {
    this.journal = [];
  }

  /** A point to roll back to. */
  mark(): number {
    return this.journal?.length ?? 0;
  }

  /** Undo every write since `mark`. */
  rollback(mark: number): void {
    const j = this.journal;
    if (j === null) throw new Error('Workspace.rollback needs startJournal() first');
    while (j.length > mark) {
      const { at, before } = j.pop()!;
      if (before !== null) {
        this.slots[at] = before;
      } else {
        // A slot new since the mark is always the last one: slots are only appended.
        const gone = this.slots.pop()!;
        this.index?.delete(gone.change.key);
      }
    }
  }

  private slotOf(key: string): number {
    const n = this.slots.length;
    if (n === 0) return -1;
    if (this.index !== null) return this.index.get(key) ?? -1;
    return this.slots[0]!.change.key === key ? 0 : -1;
  }

  private record(key: string, slot: Slot): void {
    const i = this.slotOf(key);
    if (i >= 0) {
      this.journal?.push({ at: i, before: this.slots[i]! });
      this.slots[i] = slot;
      return;
    }
    const at = this.slots.length;
    this.journal?.push({ at, before: null });
    this.slots.push(slot);
    if (this.index !== null) {
      this.index.set(key, at);
    } else if (at === 1) {
      this.index = new Map([[this.slots[0]!.change.key, 0], [key, 1]]);
    }
  }
}
