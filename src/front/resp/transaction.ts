/**
 * MULTI / EXEC / DISCARD / WATCH / UNWATCH, as Redis Cluster has them: the commands queued
 * between MULTI and EXEC run at EXEC, atomically and in order, at the coordinator of their hash
 * slot (one engine transaction: cache/engine executeTransaction). Nothing queued runs before
 * EXEC, so a client that never reaches EXEC changed nothing.
 *
 * Redis's rules: a command that cannot be queued (unknown, wrong arity, not permitted, keys in
 * another slot than the transaction's: CROSSSLOT) is refused at once and EXEC then answers
 * EXECABORT; an error while a queued command runs is that command's reply and the others still
 * run. WATCH reads the versions its keys have at their coordinator; EXEC carries them and the
 * coordinator runs nothing (EXEC answers a null array) when any has changed since. Commands that
 * touch no key (PING, ECHO, TIME) run here, in their place in the reply.
 */
import { NULL_ARRAY, OK, array, error, simple, type RespReply } from './writer.ts';
import { commandKeys, isWrite, oneSlot, CROSSSLOT, ENGINE_COMMANDS } from './keyed.ts';
import { guarded, type CommandEnv, type CommandSpec, type Result, type Session } from './session.ts';

interface TxState {
  /** Commands queued since MULTI (copied), null outside a transaction. */
  queued: Buffer[][] | null;
  /** A command was refused while queuing: EXEC answers EXECABORT. */
  aborted: boolean;
  /** The slot of the keys queued or watched so far. */
  slot: number | undefined;
  /** WATCHed keys, the versions they had and whether they were live. */
  watched: Map<string, { version: number; live: boolean }>;
}

const states = new WeakMap<Session, TxState>();

function state(session: Session): TxState {
  let s = states.get(session);
  if (s === undefined) states.set(session, (s = { queued: null, aborted: false, slot: undefined, watched: new Map() }));
  return s;
}

/** Commands that act on the transaction itself and are never queued. */
const CONTROL = new Set(['multi', 'exec', 'discard', 'watch', 'unwatch', 'quit', 'reset']);

export const QUEUED = simple('QUEUED');

/** Whether `session` is between MULTI and EXEC. */
export function inTransaction(session: Session): boolean {
  return states.get(session)?.queued != null;
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
    if (slot === undefined || (s.slot !== undefined && slot !== s.slot)) {
      s.aborted = true;
      return CROSSSLOT;
    }
    s.slot = slot;
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
        s.aborted = false;
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
        if (slot === undefined || (s.slot !== undefined && s.slot !== slot)) return CROSSSLOT;
        return guarded(async () => {
          const seen = await env.door.exec('resp', session.user, env.group, { key: keys[0]!, keys, commands: [], transaction: false, watched: [] }, 'read');
          if (seen.type !== 'array' || seen.items === null) return error('ERR could not read the watched keys');
          s.slot = slot;
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
          if (s.queued === null) s.slot = undefined;
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
        if (s.aborted) return error('EXECABORT Transaction discarded because of previous errors.');
        return guarded(() => runTransaction(env, session, s, runLocal));
      },
    },
  };
}

async function runTransaction(env: CommandEnv, session: Session, s: TxState, runLocal: LocalRun): Promise<RespReply> {
  const queued = s.queued!;
  // the engine's share, in order; the rest answered here in their place
  const remote: Buffer[][] = [];
  const at: number[] = [];
  queued.forEach((args, i) => {
    if (ENGINE_COMMANDS.has(args[0]!.toString('latin1').toLowerCase())) {
      remote.push(args);
      at.push(i);
    }
  });
  const watched = [...s.watched].map(([key, w]) => (w.live ? { key, version: w.version, live: true } : { key, version: w.version }));
  const keys = [...new Set([...remote.flatMap((c) => commandKeys(c)), ...s.watched.keys()])];
  const replies = new Array<RespReply>(queued.length);
  if (remote.length > 0 || watched.length > 0) {
    const perm = remote.some((c) => isWrite(c)) ? 'write' : 'read';
    const key = keys[0]!;
    const out = await env.door.exec('resp', session.user, env.group, { key, keys, commands: remote, transaction: true, watched, protocol: session.protocol }, perm);
    if (out.type === 'array' && out.items === null) return NULL_ARRAY; // a watched key changed
    if (out.type !== 'array' || out.items === null) return out; // an error for the whole transaction
    out.items.forEach((r, j) => (replies[at[j]!] = r));
  }
  for (let i = 0; i < queued.length; i++) {
    if (replies[i] === undefined) replies[i] = await runLocal(env, session, queued[i]!);
  }
  return array(replies);
}
