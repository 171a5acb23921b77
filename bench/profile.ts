// Where the time goes on the RESP data plane: CPU and allocation profiles of a server under
// redis-benchmark, each test (SET, then GET) profiled on its own, printed as the functions with
// the most self time (or the most bytes allocated). Not part of `npm run bench`: a tool for
// deciding what to change, whose output BENCHMARKS.md "Where the time goes" quotes.
//
//   node bench/profile.ts                         # node, P1 and P16, CPU
//   node bench/profile.ts --target cluster        # 3 static nodes, load sent to n1 (2/3 forwarded)
//   node bench/profile.ts --target bare           # the minimal Node RESP server (bench/lib/bare-resp-server.ts)
//   node bench/profile.ts --kind heap             # bytes allocated per function, garbage included
//   node bench/profile.ts --pipeline 16 -n 400000 --keys 10000 --top 30 --out /tmp/prof
//   node bench/profile.ts --keys 0                # one key (no -r), as the headline redis.{get,set}.p*.rps figures
//
// The profiled process loads bench/lib/profiler-preload.ts and is profiled only while a test
// runs (SIGUSR2 starts and stops it), after a warm-up run of the same test. The profiles are
// written as .cpuprofile / .heapprofile files (open them in Chrome DevTools) under --out.

import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_DIR } from './lib/results.ts';
import { freePorts, startProcess, stopAll, waitForHttp, waitForPort, type Proc } from './lib/procs.ts';
import { JINCACHE_BIN, peersArg, type NodeSpec } from './lib/jincache.ts';
import { redisBenchmark } from './scenarios/redis.ts';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'node' },
    kind: { type: 'string', default: 'cpu' },
    pipeline: { type: 'string', default: '1,16' },
    n: { type: 'string' },
    keys: { type: 'string', default: '10000' },
    top: { type: 'string', default: '25' },
    out: { type: 'string', default: '/tmp/jincache-profiles' },
  },
});
const target = values.target;
if (target !== 'node' && target !== 'cluster' && target !== 'bare') throw new Error(`--target must be node, cluster or bare. Got: ${target}`);
const kind = values.kind === 'heap' ? 'heap' : 'cpu';
const pipelines = values.pipeline.split(',').map(Number);
const keys = Number(values.keys);
const top = Number(values.top);
mkdirSync(values.out, { recursive: true });
const PRELOAD = join(REPO_DIR, 'bench', 'lib', 'profiler-preload.ts');

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

/** `name file:line` with the repository prefix dropped. */
function frameName(f: CallFrame): string {
  const url = f.url.replace(`file://${REPO_DIR}/`, '').replace(/^node:/, '');
  return `${f.functionName || '(anonymous)'}${url ? ` ${url}:${f.lineNumber + 1}` : ''}`;
}

/**
 * Self time per function of a .cpuprofile, as shares of the busy time (every sample but
 * `(idle)`: the server waiting for redis-benchmark, which shares the cores), largest first, and
 * the busy time's split between jincache's own code (src/), Node's, GC and the rest.
 */
export function cpuSelf(profile: { nodes: { id: number; callFrame: CallFrame }[]; samples: number[]; timeDeltas: number[] }): { rows: { name: string; share: number }[]; split: Record<string, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  const split: Record<string, number> = { 'src/': 0, 'bench/': 0, node: 0, gc: 0, other: 0 };
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const f = byId.get(id);
    // (idle): waiting for the load; inspector: the profiler's own stop, sampled as it builds the profile
    if (f === undefined || f.functionName === '(idle)' || f.url === 'node:inspector' || f.url === 'inspector') return;
    busy += dt;
    const name = frameName(f);
    self.set(name, (self.get(name) ?? 0) + dt);
    const where = f.functionName === '(garbage collector)' ? 'gc' : f.url.includes('/src/') ? 'src/' : f.url.includes('/bench/') ? 'bench/' : f.url.startsWith('node:') ? 'node' : 'other';
    split[where] = split[where]! + dt;
  });
  for (const k of Object.keys(split)) split[k] = split[k]! / busy;
  return { rows: [...self].map(([name, t]) => ({ name, share: t / busy })).sort((a, b) => b.share - a.share), split };
}

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/** Bytes allocated per function of a .heapprofile (sampled), largest first. */
export function heapSelf(profile: { head: HeapNode }): { name: string; bytes: number; share: number }[] {
  const self = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode): void => {
    const name = frameName(n.callFrame);
    self.set(name, (self.get(name) ?? 0) + n.selfSize);
    total += n.selfSize;
    for (const c of n.children) walk(c);
  };
  walk(profile.head);
  return [...self].map(([name, bytes]) => ({ name, bytes, share: bytes / total })).sort((a, b) => b.bytes - a.bytes);
}

async function startTarget(): Promise<{ procs: Proc[]; profiled: Proc; respPort: number }> {
  const env = (out: string) => ({ ...process.env, PROFILE_OUT: out, PROFILE_KIND: kind });
  if (target === 'bare') {
    const [port] = (await freePorts(1)) as [number];
    const proc = startProcess({ name: 'bare-resp', command: process.execPath, args: ['--import', PRELOAD, join(REPO_DIR, 'bench', 'lib', 'bare-resp-server.ts'), '--port', String(port)], cwd: REPO_DIR, env: env(profileFile()) });
    await waitForPort(port, { proc });
    return { procs: [proc], profiled: proc, respPort: port };
  }
  const count = target === 'cluster' ? 3 : 1;
  const ports = await freePorts(2 * count);
  const specs: (NodeSpec & { respPort: number })[] = Array.from({ length: count }, (_, i) => ({ id: `n${i + 1}`, port: ports[2 * i]!, respPort: ports[2 * i + 1]! }));
  const procs = specs.map((s, i) => {
    const args = [...(i === 0 ? ['--import', PRELOAD] : []), JINCACHE_BIN, 'serve', '--id', s.id, '--host', '127.0.0.1', '--port', String(s.port), '--resp-port', String(s.respPort), '--log-level', 'warn'];
    if (count > 1) args.push('--peers', peersArg(specs));
    return startProcess({ name: `jincache-${s.id}`, command: process.execPath, args, cwd: REPO_DIR, env: env(profileFile()) });
  });
  for (const [i, s] of specs.entries()) {
    await waitForHttp(`http://127.0.0.1:${s.port}/health`, { proc: procs[i]! });
    await waitForPort(s.respPort, { proc: procs[i]! });
  }
  return { procs, profiled: procs[0]!, respPort: specs[0]!.respPort };
}

let current = '';
function profileFile(): string {
  return current;
}

async function profileTest(profiled: Proc, port: number, test: string, pipeline: number, n: number): Promise<void> {
  const extra = keys > 0 ? ['-r', String(keys)] : [];
  // warm-up: the same test unprofiled, so the profile shows the steady state, not the JIT warming
  await redisBenchmarkOne(port, Math.max(10_000, Math.floor(n / 4)), pipeline, test, extra);
  process.kill(profiled.pid, 'SIGUSR2');
  await sleep(200);
  const rps = await redisBenchmarkOne(port, n, pipeline, test, extra);
  process.kill(profiled.pid, 'SIGUSR2');
  for (let i = 0; i < 100 && !existsSync(current); i++) await sleep(100);
  const profile = JSON.parse(readFileSync(current, 'utf8'));
  console.log(`\n## ${target} ${test.toUpperCase()} -P ${pipeline} ${keys > 0 ? `-r ${keys}` : 'one key'}: ${Math.round(rps)} req/s while profiled (${current})`);
  if (kind === 'cpu') {
    const { rows, split } = cpuSelf(profile);
    console.log(`busy time: ${Object.entries(split).map(([k, v]) => `${k} ${(100 * v).toFixed(0)}%`).join(', ')} ('other': native code such as writev, program)`);
    for (const r of rows.slice(0, top)) console.log(`${(100 * r.share).toFixed(1).padStart(5)}%  ${r.name}`);
  } else {
    const rows = heapSelf(profile);
    const total = rows.reduce((a, r) => a + r.bytes, 0);
    console.log(`sampled allocation: ${(total / 1e6).toFixed(1)} MB over ${n} requests: ${(total / n).toFixed(0)} B/request`);
    for (const r of rows.slice(0, top)) console.log(`${(100 * r.share).toFixed(1).padStart(5)}%  ${(r.bytes / n).toFixed(1).padStart(7)} B/req  ${r.name}`);
  }
}

async function redisBenchmarkOne(port: number, n: number, pipeline: number, test: string, extra: string[]): Promise<number> {
  const lines = await redisBenchmark(port, n, pipeline, extra, [test]);
  return lines.get(test.toUpperCase())!.rps;
}

async function main(): Promise<void> {
  for (const pipeline of pipelines) {
    const n = Number(values.n ?? (pipeline === 1 ? 150_000 : 600_000));
    for (const test of ['set', 'get']) {
      current = join(values.out, `${target}-${test}-p${pipeline}-${Date.now()}.${kind === 'cpu' ? 'cpuprofile' : 'heapprofile'}`);
      const { procs, profiled, respPort } = await startTarget();
      try {
        // GET needs the keys: fill them first
        if (test === 'get') await redisBenchmarkOne(respPort, Math.max(keys * 3, 1000), 16, 'set', keys > 0 ? ['-r', String(keys)] : []);
        await profileTest(profiled, respPort, test, pipeline, n);
      } finally {
        await Promise.all(procs.map((p) => p.stop()));
      }
    }
  }
}

main().then(
  async () => {
    await stopAll();
    process.exit(0);
  },
  async (e: unknown) => {
    console.error(e);
    await stopAll();
    process.exit(1);
  },
);
