/**
 * Bounded HTTP load for migration tests: keep-alive requests with a fixed number in flight, and a
 * counting origin for loader groups (so a test can prove nothing was loaded again).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request over the shared keep-alive agent; rejects on network errors or after timeoutMs. */
export function request(method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, body?: string | Buffer, timeoutMs = 10_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const r = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method, agent, headers: body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    r.setTimeout(timeoutMs, () => r.destroy(new Error(`${method} ${url} timed out`)));
    r.on('error', reject);
    r.end(body);
  });
}

/** Run fn(0..count-1) with at most `concurrency` in flight. */
export async function pool(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

/** An origin for a loader group: answers `origin:{key}` and counts every load. */
export async function startOrigin(): Promise<{ url: string; loads: () => number; stop: () => Promise<void> }> {
  let loads = 0;
  const server = http.createServer((req, res) => {
    loads++;
    res.end(`origin:${decodeURIComponent((req.url ?? '/').slice(1))}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/{key}`,
    loads: () => loads,
    stop: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** A deterministic 100-byte value for key i at generation g. */
export function valueOf(i: number, g = 0): string {
  const head = `v${g}:${i}:`;
  return head + 'x'.repeat(100 - head.length);
}
