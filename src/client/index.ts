/**
 * `jincache/client`: a TypeScript client for a jincache cluster.
 *
 * It learns the partition table from any node (`GET /cluster`), hashes each key exactly as the
 * nodes do (murmur3_32 mod partitionCount) and sends the request straight to the owner's client
 * API over keep-alive connections, so a request costs one hop instead of the two a node-side
 * forward costs. A stale table is never wrong, only slower: whichever node receives a request
 * forwards it to the real owner.
 *
 * ```ts
 * import { JincacheClient } from 'jincache/client';
 * const client = new JincacheClient({ nodes: ['http://127.0.0.1:8001', 'http://127.0.0.1:8002'] });
 * await client.put('user:1', 'Ada', { ttlSeconds: 60 });
 * const name = await client.getString('user:1'); // "Ada"
 * await client.close();
 * ```
 *
 * Failure handling: when the owner cannot be reached (connection refused or reset, or no
 * connection within the connect timeout) the same request goes to the next candidate (the
 * partition's backups when known, then any other node, which forwards it), the node is avoided
 * for a while and the table is re-learned at once. Every operation is idempotent (GET, PUT of a
 * whole value, DELETE), so a retry never applies a write twice in a way that differs from once.
 * An answer from a node is never retried elsewhere: a 503 `peer_unavailable` means the node
 * that answered could not reach the owner (nor, where the nodes fail over, a replica) either.
 * A timeout is not retried either: it means the call's whole budget is spent.
 */
import http from '../net/node-http.ts';
import type * as httpTypes from 'node:http';
import { decodeTable } from '../core/placement/table.ts';
import { SECRET_HEADER } from '../peer/protocol.ts';
import { JincacheClientError, isJincacheClientError } from './errors.ts';
import { candidates, isHttpBase, parseClusterInfo, partitionFor, routingFromCluster, withFullTable, type ClusterInfo, type RoutingTable } from './routing.ts';

export { JincacheClientError, isJincacheClientError } from './errors.ts';
export type { ClientSideCode, JincacheClientErrorCode, ServerCode } from './errors.ts';
export type { ClusterInfo, ClusterNodeInfo } from './routing.ts';

/**
 * Response header a node may send with its table version. When it is newer than the client's
 * table, the client re-learns the table. Nodes do not send it yet; until they do, the client
 * follows changes through its refresh interval and connection failures.
 */
export const RING_VERSION_HEADER = 'x-jincache-ring-version';

/** How long a node that refused or dropped a connection is tried only after the others. */
const DOWN_FOR_MS = 2000;

/** Largest response body accepted (a value is at most the cluster's max_value_bytes, 1 MiB by default). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export interface JincacheClientOptions {
  /**
   * Seed nodes: base URLs of node client APIs, e.g. `http://127.0.0.1:8001`. Any one that
   * answers is enough; the client learns the others from it. At least one is required.
   */
  nodes: string[];
  /** Group used when a call names none. @default 'scores' (the server's default `cache.group_name`) */
  group?: string;
  /** Budget of one call in ms, retries and table learning included. @default 3000 */
  timeoutMs?: number;
  /**
   * Longest wait for a TCP connection to one node before trying the next, in ms (capped by
   * what is left of `timeoutMs`). Keeps a dead host from eating the whole budget. @default 1000
   */
  connectTimeoutMs?: number;
  /** Re-learn the partition table this often, in ms; 0 = only on demand. @default 5000 */
  refreshIntervalMs?: number;
  /**
   * Cluster secret, sent as `x-jincache-secret` on every request. The client API does not
   * require it today; set it when the cluster's API is protected by it. @default none
   */
  secret?: string;
  /** Keep-alive sockets per node. @default 64 */
  maxSockets?: number;
}

/** Options of a single call. */
export interface CallOptions {
  /** Group of the key. @default the client's `group` */
  group?: string;
}

export interface PutCallOptions extends CallOptions {
  /** Time to live in seconds (fractions allowed, > 0). @default no expiry */
  ttlSeconds?: number;
}

/** Which node a key goes to under the client's current table (diagnostics and tests). */
export interface Route {
  /** Partition of the key. */
  partition: number;
  /** Owner id, or undefined while the partition has none. */
  owner: string | undefined;
  /** Node ids in the order the client would try them. */
  candidates: string[];
}

interface Answer {
  status: number;
  headers: httpTypes.IncomingHttpHeaders;
  body: Buffer;
}

interface Attempt {
  method: 'GET' | 'PUT' | 'DELETE';
  path: string;
  body?: Buffer;
}

/**
 * A client of one jincache cluster. Create one per process and share it: it keeps a connection
 * pool per node. Call {@link close} when done so the process can exit.
 */
export class JincacheClient {
  private readonly seeds: readonly string[];
  private readonly group: string;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly secret: string | undefined;
  private readonly agent: httpTypes.Agent;
  private readonly timer: NodeJS.Timeout | undefined;
  // the table in force; undefined until first learned
  private routing: RoutingTable | undefined;
  // one table fetch at a time: concurrent callers share it
  private refreshing: Promise<RoutingTable> | undefined;
  // node id -> time (ms) until which it is tried last
  private readonly downUntil = new Map<string, number>();
  // whether the nodes serve GET /cluster/table; learned on the first refresh
  private fullTable: 'unknown' | 'yes' | 'no' = 'unknown';
  private closed = false;

  /** Validates the options and throws a TypeError naming the bad value. Does no I/O. */
  constructor(opts: JincacheClientOptions) {
    if (!Array.isArray(opts?.nodes) || opts.nodes.length === 0) {
      throw new TypeError('JincacheClient: nodes must list at least one node URL like http://127.0.0.1:8001');
    }
    for (const n of opts.nodes) {
      if (typeof n !== 'string' || !isHttpBase(n)) throw new TypeError(`JincacheClient: node ${JSON.stringify(n)} is not an http base URL like http://127.0.0.1:8001`);
    }
    this.seeds = opts.nodes.map((n) => n.replace(/\/+$/, ''));
    this.group = opts.group ?? 'scores';
    if (typeof this.group !== 'string' || this.group === '') throw new TypeError(`JincacheClient: group must be a non-empty string. Got: ${JSON.stringify(opts.group)}`);
    this.timeoutMs = positiveInt('timeoutMs', opts.timeoutMs ?? 3000);
    this.connectTimeoutMs = positiveInt('connectTimeoutMs', opts.connectTimeoutMs ?? 1000);
    const refresh = opts.refreshIntervalMs ?? 5000;
    if (refresh !== 0) positiveInt('refreshIntervalMs', refresh);
    this.secret = opts.secret;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: positiveInt('maxSockets', opts.maxSockets ?? 64) });
    if (refresh > 0) {
      this.timer = setInterval(() => void this.refresh().catch(() => {}), refresh);
      // a client must not keep its process alive on its own
      this.timer.unref();
    }
  }

  /** The value of `key`, or null when the group has no such key (and its loader found none). */
  async get(key: string, opts: CallOptions = {}): Promise<Buffer | null> {
    const res = await this.keyCall(key, { method: 'GET', path: this.keyPath(key, opts.group) });
    if (res.status === 200) return res.body;
    if (res.status === 404 && errorCode(res) === 'not_found') return null;
    throw httpError(res);
  }

  /** {@link get} decoded as UTF-8. */
  async getString(key: string, opts: CallOptions = {}): Promise<string | null> {
    const value = await this.get(key, opts);
    return value === null ? null : value.toString('utf8');
  }

  /** Store `value` (a string is stored as its UTF-8 bytes); resolves once the owner (and synchronous backups) hold it. */
  async put(key: string, value: Buffer | string, opts: PutCallOptions = {}): Promise<void> {
    const body = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (!Buffer.isBuffer(body)) throw new TypeError(`JincacheClient.put: value must be a Buffer or a string. Got: ${typeof value}`);
    // the node checks the number (> 0, at most ten years) and answers bad_ttl otherwise
    const query = opts.ttlSeconds === undefined ? '' : `?ttl=${encodeURIComponent(String(opts.ttlSeconds))}`;
    const res = await this.keyCall(key, { method: 'PUT', path: this.keyPath(key, opts.group) + query, body });
    if (res.status !== 204 && res.status !== 200) throw httpError(res);
  }

  /** Remove `key`. Resolves whether or not it existed. */
  async delete(key: string, opts: CallOptions = {}): Promise<void> {
    const res = await this.keyCall(key, { method: 'DELETE', path: this.keyPath(key, opts.group) });
    if (res.status !== 204 && res.status !== 200) throw httpError(res);
  }

  /** `GET /cluster` from any reachable node; the client also adopts the table it describes. */
  async cluster(): Promise<ClusterInfo> {
    const deadline = Date.now() + this.timeoutMs;
    const { info } = await this.fetchCluster(deadline);
    return info;
  }

  /**
   * Re-learn the partition table now (also done every `refreshIntervalMs`, and at once when a
   * node cannot be reached). Concurrent calls share one fetch. Resolves with the table version
   * in force afterwards.
   */
  async refresh(): Promise<number> {
    return (await this.learn()).version;
  }

  /** Version of the table the client routes by; 0 before it learned one. */
  tableVersion(): number {
    return this.routing?.version ?? 0;
  }

  /** Where `key` would go now, learning the table first if needed. */
  async route(key: string): Promise<Route> {
    const rt = await this.table();
    const partition = partitionFor(rt, key);
    return { partition, owner: rt.holders[partition]?.[0], candidates: candidates(rt, key, (id) => this.isDown(id)) };
  }

  /** Stop the refresh timer and close every connection. Later calls fail with code 'closed'. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.agent.destroy();
  }

  // ---- routing ----

  private keyPath(key: string, group: string | undefined): string {
    if (typeof key !== 'string') throw new TypeError(`JincacheClient: key must be a string. Got: ${typeof key}`);
    return `/api/${encodeURIComponent(group ?? this.group)}/${encodeURIComponent(key)}`;
  }

  /** Send a key request to the owner, failing over to the next candidate on connection errors. */
  private async keyCall(key: string, attempt: Attempt): Promise<Answer> {
    const deadline = Date.now() + this.timeoutMs;
    const first = await this.table(deadline);
    let lastError: JincacheClientError | undefined;
    const tried = new Set<string>();
    // at most one try per node; a table re-learned midway may add nodes to the order
    for (;;) {
      // a table learned after a failure takes over from the next attempt on
      const rt = this.routing ?? first;
      const next = candidates(rt, key, (id) => this.isDown(id)).find((id) => !tried.has(id));
      if (next === undefined) break;
      tried.add(next);
      const base = rt.apis.get(next)!;
      try {
        const res = await this.send(base, attempt, deadline);
        this.noteVersion(res);
        if (res.status === 503) void this.learn().catch(() => {}); // the owner may have changed
        return res;
      } catch (e) {
        if (!isJincacheClientError(e) || e.code !== 'unavailable') throw e;
        lastError = e;
        this.markDown(next);
        // learn in the background: waiting would spend the budget the retry needs, and the
        // next candidate forwards to the right owner even under a stale table
        void this.learn().catch(() => {});
        if (Date.now() >= deadline) break;
      }
    }
    if (Date.now() >= deadline) throw new JincacheClientError('timeout', `${attempt.method} ${attempt.path}: no answer within ${this.timeoutMs} ms`, { cause: lastError });
    throw new JincacheClientError('unavailable', `${attempt.method} ${attempt.path}: no node could be reached (last: ${lastError?.message ?? 'none'})`, { cause: lastError });
  }

  /** The table in force, learning it first when there is none. */
  private async table(deadline = Date.now() + this.timeoutMs): Promise<RoutingTable> {
    if (this.closed) throw new JincacheClientError('closed', 'the client is closed');
    if (this.routing !== undefined) return this.routing;
    return this.learn(deadline);
  }

  private learn(deadline = Date.now() + this.timeoutMs): Promise<RoutingTable> {
    this.refreshing ??= this.fetchCluster(deadline)
      .then((r) => r.routing)
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  /**
   * Ask the known nodes (healthy ones first), then the seeds, for `GET /cluster` until one
   * answers; adopt what it describes unless the client already has a newer table.
   */
  private async fetchCluster(deadline: number): Promise<{ info: ClusterInfo; routing: RoutingTable }> {
    if (this.closed) throw new JincacheClientError('closed', 'the client is closed');
    const known = this.routing === undefined ? [] : this.routing.nodeIds.map((id) => ({ id, url: this.routing!.apis.get(id)! }));
    const sources = [...known.filter((k) => !this.isDown(k.id)), ...known.filter((k) => this.isDown(k.id))].map((k) => k.url);
    for (const s of this.seeds) if (!sources.includes(s)) sources.push(s);
    let lastError: unknown;
    for (const base of sources) {
      if (Date.now() >= deadline) break;
      try {
        const res = await this.send(base, { method: 'GET', path: '/cluster' }, deadline);
        if (res.status !== 200) throw httpError(res);
        let json: unknown;
        try {
          json = JSON.parse(res.body.toString('utf8'));
        } catch {
          throw new JincacheClientError('bad_response', `GET ${base}/cluster: body is not JSON`, { status: res.status });
        }
        const info = parseClusterInfo(json);
        let routing = routingFromCluster(info);
        if (this.fullTable !== 'no' && routing.version > 0) routing = await this.addBackups(base, routing, deadline);
        return { info, routing: this.adopt(routing) };
      } catch (e) {
        lastError = e;
        if (isJincacheClientError(e) && e.code === 'unavailable') {
          const id = known.find((k) => k.url === base)?.id;
          if (id !== undefined) this.markDown(id);
        }
      }
    }
    if (isJincacheClientError(lastError) && lastError.code !== 'unavailable') throw lastError;
    if (Date.now() >= deadline) throw new JincacheClientError('timeout', `no node answered GET /cluster within ${this.timeoutMs} ms`, { cause: lastError });
    throw new JincacheClientError('unavailable', `no node answered GET /cluster (tried ${sources.join(', ')})`, { cause: lastError });
  }

  /**
   * Add backups from `GET /cluster/table` when the node serves it. A 404 means it does not:
   * the client stops asking and fails over to arbitrary nodes, which forward to the owner.
   */
  private async addBackups(base: string, routing: RoutingTable, deadline: number): Promise<RoutingTable> {
    try {
      const res = await this.send(base, { method: 'GET', path: '/cluster/table' }, deadline);
      if (res.status === 404) {
        this.fullTable = 'no';
        return routing;
      }
      if (res.status !== 200) return routing;
      const full = withFullTable(routing, decodeTable(res.body.toString('utf8')));
      if (full.hasBackups) this.fullTable = 'yes';
      return full;
    } catch {
      // the owners alone still route every request correctly
      return routing;
    }
  }

  /** Keep the newer of the table in force and `next`. */
  private adopt(next: RoutingTable): RoutingTable {
    const cur = this.routing;
    if (cur === undefined || next.version > cur.version || (next.version === cur.version && next.hasBackups && !cur.hasBackups)) {
      this.routing = next;
      return next;
    }
    return cur;
  }

  private noteVersion(res: Answer): void {
    const raw = res.headers[RING_VERSION_HEADER];
    if (typeof raw !== 'string') return;
    const v = Number(raw);
    if (Number.isSafeInteger(v) && v > (this.routing?.version ?? 0)) void this.learn().catch(() => {});
  }

  private isDown(id: string): boolean {
    const until = this.downUntil.get(id);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.downUntil.delete(id);
    return false;
  }

  private markDown(id: string): void {
    this.downUntil.set(id, Date.now() + DOWN_FOR_MS);
  }

  // ---- transport ----

  /**
   * One HTTP exchange with `base`. Resolves with any answer the node gave; rejects with
   * 'unavailable' when no connection could be made or it broke before the answer was complete,
   * and with 'timeout' when `deadline` passed.
   */
  private send(base: string, attempt: Attempt, deadline: number, isRetry = false): Promise<Answer> {
    if (this.closed) return Promise.reject(new JincacheClientError('closed', 'the client is closed'));
    const remaining = deadline - Date.now();
    if (remaining <= 0) return Promise.reject(new JincacheClientError('timeout', `${attempt.method} ${attempt.path}: no answer within ${this.timeoutMs} ms`));
    const url = new URL(base);
    const headers: Record<string, string | number> = {};
    if (this.secret !== undefined) headers[SECRET_HEADER] = this.secret;
    if (attempt.body !== undefined) headers['content-length'] = attempt.body.length;
    return new Promise<Answer>((resolve, reject) => {
      let settled = false;
      const finish = (err: JincacheClientError | undefined, answer?: Answer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(connectTimer);
        if (err !== undefined) {
          req.destroy();
          reject(err);
        } else resolve(answer!);
      };
      const req = http.request(
        { host: url.hostname, port: url.port === '' ? 80 : Number(url.port), method: attempt.method, path: attempt.path, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) finish(new JincacheClientError('bad_response', `${base}: response larger than ${MAX_RESPONSE_BYTES} bytes`, { status: res.statusCode }));
            else chunks.push(c);
          });
          res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) }));
          res.on('error', (e) => finish(unavailable(base, e)));
        },
      );
      const timer = setTimeout(() => finish(new JincacheClientError('timeout', `${attempt.method} ${base}${attempt.path}: no answer within ${this.timeoutMs} ms`)), remaining);
      // a reused keep-alive socket is already connected; a new one gets connectTimeoutMs
      let connectTimer: NodeJS.Timeout | undefined;
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(() => finish(unavailable(base, new Error(`no connection within ${this.connectTimeoutMs} ms`))), Math.min(this.connectTimeoutMs, remaining));
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        // A pooled socket the node closed while idle fails on first use; that says nothing
        // about the node, so try once more on a new connection before calling it unavailable.
        if (!settled && req.reusedSocket && !isRetry && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) {
          settled = true;
          clearTimeout(timer);
          clearTimeout(connectTimer);
          resolve(this.send(base, attempt, deadline, true));
          return;
        }
        finish(unavailable(base, e));
      });
      req.end(attempt.body);
    });
  }
}

function unavailable(base: string, cause: Error): JincacheClientError {
  return new JincacheClientError('unavailable', `${base}: ${cause.message}`, { cause });
}

/** The server's `error` code of a JSON error answer, or undefined. */
function errorCode(res: Answer): string | undefined {
  if (!String(res.headers['content-type'] ?? '').startsWith('application/json')) return undefined;
  try {
    const body = JSON.parse(res.body.toString('utf8')) as { error?: unknown };
    return typeof body.error === 'string' ? body.error : undefined;
  } catch {
    return undefined;
  }
}

/** Convert a non-success answer into the error it describes (converted once, here). */
function httpError(res: Answer): JincacheClientError {
  let code: string | undefined;
  let message = `node answered HTTP ${res.status}`;
  try {
    const body = JSON.parse(res.body.toString('utf8')) as { error?: unknown; message?: unknown };
    if (typeof body.error === 'string') code = body.error;
    if (typeof body.message === 'string') message = body.message;
  } catch {
    // not a JSON error body: the status alone describes it
  }
  return new JincacheClientError(code ?? 'bad_response', message, { status: res.status });
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new TypeError(`JincacheClient: ${name} must be a positive integer. Got: ${String(v)}`);
  return v;
}
