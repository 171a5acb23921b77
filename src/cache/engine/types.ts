/**
 * The contract of the command engine: Redis's data commands as pure functions over the entries
 * of one hash slot (strings, hashes, expiry, MULTI/EXEC). The engine runs at a key's coordinator
 * (cluster/router.ts exec), synchronously, so nothing interleaves with a command or a
 * transaction: that is what makes INCR, HINCRBY, GETSET, RENAME and EXEC atomic. It reads the
 * live entries through a view and returns its reply and the changes to make; the coordinator
 * gives every change a version, applies and replicates it like any write.
 *
 *   const out = execute([Buffer.from('INCR'), Buffer.from('k')], view, { now, maxValueBytes });
 *   // { reply: integer(1), changes: [{ key: 'k', type: STRING, value: <'1'>, expiresAt: 0 }] }
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
  /**
   * The version of the key's last write, a delete included (a tombstone's version), expired or
   * not; 0 when none is known. WATCH needs it: a key created and deleted again after WATCH is
   * absent both times, yet Redis's EXEC fails. Optional: without it, the live entry's version
   * (`get(key)?.version ?? 0`) is used, and such a create-and-delete goes unnoticed.
   */
  version?(key: string): number;
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
  /**
   * One per key, with its final state, in the order keys were first changed (a key changed twice,
   * by MSET k 1 k 2 or in a transaction, appears once). Empty when the reply is an error: a failed
   * command changes nothing. Values may be the very argument Buffers (SET stores its argument
   * without copying it).
   */
  readonly changes: readonly EngineChange[];
}

export interface EngineContext {
  /** The current time, ms since the epoch (TTLs, EXPIRETIME, expiry checks). */
  readonly now: number;
  /** The largest value a change may hold (cache.max_value_bytes); a larger one fails the command (SETRANGE, APPEND, HSET). */
  readonly maxValueBytes: number;
  /** 0 <= x < 1 (HRANDFIELD). Default Math.random. */
  readonly random?: () => number;
  /**
   * The client's RESP version. Almost every reply is protocol-neutral (the writer maps RESP3
   * types to RESP2), but HRANDFIELD ... WITHVALUES is a flat array in RESP2 and an array of
   * [field, value] arrays in RESP3, as in Redis 7. Default 2.
   */
  readonly protocol?: 2 | 3;
}

/** A watched key as WATCH saw it (made by watchOf(), at the key's coordinator). */
export interface Watched {
  readonly key: string;
  /** EngineView.version(key) when WATCH ran (or the live entry's version; 0: absent). */
  readonly version: number;
  /**
   * Whether the key was live when WATCH ran. Redis fails EXEC when a key live at WATCH has
   * expired since, though nothing wrote it. Default false (expiry alone never fails EXEC).
   */
  readonly live?: boolean;
}

/** What a node needs of the engine (cache/engine/index.ts implements it; the router runs it). */
export interface Engine {
  execute(args: readonly Buffer[], view: EngineView, ctx: EngineContext): EngineOutcome;
  executeTransaction(commands: readonly (readonly Buffer[])[], view: EngineView, ctx: EngineContext, watched?: readonly Watched[]): EngineOutcome;
}
