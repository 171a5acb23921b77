/**
 * Chaos harness: a 5-node cluster on real etcd where every node sits behind its own fault proxy
 * (peers reach it through the proxy via `server.advertise`; clients use its real port), a
 * bounded load generator that records every acknowledged write, and the checks run after each
 * fault: acknowledged writes readable through every live node, and replica convergence.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { decodeTable, holdersOf, type PartitionTable } from '../../src/core/placement/table.ts';
import { createEtcdClient } from '../../src/discovery/etcd-client.ts';
import { BIN } from '../helpers/cluster.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.ts';
import { freePort } from '../helpers/ports.ts';
import { Record } from '../../src/peer/messages.ts';
import { callPeer } from '../helpers/peer.ts';

export const GROUP = 'scores';
export const PARTITIONS = 256;

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export interface ChaosNode {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  /** Its Redis-protocol listener (clients use it directly, like `port`). */
  readonly respPort: number;
  readonly proxy: FaultProxy;
  pid(): number;
  running(): boolean;
  /** The process is up and not paused: clients may target it. */
  serving(): boolean;
  kill(signal?: NodeJS.Signals): Promise<void>;
  pause(): void;
  resume(): void;
  /** Start again (same id, port, proxy) after a kill; resolves when /health answers. */
  restart(): Promise<void>;
  log(): string;
}

export interface ChaosCluster {
  readonly nodes: ChaosNode[];
  readonly etcdEndpoints: string[];
  serving(): ChaosNode[];
  /** The partition table stored in etcd. */
  table(): Promise<PartitionTable>;
  stop(): Promise<void>;
}

export interface ChaosClusterOptions {
  nodes: number;
  etcdEndpoints: string[];
  config: Record<string, unknown>;
}

export async function startChaosCluster(opts: ChaosClusterOptions): Promise<ChaosCluster> {
  // a port picked free can be taken by another process before the node listens on it: start
  // again on other ports (3 tries)
  for (let attempt = 1; ; attempt++) {
    try {
      return await startChaosClusterOnce(opts);
    } catch (e) {
      if (attempt >= 3 || !String((e as Error).message).includes('EADDRINUSE')) throw e;
    }
  }
}

async function startChaosClusterOnce(opts: ChaosClusterOptions): Promise<ChaosCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'jincache-chaos-'));
  const nodes: ChaosNode[] = [];
  for (let i = 0; i < opts.nodes; i++) {
    const id = `node-${i + 1}`;
    const port = await freePort();
    const respPort = await freePort();
    const proxy = await startFaultProxy({ target: port });
    const configFile = join(dir, `${id}.yaml`);
    writeFileSync(configFile, stringify({ log: { level: process.env.JINCACHE_CHAOS_LOG_LEVEL ?? 'warn' }, ...opts.config, server: { advertise: proxy.url }, cluster: { partitions: PARTITIONS } }));
    nodes.push(makeNode(id, port, respPort, proxy, configFile, join(dir, `${id}.log`), opts.etcdEndpoints));
  }
  try {
    await Promise.all(nodes.map((n) => n.restart()));
  } catch (e) {
    // nothing of this attempt may outlive it: a proxy left listening keeps the test process alive
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await Promise.all(nodes.map((n) => n.proxy.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const client = createEtcdClient({ endpoints: opts.etcdEndpoints });
  return {
    nodes,
    etcdEndpoints: opts.etcdEndpoints,
    serving: () => nodes.filter((n) => n.serving()),
    async table() {
      const raw = await client.get('/jincache/ring').string();
      if (raw === null) throw new Error('no partition table in etcd yet');
      return decodeTable(raw);
    },
    async stop() {
      client.close();
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      await Promise.all(nodes.map((n) => n.proxy.stop()));
      if (process.env.JINCACHE_KEEP_LOGS !== '1') rmSync(dir, { recursive: true, force: true });
      else console.log(`chaos logs kept in ${dir}`);
    },
  };
}

function makeNode(id: string, port: number, respPort: number, proxy: FaultProxy, configFile: string, logFile: string, etcd: string[]): ChaosNode {
  let child: ChildProcess | undefined;
  let paused = false;
  let exited: Promise<void> = Promise.resolve();
  const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
  const node: ChaosNode = {
    id,
    port,
    url: `http://127.0.0.1:${port}`,
    respPort,
    proxy,
    pid: () => child?.pid ?? 0,
    running,
    serving: () => running() && !paused,
    async kill(signal = 'SIGKILL') {
      if (!running()) return;
      if (paused) child!.kill('SIGCONT');
      paused = false;
      child!.kill(signal);
      await exited;
    },
    pause() {
      child?.kill('SIGSTOP');
      paused = true;
    },
    resume() {
      child?.kill('SIGCONT');
      paused = false;
    },
    async restart() {
      if (running()) throw new Error(`${id} is running`);
      const out = createWriteStream(logFile, { flags: 'a' });
      const c = spawn(process.execPath, [BIN, 'serve', '--config', configFile, '--id', id, '--port', String(port), '--resp-port', String(respPort), '--etcd', etcd.join(',')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      c.stdout!.pipe(out);
      c.stderr!.pipe(out);
      children.add(c);
      child = c;
      paused = false;
      exited = new Promise((r) => c.once('exit', () => (children.delete(c), r())));
      const end = Date.now() + 30_000;
      while (Date.now() < end) {
        if (!running()) throw new Error(`${id} exited during start-up:\n${node.log()}`);
        try {
          if ((await fetch(`${node.url}/health`, { signal: AbortSignal.timeout(1000) })).ok) return;
        } catch {
          // not yet
        }
        await sleep(100);
      }
      throw new Error(`${id} did not start:\n${node.log()}`);
    },
    log: () => {
      try {
        return readFileSync(logFile, 'utf8').slice(-4000);
      } catch {
        return '';
      }
    },
  };
  return node;
}

// ---- load -----------------------------------------------------------------------------------

export interface LoadOptions {
  /** Concurrent workers; each owns its keys, so the writes of one key are sequential. */
  workers: number;
  keysPerWorker: number;
  /** Client deadline per request. */
  timeoutMs: number;
  /** Share of writes. Default 0.5. */
  writeRatio?: number;
  /** Pause between a worker's requests, ms. Default 5. */
  thinkMs?: number;
  /** Nodes a request may be sent to (called per request). */
  targets: () => ChaosNode[];
}

export interface Sample {
  at: number;
  ms: number;
  ok: boolean;
  op: 'get' | 'put';
  stale: boolean;
  /** the node the client sent it to */
  node: string;
}

export interface KeyState {
  /** last acknowledged write's seq (0 = none) */
  acked: number;
  /** seqs sent after `acked` whose outcome is unknown (failed or timed out): may or may not be applied */
  uncertain: Set<number>;
  next: number;
}

export class LoadGenerator {
  readonly samples: Sample[] = [];
  readonly keys = new Map<string, KeyState>();
  private readonly opts: LoadOptions;
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly failures: string[] = [];
  private readonly stales: string[] = [];

  constructor(opts: LoadOptions) {
    this.opts = opts;
    for (let w = 0; w < opts.workers; w++) for (let k = 0; k < opts.keysPerWorker; k++) this.keys.set(`k${w}-${k}`, { acked: 0, uncertain: new Set(), next: 1 });
  }

  private startedAt = 0;

  start(): void {
    this.startedAt = Date.now();
    this.running = true;
    this.loops = Array.from({ length: this.opts.workers }, (_, w) => this.loop(w));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Failure descriptions so far (the first 1000), for the report. */
  failureExamples(): string[] {
    return this.failures;
  }

  /** Stale read descriptions so far (the first 100). */
  staleExamples(): string[] {
    return this.stales;
  }

  private fail(msg: string): void {
    if (this.failures.length < 1000) this.failures.push(msg);
  }

  private async loop(w: number): Promise<void> {
    const writeRatio = this.opts.writeRatio ?? 0.5;
    while (this.running) {
      const key = `k${w}-${Math.floor(Math.random() * this.opts.keysPerWorker)}`;
      const st = this.keys.get(key)!;
      const targets = this.opts.targets();
      const node = targets[Math.floor(Math.random() * targets.length)];
      if (node === undefined) {
        await sleep(20);
        continue;
      }
      const url = `${node.url}/api/${GROUP}/${encodeURIComponent(key)}`;
      const started = performance.now();
      const at = Date.now();
      if (Math.random() < writeRatio) {
        const seq = st.next++;
        // in flight: until acknowledged, a reader may see it or not
        st.uncertain.add(seq);
        let ok = false;
        try {
          const res = await fetch(url, { method: 'PUT', body: `${key}:${seq}`, signal: AbortSignal.timeout(this.opts.timeoutMs) });
          await res.arrayBuffer();
          ok = res.status === 204;
          if (!ok) this.fail(`PUT ${key} via ${node.id}: ${res.status}`);
        } catch (e) {
          this.fail(`PUT ${key} via ${node.id}: ${(e as Error).name}`);
        }
        // acknowledged: every earlier write, failed or not, is older (the router's fence) and may no longer show
        if (ok) {
          st.acked = seq;
          st.uncertain.clear();
        }
        this.samples.push({ at, ms: performance.now() - started, ok, op: 'put', stale: false, node: node.id });
      } else {
        let ok = false;
        let stale = false;
        let body = '';
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(this.opts.timeoutMs) });
          body = await res.text();
          ok = res.status === 200 || (res.status === 404 && st.acked === 0);
          if (ok && res.status === 200) stale = !acceptable(body, key, st);
          if (res.status === 404 && st.acked > 0) stale = true; // an acknowledged write not visible
          if (res.status === 404) ok = true; // the request itself succeeded; staleness counted apart
          if (!ok) this.fail(`GET ${key} via ${node.id}: ${res.status}`);
        } catch (e) {
          this.fail(`GET ${key} via ${node.id}: ${(e as Error).name}`);
        }
        if (stale && this.stales.length < 100) this.stales.push(`GET ${key} via ${node.id} at ${new Date(at).toISOString().slice(11, 23)} (+${Date.now() - at} ms): ${body.slice(0, 40) || '(404)'} (acked seq ${st.acked})`);
        this.samples.push({ at, ms: performance.now() - started, ok, op: 'get', stale, node: node.id });
      }
      if ((this.opts.thinkMs ?? 5) > 0) await sleep(this.opts.thinkMs ?? 5);
    }
  }
}

/** Is `body` a value the key may hold: its last acknowledged write, or a later write whose outcome is unknown? */
export function acceptable(body: string, key: string, st: KeyState): boolean {
  // a read with no write of its key in between: the state when sent is the state when answered
  return acceptableDuring(body, key, st, st);
}

/**
 * For a read that ran while the key's worker kept writing: `before` is the key's state when the
 * read was sent, `now` when its answer arrived. A write acknowledged in between may or may not be
 * in the answer, so the read may show anything from the value acknowledged when it was sent up to
 * a write that was in flight at some point while it ran; older than `before.acked` is stale.
 */
export function acceptableDuring(body: string, key: string, before: KeySnapshot, now: KeyState): boolean {
  const seq = seqOf(body, key);
  if (seq === before.acked) return true;
  return seq > before.acked && (before.uncertain.has(seq) || now.uncertain.has(seq) || seq <= now.acked);
}

export interface KeySnapshot {
  acked: number;
  uncertain: ReadonlySet<number>;
}

export function snapshot(st: KeyState): KeySnapshot {
  return { acked: st.acked, uncertain: new Set(st.uncertain) };
}

function seqOf(body: string, key: string): number {
  const prefix = `${key}:`;
  return body.startsWith(prefix) ? Number(body.slice(prefix.length)) : Number.NaN;
}

export interface PhaseFigures {
  requests: number;
  /** failed requests sent to nodes not under a fault */
  failed: number;
  /** of `failed`: reads (a read can always be answered by another holder) */
  failedReads: number;
  /** failed requests that were in flight at the faulted node itself when the fault hit (a client-side failover matter) */
  failedAtVictim: number;
  staleReads: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function figures(all: readonly Sample[], victim?: string): PhaseFigures {
  const samples = all.filter((s) => s.node !== victim);
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const pct = (p: number): number => (ms.length === 0 ? 0 : Math.round(ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]! * 10) / 10);
  return {
    requests: samples.length,
    failed: samples.filter((s) => !s.ok).length,
    failedReads: samples.filter((s) => !s.ok && s.op === 'get').length,
    failedAtVictim: all.filter((s) => s.node === victim && !s.ok).length,
    staleReads: samples.filter((s) => s.stale).length,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    maxMs: Math.round((ms[ms.length - 1] ?? 0) * 10) / 10,
  };
}

// ---- checks ---------------------------------------------------------------------------------

export interface Verification {
  ackedKeys: number;
  /** acknowledged writes some live node answered without (an older value, or absent) */
  lost: number;
  lostExamples: string[];
  /** keys some live node did not answer for at all, three tries 500 ms apart (unverified there: unavailable, not lost) */
  unreadable: number;
  unreadableExamples: string[];
  /** reads that showed the value acknowledged when they were sent while a newer write was acknowledged before they were answered (correct, counted to show the check needs the rule) */
  overlapped: number;
  /** keys whose holders (per the stored table) disagree on the version or lack the record */
  divergent: number;
  divergentExamples: string[];
}

/** Read every acknowledged key through every serving node, and compare the holders' copies. */
export async function verify(cluster: ChaosCluster, load: LoadGenerator, opts: { timeoutMs: number; convergence?: boolean }): Promise<Verification> {
  const acked = [...load.keys].filter(([, st]) => st.acked > 0);
  const nodes = cluster.serving();
  const lostExamples: string[] = [];
  const unreadableExamples: string[] = [];
  let lost = 0;
  let unreadable = 0;
  let overlapped = 0;
  await forEachLimit(acked, 16, async ([key, st]) => {
    for (const n of nodes) {
      let body = '';
      let status = 0;
      // the load keeps writing while this runs: judge the answer against the key's state when
      // the read was sent (a write acknowledged while the read was in flight may not show)
      let before = snapshot(st);
      // a read that gets no answer (a timeout, a 5xx) says nothing of the data: tried again,
      // and counted apart when it never answers
      for (let attempt = 0; attempt < 3; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 500));
        before = snapshot(st);
        body = '';
        status = 0;
        try {
          const res = await fetch(`${n.url}/api/${GROUP}/${encodeURIComponent(key)}`, { signal: AbortSignal.timeout(opts.timeoutMs) });
          status = res.status;
          body = await res.text();
        } catch (e) {
          body = (e as Error).name;
        }
        if (status === 200 || status === 404) break;
      }
      if (status !== 200 && status !== 404) {
        unreadable++;
        if (unreadableExamples.length < 5) unreadableExamples.push(`${key} via ${n.id}: ${status} ${body.slice(0, 80)} (three tries)`);
        break;
      }
      if (status === 200 && acceptableDuring(body, key, before, st) && !acceptable(body, key, st)) overlapped++;
      if (status !== 200 || !acceptableDuring(body, key, before, st)) {
        lost++;
        if (lostExamples.length < 5) {
          // what the holders have now, and whether the same node still answers so a moment later
          const copies = await holderCopies(cluster, key, opts.timeoutMs);
          await new Promise((r) => setTimeout(r, 500));
          const again = await fetch(`${n.url}/api/${GROUP}/${encodeURIComponent(key)}`, { signal: AbortSignal.timeout(opts.timeoutMs) }).then(async (r) => `${r.status} ${(await r.text()).slice(0, 40)}`, (e: Error) => e.name);
          lostExamples.push(`${key} via ${n.id}: ${status} ${body.slice(0, 40)} (acked seq ${before.acked} when sent, ${st.acked} when answered); holders now ${copies}; 500 ms later via ${n.id}: ${again}`);
        }
        break;
      }
    }
  });
  let divergent = 0;
  const divergentExamples: string[] = [];
  if (opts.convergence !== false) {
    const table = await cluster.table();
    // The load keeps writing while this runs and the holders are read one after the other, so
    // a write landing between two reads looks like a difference for a moment. A key counts as
    // divergent only when its holders still disagree on three reads 250 ms apart; a missed
    // write (the holder never gets it) disagrees every time.
    await forEachLimit(acked, 16, async ([key]) => {
      const holders = holdersOf(table, partitionOf(key, table.partitionCount));
      let versions: string[] = [];
      for (let attempt = 0; attempt < 3; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 250));
        versions = await holderVersions(key, holders);
        if (new Set(versions).size === 1 && !versions.some((v) => v.includes('='))) return;
      }
      divergent++;
      if (divergentExamples.length < 5) divergentExamples.push(`${key} @ ${holders.join(',')}: ${versions.join(' / ')}`);
    });
  }
  return { ackedKeys: acked.length, lost, lostExamples, unreadable, unreadableExamples, overlapped, divergent, divergentExamples };

  async function holderVersions(key: string, holders: readonly string[]): Promise<string[]> {
    const byId = new Map(cluster.nodes.map((n) => [n.id, n]));
    const versions: string[] = [];
    for (const h of holders) {
      const n = byId.get(h);
      if (n === undefined || !n.serving()) {
        versions.push(`${h}=offline`);
        continue;
      }
      try {
        const a = await callPeer(Record, n.url, { group: GROUP, key }, { deadline: Date.now() + opts.timeoutMs });
        versions.push(a.kind === 'record' ? String(a.record.version) : `${h}=${a.kind}`);
      } catch (e) {
        versions.push(`${h}=${(e as Error).name}`);
      }
    }
    return versions;
  }
}

/** Each holder's own copy of a key under the stored table (`node-1: value v123`), for reports. */
export async function holderCopies(cluster: ChaosCluster, key: string, timeoutMs: number): Promise<string> {
  try {
    const table = await cluster.table();
    const byId = new Map(cluster.nodes.map((n) => [n.id, n]));
    const copies = await Promise.all(
      holdersOf(table, partitionOf(key, table.partitionCount)).map(async (id) => {
        const n = byId.get(id);
        if (n === undefined || !n.serving()) return `${id}: offline`;
        try {
          const a = await callPeer(Record, n.url, { group: GROUP, key, doubtful: true }, { deadline: Date.now() + timeoutMs });
          return `${id}: ${a.kind === 'record' ? `${a.record.value === null ? '(deleted)' : JSON.stringify(a.record.value.toString().slice(0, 40))} v${a.record.version}` : a.kind}`;
        } catch (e) {
          return `${id}: ${(e as Error).name}`;
        }
      }),
    );
    return `table v${table.version} [${copies.join(', ')}]`;
  } catch (e) {
    return `(no table: ${(e as Error).message})`;
  }
}

async function forEachLimit<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

/** A chaos cluster on a private etcd, for a test file's before/after. */
export interface SettledCluster {
  etcd: EtcdCluster;
  cluster: ChaosCluster;
  /** Resume any paused node, stop every node, then etcd. */
  stop(): Promise<void>;
}

/**
 * Start etcd and `nodes` nodes, and wait until every node sees all of them, each owns partitions
 * and no migration is open. Throws (stopping what it started) when that takes over 20 s.
 */
export async function startSettledCluster(opts: { nodes: number; config: Record<string, unknown> }): Promise<SettledCluster> {
  const etcd = await startEtcd();
  let cluster: ChaosCluster | undefined;
  const stop = async (): Promise<void> => {
    for (const n of cluster?.nodes ?? []) n.resume();
    await cluster?.stop();
    await etcd.stop();
  };
  try {
    cluster = await startChaosCluster({ nodes: opts.nodes, etcdEndpoints: etcd.endpoints, config: opts.config });
    const settled = await until(cluster.serving, (i) => i.nodes.length === opts.nodes && new Set(i.partitions.owners).size === opts.nodes && i.migrations.length === 0, 20_000);
    if (settled < 0) throw new Error(`${opts.nodes} nodes did not settle within 20 s`);
    return { etcd, cluster, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Poll every serving node's /cluster until `pred(info)` holds at all of them; returns the ms it took (or -1). */
export async function until(nodes: () => ChaosNode[], pred: (info: any) => boolean, timeoutMs: number, everyMs = 50): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const infos = await Promise.all(
      nodes().map(async (n) => {
        try {
          return await (await fetch(`${n.url}/cluster`, { signal: AbortSignal.timeout(1000) })).json();
        } catch {
          return null;
        }
      }),
    );
    if (infos.length > 0 && infos.every((i) => i !== null && pred(i))) return Date.now() - start;
    await sleep(everyMs);
  }
  return -1;
}
