/**
 * Commands on keys that run at their key's coordinator, in the command engine (cache/engine):
 * INCR, APPEND, SETRANGE, GETSET, hashes, RENAME, ... (ENGINE_COMMANDS). The node a client talks
 * to finds the keys (Redis 7's key specs, command-table.ts), groups them by hash slot and sends
 * each slot's command to its coordinator (FrontDoor.exec → Router.exec), which runs it atomically
 * and replicates what it changed.
 *
 * Keys in several slots: a command that must be atomic over its keys (MSETNX, RENAME, COPY,
 * SINTERSTORE...) answers CROSSSLOT, as Redis Cluster does; a command that is the sum of its keys
 * (TOUCH, UNLINK) is split per slot and the counts added, as a client of Redis Cluster would.
 */
import { slotOf } from '../../core/placement/hash.ts';
import { ENGINE_COMMANDS as ENGINE_NAMES } from '../../cache/engine/index.ts';
import { integer, type RespReply } from './writer.ts';
import { findCommand, keyPositions } from './command-table.ts';
import { CROSSSLOT } from './cluster.ts';
import { guarded, keyOf, type CommandEnv, type Result, type Session } from './session.ts';

/** The commands the engine answers (lower case); the front answers GET, SET, DEL, ... itself when it can. */
export const ENGINE_COMMANDS: ReadonlySet<string> = new Set(ENGINE_NAMES);

/** Multi-key commands whose reply is the sum of one reply per key: split over slots. */
const SUMMED = new Set(['touch', 'unlink', 'del', 'exists']);

export { CROSSSLOT };

/** The keys of a command as byte strings (Redis's key specs); [] for a command without keys. */
export function commandKeys(args: readonly Buffer[]): string[] {
  const spec = findCommand(args);
  if (spec === undefined) return [];
  return (keyPositions(spec, args) ?? []).map((i) => keyOf(args[i]!));
}

/** Whether the command writes (Redis's `write` flag). */
export function isWrite(args: readonly Buffer[]): boolean {
  return findCommand(args)?.flags.includes('write') ?? false;
}

/** The one slot of `keys`, or undefined when they span several (or there are none). */
export function oneSlot(keys: readonly string[]): number | undefined {
  if (keys.length === 0) return undefined;
  const slot = slotOf(keys[0]!);
  for (let i = 1; i < keys.length; i++) if (slotOf(keys[i]!) !== slot) return undefined;
  return slot;
}

/**
 * Run an engine command. `args` may be views of the parser's storage: they are copied before
 * anything waits.
 */
export function runKeyed(env: CommandEnv, session: Session, args: readonly Buffer[]): Result {
  const name = args[0]!.toString('latin1').toLowerCase();
  const keys = commandKeys(args);
  const perm = isWrite(args) ? 'write' : 'read';
  if (keys.length > 1 && oneSlot(keys) === undefined) {
    if (!SUMMED.has(name)) return CROSSSLOT;
    return sumPerSlot(env, session, args, keys, perm);
  }
  const commands = [args.map((a) => Buffer.from(a))];
  return guarded(() => env.door.exec('resp', session.user, env.group, { key: keys[0] ?? '', keys, commands, transaction: false, watched: [], protocol: session.protocol }, perm));
}

/** MSET k v k v ... over several slots: one MSET per slot (atomic there), OK when every one is. */
export function msetPerSlot(env: CommandEnv, session: Session, args: readonly Buffer[]): Result {
  const bySlot = new Map<number, number[]>();
  for (let i = 1; i < args.length; i += 2) {
    const slot = slotOf(keyOf(args[i]!));
    let list = bySlot.get(slot);
    if (list === undefined) bySlot.set(slot, (list = []));
    list.push(i);
  }
  const name = Buffer.from(args[0]!);
  return guarded(async () => {
    const replies = await Promise.all(
      [...bySlot.values()].map((idx) => {
        const keys = idx.map((i) => keyOf(args[i]!));
        const command = [name, ...idx.flatMap((i) => [Buffer.from(args[i]!), Buffer.from(args[i + 1]!)])];
        return env.door.exec('resp', session.user, env.group, { key: keys[0]!, keys, commands: [command], transaction: false, watched: [], protocol: session.protocol }, 'write', 'mset');
      }),
    );
    return replies.find((r) => r.type === 'error') ?? replies[0]!;
  });
}

/** TOUCH a b c over several slots: one command per slot, the integer replies added. */
function sumPerSlot(env: CommandEnv, session: Session, args: readonly Buffer[], keys: string[], perm: 'read' | 'write'): Result {
  const bySlot = new Map<number, number[]>();
  keys.forEach((k, i) => {
    const slot = slotOf(k);
    let list = bySlot.get(slot);
    if (list === undefined) bySlot.set(slot, (list = []));
    list.push(i);
  });
  const name = Buffer.from(args[0]!);
  return guarded(async () => {
    const replies = await Promise.all(
      [...bySlot.values()].map((idx) => {
        const slotKeys = idx.map((i) => keys[i]!);
        const command = [name, ...idx.map((i) => Buffer.from(args[i + 1]!))];
        return env.door.exec('resp', session.user, env.group, { key: slotKeys[0]!, keys: slotKeys, commands: [command], transaction: false, watched: [] }, perm);
      }),
    );
    let total = 0;
    for (const r of replies) {
      if (r.type === 'error') return r;
      if (r.type === 'integer') total += Number(r.value);
    }
    return integer(total) as RespReply;
  });
}
