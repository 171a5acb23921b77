/**
 * Expiry and keyspace commands on the keys of one slot, as Redis 7.0's expire.c and db.c:
 * EXPIRE PEXPIRE EXPIREAT PEXPIREAT (NX XX GT LT) EXPIRETIME PEXPIRETIME PERSIST TTL PTTL,
 * TYPE DEL UNLINK TOUCH EXISTS RENAME RENAMENX COPY.
 *
 * Times are absolute ms (EngineEntry.expiresAt); Redis's 64-bit arithmetic is done in bigint
 * where a number could lose it, and its overflow checks answer "invalid expire time" alike.
 *
 * COPY ... DB: jincache has one database and answers as a Redis Cluster node does (databases
 * 16, only 0 usable): DB 0 copies, DB 1..15 is "Copying to another database is not allowed in
 * cluster mode", anything else "DB index is out of range" (or not an integer).
 */
import { OK, error, integer, simple, type Reply } from '../reply.ts';
import {
  MINUS_ONE,
  MINUS_TWO,
  NOT_INTEGER,
  ONE,
  SYNTAX,
  ZERO,
  invalidExpireTime,
  keyOf,
  optionOf,
  cString,
  formattedError,
  type EngineCommand,
} from './common.ts';
import { INT64_MAX, INT64_MIN, parseInt64 } from './numbers.ts';
import { HASH } from './types.ts';
import type { Workspace } from './workspace.ts';

const NOT_AN_INT = error('ERR value is out of range, value must between -2147483648 and 2147483647');
const NO_SUCH_KEY = error('ERR no such key');
const SAME_OBJECT = error('ERR source and destination objects are the same');
const DB_OUT_OF_RANGE = error('ERR DB index is out of range');
const COPY_OTHER_DB = error('ERR Copying to another database is not allowed in cluster mode');
const NX_CONFLICT = error('ERR NX and XX, GT or LT options at the same time are not compatible');
const GT_LT_CONFLICT = error('ERR GT and LT options at the same time are not compatible');
const TYPE_NONE = simple('none');
const TYPE_STRING = simple('string');
const TYPE_HASH = simple('hash');
/** What a Redis Cluster node has (the default `databases`), though only 0 is usable. */
const DATABASES = 16;

const E_NX = 1;
const E_XX = 2;
const E_GT = 4;
const E_LT = 8;

/**
 * Redis's expireGenericCommand: `basetime` 0 for the *AT forms, now for the relative ones.
 * The options are checked first, then the amount, then the key; a time at or before now
 * deletes the key (and answers 1).
 */
function expireGeneric(args: readonly Buffer[], ws: Workspace, name: string, seconds: boolean, relative: boolean): Reply {
  let flags = 0;
  for (let j = 3; j < args.length; j++) {
    const opt = optionOf(args[j]!);
    if (opt === 'nx') flags |= E_NX;
    else if (opt === 'xx') flags |= E_XX;
    else if (opt === 'gt') flags |= E_GT;
    else if (opt === 'lt') flags |= E_LT;
    else return formattedError(`Unsupported option ${cString(args[j]!)}`);
  }
  if (flags & E_NX && flags & (E_XX | E_GT | E_LT)) return NX_CONFLICT;
  if (flags & E_GT && flags & E_LT) return GT_LT_CONFLICT;
  const amount = parseInt64(args[2]!);
  if (amount === null) return NOT_INTEGER;
  let when: number;
  const fast = typeof amount === 'number' ? (seconds ? amount * 1000 : amount) + (relative ? ws.now : 0) : NaN;
  if (Number.isSafeInteger(fast)) {
    when = fast;
  } else {
    let w = BigInt(amount);
    if (seconds) {
      if (w > INT64_MAX / 1000n || w < INT64_MIN / 1000n) return invalidExpireTime(name);
      w *= 1000n;
    }
    const base = relative ? BigInt(ws.now) : 0n;
    if (w > INT64_MAX - base) return invalidExpireTime(name);
    when = Number(w + base);
  }
  const key = keyOf(args[1]!);
  const e = ws.get(key);
  if (e === undefined) return ZERO;
  if (flags) {
    const current = e.expiresAt === 0 ? -1 : e.expiresAt;
    if (flags & E_NX && current !== -1) return ZERO;
    if (flags & E_XX && current === -1) return ZERO;
    // No expiry counts as an infinite TTL: GT never beats it, LT always does.
    if (flags & E_GT && (current === -1 || when <= current)) return ZERO;
    if (flags & E_LT && current !== -1 && when >= current) return ZERO;
  }
  if (when <= ws.now) ws.remove(key);
  else ws.put(key, e.type, e.value, when);
  return ONE;
}

/** Redis's ttlGenericCommand: -2 no key, -1 no expiry; seconds are rounded to the nearest. */
function ttlGeneric(args: readonly Buffer[], ws: Workspace, ms: boolean, absolute: boolean): Reply {
  const e = ws.get(keyOf(args[1]!));
  if (e === undefined) return MINUS_TWO;
  if (e.expiresAt === 0) return MINUS_ONE;
  let ttl = absolute ? e.expiresAt : e.expiresAt - ws.now;
  if (ttl < 0) ttl = 0;
  return time(ms ? ttl : Math.floor((ttl + 500) / 1000));
}

/**
 * An integer reply for a time. Expiry times beyond 2^53 ms (year 287396) are held as doubles,
 * so they are answered as the nearest 64-bit integer the double is (Redis keeps all 64 bits).
 */
function time(v: number): Reply {
  if (Number.isSafeInteger(v)) return integer(v);
  const b = BigInt(v);
  return integer(b > INT64_MAX ? INT64_MAX : b);
}

function deleteKeys(args: readonly Buffer[], ws: Workspace): Reply {
  let n = 0;
  for (let i = 1; i < args.length; i++) {
    const key = keyOf(args[i]!);
    if (ws.get(key) !== undefined) {
      ws.remove(key);
      n++;
    }
  }
  return integer(n);
}

/** EXISTS and TOUCH: live keys, a key named twice counted twice. */
function countKeys(args: readonly Buffer[], ws: Workspace): Reply {
  let n = 0;
  for (let i = 1; i < args.length; i++) if (ws.get(keyOf(args[i]!)) !== undefined) n++;
  return integer(n);
}

function renameGeneric(args: readonly Buffer[], ws: Workspace, nx: boolean): Reply {
  const from = keyOf(args[1]!);
  const to = keyOf(args[2]!);
  const e = ws.get(from);
  if (e === undefined) return NO_SUCH_KEY;
  if (from === to) return nx ? ZERO : OK;
  if (nx && ws.get(to) !== undefined) return ZERO;
  ws.put(to, e.type, e.value, e.expiresAt);
  ws.remove(from);
  return nx ? ONE : OK;
}

export const KEYSPACE_COMMANDS: Readonly<Record<string, EngineCommand>> = {
  expire: { arity: -3, readOnly: false, run: (args, ws) => expireGeneric(args, ws, 'expire', true, true) },
  pexpire: { arity: -3, readOnly: false, run: (args, ws) => expireGeneric(args, ws, 'pexpire', false, true) },
  expireat: { arity: -3, readOnly: false, run: (args, ws) => expireGeneric(args, ws, 'expireat', true, false) },
  pexpireat: { arity: -3, readOnly: false, run: (args, ws) => expireGeneric(args, ws, 'pexpireat', false, false) },
  ttl: { arity: 2, readOnly: true, run: (args, ws) => ttlGeneric(args, ws, false, false) },
  pttl: { arity: 2, readOnly: true, run: (args, ws) => ttlGeneric(args, ws, true, false) },
  expiretime: { arity: 2, readOnly: true, run: (args, ws) => ttlGeneric(args, ws, false, true) },
  pexpiretime: { arity: 2, readOnly: true, run: (args, ws) => ttlGeneric(args, ws, true, true) },

  persist: {
    arity: 2,
    readOnly: false,
    run(args, ws) {
      const key = keyOf(args[1]!);
      const e = ws.get(key);
      if (e === undefined || e.expiresAt === 0) return ZERO;
      ws.put(key, e.type, e.value, 0);
      return ONE;
    },
  },

  type: {
    arity: 2,
    readOnly: true,
    run(args, ws) {
      const e = ws.get(keyOf(args[1]!));
      if (e === undefined) return TYPE_NONE;
      return e.type === HASH ? TYPE_HASH : TYPE_STRING;
    },
  },

  del: { arity: -2, readOnly: false, run: deleteKeys },
  unlink: { arity: -2, readOnly: false, run: deleteKeys },
  exists: { arity: -2, readOnly: true, run: countKeys },
  touch: { arity: -2, readOnly: true, run: countKeys },
  rename: { arity: 3, readOnly: false, run: (args, ws) => renameGeneric(args, ws, false) },
  renamenx: { arity: 3, readOnly: false, run: (args, ws) => renameGeneric(args, ws, true) },

  copy: {
    arity: -3,
    readOnly: false,
    run(args, ws) {
      let replace = false;
      let db = 0;
      for (let j = 3; j < args.length; j++) {
        const opt = optionOf(args[j]!);
        if (opt === 'replace') {
          replace = true;
        } else if (opt === 'db' && j + 1 < args.length) {
          const n = parseInt64(args[++j]!);
          // getIntFromObjectOrReply: a 64-bit integer, then a C int.
          if (n === null) return NOT_INTEGER;
          if (n < -(2 ** 31) || n >= 2 ** 31) return NOT_AN_INT;
          if (n < 0 || n >= DATABASES) return DB_OUT_OF_RANGE;
          db = Number(n);
        } else {
          return SYNTAX;
        }
      }
      if (db !== 0) return COPY_OTHER_DB;
      const from = keyOf(args[1]!);
      const to = keyOf(args[2]!);
      if (from === to) return SAME_OBJECT;
      const e = ws.get(from);
      if (e === undefined) return ZERO;
      if (ws.get(to) !== undefined && !replace) return ZERO;
      ws.put(to, e.type, e.value, e.expiresAt);
      return ONE;
    },
  },
};
