// Migration throughput (issues 5 and 8, scenario 3): 3 jincache nodes on etcd hold N 100-byte
// entries (replication factor 2); a 4th node joins and the leader moves its share to it with a
// warm handoff. Measured once per storage engine (memory, leveldb), then Redis Cluster's
// `redis-cli --cluster rebalance` moving the same number of keys to a new empty master, in the
// same run (quick: 100k keys, full: 1M).
//
// keys/s = entries actually copied to the new node (the migration's own progress counters,
// cross-checked against what the new node holds) / time from the migration record's creation
// (the leader planned the table change) to its commit (the new table in force), both stamped by
// the leader and read from GET /cluster/migrations. Hit rate: reads right after the commit of a
// sample of keys through every node, with a loader group whose origin counts loads (every read
// answered without the origin and with the seeded value is a hit).
//
// Seeding writes each key's record straight to its owner and backup (the Replicate peer message,
// 5000 records a request): the same state a client PUT leaves behind (value + version at every
// holder), in seconds instead of minutes for 1M keys. Seeding is not timed.

import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { decodeTable, type PartitionTable } from '../../src/core/placement/table.ts';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { LOGICAL_BITS } from '../../src/core/version.ts';
import type { WireRecord } from '../../src/peer/codec.ts';
import { Replicate } from '../../src/peer/messages.ts';
import { type Figure, figure } from '../lib/figure.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';
import { startEtcd, type BenchEtcd } from '../lib/etcd.ts';
import { freePorts } from '../lib/procs.ts';
import { startNode, type JincacheNode } from '../lib/jincache.ts';
import { ensureRedis } from '../lib/deps.ts';
import { measureRedisClusterRebalance } from './redis-cluster-migration.ts';

export type { Figure };

const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
const GROUP = 'users';

interface Reply {
  status: number;
  cache: string | undefined;
  body: string;
}

function request(method: 'GET' | 'PUT' | 'POST', url: string, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const r = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, agent, headers: body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, cache: res.headers['x-cache'] as string | undefined, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    r.setTimeout(30_000, () => r.destroy(new Error(`${method} ${url} timed out`)));
    r.on('error', reject);
    r.end(body);
  });
}

async function pool(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) await fn(next++);
  }));
}

function value(i: number): string {
  const head = `v:${i}:`;
  return head + 'x'.repeat(100 - head.length);
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, signal?: AbortSignal, everyMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    signal?.throwIfAborted();
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface ClusterInfo {
  ringVersion: number;
  partitions: { owners: string[] };
  migrations: unknown[];
  nodes: { id: string; entries?: number }[];
}

async function cluster(url: string): Promise<ClusterInfo> {
  return JSON.parse((await request('GET', `${url}/cluster`)).body) as ClusterInfo;
}

async function settled(nodes: readonly JincacheNode[], count: number): Promise<boolean> {
  const infos = await Promise.all(nodes.map((n) => cluster(n.url)));
  return new Set(infos.map((i) => i.ringVersion)).size === 1 && new Set(infos[0]!.partitions.owners).size === count && infos.every((i) => i.migrations.length === 0);
}

/** Writes every key to its holders in the table in force (see the file comment). */
async function seed(nodes: readonly JincacheNode[], keys: number, signal?: AbortSignal): Promise<void> {
  const table: PartitionTable = decodeTable((await request('GET', `${nodes[0]!.url}/cluster/table`)).body);
  const urlOf = new Map(nodes.map((n) => [n.spec.id, n.url]));
  const perNode = new Map<string, WireRecord[]>();
  const version = Date.now() * LOGICAL_BITS;
  const sends: { url: string; body: Buffer }[] = [];
  const flush = (id: string, list: WireRecord[]): void => {
    sends.push({ url: `${urlOf.get(id)}/_jincache/replicate`, body: Replicate.encodeRequest(list) });
    perNode.set(id, []);
  };
  for (let i = 0; i < keys; i++) {
    const key = `k${i}`;
    const rec: WireRecord = { group: GROUP, key, value: Buffer.from(value(i)), version: version + i, expiresAt: 0 };
    for (const id of table.assignments[partitionOf(key, table.partitionCount)] ?? []) {
      let list = perNode.get(id);
      if (list === undefined) perNode.set(id, (list = []));
      list.push(rec);
      if (list.length >= 5000) flush(id, list);
    }
  }
  for (const [id, list] of perNode) if (list.length > 0) flush(id, list);
  await pool(sends.length, 6, async (i) => {
    signal?.throwIfAborted();
    const s = sends[i]!;
    const res = await request('POST', s.url, s.body);
    if (res.status !== 200) throw new Error(`seeding ${s.url} answered ${res.status}: ${res.body.slice(0, 200)}`);
  });
}

/** CPU seconds (user + system) a process has used so far; 0 when /proc is not readable. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}

export interface JoinMeasure {
  engine: 'memory' | 'leveldb';
  keys: number;
  /** Entries copied to the joining node (the migration's counters). */
  moved: number;
  /** Entries the joining node holds after the commit (cross-check of `moved`). */
  held: number;
  /** Plan (record created) to commit, seconds. */
  seconds: number;
  keysPerSec: number;
  hitRate: number;
  originLoads: number;
}

/**
 * One join: etcd prefix of its own, 3 nodes seeded with `keys` entries, a 4th node joins; stops
 * its nodes before returning.
 */
export async function measureJoin(
  engine: 'memory' | 'leveldb',
  keys: number,
  etcd: BenchEtcd,
  opts: ScenarioOptions & { nodeLogLevel?: string; keepLogs?: (logs: string[]) => void; migration?: 'tuned' | 'defaults' } = { quick: false },
): Promise<JoinMeasure> {
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), `jincache-bench-migration-${engine}-`));
  let loads = 0;
  const origin = http.createServer((req, res) => {
    loads++;
    res.end(`origin:${req.url}`);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const nodes: JincacheNode[] = [];
  try {
    const config = join(dir, 'config.yaml');
    // budget: ~2/3 of the entries per node (RF 2 over 3 nodes) at ~250 bytes each, with room
    const cacheBytes = `${Math.max(64, Math.ceil((keys * 500) / 2 ** 20))}MiB`;
    writeFileSync(config, [
      // a lease long enough to ride out the stalls of a shared 2-core host while seeding: the
      // join measured must be the only membership change
      `etcd: { lease_ttl: 10s, prefix: /bench-${engine}-${Date.now().toString(36)} }`,
      'groups:',
      `  - { name: ${GROUP}, cache_bytes: ${cacheBytes}, loader: { url: "http://127.0.0.1:${(origin.address() as AddressInfo).port}/{key}" } }`,
      // tuned: large batches by bytes, several in flight per receiver; defaults: what a user
      // who sets nothing gets (batch_size 10000, batch_bytes 1 MiB, concurrency 2; SPEC §5's
      // batch_size is 100, see docs/SPEC-CONFORMANCE.md)
      ...(opts.migration === 'defaults' ? [] : ['migration: { batch_size: 100000, batch_bytes: 1MiB, concurrency: 4 }']),
      `storage: { engine: ${engine}, path: "${join(dir, 'data', '{id}')}" }`,
      '',
    ].join('\n'));
    const extraArgs = ['--etcd', etcd.endpoint, '--config', config];
    const ports = await freePorts(4);
    const logLevel = opts.nodeLogLevel ?? 'warn';
    for (let i = 0; i < 3; i++) nodes.push(await startNode({ id: `n${i + 1}`, port: ports[i]! }, { extraArgs, logLevel }));
    await waitUntil('3 nodes settled', () => settled(nodes, 3), 30_000, opts.signal);
    const before = (await cluster(nodes[0]!.url)).ringVersion;
    const t0 = Date.now();
    await seed(nodes, keys, opts.signal);
    // let the seed settle before the join (LevelDB compacts what was just written in background
    // threads; the figure is the migration's, not the seed's)
    await new Promise((r) => setTimeout(r, opts.quick ? 1000 : 4000));
    const after = (await cluster(nodes[0]!.url)).ringVersion;
    if (after !== before) throw new Error(`the partition table changed while seeding (v${before} -> v${after}): a node lost its etcd lease, the run is not a clean join`);
    log(`  ${engine}: seeded ${keys} keys in ${((Date.now() - t0) / 1000).toFixed(1)} s; joining n4`);
    opts.signal?.throwIfAborted();
    const cpuBefore = nodes.map((n) => cpuSeconds(n.proc.pid));
    nodes.push(await startNode({ id: 'n4', port: ports[3]! }, { extraArgs, logLevel }));
    // polled slowly: GET /cluster costs every node some CPU, and the figure comes from the
    // leader's own timestamps, not from when the bench notices
    await waitUntil('n4 joined and the migration committed', () => settled(nodes, 4), 300_000, opts.signal, 250);
    // where the CPU went during the join (n4's figure includes its own start-up)
    const cpu = nodes.map((n, i) => `${n.spec.id} ${(cpuSeconds(n.proc.pid) - (cpuBefore[i] ?? 0)).toFixed(2)}`).join(', ');
    const sample = opts.quick ? 5000 : 20_000;
    let hits = 0;
    const loadsBefore = loads;
    await pool(sample, 32, async (n) => {
      const i = (n * 7919) % keys;
      const res = await request('GET', `${nodes[n % 4]!.url}/api/${GROUP}/k${i}`);
      if (res.status === 200 && res.cache !== 'load' && res.body === value(i)) hits++;
    });
    const list = JSON.parse((await request('GET', `${nodes[0]!.url}/cluster/migrations`)).body) as {
      migrations: { kind: string; state: string; members: string[]; fromVersion: number; createdAt: number; committedAt: number | null; entries: { done: number } }[];
    };
    const join4 = list.migrations.find((m) => m.kind === 'prepare' && m.state === 'done' && m.members.includes('n4'));
    if (join4 === undefined || join4.committedAt === null) throw new Error('no committed join migration listed');
    if (join4.fromVersion !== after) throw new Error(`the join was planned against v${join4.fromVersion}, not the seeded v${after}: the membership changed during the run`);
    const info = await cluster(nodes[3]!.url);
    const held = info.nodes.find((n) => n.id === 'n4')?.entries ?? -1;
    const seconds = Math.max(0.001, (join4.committedAt - join4.createdAt) / 1000);
    const moved = join4.entries.done;
    const m: JoinMeasure = { engine, keys, moved, held, seconds, keysPerSec: moved / seconds, hitRate: hits / sample, originLoads: loads - loadsBefore };
    log(`  ${engine}${opts.migration === 'defaults' ? ' (migration defaults)' : ''}: moved ${moved} entries (n4 holds ${held}) in ${seconds.toFixed(3)} s = ${Math.round(m.keysPerSec)} keys/s; hit rate ${m.hitRate.toFixed(4)}; origin loads ${m.originLoads}; CPU s: ${cpu}`);
    return m;
  } finally {
    await Promise.all(nodes.map((n) => n.proc.stop()));
    opts.keepLogs?.(nodes.map((n) => n.proc.logFile));
    await new Promise<void>((r) => origin.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function prepare(opts: ScenarioOptions): Promise<void> {
  ensureRedis(opts.log);
}

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  const log = opts.log ?? (() => {});
  const keys = opts.quick ? 100_000 : 1_000_000;
  const etcd = await startEtcd(log);
  let mem: JoinMeasure;
  let lvl: JoinMeasure;
  let defaults: JoinMeasure;
  try {
    mem = await measureJoin('memory', keys, etcd, opts);
    opts.signal?.throwIfAborted();
    defaults = await measureJoin('memory', keys, etcd, { ...opts, migration: 'defaults' });
    opts.signal?.throwIfAborted();
    lvl = await measureJoin('leveldb', keys, etcd, opts);
  } finally {
    await etcd.stop();
    agent.destroy();
  }
  opts.signal?.throwIfAborted();
  const redis = await measureRedisClusterRebalance(keys, opts);
  return [
    figure({ name: 'migration.memory.keys_per_s', unit: 'keys/s', ours: Math.round(mem.keysPerSec), target: { kind: 'value>=', value: 250_000 } }),
    // issue 18: what a user who configures nothing gets (SPEC §5 migration defaults)
    figure({ name: 'migration.memory.defaults.keys_per_s', unit: 'keys/s', ours: Math.round(defaults.keysPerSec), target: { kind: 'value>=', value: 250_000 } }),
    figure({ name: 'migration.leveldb.keys_per_s', unit: 'keys/s', ours: Math.round(lvl.keysPerSec), target: { kind: 'value>=', value: 150_000 } }),
    figure({ name: 'migration.vs_redis_cluster', unit: 'keys/s', ours: Math.round(mem.keysPerSec), peer: Math.round(redis.keysPerSec), target: { kind: 'ratio>=', value: 30 } }),
    // the worse of the two engines
    figure({ name: 'migration.hit_rate_after_join', unit: 'ratio', ours: Math.min(mem.hitRate, lvl.hitRate), target: { kind: 'value>=', value: 0.99 } }),
    figure({ name: 'migration.memory.seconds', unit: 's', ours: Math.round(mem.seconds * 1000) / 1000 }),
    figure({ name: 'migration.leveldb.seconds', unit: 's', ours: Math.round(lvl.seconds * 1000) / 1000 }),
    figure({ name: 'migration.keys_moved', unit: 'keys', ours: mem.moved }),
  ];
}
