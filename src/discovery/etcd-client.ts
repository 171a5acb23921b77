/**
 * The one place that creates `etcd3` clients and converts their errors.
 *
 * etcd3 (1.1.2) is wrapped because its defaults suit long-lived batch jobs, not a cache that must
 * notice etcd coming back within a second or two (measured in /work/shared/ETCD-NOTES.md):
 *  - watch reconnect backoff is random exponential up to 30 s: we cap it at ~1 s;
 *  - each host sits behind a circuit breaker that stays open 5 s: we use 1 s;
 *  - `dialTimeout` is accepted but never used by the client: we enforce it as a deadline on every
 *    unary call (streams — watches and lease keepalives — must not get one, they live forever).
 * Errors that mean "etcd is not reachable right now" are converted once, here, to
 * {@link EtcdUnavailableError}; callers route on the brand, never on message text.
 */
import { circuitBreaker, ConsecutiveBreaker, handleWhen } from 'cockatiel';
import { createRequire } from 'node:module';
import type { Etcd3, IOptions } from 'etcd3';

/**
 * etcd3 (with grpc-js and protobufjs), loaded when a node first talks to etcd: loaded with the
 * node it was a quarter of an idle node's memory, and a static cluster never uses it.
 */
let etcd3: typeof import('etcd3') | undefined;
export function loadEtcd3(): typeof import('etcd3') {
  etcd3 ??= createRequire(import.meta.url)('etcd3') as typeof import('etcd3');
  return etcd3;
}

function isRecoverableError(err: Error): boolean {
  return loadEtcd3().isRecoverableError(err);
}

/** pino-style logger (object first, then message). */
export interface EtcdLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Logs nothing: the default for every etcd component. */
export const noopLogger: EtcdLogger = { info() {}, warn() {}, error() {} };

export interface EtcdClientOptions {
  /** "host:port" or "http://host:port", one per etcd member. At least one. */
  endpoints: readonly string[];
  /** Deadline of every unary call (get, put, txn, lease grant/revoke). Default 5000 ms. */
  dialTimeoutMs?: number;
  /** Upper bound of the watch reconnect backoff. Default 1000 ms. */
  watchBackoffCapMs?: number;
  /** TLS to etcd (endpoints then default to https://): the CA that signs etcd's certificate, and a client certificate. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** etcd's own authentication. */
  auth?: { username: string; password: string };
}

/**
 * How a component gets its client: share one (`client`, the caller closes it) or let the
 * component create and close its own (`endpoints`).
 */
export type EtcdConnection =
  | { client: Etcd3; endpoints?: undefined; dialTimeoutMs?: undefined }
  | { client?: undefined; endpoints: readonly string[]; dialTimeoutMs?: number };

type HostPolicyFactory = NonNullable<NonNullable<IOptions['faultHandling']>['host']>;

const DEFAULT_DIAL_TIMEOUT_MS = 5000;
const DEFAULT_WATCH_BACKOFF_CAP_MS = 1000;
/** How long a host's circuit stays open after 3 consecutive failures (etcd3's default: 5 s). */
const HOST_HALF_OPEN_AFTER_MS = 1000;

/** etcd could not be reached (down, no quorum, deadline exceeded, circuit open). Retryable. */
export class EtcdUnavailableError extends Error {
  readonly code = 'ETCD_UNAVAILABLE';
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EtcdUnavailableError';
  }
}

export function isEtcdUnavailableError(e: unknown): e is EtcdUnavailableError {
  return e instanceof Error && (e as { code?: unknown }).code === 'ETCD_UNAVAILABLE';
}

/** cockatiel's brand (a property, not message text); etcd3 bundles its own cockatiel copy. */
function isBrokenCircuit(e: Error): boolean {
  return 'isBrokenCircuitError' in e;
}

/**
 * Convert a foreign error once, at the boundary: connectivity failures become
 * {@link EtcdUnavailableError} (original kept as `cause`), anything else passes through.
 */
export function toEtcdError(err: unknown, what = 'etcd call'): Error {
  if (!(err instanceof Error)) return new Error(`${what} failed: ${String(err)}`);
  if (isEtcdUnavailableError(err)) return err;
  if (isRecoverableError(err) || isBrokenCircuit(err)) {
    return new EtcdUnavailableError(`${what}: etcd unavailable (${err.message})`, { cause: err });
  }
  return err;
}

/** Run one etcd call, converting its error with {@link toEtcdError}. */
export async function etcdCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toEtcdError(err, what);
  }
}

/** "127.0.0.1:2379" -> "http://127.0.0.1:2379"; validates the form and names a bad value. */
export function normalizeEndpoint(endpoint: string, scheme: 'http' | 'https' = 'http'): string {
  const raw = endpoint.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `${scheme}://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TypeError(`etcd endpoint "${endpoint}" is not host:port or http(s)://host:port`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`etcd endpoint "${endpoint}" must use http or https, got ${url.protocol}`);
  }
  if (url.port === '' || url.hostname === '') {
    throw new TypeError(`etcd endpoint "${endpoint}" needs a host and a port`);
  }
  return `${url.protocol}//${url.host}`;
}

/**
 * Capped exponential backoff with jitter, shaped as cockatiel's IBackoff (`duration` + `next()`)
 * so etcd3 can use it for watch reconnects; also used by our own retry loops via {@link delays}.
 */
export class CappedBackoff {
  readonly duration: number;
  readonly #attempt: number;
  readonly #initialMs: number;
  readonly #capMs: number;

  constructor(initialMs: number, capMs: number, attempt = 0) {
    if (!(initialMs > 0) || !(capMs >= initialMs)) {
      throw new RangeError(`backoff needs 0 < initialMs <= capMs, got ${initialMs} and ${capMs}`);
    }
    this.#initialMs = initialMs;
    this.#capMs = capMs;
    this.#attempt = attempt;
    const base = Math.min(capMs, initialMs * 2 ** Math.min(attempt, 30));
    // Jitter in [base/2, base] so many clients reconnecting at once spread out.
    this.duration = Math.round(base / 2 + (Math.random() * base) / 2);
  }

  next(): CappedBackoff {
    return new CappedBackoff(this.#initialMs, this.#capMs, this.#attempt + 1);
  }
}

/** Infinite iterator of backoff delays (ms). */
export function* delays(initialMs: number, capMs: number): Generator<number, never> {
  let b = new CappedBackoff(initialMs, capMs);
  for (;;) {
    yield b.duration;
    b = b.next();
  }
}

/** Create an etcd3 client tuned as described at the top of this file. The caller closes it. */
export function createEtcdClient(opts: EtcdClientOptions): Etcd3 {
  if (opts.endpoints.length === 0) throw new TypeError('etcd endpoints must not be empty');
  const hosts = opts.endpoints.map((e) => normalizeEndpoint(e, opts.tls !== undefined ? 'https' : 'http'));
  const dialTimeoutMs = opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
  if (!(dialTimeoutMs > 0)) throw new RangeError(`dialTimeoutMs must be > 0, got ${dialTimeoutMs}`);
  const capMs = opts.watchBackoffCapMs ?? DEFAULT_WATCH_BACKOFF_CAP_MS;

  const options: IOptions = {
    hosts,
    dialTimeout: dialTimeoutMs,
    ...(opts.tls !== undefined
      ? {
          // no CA file: grpc trusts the system's roots (etcd3 types the field as required)
          credentials: { rootCertificate: opts.tls.ca as Buffer, ...(opts.tls.key !== undefined ? { privateKey: opts.tls.key } : {}), ...(opts.tls.cert !== undefined ? { certChain: opts.tls.cert } : {}) },
        }
      : {}),
    ...(opts.auth !== undefined ? { auth: opts.auth } : {}),
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + dialTimeoutMs }),
    grpcOptions: {
      // Reconnect to a restarted etcd quickly (gRPC's default backoff grows to 120 s).
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      // Detect a dead connection (host gone without RST) on idle streams. etcd rejects pings more
      // often than every 5 s (--grpc-keepalive-min-time), so stay above that.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    },
    faultHandling: {
      // etcd3 bundles cockatiel 3; the pool only calls `execute(fn)` on this, which cockatiel 4
      // provides identically, so the cast is sound.
      host: (() =>
        circuitBreaker(handleWhen((e) => e instanceof Error && isRecoverableError(e)), {
          halfOpenAfter: HOST_HALF_OPEN_AFTER_MS,
          breaker: new ConsecutiveBreaker(3),
        })) as unknown as HostPolicyFactory,
      watchBackoff: new CappedBackoff(100, capMs),
    },
  };
  return new (loadEtcd3().Etcd3)(options);
}

/** Resolve an {@link EtcdConnection}: the client, and whether we own (must close) it. */
export function connect(conn: EtcdConnection): { client: Etcd3; owned: boolean } {
  if (conn.client !== undefined) return { client: conn.client, owned: false };
  return {
    client: createEtcdClient({
      endpoints: conn.endpoints,
      ...(conn.dialTimeoutMs !== undefined ? { dialTimeoutMs: conn.dialTimeoutMs } : {}),
    }),
    owned: true,
  };
}

/** Validate a key prefix ("/jincache"): non-empty, no trailing slash. Returns it. */
export function checkPrefix(prefix: string): string {
  if (typeof prefix !== 'string' || prefix === '' || prefix.endsWith('/')) {
    throw new TypeError(`etcd prefix must be non-empty without a trailing "/", got ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

/** Sleep that a stop() can cut short: resolves early when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
