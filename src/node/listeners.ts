/**
 * A node's HTTP listeners. `server.port` carries node-to-node messages (everything under
 * /_jincache/, served by the PeerServer) and, unless `server.api_port` is set, the client API;
 * `api_port` gives the client API and the dashboard a listener of their own, so the peer port can
 * be firewalled.
 */
import http from '../net/node-http.ts';
import type * as httpTypes from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type { HttpApi } from '../front/http/api.ts';
import type { ClientLimits } from '../net/limits.ts';
import type { PeerServer } from '../peer/server.ts';

export interface ListenerOptions {
  host: string;
  port: number;
  /** Serve node-to-node messages (/_jincache/...). */
  peer?: PeerServer;
  /** Serve the client API. */
  api?: HttpApi;
  /** HTTPS with these options (certificate, and for mutual TLS the CA and requestCert). Default: plain HTTP. */
  tls?: SecureContextOptions & { requestCert?: boolean; rejectUnauthorized?: boolean };
  /**
   * Client connection bounds shared with the RESP listener (SPEC §8 `limits.max_clients`). A
   * connection counts from its first client-API request until it closes; node-to-node
   * connections never count, so a flood of clients cannot cut the cluster's own traffic.
   */
  limits?: ClientLimits;
}

/** Time to send a request's headers, and the whole request (Node's defaults are 60 s and 300 s). */
export const HEADERS_TIMEOUT_MS = 20_000;
export const REQUEST_TIMEOUT_MS = 30_000;

const TOO_MANY = JSON.stringify({ error: 'too_many_clients', message: 'max number of clients reached (limits.max_clients)' });

export class HttpListener {
  private readonly server: httpTypes.Server | https.Server;
  private readonly opts: ListenerOptions;

  constructor(opts: ListenerOptions) {
    this.opts = opts;
    const { peer, api, limits } = opts;
    const counted = new WeakSet<object>();
    const admit = (req: httpTypes.IncomingMessage, res: httpTypes.ServerResponse): boolean => {
      const socket = req.socket;
      if (limits === undefined || counted.has(socket)) return true;
      if (!limits.admit()) {
        req.resume();
        res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(TOO_MANY), connection: 'close' });
        res.end(TOO_MANY);
        return false;
      }
      counted.add(socket);
      socket.once('close', () => limits.leave());
      return true;
    };
    const handler = (req: httpTypes.IncomingMessage, res: httpTypes.ServerResponse): void => {
      if (peer !== undefined && peer.owns(req.url ?? '')) return peer.serve(req, res);
      if (api !== undefined) {
        if (admit(req, res)) api.serve(req, res);
        return;
      }
      req.resume();
      const body = JSON.stringify({ error: 'not_found', message: `no route for ${req.method} ${req.url}` });
      res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    // SPEC §8: a request has HEADERS_TIMEOUT_MS to send its headers and REQUEST_TIMEOUT_MS for
    // all of it, so a slow client cannot hold a connection and a partial body for long; an idle
    // keep-alive connection is kept for a load balancer's usual minute
    const options = { keepAliveTimeout: 65_000, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS };
    // a peer without a certificate from the cluster CA is refused in the handshake, before any request is read
    this.server = opts.tls !== undefined ? https.createServer({ ...options, ...opts.tls }, handler) : http.createServer(options, handler);
  }

  /** Serve new connections with renewed certificates (SIGHUP); open connections keep theirs. */
  setSecureContext(options: SecureContextOptions): void {
    if ('setSecureContext' in this.server) this.server.setSecureContext(options);
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
}
