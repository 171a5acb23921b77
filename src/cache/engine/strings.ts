/**
 * String commands, as Redis 7.0's t_string.c: GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX MGET
 * MSET MSETNX APPEND STRLEN GETRANGE SETRANGE INCR DECR INCRBY DECRBY INCRBYFLOAT.
 *
 * The order of checks is Redis's, since it decides which error a client sees when several
 * apply (SET's options before its expire time, GETEX's key lookup before its expire time...).
 * One jincache rule on top: a value over max_value_bytes fails the command first.
 */
import { NULL_BULK, OK, array, bulk, error, integer, type Reply } from '../reply.ts';
import {
  NAN_OR_INFINITY,
  NOT_FLOAT,
  NOT_INTEGER,
  ONE,
  OVERFLOW,
  STRING_TOO_BIG,
  SYNTAX,
  WRONGTYPE,
  ZERO,
  invalidExpireTime,
  isReply,
  keyOf,
  optionOf,
  wrongArity,
  type EngineCommand,
} from './common.ts';
import {
  INFINITE,
  INT64_MAX,
  addInt64,
  addLongDouble,
  formatLongDouble,
  int64Bytes,
  negateInt64,
  parseInt64,
  parseLongDouble,
  type Int64,
  type LongDouble,
} from './numbers.ts';
import { STRING } from './types.ts';
import type { Workspace } from './workspace.ts';

const EMPTY_BULK = bulk(Buffer.alloc(0));
const OFFSET_OUT_OF_RANGE = error('ERR offset is out of range');
const DECREMENT_OVERFLOW = error('ERR decrement would overflow');
const ZERO_LD: LongDouble = { neg: false, m: 0n, e: 0 };

// SET and GETEX options (Redis's OBJ_SET_* flags).
const NX = 1;
const XX = 2;
const GET = 4;
const KEEPTTL = 8;
const PERSIST = 16;
const EX = 32;
const PX = 64;
const EXAT = 128;
const PXAT = 256;
const ANY_EXPIRY = EX | PX | EXAT | PXAT;

interface Extended {
  flags: number;
  expire: Buffer | null;
}

/**
 * SET's options from `args[3]` (or GETEX's from `args[2]`), as Redis's
 * parseExtendedStringArgumentsOrReply: NX/XX exclude each other, the expiry options exclude each
 * other and KEEPTTL/PERSIST, but one repeated is accepted (the last amount wins); an option
 * missing its amount is a syntax error.
 */
function parseExtended(args: readonly Buffer[], from: number, forSet: boolean): Extended | Reply {
  let flags = 0;
  let expire: Buffer | null = null;
  for (let j = from; j < args.length; j++) {
    const opt = optionOf(args[j]!);
    const hasNext = j < args.length - 1;
    if (opt === 'nx' && forSet && !(flags & XX)) flags |= NX;
    else if (opt === 'xx' && forSet && !(flags & NX)) flags |= XX;
    else if (opt === 'get' && forSet) flags |= GET;
    else if (opt === 'keepttl' && forSet && !(flags & (PERSIST | ANY_EXPIRY))) flags |= KEEPTTL;
    else if (opt === 'persist' && !forSet && !(flags & (KEEPTTL | ANY_EXPIRY))) flags |= PERSIST;
    else if (opt === 'ex' && hasNext && !(flags & (KEEPTTL | PERSIST | PX | EXAT | PXAT))) {
      flags |= EX;
      expire = args[++j]!;
    } else if (opt === 'px' && hasNext && !(flags & (KEEPTTL | PERSIST | EX | EXAT | PXAT))) {
      flags |= PX;
      expire = args[++j]!;
    } else if (opt === 'exat' && hasNext && !(flags & (KEEPTTL | PERSIST | EX | PX | PXAT))) {
      flags |= EXAT;
      expire = args[++j]!;
    } else if (opt === 'pxat' && hasNext && !(flags & (KEEPTTL | PERSIST | EX | PX | EXAT))) {
      flags |= PXAT;
      expire = args[++j]!;
    } else {
      return SYNTAX;
    }
  }
  return { flags, expire };
}

/**
 * An expiry argument as an absolute time in ms, as Redis's getExpireMillisecondsOrReply: a
 * positive integer, in seconds or ms, relative to `now` or absolute, whose result fits in 64 bits.
 */
export function expireAtMs(arg: Buffer, seconds: boolean, relative: boolean, now: number, name: string): number | Reply {
  const v = parseInt64(arg);
  if (v === null) return NOT_INTEGER;
  if (typeof v === 'number') {
    if (v <= 0) return invalidExpireTime(name);
    const abs = (seconds ? v * 1000 : v) + (relative ? now : 0);
    if (Number.isSafeInteger(abs)) return abs;
  }
  let ms = BigInt(v);
  if (ms <= 0n || (seconds && ms > INT64_MAX / 1000n)) return invalidExpireTime(name);
  if (seconds) ms *= 1000n;
  if (relative) ms += BigInt(now);
  if (ms > INT64_MAX) return invalidExpireTime(name);
  return Number(ms);
}

function expiryOf(flags: number, arg: Buffer, now: number, name: string): number | Reply {
  return expireAtMs(arg, (flags & (PX | PXAT)) === 0, (flags & (EX | PX)) !== 0, now, name);
}

/** GET's reply for `key`, or WRONGTYPE. */
function getReply(ws: Workspace, key: string): Reply {
  const e = ws.get(key);
  if (e === undefined) return NULL_BULK;
  return e.type === STRING ? bulk(e.value) : WRONGTYPE;
}

/** Redis's setGenericCommand. */
function setGeneric(ws: Workspace, flags: number, keyArg: Buffer, value: Buffer, expireArg: Buffer | null, name: string, ok: Reply, abort: Reply): Reply {
  if (value.length > ws.maxValueBytes) return STRING_TOO_BIG;
  let expiresAt = 0;
  if (expireArg !== null) {
    const ms = expiryOf(flags, expireArg, ws.now, name);
    if (typeof ms !== 'number') return ms;
    expiresAt = ms;
  }
  const key = keyOf(keyArg);
  const old = ws.get(key);
  let got: Reply | null = null;
  if (flags & GET) {
    if (old !== undefined && old.type !== STRING) return WRONGTYPE;
    got = old === undefined ? NULL_BULK : bulk(old.value);
  }
  if ((flags & NX && old !== undefined) || (flags & XX && old === undefined)) return got ?? abort;
  if (flags & KEEPTTL) expiresAt = old?.expiresAt ?? 0;
  ws.put(key, STRING, value, expiresAt);
  return got ?? ok;
}

/** INCR and friends: `delta` added to the integer at `keyArg`, its TTL kept. */
function incrBy(ws: Workspace, keyArg: Buffer, delta: Int64): Reply {
  const key = keyOf(keyArg);
  const e = ws.get(key);
  let current: Int64 = 0;
  if (e !== undefined) {
    if (e.type !== STRING) return WRONGTYPE;
    const v = parseInt64(e.value);
    if (v === null) return NOT_INTEGER;
    current = v;
  }
  const sum = addInt64(current, delta);
  if (sum === null) return OVERFLOW;
  ws.put(key, STRING, int64Bytes(sum), e === undefined ? 0 : e.expiresAt);
  return integer(sum);
}

const INCR_ONE: Int64 = 1;
const DECR_ONE: Int64 = -1;

export const STRING_COMMANDS: Readonly<Record<string, EngineCommand>> = {
  get: { arity: 2, readOnly: true, run: (args, ws) => getReply(ws, keyOf(args[1]!)) },

  set: {
    arity: -3,
    readOnly: false,
    run(args, ws) {
      if (args.length === 3) return setGeneric(ws, 0, args[1]!, args[2]!, null, 'set', OK, NULL_BULK);
      const o = parseExtended(args, 3, true);
      if (isReply(o)) return o;
      return setGeneric(ws, o.flags, args[1]!, args[2]!, o.expire, 'set', OK, NULL_BULK);
    },
  },

  setnx: { arity: 3, readOnly: false, run: (args, ws) => setGeneric(ws, NX, args[1]!, args[2]!, null, 'setnx', ONE, ZERO) },
  setex: { arity: 4, readOnly: false, run: (args, ws) => setGeneric(ws, EX, args[1]!, args[3]!, args[2]!, 'setex', OK, NULL_BULK) },
  psetex: { arity: 4, readOnly: false, run: (args, ws) => setGeneric(ws, PX, args[1]!, args[3]!, args[2]!, 'psetex', OK, NULL_BULK) },

  getset: {
    arity: 3,
    readOnly: false,
    run(args, ws) {
      const value = args[2]!;
      if (value.length > ws.maxValueBytes) return STRING_TOO_BIG;
      const key = keyOf(args[1]!);
      const old = getReply(ws, key);
      if (old.type === 'error') return old;
      ws.put(key, STRING, value, 0);
      return old;
    },
  },

  getdel: {
    arity: 2,
    readOnly: false,
    run(args, ws) {
      const key = keyOf(args[1]!);
      const old = getReply(ws, key);
      if (old !== NULL_BULK && old.type !== 'error') ws.remove(key);
      return old;
    },
  },

  getex: {
    arity: -2,
    readOnly: false,
    run(args, ws) {
      const o = parseExtended(args, 2, false);
      if (isReply(o)) return o;
      const key = keyOf(args[1]!);
      const e = ws.get(key);
      if (e === undefined) return NULL_BULK;
      if (e.type !== STRING) return WRONGTYPE;
      if (o.expire !== null) {
        const ms = expiryOf(o.flags, o.expire, ws.now, 'getex');
        if (typeof ms !== 'number') return ms;
        ws.put(key, STRING, e.value, ms); // an EXAT/PXAT in the past deletes it
      } else if (o.flags & PERSIST && e.expiresAt !== 0) {
        ws.put(key, STRING, e.value, 0);
      }
      return bulk(e.value);
    },
  },

  mget: {
    arity: -2,
    readOnly: true,
    run(args, ws) {
      const out = new Array<Reply>(args.length - 1);
      for (let i = 1; i < args.length; i++) {
        const e = ws.get(keyOf(args[i]!));
        out[i - 1] = e !== undefined && e.type === STRING ? bulk(e.value) : NULL_BULK;
      }
      return array(out);
    },
  },

  mset: {
    arity: -3,
    readOnly: false,
    run(args, ws) {
      if (args.length % 2 === 0) return wrongArity('mset');
      for (let i = 2; i < args.length; i += 2) if (args[i]!.length > ws.maxValueBytes) return STRING_TOO_BIG;
      for (let i = 1; i < args.length; i += 2) ws.put(keyOf(args[i]!), STRING, args[i + 1]!, 0);
      return OK;
    },
  },

  msetnx: {
    arity: -3,
    readOnly: false,
    run(args, ws) {
      if (args.length % 2 === 0) return wrongArity('msetnx');
      for (let i = 2; i < args.length; i += 2) if (args[i]!.length > ws.maxValueBytes) return STRING_TOO_BIG;
      for (let i = 1; i < args.length; i += 2) if (ws.get(keyOf(args[i]!)) !== undefined) return ZERO;
      for (let i = 1; i < args.length; i += 2) ws.put(keyOf(args[i]!), STRING, args[i + 1]!, 0);
      return ONE;
    },
  },

  append: {
    arity: 3,
    readOnly: false,
    run(args, ws) {
      const key = keyOf(args[1]!);
      const tail = args[2]!;
      const e = ws.get(key);
      if (e === undefined) {
        if (tail.length > ws.maxValueBytes) return STRING_TOO_BIG;
        ws.put(key, STRING, tail, 0);
        return integer(tail.length);
      }
      if (e.type !== STRING) return WRONGTYPE;
      const total = e.value.length + tail.length;
      if (total > ws.maxValueBytes) return STRING_TOO_BIG;
      ws.put(key, STRING, Buffer.concat([e.value, tail], total), e.expiresAt);
      return integer(total);
    },
  },

  strlen: {
    arity: 2,
    readOnly: true,
    run(args, ws) {
      const e = ws.get(keyOf(args[1]!));
      if (e === undefined) return ZERO;
      return e.type === STRING ? integer(e.value.length) : WRONGTYPE;
    },
  },

  getrange: {
    arity: 4,
    readOnly: true,
    run(args, ws) {
      const s = parseInt64(args[2]!);
      if (s === null) return NOT_INTEGER;
      const en = parseInt64(args[3]!);
      if (en === null) return NOT_INTEGER;
      const e = ws.get(keyOf(args[1]!));
      if (e === undefined) return EMPTY_BULK;
      if (e.type !== STRING) return WRONGTYPE;
      const len = e.value.length;
      // 64-bit bounds only matter against a length, so doubles are exact enough here.
      let start = Number(s);
      let end = Number(en);
      if (start < 0 && end < 0 && start > end) return EMPTY_BULK;
      if (start < 0) start = len + start;
      if (end < 0) end = len + end;
      if (start < 0) start = 0;
      if (end < 0) end = 0;
      if (end >= len) end = len - 1;
      if (start > end || len === 0) return EMPTY_BULK;
      return bulk(e.value.subarray(start, end + 1));
    },
  },

  setrange: {
    arity: 4,
    readOnly: false,
    run(args, ws) {
      const off = parseInt64(args[2]!);
      if (off === null) return NOT_INTEGER;
      if (off < 0) return OFFSET_OUT_OF_RANGE;
      const key = keyOf(args[1]!);
      const piece = args[3]!;
      const e = ws.get(key);
      if (e !== undefined && e.type !== STRING) return WRONGTYPE;
      const oldLen = e === undefined ? 0 : e.value.length;
      if (piece.length === 0) return integer(oldLen);
      const offset = Number(off);
      if (offset + piece.length > ws.maxValueBytes) return STRING_TOO_BIG;
      const size = Math.max(oldLen, offset + piece.length);
      const out = Buffer.alloc(size);
      if (e !== undefined) e.value.copy(out, 0);
      out.set(piece, offset);
      ws.put(key, STRING, out, e === undefined ? 0 : e.expiresAt);
      return integer(size);
    },
  },

  incr: { arity: 2, readOnly: false, run: (args, ws) => incrBy(ws, args[1]!, INCR_ONE) },
  decr: { arity: 2, readOnly: false, run: (args, ws) => incrBy(ws, args[1]!, DECR_ONE) },

  incrby: {
    arity: 3,
    readOnly: false,
    run(args, ws) {
      const delta = parseInt64(args[2]!);
      return delta === null ? NOT_INTEGER : incrBy(ws, args[1]!, delta);
    },
  },

  decrby: {
    arity: 3,
    readOnly: false,
    run(args, ws) {
      const delta = parseInt64(args[2]!);
      if (delta === null) return NOT_INTEGER;
      const negated = negateInt64(delta);
      return negated === null ? DECREMENT_OVERFLOW : incrBy(ws, args[1]!, negated);
    },
  },

  incrbyfloat: {
    arity: 3,
    readOnly: false,
    run(args, ws) {
      const key = keyOf(args[1]!);
      const e = ws.get(key);
      if (e !== undefined && e.type !== STRING) return WRONGTYPE;
      const current = e === undefined ? ZERO_LD : parseLongDouble(e.value);
      if (current === null) return NOT_FLOAT;
      const delta = parseLongDouble(args[2]!);
      if (delta === null) return NOT_FLOAT;
      if (current === INFINITE || delta === INFINITE) return NAN_OR_INFINITY;
      const sum = addLongDouble(current, delta);
      if (sum === INFINITE) return NAN_OR_INFINITY;
      const text = Buffer.from(formatLongDouble(sum), 'latin1');
      ws.put(key, STRING, text, e === undefined ? 0 : e.expiresAt);
      return bulk(text);
    },
  },
};
