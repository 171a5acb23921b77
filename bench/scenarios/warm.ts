// Warm hit rate right after a node joins (issue 8 scenario 7), against the share of the cache a
// groupcache-style cache would lose on the same join.
//
//  - ours: 3 jincache nodes on a private etcd (memory engine, replication factor 2) with a
//    loader group `warm` whose origin is a tiny node:http server in this process that counts
//    every load. N keys are read once through their owners, so every key is loaded from the
//    origin once and cached by its owner. A 4th node joins; once its migration has committed
//    (GET /cluster/migrations lists none open, every node serves the same new ring version with
//    4 owners), every key is read once more through a random node of the 4 and the origin loads
//    are counted again: warm.join.hit_rate = 1 - loads / N (target >= 99%).
//  - peer: a groupcache-style cache has no migration: a key whose owner changed on the join is
//    a miss at its new owner and is loaded from the origin again. Its hit rate is therefore
//    1 - (share of keys whose owner changed), the share computed per key from the partition
//    tables just before and after the join (GET /cluster partitions.owners; a key's partition is
//    murmur3(key) mod partitionCount, as every node computes it). This is the very same join,
//    table and key set, with migration taken away; it is not a run of groupcache itself (a Go
//    library: there is no groupcache server to start), and it is a lower bound on what
//    groupcache would lose, since its consistent-hash ring moves at least as many keys as the
//    partition table (bench/scenarios/placement.ts).
//
// The group's hot cache (copies of values owned elsewhere, SPEC `hot_cache_fraction`) is turned
// off, so that a hit after the join can only come from the key's owner: otherwise the first
// round's reads would leave copies on non-owners that answer the second round whatever the
// migration did. Groupcache's hot cache would likewise keep at most some keys for the nodes
// that read them, and the peer figure ignores it too.
//
// Figures: warm.join.hit_rate (ours, peer = the groupcache-style hit rate; target >= 0.99 on
// our value), warm.join.cold_share (the share of keys each side had to reload: ours = loads / N,
// peer = owner-changed share; reported), warm.join.seconds (time from the 4th node's start to
// the committed migration; reported).

import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { startEtcd, type BenchEtcd } from '../lib/etcd.ts';
import { type Figure, figure } from '../lib/figure.ts';
import { requireJincache, startNode, type JincacheNode } from '../lib/jincache.ts';
import { freePorts } from '../lib/procs.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';

const GROUP = 'warm';
const HIT_RATE_TARGET = 0.99;
/** Concurrent reads in flight: enough to keep 4 nodes busy without queueing seconds. */
const CONCURRENCY = 32;

/**
 * Keys loaded before the join: full 20k, quick 3k. The first round is the slow part (every read
 * is a miss that goes on to the origin: a few hundred to a thousand reads/s on the busy 2-core
 * bench machine); 20k keys resolve the hit rate to 0.005%, well inside the 1% the target leaves.
 */
export function defaultKeys(quick: boolean): number {
  return quick ? 3_000 : 20_000;
}

export function keyName(i: number): string {
  return `w${String(i).padStart(7, '0')}`;
}

/** The origin's value for a key: 100 bytes, derived from the key so a wrong answer shows. */
export function originValue(key: string): string {
  const head = `origin:${key}:`;
  return head + 'o'.repeat(Math.max(0, 100 - head.length));
}

/**
 * Share of `keys` whose owner (first holder) differs between two owner lists of one partition
 * table (index = partition). Pure.
 */
export function ownerChangedShare(keys: readonly string[], before: readonly (string | null)[], after: readonly (string | null)[]): number {
  if (before.length !== after.length || before.length === 0) {
    throw new Error(`owner lists must have the same, non-zero length. Got: ${before.length} and ${after.length}`);
  }
  if (keys.length === 0) return 0;
  let moved = 0;
  for (const k of keys) {
    const p = partitionOf(k, before.length);
    if (before[p] !== after[p]) moved++;
  }
  return moved / keys.length;
}

interface ClusterView {
  ringVersion: number;
  partitions: { owners: (string | null)[] };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 });

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

async function getJson<T>(url: string): Promise<T> {
  const r = await get(url);
  if (r.status !== 200) throw new Error(`GET ${url} answered ${r.status}: ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body) as T;
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    signal?.throwIfAborted();
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** True when every node serves the same table version (above `after`), with `count` owners, and no migration is open. */
async function settled(nodes: readonly JincacheNode[], count: number, after: number): Promise<ClusterView | null> {
  const views = await Promise.all(nodes.map((n) => getJson<ClusterView>(`${n.url}/cluster`)));
  const first = views[0]!;
  if (first.ringVersion <= after || views.some((v) => v.ringVersion !== first.ringVersion)) return null;
  if (new Set(first.partitions.owners).size !== count || first.partitions.owners.includes(null)) return null;
  const lists = await Promise.all(nodes.map((n) => getJson<{ migrations: { state: string }[] }>(`${n.url}/cluster/migrations`)));
  if (lists.some((l) => l.migrations.some((m) => m.state === 'running' || m.state === 'cancelling'))) return null;
  return first;
}

async function waitSettled(nodes: readonly JincacheNode[], count: number, after: number, timeoutMs: number, signal?: AbortSignal): Promise<ClusterView> {
  let view: ClusterView | null = null;
  await waitUntil(
    `${count} nodes on one table version above ${after} with no open migration`,
    async () => (view = await settled(nodes, count, after)) !== null,
    timeoutMs,
    signal,
  );
  return view!;
}

/** Reads every key once through the node `via` picks; throws on a wrong or failed answer. */
async function readAll(via: (key: string) => JincacheNode, keys: readonly string[], signal?: AbortSignal): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      signal?.throwIfAborted();
      const key = keys[next++]!;
      const node = via(key);
      const r = await get(`${node.url}/api/${GROUP}/${key}`);
      if (r.status !== 200 || r.body !== originValue(key)) {
        throw new Error(`GET ${node.url}/api/${GROUP}/${key} answered ${r.status} with ${JSON.stringify(r.body.slice(0, 80))}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, keys.length) }, worker));
}

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  requireJincache();
  const log = opts.log ?? (() => {});
  const n = defaultKeys(opts.quick);
  const keys = Array.from({ length: n }, (_, i) => keyName(i));
  const dir = mkdtempSync(join(tmpdir(), 'jincache-bench-warm-'));
  let loads = 0;
  const origin = http.createServer((req, res) => {
    loads++;
    const key = decodeURIComponent((req.url ?? '/').slice(1));
    res.end(originValue(key));
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  let etcd: BenchEtcd | null = null;
  const nodes: JincacheNode[] = [];
  try {
    etcd = await startEtcd(log);
    const originPort = (origin.address() as AddressInfo).port;
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      [
        // A short lease so a node that dies is noticed quickly (nothing dies here; it bounds a hang).
        'etcd: { lease_ttl: 2s }',
        'groups:',
        `  - { name: ${GROUP}, hot_cache_fraction: 0, loader: { url: "http://127.0.0.1:${originPort}/{key}" } }`,
        '',
      ].join('\n'),
    );
    const extraArgs = ['--etcd', etcd.endpoint, '--config', config];
    const ports = await freePorts(4);
    // Started together (each waits for its own /health): sequential starts cost seconds for nothing.
    const started = await Promise.allSettled([0, 1, 2].map((i) => startNode({ id: `n${i + 1}`, port: ports[i]! }, { extraArgs })));
    for (const r of started) if (r.status === 'fulfilled') nodes.push(r.value);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    nodes.sort((x, y) => x.spec.id.localeCompare(y.spec.id));
    const three = await waitSettled(nodes, 3, 0, 30_000, opts.signal);

    // The first round goes straight to each key's owner: it only has to fill the cache, and a
    // forwarding hop per miss would double its cost (it is most of this scenario's time).
    const byId = new Map(nodes.map((x) => [x.spec.id, x]));
    const ownerOf = (key: string): JincacheNode => {
      const id = three.partitions.owners[partitionOf(key, three.partitions.owners.length)];
      return byId.get(id ?? '') ?? nodes[0]!;
    };
    log(`  reading ${n} keys once through their owners (origin loads them)`);
    await readAll(ownerOf, keys, opts.signal);
    const firstLoads = loads;
    // Every key is loaded once by its owner (concurrent misses of one key are coalesced); more
    // means the cache did not keep what it loaded, and the figure below would be meaningless.
    if (firstLoads < n) throw new Error(`the origin saw ${firstLoads} loads for ${n} distinct keys: a key was answered without loading`);
    log(`  first round: ${firstLoads} origin loads for ${n} keys`);
    const before = await getJson<ClusterView>(`${nodes[0]!.url}/cluster`);

    opts.signal?.throwIfAborted();
    log('  joining n4');
    const t0 = Date.now();
    nodes.push(await startNode({ id: 'n4', port: ports[3]! }, { extraArgs }));
    const after = await waitSettled(nodes, 4, Math.max(three.ringVersion, before.ringVersion), 120_000, opts.signal);
    const joinSec = (Date.now() - t0) / 1000;
    const coldShare = ownerChangedShare(keys, before.partitions.owners, after.partitions.owners);
    log(`  n4 joined, migration committed in ${joinSec.toFixed(1)} s (ring ${before.ringVersion} -> ${after.ringVersion}); owner changed for ${(coldShare * 100).toFixed(1)}% of keys`);

    const loads0 = loads;
    // The measured round: every key through a random node of the 4, as an unaware client would.
    await readAll(() => nodes[Math.floor(Math.random() * nodes.length)]!, keys, opts.signal);
    const reloads = loads - loads0;
    const hitRate = 1 - reloads / n;
    log(`  second round: ${reloads} origin loads for ${n} keys: hit rate ${(hitRate * 100).toFixed(2)}% (groupcache-style: ${((1 - coldShare) * 100).toFixed(2)}%)`);
    return [
      figure({ name: 'warm.join.hit_rate', unit: 'ratio', ours: hitRate, peer: 1 - coldShare, target: { kind: 'value>=', value: HIT_RATE_TARGET } }),
      figure({ name: 'warm.join.cold_share', unit: 'ratio', ours: reloads / n, peer: coldShare }),
      figure({ name: 'warm.join.seconds', unit: 's', ours: Math.round(joinSec * 100) / 100 }),
    ];
  } finally {
    await Promise.all(nodes.map((x) => x.proc.stop()));
    await etcd?.stop();
    agent.destroy();
    await new Promise<void>((r) => origin.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
}
