/**
 * Client writes as data: what a front end asks the key's coordinator to do. The coordinator
 * decides each one against the entry it holds, in one synchronous step (so a condition, an
 * increment or a transaction is atomic there), and replicates the record that results. The
 * decision is a pure function of the entry, the operation and the time: `decideWrite`.
 */
import type { StoredEntry } from './store.ts';

/** How a write sets the entry's expiry. */
export type Expiry =
  /** No expiry (a plain SET clears the TTL; the group's ttl_default applies if it has one). */
  | { kind: 'none' }
  /** `ms` after the coordinator applies it (EX, PX, HTTP ?ttl=). */
  | { kind: 'in'; ms: number }
  /** At this absolute time, ms since epoch (EXAT, PXAT, EXPIREAT). */
  | { kind: 'at'; ms: number }
  /** Whatever the entry had (KEEPTTL). */
  | { kind: 'keep' };

export const NO_EXPIRY: Expiry = Object.freeze({ kind: 'none' });

export type WriteOp =
  /** Store a value; `cond`: only if absent (nx) / present (xx). */
  | {
      op: 'set';
      value: Buffer;
      expiry: Expiry;
      cond?: 'nx' | 'xx';
      /**
       * The value's memory is reused once the call returns (a view of a parser's buffer): what
       * keeps the bytes copies them. For synchronous writes (writeLocal) only.
       */
      borrowed?: true;
    }
  /** Remove the key. */
  | { op: 'del' }
  /** Change the expiry of a present key (`expiry.kind` none = PERSIST). */
  | { op: 'expire'; expiry: Expiry };

export interface WriteResult {
  /** False when a condition stopped the write or there was nothing to change. */
  applied: boolean;
  /** A live value existed before the write. */
  existed: boolean;
}

/** The new state of the entry after a write: a value, a delete, or no change. */
export type Decision =
  | { change: 'none'; result: WriteResult }
  | { change: 'value'; value: Buffer; expiresAt: number; result: WriteResult }
  | { change: 'delete'; result: WriteResult };

/**
 * Decide `op` against `live` (the live value held, undefined when absent or expired) at `now`.
 * `ttlDefaultMs`: the group's ttl_default, given to a value stored without an expiry.
 */
/**
 * The four results a write can have, shared and frozen: a write's result is built on every SET,
 * and one fewer object per write is one fewer for the young generation (bench/profile.ts
 * --kind heap: decideWrite was 96 of a SET's 938 bytes).
 */
const RESULTS: readonly (readonly [WriteResult, WriteResult])[] = [
  [Object.freeze({ applied: false, existed: false }), Object.freeze({ applied: false, existed: true })],
  [Object.freeze({ applied: true, existed: false }), Object.freeze({ applied: true, existed: true })],
];
const resultOf = (applied: boolean, existed: boolean): WriteResult => RESULTS[applied ? 1 : 0]![existed ? 1 : 0]!;

/** decideWrite()'s answer for a write that stores a value, which a caller may have it fill (see there). */
export type ValueDecision = Extract<Decision, { change: 'value' }>;

/**
 * With `into`, a SET's decision is written there and returned instead of a new object (the
 * SET's hot path: the decision was 57 of its 434 bytes, bench/profile.ts --kind heap); read it
 * before the next call.
 */
export function decideWrite(live: StoredEntry | undefined, op: WriteOp, now: number, ttlDefaultMs?: number, into?: ValueDecision): Decision {
  const existed = live !== undefined && live.value !== null;
  switch (op.op) {
    case 'set': {
      if ((op.cond === 'nx' && existed) || (op.cond === 'xx' && !existed)) return { change: 'none', result: resultOf(false, existed) };
      const expiresAt = expiryAt(op.expiry, existed ? live.expiresAt : 0, now, ttlDefaultMs);
      if (into === undefined) return { change: 'value', value: op.value, expiresAt, result: resultOf(true, existed) };
      into.value = op.value;
      into.expiresAt = expiresAt;
      into.result = resultOf(true, existed);
      return into;
    }
    case 'del':
      return { change: 'delete', result: resultOf(existed, existed) };
    case 'expire': {
      if (!existed) return { change: 'none', result: resultOf(false, existed) };
      // an expiry in the past (or a TTL <= 0) deletes the key, as in Redis
      const past = op.expiry.kind === 'in' && op.expiry.ms <= 0;
      const expiresAt = past ? now : expiryAt(op.expiry, live.expiresAt, now, undefined);
      if (expiresAt !== 0 && expiresAt <= now) return { change: 'delete', result: resultOf(true, existed) };
      return { change: 'value', value: live.value!, expiresAt, result: resultOf(true, existed) };
    }
    default:
      throw new Error(`unknown write op ${(op as { op: string }).op}`);
  }
}

/**
 * Absolute expiry (0 = never) for `e`, given what the entry had. A relative TTL is rounded up
 * to the next whole ms and never becomes "never".
 */
export function expiryAt(e: Expiry, held: number, now: number, ttlDefaultMs: number | undefined): number {
  switch (e.kind) {
    case 'none':
      return ttlDefaultMs !== undefined && ttlDefaultMs > 0 ? now + Math.ceil(ttlDefaultMs) : 0;
    case 'in':
      return now + Math.max(1, Math.ceil(e.ms));
    case 'at':
      return Math.max(1, Math.ceil(e.ms));
    case 'keep':
      return held;
    default:
      throw new Error(`unknown expiry ${(e as { kind: string }).kind}`);
  }
}
