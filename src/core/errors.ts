/**
 * Errors that cross component boundaries. Each carries a stable `code` and an HTTP status so the
 * front ends (HTTP, RESP) map them without looking at message text.
 */

export type JincacheErrorCode =
  | 'BAD_REQUEST'
  | 'KEY_TOO_LARGE'
  | 'VALUE_TOO_LARGE'
  | 'BAD_TTL'
  | 'UNKNOWN_GROUP'
  | 'NOT_FOUND'
  | 'UNAUTHORIZED'
  /** Authenticated, but the user lacks the permission. */
  | 'FORBIDDEN'
  | 'TIMEOUT'
  | 'PEER_UNAVAILABLE'
  | 'NO_OWNER'
  /** The node refused without acting (it is recovering after a pause): safe to send elsewhere. */
  | 'NOT_SERVING'
  | 'LOADER_FAILED'
  | 'NOT_IMPLEMENTED'
  | 'INTERNAL';

const STATUS: Record<JincacheErrorCode, number> = {
  BAD_REQUEST: 400,
  KEY_TOO_LARGE: 400,
  VALUE_TOO_LARGE: 413,
  BAD_TTL: 400,
  UNKNOWN_GROUP: 404,
  NOT_FOUND: 404,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  TIMEOUT: 504,
  PEER_UNAVAILABLE: 503,
  NO_OWNER: 503,
  NOT_SERVING: 503,
  LOADER_FAILED: 502,
  NOT_IMPLEMENTED: 501,
  INTERNAL: 500,
};

export class JincacheError extends Error {
  readonly code: JincacheErrorCode;
  readonly status: number;
  /** True when the same request may succeed if sent again (to the same or another node). */
  readonly retryable: boolean;

  constructor(code: JincacheErrorCode, message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'JincacheError';
    this.code = code;
    this.status = STATUS[code];
    this.retryable = opts.retryable ?? (code === 'TIMEOUT' || code === 'PEER_UNAVAILABLE' || code === 'NO_OWNER' || code === 'NOT_SERVING');
  }

  /** The SPEC §3 error body. */
  toJSON(): { error: string; message: string } {
    return { error: this.code.toLowerCase(), message: this.message };
  }
}

/** True when `code` is one of the known error codes (e.g. read back from a peer's JSON body). */
export function isErrorCode(code: string): code is JincacheErrorCode {
  return Object.hasOwn(STATUS, code);
}

export function isJincacheError(e: unknown): e is JincacheError {
  return e instanceof JincacheError;
}

/** Convert anything thrown into a JincacheError once, at a boundary. */
export function toJincacheError(e: unknown): JincacheError {
  if (isJincacheError(e)) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new JincacheError('INTERNAL', message, { cause: e });
}
