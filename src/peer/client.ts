/**
 * Node-to-node HTTP client: keep-alive connections to every peer, one per-request deadline,
 * errors converted once into JincacheError (PEER_UNAVAILABLE, TIMEOUT) so callers can route on them.
 */
import http from 'node:http';
import { JincacheError } from '../core/errors.ts';

export interface PeerClientOptions {
  /** Cluster secret sent as `x-jincache-secret`; unset = open cluster. */
  secret?: string;
  /** Default per-request timeout in ms when the caller gives no deadline. Default 3000. */
  timeoutMs?: number;
  /** Sockets per peer. Default 64. */
  maxSockets?: number;
  /** Largest response body accepted, bytes. Default 64 MiB. */
  maxResponseBytes?: number;
}

export interface PeerResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface PeerRequest {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Path and query, starting with "/". */
  path: string;
  body?: Buffer;
  headers?: Record<string, string>;
  /** Absolute deadline, ms since epoch. */
  deadline?: number;
}

/** Header marking a request that was already forwarded once: the receiver must serve it locally. */
export const FORWARDED_HEADER = 'x-jincache-forwarded';
/** Header on every routed peer request: the version of the partition table the sender routed by. */
export const TABLE_HEADER = 'x-jincache-table';
/** Header naming the sending node (replication, hint replays). */
export const FROM_HEADER = 'x-jincache-from';

/** The table version a peer request was routed by (undefined: not stamped, e.g. a tool). */
export function tableStampOf(headers: Record<string, string | string[] | undefined>): number | undefined {
  const raw = headers[TABLE_HEADER];
  const v = Number(Array.isArray(raw) ? raw[0] : raw);
  return raw !== undefined && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}
export const SECRET_HEADER = 'x-jincache-secret';

export class PeerClient {
  private readonly agent: http.Agent;
  private readonly secret: string | undefined;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;

  constructor(opts: PeerClientOptions = {}) {
    this.secret = opts.secret;
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.maxResponseBytes = opts.maxResponseBytes ?? 64 * 1024 * 1024;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64, keepAliveMsecs: 1000 });
  }

  /** Send one request to the peer at `address` (a base URL like http://127.0.0.1:8001). */
  request(address: string, req: PeerRequest): Promise<PeerResponse> {
    const url = new URL(req.path, address);
    const timeout = req.deadline === undefined ? this.timeoutMs : Math.max(1, req.deadline - Date.now());
    const headers: Record<string, string | number> = { ...req.headers, [FORWARDED_HEADER]: '1' };
    if (this.secret !== undefined) headers[SECRET_HEADER] = this.secret;
    if (req.body !== undefined) headers['content-length'] = req.body.length;
    return new Promise<PeerResponse>((resolve, reject) => {
      let settled = false;
      const fail = (e: JincacheError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        r.destroy();
        reject(e);
      };
      const r = http.request(
        { host: url.hostname, port: url.port, path: url.pathname + url.search, method: req.method, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > this.maxResponseBytes) fail(new JincacheError('PEER_UNAVAILABLE', `response from ${address} exceeds ${this.maxResponseBytes} bytes`));
            else chunks.push(c);
          });
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
          });
          res.on('error', (e) => fail(new JincacheError('PEER_UNAVAILABLE', `${address}: ${e.message}`, { cause: e })));
        },
      );
      const timer = setTimeout(
        () => fail(new JincacheError('TIMEOUT', `${req.method} ${address}${req.path} timed out after ${timeout} ms`)),
        timeout,
      );
      r.on('error', (e) => fail(new JincacheError('PEER_UNAVAILABLE', `${address}: ${e.message}`, { cause: e })));
      r.end(req.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
