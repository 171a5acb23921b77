/**
 * Hash commands, as Redis 7.0's t_hash.c: HSET HMSET HSETNX HGET HMGET HGETALL HDEL HEXISTS HLEN
 * HKEYS HVALS HSTRLEN HINCRBY HINCRBYFLOAT HSCAN HRANDFIELD. A hash is one entry of type HASH
 * whose value is encoded by hash-codec.ts; it keeps its TTL when its fields change, and the key
 * is deleted when its last field is.
 *
 * HSCAN: Redis answers a small hash (a listpack: at most 512 fields, none and no value over 64
 * bytes) in one reply with cursor 0, whatever the cursor and COUNT, and so does jincache. A
 * larger hash is walked in the order of a 32-bit hash of each field (FNV-1a), the cursor being
 * the hash value to continue from, and every field of one hash value goes out in the same reply:
 * so a field present for the whole walk is returned, however the hash changes meanwhile.
 * Redis decides small or large by its encoding, which never goes back to a listpack; jincache
 * by the hash's current contents.
 */
import { EMPTY_ARRAY, NULL_BULK, OK, array, bulk, error, integer, map, type Reply, type ReplyPair } from '../reply.ts';
import {
  HASH_TOO_BIG,
  NAN_OR_INFINITY,
  NOT_FLOAT,
  NOT_INTEGER,
  ONE,
  OVERFLOW,
  SYNTAX,
  WRONGTYPE,
  ZERO,
  keyOf,
  optionOf,
  wrongArity,
  type EngineCommand,
} from './common.ts';
import { globMatchBytes as globMatch } from '../../core/glob.ts';
import { hashDelete, hashGet, hashLength, hashPairs, hashSet } from './hash-codec.ts';
import {
  INFINITE,
  INT64_MIN,
  addInt64,
  addLongDouble,
  formatLongDouble,
  int64Bytes,
  parseInt64,
  parseLongDouble,
  type Int64,
  type LongDouble,
} from './numbers.ts';
import { HASH, type EngineEntry } from './types.ts';
import type { Workspace } from './workspace.ts';

const EMPTY_MAP = map([]);
const ZERO_CURSOR = bulk('0');
const EMPTY_SCAN = array([ZERO_CURSOR, EMPTY_ARRAY]);
const NOT_HASH_INTEGER = error('ERR hash value is not an integer');
const NOT_HASH_FLOAT = error('ERR hash value is not a float');
const INCREMENT_NAN_OR_INFINITY = error('ERR value is NaN or Infinity');
const INVALID_CURSOR = error('ERR invalid cursor');
const COUNT_OUT_OF_RANGE = error('ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807');
const OUT_OF_RANGE = error('ERR value is out of range');
const ZERO_LD: LongDouble = { neg: false, m: 0n, e: 0 };
/** LONG_MAX / 2: HRANDFIELD's bound on a count WITHVALUES (its reply doubles the count). */
const HALF_LONG_MAX = 4611686018427387903n;
/**
 * Most elements HRANDFIELD returns with a negative count. Redis has no bound (it builds the whole
 * reply); 2^20 keeps one command from taking the node's memory.
 */
export const HRANDFIELD_MAX_REPEATS = 1 << 20;
/** Redis 7.0's hash-max-listpack-entries and hash-max-listpack-value defaults (compiled in, and in Debian's redis.conf). */
const LISTPACK_ENTRIES = 512;
const LISTPACK_VALUE = 64;
const DEFAULT_SCAN_COUNT = 10;

/** The entry at `key` when it is a hash, undefined when absent, null when not a hash (WRONGTYPE). */
function hashEntry(ws: Workspace, key: string): EngineEntry | undefined | null {
  const e = ws.get(key);
  return e === undefined || e.type === HASH ? e : null;
}

/** Write the hash at `key` (fields `args[from..]` set), its TTL kept; the fields added, or an error. */
function setFields(ws: Workspace, key: string, e: EngineEntry | undefined, args: readonly Buffer[], from: number): number | Reply {
  const edit = hashSet(e?.value, args, from, ws.maxValueBytes);
  if (edit === null) return HASH_TOO_BIG;
  ws.put(key, HASH, edit.value!, e === undefined ? 0 : e.expiresAt);
  return edit.count;
}

function hsetGeneric(args: readonly Buffer[], ws: Workspace, name: string): number | Reply {
  if (args.length % 2 === 1) return wrongArity(name);
  const key = keyOf(args[1]!);
  const e = hashEntry(ws, key);
  if (e === null) return WRONGTYPE;
  return setFields(ws, key, e, args, 2);
}

/** The value of `field` in the hash at `keyArg`: undefined when either is absent, null when not a hash. */
function fieldOf(ws: Workspace, keyArg: Buffer, field: Buffer): Buffer | undefined | null {
  const e = hashEntry(ws, keyOf(keyArg));
  return e === undefined || e === null ? e : hashGet(e.value, field);
}

/** Redis's parseScanCursorOrReply: C strtoul in base 10 over the C string, no leading space. */
export function parseScanCursor(arg: Buffer): bigint | null {
  const nul = arg.indexOf(0);
  const end = nul < 0 ? arg.length : nul;
  let i = 0;
  if (end > 0 && (arg[0] === 0x20 || (arg[0]! >= 0x09 && arg[0]! <= 0x0d))) return null;
  let negative = false;
  if (i < end && (arg[i] === 0x2b || arg[i] === 0x2d)) {
    negative = arg[i] === 0x2d;
    i++;
  }
  const digitsAt = i;
  let v = 0n;
  for (; i < end && arg[i]! >= 0x30 && arg[i]! <= 0x39; i++) {
    v = v * 10n + BigInt(arg[i]! - 0x30);
    if (v > 2n ** 64n) v = 2n ** 64n; // ERANGE either way; keep the number small
  }
  if (i === digitsAt) return end === 0 ? 0n : null; // no digits: strtoul stops at the start
  if (i !== end || v >= 2n ** 64n) return null;
  return negative && v !== 0n ? 2n ** 64n - v : v;
}

/** FNV-1a, 32 bits: the order HSCAN walks a large hash in. */
function fieldHash(b: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

function isSmall(pairs: readonly Buffer[]): boolean {
  if (pairs.length > 2 * LISTPACK_ENTRIES) return false;
  for (const p of pairs) if (p.length > LISTPACK_VALUE) return false;
  return true;
}

function hscan(args: readonly Buffer[], ws: Workspace): Reply {
  const cursor = parseScanCursor(args[2]!);
  if (cursor === null) return INVALID_CURSOR;
  const e = hashEntry(ws, keyOf(args[1]!));
  if (e === undefined) return EMPTY_SCAN;
  if (e === null) return WRONGTYPE;
  let count = DEFAULT_SCAN_COUNT;
  let pattern: Buffer | null = null;
  for (let i = 3; i < args.length; i++) {
    const more = args.length - i;
    const opt = optionOf(args[i]!);
    if (opt === 'count' && more >= 2) {
      const n = parseInt64(args[++i]!);
      if (n === null) return NOT_INTEGER;
      if (n < 1) return SYNTAX;
      count = Number(n);
    } else if (opt === 'match' && more >= 2) {
      pattern = args[++i]!;
      if (pattern.length === 1 && pattern[0] === 0x2a) pattern = null; // "*" matches everything
    } else {
      return SYNTAX;
    }
  }
  const pairs = hashPairs(e.value);
  let chosen: Buffer[];
  let next = 0;
  if (isSmall(pairs)) {
    chosen = pairs;
  } else {
    const order: { h: number; i: number }[] = [];
    const from = cursor > 0xffffffffn ? Infinity : Number(cursor);
    for (let i = 0; i < pairs.length; i += 2) {
      const h = fieldHash(pairs[i]!);
      if (h >= from) order.push({ h, i });
    }
    order.sort((a, b) => a.h - b.h || a.i - b.i);
    chosen = [];
    let k = 0;
    for (; k < order.length && (k < count || order[k]!.h === order[k - 1]!.h); k++) chosen.push(pairs[order[k]!.i]!, pairs[order[k]!.i + 1]!);
    next = k < order.length ? order[k]!.h : 0;
  }
  const items: Reply[] = [];
  for (let i = 0; i < chosen.length; i += 2) {
    if (pattern !== null && !globMatch(pattern, chosen[i]!)) continue;
    items.push(bulk(chosen[i]!), bulk(chosen[i + 1]!));
  }
  return array([next === 0 ? ZERO_CURSOR : bulk(String(next)), array(items)]);
}

/** One field (and value) as HRANDFIELD answers it: RESP3 nests each pair, RESP2 flattens. */
function pushField(out: Reply[], pairs: readonly Buffer[], i: number, withValues: boolean, nested: boolean): void {
  if (!withValues) out.push(bulk(pairs[i]!));
  else if (nested) out.push(array([bulk(pairs[i]!), bulk(pairs[i + 1]!)]));
  else out.push(bulk(pairs[i]!), bulk(pairs[i + 1]!));
}

function hrandfield(args: readonly Buffer[], ws: Workspace): Reply {
  const key = keyOf(args[1]!);
  if (args.length === 2) {
    const e = hashEntry(ws, key);
    if (e === undefined) return NULL_BULK;
    if (e === null) return WRONGTYPE;
    const pairs = hashPairs(e.value);
    return bulk(pairs[2 * pick(ws, pairs.length >> 1)]!);
  }
  const l = parseInt64(args[2]!);
  if (l === null) return NOT_INTEGER;
  if (l === INT64_MIN) return COUNT_OUT_OF_RANGE;
  if (args.length > 4 || (args.length === 4 && optionOf(args[3]!) !== 'withvalues')) return SYNTAX;
  const withValues = args.length === 4;
  if (withValues && (BigInt(l) < -HALF_LONG_MAX || BigInt(l) > HALF_LONG_MAX)) return OUT_OF_RANGE;
  const e = hashEntry(ws, key);
  if (e === undefined) return EMPTY_ARRAY;
  if (e === null) return WRONGTYPE;
  const pairs = hashPairs(e.value);
  const size = pairs.length >> 1;
  const unique = l >= 0;
  const count = Number(unique ? l : -BigInt(l));
  if (count === 0) return EMPTY_ARRAY;
  const nested = ws.protocol === 3;
  const out: Reply[] = [];
  if (!unique || count === 1) {
    // Any fields, repeats allowed, in random order (Redis's case 1, count 1 included).
    if (count > HRANDFIELD_MAX_REPEATS) return OUT_OF_RANGE;
    for (let n = 0; n < count; n++) pushField(out, pairs, 2 * pick(ws, size), withValues, nested);
    return array(out);
  }
  if (count >= size) {
    for (let i = 0; i < pairs.length; i += 2) pushField(out, pairs, i, withValues, nested);
    return array(out);
  }
  // `count` distinct fields, in the hash's order (what Redis does for a listpack).
  const taken = new Uint8Array(size);
  for (let left = count; left > 0; ) {
    const i = pick(ws, size);
    if (taken[i] === 0) {
      taken[i] = 1;
      left--;
    }
  }
  for (let i = 0; i < size; i++) if (taken[i] === 1) pushField(out, pairs, 2 * i, withValues, nested);
  return array(out);
}

/** A random index below `n`. */
function pick(ws: Workspace, n: number): number {
  return Math.min(n - 1, Math.floor(ws.random() * n));
}

function hincrby(args: readonly Buffer[], ws: Workspace): Reply {
  const delta = parseInt64(args[3]!);
  if (delta === null) return NOT_INTEGER;
  const key = keyOf(args[1]!);
  const e = hashEntry(ws, key);
  if (e === null) return WRONGTYPE;
  let current: Int64 = 0;
  const old = e === undefined ? undefined : hashGet(e.value, args[2]!);
  if (old !== undefined) {
    const v = parseInt64(old);
    if (v === null) return NOT_HASH_INTEGER;
    current = v;
  }
  const sum = addInt64(current, delta);
  if (sum === null) return OVERFLOW;
  const r = setFields(ws, key, e, [args[2]!, int64Bytes(sum)], 0);
  return typeof r === 'number' ? integer(sum) : r;
}

function hincrbyfloat(args: readonly Buffer[], ws: Workspace): Reply {
  const delta = parseLongDouble(args[3]!);
  if (delta === null) return NOT_FLOAT;
  if (delta === INFINITE) return INCREMENT_NAN_OR_INFINITY;
  const key = keyOf(args[1]!);
  const e = hashEntry(ws, key);
  if (e === null) return WRONGTYPE;
  let current: LongDouble = ZERO_LD;
  const old = e === undefined ? undefined : hashGet(e.value, args[2]!);
  if (old !== undefined) {
    const v = parseLongDouble(old);
    if (v === null) return NOT_HASH_FLOAT;
    if (v === INFINITE) return NAN_OR_INFINITY;
    current = v;
  }
  const sum = addLongDouble(current, delta);
  if (sum === INFINITE) return NAN_OR_INFINITY;
  const text = Buffer.from(formatLongDouble(sum), 'latin1');
  const r = setFields(ws, key, e, [args[2]!, text], 0);
  return typeof r === 'number' ? bulk(text) : r;
}

export const HASH_COMMANDS: Readonly<Record<string, EngineCommand>> = {
  hset: {
    arity: -4,
    readOnly: false,
    run(args, ws) {
      const r = hsetGeneric(args, ws, 'hset');
      return typeof r === 'number' ? integer(r) : r;
    },
  },

  hmset: {
    arity: -4,
    readOnly: false,
    run(args, ws) {
      const r = hsetGeneric(args, ws, 'hmset');
      return typeof r === 'number' ? OK : r;
    },
  },

  hsetnx: {
    arity: 4,
    readOnly: false,
    run(args, ws) {
      const key = keyOf(args[1]!);
      const e = hashEntry(ws, key);
      if (e === null) return WRONGTYPE;
      if (e !== undefined && hashGet(e.value, args[2]!) !== undefined) return ZERO;
      const r = setFields(ws, key, e, args, 2);
      return typeof r === 'number' ? ONE : r;
    },
  },

  hget: {
    arity: 3,
    readOnly: true,
    run(args, ws) {
      const v = fieldOf(ws, args[1]!, args[2]!);
      if (v === null) return WRONGTYPE;
      return v === undefined ? NULL_BULK : bulk(v);
    },
  },

  hmget: {
    arity: -3,
    readOnly: true,
    run(args, ws) {
      const e = hashEntry(ws, keyOf(args[1]!));
      if (e === null) return WRONGTYPE;
      const out = new Array<Reply>(args.length - 2);
      for (let i = 2; i < args.length; i++) {
        const v = e === undefined ? undefined : hashGet(e.value, args[i]!);
        out[i - 2] = v === undefined ? NULL_BULK : bulk(v);
      }
      return array(out);
    },
  },

  hgetall: {
    arity: 2,
    readOnly: true,
    run(args, ws) {
      const e = hashEntry(ws, keyOf(args[1]!));
      if (e === undefined) return EMPTY_MAP;
      if (e === null) return WRONGTYPE;
      const pairs = hashPairs(e.value);
      const entries = new Array<ReplyPair>(pairs.length >> 1);
      for (let i = 0; i < pairs.length; i += 2) entries[i >> 1] = [bulk(pairs[i]!), bulk(pairs[i + 1]!)];
      return map(entries);
    },
  },

  hkeys: { arity: 2, readOnly: true, run: (args, ws) => listOf(args, ws, 0) },
  hvals: { arity: 2, readOnly: true, run: (args, ws) => listOf(args, ws, 1) },

  hdel: {
    arity: -3,
    readOnly: false,
    run(args, ws) {
      const key = keyOf(args[1]!);
      const e = hashEntry(ws, key);
      if (e === undefined) return ZERO;
      if (e === null) return WRONGTYPE;
      const edit = hashDelete(e.value, args, 2);
      if (edit.value === null) ws.remove(key);
      else if (edit.count > 0) ws.put(key, HASH, edit.value, e.expiresAt);
      return integer(edit.count);
    },
  },

  hexists: {
    arity: 3,
    readOnly: true,
    run(args, ws) {
      const v = fieldOf(ws, args[1]!, args[2]!);
      if (v === null) return WRONGTYPE;
      return v === undefined ? ZERO : ONE;
    },
  },

  hlen: {
    arity: 2,
    readOnly: true,
    run(args, ws) {
      const e = hashEntry(ws, keyOf(args[1]!));
      if (e === undefined) return ZERO;
      if (e === null) return WRONGTYPE;
      return integer(hashLength(e.value));
    },
  },

  hstrlen: {
    arity: 3,
    readOnly: true,
    run(args, ws) {
      const v = fieldOf(ws, args[1]!, args[2]!);
      if (v === null) return WRONGTYPE;
      return v === undefined ? ZERO : integer(v.length);
    },
  },

  hincrby: { arity: 4, readOnly: false, run: hincrby },
  hincrbyfloat: { arity: 4, readOnly: false, run: hincrbyfloat },
  hscan: { arity: -3, readOnly: true, run: hscan },
  hrandfield: { arity: -2, readOnly: true, run: hrandfield },
};

/** HKEYS (`which` 0) or HVALS (1). */
function listOf(args: readonly Buffer[], ws: Workspace, which: 0 | 1): Reply {
  const e = hashEntry(ws, keyOf(args[1]!));
  if (e === undefined) return EMPTY_ARRAY;
  if (e === null) return WRONGTYPE;
  const pairs = hashPairs(e.value);
  const out = new Array<Reply>(pairs.length >> 1);
  for (let i = which; i < pairs.length; i += 2) out[i >> 1] = bulk(pairs[i]!);
  return array(out);
}
