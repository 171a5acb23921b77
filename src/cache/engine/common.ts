/**
 * What every command module shares: the command definition, Redis 7's common error replies
 * (their exact texts, as redis-server 7.0 sends them) and argument helpers.
 */
import { error, integer, type Reply } from '../reply.ts';
import type { Workspace } from './workspace.ts';

export interface EngineCommand {
  /**
   * Redis's arity: n > 0 exactly n arguments (the name included), -n at least n. Checked before
   * `run` is called.
   */
  readonly arity: number;
  /** Only reads (may be served by a backup, WATCH-free). */
  readonly readOnly: boolean;
  run(args: readonly Buffer[], ws: Workspace): Reply;
}

export const WRONGTYPE = error('WRONGTYPE Operation against a key holding the wrong kind of value');
export const NOT_INTEGER = error('ERR value is not an integer or out of range');
export const NOT_FLOAT = error('ERR value is not a valid float');
export const SYNTAX = error('ERR syntax error');
export const OVERFLOW = error('ERR increment or decrement would overflow');
export const NAN_OR_INFINITY = error('ERR increment would produce NaN or Infinity');
/** Redis's checkStringLength text, used for any string over cache.max_value_bytes. */
export const STRING_TOO_BIG = error('ERR string exceeds maximum allowed size (proto-max-bulk-len)');
/** jincache's own: Redis has no size limit for a hash as a whole. */
export const HASH_TOO_BIG = error('ERR hash exceeds maximum allowed size (max_value_bytes)');
export const ZERO = integer(0);
export const ONE = integer(1);
export const MINUS_ONE = integer(-1);
export const MINUS_TWO = integer(-2);

export function wrongArity(name: string): Reply {
  return error(`ERR wrong number of arguments for '${name}' command`);
}

export function invalidExpireTime(name: string): Reply {
  return error(`ERR invalid expire time in '${name}' command`);
}

/** A key argument as the byte string keys are. */
export function keyOf(arg: Buffer): string {
  return arg.toString('latin1');
}

/**
 * An option argument as Redis's strcasecmp sees it: a C string (up to the first NUL), in lower
 * case (ASCII folding only, as the C locale does).
 */
export function optionOf(arg: Buffer): string {
  const nul = arg.indexOf(0);
  // Latin-1 letters beyond ASCII fold too, but none folds into ASCII, so no option is matched wrongly.
  return (nul < 0 ? arg : arg.subarray(0, nul)).toString('latin1').toLowerCase();
}

/** The bytes of `arg` up to its first NUL, as a byte string: what C's "%s" prints of it. */
export function cString(arg: Buffer): string {
  const nul = arg.indexOf(0);
  return (nul < 0 ? arg : arg.subarray(0, nul)).toString('latin1');
}

/**
 * An error whose text quotes arguments, as Redis's addReplyErrorFormat sends it: `text` is a
 * byte string, CR and LF at its ends are cut (inside, the writer turns them into spaces), and it
 * goes out as the same bytes when they are UTF-8 (replies are strings written as UTF-8; other
 * bytes cannot be sent as they are, a known difference).
 */
export function formattedError(text: string): Reply {
  let start = 0;
  let end = text.length;
  while (start < end && (text.charCodeAt(start) === 13 || text.charCodeAt(start) === 10)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 13 || text.charCodeAt(end - 1) === 10)) end--;
  return error(`ERR ${Buffer.from(text.slice(start, end), 'latin1').toString('utf8')}`);
}

/** Tells a parse result from the error reply a parser answers instead. */
export function isReply(v: unknown): v is Reply {
  return typeof v === 'object' && v !== null && 'type' in v;
}
