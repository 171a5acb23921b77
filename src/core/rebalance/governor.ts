/**
 * When to rebalance: hysteresis and a rate limit around imbalance detection, so one noisy window
 * or the traffic shift a rebalance itself causes never starts another one.
 *
 * The leader calls check() every `rebalance.interval` with the latest reports:
 *   - an idle cluster (mean score below `idleScore`) is never rebalanced: at 1% load, ±20% is
 *     noise, and moving data would cost more than it saves;
 *   - imbalance must be seen on `sustain` consecutive checks (default 3);
 *   - at most one rebalance per `minIntervalMs` (config `rebalance.min_interval`), counted from
 *     the last rebalanced() call. The streak keeps counting during the cooldown, so a still
 *     imbalanced cluster is rebalanced as soon as the cooldown ends.
 * rebalanced() resets the streak: loads measured over a window that straddles the table change
 * describe neither placement.
 *
 * Pure: state plus an injected clock, no timers.
 */
import type { Clock, NodeId } from '../types.ts';
import { systemClock } from '../types.ts';
import { detectImbalance } from './imbalance.ts';
import { RebalanceError } from './errors.ts';

export interface GovernorOptions {
  /** Allowed distance from the mean score, as a fraction of it; a function is read at every check (live config). @default 0.2 (config `rebalance.threshold`) */
  threshold?: number | (() => number);
  /** Consecutive imbalanced checks before acting. @default 3 */
  sustain?: number;
  /** Least time between two rebalances, ms. @default 300000 (config `rebalance.min_interval` 5m) */
  minIntervalMs?: number;
  /** Below this mean score the cluster counts as idle and is left alone. @default 0.02 */
  idleScore?: number;
  /** Source of time. @default systemClock */
  clock?: Clock;
}

/** The outcome of one check, as a discriminated union on `action`. */
export type GovernorDecision =
  | { action: 'none'; reason: 'balanced' | 'idle'; mean: number }
  | { action: 'wait'; reason: 'sustaining'; streak: number; needed: number; imbalanced: NodeId[]; mean: number }
  | { action: 'wait'; reason: 'cooldown'; until: number; streak: number; imbalanced: NodeId[]; mean: number }
  | { action: 'rebalance'; streak: number; imbalanced: NodeId[]; mean: number };

export class RebalanceGovernor {
  private readonly thresholdOf: () => number;
  readonly sustain: number;
  readonly minIntervalMs: number;
  readonly idleScore: number;
  private readonly clock: Clock;
  private streak = 0;
  private lastAt = Number.NEGATIVE_INFINITY;

  constructor(opts: GovernorOptions = {}) {
    const t = opts.threshold ?? 0.2;
    this.thresholdOf = typeof t === 'function' ? t : () => t;
    this.sustain = opts.sustain ?? 3;
    this.minIntervalMs = opts.minIntervalMs ?? 300_000;
    this.idleScore = opts.idleScore ?? 0.02;
    this.clock = opts.clock ?? systemClock;
    if (!(this.threshold >= 0 && this.threshold <= 10)) {
      throw new RebalanceError('INVALID_OPTION', `threshold must be a number from 0 to 10. Got: ${String(this.threshold)}`);
    }
    if (!Number.isInteger(this.sustain) || this.sustain < 1) {
      throw new RebalanceError('INVALID_OPTION', `sustain must be an integer >= 1. Got: ${String(this.sustain)}`);
    }
    if (!(this.minIntervalMs >= 0)) {
      throw new RebalanceError('INVALID_OPTION', `minIntervalMs must be a number >= 0. Got: ${String(this.minIntervalMs)}`);
    }
    if (!(this.idleScore >= 0)) {
      throw new RebalanceError('INVALID_OPTION', `idleScore must be a number >= 0. Got: ${String(this.idleScore)}`);
    }
  }

  /** The threshold in force. */
  get threshold(): number {
    return this.thresholdOf();
  }

  /** One periodic check over every member's report. */
  check(reports: readonly { readonly id: NodeId; readonly score: number }[]): GovernorDecision {
    let sum = 0;
    for (const r of reports) sum += r.score;
    const mean = reports.length === 0 ? 0 : sum / reports.length;
    if (!(mean >= this.idleScore) || reports.length < 2) {
      this.streak = 0;
      return { action: 'none', reason: 'idle', mean };
    }
    const off = detectImbalance(reports, this.threshold);
    if (off.length === 0) {
      this.streak = 0;
      return { action: 'none', reason: 'balanced', mean };
    }
    this.streak++;
    const imbalanced = off.map((r) => r.id);
    if (this.streak < this.sustain) {
      return { action: 'wait', reason: 'sustaining', streak: this.streak, needed: this.sustain, imbalanced, mean };
    }
    const until = this.lastAt + this.minIntervalMs;
    if (this.clock.now() < until) return { action: 'wait', reason: 'cooldown', until, streak: this.streak, imbalanced, mean };
    return { action: 'rebalance', streak: this.streak, imbalanced, mean };
  }

  /** Record that a rebalance was applied (not a dry run): starts the cooldown, resets the streak. */
  rebalanced(at: number = this.clock.now()): void {
    this.lastAt = at;
    this.streak = 0;
  }

  /** Time of the last rebalanced(), -Infinity before the first. */
  get lastRebalanceAt(): number {
    return this.lastAt;
  }
}
