/**
 * A fault-injecting TCP proxy on loopback, to put between nodes (etcd3's tests do the same).
 * Start a node with `server.advertise` pointing at the proxy, so peers reach it through the
 * proxy while clients still use its real port.
 *
 *   const proxy = await startFaultProxy({ target: 8001 });   // listens on a free port
 *   proxy.set({ mode: 'drop' });                              // blackhole, existing sockets too
 *   proxy.set({ mode: 'delay', ms: 800 });                    // every chunk waits 800 ms
 *   proxy.set({ mode: 'delay', ms: 100, jitterMs: 300 });     // 100-400 ms per chunk: requests on
 *                                                             // different sockets overtake each other
 *   proxy.set({ mode: 'reset' });                             // RST every socket, new ones too
 *   proxy.set({ mode: 'pass' });
 *   await proxy.stop();
 */
import net from 'node:net';

export type FaultMode = { mode: 'pass' } | { mode: 'drop' } | { mode: 'delay'; ms: number; jitterMs?: number } | { mode: 'reset' };

export interface FaultProxy {
  readonly port: number;
  /** Base URL of the proxy, for `server.advertise`. */
  readonly url: string;
  set(mode: FaultMode): void;
  mode(): FaultMode;
  /** Open client connections. */
  connections(): number;
  stop(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

export async function startFaultProxy(opts: { target: number; host?: string; port?: number }): Promise<FaultProxy> {
  const host = opts.host ?? '127.0.0.1';
  let current: FaultMode = { mode: 'pass' };
  const pairs = new Set<Pair>();

  /** Forward `from` to `to` under the mode in force when each chunk arrives. */
  const pipe = (from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      const m = current;
      if (m.mode === 'drop') return; // accepted, never delivered: a blackhole
      if (m.mode === 'reset') return void from.resetAndDestroy();
      if (m.mode === 'delay') {
        // keep order within the socket (it is a stream): pause reading while the chunk waits;
        // with jitter, chunks of different sockets wait differently and so reorder among sockets
        from.pause();
        setTimeout(() => {
          if (!to.destroyed) to.write(chunk);
          from.resume();
        }, m.ms + Math.random() * (m.jitterMs ?? 0)).unref();
        return;
      }
      if (!to.destroyed) to.write(chunk);
    });
    from.on('end', () => to.end());
    from.on('error', () => to.destroy());
    from.on('close', () => to.destroy());
  };

  const server = net.createServer((client) => {
    if (current.mode === 'reset') return void client.resetAndDestroy();
    const upstream = net.connect({ host, port: opts.target });
    const pair = { client, upstream };
    pairs.add(pair);
    client.on('close', () => pairs.delete(pair));
    upstream.on('error', () => client.destroy());
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: opts.port ?? 0 }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    url: `http://${host}:${port}`,
    set(mode) {
      current = mode;
      if (mode.mode === 'reset') for (const p of pairs) p.client.resetAndDestroy();
    },
    mode: () => current,
    connections: () => pairs.size,
    stop() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
