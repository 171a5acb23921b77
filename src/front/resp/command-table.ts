/**
 * What COMMAND says about the commands jincache answers, in Redis 7's words.
 *
 * The facts (arity, flags, key positions, ACL categories, tips, key specs, docs) are Redis 7's
 * own: scripts/gen-command-table.ts asks a real redis-server (COMMAND INFO, COMMAND DOCS) for
 * every command in SUPPORTED and writes command-specs.ts; command-table.test.ts asks it again and
 * compares every reply byte for byte, so the table cannot drift from Redis. Containers (CLIENT,
 * CLUSTER, ...) list only the subcommands jincache answers.
 *
 * Pure: the replies are writer values built from the table (the commands module only calls
 * commandReply()); keysOf() reads key positions from the key specs, as Redis's
 * getKeysFromCommandWithSpecs does, for slot checks (CROSSSLOT) and MOVED.
 */
import { COMMAND_SPECS } from './command-specs.ts';
import type { CommandArg, CommandSpec, KeySpec } from './command-types.ts';

export type { BeginSearch, CommandArg, CommandDocs, CommandSpec, FindKeys, KeySpec } from './command-types.ts';
import {
  NULL_BULK,
  array,
  bulk,
  error,
  integer,
  map,
  setOf,
  simple,
  type RespPair,
  type RespReply,
} from './writer.ts';

/**
 * The commands jincache answers (issue 13), lower case; a container lists the subcommands it
 * answers. The generator asks redis-server about exactly these.
 */
export const SUPPORTED: Readonly<Record<string, readonly string[] | null>> = {
  // strings
  get: null, set: null, setnx: null, setex: null, psetex: null, getset: null, getdel: null, getex: null,
  mset: null, msetnx: null, mget: null, append: null, strlen: null, getrange: null, setrange: null,
  incr: null, decr: null, incrby: null, decrby: null, incrbyfloat: null,
  // expiry
  expire: null, pexpire: null, expireat: null, pexpireat: null, expiretime: null, pexpiretime: null,
  persist: null, ttl: null, pttl: null,
  // keyspace
  keys: null, scan: null, type: null, del: null, unlink: null, touch: null, exists: null, rename: null,
  renamenx: null, copy: null, randomkey: null, dbsize: null, flushdb: null, flushall: null,
  // hashes
  hset: null, hsetnx: null, hget: null, hmget: null, hgetall: null, hdel: null, hexists: null, hlen: null,
  hkeys: null, hvals: null, hstrlen: null, hincrby: null, hincrbyfloat: null, hscan: null, hrandfield: null, hmset: null,
  // transactions
  multi: null, exec: null, discard: null, watch: null, unwatch: null,
  // connection and server
  client: ['id', 'info', 'list', 'setname', 'getname', 'kill', 'reply', 'no-evict'],
  echo: null, time: null, info: null, config: ['get', 'set', 'resetstat'], command: ['count', 'info', 'docs', 'getkeys'],
  select: null, ping: null, quit: null, reset: null, hello: null, auth: null, acl: ['whoami'],
  // cluster
  readonly: null, readwrite: null, asking: null,
  cluster: ['slots', 'shards', 'nodes', 'info', 'myid', 'keyslot', 'countkeysinslot', 'getkeysinslot'],
};

/** Top-level commands by lower-case name. */
const BY_NAME: ReadonlyMap<string, CommandSpec> = new Map(COMMAND_SPECS.map((c) => [c.name, c]));
/** Every command and subcommand by full lower-case name (`client|id`). */
const BY_FULL_NAME: ReadonlyMap<string, CommandSpec> = new Map(
  COMMAND_SPECS.flatMap((c) => [[c.name, c] as const, ...c.subcommands.map((s) => [s.name, s] as const)]),
);

function lower(b: Buffer | string): string {
  return (typeof b === 'string' ? b : b.toString('latin1')).toLowerCase();
}

/** A command by full name (`get`, `CLIENT|ID`), case-insensitive, as COMMAND INFO looks it up. */
export function commandByName(name: string): CommandSpec | undefined {
  return BY_FULL_NAME.get(name.toLowerCase());
}

/**
 * The spec that runs `args` (argument 0 is the name): the subcommand for a container when
 * args[1] names one jincache answers, the container itself otherwise (its caller answers
 * "unknown subcommand"); undefined for a command jincache does not answer.
 */
export function findCommand(args: readonly Buffer[]): CommandSpec | undefined {
  const top = BY_NAME.get(lower(args[0]!));
  if (top === undefined || top.subcommands.length === 0 || args.length < 2) return top;
  return BY_FULL_NAME.get(`${top.name}|${lower(args[1]!)}`) ?? top;
}

/** Whether `argc` arguments (the name included) satisfy the command's arity. */
export function arityOk(spec: CommandSpec, argc: number): boolean {
  return spec.arity > 0 ? argc === spec.arity : argc >= -spec.arity;
}

/** Redis's arity error, e.g. `ERR wrong number of arguments for 'client|setname' command`. */
export function wrongArity(spec: CommandSpec): RespReply {
  return error(`ERR wrong number of arguments for '${spec.name}' command`);
}

/**
 * Positions of the keys in `args` (argument 0 is the name) by the spec's key specs, as Redis's
 * getKeysUsingKeySpecs finds them; [] for a command without keys; null when the arguments do
 * not fit a key spec (Redis: "Invalid arguments specified for command").
 */
export function keyPositions(spec: CommandSpec, args: readonly Buffer[]): number[] | null {
  const argc = args.length;
  const out: number[] = [];
  for (const ks of spec.keySpecs) {
    let first = 0;
    const bs = ks.beginSearch;
    if (bs.type === 'index') {
      first = bs.index;
    } else if (bs.type === 'keyword') {
      const start = bs.startFrom > 0 ? bs.startFrom : argc + bs.startFrom;
      const end = bs.startFrom > 0 ? argc - 1 : 1;
      for (let i = start; i !== end; i = start <= end ? i + 1 : i - 1) {
        if (i >= argc || i < 1) break;
        if (lower(args[i]!) === bs.keyword.toLowerCase()) {
          first = i + 1;
          break;
        }
      }
      if (first === 0) continue; // keyword absent: this spec finds no key
    } else {
      return null;
    }
    let last: number;
    let step: number;
    const fk = ks.findKeys;
    if (fk.type === 'range') {
      step = fk.keyStep;
      if (fk.lastKey >= 0) last = first + fk.lastKey;
      else if (fk.limit === 0) last = argc + fk.lastKey;
      else last = first + Math.floor((argc - first) / fk.limit) + fk.lastKey;
    } else if (fk.type === 'keynum') {
      step = fk.keyStep;
      if (first + fk.keyNumIndex >= argc) return null;
      const count = lower(args[first + fk.keyNumIndex]!);
      if (!/^(0|[1-9][0-9]*)$/.test(count)) return null;
      const n = Number(count);
      first += fk.firstKey;
      last = first + n - 1;
    } else {
      return null;
    }
    if (last >= argc || last < first || first >= argc) return null;
    for (let i = first; i <= last; i += step) out.push(i);
  }
  return out;
}

/**
 * Positions of the keys of the command in `args` (argument 0 is the name): see keyPositions.
 * [] for a command jincache does not answer or one without keys.
 */
export function keysOf(args: readonly Buffer[]): number[] | null {
  const spec = findCommand(args);
  if (spec === undefined || !arityOk(spec, args.length)) return [];
  return keyPositions(spec, args);
}

// ---- replies ----

const status = (s: string): RespReply => simple(s);
const text = (s: string): RespReply => bulk(s);
function pairs(entries: (readonly [string, RespReply] | null)[]): RespReply {
  return map(entries.filter((e): e is readonly [string, RespReply] => e !== null).map(([k, v]): RespPair => [bulk(k), v]));
}
function opt<T>(key: string, value: T | undefined, as: (v: T) => RespReply): readonly [string, RespReply] | null {
  return value === undefined ? null : [key, as(value)];
}

function keySpecReply(ks: KeySpec): RespReply {
  const bs = ks.beginSearch;
  const fk = ks.findKeys;
  return pairs([
    opt('notes', ks.notes, text),
    ['flags', setOf(ks.flags.map(status))],
    ['begin_search', pairs([
      ['type', text(bs.type)],
      ['spec', bs.type === 'index' ? pairs([['index', integer(bs.index)]])
        : bs.type === 'keyword' ? pairs([['keyword', text(bs.keyword)], ['startfrom', integer(bs.startFrom)]])
        : pairs([])],
    ])],
    ['find_keys', pairs([
      ['type', text(fk.type)],
      ['spec', fk.type === 'range' ? pairs([['lastkey', integer(fk.lastKey)], ['keystep', integer(fk.keyStep)], ['limit', integer(fk.limit)]])
        : fk.type === 'keynum' ? pairs([['keynumidx', integer(fk.keyNumIndex)], ['firstkey', integer(fk.firstKey)], ['keystep', integer(fk.keyStep)]])
        : pairs([])],
    ])],
  ]);
}

/**
 * One command's COMMAND INFO entry: name, arity, flags, first key, last key, step, ACL
 * categories, tips, key specs, subcommands. Redis 7.0 sends the flag, category, tip and key-spec
 * collections as sets, and an empty subcommand list as a set too.
 */
export function commandInfo(spec: CommandSpec): RespReply {
  return array([
    bulk(spec.name),
    integer(spec.arity),
    setOf(spec.flags.map(status)),
    integer(spec.firstKey),
    integer(spec.lastKey),
    integer(spec.step),
    setOf(spec.aclCategories.map(status)),
    setOf(spec.tips.map(text)),
    setOf(spec.keySpecs.map(keySpecReply)),
    spec.subcommands.length === 0 ? setOf([]) : array(spec.subcommands.map(commandInfo)),
  ]);
}

function argReply(a: CommandArg): RespReply {
  return pairs([
    ['name', text(a.name)],
    ['type', text(a.type)],
    opt('key_spec_index', a.keySpecIndex, integer),
    opt('token', a.token, text),
    opt('summary', a.summary, text),
    opt('since', a.since, text),
    opt('deprecated_since', a.deprecatedSince, text),
    opt('flags', a.flags, (f) => setOf(f.map(status))),
    opt('arguments', a.arguments, (list) => array(list.map(argReply))),
  ]);
}

/** One command's COMMAND DOCS map (the value under its name). */
export function commandDocs(spec: CommandSpec): RespReply {
  const d = spec.docs;
  return pairs([
    opt('summary', d.summary, text),
    opt('since', d.since, text),
    ['group', text(d.group)],
    opt('complexity', d.complexity, text),
    opt('doc_flags', d.docFlags, (f) => setOf(f.map(status))),
    opt('deprecated_since', d.deprecatedSince, text),
    opt('replaced_by', d.replacedBy, text),
    opt('history', d.history, (h) => setOf(h.map(([v, t]) => array([text(v), text(t)])))),
    opt('arguments', d.arguments, (list) => array(list.map(argReply))),
    spec.subcommands.length === 0 ? null : ['subcommands', map(spec.subcommands.map((s): RespPair => [bulk(s.name), commandDocs(s)]))],
  ]);
}

const COMMAND_SPEC = BY_NAME.get('command');

/**
 * The reply to COMMAND and its subcommands (`args` is the whole request, COMMAND included):
 * COMMAND, COMMAND COUNT, COMMAND INFO [name ...], COMMAND DOCS [name ...] and COMMAND GETKEYS
 * cmd arg ..., with Redis 7's replies and errors.
 */
export function commandReply(args: readonly Buffer[]): RespReply {
  if (args.length === 1) return array(COMMAND_SPECS.map(commandInfo));
  const spec = findCommand(args);
  if (spec === undefined || spec === COMMAND_SPEC) {
    return error(`ERR unknown subcommand '${args[1]!.toString('latin1').slice(0, 128)}'. Try COMMAND HELP.`);
  }
  if (!arityOk(spec, args.length)) return wrongArity(spec);
  const names = args.slice(2).map((a) => a.toString('latin1'));
  switch (spec.name) {
    case 'command|count':
      return integer(COMMAND_SPECS.length);
    case 'command|info':
      if (names.length === 0) return array(COMMAND_SPECS.map(commandInfo));
      return array(names.map((n) => {
        const c = commandByName(n);
        return c === undefined ? NULL_BULK : commandInfo(c);
      }));
    case 'command|docs': {
      const found = names.length === 0 ? COMMAND_SPECS : names.map(commandByName).filter((c): c is CommandSpec => c !== undefined);
      return map(found.map((c): RespPair => [bulk(c.name), commandDocs(c)]));
    }
    case 'command|getkeys':
      return getKeysReply(args.slice(2));
    default:
      throw new Error(`impossible: COMMAND subcommand ${spec.name} has no reply`);
  }
}

/** COMMAND GETKEYS cmd arg ...: the keys, or Redis's error. */
function getKeysReply(cmdArgs: readonly Buffer[]): RespReply {
  const spec = findCommand(cmdArgs);
  if (spec === undefined) return error('ERR Invalid command specified');
  if (spec.keySpecs.length === 0) return error('ERR The command has no key arguments');
  if (!arityOk(spec, cmdArgs.length)) return error('ERR Invalid number of arguments specified for command');
  const positions = keyPositions(spec, cmdArgs);
  if (positions === null || positions.length === 0) {
    return spec.flags.includes('no_mandatory_keys') ? array([]) : error('ERR Invalid arguments specified for command');
  }
  return array(positions.map((i) => bulk(Buffer.from(cmdArgs[i]!))));
}
