/**
 * Sending node-to-node messages from a test, as a node (or a node with a stale table) would:
 * the real PeerClient and the message declarations of src/peer/messages.ts.
 */
import { PeerClient, type CallMeta } from '../../src/peer/client.ts';
import type { PeerMessage } from '../../src/peer/protocol.ts';

const clients = new Map<string, PeerClient>();

/** Send `req` as `message` to the node at `url`; `meta` may stamp a table version and a sender; `secret`: the cluster secret. */
export function callPeer<Req, Res>(message: PeerMessage<Req, Res>, url: string, req: Req, meta: Partial<CallMeta> = {}, secret?: string): Promise<Res> {
  let client = clients.get(secret ?? '');
  if (client === undefined) clients.set(secret ?? '', (client = new PeerClient(secret !== undefined ? { secret } : {})));
  return client.call(message, url, req, { deadline: Date.now() + 3000, ...meta });
}
