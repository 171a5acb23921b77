/**
 * Free loopback ports for tests. The OS picks an unused port (listen on 0), we close the socket
 * and hand the number out. A process-local set guarantees one test process never hands out the
 * same port twice, even when the OS would reuse a just-closed port (it often does), so two
 * servers started by one test cannot collide with each other.
 */
import { createServer } from 'node:net';

/** Ports already returned by this process. */
const handedOut = new Set<number>();

/** How many times we ask the OS before giving up; collisions with `handedOut` are rare. */
const MAX_ATTEMPTS = 50;

function askOs(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`freePort: unexpected server address ${String(address)}`));
        return;
      }
      const port = address.port;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** A loopback TCP port that was free a moment ago and was never returned before in this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const port = await askOs();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`freePort: no unused port after ${MAX_ATTEMPTS} attempts`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The first of `n` consecutive loopback ports that were all free a moment ago (for a command
 * that takes a base port and counts up, `jincache cluster --base-port`), none handed out before.
 */
export async function freePortRun(n: number): Promise<number> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const base = await askOs();
    if (base + n > 65535) continue;
    const ports = Array.from({ length: n }, (_, i) => base + i);
    if (ports.some((p) => handedOut.has(p))) continue;
    if ((await Promise.all(ports.slice(1).map(isFree))).every(Boolean)) {
      for (const p of ports) handedOut.add(p);
      return base;
    }
  }
  throw new Error(`freePortRun: no ${n} consecutive free ports after ${MAX_ATTEMPTS} attempts`);
}
