/**
 * Errors of the placement core. One class with a stable `code`, so callers route on the code and
 * never on message text; messages name the offending value.
 */

export type PlacementErrorCode =
  /** A weight that is not a finite number > 0. */
  | 'INVALID_WEIGHT'
  /** An option out of range (partition count, replication factor, vnodes per weight). */
  | 'INVALID_OPTION'
  /** Two members with the same id, or adding a node that is already a member. */
  | 'DUPLICATE_NODE'
  /** Removing or re-weighting a node that is not a member. */
  | 'UNKNOWN_NODE'
  /** A partition number outside 0..partitionCount-1. */
  | 'BAD_PARTITION'
  /** Two tables that cannot be compared (different partition counts). */
  | 'TABLE_MISMATCH'
  /** decodeTable() input that is not a well-formed encoded table. */
  | 'BAD_TABLE'
  /** A key that is not a byte string (a char code above 255: nobody converted it to bytes). */
  | 'INVALID_KEY';

// Symbol.for so the guard still works if two copies of this module are loaded.
const BRAND = Symbol.for('jincache.PlacementError');

export class PlacementError extends Error {
  readonly code: PlacementErrorCode;
  readonly [BRAND] = true;

  constructor(code: PlacementErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'PlacementError';
    this.code = code;
  }
}

export function isPlacementError(e: unknown): e is PlacementError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

/** Validate a placement weight: finite and > 0. `what` names the node in the message. */
export function checkWeight(weight: unknown, what: string): number {
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
    throw new PlacementError(
      'INVALID_WEIGHT',
      `weight of ${what} must be a finite number > 0. Got: ${String(weight)}`,
    );
  }
  return weight;
}
