/**
 * The serving half of the node-to-node protocol (protocol.ts): components register a handler per
 * message and receive decoded, typed requests; this file owns the envelope (secret, meta headers,
 * body limits, status codes), so no handler looks at HTTP.
 */
import type http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { JincacheError, toJincacheError } from '../core/errors.ts';
import { readBody } from '../net/body.ts';
import { isCodecError } from './codec.ts';
import { DEADLINE_HEADER, FROM_HEADER, PEER_PREFIX, SECRET_HEADER, TABLE_HEADER, tableStampOf, type MessageMeta, type PeerMessage } from './protocol.ts';

export type Handler<Req, Res> = (req: Req, meta: MessageMeta) => Res | Promise<Res>;

export interface PeerServerOptions {
  /** Required on every message when set (401 otherwise). */
  secret?: string;
  /** Largest request body, bytes. Default 576 MiB (a 512 MiB value plus framing). */
  maxBodyBytes?: number;
  /** Deadline of a request that carries none (a tool). Default 3000 ms from arrival. */
  defaultTimeoutMs?: number;
  /**
   * A time on the clock of the peer `from`, as the earliest time on this node's clock it can be
   * (health/clocks.ts): a request's deadline is its sender's. Default: the clocks agree.
   */
  localTime?: (from: string | undefined, peerTime: number) => number;
}

interface Route {
  message: PeerMessage<unknown, unknown>;
  handler: Handler<unknown, unknown>;
}

export class PeerServer {
  private readonly routes = new Map<string, Route>();
  private readonly secret: Buffer | undefined;
  private readonly maxBodyBytes: number;
  private readonly defaultTimeoutMs: number;
  private readonly localTime: (from: string | undefined, peerTime: number) => number;

  constructor(opts: PeerServerOptions = {}) {
    this.secret = opts.secret === undefined ? undefined : Buffer.from(opts.secret);
    this.maxBodyBytes = opts.maxBodyBytes ?? 576 * 1024 * 1024;
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 3000;
    this.localTime = opts.localTime ?? ((_from, t) => t);
  }

  /** Serve `message` with `handler`. One handler per message. */
  handle<Req, Res>(message: PeerMessage<Req, Res>, handler: Handler<Req, Res>): void {
    if (this.routes.has(message.name)) throw new Error(`peer message ${message.name} already has a handler`);
    this.routes.set(message.name, { message: message as PeerMessage<unknown, unknown>, handler: handler as Handler<unknown, unknown> });
  }

  /** True for the paths this server answers (everything under /_jincache/). */
  owns(url: string): boolean {
    return url.startsWith(PEER_PREFIX);
  }

  /** Answer one HTTP request under /_jincache/. Never throws. */
  serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.dispatch(req, res).catch((e: unknown) => sendError(res, toJincacheError(e)));
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.secret !== undefined && !this.authorized(req.headers[SECRET_HEADER])) {
      req.resume();
      return sendError(res, new JincacheError('UNAUTHORIZED', 'missing or wrong cluster secret'));
    }
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const name = url.slice(PEER_PREFIX.length, q < 0 ? undefined : q);
    if (!this.routes.has(name) || req.method !== 'POST') {
      req.resume();
      return sendError(res, new JincacheError('NOT_FOUND', `no peer message ${req.method} ${name}`));
    }
    const deadlineRaw = Number(header(req.headers[DEADLINE_HEADER]));
    const from = header(req.headers[FROM_HEADER]);
    const meta: MessageMeta = {
      from,
      table: tableStampOf(req.headers[TABLE_HEADER]),
      deadline: Number.isFinite(deadlineRaw) && deadlineRaw > 0 ? this.localTime(from, deadlineRaw) : Date.now() + this.defaultTimeoutMs,
    };
    try {
      const bytes = await this.invoke(name, await readBody(req, this.maxBodyBytes), meta);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
      res.end(bytes);
    } catch (e) {
      sendError(res, toJincacheError(e));
    }
  }

  /**
   * Decode a message body, run its handler, encode the answer: the transport-free core of the
   * server (the HTTP dispatch above, and in-process networks in tests). A malformed body is
   * BAD_REQUEST; an unknown message NOT_FOUND.
   */
  async invoke(name: string, body: Buffer, meta: MessageMeta): Promise<Buffer> {
    const route = this.routes.get(name);
    if (route === undefined) throw new JincacheError('NOT_FOUND', `no peer message ${name}`);
    try {
      const out = await route.handler(route.message.decodeRequest(body), meta);
      return route.message.encodeResponse(out);
    } catch (e) {
      if (isCodecError(e)) throw new JincacheError('BAD_REQUEST', e.message);
      if (e instanceof SyntaxError) throw new JincacheError('BAD_REQUEST', `body is not JSON: ${e.message}`);
      throw e;
    }
  }

  private authorized(given: string | string[] | undefined): boolean {
    if (typeof given !== 'string' || this.secret === undefined) return false;
    const g = Buffer.from(given);
    return g.length === this.secret.length && timingSafeEqual(g, this.secret);
  }
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function sendError(res: http.ServerResponse, err: JincacheError): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const text = JSON.stringify(err.toJSON());
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
  if (err.code === 'VALUE_TOO_LARGE') headers.connection = 'close';
  res.writeHead(err.status, headers);
  res.end(text);
}
