/**
 * A clock that reads the system time at most about once a millisecond.
 *
 * Request deadlines need the time once per command, and on some machines a clock read is a
 * system call (on the VM this was tuned on, Date.now() cost ~280 ns: a sixth of a pipelined
 * GET). A deadline of seconds does not need more than millisecond resolution, so while commands
 * flow the time is refreshed by a 1 ms timer and read from a field. The timer stops itself once
 * a tick passes with no reads, so an idle server does not wake up for it; the next read after
 * that reads the real clock and restarts it.
 *
 * The value can lag behind the real time by one event-loop turn plus a millisecond (timers run
 * between turns): a deadline computed from it is that much earlier, never later.
 */
import { systemClock, type Clock } from '../../core/types.ts';

const TICK_MS = 1;

export class CoarseClock implements Clock {
  private readonly source: Clock;
  private cached = 0;
  /** Set by every read, cleared by every tick: a tick that finds it clear stops the timer. */
  private used = false;
  private timer: NodeJS.Timeout | null = null;

  /** `source`: the clock sampled. Default the system clock. */
  constructor(source: Clock = systemClock) {
    this.source = source;
  }

  now(): number {
    if (this.timer === null) {
      this.cached = this.source.now();
      this.timer = setInterval(this.tick, TICK_MS);
      // Never keeps the process alive.
      this.timer.unref();
    }
    this.used = true;
    return this.cached;
  }

  /** Stop the timer (the next read restarts it). */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private readonly tick = (): void => {
    if (!this.used) {
      this.stop();
      return;
    }
    this.used = false;
    this.cached = this.source.now();
  };
}
