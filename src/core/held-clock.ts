/**
 * A clock whose reading can be held for a burst of synchronous work. Outside a hold, now() is
 * the source's now(). Between hold() and release(), the first now() reads the source and every
 * later one returns that same reading, until refresh() or release(): one clock read for a batch
 * of commands instead of one per use (a RESP SET read the clock seven times: the door's deadline
 * check, the trust check, the write's decision, its version, the store's expiry checks).
 *
 * Redis does the same: it reads the time once per command (`commandTimeSnapshot`) and every
 * expiry decision of that command uses it. A holder must release before it awaits anything: a
 * reading held across an await would leak into whatever runs meanwhile (timers, peers). Holds
 * nest: the reading is dropped when the outermost hold is released.
 */
import type { Clock } from './types.ts';

export class HeldClock implements Clock {
  private readonly source: Clock;
  /** Holds not yet released; > 0 while held. */
  private depth = 0;
  /** The reading handed out while held; valid while `read` is true. */
  private at = 0;
  private read = false;

  constructor(source: Clock) {
    this.source = source;
  }

  now(): number {
    if (this.depth === 0) return this.source.now();
    if (!this.read) {
      this.at = this.source.now();
      this.read = true;
    }
    return this.at;
  }

  /** From now until the matching release(), now() answers one reading. */
  hold(): void {
    this.depth++;
  }

  /** While held: the next now() reads the source again (a long batch stays within its bound). */
  refresh(): void {
    this.read = false;
  }

  release(): void {
    if (this.depth === 0) throw new Error('HeldClock.release() without a hold()');
    if (--this.depth === 0) this.read = false;
  }

  /** Whether a hold is in effect. */
  get held(): boolean {
    return this.depth > 0;
  }
}
