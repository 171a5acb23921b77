// Memory of an idle node with no data (issue 18): what ten idle nodes on one host cost before
// they hold anything. Each side is started fresh, left alone until its resident set settles, and
// read from /proc/PID/status (VmRSS); 3 rounds (quick 1), the median quoted.
//  - ours, `idle.rss.bytes`: a node as an installed package runs it, the JavaScript `npm run
//    build` writes to dist/ (`node dist/cli/main.js serve`, memory only, static membership, the
//    RESP listener on). Target <= 80 MiB;
//  - ours from the checkout, `idle.rss.source_bytes` (reported): bin/jincache.js running src/
//    through Node's type stripping, which keeps its compiler and every file's TypeScript text;
//  - peer: a bare process of the same Node binary that only waits (`setInterval`).

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Figure } from '../lib/figure.ts';
import { figure, median } from '../lib/figure.ts';
import { JINCACHE_BIN, requireJincache } from '../lib/jincache.ts';
import { freePorts, startProcess, waitForHttp, waitForPort, type Proc } from '../lib/procs.ts';
import { REPO_DIR } from '../lib/results.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';
import { settledRss } from './memory.ts';

const MIB = 2 ** 20;
const TARGET_MIB = 80;
/** An idle node's timers (heartbeats, load reports, sweeps) run a few times; then it is read. */
const IDLE_MS = 4000;

async function idleRss(proc: Proc, ready: () => Promise<void>, signal?: AbortSignal): Promise<number> {
  try {
    await ready();
    await new Promise((r) => setTimeout(r, IDLE_MS));
    return await settledRss(proc.pid, { maxMs: 6000, ...(signal !== undefined ? { signal } : {}) });
  } finally {
    await proc.stop();
  }
}

async function node(entry: string[], name: string, signal?: AbortSignal): Promise<number> {
  const [port, respPort] = (await freePorts(2)) as [number, number];
  const args = [...entry, 'serve', '--id', 'n1', '--host', '127.0.0.1', '--port', String(port), '--resp-port', String(respPort), '--log-level', 'warn'];
  const proc = startProcess({ name, command: process.execPath, args, cwd: REPO_DIR });
  return idleRss(
    proc,
    async () => {
      await waitForHttp(`http://127.0.0.1:${port}/health`, { proc, timeoutMs: 20_000 });
      await waitForPort(respPort, { proc, timeoutMs: 20_000 });
    },
    signal,
  );
}

async function bare(signal?: AbortSignal): Promise<number> {
  const proc = startProcess({ name: 'bare-node', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'], cwd: REPO_DIR });
  return idleRss(proc, async () => {}, signal);
}

export async function prepare(): Promise<void> {
  requireJincache();
  // what an installed package runs (prepack builds the same)
  const built = spawnSync(process.execPath, [join(REPO_DIR, 'scripts', 'build.js')], { cwd: REPO_DIR, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`npm run build failed:\n${built.stdout}${built.stderr}`);
}

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  const log = opts.log ?? (() => {});
  const rounds = opts.quick ? 1 : 3;
  const dist = join(REPO_DIR, 'dist', 'cli', 'main.js');
  const ours: number[] = [];
  const source: number[] = [];
  const peer: number[] = [];
  for (let i = 0; i < rounds; i++) {
    opts.signal?.throwIfAborted();
    ours.push(await node([dist], 'jincache-dist', opts.signal));
    source.push(await node([JINCACHE_BIN], 'jincache-src', opts.signal));
    peer.push(await bare(opts.signal));
    const mib = (b: number) => `${(b / MIB).toFixed(1)} MiB`;
    log(`  round ${i + 1}/${rounds}: node (dist) ${mib(ours[i]!)}, node (src) ${mib(source[i]!)}, bare Node ${mib(peer[i]!)}`);
  }
  const bareMib = median(peer) / MIB;
  return [
    figure({ name: 'idle.rss.bytes', unit: 'MiB', ours: median(ours) / MIB, peer: bareMib, target: { kind: 'value<=', value: TARGET_MIB } }),
    figure({ name: 'idle.rss.source_bytes', unit: 'MiB', ours: median(source) / MIB, peer: bareMib }),
  ];
}
