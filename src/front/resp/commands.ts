/**
 * The Redis commands jincache answers, on the default group, through the front door (door.ts:
 * key, value and TTL rules, deadlines, metrics and error codes are decided there).
 *
 * No sockets here: a command is its arguments in, a RespReply out. The server owns connections,
 * ordering and back-pressure. Every failure becomes an error reply in Redis's words; nothing a
 * client sends or the door throws escapes as an exception.
 */
import { NO_EXPIRY, type Expiry, type WriteResult } from '../../cache/ops.ts';
import type { GetResult } from '../../cluster/kv.ts';
import type { ValueSink } from '../../cache/store.ts';
import type { RespCommand } from './parser.ts';
import { keyFromBytes } from '../../core/keys.ts';
import { OK, NULL_BULK, array, integer, bulk, error, type RespReply } from './writer.ts';
import { CONNECTION_COMMANDS } from './connection.ts';
import { CLUSTER_COMMANDS, redirect } from './cluster.ts';
import { KEYSPACE_COMMANDS } from './keyspace.ts';
import { STRING } from '../../cache/engine/types.ts';
import { arityOk, findCommand, keysOf as keyPositionsOf, wrongArity as tableArity } from './command-table.ts';
import { ENGINE_COMMANDS, isWrite, msetPerSlot, runKeyed } from './keyed.ts';
import { enqueue, inTransaction, refuseQueued, transactionCommands } from './transaction.ts';
import {
  denied,
  guarded,
  keyOf,
  kvError,
  parseInteger,
  unknownCommand,
  wrongArity,
  type CommandEnv,
  type CommandSpec,
  type Result,
  type Session,
} from './session.ts';

export { REDIS_VERSION, parseInteger, unknownCommand, type CommandEnv, type Session } from './session.ts';

/** The expiry of a Redis TTL argument in ms, or Redis's error for this command. */
function ttlOf(env: CommandEnv, ms: number, name: string): Expiry | RespReply {
  try {
    return env.door.ttl(ms, name);
  } catch {
    return error(`ERR invalid expire time in '${name}' command`);
  }
}

/**
 * Apply `fn` to each item with at most `limit` calls in flight; results keep input order.
 * Multi-key commands fan out to several owners at once but cannot flood the cluster.
 */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

const FANOUT = 32;

/** Check every key argument first so a bad one changes nothing. */
function keysOf(env: CommandEnv, args: readonly Buffer[]): string[] | RespReply {
  const keys: string[] = [];
  for (const a of args) {
    const k = keyOf(a);
    try {
      env.door.checkKey('resp', k);
    } catch (e) {
      return kvError(e);
    }
    keys.push(k);
  }
  return keys;
}

/** Milliseconds left before an absolute expiry (negative once past). */
function remainingMs(env: CommandEnv, expiresAt: number): number {
  return expiresAt - env.clock.now();
}

function ttlReply(env: CommandEnv, session: Session, args: Buffer[], unitMs: number): Result {
  const key = keyOf(args[1]!);
  return guarded(async () => {
    const r = await env.door.get('resp', session.user, env.group, key, 'ttl');
    if (r === null) return integer(-2);
    if (r.expiresAt === 0) return integer(-1);
    const ms = remainingMs(env, r.expiresAt);
    if (ms < 0) return integer(-2);
    // Redis rounds TTL to the nearest second: (ms + 500) / 1000.
    return integer(unitMs === 1 ? ms : Math.floor((ms + 500) / 1000));
  });
}

function expireReply(env: CommandEnv, session: Session, name: string, args: Buffer[], unitMs: number): Result {
  // NX, XX, GT, LT compare with the current expiry: the engine decides them at the coordinator
  if (args.length > 3) return runKeyed(env, session, args);
  const key = keyOf(args[1]!);
  const amount = parseInteger(args[2]!);
  // beyond 2^53 (Redis reads 64 bits, and answers "invalid expire time" near its limits): the engine's
  if (amount === null) return runKeyed(env, session, args);
  const ttlMs = amount * unitMs;
  // a time in the past deletes the key, as in Redis (decideWrite)
  const expiry = ttlMs <= 0 ? ({ kind: 'in', ms: ttlMs } as const) : ttlOf(env, ttlMs, name);
  if (!('kind' in expiry)) return runKeyed(env, session, args);
  return guarded(async () => integer((await env.door.write('resp', session.user, env.group, key, { op: 'expire', expiry })).applied ? 1 : 0));
}

/**
 * SET with options. The front writes the common well-formed shapes itself: `[NX|XX] [EX n|PX n]`,
 * each at most once, n a positive integer in range. Everything else (GET, KEEPTTL, EXAT, PXAT,
 * repeated or conflicting options, options cut at a NUL byte, numbers Redis reads and we do not,
 * every error) the engine answers at the coordinator: its parse is Redis's, option by option,
 * and the expiry checked only once the options are.
 */
function setReply(env: CommandEnv, session: Session, args: Buffer[]): Result {
  const key = keyOf(args[1]!);
  const value = args[2]!;
  let ttlMs: number | undefined;
  let condition: 'nx' | 'xx' | undefined;
  for (let i = 3; i < args.length; i++) {
    const opt = args[i]!.toString('latin1').toUpperCase();
    if ((opt === 'NX' || opt === 'XX') && condition === undefined) {
      condition = opt === 'NX' ? 'nx' : 'xx';
    } else if ((opt === 'EX' || opt === 'PX') && ttlMs === undefined && i + 1 < args.length) {
      const n = parseInteger(args[++i]!);
      if (n === null || n <= 0) return runKeyed(env, session, args);
      ttlMs = opt === 'EX' ? n * 1000 : n;
    } else {
      return runKeyed(env, session, args);
    }
  }
  const expiry = ttlMs === undefined ? NO_EXPIRY : ttlOf(env, ttlMs, 'set');
  if (!('kind' in expiry)) return runKeyed(env, session, args);
  // The argument may be a view of the parser's storage: the store keeps its own copy.
  const stored = Buffer.from(value);
  return guarded(async () => {
    const out = await env.door.write('resp', session.user, env.group, key, { op: 'set', value: stored, expiry, ...(condition ? { cond: condition } : {}) });
    // A SET whose NX/XX condition failed answers nil.
    return out.applied ? OK : NULL_BULK;
  });
}

/** Count distinct keys once, as Redis does for DEL (EXISTS counts repeats; see below). */
function unique(keys: string[]): string[] {
  return [...new Set(keys)];
}

const DATA_COMMANDS: Record<string, CommandSpec> = {
  get: {
    perm: 'read',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: [1, 1, 1],
    run(env, session, args) {
      const key = keyOf(args[1]!);
      return guarded(async () => {
        return getReply(await env.door.get('resp', session.user, env.group, key));
      });
    },
  },
  set: { perm: 'write', arity: -3, flags: ['write', 'denyoom'], keys: [1, 1, 1], run: (env, session, args) => setReply(env, session, args) },
  del: {
    perm: 'write',
    arity: -2,
    flags: ['write'],
    keys: [1, -1, 1],
    run(env, session, args) {
      const keys = keysOf(env, args.slice(1));
      if (!Array.isArray(keys)) return keys;
      return guarded(async () => {
        const gone = await mapLimit(unique(keys), FANOUT, (k) => env.door.write('resp', session.user, env.group, k, { op: 'del' }));
        return integer(gone.filter((r) => r.existed).length);
      });
    },
  },
  exists: {
    perm: 'read',
    arity: -2,
    flags: ['readonly', 'fast'],
    keys: [1, -1, 1],
    run(env, session, args) {
      const keys = keysOf(env, args.slice(1));
      if (!Array.isArray(keys)) return keys;
      return guarded(async () => {
        const distinct = unique(keys);
        const present = await mapLimit(distinct, FANOUT, async (k) => (await env.door.get('resp', session.user, env.group, k, 'exists')) !== null);
        const live = new Set(distinct.filter((_, i) => present[i]));
        // Redis counts a key named twice twice.
        return integer(keys.filter((k) => live.has(k)).length);
      });
    },
  },
  mget: {
    perm: 'read',
    arity: -2,
    flags: ['readonly', 'fast'],
    keys: [1, -1, 1],
    run(env, session, args) {
      const keys = keysOf(env, args.slice(1));
      if (!Array.isArray(keys)) return keys;
      return guarded(async () => {
        const values = await mapLimit(keys, FANOUT, (k) => env.door.get('resp', session.user, env.group, k, 'mget'));
        // a key of another type is nil here, as in Redis
        return array(values.map((r) => (r === null || (r.type !== undefined && r.type !== STRING) ? NULL_BULK : bulk(r.value))));
      });
    },
  },
  mset: {
    perm: 'write',
    arity: -3,
    flags: ['write', 'denyoom'],
    keys: [1, -1, 2],
    run(env, session, args) {
      if (args.length % 2 === 0) return wrongArity('mset');
      // validate all before writing any; then one MSET per hash slot at its coordinator, so
      // each slot's keys change together (as in Redis Cluster, where MSET cannot span slots)
      for (let i = 1; i < args.length; i += 2) {
        try {
          env.door.checkKey('resp', keyOf(args[i]!));
          env.door.checkValue(args[i + 1]!.length);
        } catch (e) {
          return kvError(e);
        }
      }
      return msetPerSlot(env, session, args);
    },
  },
  expire: { perm: 'write', arity: -3, flags: ['write', 'fast'], keys: [1, 1, 1], run: (env, session, args) => expireReply(env, session, 'expire', args, 1000) },
  pexpire: { perm: 'write', arity: -3, flags: ['write', 'fast'], keys: [1, 1, 1], run: (env, session, args) => expireReply(env, session, 'pexpire', args, 1) },
  ttl: { perm: 'read', arity: 2, flags: ['readonly', 'fast'], keys: [1, 1, 1], run: (env, session, args) => ttlReply(env, session, args, 1000) },
  pttl: { perm: 'read', arity: 2, flags: ['readonly', 'fast'], keys: [1, 1, 1], run: (env, session, args) => ttlReply(env, session, args, 1) },

};

const COMMANDS: Record<string, CommandSpec> = { ...CONNECTION_COMMANDS, ...CLUSTER_COMMANDS, ...DATA_COMMANDS, ...KEYSPACE_COMMANDS, ...transactionCommands((env, session, args) => execute(env, session, args)) };

/** A redirect (cluster.ts), counted in /metrics like every command. */
function redirected(env: CommandEnv, reply: RespReply, began = performance.now()): RespReply {
  env.door.observe('resp', 'other', env.group, 'redirected', began);
  return reply;
}

/** The names of the commands answered, lower case. */
export const COMMAND_NAMES: readonly string[] = Object.freeze(Object.keys(COMMANDS));

/**
 * Execute one command. Never throws and never returns a rejecting promise. `args` may be views
 * of the parser's storage, valid only during this call: commands copy what they keep.
 */
export function execute(env: CommandEnv, session: Session, args: Buffer[]): Result {
  const name = args[0]!.toString('latin1').toLowerCase();
  const spec = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : ENGINE_COMMANDS.has(name) ? engineSpec(args) : undefined;
  // commands on keys are counted by the door; the others here, so every command is in /metrics
  const began = performance.now();
  if (!spec) {
    env.door.observe('resp', 'other', env.group, 'bad_request', began);
    refuseQueued(session);
    return unknownCommand(args);
  }
  const table = findCommand(args);
  if (table !== undefined ? !arityOk(table, args.length) : spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity) {
    env.door.observe('resp', 'other', env.group, 'bad_request', began);
    refuseQueued(session);
    return table !== undefined ? tableArity(table) : wrongArity(name);
  }
  // as Redis: an unknown command or a wrong arity is reported before authentication is asked for
  session.command = name; // CLIENT LIST's cmd= (a container's run names its subcommand)
  const refused = denied(session, spec.perm, name);
  if (refused !== undefined) {
    env.door.observe('resp', 'other', env.group, session.user === null ? 'unauthorized' : 'forbidden', began);
    refuseQueued(session);
    return refused;
  }
  // Redis Cluster: a key another node serves, or keys in several slots (the key positions from
  // Redis's key specs); as Redis, a transaction that meets one is aborted at EXEC
  if (env.cluster !== undefined) {
    const positions = keyPositionsOf(args);
    if (positions !== null && positions.length > 0) {
      const moved = redirect(session, positions.length === 1 ? args[positions[0]!]! : positions.map((i) => args[i]!), env.cluster, spec.perm === 'write' ? 'write' : 'read');
      if (moved !== undefined) {
        refuseQueued(session);
        return redirected(env, moved, began);
      }
    }
  }
  // between MULTI and EXEC a command is queued, not run
  const queued = inTransaction(session) ? enqueue(session, name, args) : undefined;
  if (queued !== undefined) return queued;
  try {
    const out = spec.run(env, session, args);
    if (spec.keys[0] === 0) env.door.observe('resp', 'other', env.group, 'ok', began);
    return out;
  } catch (err) {
    return kvError(err);
  }
}

/** An engine command's spec: its permission from Redis's write flag; run at its coordinator. */
function engineSpec(args: readonly Buffer[]): CommandSpec {
  return isWrite(args) ? ENGINE_WRITE : ENGINE_READ;
}

const ENGINE_WRITE: CommandSpec = { perm: 'write', arity: -1, flags: [], keys: [1, 1, 1], run: runKeyed };
const ENGINE_READ: CommandSpec = { perm: 'read', arity: -1, flags: [], keys: [1, 1, 1], run: runKeyed };

const WRONGTYPE = error('WRONGTYPE Operation against a key holding the wrong kind of value');

// ---- the hot path: GET and SET straight from the parser's byte ranges ----

function getReply(r: GetResult | null): RespReply {
  if (r === null) return NULL_BULK;
  return r.type === undefined || r.type === STRING ? bulk(r.value) : WRONGTYPE;
}

function getAnswer(r: unknown): RespReply {
  return getReply(r as GetResult | null);
}

function setAnswer(out: unknown): RespReply {
  return (out as WriteResult).applied ? OK : NULL_BULK;
}

/**
 * Where a fast-path command leaves its door promise unmapped: the caller awaits `pending`
 * itself and turns the value into the reply with `map` (a rejection with failedCall). One
 * promise and one microtask less per command than `.then(map)`. One per connection, reused.
 */
export class KvCall {
  pending: Promise<unknown> | null = null;
  map: (value: unknown) => RespReply = getAnswer;
  /**
   * Set with `pending`: the write took effect (or failed without effect) before the door
   * returned `pending`, which only waits for its acknowledgment (FrontDoor.appliesHere). The
   * connection may run the next commands meanwhile.
   */
  applied = false;
  /**
   * Set by the caller: earlier writes' acknowledgments are outstanding. A command is then run
   * only if it takes effect now (a reply at once, or `applied`); any other gets WAIT back,
   * having done nothing, and is run again once they are in.
   */
  ahead = false;
  /**
   * Set by the caller when the reply may go straight into its reply batch now (nothing held
   * back before it, replies on): a GET hit then writes the value there from the store, with no
   * copy of its own, and executeCommand returns ANSWERED.
   */
  sink: ValueSink | undefined = undefined;
}

/** executeCommand's answer to a command it did not run, because KvCall.ahead was set. */
export const WAIT: unique symbol = Symbol('wait');

/** executeCommand's answer to a command whose reply it wrote into KvCall.sink itself. */
export const ANSWERED: unique symbol = Symbol('answered');

/** The error reply for a failed door call. */
export function failedCall(err: unknown): RespReply {
  return kvError(err);
}

function fastGet(env: CommandEnv, session: Session, cmd: RespCommand, call: KvCall | undefined): Result | null | typeof WAIT | typeof ANSWERED {
  session.command = 'get';
  const refused = denied(session, 'read', 'get');
  if (refused !== undefined) return refused;
  const key = keyFromBytes(cmd.buf, cmd.start(1), cmd.end(1));
  const moved = redirect(session, key, env.cluster, 'read');
  if (moved !== undefined) return redirected(env, moved);
  try {
    // no promise at all when this node may answer from its own copy now, and no copy of the
    // value either when the reply can go straight into the batch
    const sink = call?.sink;
    if (sink !== undefined) {
      const read = env.door.getLocalInto('resp', session.user, env.group, key, sink);
      if (read === 'hit') return ANSWERED;
      if (read === 'wrongtype') return WRONGTYPE;
    } else {
      const local = env.door.getLocal('resp', session.user, env.group, key);
      if (local !== undefined) return getReply(local);
    }
    // a read elsewhere could overtake the writes before it
    if (call?.ahead === true) return WAIT;
    const p = env.door.get('resp', session.user, env.group, key);
    if (call === undefined) return p.then(getReply, kvError);
    call.pending = p;
    call.map = getAnswer;
    call.applied = false;
    return null;
  } catch (err) {
    return kvError(err);
  }
}

function fastSet(env: CommandEnv, session: Session, cmd: RespCommand, call: KvCall | undefined): Result | null | typeof WAIT {
  session.command = 'set';
  const refused = denied(session, 'write', 'set');
  if (refused !== undefined) return refused;
  const key = keyFromBytes(cmd.buf, cmd.start(1), cmd.end(1));
  const moved = redirect(session, key, env.cluster, 'write');
  if (moved !== undefined) return redirected(env, moved);
  try {
    // A write applied here at once copies what it keeps: it gets a view of the parser's storage
    // (the copy out of it, and the op, were ~4% of a SET at pipeline 16, perf).
    BORROWED_SET.value = cmd.view(2);
    let local: WriteResult | undefined;
    try {
      local = env.door.writeLocal('resp', session.user, env.group, key, BORROWED_SET);
    } finally {
      BORROWED_SET.value = NO_BYTES;
    }
    if (local !== undefined) return setAnswer(local);
    // anything else keeps the value past this call: a copy out of the parser's storage
    const op = { op: 'set' as const, value: cmd.copy(2), expiry: NO_EXPIRY };
    // decided before write(), on the same state: nothing runs in between
    const applied = call !== undefined && env.door.appliesHere(key);
    // a write sent to another coordinator takes effect later: it waits for the writes before it
    if (call?.ahead === true && !applied) return WAIT;
    const p = env.door.write('resp', session.user, env.group, key, op);
    if (call === undefined) return p.then(setAnswer, kvError);
    call.pending = p;
    call.map = setAnswer;
    call.applied = applied;
    return null;
  } catch (err) {
    return kvError(err);
  }
}

/** What BORROWED_SET holds between SETs: no view of a parser's storage kept alive. */
const NO_BYTES = Buffer.alloc(0);

/** fastSet's op for Door.writeLocal, reused: its value a view of the parser's storage, for that call only. */
const BORROWED_SET: { op: 'set'; value: Buffer; expiry: Expiry; borrowed: true } = { op: 'set', value: NO_BYTES, expiry: NO_EXPIRY, borrowed: true };

/** `x | 0x20` lower-cases an ASCII letter (and maps only that letter's two cases onto it). */
const LOWER = 0x20;

/**
 * Execute the command the parser just returned. Plain GET and SET (the commands benchmarks and
 * caches live on) skip the generic path: no argument Buffers, no name string, no promise of
 * ours. Everything else goes through execute() with views of the arguments.
 *
 * With `call`, a GET or SET that has to wait returns null and leaves the KvService promise in
 * `call` (see KvCall); without it, it returns a promise of the reply. With `call.ahead` set, a
 * command that would not take effect at once is not run: WAIT.
 */
export function executeCommand(env: CommandEnv, session: Session, cmd: RespCommand): Result;
export function executeCommand(env: CommandEnv, session: Session, cmd: RespCommand, call: KvCall): Result | null | typeof WAIT | typeof ANSWERED;
export function executeCommand(env: CommandEnv, session: Session, cmd: RespCommand, call?: KvCall): Result | null | typeof WAIT | typeof ANSWERED {
  if (cmd.length(0) === 3 && !inTransaction(session)) {
    const b = cmd.buf;
    const at = cmd.start(0);
    if ((b[at + 1]! | LOWER) === 0x65 /* e */ && (b[at + 2]! | LOWER) === 0x74 /* t */) {
      const first = b[at]! | LOWER;
      if (first === 0x67 /* g */ && cmd.argc === 2) return fastGet(env, session, cmd, call);
      if (first === 0x73 /* s */ && cmd.argc === 3) return fastSet(env, session, cmd, call);
    }
  }
  if (call?.ahead === true) return WAIT;
  return execute(env, session, cmd.views());
}
