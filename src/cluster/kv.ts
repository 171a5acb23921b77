/**
 * The key-value service a node offers to its front ends (HTTP API, Redis protocol listener,
 * embedded library). Every call is routed to the key's owner; callers never see placement.
 */
import { STRING } from '../cache/engine/types.ts';
import type { ValueSink } from '../cache/store.ts';

/** Where a GET answer came from (SPEC §3 `X-Cache`). */
export type CacheSource = 'hit' | 'miss' | 'load';

/**
 * A synchronous read into a ValueSink (Router.getLocalInto): `hit` when a string value was
 * written to the sink, `wrongtype` when the key holds another type (nothing written), undefined
 * when this node cannot answer from its own copy now ("call get()").
 */
export type LocalRead = 'hit' | 'wrongtype' | undefined;

/** A read's answer given to a sink as getLocalInto() gives it: a string's bytes written to it. */
export function answerInto(r: GetResult | undefined, sink: ValueSink): LocalRead {
  if (r === undefined) return undefined;
  if (r.type !== undefined && r.type !== STRING) return 'wrongtype';
  sink.fromBuffer(r.value);
  return 'hit';
}

export interface GetResult {
  value: Buffer;
  source: CacheSource;
  /** Absolute expiry in ms since epoch; 0 = no expiry. */
  expiresAt: number;
  /** What the bytes are (cache/engine/types.ts HASH); absent = a string. */
  type?: number;
}

export interface PutOptions {
  /** Time to live in ms; undefined or 0 = no expiry. */
  ttlMs?: number;
  /** Redis-style condition checked at the owner: `nx` only if absent, `xx` only if present. */
  condition?: 'nx' | 'xx';
}

export interface RequestOptions {
  /** Absolute deadline in ms since epoch; the request fails with a timeout error after it. */
  deadline?: number;
}

export interface KvService {
  /** The value, or null when absent (and no loader, or the loader found nothing). */
  get(group: string, key: string, opts?: RequestOptions): Promise<GetResult | null>;
  /** Store a value; false only when a `condition` was not met. */
  put(group: string, key: string, value: Buffer, opts?: PutOptions & RequestOptions): Promise<boolean>;
  /** Remove a key; true when it existed. */
  delete(group: string, key: string, opts?: RequestOptions): Promise<boolean>;
  /** Set or clear (ttlMs = 0) a key's expiry; false when the key is absent. */
  expire(group: string, key: string, ttlMs: number, opts?: RequestOptions): Promise<boolean>;
  /** Number of live entries this cluster holds in a group (owners only, not replicas). */
  count(group: string): Promise<number>;
  /** The group clients address when they do not name one (config `cache.group_name`). */
  readonly defaultGroup: string;
}
