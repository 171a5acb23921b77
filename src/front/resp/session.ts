/**
 * What every RESP command module shares (commands.ts dispatches; connection.ts, cluster.ts and
 * the data commands in commands.ts each export a table of CommandSpecs): the per-connection
 * Session, the CommandEnv built once per server, the permission check and Redis's common errors.
 */
import type { Clock } from '../../core/types.ts';
import { isJincacheError, toJincacheError } from '../../core/errors.ts';
import { keyFromBytes } from '../../core/keys.ts';
import type { Permission } from '../../config/schema.ts';
import type { Principal } from '../auth.ts';
import { redisErrorOf, type FrontDoor } from '../door.ts';
import { error, simple, type RespReply } from './writer.ts';

/** What the `redis_version` field says; clients only check that it parses. */
export const REDIS_VERSION = '7.0.0-jincache';

/** Per-connection state that commands read or change. */
export interface Session {
  readonly id: number;
  /** The authenticated user; null until AUTH when a password is required. */
  user: Principal | null;
  name: string | null;
  /** Set by QUIT: the server closes the connection after this reply. */
  quit: boolean;
}

/** Everything a command may use. Built once per server; `session` varies per connection. */
export interface CommandEnv {
  readonly door: FrontDoor;
  readonly group: string;
  readonly clock: Clock;
  /** The text of INFO for the requested sections (lower case; empty = default). */
  info(sections: string[]): Promise<string>;
}

/** A command's reply, now or later. */
export type Result = RespReply | Promise<RespReply>;

/**
 * Who may run a command: anyone (`open`: AUTH, HELLO, QUIT, so a client can authenticate), any
 * authenticated user (`user`: connection commands), or a user with the permission (SPEC §7).
 */
export type CommandPermission = 'open' | 'user' | Permission;

/** One command: who may run it, its arity, and its body. */
export interface CommandSpec {
  readonly perm: CommandPermission;
  /** Redis convention: n > 0 exactly n arguments including the name; n < 0 at least -n. */
  readonly arity: number;
  /** COMMAND INFO flags. */
  readonly flags: readonly string[];
  /** COMMAND INFO key positions: first, last (-1 = to the end), step. 0 = no keys. */
  readonly keys: readonly [number, number, number];
  run(env: CommandEnv, session: Session, args: Buffer[]): Result;
}

export const syntaxError = error('ERR syntax error');
export const WRONGPASS = error('WRONGPASS invalid username-password pair or user is disabled.');
export const NOAUTH = error('NOAUTH Authentication required.');
export const PONG = simple('PONG');
export const notInteger = error('ERR value is not an integer or out of range');

export function wrongArity(name: string): RespReply {
  return error(`ERR wrong number of arguments for '${name}' command`);
}

/**
 * Redis's string2ll: an optional '-', no leading zeros, no '+', no spaces. Limited to safe
 * integers here, since larger counts and times mean nothing to a JavaScript caller anyway.
 */
export function parseInteger(arg: Buffer): number | null {
  if (arg.length === 0 || arg.length > 17) return null;
  const s = arg.toString('latin1');
  if (!/^(0|-?[1-9][0-9]*)$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/** A key argument as a byte string (keys are binary; the door checks their length). */
export function keyOf(arg: Buffer): string {
  return keyFromBytes(arg);
}

/** Turn a failure into an error reply in Redis's words (timeouts included); never rethrow. */
export function kvError(err: unknown): RespReply {
  if (isJincacheError(err)) return error(redisErrorOf(err));
  return error(redisErrorOf(toJincacheError(err)));
}

/** Run an async command body, converting any throw into an error reply. */
export async function guarded(body: () => Promise<RespReply>): Promise<RespReply> {
  try {
    return await body();
  } catch (err) {
    return kvError(err);
  }
}

/** Redis's refusal when `session` may not run a command needing `perm` (undefined: it may). */
export function denied(session: Session, perm: CommandPermission, name: string): RespReply | undefined {
  if (perm === 'open') return undefined;
  const who = session.user;
  if (who === null) return NOAUTH;
  if (perm !== 'user' && !who.can(perm)) return error(`NOPERM this user has no permissions to run the '${name}' command`);
  return undefined;
}

/**
 * Redis 7's reply to an unknown command: the name and the first arguments, each cut at 128
 * characters and quoted, e.g. `ERR unknown command 'FOO', with args beginning with: 'a' `.
 */
export function unknownCommand(args: readonly Buffer[]): RespReply {
  let rest = '';
  for (let i = 1; i < args.length && rest.length < 128; i++) {
    rest += `'${args[i]!.toString('utf8').slice(0, 128 - rest.length)}' `;
  }
  return error(`ERR unknown command '${args[0]!.toString('utf8').slice(0, 128)}', with args beginning with: ${rest}`);
}
