// Redis Cluster clients (issue 13 "Done when"): ioredis's `Redis.Cluster` GET and SET throughput
// over 3 jincache nodes (static peers, every node's RESP listener answering CLUSTER SLOTS, the
// client routing each key straight to its owner) against the very same client over a 3-master
// Redis Cluster (redis-server --cluster-enabled yes, no replicas, `redis-cli --cluster create`)
// started in the same run. Target: >= 0.8x for both.
//
// Like for like: the peer keeps one copy of each key (no replicas), so the headline figures run
// jincache with `replication.factor: 1`, one copy too. `redis_cluster_client.set.rf2.rps` reports
// jincache's default (factor 2, synchronous replication: every SET waits for the backup) against
// the same peer figure, without a target: the price of the copy Redis Cluster does not keep.
//
// Load: WORKERS concurrent loops in the harness process, each awaiting one command at a time on
// random keys out of KEYS seeded beforehand (100-byte values), so ioredis keeps up to WORKERS
// commands in flight over its one connection per node. The sides run alternately (A B A B), each
// phase for `phaseMs` after a warm-up, and every ratio is the median of per-round ratios. The
// client runs in the harness's process on the same 2 cores as the servers: its own CPU is part of
// both sides' figures, which pulls the ratio towards 1 when the client is the bottleneck.

import { Cluster } from 'ioredis';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Figure } from '../lib/figure.ts';
import { figure, median } from '../lib/figure.ts';
import { ensureRedis } from '../lib/deps.ts';
import { caughtUp, requireJincache, startNode, type JincacheNode, type NodeSpec } from '../lib/jincache.ts';
import { freePorts, stopAll } from '../lib/procs.ts';
import { RedisCluster, benchKeys, fixedValue } from '../lib/redis-cluster.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';

const NODES = 3;
const KEYS = 10_000;
const WORKERS = 50;
const TARGET = 0.8;

interface Mode {
  rounds: number;
  phaseMs: number;
  warmMs: number;
}
const QUICK: Mode = { rounds: 3, phaseMs: 1000, warmMs: 500 };
const FULL: Mode = { rounds: 5, phaseMs: 2500, warmMs: 1000 };

type Op = 'get' | 'set';

/** Commands completed per second by WORKERS loops of `op` for `ms`; any error fails the run. */
export async function throughput(client: Cluster, op: Op, keys: readonly string[], value: Buffer, ms: number): Promise<number> {
  let done = 0;
  let failure: unknown;
  const t0 = performance.now();
  const end = t0 + ms;
  let i = 0;
  const worker = async (): Promise<void> => {
    while (failure === undefined && performance.now() < end) {
      const key = keys[(i = (i + 7919) % keys.length)]!;
      try {
        if (op === 'get') {
          if ((await client.getBuffer(key)) === null) throw new Error(`GET ${key} found nothing after seeding`);
        } else {
          await client.set(key, value);
        }
        done++;
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  if (failure !== undefined) throw failure;
  return done / ((performance.now() - t0) / 1000);
}

async function seed(client: Cluster, keys: readonly string[], value: Buffer): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      while (next < keys.length) await client.set(keys[next++]!, value);
    }),
  );
}

/** A 3-node static jincache cluster, every node with a RESP listener. */
async function startJincache(factor: number): Promise<{ nodes: JincacheNode[]; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'jincache-bench-rcc-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(config, `replication:\n  factor: ${factor}\n`);
  const ports = await freePorts(2 * NODES);
  const specs: NodeSpec[] = Array.from({ length: NODES }, (_, i) => ({ id: `n${i + 1}`, port: ports[i]!, respPort: ports[NODES + i]! }));
  const nodes = await Promise.all(specs.map((s) => startNode(s, { peers: specs, extraArgs: ['--config', config], readyTimeoutMs: 30_000 })));
  await caughtUp(nodes);
  return { nodes, dir };
}

export async function prepare(opts: ScenarioOptions): Promise<void> {
  ensureRedis(opts.log);
}

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  const log = opts.log ?? (() => {});
  requireJincache();
  ensureRedis(log);
  const mode = opts.quick ? QUICK : FULL;
  const keys = benchKeys(KEYS, 'rcc:');
  const value = fixedValue(100);
  const clients: Cluster[] = [];
  const dirs: string[] = [];
  const connect = async (ports: readonly number[]): Promise<Cluster> => {
    const c = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { enableReadyCheck: true });
    clients.push(c);
    await new Promise<void>((resolve, reject) => {
      c.once('ready', resolve);
      c.once('error', reject);
    });
    return c;
  };
  try {
    const peer = await RedisCluster.start({ masters: NODES, replicas: 0, log, signal: opts.signal });
    const peerClient = await connect(peer.nodes.map((n) => n.port));
    const sides: { name: string; client: Cluster }[] = [{ name: 'redis', client: peerClient }];
    for (const factor of [1, 2]) {
      opts.signal?.throwIfAborted();
      const j = await startJincache(factor);
      dirs.push(j.dir);
      sides.push({ name: `jincache-rf${factor}`, client: await connect(j.nodes.map((n) => n.spec.respPort!)) });
      log(`  jincache: ${NODES} nodes, replication.factor ${factor}, RESP on ${j.nodes.map((n) => n.spec.respPort).join(' ')}`);
    }
    for (const s of sides) await seed(s.client, keys, value);
    log(`  seeded ${KEYS} keys on each side; ${WORKERS} workers, ${mode.rounds} rounds of ${mode.phaseMs} ms per side and op`);

    const rates = new Map<string, number[]>();
    const record = (name: string, rate: number) => rates.set(name, [...(rates.get(name) ?? []), rate]);
    for (const op of ['get', 'set'] as const) {
      for (const s of sides) await throughput(s.client, op, keys, value, mode.warmMs);
      for (let r = 0; r < mode.rounds; r++) {
        opts.signal?.throwIfAborted();
        const line: string[] = [];
        for (const s of sides) {
          const rate = await throughput(s.client, op, keys, value, mode.phaseMs);
          record(`${s.name}.${op}`, rate);
          line.push(`${s.name} ${Math.round(rate)}`);
        }
        log(`  ${op.toUpperCase()} round ${r + 1}/${mode.rounds}: ${line.join(' | ')} ops/s`);
      }
    }

    const fig = (name: string, ours: string, op: Op, target: boolean): Figure => {
      const o = rates.get(`${ours}.${op}`)!;
      const p = rates.get(`redis.${op}`)!;
      return figure({
        name,
        unit: 'ops/s',
        ours: median(o),
        peer: median(p),
        ratio: median(o.map((x, i) => x / p[i]!)),
        target: target ? { kind: 'ratio>=', value: TARGET } : null,
      });
    };
    return [
      fig('redis_cluster_client.get.rps', 'jincache-rf1', 'get', true),
      fig('redis_cluster_client.set.rps', 'jincache-rf1', 'set', true),
      fig('redis_cluster_client.get.rf2.rps', 'jincache-rf2', 'get', false),
      fig('redis_cluster_client.set.rf2.rps', 'jincache-rf2', 'set', false),
    ];
  } finally {
    for (const c of clients) c.disconnect();
    await stopAll();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}
