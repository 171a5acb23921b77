// Zipf(1.1) hot-spot spreading on a real cluster (issue 6): max/mean node QPS before and after
// rebalancing plus hot-key mirroring. bench/scenarios/rebalance.ts computes the same figure by
// simulation in-process; this one measures it on 4 `serve --etcd` nodes.
//
// Set-up: one etcd, 4 nodes, config `load.window: 4s`, the score weighting the request rate alone
// against a small qps capacity (so the score tracks the request rate), `rebalance.enabled: false`
// (this scenario triggers the rebalance itself). Group `zipf` (plain key-value, hot cache off so
// no non-owner copy but a mirror answers a read). Keys key:0..key:N-1 (N = 2000) are written once.
//
// Load: a bounded, fixed-rate generator in this process (RATE GETs/s, keep-alive, at most
// MAX_IN_FLIGHT outstanding: a tick that finds them all busy is counted as dropped, never queued).
// Each GET picks its key by Zipf(1.1) over the N keys (seeded) and its entry node uniformly at
// random, as an unaware client would.
//
// What a node "serves", from the code:
//  - owner-served reads: LocalData.get / cachedHit call the node's onServe hook, which feeds the
//    load monitor; GET /cluster on a node reports its own monitor's windowed `qps` (total
//    operations/s over `load.window`) in its `nodes[]` entry. A read entering a non-owner is
//    forwarded and counted once, at the owner (the entry node does not count it).
//  - mirror-served reads: Router.get answers a key this node does not own from MirrorPlugin's
//    held copy when there is one, without calling onServe; MirrorPlugin counts those in the
//    cumulative `mirrors.hits` of the node's GET /cluster.
//  So served(node) = owner qps + (mirrors.hits delta / seconds). Over a measurement interval of
//  k whole windows [t0, t1], the owner part is the mean of the `qps` read at t0 + w, t0 + 2w, ...,
//  t1 (each covers one window inside the interval, stale by at most one monitor tick) and the
//  mirror part is the hits delta over [t0, t1]. A sanity check compares the served total with
//  the rate this process actually completed (a counting mistake would show as a gap).
//
// "Before": mirroring cannot be switched off (MirrorPlugin's minQps of 20 req/s has no config
// key), and it starts by itself within a second of a key getting hot. So the "before" figure is
// not a measured served rate: it is the load each OWNER would serve with neither mirroring nor
// rebalancing, counted exactly by this process from the requests it completed in the phase-1
// interval, each attributed to its key's owner in the real partition table the cluster served
// (murmur3(key) mod partitionCount, as every node computes it). Phase 1's measured served rates
// (mirroring active, no rebalance yet) are reported too, as zipf.mirror_only.max_over_mean.
//
// Phase 2: POST /cluster/rebalance {strategy: 'load-optimal'} while the load runs (the planner
// reads the owner-served per-partition rates, i.e. what mirroring leaves at the owners); wait
// for every node to serve the new table version with no migration open; one window of the same
// load for the rates to reflect the new table; then the measured interval.
//
// Figures: zipf.before.max_over_mean (reported), zipf.mirror_only.max_over_mean (reported),
// zipf.after.max_over_mean (target <= 1.25), zipf.mirror_share (share of phase-2 reads served by
// mirrors; reported), zipf.rebalance.moves (partitions moved; reported).

import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { seededRandom, zipfSampler } from '../../src/load/zipf.ts';
import { startEtcd, type BenchEtcd } from '../lib/etcd.ts';
import { type Figure, figure } from '../lib/figure.ts';
import { requireJincache, seed, startNode, type JincacheNode } from '../lib/jincache.ts';
import { freePorts } from '../lib/procs.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';

const GROUP = 'zipf';
const NODES = 4;
const KEYS = 2000;
const ZIPF_S = 1.1;
/** Offered GETs per second over the whole cluster. */
const RATE = 600;
/** Load monitor window (config `load.window`), ms. */
const WINDOW_MS = 4000;
const TICK_MS = 50;
/** Outstanding GETs at most: past it a tick's requests are dropped (and counted), never queued. */
const MAX_IN_FLIGHT = 64;
const AFTER_TARGET = 1.25;
/** Largest tolerated gap between the served total the nodes report and the rate completed here. */
const SANITY_GAP = 0.2;

export function keyName(i: number): string {
  return `key:${i}`;
}

/** max / mean of a non-empty list of rates. Pure. */
export function maxOverMean(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('maxOverMean of an empty list');
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return mean === 0 ? 1 : Math.max(...xs) / mean;
}

interface NodeView {
  id: string;
  qps?: number;
}

interface ClusterView {
  self: string;
  ringVersion: number;
  nodes: NodeView[];
  partitions: { owners: (string | null)[] };
  mirrors?: { pushed: number; held: number; hits: number };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });

function request(method: string, url: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function getJson<T>(url: string): Promise<T> {
  const r = await request('GET', url);
  if (r.status !== 200) throw new Error(`GET ${url} answered ${r.status}: ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body) as T;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    signal?.throwIfAborted();
    if (await check().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Every node on one table version >= `atLeast` with `count` owners, and no migration open. */
async function settled(nodes: readonly JincacheNode[], count: number, atLeast: number): Promise<ClusterView | null> {
  const views = await Promise.all(nodes.map((n) => getJson<ClusterView>(`${n.url}/cluster`)));
  const first = views[0]!;
  if (first.ringVersion < atLeast || views.some((v) => v.ringVersion !== first.ringVersion)) return null;
  if (new Set(first.partitions.owners).size !== count || first.partitions.owners.includes(null)) return null;
  const lists = await Promise.all(nodes.map((n) => getJson<{ migrations: { state: string }[] }>(`${n.url}/cluster/migrations`)));
  if (lists.some((l) => l.migrations.some((m) => m.state === 'running' || m.state === 'cancelling'))) return null;
  return first;
}

async function waitSettled(nodes: readonly JincacheNode[], atLeast: number, timeoutMs: number, signal?: AbortSignal): Promise<ClusterView> {
  let view: ClusterView | null = null;
  await waitUntil(`${nodes.length} nodes on one table version >= ${atLeast} with no open migration`, async () => (view = await settled(nodes, nodes.length, atLeast)) !== null, timeoutMs, signal);
  return view!;
}

/**
 * The fixed-rate Zipf GET generator. Runs until stop(); completed reads are counted per key rank
 * so any interval's per-owner load can be computed against any table.
 */
class ZipfLoad {
  private readonly nodes: readonly JincacheNode[];
  private readonly sample: () => number;
  private readonly pick: () => number;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  /** Completed OK reads per key rank since the last take(). */
  private perKey = new Float64Array(KEYS);
  ok = 0;
  failed = 0;
  dropped = 0;
  lastError = '';

  constructor(nodes: readonly JincacheNode[], seedValue: number) {
    this.nodes = nodes;
    this.sample = zipfSampler(KEYS, ZIPF_S, seededRandom(seedValue));
    const r = seededRandom(seedValue ^ 0x5bd1e995);
    this.pick = () => Math.floor(r() * nodes.length);
  }

  start(): void {
    // owed by elapsed time, not per tick: a late timer (busy 2-core machine) must not lower the rate
    let last = Date.now();
    let owed = 0;
    this.timer = setInterval(() => {
      const now = Date.now();
      owed += ((now - last) * RATE) / 1000;
      last = now;
      for (; owed >= 1; owed--) {
        if (this.inFlight >= MAX_IN_FLIGHT) {
          this.dropped++;
          continue;
        }
        const rank = this.sample();
        const node = this.nodes[this.pick()]!;
        this.inFlight++;
        request('GET', `${node.url}/api/${GROUP}/${keyName(rank)}`).then(
          (r) => {
            this.inFlight--;
            if (r.status === 200) {
              this.ok++;
              this.perKey[rank]!++;
            } else {
              this.failed++;
              this.lastError = `status ${r.status}: ${r.body.slice(0, 120)}`;
            }
          },
          (e: Error) => {
            this.inFlight--;
            this.failed++;
            this.lastError = e.message;
          },
        );
      }
    }, TICK_MS);
  }

  /** Completed reads per key rank since the previous take(), and resets the counts. */
  take(): Float64Array {
    const out = this.perKey;
    this.perKey = new Float64Array(KEYS);
    return out;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    // bounded drain: outstanding requests time out after 10 s at most
    const end = Date.now() + 11_000;
    while (this.inFlight > 0 && Date.now() < end) await sleep(20);
  }
}

interface Interval {
  seconds: number;
  /** Node id -> owner-served reads/s (mean of the node's own window rates). */
  owner: Map<string, number>;
  /** Node id -> mirror-served reads/s. */
  mirror: Map<string, number>;
  /** Reads per key rank completed by the generator in the interval. */
  perKey: Float64Array;
  /** The table in force at the end of the interval. */
  owners: (string | null)[];
}

/** Measures `windows` whole load windows while the generator runs (see the file comment). */
async function measure(nodes: readonly JincacheNode[], load: ZipfLoad, windows: number, signal?: AbortSignal): Promise<Interval> {
  const own = (v: ClusterView): NodeView => v.nodes.find((n) => n.id === v.self) ?? { id: v.self };
  const snap = () => Promise.all(nodes.map((n) => getJson<ClusterView>(`${n.url}/cluster`)));
  const first = await snap();
  load.take();
  const t0 = Date.now();
  const owner = new Map<string, number>();
  let last = first;
  for (let i = 1; i <= windows; i++) {
    signal?.throwIfAborted();
    const wait = t0 + i * WINDOW_MS - Date.now();
    if (wait > 0) await sleep(wait);
    last = await snap();
    for (const v of last) owner.set(v.self, (owner.get(v.self) ?? 0) + (own(v).qps ?? 0) / windows);
  }
  const perKey = load.take();
  const seconds = (Date.now() - t0) / 1000;
  const mirror = new Map<string, number>();
  for (let i = 0; i < nodes.length; i++) {
    const delta = (last[i]!.mirrors?.hits ?? 0) - (first[i]!.mirrors?.hits ?? 0);
    mirror.set(last[i]!.self, delta / seconds);
  }
  return { seconds, owner, mirror, perKey, owners: last[0]!.partitions.owners };
}

/** Reads/s each owner would serve with no mirrors: the completed reads attributed by the table. */
function offeredPerOwner(iv: Interval, ids: readonly string[]): number[] {
  const per = new Map(ids.map((id) => [id, 0]));
  for (let r = 0; r < KEYS; r++) {
    const n = iv.perKey[r]!;
    if (n === 0) continue;
    const id = iv.owners[partitionOf(keyName(r), iv.owners.length)] ?? '';
    per.set(id, (per.get(id) ?? 0) + n / iv.seconds);
  }
  return ids.map((id) => per.get(id) ?? 0);
}

function served(iv: Interval, ids: readonly string[]): { total: number[]; mirror: number[] } {
  const mirror = ids.map((id) => iv.mirror.get(id) ?? 0);
  return { total: ids.map((id, i) => (iv.owner.get(id) ?? 0) + mirror[i]!), mirror };
}

/** Served reads must account for the reads completed here: otherwise the counting is wrong. */
function checkServed(phase: string, total: readonly number[], iv: Interval): void {
  const sum = total.reduce((a, b) => a + b, 0);
  const completed = iv.perKey.reduce((a, b) => a + b, 0) / iv.seconds;
  if (Math.abs(sum - completed) > SANITY_GAP * completed) {
    throw new Error(`${phase}: the nodes report ${sum.toFixed(0)} served reads/s but ${completed.toFixed(0)}/s completed: the served count is off`);
  }
}

const fmt = (xs: readonly number[]): string => xs.map((x) => x.toFixed(0)).join(' / ');

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  requireJincache();
  const log = opts.log ?? (() => {});
  const windows = opts.quick ? 2 : 3;
  const dir = mkdtempSync(join(tmpdir(), 'jincache-bench-zipf-'));
  let etcd: BenchEtcd | null = null;
  const nodes: JincacheNode[] = [];
  let load: ZipfLoad | null = null;
  try {
    etcd = await startEtcd(log);
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      [
        'etcd: { lease_ttl: 2s }',
        // the score is the request rate against a small capacity: the generator's load dominates it
        `load: { window: ${WINDOW_MS / 1000}s, capacity: { qps: 400 }, score_weights: { qps: 1, storage: 0, memory: 0, cpu: 0, network: 0 } }`,
        'rebalance: { enabled: false }',
        'groups:',
        `  - { name: ${GROUP}, hot_cache_fraction: 0 }`,
        '',
      ].join('\n'),
    );
    const extraArgs = ['--etcd', etcd.endpoint, '--config', config];
    const ports = await freePorts(NODES);
    const started = await Promise.allSettled(ports.map((port, i) => startNode({ id: `n${i + 1}`, port }, { extraArgs })));
    for (const r of started) if (r.status === 'fulfilled') nodes.push(r.value);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    nodes.sort((x, y) => x.spec.id.localeCompare(y.spec.id));
    const ids = nodes.map((n) => n.spec.id);
    const initial = await waitSettled(nodes, 1, 30_000, opts.signal);

    log(`  writing ${KEYS} keys`);
    const value = Buffer.alloc(100, 'z');
    await seed(nodes[0]!.url, Array.from({ length: KEYS }, (_, i) => `/api/${GROUP}/${keyName(i)}`), value);

    opts.signal?.throwIfAborted();
    load = new ZipfLoad(nodes, 0x21bf);
    load.start();
    // one window for the rates (and mirroring) to reach the steady state
    await sleep(WINDOW_MS);
    log(`  phase 1: ${RATE} GETs/s, Zipf(${ZIPF_S}) over ${KEYS} keys, ${windows} windows of ${WINDOW_MS / 1000} s (table v${initial.ringVersion})`);
    const p1 = await measure(nodes, load, windows, opts.signal);
    const before = offeredPerOwner(p1, ids);
    const s1 = served(p1, ids);
    log(`  before (owner load without mirrors): ${fmt(before)} req/s, max/mean ${maxOverMean(before).toFixed(2)}`);
    log(`  phase 1 served (owner + mirror, no rebalance): ${fmt(s1.total)} req/s (mirror ${fmt(s1.mirror)}), max/mean ${maxOverMean(s1.total).toFixed(2)}`);
    checkServed('phase 1', s1.total, p1);

    opts.signal?.throwIfAborted();
    const rb = await request('POST', `${nodes[0]!.url}/cluster/rebalance`, JSON.stringify({ strategy: 'load-optimal', dryRun: false }));
    if (rb.status !== 200) throw new Error(`POST /cluster/rebalance answered ${rb.status}: ${rb.body.slice(0, 300)}`);
    const answer = JSON.parse(rb.body) as { applied: boolean; ringVersion: number; moves: unknown[]; reason?: string };
    log(`  rebalance: applied ${answer.applied}, ${answer.moves.length} moves, table v${answer.ringVersion}${answer.reason ? ` (${answer.reason})` : ''}`);
    const t0 = Date.now();
    const after = await waitSettled(nodes, answer.applied ? answer.ringVersion : initial.ringVersion, 60_000, opts.signal);
    log(`  migration committed in ${((Date.now() - t0) / 1000).toFixed(1)} s (table v${after.ringVersion})`);
    await sleep(WINDOW_MS);

    log(`  phase 2: the same load, ${windows} windows`);
    const p2 = await measure(nodes, load, windows, opts.signal);
    await load.stop();
    const s2 = served(p2, ids);
    const sum2 = s2.total.reduce((a, b) => a + b, 0);
    const mirrorSum = s2.mirror.reduce((a, b) => a + b, 0);
    const completed = p2.perKey.reduce((a, b) => a + b, 0) / p2.seconds;
    log(`  after served (owner + mirror): ${fmt(s2.total)} req/s (mirror ${fmt(s2.mirror)}), max/mean ${maxOverMean(s2.total).toFixed(2)}`);
    log(`  generator: ${load.ok} ok, ${load.failed} failed, ${load.dropped} dropped; phase 2 completed ${completed.toFixed(0)} req/s, nodes served ${sum2.toFixed(0)} req/s`);
    if (load.failed > load.ok * 0.01) throw new Error(`${load.failed} of ${load.ok + load.failed} GETs failed (last: ${load.lastError})`);
    checkServed('phase 2', s2.total, p2);
    return [
      figure({ name: 'zipf.before.max_over_mean', unit: 'ratio', ours: round3(maxOverMean(before)) }),
      figure({ name: 'zipf.mirror_only.max_over_mean', unit: 'ratio', ours: round3(maxOverMean(s1.total)) }),
      figure({ name: 'zipf.after.max_over_mean', unit: 'ratio', ours: round3(maxOverMean(s2.total)), target: { kind: 'value<=', value: AFTER_TARGET } }),
      figure({ name: 'zipf.mirror_share', unit: 'ratio', ours: round3(sum2 > 0 ? mirrorSum / sum2 : 0) }),
      figure({ name: 'zipf.rebalance.moves', unit: 'partitions', ours: answer.moves.length }),
    ];
  } finally {
    await load?.stop();
    await Promise.all(nodes.map((x) => x.proc.stop()));
    await etcd?.stop();
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
