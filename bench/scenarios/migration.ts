// Migration throughput (issue 5): 3 jincache nodes on a private etcd hold N 100-byte entries
// (memory engine, replication factor 2); a 4th node joins and the leader moves its share to it
// with a warm handoff. Reported: keys/s moved (entries copied / time from the migration record's
// creation to its commit, both taken from GET /cluster/migrations), and the hit rate of reads
// right after the join (a loader group whose origin counts loads: every read answered without
// the origin is a hit).
//
// Not measured here yet: the LevelDB engine (issue 5 item 5) and Redis Cluster's
// `redis-cli --cluster rebalance` peer; both are reported as missing rather than guessed.

import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { type Figure, figure } from '../lib/figure.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';
import { ScenarioSkipped } from '../lib/scenario.ts';
import { freePorts, startProcess, stopAll, waitForHttp, type Proc } from '../lib/procs.ts';
import { startNode, type JincacheNode } from '../lib/jincache.ts';

export type { Figure };

const ETCD_BIN = '/usr/bin/etcd';
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });

function request(method: 'GET' | 'PUT', url: string, body?: string): Promise<{ status: number; cache: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const r = http.request({ host: u.hostname, port: u.port, path: u.pathname, method, agent, headers: body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, cache: res.headers['x-cache'] as string | undefined, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    r.setTimeout(10_000, () => r.destroy(new Error(`${method} ${url} timed out`)));
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

async function startEtcd(dir: string): Promise<{ proc: Proc; endpoint: string }> {
  const [client, peer] = await freePorts(2);
  const curl = `http://127.0.0.1:${client}`;
  const purl = `http://127.0.0.1:${peer}`;
  const proc = startProcess({
    name: 'etcd',
    command: ETCD_BIN,
    args: ['--name', 'default', '--data-dir', join(dir, 'etcd'), '--listen-client-urls', curl, '--advertise-client-urls', curl, '--listen-peer-urls', purl, '--initial-advertise-peer-urls', purl, '--initial-cluster', `default=${purl}`, '--logger=zap', '--log-level=warn', '--unsafe-no-fsync'],
  });
  await waitForHttp(`${curl}/health`, { proc, timeoutMs: 20_000 });
  return { proc, endpoint: `127.0.0.1:${client}` };
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    signal?.throwIfAborted();
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function cluster(url: string): Promise<{ ringVersion: number; partitions: { owners: string[] }; migrations: unknown[] }> {
  return JSON.parse((await request('GET', `${url}/cluster`)).body) as never;
}

async function settled(nodes: readonly JincacheNode[], count: number): Promise<boolean> {
  const infos = await Promise.all(nodes.map((n) => cluster(n.url)));
  return new Set(infos.map((i) => i.ringVersion)).size === 1 && new Set(infos[0]!.partitions.owners).size === count && infos.every((i) => i.migrations.length === 0);
}

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  if (!existsSync(ETCD_BIN)) throw new ScenarioSkipped(`${ETCD_BIN} is not installed (Debian etcd-server)`);
  const log = opts.log ?? (() => {});
  const keys = opts.quick ? 20_000 : 100_000;
  const dir = mkdtempSync(join(tmpdir(), 'jincache-bench-migration-'));
  let loads = 0;
  const origin = http.createServer((req, res) => {
    loads++;
    res.end(`origin:${req.url}`);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  try {
    const etcd = await startEtcd(dir);
    const config = join(dir, 'config.yaml');
    writeFileSync(config, [
      'etcd: { lease_ttl: 2s }',
      'groups:',
      `  - { name: users, loader: { url: "http://127.0.0.1:${(origin.address() as AddressInfo).port}/{key}" } }`,
      'migration: { batch_size: 1000, concurrency: 4 }',
      '',
    ].join('\n'));
    const extraArgs = ['--etcd', etcd.endpoint, '--config', config];
    const ports = await freePorts(4);
    const nodes: JincacheNode[] = [];
    for (let i = 0; i < 3; i++) nodes.push(await startNode({ id: `n${i + 1}`, port: ports[i]! }, { extraArgs }));
    await waitUntil('3 nodes settled', () => settled(nodes, 3), 30_000, opts.signal);
    log(`seeding ${keys} keys`);
    await pool(keys, 64, async (i) => {
      const res = await request('PUT', `${nodes[i % 3]!.url}/api/users/k${i}`, value(i));
      if (res.status !== 204) throw new Error(`seed PUT answered ${res.status}`);
    });
    opts.signal?.throwIfAborted();
    log('joining n4');
    nodes.push(await startNode({ id: 'n4', port: ports[3]! }, { extraArgs }));
    await waitUntil('n4 joined and the migration committed', () => settled(nodes, 4), 120_000, opts.signal);
    const sample = opts.quick ? 5000 : 20_000;
    let hits = 0;
    const loadsBefore = loads;
    await pool(sample, 32, async (n) => {
      const i = (n * 7919) % keys;
      const res = await request('GET', `${nodes[n % 4]!.url}/api/users/k${i}`);
      if (res.status === 200 && res.cache !== 'load' && res.body === value(i)) hits++;
    });
    const list = JSON.parse((await request('GET', `${nodes[0]!.url}/cluster/migrations`)).body) as {
      migrations: { kind: string; state: string; members: string[]; createdAt: number; committedAt: number | null; entries: { done: number } }[];
    };
    const join4 = list.migrations.find((m) => m.kind === 'prepare' && m.state === 'done' && m.members.includes('n4'));
    if (join4 === undefined || join4.committedAt === null) throw new Error('no committed join migration listed');
    const seconds = Math.max(0.001, (join4.committedAt - join4.createdAt) / 1000);
    const rate = join4.entries.done / seconds;
    log(`moved ${join4.entries.done} entries in ${seconds.toFixed(2)} s; hit rate ${(hits / sample).toFixed(4)}; origin loads ${loads - loadsBefore}`);
    return [
      figure({ name: 'migration.join.keys_per_s', unit: 'keys/s', ours: Math.round(rate), target: { kind: 'value>=', value: 250_000 } }),
      figure({ name: 'migration.join.seconds', unit: 's', ours: Math.round(seconds * 100) / 100 }),
      figure({ name: 'migration.join.hit_rate', unit: 'ratio', ours: hits / sample, target: { kind: 'value>=', value: 0.99 } }),
    ];
  } finally {
    await stopAll();
    agent.destroy();
    await new Promise<void>((r) => origin.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
}
