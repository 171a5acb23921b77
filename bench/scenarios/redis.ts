// Redis protocol (issue 8 scenario 2): `redis-benchmark -t get,set -d 100 -c 50 -n N -P {1,16}`,
// on one key and on keys drawn from 10k and 1M (`-r`, issue 18),
// against jincache's RESP listener (`serve --resp-port`) and against a real redis-server started
// here on a free loopback port with persistence off. Targets: >= 1.0x at pipeline 1, >= 0.6x at
// pipeline 16. redis-benchmark is a separate C process, but it shares the 2 cores with both
// servers, so the sides still run alternately (A B A B) and the ratio is the median per round.
// On the one key a third side runs in each round: the minimal Node RESP server
// (bench/lib/bare-resp-server.ts), reported as `redis.bare_node.*` (it against redis-server: what
// any Node server reaches here) and `redis.*.vs_bare_node` (jincache against it).

import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_DIR } from '../lib/results.ts';
import type { Figure } from '../lib/figure.ts';
import { figure, median } from '../lib/figure.ts';
import { ensureRedis } from '../lib/deps.ts';
import { requireJincache, startNode } from '../lib/jincache.ts';
import { freePorts, startProcess, waitForPort, isProcError, type Proc } from '../lib/procs.ts';
import { ScenarioSkipped, type ScenarioOptions } from '../lib/scenario.ts';

interface Mode {
  /**
   * Seconds one test (GET or SET) should take on each side. redis-benchmark counts requests
   * (-n), not time, and the servers differ by an order of magnitude (redis-server did ~200k
   * req/s at P1 and ~2M at P16 here), so each side's -n is sized from its own short pilot run.
   * (One -n for both, sized for the slower side, gave redis-server runs of a tenth of a second
   * at P16: mostly connection set-up and scheduling noise.)
   */
  testSec: number;
  rounds: number;
}
const QUICK: Mode = { testSec: 0.7, rounds: 3 };
const FULL: Mode = { testSec: 2, rounds: 5 };
/** Pilot -n per pipeline depth, and the range -n is kept in. */
const PILOT_N = { 1: 20_000, 16: 100_000 } as const;
const N_MIN = 10_000;
const N_MAX = 5_000_000;
const TARGETS = { 1: 1.0, 16: 0.6 } as const;
/**
 * The keyspaces loaded (issue 18: a cache that fits in CPU caches flatters everyone): the one key
 * redis-benchmark uses without -r, then keys drawn at random from 10k and from 1M (`-r`). Each
 * test's SET runs first and fills the keys its GET then reads; with 1M keys and fewer requests
 * than keys part of the GETs miss, on both sides alike.
 */
const KEYSPACES: readonly { keys: number | null; suffix: string }[] = [
  { keys: null, suffix: '' },
  { keys: 10_000, suffix: '.r10k' },
  { keys: 1_000_000, suffix: '.r1m' },
];
/** Bound on one redis-benchmark run; far above the expected seconds. */
const BENCH_TIMEOUT_MS = 90_000;

export interface BenchLine {
  test: string;
  rps: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

/**
 * Parses `redis-benchmark --csv` output: redis 7 prints a header row
 * ("test","rps","avg_latency_ms",...,"p50_latency_ms",...,"p99_latency_ms",...), redis 6 only
 * "TEST","rps" rows. Non-CSV lines (warnings) are ignored.
 */
export function parseBenchCsv(text: string): BenchLine[] {
  const rows = text
    .split(/[\r\n]+/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith('"'))
    .map((l) => l.split(',').map((c) => c.replace(/^"|"$/g, '')));
  let header: string[] | null = null;
  const out: BenchLine[] = [];
  for (const r of rows) {
    if (r[0] === 'test') {
      header = r;
      continue;
    }
    const col = (name: string, fallback: number | null): number | null => {
      const i = header ? header.indexOf(name) : fallback;
      if (i === null || i < 0) return null;
      const v = Number(r[i]);
      return Number.isFinite(v) ? v : null;
    };
    const rps = col('rps', 1);
    if (r[0] === undefined || rps === null) continue;
    out.push({ test: r[0].toUpperCase(), rps, p50Ms: col('p50_latency_ms', null), p99Ms: col('p99_latency_ms', null) });
  }
  return out;
}

/** Runs redis-benchmark as a tracked child (stopped by PID on timeout) and parses its CSV. */
export async function redisBenchmark(port: number, n: number, pipeline: number, extra: readonly string[] = [], tests: readonly string[] = ['get', 'set']): Promise<Map<string, BenchLine>> {
  const args = ['-h', '127.0.0.1', '-p', String(port), ...extra, '-t', tests.join(','), '-d', '100', '-c', '50', '-n', String(n), '-P', String(pipeline), '--csv'];
  const proc = startProcess({ name: `redis-benchmark-${port}`, command: 'redis-benchmark', args, cwd: tmpdir() });
  const timer = setTimeout(() => void proc.stop(1000), BENCH_TIMEOUT_MS);
  const exit = await proc.exited;
  clearTimeout(timer);
  const text = readFileSync(proc.logFile, 'utf8');
  const lines = new Map(parseBenchCsv(text).map((l) => [l.test, l]));
  if (exit.code !== 0 || tests.some((t) => !lines.has(t.toUpperCase()))) {
    throw new Error(
      `redis-benchmark -p ${port} -P ${pipeline} -n ${n} exited (code ${exit.code}, signal ${exit.signal}) ` +
        `without ${tests.join(' and ')} results:\n${text.slice(-2000)}`,
    );
  }
  return lines;
}

/** Sends raw RESP and collects the reply until `done(reply)` or the timeout. */
function respExchange(port: number, payload: string, done: (reply: string) => boolean, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    let reply = '';
    const s = connect({ port, host: '127.0.0.1' });
    const finish = () => {
      clearTimeout(t);
      s.destroy();
      resolve(reply);
    };
    const t = setTimeout(finish, timeoutMs);
    s.once('connect', () => s.write(payload));
    s.on('data', (d: Buffer) => {
      reply += d.toString('latin1');
      if (done(reply)) finish();
    });
    s.once('error', finish);
    s.once('close', finish);
  });
}

function cmd(...parts: string[]): string {
  return `*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`;
}

/** SET then GET of one key; returns null when it round-trips, else what came back. */
async function probe(port: number): Promise<string | null> {
  const value = 'x'.repeat(100);
  const want = `+OK\r\n$100\r\n${value}\r\n`;
  const reply = await respExchange(port, cmd('SET', 'bench:probe', value) + cmd('GET', 'bench:probe'), (r) => r.length >= want.length);
  return reply === want ? null : JSON.stringify(reply.slice(0, 200));
}

export async function prepare(opts: ScenarioOptions): Promise<void> {
  ensureRedis(opts.log);
}

async function startRedis(name: string, port: number): Promise<Proc> {
  const p = startProcess({
    name,
    command: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    cwd: tmpdir(),
  });
  await waitForPort(port, { proc: p });
  return p;
}

/** The minimal Node RESP server (bench/lib/bare-resp-server.ts), on the Node that runs the bench. */
async function startBareResp(port: number): Promise<Proc> {
  const p = startProcess({ name: 'bare-resp-server', command: process.execPath, args: [join(REPO_DIR, 'bench', 'lib', 'bare-resp-server.ts'), '--port', String(port)], cwd: REPO_DIR });
  await waitForPort(port, { proc: p });
  return p;
}

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  const log = opts.log ?? (() => {});
  const aa = opts.aa ?? false;
  if (!aa) requireJincache();
  ensureRedis(log);
  const mode = opts.quick ? QUICK : FULL;
  const [redisPort, nodePort, respPort, barePort] = (await freePorts(4)) as [number, number, number, number];
  const started: Proc[] = [];
  try {
    started.push(await startRedis('redis-server', redisPort));
    if (aa) {
      // A/A: "ours" is a second redis-server on the RESP port.
      started.push(await startRedis('redis-server-aa', respPort));
    } else {
      let node;
      try {
        node = await startNode({ id: 'n1', port: nodePort, respPort }, { readyTimeoutMs: 15_000 });
      } catch (e) {
        // The node serves HTTP but its RESP listener never opens: that listener has not shipped.
        if (isProcError(e) && /waiting for 127\.0\.0\.1:\d+ to accept/.test(e.message)) {
          throw new ScenarioSkipped(`jincache serve --resp-port did not open the RESP listener (${e.message.split('\n')[0]})`);
        }
        throw e;
      }
      started.push(node.proc);
    }
    // the floor any Node server pays (bench/lib/bare-resp-server.ts: a parser, a Map, one write
    // per chunk), measured beside both on the one key: what Node itself reaches against
    // redis-server on this machine, in the same minutes
    started.push(await startBareResp(barePort));
    const bad = await probe(respPort);
    if (bad !== null) throw new Error(`jincache RESP listener answered SET+GET with ${bad}`);
    if ((await probe(redisPort)) !== null) throw new Error('redis-server did not answer the SET+GET probe');
    log(`  redis-server :${redisPort}, jincache RESP :${respPort}; ${mode.rounds} alternating rounds`);

    const figures: Figure[] = [];
    for (const keyspace of KEYSPACES) {
      for (const pipeline of [1, 16] as const) {
        opts.signal?.throwIfAborted();
        // -r: keys drawn at random from this many (none: redis-benchmark's one key)
        const extra = keyspace.keys === null ? [] : ['-r', String(keyspace.keys)];
        // -n per side from its own pilot: the slower of its GET and SET for testSec seconds
        const sized = (m: Map<string, BenchLine>) =>
          Math.round(Math.min(N_MAX, Math.max(N_MIN, Math.min(m.get('GET')!.rps, m.get('SET')!.rps) * mode.testSec)));
        const nOurs = sized(await redisBenchmark(respPort, PILOT_N[pipeline], pipeline, extra));
        const nPeer = sized(await redisBenchmark(redisPort, PILOT_N[pipeline], pipeline, extra));
        const withBare = keyspace.keys === null;
        const nBare = withBare ? sized(await redisBenchmark(barePort, PILOT_N[pipeline], pipeline, extra)) : 0;
        log(`  P${pipeline}${keyspace.suffix}: -n ${nOurs} for jincache, ${nPeer} for redis-server${withBare ? `, ${nBare} for the bare Node server` : ''} (~${mode.testSec} s per test each)`);
        const rounds: { ours: Map<string, BenchLine>; peer: Map<string, BenchLine>; bare?: Map<string, BenchLine> }[] = [];
        for (let i = 0; i < mode.rounds; i++) {
          opts.signal?.throwIfAborted();
          const ours = await redisBenchmark(respPort, nOurs, pipeline, extra);
          const peer = await redisBenchmark(redisPort, nPeer, pipeline, extra);
          const bare = withBare ? await redisBenchmark(barePort, nBare, pipeline, extra) : undefined;
          rounds.push(bare === undefined ? { ours, peer } : { ours, peer, bare });
          const show = (m: Map<string, BenchLine>) => `GET ${Math.round(m.get('GET')!.rps)} SET ${Math.round(m.get('SET')!.rps)}`;
          log(`  P${pipeline}${keyspace.suffix} round ${i + 1}/${mode.rounds}: ours ${show(ours)} | redis ${show(peer)}${bare ? ` | bare Node ${show(bare)}` : ''} req/s`);
        }
        for (const test of ['GET', 'SET']) {
          const ours = rounds.map((r) => r.ours.get(test)!.rps);
          const peer = rounds.map((r) => r.peer.get(test)!.rps);
          figures.push(
            figure({
              name: `redis.${test.toLowerCase()}.p${pipeline}${keyspace.suffix}.rps`,
              unit: 'req/s',
              ours: median(ours),
              peer: median(peer),
              ratio: median(ours.map((o, i) => o / peer[i]!)),
              // issue 8's targets judge the one-key run; the larger keyspaces are reported beside it
              target: keyspace.keys === null ? { kind: 'ratio>=', value: TARGETS[pipeline] } : null,
            }),
          );
          if (!withBare) continue;
          const bare = rounds.map((r) => r.bare!.get(test)!.rps);
          // reported, no target: the bare Node server against redis-server, and jincache against it
          figures.push(
            figure({
              name: `redis.bare_node.${test.toLowerCase()}.p${pipeline}.rps`,
              unit: 'req/s',
              ours: median(bare),
              peer: median(peer),
              ratio: median(bare.map((b, i) => b / peer[i]!)),
              target: null,
            }),
            figure({
              name: `redis.${test.toLowerCase()}.p${pipeline}.vs_bare_node`,
              unit: 'req/s',
              ours: median(ours),
              peer: median(bare),
              ratio: median(ours.map((o, i) => o / bare[i]!)),
              target: null,
            }),
          );
        }
      }
    }
    return figures;
  } finally {
    await Promise.all(started.map((p) => p.stop()));
  }
}
