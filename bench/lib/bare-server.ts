// The HTTP peer: the least a node:http server can do to serve the same bytes as jincache's
// client API — a Map behind GET/PUT /api/{group}/{key}. jincache's HTTP figures are ratios
// against this, so it must do the same job (parse the path, look the value up, send 100 bytes
// or accept a 100-byte body) and nothing else.
//
// Run as its own process so it gets its own event loop like a jincache node:
//   node bench/lib/bare-server.ts --port 8100
// GET /health answers 200 once listening.

import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write(`bare-server: --port must be an integer in 1..65535. Got: ${values.port}\n`);
  process.exit(2);
}

const store = new Map<string, Buffer>();
const PREFIX = '/api/';

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  if (!url.startsWith(PREFIX)) {
    res.writeHead(404).end();
    return;
  }
  // Same shape of work as the real API: split group and key, strip a query string.
  const q = url.indexOf('?');
  const path = q === -1 ? url.slice(PREFIX.length) : url.slice(PREFIX.length, q);
  const slash = path.indexOf('/');
  if (slash <= 0 || slash === path.length - 1) {
    res.writeHead(400).end();
    return;
  }
  const id = path; // group/key
  if (req.method === 'GET') {
    const v = store.get(id);
    if (v === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': v.length }).end(v);
    return;
  }
  if (req.method === 'PUT') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      store.set(id, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      res.writeHead(204).end();
    });
    return;
  }
  res.writeHead(405).end();
});

// Match Node's default keep-alive behaviour explicitly so a jincache default change is visible.
server.keepAliveTimeout = 5000;
server.listen(port, values.host, () => {
  process.stdout.write(`bare-server listening on ${values.host}:${port}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
