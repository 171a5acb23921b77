// Leaf validators shared by the file schema and the live-override schema.
//
// Each leaf does its own type check and conversion inside one transform, so every way a value
// can be wrong produces a message we wrote ("expected a duration like 500ms, 5s or 2m") rather
// than zod's generic "Invalid input". The messages are phrased to follow "is invalid: ".
//
// Leaves are lenient about strings where a command-line flag would hand us one ("8002", "true"),
// because CLI overrides are merged raw, before validation.

import { z } from 'zod';
import type { ConfigProblem } from './errors.ts';
import { formatPath } from './errors.ts';
import { DURATION_ALLOWED, SIZE_ALLOWED, formatDuration, formatSize, isUnitError, parseDuration, parseSize } from './units.ts';

/** Returned by a converter to reject its input; `allowed` becomes the error text. */
class Rejection {
  readonly allowed: string;
  constructor(allowed: string) {
    this.allowed = allowed;
  }
}

function reject(allowed: string): Rejection {
  return new Rejection(allowed);
}

/** A zod schema from a converter; `I` is the raw input type accepted (for typed overrides). */
function leaf<I, O>(convert: (v: unknown) => O | Rejection): z.ZodType<O, I> {
  return z.custom<I>(() => true).transform((v, ctx) => {
    let out: O | Rejection;
    try {
      out = convert(v);
    } catch (e) {
      if (!isUnitError(e)) throw e;
      out = reject(e.allowed);
    }
    if (out instanceof Rejection) {
      ctx.issues.push({ code: 'custom', message: v === undefined ? `required, ${out.allowed}` : out.allowed, input: v });
      return z.NEVER;
    }
    return out;
  });
}

export interface DurationBounds {
  /** Smallest accepted value in ms; default 0. */
  min?: number;
  /** Reject 0 itself (for timeouts and intervals); default false. */
  positive?: boolean;
  /** Largest accepted value in ms; default none. */
  max?: number;
  /** Only whole seconds (etcd lease TTLs are granted in seconds); default false. */
  wholeSeconds?: boolean;
}

/** A duration in ms from "500ms" / "5s" / "2m" / "1h" or a plain number of ms. */
export function duration(b: DurationBounds = {}): z.ZodType<number, string | number> {
  const min = b.min ?? 0;
  return leaf<string | number, number>((v) => {
    if (typeof v !== 'string' && typeof v !== 'number') return reject(DURATION_ALLOWED);
    const ms = parseDuration(v);
    if (b.positive && ms === 0) return reject(`${DURATION_ALLOWED}, greater than 0`);
    if (ms < min) return reject(`${DURATION_ALLOWED}, at least ${formatDuration(min)}`);
    if (b.max !== undefined && ms > b.max) return reject(`${DURATION_ALLOWED}, at most ${formatDuration(b.max)}`);
    if (b.wholeSeconds && ms % 1000 !== 0) return reject(`expected a whole number of seconds like 30s (at least ${formatDuration(min)})`);
    return ms;
  });
}

/** A size in bytes from "100B" / "512KiB" / "64MiB" / "64MB" or a plain number of bytes. */
export function size(b: { min?: number; max?: number } = {}): z.ZodType<number, string | number> {
  const min = b.min ?? 1;
  return leaf<string | number, number>((v) => {
    if (typeof v !== 'string' && typeof v !== 'number') return reject(SIZE_ALLOWED);
    const n = parseSize(v);
    if (n < min) return reject(`${SIZE_ALLOWED}, at least ${formatSize(min)}`);
    if (b.max !== undefined && n > b.max) return reject(`${SIZE_ALLOWED}, at most ${formatSize(b.max)}`);
    return n;
  });
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/.test(v)) return Number(v);
  return undefined;
}

/** An integer in [min, max]. */
export function int(min: number, max: number): z.ZodType<number, number | string> {
  const allowed = `expected an integer from ${min} to ${max}`;
  return leaf<number | string, number>((v) => {
    const n = toNumber(v);
    return n !== undefined && Number.isInteger(n) && n >= min && n <= max ? n : reject(allowed);
  });
}

/** An integer among `values` (listed in the message), e.g. the divisors of 16384. */
export function intIn(values: readonly number[], what: string): z.ZodType<number, number | string> {
  const allowed = `expected ${what}: one of ${values.join(', ')}`;
  return leaf<number | string, number>((v) => {
    const n = toNumber(v);
    return n !== undefined && values.includes(n) ? n : reject(allowed);
  });
}

export interface NumberBounds {
  min: number;
  max: number;
  /** Exclude `min` itself; default false. */
  minExclusive?: boolean;
  /** Exclude `max` itself; default false. */
  maxExclusive?: boolean;
}

/** A finite number within bounds, e.g. a fraction. */
export function num(b: NumberBounds): z.ZodType<number, number | string> {
  const allowed =
    b.minExclusive || b.maxExclusive
      ? `expected a number ${b.minExclusive ? 'greater than' : 'at least'} ${b.min} and ${b.maxExclusive ? 'below' : 'at most'} ${b.max}`
      : `expected a number from ${b.min} to ${b.max}`;
  return leaf<number | string, number>((v) => {
    const n = toNumber(v);
    if (n === undefined || !Number.isFinite(n)) return reject(allowed);
    const lowOk = b.minExclusive ? n > b.min : n >= b.min;
    const highOk = b.maxExclusive ? n < b.max : n <= b.max;
    return lowOk && highOk ? n : reject(allowed);
  });
}

export function bool(): z.ZodType<boolean, boolean | 'true' | 'false'> {
  return leaf<boolean | 'true' | 'false', boolean>((v) => {
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    return reject('expected true or false');
  });
}

export function oneOf<const T extends string>(values: readonly T[]): z.ZodType<T, T> {
  const allowed = `expected one of ${values.join(', ')}`;
  return leaf<T, T>((v) => (typeof v === 'string' && (values as readonly string[]).includes(v) ? (v as T) : reject(allowed)));
}

/** A string passing `check` (return true to accept); `allowed` describes what passes. */
export function str(allowed: string, check: (s: string) => boolean = (s) => s.length > 0): z.ZodType<string, string> {
  return leaf<string, string>((v) => (typeof v === 'string' && check(v) ? v : reject(allowed)));
}

/**
 * A list of strings, each passing `check`; a comma-separated string is accepted too, since
 * that is how `--peers a,b` and `--etcd a,b` arrive.
 */
export function stringList(allowed: string, check: (s: string) => boolean, opts: { nonEmpty?: boolean } = {}): z.ZodType<string[], string | string[]> {
  return leaf<string | string[], string[]>((v) => {
    let items: unknown[];
    if (typeof v === 'string') items = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    else if (Array.isArray(v)) items = v;
    else return reject(allowed);
    if (opts.nonEmpty && items.length === 0) return reject(`${allowed} (at least one)`);
    for (const item of items) if (typeof item !== 'string' || !check(item)) return reject(allowed);
    return items as string[];
  });
}

/** Names that travel in URL paths and etcd keys: node ids and group names. */
export const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const NAME_ALLOWED = 'expected 1-64 characters from A-Z a-z 0-9 _ . -';

/** True for an absolute http(s) URL with a host. */
export function isHttpUrl(s: string): boolean {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return false;
  }
  return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname.length > 0;
}

/** A static peer: "http://host:port" or "id=http://host:port". */
export interface PeerSpec {
  id?: string;
  url: string;
  /** `?zone=z` after the URL: the peer's failure domain (config `node.zone` on that node). */
  zone?: string;
}

/** Splits a peer URL from its only accepted query, `?zone=NAME`; undefined for anything else. */
function peerUrl(raw: string): { url: string; zone?: string } | undefined {
  const q = raw.indexOf('?');
  const url = (q < 0 ? raw : raw.slice(0, q)).replace(/\/+$/, '');
  if (!isHttpUrl(url)) return undefined;
  if (q < 0) return { url };
  const m = /^zone=([^&=]+)$/.exec(raw.slice(q + 1));
  return m !== null && NAME_PATTERN.test(m[1]!) ? { url, zone: m[1]! } : undefined;
}

/** Reads one `cluster.peers` entry; undefined when it is not of either accepted form. */
export function parsePeer(s: string): PeerSpec | undefined {
  const eq = s.indexOf('=');
  // An "=" after "://" belongs to the query (`?zone=`).
  const scheme = s.indexOf('://');
  if (eq >= 0 && (scheme < 0 || eq < scheme)) {
    const id = s.slice(0, eq).trim();
    const url = peerUrl(s.slice(eq + 1).trim());
    if (!NAME_PATTERN.test(id) || url === undefined) return undefined;
    return { id, ...url };
  }
  return peerUrl(s.trim());
}

// ---- zod issues -> problems -------------------------------------------------------------

type AnyDef = { type: string; shape?: Record<string, unknown>; innerType?: unknown; in?: unknown; element?: unknown };

function defOf(schema: unknown): AnyDef | undefined {
  return (schema as { _zod?: { def?: AnyDef } } | undefined)?._zod?.def;
}

/** The object keys the schema accepts at `path` (through defaults, pipes and arrays). */
export function knownKeysAt(schema: unknown, path: ReadonlyArray<PropertyKey>): string[] {
  let s: unknown = schema;
  let i = 0;
  for (let guard = 0; guard < 100; guard++) {
    const def = defOf(s);
    if (!def) return [];
    switch (def.type) {
      case 'prefault':
      case 'default':
      case 'optional':
      case 'nullable':
        s = def.innerType;
        continue;
      case 'pipe':
        s = def.in;
        continue;
      case 'array':
        if (i >= path.length) return [];
        s = def.element;
        i++;
        continue;
      case 'object': {
        if (i >= path.length) return Object.keys(def.shape ?? {});
        s = def.shape?.[String(path[i])];
        i++;
        continue;
      }
      default:
        return [];
    }
  }
  return [];
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** Levenshtein distance, for "did you mean" on unknown keys. Keys are short; O(n·m) is fine. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function unknownKeyAllowed(key: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(key, k);
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  if (best === undefined || bestDist > Math.max(2, Math.floor(key.length / 3))) {
    // Not a typo but maybe a wrong word: "cache_size" for "cache_bytes". Suggest a key that
    // shares the first word when exactly one does.
    const word = key.split('_')[0];
    const same = known.filter((k) => k.split('_')[0] === word);
    best = same.length === 1 ? same[0] : undefined;
  }
  const hint = best !== undefined ? `did you mean ${best}? ` : '';
  return known.length ? `${hint}known keys here are ${known.join(', ')}` : 'no keys are allowed here';
}

function describeType(expected: string): string {
  switch (expected) {
    case 'object':
      return 'expected a mapping of keys';
    case 'array':
      return 'expected a list';
    default:
      return `expected ${expected}`;
  }
}

/**
 * Problems from zod issues. Values are looked up in the raw input (so a message quotes "500ms"
 * as written, not the converted 500), allowed keys in the schema.
 */
export function problemsFromIssues(issues: readonly z.core.$ZodIssue[], raw: unknown, schema: unknown): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const iss of issues) {
    if (iss.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, iss.path);
      for (const key of iss.keys) {
        const p = [...iss.path, key];
        out.push({ kind: 'unknown_key', path: formatPath(p), value: valueAt(raw, p), allowed: unknownKeyAllowed(key, known) });
      }
      continue;
    }
    const allowed = iss.code === 'invalid_type' ? describeType(iss.expected) : iss.message;
    out.push({ kind: 'value', path: formatPath(iss.path), value: valueAt(raw, iss.path), allowed });
  }
  return out;
}

/**
 * Drops null-valued keys from mappings, recursively: in YAML `secret:` with nothing after it is
 * null, and the operator means "not set", so the default applies. Nulls inside lists stay (and
 * fail validation), since a list item cannot be "not set".
 */
export function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => (x !== null && typeof x === 'object' ? dropNulls(x) : x));
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === null) continue;
    setOwn(out, k, dropNulls(x));
  }
  return out;
}

/**
 * `o[k] = v` as an own property even for k = "__proto__", which YAML and JSON.parse both
 * produce as a plain key: assigning it would swap the prototype and smuggle values past the
 * unknown-key check. As an own key it is reported like any other unknown key.
 */
export function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
