/**
 * The one error type the client throws. Server errors keep the code the node sent in its JSON
 * body (`{"error": "unknown_group", ...}`) and the HTTP status; failures that never got an HTTP
 * answer get a client-side code and no status. Callers route on `code`, never on the message.
 */

/**
 * Codes the client produces itself (no HTTP answer, or an answer it could not use):
 * - `unavailable`: no node could be reached (connection refused, reset, connect timeout).
 * - `timeout`: the call's `timeoutMs` budget ran out.
 * - `bad_response`: a node answered something that is not the documented API.
 * - `closed`: the client was closed.
 */
export type ClientSideCode = 'unavailable' | 'timeout' | 'bad_response' | 'closed';

/**
 * Codes a node sends (the `error` field of its JSON error bodies, lower-case). Listed for editor completion; any other
 * string a newer server sends is passed through unchanged.
 */
export type ServerCode =
  | 'bad_request'
  | 'key_too_large'
  | 'value_too_large'
  | 'bad_ttl'
  | 'unknown_group'
  | 'not_found'
  | 'unauthorized'
  | 'timeout'
  | 'peer_unavailable'
  | 'no_owner'
  | 'loader_failed'
  | 'not_implemented'
  | 'internal';

// `string & {}` keeps the literal members visible to completion while accepting any string
export type JincacheClientErrorCode = ClientSideCode | ServerCode | (string & {});

export class JincacheClientError extends Error {
  /** The server's `error` field, or a {@link ClientSideCode}. */
  readonly code: JincacheClientErrorCode;
  /** HTTP status of the answer, or undefined when no node answered. */
  readonly status: number | undefined;
  /**
   * True when sending the same call again later may succeed: no node reachable, a timeout, or a
   * 503/504 from the cluster (an owner that is down or busy).
   */
  readonly retryable: boolean;

  constructor(code: JincacheClientErrorCode, message: string, opts: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'JincacheClientError';
    this.code = code;
    this.status = opts.status;
    this.retryable = code === 'unavailable' || code === 'timeout' || opts.status === 503 || opts.status === 504;
  }
}

/** Type guard for errors thrown by {@link JincacheClient} calls. */
export function isJincacheClientError(e: unknown): e is JincacheClientError {
  return e instanceof JincacheClientError;
}
