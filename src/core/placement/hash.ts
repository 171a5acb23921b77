/**
 * Hashing for placement.
 *
 * Keys go to Redis Cluster's 16384 hash slots: `slot = CRC16(key) mod 16384`, where only the part
 * inside the first non-empty `{...}` is hashed when there is one (a hash tag), so keys that share
 * a tag live together (SPEC §2). Slots go to partitions as contiguous ranges,
 * `partition = floor(slot × partitionCount / 16384)`, with a partition count that divides 16384 so
 * every partition gets the same number of slots. Using Redis's function is what lets a Redis
 * Cluster client route a key straight to its owner: its slot map and ours agree by construction.
 *
 * Keys are byte strings: a JS string whose every char code is 0..255, one char per byte (the
 * front ends turn UTF-8 HTTP keys and binary RESP keys into that form). A char above 255 is a key
 * nobody converted, and is refused rather than hashed some other way.
 *
 * MurmurHash3 x86_32 stays for what is not a key: the ring hashes virtual-node ids with it.
 *
 * Pure and allocation-free on the hot path: the key is walked char by char (slotOf) or byte by
 * byte (slotOfBytes); no Buffer is made.
 */
import type { HashFn } from '../types.ts';
import { PlacementError } from './errors.ts';

/** Number of partitions a cluster gets when none is configured (fixed when a cluster is created). */
export const DEFAULT_PARTITION_COUNT = 4096;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

// scratch space for the UTF-8 encoding of the key being hashed; grows on demand, never shrinks
let scratch = new Uint8Array(256);

/**
 * Encode `s` as UTF-8 into `scratch` and return the byte length. Lone surrogates become U+FFFD,
 * exactly as TextEncoder and Buffer.from(s, 'utf8') do, so the hash agrees with hashing those bytes.
 */
function encodeUtf8(s: string): number {
  const n = s.length;
  // 3 bytes per UTF-16 code unit is the worst case (a surrogate pair is 2 units -> 4 bytes)
  if (scratch.length < n * 3) scratch = new Uint8Array(Math.max(n * 3, scratch.length * 2));
  const out = scratch;
  let o = 0;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[o++] = c;
    } else if (c < 0x800) {
      out[o++] = 0xc0 | (c >> 6);
      out[o++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          out[o++] = 0xf0 | (c >> 18);
          out[o++] = 0x80 | ((c >> 12) & 0x3f);
          out[o++] = 0x80 | ((c >> 6) & 0x3f);
          out[o++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd; // lone surrogate
      }
      out[o++] = 0xe0 | (c >> 12);
      out[o++] = 0x80 | ((c >> 6) & 0x3f);
      out[o++] = 0x80 | (c & 0x3f);
    }
  }
  return o;
}

/** MurmurHash3's 32-bit finaliser: every input bit affects every output bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 of a byte array. Exposed for tests and for hashing raw bytes. */
export function murmur3(bytes: Uint8Array, len: number = bytes.length, seed = 0): number {
  let h = seed | 0;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  // the 1-3 trailing bytes, little-endian
  const tail = len & 3;
  if (tail !== 0) {
    let k = bytes[blocks]!;
    if (tail >= 2) k |= bytes[blocks + 1]! << 8;
    if (tail === 3) k |= bytes[blocks + 2]! << 16;
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= len;
  return fmix32(h);
}

/**
 * The default {@link HashFn}: MurmurHash3 x86_32, seed 0, of the string's UTF-8 bytes.
 * Returns an unsigned 32-bit integer; identical in every process and on every platform.
 */
export const defaultHash: HashFn = (data: string): number => {
  const len = encodeUtf8(data); // may replace `scratch`: read it only afterwards
  return murmur3(scratch, len);
};

/** Redis Cluster's number of hash slots. */
export const SLOT_COUNT = 16384;

/**
 * CRC16-CCITT in the XMODEM variant (polynomial 0x1021, initial value 0, no reflection, no final
 * xor), the CRC Redis Cluster hashes keys with; its check value is crc16("123456789") = 0x31c3.
 * The table holds the CRC of each byte value, so the loop does one lookup per byte.
 */
const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let b = 0; b < 256; b++) {
    let c = b << 8;
    for (let i = 0; i < 8; i++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
    t[b] = c & 0xffff;
  }
  return t;
})();

/** CRC16-XMODEM of bytes[start, end). */
export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >>> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

/** CRC16-XMODEM of the byte string key[start, end); throws on a char that is not a byte. */
function crc16OfString(key: string, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    const c = key.charCodeAt(i);
    if (c > 0xff) throw notByteString(key, i);
    crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >>> 8) ^ c) & 0xff]!;
  }
  return crc;
}

function notByteString(key: string, at: number): PlacementError {
  return new PlacementError(
    'INVALID_KEY',
    `key must be a byte string (char codes 0..255); char ${at} is U+${key.charCodeAt(at).toString(16).toUpperCase().padStart(4, '0')} in ${JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}...` : key)}`,
  );
}

const OPEN = 0x7b; // '{'
const CLOSE = 0x7d; // '}'

/**
 * The hash slot of a key, as Redis Cluster computes it (CLUSTER KEYSLOT): CRC16 of the key, or of
 * what lies between its first `{` and the first `}` after it when that is not empty, mod 16384.
 * `foo{}{bar}` hashes the whole key (the first tag is empty); `foo{{bar}}zap` hashes `{bar`.
 */
export function slotOf(key: string): number {
  const n = key.length;
  let open = 0;
  while (open < n && key.charCodeAt(open) !== OPEN) open++;
  if (open < n) {
    let close = open + 1;
    while (close < n && key.charCodeAt(close) !== CLOSE) close++;
    if (close < n && close > open + 1) {
      // The bytes outside the tag are not hashed, but they must still be bytes.
      for (let i = 0; i < n; i++) if (key.charCodeAt(i) > 0xff) throw notByteString(key, i);
      return crc16OfString(key, open + 1, close) & (SLOT_COUNT - 1);
    }
  }
  return crc16OfString(key, 0, n) & (SLOT_COUNT - 1);
}

/** slotOf for a key given as bytes buf[start, end) (the RESP fast path: no string is made). */
export function slotOfBytes(buf: Uint8Array, start = 0, end = buf.length): number {
  let open = start;
  while (open < end && buf[open] !== OPEN) open++;
  if (open < end) {
    let close = open + 1;
    while (close < end && buf[close] !== CLOSE) close++;
    if (close < end && close > open + 1) return crc16(buf, open + 1, close) & (SLOT_COUNT - 1);
  }
  return crc16(buf, start, end) & (SLOT_COUNT - 1);
}

/** Partition counts allowed: the divisors of 16384 (the powers of two 1..16384). */
export const PARTITION_COUNTS: readonly number[] = Object.freeze(Array.from({ length: 15 }, (_, i) => 2 ** i));

/** True when `n` is an allowed partition count (see PARTITION_COUNTS). */
export function isPartitionCount(n: unknown): n is number {
  return typeof n === 'number' && n >= 1 && SLOT_COUNT % n === 0;
}

function checkCount(partitionCount: number): void {
  if (!isPartitionCount(partitionCount)) {
    throw new PlacementError(
      'INVALID_OPTION',
      `partitionCount must be a divisor of ${SLOT_COUNT} (${PARTITION_COUNTS.join(', ')}). Got: ${String(partitionCount)}`,
    );
  }
}

/** The partition holding a slot: `floor(slot × partitionCount / 16384)`. */
export function partitionOfSlot(slot: number, partitionCount: number): number {
  checkCount(partitionCount);
  if (!(Number.isInteger(slot) && slot >= 0 && slot < SLOT_COUNT)) {
    throw new PlacementError('INVALID_OPTION', `slot must be an integer from 0 to ${SLOT_COUNT - 1}. Got: ${String(slot)}`);
  }
  // partitionCount divides 16384, so this is slot / (slots per partition), exact in doubles.
  return Math.floor((slot * partitionCount) / SLOT_COUNT);
}

/** The first and last slot (inclusive) of a partition: its contiguous slot range. */
export function slotRange(partition: number, partitionCount: number): { first: number; last: number } {
  checkCount(partitionCount);
  if (!(Number.isInteger(partition) && partition >= 0 && partition < partitionCount)) {
    throw new PlacementError('BAD_PARTITION', `partition must be an integer from 0 to ${partitionCount - 1}. Got: ${String(partition)}`);
  }
  const per = SLOT_COUNT / partitionCount;
  return { first: partition * per, last: partition * per + per - 1 };
}

/**
 * The partition a key belongs to: the partition of its hash slot (SPEC §2). `slot` may be
 * injected (tests work expected owners out by hand with a slot function that parses the key).
 */
export function partitionOf(key: string, partitionCount: number, slot: (key: string) => number = slotOf): number {
  checkCount(partitionCount);
  // Same as partitionOfSlot without its checks: this runs for every request.
  return Math.floor((slot(key) * partitionCount) / SLOT_COUNT);
}

