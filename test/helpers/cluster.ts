/**
 * Real jincache node processes on 127.0.0.1 for integration tests: `bin/jincache.js serve` per
 * node, each on free ports, logs kept per node (printed when a test fails to start them). Every
 * process is tracked by PID and killed when the test process exits, so no test leaks a node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, createWriteStream, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { freePort } from './ports.ts';

export const BIN = resolve(import.meta.dirname, '../../bin/jincache.js');

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export interface TestNode {
  readonly id: string;
  readonly port: number;
  /** Base URL of the node's client API (and peer endpoints: same listener). */
  readonly url: string;
  readonly pid: number;
  /** Port of its Redis-protocol listener (with ClusterOptions.resp). */
  readonly respPort?: number;
  readonly logFile: string;
  /** Send a signal (default SIGTERM) and wait for exit (SIGKILL after 10 s). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Pause / resume the process. */
  pause(): void;
  resume(): void;
  exited(): boolean;
  log(): string;
}

export interface ClusterOptions {
  nodes: number;
  /** Extra config (SPEC §5 shape) written to a YAML file every node loads. */
  config?: Record<string, unknown>;
  /** Extra CLI args for every node. */
  args?: string[];
  /** Use --peers static discovery (default true). */
  staticPeers?: boolean;
  /** Zone of each node (node.zone): in the --peers list (`id=URL?zone=z`) with static peers, else as --zone. */
  zones?: readonly string[];
  /** Extra CLI args for node i (ports of its own, say). Default none. */
  nodeArgs?: (i: number, id: string) => string[] | Promise<string[]>;
  /** Resolves once node i is ready (default: GET /health on its port answers 200). */
  ready?: (node: TestNode, i: number) => Promise<boolean>;
  /** Environment variables for every node. */
  env?: Record<string, string>;
  /** Give every node (those added later too) a Redis-protocol listener on a free port. Default false. */
  resp?: boolean;
}

export interface TestCluster {
  readonly nodes: TestNode[];
  readonly dir: string;
  readonly configFile: string;
  /** Start one more node with the same config (static peers are not updated). */
  addNode(id: string, extraArgs?: string[]): Promise<TestNode>;
  stop(): Promise<void>;
}

export async function startCluster(opts: ClusterOptions): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'jincache-it-'));
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, stringify({ log: { level: 'info' }, ...(opts.config ?? {}) }));
  const ports = await Promise.all(Array.from({ length: opts.nodes }, () => freePort()));
  const ids = ports.map((_, i) => `node-${i + 1}`);
  const zoneQuery = (i: number): string => (opts.zones?.[i] !== undefined ? `?zone=${opts.zones[i]}` : '');
  const peers = ids.map((id, i) => `${id}=http://127.0.0.1:${ports[i]}${zoneQuery(i)}`).join(',');
  const zoneArgs = (i: number): string[] => (opts.zones?.[i] !== undefined && opts.staticPeers === false ? ['--zone', opts.zones[i]!] : []);
  const nodes: TestNode[] = [];

  const spawnNode = async (id: string, port: number, args: string[], i = -1): Promise<TestNode> => {
    const extra = i >= 0 && opts.nodeArgs !== undefined ? await opts.nodeArgs(i, id) : [];
    const respPort = opts.resp === true ? await freePort() : undefined;
    const resp = respPort !== undefined ? ['--resp-port', String(respPort)] : [];
    const node = launch(id, port, dir, ['--config', configFile, ...args, ...extra, ...(opts.args ?? []), ...resp], opts.env, respPort);
    await waitReady(node, 20_000, opts.ready === undefined ? undefined : () => opts.ready!(node, i));
    return node;
  };

  try {
    const started = await Promise.all(
      ids.map((id, i) => spawnNode(id, ports[i]!, [...(opts.staticPeers === false ? [] : ['--peers', peers]), ...zoneArgs(i)], i)),
    );
    nodes.push(...started);
  } catch (e) {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    for (const c of live) c.kill('SIGKILL');
    throw e;
  }

  return {
    nodes,
    dir,
    configFile,
    async addNode(id, extraArgs = []) {
      const node = await spawnNode(id, await freePort(), extraArgs);
      nodes.push(node);
      return node;
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
      if (process.env.JINCACHE_KEEP_LOGS !== '1') rmSync(dir, { recursive: true, force: true });
      else console.log(`node logs kept in ${dir}`);
    },
  };
}

function launch(id: string, port: number, dir: string, args: string[], env?: Record<string, string>, respPort?: number): TestNode {
  const logFile = join(dir, `${id}.log`);
  const out = createWriteStream(logFile);
  const child = spawn(process.execPath, [BIN, 'serve', '--id', id, '--port', String(port), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(env !== undefined ? { env: { ...process.env, ...env } } : {}),
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  live.add(child);
  const exit = new Promise<void>((r) => child.once('exit', () => {
    live.delete(child);
    r();
  }));
  return {
    id,
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    ...(respPort !== undefined ? { respPort } : {}),
    logFile,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (signal !== 'SIGKILL') child.kill('SIGCONT');
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    exited: () => child.exitCode !== null || child.signalCode !== null,
    log: () => readFileSync(logFile, 'utf8'),
  };
}

async function waitReady(node: TestNode, timeoutMs = 20_000, ready?: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (node.exited()) throw new Error(`${node.id} exited during start-up:\n${node.log()}`);
    try {
      if (ready !== undefined) {
        if (await ready()) return;
      } else {
        const res = await fetch(`${node.url}/health`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return;
      }
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`${node.id} not healthy after ${timeoutMs} ms:\n${node.log()}`);
}

/** Run the CLI to completion, capturing output. */
export function runCli(args: string[], timeoutMs = 20_000, env?: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(env !== undefined ? { env: { ...process.env, ...env } } : {}) });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c) => (stdout += c));
    child.stderr!.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolveRun({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}
