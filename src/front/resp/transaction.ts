/**
 * MULTI / EXEC / DISCARD / WATCH / UNWATCH, as Redis Cluster has them: the commands queued
 * between MULTI and EXEC run at EXEC, atomically and in order, at the coordinator of their hash
 * slot (one engine transaction: cache/engine executeTransaction). Nothing queued runs before
 * EXEC, so a client that never reaches EXEC changed nothing.
 *
 * Redis Cluster's rules: a command that cannot be queued (unknown, wrong arity, not permitted,
 * keys of its own in several slots: CROSSSLOT) is refused at once and EXEC then answers
 * EXECABORT; commands queued in different slots are each QUEUED, and EXEC answers CROSSSLOT (that
 * check comes first, before EXECABORT); an error while a queued command runs is that command's
 * reply and the others still run. WATCH reads the versions its keys have at their coordinator;
 * EXEC carries them and the coordinator runs nothing (EXEC answers a null array) when any has
 * changed since. UNWATCH inside MULTI is queued, as in Redis: EXEC still checks the watches.
 *
 * Commands that touch no key run here, in their place in the reply. Those that read or change
 * the whole keyspace (DBSIZE, KEYS, FLUSHALL...) cut the engine's part in two: the commands
 * before them run first (one engine transaction, with the watches), then they, then the rest (a
 * second one), so each sees what Redis would show it. Such a transaction is atomic piece by piece,
 * not as a whole: the keyspace is the whole cluster's, no coordinator holds it.
 *
 * Where jincache is stricter than Redis Cluster (a transaction runs at one slot's coordinator,
 * which can check only its own keys' versions): WATCH of a key in another slot than the keys
 * watched before answers CROSSSLOT, and so does EXEC of commands in another slot than the
 * watched keys (Redis Cluster answers OK and runs them).
 */
import { NULL_ARRAY, OK, array, error, simple, type RespReply } from './writer.ts';
import { commandKeys, isWrite, oneSlot, CROSSSLOT, ENGINE_COMMANDS } from './keyed.ts';
import { guarded, type CommandEnv, type CommandSpec, type Result, type Session } from './session.ts';

interface TxState {
  /** Commands queued since MULTI (copied), null outside a transaction. */
  queued: Buffer[][] | null;
  /** A command was refused while queuing: EXEC answers EXECABORT. */
  aborted: boolean;
  /** The slot of the keys queued so far. */
  slot: number | undefined;
  /** Queued commands name keys of several slots: EXEC answers CROSSSLOT. */
  crossSlot: boolean;
  /** The slot of the WATCHed keys. */
  watchSlot: number | undefined;
  /** WATCHed keys, the versions they had and whether they were live. */
  watched: Map<string, { version: number; live: boolean }>;
}

const states = new WeakMap<Session, TxState>();

function state(session: Session): TxState {
  let s = states.get(session);
  if (s === undefined) states.set(session, (s = { queued: null, aborted: false, slot: undefined, crossSlot: false, watchSlot: undefined, watched: new Map() }));
  return s;
}

/** Commands that act on the transaction itself and are never queued (Redis's list: UNWATCH is queued). */
const CONTROL = new Set(['multi', 'exec', 'discard', 'watch', 'quit', 'reset']);

/** Commands without keys that read or change the whole keyspace: where a transaction is cut. */
const KEYSPACE_WIDE = new Set(['dbsize', 'keys', 'scan', 'randomkey', 'flushall', 'flushdb', 'info']);

export const QUEUED = simple('QUEUED');

/** Whether `session` is between MULTI and EXEC. */
export function inTransaction(session: Session): boolean {
  return session.inMulti;
}

/**
 * Queue a command of a transaction (the dispatcher has checked that it exists, its arity and
 * the user's permission, and calls `refuse` for those failures). Returns QUEUED or the refusal.
 */
export function enqueue(session: Session, name: string, args: readonly Buffer[]): RespReply | undefined {
  const s = state(session);
  if (s.queued === null || CONTROL.has(name)) return undefined;
  const keys = commandKeys(args);
  if (keys.length > 0) {
    const slot = oneSlot(keys);
    if (slot === undefined) {
      s.aborted = true;
      return CROSSSLOT;
    }
    if (s.slot === undefined) s.slot = slot;
    else if (slot !== s.slot) s.crossSlot = true;
  }
  s.queued.push(args.map((a) => Buffer.from(a)));
  return QUEUED;
}

/** A command could not be queued (unknown, arity, permission): EXEC will answer EXECABORT. */
export function refuseQueued(session: Session): void {
  const s = states.get(session);
  if (s?.queued != null) s.aborted = true;
}

/** Forget the transaction and the watched keys (EXEC, DISCARD, RESET). */
export function resetTransaction(session: Session): void {
  states.delete(session);
  session.inMulti = false;
}

/** Run the non-engine commands of a transaction here (PING, ECHO, ...), through the dispatcher. */
export type LocalRun = (env: CommandEnv, session: Session, args: Buffer[]) => Result;

export function transactionCommands(runLocal: LocalRun): Record<string, CommandSpec> {
  return {
    multi: {
      perm: 'user',
      arity: 1,
      flags: ['noscript', 'loading', 'stale', 'fast', 'allow_busy'],
      keys: [0, 0, 0],
      run(_env, session) {
        const s = state(session);
        if (s.queued !== null) return error('ERR MULTI calls can not be nested');
        s.queued = [];
        session.inMulti = true;
        s.aborted = false;
        s.slot = undefined;
        s.crossSlot = false;
        return OK;
      },
    },
    discard: {
      perm: 'user',
      arity: 1,
      flags: ['noscript', 'loading', 'stale', 'fast', 'allow_busy'],
      keys: [0, 0, 0],
      run(_env, session) {
        if (!inTransaction(session)) return error('ERR DISCARD without MULTI');
        resetTransaction(session);
        return OK;
      },
    },
    watch: {
      perm: 'read',
      arity: -2,
      flags: ['noscript', 'loading', 'stale', 'fast', 'allow_busy'],
      keys: [1, -1, 1],
      run(env, session, args) {
        if (inTransaction(session)) return error('ERR WATCH inside MULTI is not allowed');
        const keys = commandKeys(args);
        const slot = oneSlot(keys);
        const s = state(session);
        if (slot === undefined || (s.watchSlot !== undefined && s.watchSlot !== slot)) return CROSSSLOT;
        return guarded(async () => {
          const seen = await env.door.exec('resp', session.user, env.group, { key: keys[0]!, keys, commands: [], transaction: false, watched: [] }, 'read');
          if (seen.type !== 'array' || seen.items === null) return error('ERR could not read the watched keys');
          s.watchSlot = slot;
          keys.forEach((k, i) => {
            const pair = seen.items![i];
            const [v, live] = pair?.type === 'array' && pair.items !== null ? pair.items : [];
            if (!s.watched.has(k)) s.watched.set(k, { version: v?.type === 'integer' ? Number(v.value) : 0, live: live?.type === 'integer' && Number(live.value) === 1 });
          });
          return OK;
        });
      },
    },
    unwatch: {
      perm: 'user',
      arity: 1,
      flags: ['noscript', 'loading', 'stale', 'fast', 'allow_busy'],
      keys: [0, 0, 0],
      run(_env, session) {
        const s = states.get(session);
        if (s !== undefined) {
          s.watched.clear();
          s.watchSlot = undefined;
        }
        return OK;
      },
    },
    exec: {
      perm: 'user',
      arity: 1,
      flags: ['noscript', 'loading', 'stale', 'skip_slowlog'],
      keys: [0, 0, 0],
      run(env, session) {
        const s = states.get(session);
        if (s?.queued == null) return error('ERR EXEC without MULTI');
        resetTransaction(session);
        // Redis Cluster checks the slots of the queued commands before anything else
        if (s.crossSlot) return CROSSSLOT;
        if (s.aborted) return error('EXECABORT Transaction discarded because of previous errors.');
        if (s.slot !== undefined && s.watchSlot !== undefined && s.slot !== s.watchSlot) return CROSSSLOT;
        return guarded(() => runTransaction(env, session, s, runLocal));
      },
    },
  };
}

/**
 * The queued commands in order: the engine's share in pieces cut by the keyspace-wide commands
 * (the first piece carries the watches), the other commands here in their place.
 */
async function runTransaction(env: CommandEnv, session: Session, s: TxState, runLocal: LocalRun): Promise<RespReply> {
  const queued = s.queued!;
  const replies = new Array<RespReply>(queued.length);
  const isEngine = (args: Buffer[]) => ENGINE_COMMANDS.has(args[0]!.toString('latin1').toLowerCase());
  const isWide = (args: Buffer[]) => KEYSPACE_WIDE.has(args[0]!.toString('latin1').toLowerCase());
  // every piece is routed by the same key: the transaction's slot (a watched key when it has none)
  const key = queued.flatMap((c) => commandKeys(c))[0] ?? [...s.watched.keys()][0];
  let watched = [...s.watched].map(([k, w]) => (w.live ? { key: k, version: w.version, live: true } : { key: k, version: w.version }));
  let from = 0;
  while (from < queued.length || watched.length > 0) {
    let to = from;
    while (to < queued.length && !isWide(queued[to]!)) to++;
    const piece = queued.slice(from, to);
    const remote: Buffer[][] = [];
    const at: number[] = [];
    piece.forEach((args, i) => {
      if (isEngine(args)) {
        remote.push(args);
        at.push(from + i);
      }
    });
    if ((remote.length > 0 || watched.length > 0) && key !== undefined) {
      const keys = [...new Set([...remote.flatMap((c) => commandKeys(c)), ...watched.map((w) => w.key)])];
      const perm = remote.some((c) => isWrite(c)) ? 'write' : 'read';
      const out = await env.door.exec('resp', session.user, env.group, { key, keys: keys.length > 0 ? keys : [key], commands: remote, transaction: true, watched, protocol: session.protocol }, perm);
      if (out.type === 'array' && out.items === null) return NULL_ARRAY; // a watched key changed
      if (out.type !== 'array' || out.items === null) return out; // an error for the whole transaction
      out.items.forEach((r, j) => (replies[at[j]!] = r));
    }
    watched = [];
    for (let i = from; i < to; i++) if (replies[i] === undefined) replies[i] = await runLocal(env, session, queued[i]!);
    if (to < queued.length) replies[to] = await runLocal(env, session, queued[to]!);
    from = to + 1;
  }
  return array(replies);
}
