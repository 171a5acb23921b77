/**
 * Reading peer failures once, at the boundary: which kind of failure a PeerClient error was
 * (by its JincacheError code and the socket error code of its cause, never by message text).
 */
import { isJincacheError } from '../../core/errors.ts';
import type { FailureKind } from './classifier.ts';

const REFUSED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const RESET = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

export function failureKind(e: unknown): FailureKind {
  if (!isJincacheError(e)) return 'other';
  if (e.code === 'TIMEOUT') return 'timeout';
  const code = (e.cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') {
    if (REFUSED.has(code)) return 'refused';
    if (RESET.has(code)) return 'reset';
  }
  return 'other';
}

/** The request surely never reached the peer's application: safe to send elsewhere even when not idempotent. */
export function notDelivered(e: unknown): boolean {
  return failureKind(e) === 'refused' || (isJincacheError(e) && e.code === 'NOT_SERVING') || (isJincacheError(e) && e.cause instanceof Error && e.cause.name === 'BrokenCircuitError');
}
