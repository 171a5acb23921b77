/**
 * The HTTP front end of a node: the client API of SPEC §3 and the node-to-node endpoints under
 * `/_jincache/`. One handler serves both; each listener enables the parts it carries.
 *
 * The GET path is measured against a bare node:http server (target >= 0.9x), so it avoids URL
 * objects, closures per request and JSON on success.
 */
import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { JincacheError, toJincacheError } from '../../core/errors.ts';
import { byteKey } from '../../core/placement/hash.ts';
import type { Router } from '../../cluster/router.ts';
import { decodeRecords, isCodecError, type WireRecord } from '../../peer/codec.ts';
import { FORWARDED_HEADER, FROM_HEADER, SECRET_HEADER, tableStampOf } from '../../peer/client.ts';

export interface HttpLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
  /** Most records in one replication/migration batch. */
  maxBatchRecords: number;
  /** Largest batch body in bytes. */
  maxBatchBytes: number;
}

export type ApiOp = 'get' | 'put' | 'delete' | 'expire' | 'replicate' | 'count' | 'invalidate';

/** What the HTTP layer needs from the node. */
export interface HttpBackend {
  readonly router: Router;
  readonly limits: HttpLimits;
  /** Cluster secret required on `/_jincache/` when set. */
  readonly secret: string | undefined;
  /** Absolute deadline for a request starting now. */
  deadline(): number;
  /** GET /cluster body. */
  clusterInfo(): unknown;
  /** GET /cluster/migrations body. */
  migrations(): Promise<unknown>;
  /** POST /cluster/rebalance. */
  rebalance(body: unknown): Promise<unknown>;
  /** Other /cluster/... control routes answered by plugins (e.g. POST /cluster/migrations/{id}/cancel). */
  control?(method: string, path: string): ((body: unknown) => Promise<unknown>) | undefined;
  /** GET /metrics. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Writes from another node (replication, handoff, migration). */
  applyRecords(records: WireRecord[]): number;
  /** Drop hot-cache copies of these keys. */
  invalidate(items: { group: string; key: string }[]): void;
  /** GET /_jincache/ping body. */
  ping(): unknown;
  /** True once the node has fully started (GET /health answers 200). */
  ready(): boolean;
  /** The partition table version in force (sent as x-jincache-ring-version so clients notice changes). */
  ringVersion(): number;
  /** GET /cluster/table: the full partition table (encodeTable). */
  encodedTable(): string;
  /** Persistent nodes: a promise to await before acknowledging a write while the disk lags. */
  backpressure?(): Promise<void> | undefined;
  /** Static dashboard assets by path, when served. */
  asset(path: string): { body: Buffer; contentType: string } | undefined;
  /** Observe a finished client request (metrics). */
  observe?(op: ApiOp, group: string, result: string, seconds: number): void;
  /** Extra node-to-node routes added by later components (migration, handoff): path prefix -> handler. */
  peerRoutes?(): ReadonlyMap<string, PeerRoute>;
}

export type PeerRoute = (req: http.IncomingMessage, body: Buffer, url: string) => Promise<{ status: number; body?: Buffer | string; headers?: Record<string, string> }>;

export interface ListenerOptions {
  host: string;
  port: number;
  /** Serve the client API (SPEC §3). */
  api: boolean;
  /** Serve node-to-node endpoints under /_jincache/. */
  peer: boolean;
}

const JSON_TYPE = 'application/json';
const OCTET = 'application/octet-stream';

export class HttpListener {
  private readonly server: http.Server;
  private readonly backend: HttpBackend;
  private readonly opts: ListenerOptions;
  private readonly secret: Buffer | undefined;

  constructor(backend: HttpBackend, opts: ListenerOptions) {
    this.backend = backend;
    this.opts = opts;
    this.secret = backend.secret === undefined ? undefined : Buffer.from(backend.secret);
    this.server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 60_000 }, (req, res) => {
      this.handle(req, res).catch((e: unknown) => sendError(res, toJincacheError(e)));
    });
    // a burst of keep-alive clients must not be cut by the default 5 s header timeout behaviour
    this.server.headersTimeout = 66_000;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    if (this.opts.api && url.startsWith('/api/')) return this.api(req, res, url, 5);
    if (this.opts.peer && url.startsWith('/_jincache/')) return this.peer(req, res, url);
    if (this.opts.api) return this.control(req, res, url);
    return sendError(res, new JincacheError('NOT_FOUND', `no route for ${req.method} ${pathOf(url)}`));
  }

  // ---- client API ----

  /** `/api/{group}/{key}` (start = index after "/api/") or `/api?group=G&key=K`. */
  private async api(req: http.IncomingMessage, res: http.ServerResponse, url: string, start: number): Promise<void> {
    const began = process.hrtime.bigint();
    const q = url.indexOf('?', start);
    const path = q < 0 ? url.slice(start) : url.slice(start, q);
    const slash = path.indexOf('/');
    if (slash <= 0 || slash === path.length - 1) {
      return sendError(res, new JincacheError('BAD_REQUEST', 'expected /api/{group}/{key}'));
    }
    let group: string;
    let key: string;
    try {
      group = decodeURIComponent(path.slice(0, slash));
      key = decodeURIComponent(path.slice(slash + 1));
    } catch {
      return sendError(res, new JincacheError('BAD_REQUEST', 'malformed percent-encoding in path'));
    }
    return this.keyOp(req, res, group, key, q < 0 ? '' : url.slice(q + 1), began);
  }

  private async keyOp(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    group: string,
    key: string,
    query: string,
    began: bigint,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const op: ApiOp = method === 'PUT' || method === 'POST' ? 'put' : method === 'DELETE' ? 'delete' : 'get';
    let result = 'ok';
    try {
      this.checkKey(key);
      // The API's keys are text; a key is placed and stored as its UTF-8 bytes (SPEC §2).
      key = byteKey(key);
      const router = this.backend.router;
      const deadline = this.backend.deadline();
      if (method === 'GET' || method === 'HEAD') {
        const got = await router.get(group, key, { deadline });
        if (got === null) {
          result = 'miss';
          res.writeHead(404, { 'content-type': JSON_TYPE, 'x-cache': 'miss' });
          res.end(`{"error":"not_found","message":"no value for key in group ${jsonSafe(group)}"}`);
          return;
        }
        result = got.source;
        const headers: Record<string, string | number> = {
          'content-type': OCTET,
          'content-length': got.value.length,
          'x-cache': got.source,
          'x-jincache-ring-version': this.backend.ringVersion(),
        };
        if (got.expiresAt > 0) headers['x-jincache-expires'] = got.expiresAt;
        res.writeHead(200, headers);
        res.end(method === 'HEAD' ? undefined : got.value);
      } else if (method === 'PUT' || method === 'POST') {
        const ttlMs = parseTtl(query);
        const body = await readBody(req, this.backend.limits.maxValueBytes, 'VALUE_TOO_LARGE');
        await router.put(group, key, body, { ttlMs, deadline });
        const bp = this.backend.backpressure?.();
        if (bp !== undefined) await bp;
        res.writeHead(204, { 'x-jincache-ring-version': this.backend.ringVersion() });
        res.end();
      } else if (method === 'DELETE') {
        await router.delete(group, key, { deadline });
        const bp = this.backend.backpressure?.();
        if (bp !== undefined) await bp;
        res.writeHead(204, { 'x-jincache-ring-version': this.backend.ringVersion() });
        res.end();
      } else {
        throw new JincacheError('BAD_REQUEST', `method ${method} not allowed on a key`);
      }
    } catch (e) {
      const err = toJincacheError(e);
      result = err.code.toLowerCase();
      sendError(res, err);
    } finally {
      this.backend.observe?.(op, group, result, Number(process.hrtime.bigint() - began) / 1e9);
    }
  }

  private checkKey(key: string): void {
    if (key.length === 0) throw new JincacheError('BAD_REQUEST', 'empty key');
    // UTF-8 needs at most 3 bytes per UTF-16 unit: skip the exact count for short keys
    if (key.length * 3 > this.backend.limits.maxKeyBytes && Buffer.byteLength(key) > this.backend.limits.maxKeyBytes) {
      throw new JincacheError('KEY_TOO_LARGE', `key of ${Buffer.byteLength(key)} bytes exceeds ${this.backend.limits.maxKeyBytes}`);
    }
  }

  /** /health, /cluster, /metrics, the dashboard and the `/api?group=&key=` form. */
  private async control(req: http.IncomingMessage, res: http.ServerResponse, url: string): Promise<void> {
    const path = pathOf(url);
    const method = req.method ?? 'GET';
    if (path === '/api') {
      const params = new URLSearchParams(url.slice(path.length + 1));
      const group = params.get('group');
      const key = params.get('key');
      if (group === null || key === null || group === '') {
        return sendError(res, new JincacheError('BAD_REQUEST', 'expected /api?group=G&key=K'));
      }
      params.delete('group');
      params.delete('key');
      return this.keyOp(req, res, group, key, params.toString(), process.hrtime.bigint());
    }
    if (method === 'GET' && path === '/health') {
      // 503 until the node has joined and its components run: load balancers and tests wait for 200
      return this.backend.ready() ? sendJson(res, 200, { status: 'ok' }) : sendJson(res, 503, { status: 'starting' });
    }
    if (method === 'GET' && path === '/cluster') return sendJson(res, 200, this.backend.clusterInfo());
    if (method === 'GET' && path === '/cluster/table') {
      const text = this.backend.encodedTable();
      res.writeHead(200, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    if (method === 'GET' && path === '/cluster/migrations') return sendJson(res, 200, await this.backend.migrations());
    if (method === 'POST' && path === '/cluster/rebalance') {
      return sendJson(res, 200, await this.backend.rebalance(await readJson(req)));
    }
    const handler = path.startsWith('/cluster/') ? this.backend.control?.(method, path) : undefined;
    if (handler !== undefined) return sendJson(res, 200, await handler(method === 'GET' ? {} : await readJson(req)));
    if (method === 'GET' && path === '/metrics') {
      const m = await this.backend.metrics();
      res.writeHead(200, { 'content-type': m.contentType });
      res.end(m.body);
      return;
    }
    if (method === 'GET') {
      const asset = this.backend.asset(path);
      if (asset !== undefined) {
        res.writeHead(200, { 'content-type': asset.contentType, 'cache-control': 'no-cache' });
        res.end(asset.body);
        return;
      }
    }
    sendError(res, new JincacheError('NOT_FOUND', `no route for ${method} ${path}`));
  }

  // ---- node-to-node ----

  private async peer(req: http.IncomingMessage, res: http.ServerResponse, url: string): Promise<void> {
    if (this.secret !== undefined && !this.authorized(req)) {
      return sendError(res, new JincacheError('UNAUTHORIZED', 'missing or wrong cluster secret'));
    }
    const path = pathOf(url);
    const query = url.length > path.length ? url.slice(path.length + 1) : '';
    const method = req.method ?? 'GET';
    const router = this.backend.router;
    const limits = this.backend.limits;
    try {
      if (path.startsWith('/_jincache/kv/')) {
        const [group, key] = splitGroupKey(path.slice('/_jincache/kv/'.length));
        this.checkKey(key);
        const deadline = this.backend.deadline();
        if (method === 'GET' && query.includes('local=1')) {
          // what this node holds, tombstones excluded, with its version: no loading, no routing
          const rec = router.localData().record(group, key);
          if (rec === undefined || rec.value === null || (rec.expiresAt > 0 && rec.expiresAt <= Date.now())) {
            return sendJson(res, 404, { error: 'not_found', message: 'absent' });
          }
          const headers: Record<string, string | number> = { 'content-type': OCTET, 'x-jincache-version': rec.version };
          if (rec.expiresAt > 0) headers['x-jincache-expires'] = rec.expiresAt;
          res.writeHead(200, headers);
          res.end(rec.value);
          return;
        }
        if (method === 'GET') {
          // served here unless this node's table is newer than the sender's and no longer lists
          // it as a holder: then routed again by that table (Router.getForPeer)
          const got = await router.getForPeer(group, key, deadline, tableStampOf(req.headers));
          if (got === null) return sendJson(res, 404, { error: 'not_found', message: 'absent' });
          const headers: Record<string, string | number> = { 'content-type': OCTET, 'x-cache': got.source };
          if (got.expiresAt > 0) headers['x-jincache-expires'] = got.expiresAt;
          res.writeHead(200, headers);
          res.end(got.value);
          return;
        }
        if (method === 'PUT') {
          const params = new URLSearchParams(query);
          const ttlMs = numberParam(params.get('ttl_ms'));
          const cond = params.get('cond');
          const body = await readBody(req, limits.maxValueBytes, 'VALUE_TOO_LARGE');
          const applied = await router.putAsOwner(group, key, body, { ttlMs, condition: cond === 'nx' || cond === 'xx' ? cond : undefined }, deadline);
          res.writeHead(applied ? 204 : 412);
          res.end();
          return;
        }
        if (method === 'DELETE') {
          const existed = await router.deleteAsOwner(group, key, deadline);
          res.writeHead(204, { 'x-jincache-existed': existed ? '1' : '0' });
          res.end();
          return;
        }
      }
      if (method === 'POST' && path.startsWith('/_jincache/expire/')) {
        const [group, key] = splitGroupKey(path.slice('/_jincache/expire/'.length));
        const ttlMs = numberParam(new URLSearchParams(query).get('ttl_ms')) ?? 0;
        const ok = await router.expireAsOwner(group, key, ttlMs, this.backend.deadline());
        res.writeHead(ok ? 204 : 404);
        res.end();
        return;
      }
      if (method === 'POST' && path === '/_jincache/replicate') {
        const body = await readBody(req, limits.maxBatchBytes, 'VALUE_TOO_LARGE');
        const records = decodeRecords(body, { maxRecords: limits.maxBatchRecords, maxValueBytes: limits.maxValueBytes });
        for (const r of records) this.checkKey(r.key);
        this.backend.applyRecords(records);
        // a sender with an older table may have missed holders this node's table lists
        const from = req.headers[FROM_HEADER];
        await router.forwardReplicated(records, typeof from === 'string' ? from : undefined, tableStampOf(req.headers), this.backend.deadline());
        res.writeHead(204);
        res.end();
        return;
      }
      if (method === 'POST' && path === '/_jincache/invalidate') {
        const body = await readBody(req, limits.maxBatchBytes, 'VALUE_TOO_LARGE');
        const items = JSON.parse(body.toString('utf8')) as { group: string; key: string }[];
        if (!Array.isArray(items) || items.length > limits.maxBatchRecords) throw new JincacheError('BAD_REQUEST', 'expected a bounded JSON array');
        this.backend.invalidate(items.filter((i) => typeof i?.group === 'string' && typeof i?.key === 'string'));
        res.writeHead(204);
        res.end();
        return;
      }
      if (method === 'GET' && path.startsWith('/_jincache/count/')) {
        const group = decodeURIComponent(path.slice('/_jincache/count/'.length));
        return sendJson(res, 200, { count: router.countOwned(group) });
      }
      if (method === 'GET' && path === '/_jincache/ping') return sendJson(res, 200, this.backend.ping());
      const extra = this.backend.peerRoutes?.();
      if (extra !== undefined) {
        for (const [prefix, route] of extra) {
          if (path.startsWith(prefix)) {
            const body = await readBody(req, limits.maxBatchBytes, 'VALUE_TOO_LARGE');
            const out = await route(req, body, url);
            res.writeHead(out.status, out.headers);
            res.end(out.body);
            return;
          }
        }
      }
      throw new JincacheError('NOT_FOUND', `no route for ${method} ${path}`);
    } catch (e) {
      if (isCodecError(e)) return sendError(res, new JincacheError('BAD_REQUEST', e.message));
      if (e instanceof SyntaxError) return sendError(res, new JincacheError('BAD_REQUEST', 'body is not JSON'));
      sendError(res, toJincacheError(e));
    }
  }

  private authorized(req: http.IncomingMessage): boolean {
    const given = req.headers[SECRET_HEADER];
    if (typeof given !== 'string' || this.secret === undefined) return false;
    const g = Buffer.from(given);
    return g.length === this.secret.length && timingSafeEqual(g, this.secret);
  }
}

/** True when the request was forwarded by another node. */
export function isForwarded(req: http.IncomingMessage): boolean {
  return req.headers[FORWARDED_HEADER] === '1';
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function splitGroupKey(rest: string): [string, string] {
  const slash = rest.indexOf('/');
  if (slash <= 0) throw new JincacheError('BAD_REQUEST', 'expected {group}/{key}');
  try {
    return [decodeURIComponent(rest.slice(0, slash)), decodeURIComponent(rest.slice(slash + 1))];
  } catch {
    throw new JincacheError('BAD_REQUEST', 'malformed percent-encoding in path');
  }
}

/** `ttl=SECONDS` from a query string: a positive number of seconds up to ten years. */
function parseTtl(query: string): number | undefined {
  if (query === '') return undefined;
  const raw = new URLSearchParams(query).get('ttl');
  if (raw === null || raw === '') return undefined;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 315_360_000) {
    throw new JincacheError('BAD_TTL', `ttl=${raw} is invalid: expected seconds, a number > 0 and <= 315360000`);
  }
  return Math.round(seconds * 1000);
}

function numberParam(raw: string | null): number | undefined {
  if (raw === null || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new JincacheError('BAD_REQUEST', `bad number ${raw}`);
  return n;
}

/** Read a request body up to `limit` bytes; a larger one is refused without reading it all. */
export function readBody(req: http.IncomingMessage, limit: number, code: 'VALUE_TOO_LARGE' | 'BAD_REQUEST'): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? -1);
  if (declared > limit) {
    return Promise.reject(new JincacheError(code, `body of ${declared} bytes exceeds the limit of ${limit}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new JincacheError(code, `body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

/** A small JSON request body ({} when empty). */
async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const raw = await readBody(req, 64 * 1024, 'BAD_REQUEST');
  if (raw.length === 0) return {};
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new JincacheError('BAD_REQUEST', 'body is not JSON');
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: http.ServerResponse, err: JincacheError): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  // an oversized body is not drained: close the connection rather than read megabytes
  if (err.code === 'VALUE_TOO_LARGE') res.setHeader('connection', 'close');
  sendJson(res, err.status, err.toJSON());
}

function jsonSafe(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}
