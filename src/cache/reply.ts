/**
 * The reply of a command, as plain data: what the RESP writer encodes (front/resp/writer.ts, in
 * RESP2 or RESP3), what a command engine returns (cache/engine), and what a key's coordinator
 * sends back to the node a client talks to (peer Exec). Redis's reply types; see the writer for
 * how each is encoded in either protocol.
 */

/** A key and its value in a map or an attribute. */
export type ReplyPair = readonly [Reply, Reply];

export type Reply =
  | { readonly type: 'simple'; readonly value: string }
  | { readonly type: 'error'; readonly message: string }
  /** A 64-bit integer: a bigint beyond the safe integers (INCR near 2^63). */
  | { readonly type: 'integer'; readonly value: number | bigint }
  | { readonly type: 'bulk'; readonly value: Buffer | string | null }
  | { readonly type: 'array'; readonly items: readonly Reply[] | null }
  | { readonly type: 'map'; readonly entries: readonly ReplyPair[] }
  | { readonly type: 'set'; readonly items: readonly Reply[] }
  | { readonly type: 'double'; readonly value: number }
  | { readonly type: 'boolean'; readonly value: boolean }
  /** Decimal digits with an optional '-' (checked by bigNumber()). */
  | { readonly type: 'bignum'; readonly value: string }
  /** `format` is three characters (`txt`, `mkd`). */
  | { readonly type: 'verbatim'; readonly format: string; readonly value: Buffer | string }
  | { readonly type: 'push'; readonly items: readonly Reply[] }
  | { readonly type: 'attribute'; readonly attributes: readonly ReplyPair[]; readonly value: Reply };

export const OK: Reply = Object.freeze({ type: 'simple', value: 'OK' });
export const NULL_BULK: Reply = Object.freeze({ type: 'bulk', value: null });
export const NULL_ARRAY: Reply = Object.freeze({ type: 'array', items: null });
export const EMPTY_ARRAY: Reply = Object.freeze({ type: 'array', items: Object.freeze([]) });
export const TRUE: Reply = Object.freeze({ type: 'boolean', value: true });
export const FALSE: Reply = Object.freeze({ type: 'boolean', value: false });

export function simple(value: string): Reply {
  return { type: 'simple', value };
}
/** An error reply; `message` starts with its code, e.g. `ERR syntax error`. */
export function error(message: string): Reply {
  return { type: 'error', message };
}
export function integer(value: number | bigint): Reply {
  return { type: 'integer', value };
}
export function bulk(value: Buffer | string | null): Reply {
  return { type: 'bulk', value };
}
export function array(items: readonly Reply[] | null): Reply {
  return { type: 'array', items };
}
/** A map from pairs, in order (RESP2: a flat array of keys and values). */
export function map(entries: readonly ReplyPair[]): Reply {
  return { type: 'map', entries };
}
/** A map whose keys are bulk strings, in the record's order (HELLO, COMMAND DOCS). */
export function mapOf(record: Readonly<Record<string, Reply>>): Reply {
  return { type: 'map', entries: Object.entries(record).map(([k, v]) => [bulk(k), v] as const) };
}
/** An unordered collection (RESP2: an array). */
export function setOf(items: readonly Reply[]): Reply {
  return { type: 'set', items };
}
export function double(value: number): Reply {
  return { type: 'double', value };
}
export function boolean(value: boolean): Reply {
  return value ? TRUE : FALSE;
}
/** An integer of any size; throws on anything but an optional '-' and decimal digits. */
export function bigNumber(value: bigint | string): Reply {
  const digits = typeof value === 'bigint' ? value.toString() : value;
  if (!/^-?(0|[1-9][0-9]*)$/.test(digits)) throw new RangeError(`RESP big number must be decimal digits. Got: ${JSON.stringify(digits)}`);
  return { type: 'bignum', value: digits };
}
/** Text meant for display (INFO, CLIENT INFO in RESP3); `format` is `txt` or `mkd`. */
export function verbatim(value: Buffer | string, format = 'txt'): Reply {
  if (!/^[a-z]{3}$/.test(format)) throw new RangeError(`RESP verbatim format must be three lower-case letters. Got: ${JSON.stringify(format)}`);
  return { type: 'verbatim', format, value };
}
/** Out-of-band data (pub/sub messages, invalidations); RESP2 connections get an array. */
export function pushMessage(items: readonly Reply[]): Reply {
  return { type: 'push', items };
}
/** `value` with attributes (RESP3 only; a RESP2 connection gets `value` alone). */
export function withAttributes(attributes: readonly ReplyPair[], value: Reply): Reply {
  return { type: 'attribute', attributes, value };
}
