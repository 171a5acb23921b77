/**
 * Loaders fetch a missing key from its origin (groupcache's Getter). Library users pass any
 * function of this shape; servers configure an HTTP origin through httpLoader.
 */

/**
 * Load `key` from the origin. Resolves to the value, or null when the origin has no such key;
 * rejects (preferably with a LoaderError) when the origin cannot answer. Should stop early when
 * `signal` aborts.
 */
export type Loader = (key: string, signal: AbortSignal) => Promise<Buffer | null>;

/** Why a load failed. */
export type LoaderFailureKind =
  | 'status' // the origin answered with a status other than 200 or 404
  | 'too_large' // the origin's body was larger than maxBytes
  | 'timeout' // no complete answer within timeoutMs
  | 'network' // the request could not be made or the connection broke
  | 'no_loader' // the group has no loader
  | 'failed'; // a loader function threw something else (the original is the cause)

/** A load that failed. `code` is the same for every kind so callers can map it to one status. */
export class LoaderError extends Error {
  readonly code = 'LOADER_FAILED' as const;
  readonly kind: LoaderFailureKind;
  /** The origin's HTTP status when kind is 'status'. */
  readonly originStatus: number | undefined;

  constructor(kind: LoaderFailureKind, message: string, opts: { originStatus?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'LoaderError';
    this.kind = kind;
    this.originStatus = opts.originStatus;
  }
}

export function isLoaderError(err: unknown): err is LoaderError {
  return err instanceof LoaderError;
}

export interface HttpLoaderOptions {
  /** Whole-request deadline (headers and body), in ms; a function is read at every load (live config loader_timeout). Default 3000. */
  timeoutMs?: number | (() => number);
  /** Largest body accepted, in bytes; a larger one fails the load. Default 1 MiB. */
  maxBytes?: number;
}

export const DEFAULT_LOADER_TIMEOUT_MS = 3000;
export const DEFAULT_LOADER_MAX_BYTES = 1024 * 1024;

/**
 * A Loader that GETs the key from an HTTP origin. `urlTemplate` is an absolute http(s) URL in
 * which every `{key}` is replaced by the URL-encoded key (encodeURIComponent), e.g.
 * "http://origin:8080/scores/{key}". 200 gives the body bytes, 404 gives null (the origin has no
 * such key), anything else is a LoaderError. Connections are kept alive by fetch's pool.
 */
/**
 * A byte-string key (src/core/keys.ts) percent-encoded as URL path bytes: RFC 3986 unreserved
 * characters as they are, every other byte as %XX. For a UTF-8 text key this is exactly
 * encodeURIComponent of the text.
 */
export function percentEncodeKey(key: string): string {
  let out = '';
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    const unreserved = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e || c === 0x21 || c === 0x27 || c === 0x28 || c === 0x29 || c === 0x2a;
    out += unreserved ? key[i] : `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function httpLoader(urlTemplate: string, opts: HttpLoaderOptions = {}): Loader {
  const timeout = opts.timeoutMs ?? DEFAULT_LOADER_TIMEOUT_MS;
  const timeoutOf = typeof timeout === 'function' ? timeout : () => timeout;
  const maxBytes = opts.maxBytes ?? DEFAULT_LOADER_MAX_BYTES;
  const first = timeoutOf();
  if (!Number.isSafeInteger(first) || first <= 0) {
    throw new RangeError(`httpLoader timeoutMs must be a positive integer. Got: ${first}`);
  }
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new RangeError(`httpLoader maxBytes must be an integer >= 0. Got: ${maxBytes}`);
  }
  if (!urlTemplate.includes('{key}') || !isHttpUrl(urlTemplate.replaceAll('{key}', 'key'))) {
    throw new TypeError(`httpLoader urlTemplate must be an absolute http(s) URL containing {key}. Got: ${JSON.stringify(urlTemplate)}`);
  }
  // split once; a load joins the parts around the encoded key
  const parts = urlTemplate.split('{key}');

  return async (key: string, signal: AbortSignal): Promise<Buffer | null> => {
    const url = parts.join(percentEncodeKey(key));
    const timeoutMs = timeoutOf();
    const deadline = AbortSignal.timeout(timeoutMs);
    const both = AbortSignal.any([signal, deadline]);
    // Converts a fetch or body-read failure once, here at the boundary. The caller's own abort
    // is not a loader failure: its reason is passed through unchanged.
    const fail = (err: unknown): unknown => {
      if (signal.aborted) return signal.reason;
      if (deadline.aborted) return new LoaderError('timeout', `origin did not answer within ${timeoutMs} ms: GET ${url}`, { cause: err });
      if (isLoaderError(err)) return err;
      return new LoaderError('network', `origin request failed: GET ${url}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    };
    let res: Response;
    try {
      res = await fetch(url, { signal: both });
    } catch (err) {
      throw fail(err);
    }
    if (res.status !== 200) {
      // release the connection for reuse without reading a body we do not want
      await res.body?.cancel().catch(() => {});
      if (res.status === 404) return null;
      throw new LoaderError('status', `origin answered ${res.status} for GET ${url}`, { originStatus: res.status });
    }
    const tooLarge = () => new LoaderError('too_large', `origin body for GET ${url} exceeds ${maxBytes} bytes`);
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > maxBytes) {
      await res.body?.cancel().catch(() => {});
      throw tooLarge();
    }
    if (res.body === null) return Buffer.alloc(0);
    // read incrementally so a body without (or with a lying) content-length is cut off at the limit
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for await (const chunk of res.body) {
        total += chunk.length;
        if (total > maxBytes) throw tooLarge(); // leaving the loop cancels the stream
        chunks.push(chunk);
      }
    } catch (err) {
      throw fail(err);
    }
    return Buffer.concat(chunks, total);
  };
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}
