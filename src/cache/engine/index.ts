/**
 * The command engine: Redis 7's data commands on strings and hashes as pure functions over the
 * entries of one hash slot (see types.ts for the contract and the coordinator's side).
 *
 *   execute(args, view, ctx)                 one command: its reply and the changes to apply
 *   executeTransaction(queued, view, ctx, w) MULTI/EXEC: every queued command in order, each
 *                                            seeing the changes of the ones before it
 *   isEngineCommand / isReadOnlyCommand      what the front routes here
 *   checkQueued(args)                        the error Redis gives a command when MULTI queues it
 *   watchOf(key, view, ctx)                  what WATCH records, for executeTransaction to check
 *
 * The engine checks arity, syntax and types itself and answers with Redis 7.0's error texts; a
 * command that answers an error changes nothing. Commands live in strings.ts, keyspace.ts and
 * hashes.ts, each a table of {arity, readOnly, run}. oracle.test.ts replays random sequences
 * against redis-server 7 and compares every reply byte for byte, RESP2 and RESP3.
 *
 * Where jincache differs from Redis, on purpose or by necessity (oracle.test.ts EXCLUSIONS):
 *  - a value over max_value_bytes fails the command ("string exceeds maximum allowed size
 *    (proto-max-bulk-len)", or "hash exceeds maximum allowed size (max_value_bytes)");
 *  - COPY ... DB n: one database, answered as a Redis Cluster node does;
 *  - a large hash (over 512 fields or a field or value over 64 bytes) lists in insertion order,
 *    Redis in its hash table's order; HSCAN cursors on it are jincache's own (hash-ordered);
 *  - expiry instants beyond 2^53 ms are doubles, so their TTLs differ in the low digits;
 *  - error texts that quote non-UTF-8 argument bytes go out as UTF-8 (U+FFFD);
 *  - HRANDFIELD with a negative count below -2^20 is refused.
 */
import { NULL_ARRAY, array, type Reply } from '../reply.ts';
import { cString, formattedError, wrongArity, type EngineCommand } from './common.ts';
import { HASH_COMMANDS } from './hashes.ts';
import { KEYSPACE_COMMANDS } from './keyspace.ts';
import { STRING_COMMANDS } from './strings.ts';
import type { Engine, EngineContext, EngineOutcome, EngineView, Watched } from './types.ts';
import { Workspace } from './workspace.ts';

export * from './types.ts';
export { decodeHash, encodeHash, hashLength } from './hash-codec.ts';

/** Every command by lower-case name. */
const COMMANDS: ReadonlyMap<string, EngineCommand> = new Map(Object.entries({ ...STRING_COMMANDS, ...KEYSPACE_COMMANDS, ...HASH_COMMANDS }));

interface Named {
  readonly name: string;
  /** The lower-case name's bytes. */
  readonly bytes: Buffer;
  readonly command: EngineCommand;
}

/** ASCII lower case of a byte. */
function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
}

/** FNV-1a of the lower-cased bytes: the name is found without building a string from it. */
function nameHash(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ lower(b[i]!), 0x01000193);
  return h >>> 0;
}

/** Commands by the hash of their name; a bucket holds the (rare) names sharing a hash. */
const BY_HASH = new Map<number, Named[]>();
for (const [name, command] of COMMANDS) {
  const bytes = Buffer.from(name, 'latin1');
  const h = nameHash(bytes);
  BY_HASH.set(h, [...(BY_HASH.get(h) ?? []), { name, bytes, command }]);
}
/** No command name is longer: a longer argument is not looked up at all. */
const LONGEST_NAME = Math.max(...[...COMMANDS.keys()].map((n) => n.length));

function lookup(arg: Buffer): Named | undefined {
  if (arg.length > LONGEST_NAME) return undefined;
  const bucket = BY_HASH.get(nameHash(arg));
  if (bucket === undefined) return undefined;
  for (const named of bucket) {
    const want = named.bytes;
    if (want.length !== arg.length) continue;
    let i = 0;
    while (i < want.length && lower(arg[i]!) === want[i]) i++;
    if (i === want.length) return named;
  }
  return undefined;
}

/** The names the engine answers, lower case, sorted. */
export const ENGINE_COMMANDS: readonly string[] = Object.freeze([...COMMANDS.keys()].sort());

export function isEngineCommand(name: string): boolean {
  return COMMANDS.has(name);
}

/** True for the commands that only read (GET, HGETALL, TTL, EXISTS, TOUCH...). */
export function isReadOnlyCommand(name: string): boolean {
  return COMMANDS.get(name)?.readOnly === true;
}

/**
 * Redis 7's reply to an unknown command: the name and its first arguments quoted, as C strings
 * cut at 128 bytes (`'%.128s'`), the arguments together at about 128 bytes.
 */
function unknownCommand(args: readonly Buffer[]): Reply {
  let rest = '';
  for (let i = 1; i < args.length && rest.length < 128; i++) rest += `'${cString(args[i]!).slice(0, 128 - rest.length)}' `;
  return formattedError(`unknown command '${cString(args[0] ?? Buffer.alloc(0)).slice(0, 128)}', with args beginning with: ${rest}`);
}

/**
 * The error Redis answers when MULTI queues `args` (an unknown command or a wrong number of
 * arguments; EXEC then fails with EXECABORT), or null when it may be queued. What the command
 * itself would say about its arguments (syntax, types) comes only when EXEC runs it, as in Redis.
 */
export function checkQueued(args: readonly Buffer[]): Reply | null {
  const found = args.length === 0 ? undefined : lookup(args[0]!);
  if (found === undefined) return unknownCommand(args);
  const arity = found.command.arity;
  if (arity > 0 ? args.length !== arity : args.length < -arity) return wrongArity(found.name);
  return null;
}

function run(args: readonly Buffer[], ws: Workspace): Reply {
  const found = args.length === 0 ? undefined : lookup(args[0]!);
  if (found === undefined) return unknownCommand(args);
  const { command } = found;
  const arity = command.arity;
  if (arity > 0 ? args.length !== arity : args.length < -arity) return wrongArity(found.name);
  return command.run(args, ws);
}

const NO_CHANGES: readonly never[] = Object.freeze([]);

/** Run one command against `view`. An error reply comes with no changes. */
export function execute(args: readonly Buffer[], view: EngineView, ctx: EngineContext): EngineOutcome {
  const ws = new Workspace(view, ctx);
  const reply = run(args, ws);
  return { reply, changes: reply.type === 'error' ? NO_CHANGES : ws.changes() };
}

function versionOf(view: EngineView, ws: Workspace, key: string): number {
  return view.version !== undefined ? view.version(key) : (ws.get(key)?.version ?? 0);
}

/** What WATCH `key` records: the key's version and whether it is live at `ctx.now`. */
export function watchOf(key: string, view: EngineView, ctx: EngineContext): Watched {
  const ws = new Workspace(view, ctx);
  return { key, version: versionOf(view, ws, key), live: ws.get(key) !== undefined };
}

/**
 * MULTI/EXEC's body: each command runs against the view and the changes of the commands before
 * it; the reply is the array of their replies. A command answering an error changes nothing and
 * does not stop the others (as Redis). When a watched key was written since WATCH (its version
 * differs) or, live then, has expired since, nothing runs: the reply is a null array and there
 * are no changes.
 */
export function executeTransaction(commands: readonly (readonly Buffer[])[], view: EngineView, ctx: EngineContext, watched: readonly Watched[] = []): EngineOutcome {
  const ws = new Workspace(view, ctx);
  for (const w of watched) {
    if (versionOf(view, ws, w.key) !== w.version || (w.live === true && ws.get(w.key) === undefined)) return { reply: NULL_ARRAY, changes: NO_CHANGES };
  }
  ws.startJournal();
  const replies = new Array<Reply>(commands.length);
  for (let i = 0; i < commands.length; i++) {
    const mark = ws.mark();
    const reply = run(commands[i]!, ws);
    if (reply.type === 'error') ws.rollback(mark);
    replies[i] = reply;
  }
  return { reply: array(replies), changes: ws.changes() };
}

/** The engine as the router takes it (RouterOptions.engine). */
export const ENGINE: Engine = Object.freeze({ execute, executeTransaction });
