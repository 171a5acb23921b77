// Starting jincache nodes for the bench: `bin/jincache.js serve` as child processes on the
// pinned Node (process.execPath), with the client API on the node's own port.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_DIR } from './results.ts';
import { freePorts, startProcess, stopAll, waitForHttp, waitForPort, type Proc } from './procs.ts';
import { ScenarioSkipped } from './scenario.ts';

export const JINCACHE_BIN = join(REPO_DIR, 'bin', 'jincache.js');

export interface NodeSpec {
  id: string;
  port: number;
  /** Redis-protocol listener port; default none. */
  respPort?: number;
}

export interface JincacheNode {
  spec: NodeSpec;
  proc: Proc;
  /** e.g. http://127.0.0.1:8001 */
  url: string;
}

export interface StartNodeOptions {
  /** The node's client API speaks HTTPS: wait for its port instead of GET /health. */
  https?: boolean;
  /** Static membership (`--peers id=url,...`), the node itself included. Default: none (alone). */
  peers?: readonly NodeSpec[];
  /** Default `warn`: request logging would cost the node CPU the bare peer does not spend. */
  logLevel?: string;
  /** Extra CLI arguments. Default none. */
  extraArgs?: readonly string[];
  /** Default 20000. */
  readyTimeoutMs?: number;
}

export function nodeUrl(spec: NodeSpec): string {
  return `http://127.0.0.1:${spec.port}`;
}

export function peersArg(nodes: readonly NodeSpec[]): string {
  return nodes.map((n) => `${n.id}=${nodeUrl(n)}`).join(',');
}

/** Throws ScenarioSkipped when the jincache CLI is not in this checkout yet. */
export function requireJincache(): void {
  if (!existsSync(JINCACHE_BIN)) throw new ScenarioSkipped(`${JINCACHE_BIN} does not exist yet`);
}

/** Starts one node and waits for GET /health (and the RESP port when asked) to answer. */
export async function startNode(spec: NodeSpec, opts: StartNodeOptions = {}): Promise<JincacheNode> {
  requireJincache();
  const args = [JINCACHE_BIN, 'serve', '--id', spec.id, '--host', '127.0.0.1', '--port', String(spec.port), '--log-level', opts.logLevel ?? 'warn'];
  if (opts.peers && opts.peers.length > 0) args.push('--peers', peersArg(opts.peers));
  if (spec.respPort !== undefined) args.push('--resp-port', String(spec.respPort));
  args.push(...(opts.extraArgs ?? []));
  const proc = startProcess({ name: `jincache-${spec.id}`, command: process.execPath, args, cwd: REPO_DIR });
  const url = nodeUrl(spec);
  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  // a node whose client API speaks HTTPS (tls in its config): its port accepting is enough
  if (opts.https === true) await waitForPort(spec.port, { proc, timeoutMs });
  else await waitForHttp(`${url}/health`, { proc, timeoutMs });
  if (spec.respPort !== undefined) await waitForPort(spec.respPort, { proc, timeoutMs });
  return { spec, proc, url };
}

/** Starts an n-node static cluster on free ports (ids n1..nN) and waits for every node, caught up. */
export async function startCluster(n: number, opts: Omit<StartNodeOptions, 'peers'> = {}): Promise<JincacheNode[]> {
  const ports = await freePorts(n);
  const specs = ports.map((port, i) => ({ id: `n${i + 1}`, port }));
  try {
    const nodes = await Promise.all(specs.map((s) => startNode(s, { ...opts, peers: specs })));
    await caughtUp(nodes);
    return nodes;
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/**
 * Waits until no node is still catching up (GET /cluster `catchup.pending` 0 everywhere). The
 * nodes of a static cluster all start as holders of the table, so each pulls every partition it
 * holds from the other holders first (cluster/catchup.ts): a few seconds of one peer request per
 * partition, during which reads ask every holder and writes go around the node. Measured then, a
 * figure is the start-up's, not the steady state's.
 */
export async function caughtUp(nodes: readonly JincacheNode[], timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const pending = await Promise.all(
      nodes.map(async (n) => {
        const res = await fetch(`${n.url}/cluster`, { signal: AbortSignal.timeout(5000) });
        return ((await res.json()) as { catchup?: { pending?: number } }).catchup?.pending ?? 0;
      }),
    );
    if (pending.every((p) => p === 0)) return;
    if (Date.now() > end) throw new Error(`nodes still catching up after ${timeoutMs} ms: ${pending.join(', ')} partitions pending`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts the bare node:http peer (bench/lib/bare-server.ts) on a free port. */
export async function startBare(name = 'bare'): Promise<{ proc: Proc; url: string }> {
  const [port] = await freePorts(1);
  const proc = startProcess({
    name,
    command: process.execPath,
    args: [join(REPO_DIR, 'bench', 'lib', 'bare-server.ts'), '--port', String(port)],
    cwd: REPO_DIR,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/health`, { proc });
  return { proc, url };
}

/** PUTs `value` at every path, a few at a time; throws on the first non-2xx. */
export async function seed(baseUrl: string, paths: readonly string[], value: Buffer, concurrency = 16): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < paths.length) {
      const path = paths[next++]!;
      const res = await fetch(baseUrl + path, { method: 'PUT', body: value, signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      if (res.status < 200 || res.status >= 300) throw new Error(`seeding PUT ${baseUrl}${path} answered ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, worker));
}
