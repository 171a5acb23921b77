/**
 * What a node-to-node message is, whatever it carries: a name, a request type and a response
 * type, each with its body encoding. The wire form (one place, for every message):
 *
 *   POST /_jincache/{name}                       the request body: encodeRequest(req)
 *     x-jincache-secret: S                      when cluster.secret is set (401 without it)
 *     x-jincache-from: NODE                     the sender
 *     x-jincache-table: VERSION                 the partition table the sender routed by
 *     x-jincache-deadline: MS                   absolute ms since epoch: the sender has given up
 *                                               by then (a write's fence, see router.ts)
 *   200                                          the response body: encodeResponse(res)
 *   4xx/5xx {"error": code, "message": text}     a JincacheError (core/errors.ts gives the status)
 *
 * Outcomes that are answers rather than failures (a condition that did not hold, a receiver
 * that no longer holds the key) are fields of the response type, not status codes.
 *
 * Messages are declared in messages.ts; PeerClient.call sends one, PeerServer.handle serves one,
 * both typed by the same declaration.
 */
import type { NodeId } from '../core/types.ts';
import { BodyReader, BodyWriter } from './wire.ts';

export const PEER_PREFIX = '/_jincache/';
export const SECRET_HEADER = 'x-jincache-secret';
export const FROM_HEADER = 'x-jincache-from';
export const TABLE_HEADER = 'x-jincache-table';
export const DEADLINE_HEADER = 'x-jincache-deadline';

/** What travels with every message besides its body. */
export interface MessageMeta {
  /** The sending node (undefined: a tool, not a node). */
  from: NodeId | undefined;
  /** Version of the partition table the sender routed by (undefined: not stamped). */
  table: number | undefined;
  /** Absolute deadline, ms since epoch. */
  deadline: number;
}

export interface PeerMessage<Req, Res> {
  readonly name: string;
  encodeRequest(req: Req): Buffer;
  decodeRequest(body: Buffer): Req;
  encodeResponse(res: Res): Buffer;
  decodeResponse(body: Buffer): Res;
}

/** A message whose bodies are written and read field by field (wire.ts). */
export function binaryMessage<Req, Res>(spec: {
  name: string;
  request: { write(w: BodyWriter, req: Req): void; read(r: BodyReader): Req };
  response: { write(w: BodyWriter, res: Res): void; read(r: BodyReader): Res };
}): PeerMessage<Req, Res> {
  const encode = <T>(part: { write(w: BodyWriter, v: T): void }, v: T): Buffer => {
    const w = new BodyWriter();
    part.write(w, v);
    return w.done();
  };
  const decode = <T>(part: { read(r: BodyReader): T }, body: Buffer): T => {
    const r = new BodyReader(body);
    const v = part.read(r);
    r.end();
    return v;
  };
  return {
    name: spec.name,
    encodeRequest: (req) => encode(spec.request, req),
    decodeRequest: (body) => decode(spec.request, body),
    encodeResponse: (res) => encode(spec.response, res),
    decodeResponse: (body) => decode(spec.response, body),
  };
}

/**
 * A message with JSON bodies (control traffic, where a human may read it: migration progress,
 * load reports). `check` validates what arrives and throws CodecError when it is malformed.
 */
export function jsonMessage<Req, Res>(spec: {
  name: string;
  request: (raw: unknown) => Req;
  response: (raw: unknown) => Res;
}): PeerMessage<Req, Res> {
  const parse = (body: Buffer): unknown => (body.length === 0 ? null : JSON.parse(body.toString('utf8')));
  return {
    name: spec.name,
    encodeRequest: (req) => Buffer.from(JSON.stringify(req ?? null)),
    decodeRequest: (body) => spec.request(parse(body)),
    encodeResponse: (res) => Buffer.from(JSON.stringify(res ?? null)),
    decodeResponse: (body) => spec.response(parse(body)),
  };
}

/** The path a message is sent to. */
export function pathOf(message: { name: string }): string {
  return `${PEER_PREFIX}${message.name}`;
}

/** The table version a request was routed by (undefined: not stamped, e.g. a tool). */
export function tableStampOf(raw: string | string[] | undefined): number | undefined {
  const v = Number(Array.isArray(raw) ? raw[0] : raw);
  return raw !== undefined && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}
