// Memory per entry (issue 8 scenario 5, issue 18 item 4): distinct keys stored in one jincache
// node, against the same data in a redis-server, in three cases (full run; --quick in brackets):
//  - 1M (200k) keys with 100-byte values: `memory.bytes_per_entry`, the figure issue 8 set;
//  - 1M (100k) keys with 1 KiB values: `memory.bytes_per_entry.1kib`;
//  - 10M (1M) keys with 16-byte values: `memory.bytes_per_entry.16b`, where the bookkeeping of an
//    entry dwarfs its bytes. Target for each: ours <= 1.0x (issue 18).
//
// Both sides get the very same SET commands (keys `bench:00000000`.., a fixed value) pipelined
// over one connection to their Redis-protocol listener (jincache: `serve --resp-port`, with
// cache.cache_bytes raised so nothing is evicted). Each case starts a fresh server on each side.
// Then:
//  - ours: growth of the node process's resident set (VmRSS in /proc/PID/status, after the
//    reading settles) divided by the entries it holds (DBSIZE). RSS is all a user's machine pays
//    for: the V8 heap with its slack, and every index the node keeps beside the values;
//  - peer: growth of redis `used_memory` (INFO memory: what its allocator has handed out) per
//    entry, the figure Redis users quote; redis's own RSS growth per entry is reported beside it
//    (`memory.rss_per_entry[.case]`).
// The node runs with Node's default heap flags (no tuning a user would not have); it is started
// with --inspect on a loopback port only so the harness can force a full GC before each reading.

import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Figure } from '../lib/figure.ts';
import { figure } from '../lib/figure.ts';
import { ensureRedis } from '../lib/deps.ts';
import { JINCACHE_BIN, requireJincache } from '../lib/jincache.ts';
import { freePorts, isProcError, startProcess, waitForHttp, waitForPort, type Proc } from '../lib/procs.ts';
import { REPO_DIR } from '../lib/results.ts';
import { benchKeyList, fixedValue, parseInfo, pipelineSet, respCall, respText, type KeyList } from '../lib/redis-cluster.ts';
import { ScenarioSkipped, type ScenarioOptions } from '../lib/scenario.ts';

const RATIO_TARGET = 1.0;

export interface MemoryCase {
  /** Suffix of the figure names ('' for the 100-byte case, issue 8's figure). */
  suffix: string;
  valueBytes: number;
  entries: { quick: number; full: number };
}

export const CASES: readonly MemoryCase[] = [
  { suffix: '', valueBytes: 100, entries: { quick: 200_000, full: 1_000_000 } },
  { suffix: '.1kib', valueBytes: 1024, entries: { quick: 100_000, full: 1_000_000 } },
  { suffix: '.16b', valueBytes: 16, entries: { quick: 1_000_000, full: 10_000_000 } },
];

/** Entries loaded in the 100-byte case: full 1M (issue 8), quick 200k. */
export function defaultEntries(quick: boolean): number {
  return quick ? CASES[0]!.entries.quick : CASES[0]!.entries.full;
}

/**
 * cache.cache_bytes for a case: far above what the entries are charged (key + value + any
 * per-entry overhead up to 200 bytes), so nothing is evicted, in MiB.
 */
export function cacheBytesFor(entries: number, valueBytes: number): string {
  return `${Math.ceil((entries * (valueBytes + 14 + 200) * 1.25) / 2 ** 20)}MiB`;
}

/** Resident set size of a process in bytes, from /proc/PID/status (VmRSS, in kB). */
export function readRss(pid: number): number {
  return parseVmRss(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

export function parseVmRss(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (m === null) throw new Error('no VmRSS line in /proc/PID/status');
  return Number(m[1]) * 1024;
}

/**
 * Polls RSS every `intervalMs` until two readings in a row differ by less than `tolerance`
 * (relative) or `maxMs` passes; returns the last reading. A node just loaded is still
 * collecting the garbage of the load; measuring mid-collection would be noise either way.
 */
export async function settledRss(pid: number, opts: { maxMs: number; intervalMs?: number; tolerance?: number; signal?: AbortSignal }): Promise<number> {
  const intervalMs = opts.intervalMs ?? 500;
  const tolerance = opts.tolerance ?? 0.005;
  const deadline = Date.now() + opts.maxMs;
  let last = readRss(pid);
  while (Date.now() < deadline) {
    opts.signal?.throwIfAborted();
    await sleep(intervalMs);
    const now = readRss(pid);
    if (Math.abs(now - last) <= tolerance * last) return now;
    last = now;
  }
  return last;
}

async function usedMemory(port: number): Promise<number> {
  const info = parseInfo(await respText(port, ['INFO', 'memory']));
  const v = Number(info.get('used_memory'));
  if (!Number.isFinite(v)) throw new Error(`INFO memory on :${port} has no used_memory`);
  return v;
}

async function dbsize(port: number): Promise<number> {
  // generous: a node may count its entries one by one (10M in the 16-byte case)
  const r = await respCall(port, ['DBSIZE'], 300_000);
  if (typeof r !== 'number') throw new Error(`DBSIZE on :${port} answered ${r instanceof Error ? r.message : JSON.stringify(r)}`);
  return r;
}

async function load(port: number, keys: KeyList, value: Buffer, who: string, signal?: AbortSignal): Promise<number> {
  const s = await pipelineSet(port, keys, value, { batch: 2000, timeoutMs: 300_000, signal });
  if (s.errorCount > 0) throw new Error(`${who}: ${s.errorCount} of ${s.sent} SETs failed, e.g. ${s.errors[0]}`);
  return s.seconds;
}

export async function prepare(opts: ScenarioOptions): Promise<void> {
  ensureRedis(opts.log);
}

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  requireJincache();
  ensureRedis(opts.log ?? (() => {}));
  const figures: Figure[] = [];
  for (const c of CASES) {
    opts.signal?.throwIfAborted();
    figures.push(...(await runCase(c, opts)));
  }
  return figures;
}

/** One case: redis-server, then a jincache node, each fresh, loaded with the same SETs. */
export async function runCase(c: MemoryCase, opts: ScenarioOptions): Promise<Figure[]> {
  const log = opts.log ?? (() => {});
  const entries = opts.quick ? c.entries.quick : c.entries.full;
  const settleMs = opts.quick ? 3000 : 8000;
  const keys = benchKeyList(entries);
  const value = fixedValue(c.valueBytes);
  const what = `${entries} x ${c.valueBytes} B`;
  const [redisPort, nodePort, respPort] = (await freePorts(3)) as [number, number, number];
  const dir = mkdtempSync(join(tmpdir(), 'jincache-bench-mem-'));
  const started: Proc[] = [];
  try {
    // --- peer: redis-server ---
    const redis = startProcess({
      name: 'redis-server-mem',
      command: 'redis-server',
      args: ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      cwd: dir,
    });
    started.push(redis);
    await waitForPort(redisPort, { proc: redis });
    const rUsed0 = await usedMemory(redisPort);
    const rRss0 = readRss(redis.pid);
    const rSec = await load(redisPort, keys, value, 'redis-server', opts.signal);
    const rN = await dbsize(redisPort);
    if (rN !== entries) throw new Error(`redis-server holds ${rN} keys after ${entries} SETs`);
    const rUsed = (await usedMemory(redisPort)) - rUsed0;
    const rRss = (await settledRss(redis.pid, { maxMs: 2000, signal: opts.signal })) - rRss0;
    log(`  ${what}: redis-server: SETs in ${rSec.toFixed(1)} s; used_memory +${mb(rUsed)}, RSS +${mb(rRss)}`);
    await redis.stop();

    // --- ours: one jincache node ---
    opts.signal?.throwIfAborted();
    const config = join(dir, 'jincache.yaml');
    const cacheBytes = cacheBytesFor(entries, c.valueBytes);
    writeFileSync(config, `cache:\n  cache_bytes: ${cacheBytes}\n`);
    const [inspectPort] = (await freePorts(1)) as [number];
    const proc = startProcess({
      name: 'jincache-mem',
      command: process.execPath,
      // --inspect only so the harness can force a full GC before each reading (below); the
      // inspector's own memory is in the baseline.
      args: [`--inspect=127.0.0.1:${inspectPort}`, JINCACHE_BIN, 'serve', '--id', 'n1', '--host', '127.0.0.1', '--port', String(nodePort), '--resp-port', String(respPort), '--log-level', 'warn', '--config', config],
      cwd: REPO_DIR,
    });
    started.push(proc);
    const url = `http://127.0.0.1:${nodePort}`;
    await waitForHttp(`${url}/health`, { proc, timeoutMs: 20_000 });
    try {
      await waitForPort(respPort, { proc, timeoutMs: 10_000 });
    } catch (e) {
      if (isProcError(e) && /waiting for 127\.0\.0\.1:\d+ to accept/.test(e.message)) {
        throw new ScenarioSkipped(`jincache serve --resp-port did not open the RESP listener (${e.message.split('\n')[0]})`);
      }
      throw e;
    }
    // The baseline after the node has served a request on each listener: lazily loaded code paths
    // are not charged to the entries.
    await respCall(respPort, ['SET', 'bench:warmup', value]);
    await respCall(respPort, ['DEL', 'bench:warmup']);
    await forceGc(inspectPort);
    const oRss0 = await settledRss(proc.pid, { maxMs: 2000, signal: opts.signal });
    const oSec = await load(respPort, keys, value, 'jincache', opts.signal);
    await forceGc(inspectPort);
    const oRss = (await settledRss(proc.pid, { maxMs: settleMs, signal: opts.signal })) - oRss0;
    log(`  ${what}: jincache: SETs in ${oSec.toFixed(1)} s; RSS +${mb(oRss)}${await heapNote(url)}`);
    // Counted after the reading: DBSIZE may walk every entry (copying it), and the garbage it
    // leaves in the allocator is no part of what an entry costs (it moved the reading by up to
    // 40 bytes an entry from one run to the next).
    const oN = await dbsize(respPort);
    if (oN !== entries) throw new Error(`jincache holds ${oN} keys after ${entries} SETs (evicted? cache_bytes ${cacheBytes})`);
    await proc.stop();

    return [
      figure({
        name: `memory.bytes_per_entry${c.suffix}`,
        unit: 'bytes',
        ours: oRss / entries,
        peer: rUsed / entries,
        target: { kind: 'ratio<=', value: RATIO_TARGET },
      }),
      // For reference: both sides' RSS growth (what the machine pays on each side).
      figure({ name: `memory.rss_per_entry${c.suffix}`, unit: 'bytes', ours: oRss / entries, peer: rRss / entries }),
    ];
  } finally {
    await Promise.all(started.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A full garbage collection in the node, twice, through its inspector (HeapProfiler.collectGarbage
 * over the DevTools WebSocket): the garbage of the load is not charged to the entries, and the
 * reading does not depend on when V8 happened to collect last.
 */
export async function forceGc(inspectPort: number): Promise<void> {
  const list = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`, { signal: AbortSignal.timeout(5000) })).json()) as { webSocketDebuggerUrl?: string }[];
  const wsUrl = list[0]?.webSocketDebuggerUrl;
  if (wsUrl === undefined) throw new Error(`no inspector target on :${inspectPort}`);
  const ws = new WebSocket(wsUrl);
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('inspector: no answer to collectGarbage within 30 s')), 30_000);
      let next = 1;
      const send = () => ws.send(JSON.stringify({ id: next, method: 'HeapProfiler.collectGarbage' }));
      ws.addEventListener('open', send);
      ws.addEventListener('error', () => {
        clearTimeout(t);
        reject(new Error(`inspector WebSocket ${wsUrl} failed`));
      });
      ws.addEventListener('message', (ev) => {
        const msg = JSON.parse(String(ev.data)) as { id?: number; error?: { message: string } };
        if (msg.id !== next) return;
        if (msg.error) {
          clearTimeout(t);
          reject(new Error(`inspector: ${msg.error.message}`));
        } else if (++next > 2) {
          clearTimeout(t);
          resolve();
        } else send();
      });
    });
  } finally {
    ws.close();
  }
}

/**
 * The node's V8 heap (in use, and held) and its memory outside the heap (ArrayBuffers: the
 * store's tables and segments) from /metrics, for the log: what the RSS is made of.
 */
async function heapNote(url: string): Promise<string> {
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const read = (name: string): number | undefined => {
      const m = new RegExp(`^jincache_nodejs_${name}\\s+([0-9.e+]+)`, 'm').exec(text);
      return m === null ? undefined : Number(m[1]);
    };
    const used = read('heap_size_used_bytes');
    const total = read('heap_size_total_bytes');
    const external = read('external_memory_bytes');
    if (used === undefined) return '';
    return ` (V8 heap in use ${mb(used)}${total === undefined ? '' : ` of ${mb(total)}`}${external === undefined ? '' : `; outside it ${mb(external)}`})`;
  } catch {
    return '';
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
