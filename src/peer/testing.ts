/**
 * An in-process network for unit tests (groupcache's fakePeers): messages go through the same
 * encodings as over HTTP, straight to the receiving node's PeerServer, with no sockets. A node can
 * be taken down (its calls fail as a refused connection) or made to hang until a deadline.
 */
import { JincacheError } from '../core/errors.ts';
import type { CallMeta, PeerCaller } from './client.ts';
import type { PeerMessage } from './protocol.ts';
import type { PeerServer } from './server.ts';

export class FakeNetwork implements PeerCaller {
  private readonly servers = new Map<string, PeerServer>();
  /** Addresses whose calls are refused at once. */
  readonly down = new Set<string>();
  /** Addresses whose calls never answer (they time out at their deadline). */
  readonly hung = new Set<string>();
  /** Addresses that handle their calls but whose answers are lost (the caller times out at its deadline). */
  readonly lostReplies = new Set<string>();
  /** "from>to": calls from one node to another are refused (a one-way cut). */
  readonly cut = new Set<string>();
  /** Every call made, in order. */
  readonly calls: { message: string; address: string; meta: CallMeta }[] = [];

  /** Serve `address` with `server`. */
  attach(address: string, server: PeerServer): void {
    this.servers.set(address, server);
  }

  async call<Req, Res>(message: PeerMessage<Req, Res>, address: string, req: Req, meta: CallMeta): Promise<Res> {
    this.calls.push({ message: message.name, address, meta });
    const body = message.encodeRequest(req);
    if (this.down.has(address) || this.cut.has(`${meta.from}>${address}`)) throw new JincacheError('PEER_UNAVAILABLE', `${address}: connect ECONNREFUSED`, { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    if (this.hung.has(address)) {
      await new Promise((r) => setTimeout(r, Math.max(0, meta.deadline - Date.now())));
      throw new JincacheError('TIMEOUT', `${message.name} to ${address} timed out`);
    }
    const server = this.servers.get(address);
    if (server === undefined) throw new JincacheError('PEER_UNAVAILABLE', `${address}: nothing listens there`);
    // a turn of the event loop, as a real round trip takes
    await new Promise((r) => setImmediate(r));
    const out = await server.invoke(message.name, body, { from: meta.from, table: meta.table, deadline: meta.deadline });
    if (this.lostReplies.has(address)) {
      await new Promise((r) => setTimeout(r, Math.max(0, meta.deadline - Date.now())));
      throw new JincacheError('TIMEOUT', `${message.name} to ${address} timed out (its answer was lost)`);
    }
    return message.decodeResponse(out);
  }

  /** Calls of one message made so far. */
  count(message: { name: string }): number {
    return this.calls.filter((c) => c.message === message.name).length;
  }
}
