/**
 * The contract of the command engine: Redis's data commands as pure functions over the entries
 * of one hash slot (strings, hashes, expiry, MULTI/EXEC). The engine runs at a key's coordinator
 * (cluster/router.ts exec), synchronously, so nothing interleaves with a command or a
 * transaction: that is what makes INCR, HINCRBY, GETSET, RENAME and EXEC atomic. It reads the
 * live entries through a view and returns its reply and the changes to make; the coordinator
 * gives every change a version, applies and replicates it like any write.
 *
 *   const out = execute(['INCR', 'k'] as Buffer[], view, now);   // { reply: integer(1), changes: [...] }
 *
 * No I/O, no clock of its own (`now` is given), no randomness but what `ctx.random` gives.
 */
import type { Reply } from '../reply.ts';

/** Entry types, as the store keeps them (cache/store.ts TYPE_STRING, TYPE_HASH). */
export const STRING = 0;
export const HASH = 1;
export type EngineType = typeof STRING | typeof HASH;

/** A live entry (an expired one is not shown). */
export interface EngineEntry {
  readonly type: EngineType;
  /** A string's bytes, or a hash encoded by cache/engine/hash-codec.ts. */
  readonly value: Buffer;
  /** Absolute ms since the epoch; 0 = no expiry. */
  readonly expiresAt: number;
  /** The version it was written at (WATCH compares it). */
  readonly version: number;
}

/** The entries a command may read: the keys of one hash slot. */
export interface EngineView {
  get(key: string): EngineEntry | undefined;
}

/** One change a command made: a new entry for `key`, or its removal (`value` null). */
export interface EngineChange {
  readonly key: string;
  readonly type: EngineType;
  /** null: the key is deleted. */
  readonly value: Buffer | null;
  /** Absolute ms; 0 = none. Ignored for a delete. */
  readonly expiresAt: number;
}

export interface EngineOutcome {
  readonly reply: Reply;
  /** In order; a key changed twice (in a transaction) appears once, with its final state. */
  readonly changes: readonly EngineChange[];
}

export interface EngineContext {
  /** The current time, ms since the epoch (TTLs, EXPIRETIME, expiry checks). */
  readonly now: number;
  /** The largest value a change may hold (cache.max_value_bytes); a larger one fails the command (SETRANGE, APPEND, HSET). */
  readonly maxValueBytes: number;
  /** 0 <= x < 1 (HRANDFIELD). Default Math.random. */
  readonly random?: () => number;
}

/** A watched key and the version it had when WATCH ran (0: absent). */
export interface Watched {
  readonly key: string;
  readonly version: number;
}

/** What a node needs of the engine (cache/engine/index.ts implements it; the router runs it). */
export interface Engine {
  execute(args: readonly Buffer[], view: EngineView, ctx: EngineContext): EngineOutcome;
  executeTransaction(commands: readonly (readonly Buffer[])[], view: EngineView, ctx: EngineContext, watched?: readonly Watched[]): EngineOutcome;
}
