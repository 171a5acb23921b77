/**
 * Key hashing for placement: a key's UTF-8 bytes go through MurmurHash3 x86_32 (seed 0), and the
 * 32-bit result picks a partition.
 *
 * Why murmur3_32: it is fast on short keys, passes SMHasher's distribution tests, is specified
 * byte for byte (so every process, and a client in another language, gets the same value), and
 * has reference vectors to test against. Unlike FNV-1a, its output needs no extra finaliser.
 *
 * Pure and allocation-free on the hot path: the key is encoded into a module-level scratch
 * buffer, which is safe because JavaScript runs this synchronously on one thread.
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

/**
 * The partition a key belongs to: `hash(key) mod partitionCount`. Modulo (rather than a
 * multiply-shift) keeps the mapping easy to work out by hand with a test hash; with 4096
 * partitions it uses the low 12 bits, which murmur3 mixes as well as the high ones.
 */
export function partitionOf(key: string, partitionCount: number, hash: HashFn = defaultHash): number {
  if (!(partitionCount >= 1 && partitionCount <= 0xffffffff && Number.isInteger(partitionCount))) {
    throw new PlacementError(
      'INVALID_OPTION',
      `partitionCount must be an integer from 1 to 2^32-1. Got: ${String(partitionCount)}`,
    );
  }
  return (hash(key) >>> 0) % partitionCount;
}
