/**
 * What every RESP command module shares (commands.ts dispatches; connection.ts, cluster.ts and
 * the data commands in commands.ts each export a table of CommandSpecs): the per-connection
 * Session (its protocol, CLIENT REPLY mode, name), the CommandEnv built once per server (the
 * door, the clock, INFO's keyspace figures, and the Listener: the server's connections, counters
 * and settings, so CLIENT and CONFIG need no global state), the permission check and Redis's
 * common errors.
 */
import type { Clock } from '../../core/types.ts';
import { isJincacheError, toJincacheError } from '../../core/errors.ts';
import { keyFromBytes } from '../../core/keys.ts';
import type { Permission } from '../../config/schema.ts';
import type { Principal } from '../auth.ts';
import type { ClusterSession, ClusterView } from './cluster-view.ts';
import { redisErrorOf, type FrontDoor } from '../door.ts';
import { error, simple, type RespProtocol, type RespReply } from './writer.ts';

/** What the `redis_version` field says; clients only check that it parses. */
export const REDIS_VERSION = '7.0.0-jincache';

/**
 * CLIENT REPLY, as a state the server reads after every command: `on`; `off` (no reply until
 * CLIENT REPLY ON); `skip-next` (set by CLIENT REPLY SKIP: that command has no reply) turns into
 * `skip` for the command after it, whose reply is dropped, and then back to `on`. A command run
 * while skipping may change it (ON answers +OK, as in Redis).
 */
export type ReplyMode = 'on' | 'off' | 'skip-next' | 'skip';

/** Per-connection state that commands read or change. */
export interface Session {
  readonly id: number;
  /** The authenticated user; null until AUTH when a password is required. */
  user: Principal | null;
  name: string | null;
  /** Set by QUIT (and CLIENT KILL of itself): the server closes the connection after this reply. */
  quit: boolean;
  /**
   * The protocol replies are encoded in: 2 until HELLO 3; HELLO 2 and RESET go back to 2. The
   * server encodes each reply in the protocol the session has once its command returned, so
   * HELLO's own reply is in the new protocol, as in Redis. Data commands read it where the
   * reply differs in shape between the two (beyond what the writer converts).
   */
  protocol: RespProtocol;
  /** CLIENT SETINFO LIB-NAME / LIB-VER (Redis 7.2; clients send them at connect). */
  libName: string | null;
  libVer: string | null;
  /** CLIENT REPLY ON | OFF | SKIP (see ReplyMode); the server applies it where replies are written. */
  replies: ReplyMode;
  /**
   * The last command run, as CLIENT LIST's `cmd=` shows it (`get`, `client|list`); set by the
   * dispatcher, a container's subcommand by its command. `NULL` before the first, as Redis says.
   */
  command: string;
  /** Redis Cluster state (cluster.ts); absent until a cluster command sets it. */
  cluster?: ClusterSession;
  /**
   * Between MULTI and EXEC / DISCARD (transaction.ts keeps the rest): read before every command,
   * so a field rather than the transaction's WeakMap lookup (0.7% of a GET at pipeline 16, perf).
   */
  inMulti: boolean;
}

/** A new connection's session: RESP2, replies on, no name. */
export function newSession(id: number, user: Principal | null): Session {
  return { id, user, name: null, quit: false, protocol: 2, libName: null, libVer: null, replies: 'on', command: 'NULL', inMulti: false };
}

/**
 * RESET: the session as a new connection has it, its id kept: RESP2, no name, replies on, and
 * `anonymous` as its user (unauthenticated when a password is required). State added to
 * Session that a new connection would not have (a transaction, cluster flags) is cleared here.
 */
export function resetSession(session: Session, anonymous: Principal | null): void {
  session.user = anonymous;
  session.name = null;
  session.protocol = 2;
  session.replies = 'on';
  // as Redis's RESET: READWRITE (and jincache's own flag, cluster-awareness, with it)
  delete session.cluster;
}

/** INFO keyspace's numbers for the default group: `db0:keys=..,expires=..,avg_ttl=..`. */
export interface KeyspaceStats {
  /** Live keys in the whole cluster (each counted once, at its owner). */
  readonly keys: number;
  /** Of those, how many have a time to live. */
  readonly expires: number;
  /** The average time to live left of the keys that have one, in ms (0 when none). */
  readonly avgTtl: number;
}

/**
 * One open connection as CLIENT LIST, INFO and KILL see it. The server keeps the registry
 * (server.ts); a command sees it through `env.listener`.
 */
export interface ClientView {
  readonly session: Session;
  /** The client's address, `ip:port` (`[ip]:port` for IPv6), as Redis writes `addr=`. */
  readonly addr: string;
  /** This end's address (`laddr=`). */
  readonly laddr: string;
  /** The socket's file descriptor, -1 when unknown (TLS). */
  readonly fd: number;
  /** When it connected, ms since the epoch. */
  readonly connectedAt: number;
  /** When it last sent anything, ms since the epoch. */
  lastInputAt(): number;
  /** Unparsed input it holds, bytes (`qbuf=`). */
  inputBytes(): number;
  /** Replies written but not yet taken by its socket, bytes (`omem=`). */
  outputBytes(): number;
  /** Close it now, dropping what it has not been sent (CLIENT KILL of another connection). */
  kill(): void;
}

/** What the listener tells about itself (CONFIG GET, INFO), fixed or read at the call. */
export interface ListenerFacts {
  /** The address and port the listener is bound to. */
  readonly host: string;
  readonly port: number;
  /** Most connections at once (`maxclients`). */
  readonly maxClients: number;
  /** A client idle this long is closed, ms; 0 never (`timeout`, in seconds there). */
  readonly idleTimeoutMs: number;
  /** Unread replies one client may leave before it is closed, bytes; 0 no limit. */
  readonly outputBufferBytes: number;
  /** Largest value accepted, bytes (`proto-max-bulk-len`). */
  readonly maxValueBytes: number;
  /** Bytes the default group may hold on this node (`maxmemory`); 0: not told. */
  readonly maxmemory: number;
  /** Whether this listener answers the Redis Cluster protocol (HELLO mode, INFO cluster_enabled, CONFIG cluster-enabled). */
  readonly clusterEnabled: boolean;
}

/** The listener's counters (INFO stats and clients), since start or CONFIG RESETSTAT. */
export interface ListenerStats {
  /** When the listener started, ms since the epoch. */
  readonly startedAt: number;
  readonly connectedClients: number;
  readonly connectionsReceived: number;
  readonly rejectedConnections: number;
  readonly commandsProcessed: number;
  /** Commands per second, over the last few seconds. */
  readonly opsPerSec: number;
  readonly netInputBytes: number;
  readonly netOutputBytes: number;
  readonly errorReplies: number;
  /** The largest unparsed input and unsent output any client holds now, bytes. */
  readonly maxInputBuffer: number;
  readonly maxOutputBuffer: number;
}

/** The listener a connection came in by: its connections, counters and settings (server.ts). */
export interface Listener {
  /** Every open connection, oldest first. */
  clients(): Iterable<ClientView>;
  /** The open connection with this id. */
  client(id: number): ClientView | undefined;
  /** The names of the users a client may authenticate as (CLIENT KILL USER checks them). */
  users(): readonly string[];
  facts(): ListenerFacts;
  stats(): ListenerStats;
  /** CONFIG RESETSTAT: the counters of stats() start again from 0. */
  resetStats(): void;
}

/** Everything a command may use. Built once per server; `session` varies per connection. */
export interface CommandEnv {
  readonly door: FrontDoor;
  readonly group: string;
  readonly clock: Clock;
  /** The text of INFO for the requested sections (lower case; empty = default). */
  info(sections: string[]): Promise<string>;
  /**
   * The default group's keys in the whole cluster, for INFO keyspace. The node provides it
   * (RespServerOptions.keyspace); without one, the count through the door with no expiry
   * figures. Should answer within a second: INFO waits for it at most that long.
   */
  keyspace(): Promise<KeyspaceStats>;
  /** The listener's connections, counters and settings. */
  readonly listener: Listener;
  /** The partition table and members as Redis Cluster clients see them (cluster.ts); absent: cluster support disabled. */
  readonly cluster?: ClusterView;
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
 * Redis formats them as C strings: each ends at its first NUL byte.
 */
export function unknownCommand(args: readonly Buffer[]): RespReply {
  const text = (b: Buffer): string => {
    const nul = b.indexOf(0);
    return (nul < 0 ? b : b.subarray(0, nul)).toString('utf8');
  };
  let rest = '';
  for (let i = 1; i < args.length && rest.length < 128; i++) {
    rest += `'${text(args[i]!).slice(0, 128 - rest.length)}' `;
  }
  return error(`ERR unknown command '${text(args[0]!).slice(0, 128)}', with args beginning with: ${rest}`);
}
