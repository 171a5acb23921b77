/**
 * Errors of the rebalance core: one class with a stable `code`; messages name the bad value.
 */

export type RebalanceErrorCode =
  /** An option out of range (threshold, move budget, weight bounds...). */
  | 'INVALID_OPTION'
  /** A strategy name the rebalancer does not know. */
  | 'UNKNOWN_STRATEGY';

// Symbol.for so the guard still works if two copies of this module are loaded.
const BRAND = Symbol.for('jincache.RebalanceError');

export class RebalanceError extends Error {
  readonly code: RebalanceErrorCode;
  readonly [BRAND] = true;

  constructor(code: RebalanceErrorCode, message: string) {
    super(message);
    this.name = 'RebalanceError';
    this.code = code;
  }
}

export function isRebalanceError(e: unknown): e is RebalanceError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}
