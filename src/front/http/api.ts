/**
 * The HTTP client API (SPEC §3): `/api/{group}/{key}`, `/api?group=&key=`, the control routes
 * under `/cluster`, `/metrics`, `/health` and the dashboard. Keys, values, TTLs, deadlines and
 * metrics go through the front door (door.ts), so this file only parses and formats HTTP.
 *
 * The GET path is measured against a bare node:http server, so it avoids URL objects, closures
 * per request and JSON on success.
 */
import type http from 'node:http';
import { JincacheError, toJincacheError } from '../../core/errors.ts';
import { keyFromText } from '../../core/keys.ts';
import { readBody } from '../../net/body.ts';
import type { ClientLimits } from '../../net/limits.ts';
import { NO_EXPIRY } from '../../cache/ops.ts';
import { httpCredentials, type Principal } from '../auth.ts';
import { resultOf, type FrontDoor } from '../door.ts';
import type { GetResult } from '../../cluster/kv.ts';

/** What the control routes read from the node. */
export interface ControlApi {
  /** True once the node has fully started (GET /health answers 200). */
  ready(): boolean;
  /** The partition table version in force (sent as x-jincache-ring-version so clients notice changes). */
  ringVersion(): number;
  /** GET /cluster body. */
  clusterInfo(): unknown;
  /** GET /cluster/table: the full partition table (encodeTable). */
  encodedTable(): string;
  /** GET /cluster/migrations body. */
  migrations(): Promise<unknown>;
  /** POST /cluster/migrations/{id}/cancel and .../rollback. */
  migration(action: 'cancel' | 'rollback', id: string): Promise<unknown>;
  /** POST /cluster/rebalance. */
  rebalance(body: unknown): Promise<unknown>;
  /** GET /metrics. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Static dashboard assets by path. */
  asset(path: string): { body: Buffer; contentType: string } | undefined;
}

const JSON_TYPE = 'application/json';
const OCTET = 'application/octet-stream';
const MIGRATION_ROUTE = /^\/cluster\/migrations\/([^/]+)\/(cancel|rollback)$/;
/** The dashboard's pages: its own scripts and styles only, never framed by another site. */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

export interface HttpApiOptions {
  /** true: GET /metrics needs no credential (auth.public_metrics). Default false. */
  publicMetrics?: boolean;
  /** Request bodies count against the input budget of all clients while they arrive (SPEC §8). */
  limits?: ClientLimits;
}

export class HttpApi {
  private readonly door: FrontDoor;
  private readonly control: ControlApi;
  private readonly publicMetrics: boolean;
  private readonly limits: ClientLimits | undefined;

  constructor(door: FrontDoor, control: ControlApi, opts: HttpApiOptions = {}) {
    this.door = door;
    this.control = control;
    this.publicMetrics = opts.publicMetrics ?? false;
    this.limits = opts.limits;
  }

  /** Answer one client request. Never throws. */
  serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.route(req, res).catch((e: unknown) => sendError(res, toJincacheError(e)));
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    // the only route open to anyone, so load balancers need no credential
    if (url === '/health' && req.method === 'GET') {
      // 503 until the node has joined and its components run: load balancers and tests wait for 200
      return this.control.ready() ? sendJson(res, 200, { status: 'ok' }) : sendJson(res, 503, { status: 'starting' });
    }
    const refused = browserRefusal(req, this.door.authRequired);
    if (refused !== undefined) return sendError(res, new JincacheError('FORBIDDEN', refused));
    const who = await this.principal(req);
    if (url.startsWith('/api/')) return this.api(req, res, url, 5, who);
    return this.controlRoute(req, res, url, who);
  }

  /** Who sent the request: from `Authorization` when credentials are required (null when absent or wrong). */
  private async principal(req: http.IncomingMessage): Promise<Principal | null> {
    const anonymous = this.door.anonymous();
    if (anonymous !== null) return anonymous;
    const creds = httpCredentials(req.headers.authorization);
    if (creds === undefined) return null;
    return (await this.door.authenticate(creds.user, creds.password)) ?? null;
  }

  /** `/api/{group}/{key}` (start = index after "/api/"). */
  private async api(req: http.IncomingMessage, res: http.ServerResponse, url: string, start: number, who: Principal | null): Promise<void> {
    const q = url.indexOf('?', start);
    const path = q < 0 ? url.slice(start) : url.slice(start, q);
    const slash = path.indexOf('/');
    if (slash <= 0 || slash === path.length - 1) return sendError(res, new JincacheError('BAD_REQUEST', 'expected /api/{group}/{key}'));
    let group: string;
    let key: string;
    try {
      group = decodeURIComponent(path.slice(0, slash));
      key = decodeURIComponent(path.slice(slash + 1));
    } catch {
      return sendError(res, new JincacheError('BAD_REQUEST', 'malformed percent-encoding in path'));
    }
    return this.keyOp(req, res, who, group, keyFromText(key), q < 0 ? '' : url.slice(q + 1));
  }

  private async keyOp(req: http.IncomingMessage, res: http.ServerResponse, who: Principal | null, group: string, key: string, query: string): Promise<void> {
    const door = this.door;
    const method = req.method ?? 'GET';
    const began = performance.now();
    // once the door has the request it counts it; failures before that are counted here
    let counted = false;
    try {
      if (method === 'GET' || method === 'HEAD') {
        counted = true;
        // no promise when this node may answer from its own copy now (as the RESP GET does):
        // door.get() went through the router's whole read path for a local hit
        const got = localRead(door, who, group, key) ?? (await door.get('http', who, group, key));
        if (got === null) {
          res.writeHead(404, { 'content-type': JSON_TYPE, 'x-cache': 'miss' });
          res.end(`{"error":"not_found","message":"no value for key in group ${jsonSafe(group)}"}`);
          return;
        }
        const headers: Record<string, string | number> = {
          'content-type': OCTET,
          'content-length': got.value.length,
          'x-cache': got.source,
          'x-jincache-ring-version': this.control.ringVersion(),
        };
        if (got.expiresAt > 0) headers['x-jincache-expires'] = got.expiresAt;
        res.writeHead(200, headers);
        res.end(method === 'HEAD' ? undefined : got.value);
        return;
      }
      if (method === 'PUT') {
        door.authorize(who, 'write');
        const expiry = ttlParam(door, query);
        door.checkGroup(group);
        door.checkKey('http', key);
        const value = await readBody(req, door.maxValueBytes(), 'VALUE_TOO_LARGE', this.limits);
        counted = true;
        await door.write('http', who, group, key, { op: 'set', value, expiry });
      } else if (method === 'DELETE') {
        counted = true;
        await door.write('http', who, group, key, { op: 'del' });
      } else {
        // POST is not a write: a cross-site form or a "simple" CORS request must not store anything
        throw new JincacheError('BAD_REQUEST', `method ${method} not allowed on a key (GET, HEAD, PUT, DELETE)`);
      }
      res.writeHead(204, { 'x-jincache-ring-version': this.control.ringVersion() });
      res.end();
    } catch (e) {
      const err = toJincacheError(e);
      if (!counted) door.observe('http', method === 'PUT' ? 'put' : method === 'DELETE' ? 'delete' : 'other', group, resultOf(err), began);
      sendError(res, err);
    }
  }

  /** /cluster..., /metrics, the dashboard and the `/api?group=&key=` form: reading needs `read`, acting `admin`. */
  private async controlRoute(req: http.IncomingMessage, res: http.ServerResponse, url: string, who: Principal | null): Promise<void> {
    const path = pathOf(url);
    const method = req.method ?? 'GET';
    const c = this.control;
    const door = this.door;
    if (path === '/api') {
      const params = new URLSearchParams(url.slice(path.length + 1));
      const group = params.get('group');
      const key = params.get('key');
      if (group === null || key === null || group === '' || key === '') return sendError(res, new JincacheError('BAD_REQUEST', 'expected /api?group=G&key=K'));
      params.delete('group');
      params.delete('key');
      return this.keyOp(req, res, who, group, keyFromText(key), params.toString());
    }
    if (method === 'GET' && path === '/metrics' && this.publicMetrics) return this.metrics(res);
    if (method === 'POST') door.authorize(who, 'admin');
    else door.authorize(who, 'read');
    if (method === 'GET' && path === '/cluster') return sendJson(res, 200, c.clusterInfo());
    if (method === 'GET' && path === '/cluster/table') {
      const text = c.encodedTable();
      res.writeHead(200, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    if (method === 'GET' && path === '/cluster/migrations') return sendJson(res, 200, await c.migrations());
    if (method === 'POST' && path === '/cluster/rebalance') return sendJson(res, 200, await c.rebalance(await readJson(req)));
    const m = method === 'POST' ? MIGRATION_ROUTE.exec(path) : null;
    if (m !== null) {
      let id: string;
      try {
        id = decodeURIComponent(m[1]!);
      } catch {
        return sendError(res, new JincacheError('BAD_REQUEST', 'malformed percent-encoding in path'));
      }
      await readJson(req);
      return sendJson(res, 200, await c.migration(m[2] as 'cancel' | 'rollback', id));
    }
    if (method === 'GET' && path === '/metrics') return this.metrics(res);
    if (method === 'GET') {
      const asset = c.asset(path);
      if (asset !== undefined) {
        res.writeHead(200, { 'content-type': asset.contentType, 'cache-control': 'no-cache', ...PAGE_HEADERS });
        res.end(asset.body);
        return;
      }
    }
    sendError(res, new JincacheError('NOT_FOUND', `no route for ${method} ${path}`));
  }

  private async metrics(res: http.ServerResponse): Promise<void> {
    const out = await this.control.metrics();
    res.writeHead(200, { 'content-type': out.contentType });
    res.end(out.body);
  }
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * Requests a browser was tricked into sending (SPEC §7). Cross-site request forgery: a page on
 * another site may make the browser send a PUT, DELETE or POST, with credentials it remembers;
 * such a request says so (`Sec-Fetch-Site`, or an `Origin` that is not this host) and changes
 * nothing. DNS rebinding: without credentials configured (loopback only) a page can resolve its
 * own name to 127.0.0.1 and read the node; so an open node answers only requests addressed to a
 * loopback name or an IP address. Undefined: not refused.
 */
export function browserRefusal(req: Pick<http.IncomingMessage, 'method' | 'headers'>, authRequired: boolean): string | undefined {
  const h = req.headers;
  if (!authRequired) {
    const host = h.host;
    if (host !== undefined && !isAddressHost(host)) return `refused: Host "${host}" is not a loopback name or an IP address, and this node requires no credential (a DNS rebinding attack looks like this); set auth.requirepass to serve other names`;
  }
  const m = req.method;
  if (m === 'GET' || m === 'HEAD' || m === 'OPTIONS') return undefined;
  const site = h['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return `refused: a ${m} sent by a page of another site (Sec-Fetch-Site: ${site})`;
  const origin = h.origin;
  if (origin !== undefined && origin !== 'null' && h.host !== undefined && originHost(origin) !== h.host.toLowerCase()) return `refused: a ${m} from the page of another origin (${origin})`;
  if (origin === 'null') return `refused: a ${m} from a page with an opaque origin`;
  return undefined;
}

function originHost(origin: string): string | undefined {
  const i = origin.indexOf('://');
  return i < 0 ? undefined : origin.slice(i + 3).toLowerCase();
}

/** localhost, an IPv4 address or a bracketed IPv6 address, with or without a port. */
function isAddressHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name.endsWith('.localhost') || /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || /^\[[0-9a-fA-F:.]+\]$/.test(name);
}

/** `ttl=SECONDS` from a query string: a positive number of seconds (door.ttl decides the range). */
function ttlParam(door: FrontDoor, query: string): ReturnType<FrontDoor['ttl']> {
  if (query === '') return NO_EXPIRY;
  const raw = new URLSearchParams(query).get('ttl');
  if (raw === null || raw === '') return NO_EXPIRY;
  return door.ttl(Number(raw) * 1000, `ttl=${raw}`);
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

export function sendError(res: http.ServerResponse, err: JincacheError): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  // an oversized body is not drained: close the connection rather than read megabytes
  if (err.code === 'VALUE_TOO_LARGE') res.setHeader('connection', 'close');
  // a browser opening the dashboard asks for a user and password
  if (err.code === 'UNAUTHORIZED') res.setHeader('www-authenticate', 'Basic realm="jincache", charset="UTF-8"');
  sendJson(res, err.status, err.toJSON());
}

function jsonSafe(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

/**
 * The door's synchronous read, or undefined for "call get()": get() also answers what the
 * synchronous read cannot (a miss, a load, another holder) and every error in its own words
 * (an unknown group, a missing permission), counted in /metrics once.
 */
function localRead(door: FrontDoor, who: Principal | null, group: string, key: string): GetResult | undefined {
  try {
    return door.getLocal('http', who, group, key);
  } catch {
    return undefined;
  }
}
