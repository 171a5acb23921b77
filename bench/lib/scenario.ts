// The contract between bench/run.ts and a scenario module (bench/scenarios/NAME.ts).
//
// A scenario module exports `run(opts: ScenarioOptions): Promise<Figure[]>`, and optionally
// `prepare(opts: ScenarioOptions): Promise<void>` for slow one-time set-up (installing a peer
// from Debian), which runs before and outside the scenario's time budget. run() starts what it
// measures (through procs.ts, so the harness can stop every child by PID even when the scenario
// throws or times out), measures ours and the peer side by side in the same run, and returns
// figures built with figure(). When something it needs does not exist yet (a listener another
// part of the project has not shipped), it throws ScenarioSkipped with the reason instead of
// failing: run.ts reports it as skipped, with the reason, in the table.

import type { Figure } from './figure.ts';

export interface ScenarioOptions {
  /** --quick: shorter runs and one round per side (target: whole suite <= 3 min). */
  quick: boolean;
  /**
   * A/A calibration (--aa): where a scenario supports it, "ours" is a second copy of the peer,
   * so every ratio shows the harness's own noise. Default false. Never written to results.
   */
  aa?: boolean;
  /** Progress lines. Default: silent. */
  log?: (line: string) => void;
  /**
   * Aborted when the scenario overruns its time budget. Check it between steps (throwIfAborted)
   * so an abandoned scenario stops within one step instead of loading the next one's servers.
   */
  signal?: AbortSignal;
}

export type ScenarioRun = (opts: ScenarioOptions) => Promise<Figure[]>;
export type ScenarioPrepare = (opts: ScenarioOptions) => Promise<void>;

export class ScenarioSkipped extends Error {
  readonly code = 'BENCH_SCENARIO_SKIPPED';
  override name = 'ScenarioSkipped';
}

export function isScenarioSkipped(e: unknown): e is ScenarioSkipped {
  return e instanceof ScenarioSkipped;
}
