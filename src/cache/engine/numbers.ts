/**
 * The numbers of Redis's string and hash commands, with Redis's exact rules.
 *
 * Integers (INCR, EXPIRE, GETRANGE...) are C `long long`s read by Redis's string2ll: an optional
 * '-', no '+', no spaces, no leading zeros, no "-0", at most 20 characters, within
 * [-2^63, 2^63-1]. An {@link Int64} is a number while it is a safe integer and a bigint beyond,
 * so the common case never allocates a bigint.
 *
 * Floats (INCRBYFLOAT, HINCRBYFLOAT) are C `long double`s: on x86-64, where Redis runs, the x87
 * 80-bit format (64-bit mantissa with an explicit integer bit, 15-bit exponent), read by glibc's
 * strtold and written by printf's `%.17Lf` with the trailing zeros cut (Redis's ld2string
 * LD_STR_HUMAN). A JavaScript double cannot reproduce that: `INCRBYFLOAT k 0.1` answers "0.1" in
 * Redis because 0.1L has 11 more bits than 0.1, and 1e4000 is a valid long double. So a
 * {@link LongDouble} is kept exactly, as ±m·2^e with bigint m, every operation rounds as the FPU
 * does (to nearest, ties to even, at 64 bits, with the format's denormals and overflow), and the
 * decimal text is produced from the exact value. Slow next to a double (microseconds), but
 * INCRBYFLOAT is not a hot path and exactness is the point.
 */

/** A 64-bit signed integer: a number when it is a safe integer, a bigint only beyond. */
export type Int64 = number | bigint;

export const INT64_MAX = 2n ** 63n - 1n;
export const INT64_MIN = -(2n ** 63n);

/** Redis's LONG_STR_SIZE: a string this long or longer is never an integer. */
const LONG_STR_SIZE = 21;

/** A bigint as an Int64: a number when it is safe. */
function int64Of(v: bigint): Int64 {
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
}

/**
 * `b` as a 64-bit integer by Redis's string2ll rules, or null. Up to 15 digits (every value
 * a number holds exactly) it is read byte by byte without building a string.
 */
export function parseInt64(b: Uint8Array): Int64 | null {
  const n = b.length;
  if (n === 0 || n >= LONG_STR_SIZE) return null;
  let i = 0;
  let negative = false;
  if (b[0] === 0x2d /* - */) {
    if (n === 1) return null;
    negative = true;
    i = 1;
  }
  const first = b[i]!;
  if (first === 0x30 /* 0 */) return n === 1 ? 0 : null;
  if (first < 0x31 || first > 0x39) return null;
  if (n - i <= 15) {
    let v = 0;
    for (; i < n; i++) {
      const d = b[i]! - 0x30;
      if (d < 0 || d > 9) return null;
      v = v * 10 + d;
    }
    return negative ? -v : v;
  }
  let text = '';
  for (; i < n; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x39) return null;
    text += String.fromCharCode(c);
  }
  const v = negative ? -BigInt(text) : BigInt(text);
  return v < INT64_MIN || v > INT64_MAX ? null : int64Of(v);
}

/** a + b, or null when the sum leaves the 64-bit range (Redis's overflow check). */
export function addInt64(a: Int64, b: Int64): Int64 | null {
  if (typeof a === 'number' && typeof b === 'number') {
    const s = a + b;
    if (Number.isSafeInteger(s)) return s;
  }
  const s = BigInt(a) + BigInt(b);
  return s < INT64_MIN || s > INT64_MAX ? null : int64Of(s);
}

/** -v; -(-2^63) does not fit, and is returned as null. */
export function negateInt64(v: Int64): Int64 | null {
  if (typeof v === 'number') return -v;
  return v === INT64_MIN ? null : int64Of(-v);
}

/** The decimal bytes of an integer, as Redis stores it (written digit by digit: INCR's hot path). */
export function int64Bytes(v: Int64): Buffer {
  if (typeof v === 'bigint') return Buffer.from(v.toString(), 'latin1');
  let n = v < 0 ? -v : v;
  let digits = 1;
  for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
  const size = v < 0 ? digits + 1 : digits;
  const out = Buffer.allocUnsafe(size);
  if (v < 0) out[0] = 0x2d;
  for (let i = size - 1; i >= size - digits; i--) {
    out[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return out;
}

// ---------------------------------------------------------------- x87 long double

/** A finite long double: (-1)^neg · m · 2^e exactly (m = 0: a zero, signed by neg). */
export interface LongDouble {
  readonly neg: boolean;
  readonly m: bigint;
  readonly e: number;
}

/** What strtold read as an infinity ("inf", "-Infinity"): valid input, but no finite value. */
export const INFINITE = Symbol('infinite');
export type LongDoubleOrInfinite = LongDouble | typeof INFINITE;

/** Mantissa bits (the integer bit is explicit). */
const MANT_BITS = 64;
/** The lowest bit a long double holds: the least denormal is 2^-16445. */
const MIN_LSB = -16445;
/** Values at or above 2^16384 overflow. */
const MAX_EXP = 16384;
/** Redis's MAX_LONG_DOUBLE_CHARS: string2ld refuses longer input (5 * 1024 bytes, NUL included). */
const MAX_LONG_DOUBLE_CHARS = 5 * 1024;

function bitLength(m: bigint): number {
  if (m === 0n) return 0;
  const hex = m.toString(16);
  return (hex.length - 1) * 4 + (32 - Math.clz32(parseInt(hex[0]!, 16)));
}

/**
 * Round ±M·2^E (M >= 0, exact) to a long double: to nearest, ties to even, at 64 bits, or
 * fewer below the normal range (denormals). INFINITE when it overflows.
 */
function roundToLongDouble(neg: boolean, M: bigint, E: number): LongDoubleOrInfinite {
  if (M === 0n) return { neg, m: 0n, e: 0 };
  const len = bitLength(M);
  const shift = Math.max(len - MANT_BITS, MIN_LSB - E);
  if (shift > 0) {
    const s = BigInt(shift);
    const kept = M >> s;
    const rest = M - (kept << s);
    const half = 1n << (s - 1n);
    M = rest > half || (rest === half && (kept & 1n) === 1n) ? kept + 1n : kept;
    E += shift;
    if (bitLength(M) > MANT_BITS) {
      M >>= 1n;
      E += 1;
    }
  }
  if (M !== 0n && E + bitLength(M) > MAX_EXP) return INFINITE;
  return { neg, m: M, e: E };
}

/** a + b, rounded as the FPU does; INFINITE on overflow. */
export function addLongDouble(a: LongDouble, b: LongDouble): LongDoubleOrInfinite {
  const e = Math.min(a.e, b.e);
  const am = a.m << BigInt(a.e - e);
  const bm = b.m << BigInt(b.e - e);
  const s = (a.neg ? -am : am) + (b.neg ? -bm : bm);
  // x + (-x) is +0 when rounding to nearest; -0 + -0 stays -0.
  if (s === 0n) return { neg: a.neg && b.neg && a.m === 0n && b.m === 0n, m: 0n, e: 0 };
  return roundToLongDouble(s < 0n, s < 0n ? -s : s, e);
}

export function longDoubleFromInt64(v: Int64): LongDouble {
  const b = BigInt(v);
  const r = roundToLongDouble(b < 0n, b < 0n ? -b : b, 0);
  if (r === INFINITE) throw new RangeError('impossible: a 64-bit integer overflowed a long double');
  return r;
}

function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
}

/** Does `s` from `at` hold `word` (lower-case ASCII), in any case? */
function hasWord(s: Uint8Array, at: number, end: number, word: string): boolean {
  if (end - at < word.length) return false;
  for (let i = 0; i < word.length; i++) if (lower(s[at + i]!) !== word.charCodeAt(i)) return false;
  return true;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = lower(c);
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** Exponent digits from `at`, clamped (a billion is beyond any long double either way). */
function readExponent(s: Uint8Array, at: number, end: number): { value: number; next: number } | null {
  let i = at;
  let negative = false;
  if (i < end && (s[i] === 0x2b || s[i] === 0x2d)) {
    negative = s[i] === 0x2d;
    i++;
  }
  if (i >= end || s[i]! < 0x30 || s[i]! > 0x39) return null;
  let v = 0;
  for (; i < end && s[i]! >= 0x30 && s[i]! <= 0x39; i++) v = Math.min(v * 10 + (s[i]! - 0x30), 1e9);
  return { value: negative ? -v : v, next: i };
}

/**
 * `b` as Redis's string2ld reads it: glibc strtold, which must consume every byte (so no NUL
 * inside), no leading space. Decimal and
 * hexadecimal (0x1.8p3) forms; "inf"/"infinity" give INFINITE; NaN, overflow and an underflow
 * to zero are refused (null), a denormal result is kept.
 */
export function parseLongDouble(b: Uint8Array): LongDoubleOrInfinite | null {
  if (b.length === 0 || b.length >= MAX_LONG_DOUBLE_CHARS) return null;
  // Redis checks that strtold read every byte: a NUL inside ends the C string early, so refused.
  const end = b.length;
  if (b.indexOf(0) >= 0 || isSpace(b[0]!)) return null;
  let i = 0;
  let neg = false;
  if (b[i] === 0x2b || b[i] === 0x2d) {
    neg = b[i] === 0x2d;
    i++;
  }
  if (hasWord(b, i, end, 'inf')) {
    const after = hasWord(b, i, end, 'infinity') ? i + 8 : i + 3;
    return after === end ? INFINITE : null;
  }
  if (b[i] === 0x30 && i + 1 < end && lower(b[i + 1]!) === 0x78 /* x */) {
    const hex = parseHex(b, i + 2, end, neg);
    // "0x" without a hex digit: strtold reads the "0" and stops at the x, which is left over.
    if (hex !== undefined) return hex;
    return null;
  }
  return parseDecimal(b, i, end, neg);
}

function parseDecimal(s: Uint8Array, at: number, end: number, neg: boolean): LongDoubleOrInfinite | null {
  let digits = '';
  let exp10 = 0;
  let seen = false;
  let i = at;
  for (; i < end && s[i]! >= 0x30 && s[i]! <= 0x39; i++) {
    seen = true;
    if (digits.length > 0 || s[i] !== 0x30) digits += String.fromCharCode(s[i]!);
  }
  if (i < end && s[i] === 0x2e /* . */) {
    i++;
    for (; i < end && s[i]! >= 0x30 && s[i]! <= 0x39; i++) {
      seen = true;
      if (digits.length > 0 || s[i] !== 0x30) digits += String.fromCharCode(s[i]!);
      exp10--;
    }
  }
  if (!seen) return null;
  if (i < end && lower(s[i]!) === 0x65 /* e */) {
    const x = readExponent(s, i + 1, end);
    // "1e" or "1e+": the exponent is not read, so the 'e' is left over.
    if (x === null) return null;
    exp10 += x.value;
    i = x.next;
  }
  if (i !== end) return null;
  if (digits.length === 0) return { neg, m: 0n, e: 0 };
  // Bounds before any big power: below 10^-4952 rounds to zero, 10^4933 and above overflow.
  const magnitude = digits.length + exp10;
  if (magnitude > 4934) return null;
  if (magnitude < -4952) return null;
  const D = BigInt(digits);
  let r: LongDoubleOrInfinite;
  if (exp10 >= 0) {
    r = roundToLongDouble(neg, D * 10n ** BigInt(exp10), 0);
  } else {
    const den = 10n ** BigInt(-exp10);
    // Enough quotient bits for a 64-bit mantissa and a guard bit; the remainder is the sticky bit.
    const k = Math.max(0, MANT_BITS + 2 + bitLength(den) - bitLength(D));
    const num = D << BigInt(k);
    const q = num / den;
    const sticky = num - q * den === 0n ? 0n : 1n;
    r = roundToLongDouble(neg, (q << 1n) | sticky, -k - 1);
  }
  if (r === INFINITE) return null; // ERANGE, HUGE_VAL
  if (r.m === 0n) return null; // ERANGE, rounded to zero
  return r;
}

/** The part after "0x"; undefined when no hex digit follows (see parseLongDouble). */
function parseHex(s: Uint8Array, at: number, end: number, neg: boolean): LongDoubleOrInfinite | null | undefined {
  let M = 0n;
  let exp2 = 0;
  let seen = false;
  let i = at;
  for (; i < end && hexDigit(s[i]!) >= 0; i++) {
    seen = true;
    M = (M << 4n) | BigInt(hexDigit(s[i]!));
  }
  if (i < end && s[i] === 0x2e) {
    let j = i + 1;
    for (; j < end && hexDigit(s[j]!) >= 0; j++) {
      seen = true;
      M = (M << 4n) | BigInt(hexDigit(s[j]!));
      exp2 -= 4;
    }
    if (seen) i = j;
  }
  if (!seen) return undefined;
  if (i < end && lower(s[i]!) === 0x70 /* p */) {
    const x = readExponent(s, i + 1, end);
    if (x === null) return null;
    exp2 += x.value;
    i = x.next;
  }
  if (i !== end) return null;
  if (M === 0n) return { neg, m: 0n, e: 0 };
  const len = bitLength(M);
  if (len + exp2 > MAX_EXP + 1) return null;
  if (len + exp2 < MIN_LSB - 1) return null;
  const r = roundToLongDouble(neg, M, exp2);
  if (r === INFINITE || r.m === 0n) return null;
  return r;
}

/**
 * Redis's LD_STR_HUMAN text: printf `%.17Lf` (17 digits after the point, exact decimal
 * expansion, ties to even), trailing zeros and a bare point cut, "-0" written "0".
 */
export function formatLongDouble(v: LongDouble): string {
  let scaled: bigint;
  if (v.e >= 0) {
    scaled = (v.m << BigInt(v.e)) * 10n ** 17n;
  } else {
    const num = v.m * 10n ** 17n;
    const s = BigInt(-v.e);
    const q = num >> s;
    const rest = num - (q << s);
    const half = 1n << (s - 1n);
    scaled = rest > half || (rest === half && (q & 1n) === 1n) ? q + 1n : q;
  }
  let digits = scaled.toString().padStart(18, '0');
  const point = digits.length - 17;
  let out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  let cut = out.length;
  while (out.charCodeAt(cut - 1) === 0x30) cut--;
  if (out.charCodeAt(cut - 1) === 0x2e) cut--;
  digits = out.slice(0, cut);
  out = v.neg ? `-${digits}` : digits;
  return out === '-0' ? '0' : out;
}
