/**
 * INCRBY over the Redis protocol, for the shared-key workload (the HTTP API has no INCR). One
 * command per connection at a time, so a reply always belongs to the command on its socket;
 * connections are kept per node and reused. A connection that times out or breaks mid-command is
 * destroyed (a late reply must never answer the next command), and an idle one the server closed
 * (a killed node) is dropped before it is used.
 *
 * Outcomes, as workload.ts classifies HTTP mutations:
 *   :N                                    ok, the new value
 *   -ERR value is not an integer ...      ok, "error" (no effect; the counter model expects it)
 *   any other error reply (TRYAGAIN: the coordinator stopped answering, or refused), a timeout,
 *   a reset once the command was written  indeterminate: it may have been applied
 *   a connection refused (nothing sent)   fail
 */
import net from 'node:net';
import type { OpTarget, Reply } from './workload.ts';

const NOT_INTEGER = '-ERR value is not an integer or out of range';

export interface RespIncr {
  incr(target: OpTarget, key: string, delta: number, timeoutMs: number): Promise<Reply<number | 'error'>>;
  /** Close every idle connection (one in use is closed when its command completes). */
  close(): void;
}

/** The command as RESP bytes: an array of bulk strings. */
export function incrCommand(key: string, delta: number): Buffer {
  const args = ['INCRBY', key, String(delta)];
  return Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
}

/** The reply to one INCRBY, from the first line the server sent (undefined: no whole line yet). */
export function incrReply(received: string): Reply<number | 'error'> | undefined {
  const end = received.indexOf('\r\n');
  if (end < 0) return undefined;
  const line = received.slice(0, end);
  if (line.startsWith(':') && /^:-?\d+$/.test(line)) return { outcome: 'ok', result: Number(line.slice(1)) };
  if (line.startsWith(NOT_INTEGER)) return { outcome: 'ok', result: 'error' };
  // an error reply after the command reached a node: its coordinator may have applied it
  return { outcome: 'indeterminate', error: line.startsWith('-') ? line.slice(1, 60) : `unexpected reply ${JSON.stringify(line.slice(0, 20))}` };
}

/** INCRBY through `target.respPort` on `host` (default loopback). */
export function respIncr(opts: { host?: string } = {}): RespIncr {
  const host = opts.host ?? '127.0.0.1';
  /** Idle connections by port, each with the way to stop watching it while idle. */
  const idle = new Map<number, Map<net.Socket, () => void>>();
  let closed = false;

  const park = (port: number, s: net.Socket): void => {
    if (closed || s.destroyed) return void s.destroy();
    const sockets = idle.get(port) ?? idle.set(port, new Map()).get(port)!;
    // the server closed it while idle (a killed or restarted node): never reuse it
    const drop = (): void => {
      sockets.delete(s);
      s.destroy();
    };
    s.once('end', drop).once('close', drop).once('error', drop);
    sockets.set(s, () => s.off('end', drop).off('close', drop).off('error', drop));
  };
  const take = (port: number): net.Socket | undefined => {
    const sockets = idle.get(port);
    for (const [s, unwatch] of sockets ?? []) {
      sockets!.delete(s);
      unwatch();
      if (!s.destroyed && s.readyState === 'open') return s;
      s.destroy();
    }
    return undefined;
  };

  return {
    incr(target, key, delta, timeoutMs) {
      const port = target.respPort;
      if (port === undefined) return Promise.resolve({ outcome: 'fail', error: `${target.id} has no RESP port` });
      const reused = take(port);
      const s = reused ?? net.connect({ port, host });
      return new Promise((resolve) => {
        let sent = false;
        let received = '';
        let done = false;
        const finish = (reply: Reply<number | 'error'>, keep: boolean): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          s.off('connect', send).off('data', onData).off('error', onError).off('close', onClose);
          if (keep) park(port, s);
          else s.destroy();
          resolve(reply);
        };
        const send = (): void => {
          sent = true;
          s.write(incrCommand(key, delta));
        };
        const onData = (chunk: Buffer): void => {
          received += chunk.toString('latin1');
          const reply = incrReply(received);
          // keep the socket only when nothing else arrived after the one reply
          if (reply !== undefined) finish(reply, received.length === received.indexOf('\r\n') + 2);
        };
        const onError = (e: NodeJS.ErrnoException): void => finish(sent ? { outcome: 'indeterminate', error: e.code ?? e.name } : { outcome: 'fail', error: e.code ?? e.name }, false);
        const onClose = (): void => finish(sent ? { outcome: 'indeterminate', error: 'closed' } : { outcome: 'fail', error: 'closed before sending' }, false);
        const timer = setTimeout(() => finish(sent ? { outcome: 'indeterminate', error: 'TimeoutError' } : { outcome: 'fail', error: 'connect timeout' }, false), timeoutMs);
        s.on('data', onData).on('error', onError).on('close', onClose);
        if (reused !== undefined) send();
        else s.once('connect', send);
      });
    },
    close() {
      closed = true;
      for (const sockets of idle.values()) for (const s of sockets.keys()) s.destroy();
      idle.clear();
    },
  };
}
