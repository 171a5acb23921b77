/**
 * Stop signals of the long-running commands (`serve`, `cluster`): the first SIGINT or SIGTERM
 * starts a graceful stop (drain, leave, exit), a later one forces an immediate exit.
 *
 * Why copies arriving together count as one: a single Ctrl-C usually reaches a node more than
 * once. The terminal sends SIGINT to the whole foreground process group, and a parent in that
 * group that forwards signals to its child sends it again a moment later: bin/jincache.js
 * re-running itself on the pinned Node, npm running a script (`npm start`), `jincache cluster`
 * stopping its nodes. Taking that copy as a second Ctrl-C would kill the node in the middle of
 * its drain, which is what `process.once('SIGINT', ...)` used to do. So signals within
 * SAME_SIGNAL_MS of the first are the same request; a person pressing Ctrl-C again to stop at
 * once does so later than that.
 */
import { constants } from 'node:os';

/** Signals closer together than this (ms) are one stop request. Forwarded copies arrive within a few ms. */
export const SAME_SIGNAL_MS = 1000;

export type StopSignal = 'SIGINT' | 'SIGTERM';
export const STOP_SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM'];

/** What a stop signal means, given the ones before it. */
export type StopDecision = 'graceful' | 'same' | 'force';

type State = { kind: 'running' } | { kind: 'stopping'; since: number } | { kind: 'forced' };

/** The decision as a pure function of the signal times: `next(now)` for each signal in turn. */
export class StopRequests {
  private state: State = { kind: 'running' };

  next(now: number): StopDecision {
    const s = this.state;
    switch (s.kind) {
      case 'running':
        this.state = { kind: 'stopping', since: now };
        return 'graceful';
      case 'stopping':
        if (now - s.since < SAME_SIGNAL_MS) return 'same';
        this.state = { kind: 'forced' };
        return 'force';
      case 'forced':
        return 'same';
      default:
        throw new Error(`impossible stop state ${JSON.stringify(s satisfies never)}`);
    }
  }
}

export interface StopHandlers {
  /** First signal: stop gracefully. */
  graceful(signal: StopSignal): void;
  /** A signal at least SAME_SIGNAL_MS after the first: stop now. */
  force(signal: StopSignal): void;
}

/**
 * Listen for SIGINT and SIGTERM for the rest of the process's life (a listener stays installed,
 * so a copy never falls through to Node's default action, which kills the process). Returns a
 * disposer that removes the listeners.
 */
export function onStopSignals(handlers: StopHandlers, now: () => number = () => performance.now()): () => void {
  const requests = new StopRequests();
  const listeners = STOP_SIGNALS.map((signal) => {
    const listener = (): void => {
      const decision = requests.next(now());
      if (decision === 'graceful') handlers.graceful(signal);
      else if (decision === 'force') handlers.force(signal);
    };
    process.on(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    for (const [signal, listener] of listeners) process.off(signal, listener);
  };
}

/** The shell's exit status of a process killed by `signal`: 128 + its number (130 for SIGINT). */
export function signalExitCode(signal: StopSignal): number {
  return 128 + constants.signals[signal];
}
