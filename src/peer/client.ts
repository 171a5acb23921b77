/**
 * The sending half of the node-to-node protocol (protocol.ts): keep-alive HTTP connections to
 * every peer, one deadline per call, and every failure converted once into a JincacheError
 * (PEER_UNAVAILABLE, TIMEOUT, or the code the peer answered with) so callers route on codes.
 */
import http from '../net/node-http.ts';
import type * as httpTypes from 'node:http';
import https from 'node:https';
import { JincacheError, isErrorCode, type JincacheErrorCode } from '../core/errors.ts';
import type { NodeId } from '../core/types.ts';
import { DEADLINE_HEADER, FROM_HEADER, SECRET_HEADER, TABLE_HEADER, pathOf, type PeerMessage } from './protocol.ts';

export interface PeerClientOptions {
  /** Cluster secret sent as `x-jincache-secret`; unset = open cluster. */
  secret?: string;
  /** Sockets per peer. Default 64. */
  maxSockets?: number;
  /** Largest response body accepted, bytes. Default 576 MiB (a 512 MiB value plus framing). */
  maxResponseBytes?: number;
  /** For https:// peers: this node's certificate and key (mutual TLS) and the CA that signs the peers'. */
  tls?: { cert?: Buffer; key?: Buffer; ca?: Buffer };
}

/** Who sends, by which table, until when. */
export interface CallMeta {
  from?: NodeId;
  table?: number;
  /** Absolute deadline, ms since epoch. */
  deadline: number;
}

/** Sends a message to the peer at an address: what components use (PeerClient, or an in-process network in tests). */
export interface PeerCaller {
  call<Req, Res>(message: PeerMessage<Req, Res>, address: string, req: Req, meta: CallMeta): Promise<Res>;
}

export class PeerClient implements PeerCaller {
  private readonly agent: httpTypes.Agent;
  private tlsAgent: https.Agent;
  private readonly secret: string | undefined;
  private readonly maxResponseBytes: number;
  private readonly maxSockets: number;

  constructor(opts: PeerClientOptions = {}) {
    this.secret = opts.secret;
    this.maxResponseBytes = opts.maxResponseBytes ?? 576 * 1024 * 1024;
    this.maxSockets = opts.maxSockets ?? 64;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: this.maxSockets, keepAliveMsecs: 1000 });
    this.tlsAgent = this.makeTlsAgent(opts.tls);
  }

  /** Use renewed certificates for new connections (SIGHUP). */
  setTls(tls: PeerClientOptions['tls']): void {
    const old = this.tlsAgent;
    this.tlsAgent = this.makeTlsAgent(tls);
    // open connections finish their requests; idle ones close
    setTimeout(() => old.destroy(), 10_000).unref();
  }

  private makeTlsAgent(tls: PeerClientOptions['tls']): https.Agent {
    return new https.Agent({ keepAlive: true, maxSockets: this.maxSockets, keepAliveMsecs: 1000, ...tls });
  }

  /** Send `req` as `message` to the peer listening at `address` (a base URL like http://127.0.0.1:8001). */
  async call<Req, Res>(message: PeerMessage<Req, Res>, address: string, req: Req, meta: CallMeta): Promise<Res> {
    const body = message.encodeRequest(req);
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'content-length': body.length,
      [DEADLINE_HEADER]: Math.ceil(meta.deadline),
    };
    if (meta.from !== undefined) headers[FROM_HEADER] = meta.from;
    if (meta.table !== undefined) headers[TABLE_HEADER] = meta.table;
    if (this.secret !== undefined) headers[SECRET_HEADER] = this.secret;
    const res = await this.send(address, pathOf(message), headers, body, meta.deadline);
    if (res.status !== 200) throw errorOf(address, message.name, res.status, res.body);
    return message.decodeResponse(res.body);
  }

  close(): void {
    this.agent.destroy();
    this.tlsAgent.destroy();
  }

  private send(address: string, path: string, headers: Record<string, string | number>, body: Buffer, deadline: number): Promise<{ status: number; body: Buffer }> {
    const url = new URL(address);
    const timeout = Math.max(1, deadline - Date.now());
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (e: JincacheError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        r.destroy();
        reject(e);
      };
      const secure = url.protocol === 'https:';
      const request = secure ? https.request : http.request;
      const r = request({ host: url.hostname, port: url.port, path, method: 'POST', headers, agent: secure ? this.tlsAgent : this.agent }, (res) => {
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
          resolve({ status: res.statusCode ?? 0, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
        });
        res.on('error', (e) => fail(new JincacheError('PEER_UNAVAILABLE', `${address}: ${e.message}`, { cause: e })));
      });
      const timer = setTimeout(() => fail(new JincacheError('TIMEOUT', `${path} to ${address} timed out after ${timeout} ms`)), timeout);
      r.on('error', (e) => fail(new JincacheError('PEER_UNAVAILABLE', `${address}: ${e.message}`, { cause: e })));
      r.end(body);
    });
  }
}

/** The error a peer's non-200 answer describes. */
function errorOf(address: string, name: string, status: number, body: Buffer): JincacheError {
  let code: JincacheErrorCode = status >= 500 ? 'PEER_UNAVAILABLE' : status === 401 ? 'UNAUTHORIZED' : 'BAD_REQUEST';
  let message = `${address} answered ${status} to ${name}`;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: unknown; message?: unknown };
    const named = typeof parsed.error === 'string' ? parsed.error.toUpperCase() : '';
    if (isErrorCode(named)) code = named;
    if (typeof parsed.message === 'string') message = `${address}: ${parsed.message}`;
  } catch {
    // not a JSON error body: keep the status-derived error
  }
  return new JincacheError(code, message);
}
