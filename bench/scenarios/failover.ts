// Failover (issue 8 scenario 4): kill -9 of one node under a bounded read/write load, and how
// long until traffic is rerouted and replication restored, and how many requests failed, against
// a Redis Cluster with replicas at an equal node timeout.
//
//  - ours: 5 jincache nodes with etcd membership (lease TTL 2 s, replication.factor 2,
//    heartbeat_interval 500ms), loaded through the cluster-aware JincacheClient (src/client);
//    the victim is a node that is not the elected leader (the common case: 4 in 5);
//  - peer: Redis Cluster, 3 masters + 1 replica each, cluster-node-timeout = the lease TTL (2 s),
//    loaded through ioredis's Cluster client; the victim is a master.
// The same load on both sides: WORKERS concurrent loops, each one request every INTERVAL_MS
// (70% GET, 30% SET of a 100-byte value) on random keys out of KEYS seeded beforehand, each call
// with the same REQUEST_TIMEOUT_MS budget. Figures (from the kill, in ms):
//  - failover.reroute_ms: until the first successful request, started after the kill, for a key
//    the victim owned (the owner per the client's table / the slot map just before the kill);
//  - failover.errors_end_ms: until the end of the last failed request (when errors stop);
//  - failover.restored_ms: ours: until a survivor's /cluster shows the victim gone from the
//    members and from the table, and no partition under-replicated (repairs included): full
//    redundancy again. Redis: until the victim's replica is a master serving its slots with
//    cluster_state:ok. Redis Cluster never re-creates the lost copy in this layout (no spare
//    replica to migrate), so its figure is promotion only, a lower bound that favours the peer;
//  - failover.failed_requests: requests that errored between the kill and the end of the run.
// Reported without targets (issue 8 sets none): the ratios are ours / Redis Cluster.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from 'ioredis';
import { JincacheClient } from '../../src/client/index.ts';
import type { Figure } from '../lib/figure.ts';
import { figure, median } from '../lib/figure.ts';
import { ensureRedis } from '../lib/deps.ts';
import { startEtcd } from '../lib/etcd.ts';
import { requireJincache, startNode, type JincacheNode } from '../lib/jincache.ts';
import { freePorts, stopAll } from '../lib/procs.ts';
import { RedisCluster, benchKeys, fixedValue, keySlot, parseInfo, respText } from '../lib/redis-cluster.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';

const NODES = 5;
const LEASE_TTL_SEC = 2;
const KEYS = 2000;
const WORKERS = 16;
const INTERVAL_MS = 20;
const GET_SHARE = 0.7;
const REQUEST_TIMEOUT_MS = 1000;

export interface FailoverMode {
  rounds: number;
  /** Load before the kill. */
  preKillMs: number;
  /** Longest observation after the kill. */
  maxObserveMs: number;
  /** Load kept up after both reroute and restore were seen, to catch late errors. */
  tailMs: number;
}
const QUICK: FailoverMode = { rounds: 1, preKillMs: 1000, maxObserveMs: 12_000, tailMs: 1000 };
const FULL: FailoverMode = { rounds: 3, preKillMs: 2000, maxObserveMs: 20_000, tailMs: 2000 };

/** One side of the comparison, set up and seeded, ready to be loaded and killed. */
export interface FailoverTarget {
  get(key: string): Promise<void>;
  set(key: string, value: Buffer): Promise<void>;
  /** Keys owned by the victim just before the kill. */
  victimKeys: ReadonlySet<string>;
  /** kill -9 the victim; resolves once it has exited. */
  kill(): Promise<void>;
  /** True once replication is restored (see the file comment); polled after the kill. */
  restored(): Promise<boolean>;
  close(): Promise<void>;
}

export interface RequestRecord {
  /** ms since the kill (negative before it). */
  start: number;
  end: number;
  ok: boolean;
  victim: boolean;
}

export interface FailoverResult {
  rerouteMs: number | null;
  errorsEndMs: number;
  restoredMs: number | null;
  failed: number;
  /** Requests that ended after the kill. */
  total: number;
}

/** Reduces the request log of one run to its figures (times relative to the kill). */
export function summarize(records: readonly RequestRecord[], restoredMs: number | null): FailoverResult {
  let reroute: number | null = null;
  let errorsEnd = 0;
  let failed = 0;
  let total = 0;
  for (const r of records) {
    if (r.end < 0) continue;
    total++;
    if (!r.ok) {
      failed++;
      errorsEnd = Math.max(errorsEnd, r.end);
    } else if (r.victim && r.start >= 0 && (reroute === null || r.end < reroute)) reroute = r.end;
  }
  return { rerouteMs: reroute, errorsEndMs: errorsEnd, restoredMs, failed, total };
}

/** Loads `t`, kills its victim after mode.preKillMs, observes, and summarizes. */
export async function loadAndKill(t: FailoverTarget, keys: readonly string[], mode: FailoverMode, signal?: AbortSignal): Promise<FailoverResult> {
  const value = fixedValue(100);
  const records: RequestRecord[] = [];
  const t0 = performance.now();
  let killAt = Number.POSITIVE_INFINITY;
  let stop = false;
  const rel = () => performance.now() - (Number.isFinite(killAt) ? killAt : t0 + mode.preKillMs);
  const worker = async (w: number): Promise<void> => {
    let next = performance.now() + (w * INTERVAL_MS) / WORKERS;
    // Bounded: the loop ends when `stop` is set, at the latest after preKill + maxObserve + tail.
    while (!stop) {
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      next += INTERVAL_MS;
      const key = keys[Math.floor(Math.random() * keys.length)]!;
      const start = rel();
      let ok = true;
      try {
        await (Math.random() < GET_SHARE ? t.get(key) : t.set(key, value));
      } catch {
        ok = false;
      }
      records.push({ start, end: rel(), ok, victim: t.victimKeys.has(key) });
    }
  };
  const workers = Array.from({ length: WORKERS }, (_, i) => worker(i));
  let restoredMs: number | null = null;
  try {
    await sleep(mode.preKillMs);
    signal?.throwIfAborted();
    killAt = performance.now();
    await t.kill();
    const hardEnd = killAt + mode.maxObserveMs;
    while (performance.now() < hardEnd) {
      signal?.throwIfAborted();
      if (restoredMs === null && (await t.restored().catch(() => false))) restoredMs = performance.now() - killAt;
      const s = summarize(records, restoredMs);
      if (restoredMs !== null && s.rerouteMs !== null && performance.now() - killAt > Math.max(restoredMs, s.errorsEndMs) + mode.tailMs) break;
      await sleep(100);
    }
  } finally {
    stop = true;
    await Promise.all(workers);
  }
  return summarize(records, restoredMs);
}

// ------------------------------------------------------------------ ours: jincache + etcd

interface ClusterJson {
  ringVersion: number;
  leader: string | null;
  nodes: { id: string; apiAddress?: string; address: string }[];
  partitions: { owners: (string | null)[]; underReplicated: number };
}

async function clusterJson(url: string): Promise<ClusterJson> {
  const res = await fetch(`${url}/cluster`, { signal: AbortSignal.timeout(2000) });
  if (res.status !== 200) throw new Error(`GET ${url}/cluster answered ${res.status}`);
  return (await res.json()) as ClusterJson;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (await check().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function setUpJincache(keys: readonly string[], log: (l: string) => void, signal?: AbortSignal): Promise<FailoverTarget> {
  const etcd = await startEtcd(log);
  const dir = mkdtempSync(join(tmpdir(), 'jincache-bench-fo-'));
  const config = join(dir, 'jincache.yaml');
  writeFileSync(config, `etcd:\n  lease_ttl: ${LEASE_TTL_SEC}s\nreplication:\n  factor: 2\nfault_tolerance:\n  heartbeat_interval: 500ms\n`);
  const ports = await freePorts(NODES);
  const nodes: JincacheNode[] = [];
  const cleanUp = async () => {
    await Promise.all(nodes.map((n) => n.proc.stop()));
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    return await seedJincache(etcd.endpoint, config, ports, nodes, keys, log, cleanUp, signal);
  } catch (e) {
    // When one node fails to start, the others are not in `nodes` (Promise.all rejected): stop
    // every process this scenario started, by PID, through the harness's tracking too.
    await cleanUp();
    await stopAll();
    throw e;
  }
}

async function seedJincache(
  etcdEndpoint: string,
  config: string,
  ports: readonly number[],
  nodes: JincacheNode[],
  keys: readonly string[],
  log: (l: string) => void,
  cleanUp: () => Promise<void>,
  signal?: AbortSignal,
): Promise<FailoverTarget> {
  const started = await Promise.all(
    ports.map((port, i) => startNode({ id: `n${i + 1}`, port }, { extraArgs: ['--etcd', etcdEndpoint, '--config', config], readyTimeoutMs: 30_000 })),
  );
  nodes.push(...started);
  const ids = nodes.map((n) => n.spec.id);
  // Converged: every node sees all members, the same table version, every node owning some
  // partitions and none under-replicated.
  await until(
    `${NODES} jincache nodes to agree on a full table`,
    async () => {
      const views = await Promise.all(nodes.map((n) => clusterJson(n.url)));
      const v0 = views[0]!;
      return views.every(
        (v) =>
          v.ringVersion === v0.ringVersion &&
          v.nodes.length === NODES &&
          v.partitions.underReplicated === 0 &&
          ids.every((id) => v.partitions.owners.includes(id)),
      );
    },
    30_000,
    signal,
  );
  const before = await clusterJson(nodes[0]!.url);
  const victim = nodes.find((n) => n.spec.id !== before.leader && n.spec.id !== 'n1') ?? nodes[NODES - 1]!;
  const watcher = nodes.find((n) => n !== victim && n.spec.id !== before.leader) ?? nodes[0]!;
  const client = new JincacheClient({ nodes: nodes.map((n) => n.url), timeoutMs: REQUEST_TIMEOUT_MS });
  const value = fixedValue(100);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < keys.length) await client.put(keys[next++]!, value);
    }),
  );
  const victimKeys = new Set<string>();
  for (const k of keys) if ((await client.route(k)).owner === victim.spec.id) victimKeys.add(k);
  log(`  jincache: ${NODES} nodes (etcd, lease TTL ${LEASE_TTL_SEC} s, factor 2), leader ${before.leader}, victim ${victim.spec.id} owning ${victimKeys.size}/${keys.length} keys`);
  return {
    get: async (k) => {
      await client.get(k);
    },
    set: (k, v) => client.put(k, v),
    victimKeys,
    kill: async () => {
      process.kill(victim.proc.pid, 'SIGKILL');
      await victim.proc.exited;
    },
    restored: async () => {
      const v = await clusterJson(watcher.url);
      return (
        v.ringVersion > before.ringVersion &&
        !v.nodes.some((n) => n.id === victim.spec.id) &&
        !v.partitions.owners.includes(victim.spec.id) &&
        v.partitions.underReplicated === 0
      );
    },
    close: async () => {
      await client.close();
      await cleanUp();
    },
  };
}

// ------------------------------------------------------------------ peer: Redis Cluster

async function setUpRedis(keys: readonly string[], log: (l: string) => void, signal?: AbortSignal): Promise<FailoverTarget> {
  const rc = await RedisCluster.start({ masters: 3, replicas: 1, nodeTimeoutMs: LEASE_TTL_SEC * 1000, log, signal });
  const client = new Cluster(
    rc.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    { redisOptions: { commandTimeout: REQUEST_TIMEOUT_MS } },
  );
  client.on('error', () => {}); // connection errors surface as failed commands
  try {
    await rc.load(keys, fixedValue(100));
    // Replicas have the data (their offsets may lag by a few writes, as in production).
    const rows = await rc.topology();
    const victimRow = rows.find((r) => r.flags.includes('master') && rows.some((x) => x.masterId === r.id));
    if (victimRow === undefined) throw new Error('no master with a replica');
    const replicaRow = rows.find((x) => x.masterId === victimRow.id)!;
    const victim = rc.nodes.find((n) => n.port === victimRow.port)!;
    const slots = new Set<number>();
    for (const [a, b] of victimRow.slots) for (let s = a; s <= b; s++) slots.add(s);
    const victimKeys = new Set(keys.filter((k) => slots.has(keySlot(k))));
    await client.get(keys[0]!); // connect and learn the slots before the clock starts
    log(`  redis cluster: victim master :${victim.port} owning ${victimKeys.size}/${keys.length} keys, replica :${replicaRow.port}`);
    return {
      get: async (k) => {
        await client.get(k);
      },
      set: async (k, v) => {
        await client.set(k, v);
      },
      victimKeys,
      kill: async () => {
        process.kill(victim.proc.pid, 'SIGKILL');
        await victim.proc.exited;
      },
      restored: async () => {
        const now = await rc.topology(replicaRow.port);
        const me = now.find((r) => r.id === replicaRow.id);
        if (me === undefined || !me.flags.includes('master') || me.slots.length === 0) return false;
        return parseInfo(await respText(replicaRow.port, ['CLUSTER', 'INFO'], 1000)).get('cluster_state') === 'ok';
      },
      close: async () => {
        client.disconnect();
        await rc.stop();
      },
    };
  } catch (e) {
    client.disconnect();
    await rc.stop();
    throw e;
  }
}

export async function prepare(opts: ScenarioOptions): Promise<void> {
  ensureRedis(opts.log);
}

function fmt(r: FailoverResult): string {
  const ms = (x: number | null) => (x === null ? 'never' : `${Math.round(x)} ms`);
  return `reroute ${ms(r.rerouteMs)}, errors end ${ms(r.errorsEndMs)}, restored ${ms(r.restoredMs)}, failed ${r.failed}/${r.total}`;
}

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  const log = opts.log ?? (() => {});
  requireJincache();
  ensureRedis(log);
  const mode = opts.quick ? QUICK : FULL;
  const keys = benchKeys(KEYS, 'fo:');
  const ours: FailoverResult[] = [];
  const peer: FailoverResult[] = [];
  for (let i = 0; i < mode.rounds; i++) {
    for (const side of ['ours', 'peer'] as const) {
      opts.signal?.throwIfAborted();
      const t = side === 'ours' ? await setUpJincache(keys, log, opts.signal) : await setUpRedis(keys, log, opts.signal);
      try {
        const r = await loadAndKill(t, keys, mode, opts.signal);
        log(`  round ${i + 1}/${mode.rounds} ${side === 'ours' ? 'jincache' : 'redis cluster'}: ${fmt(r)}`);
        (side === 'ours' ? ours : peer).push(r);
      } finally {
        await t.close().catch(() => {});
        await stopAll();
      }
    }
  }
  // A side that never rerouted / restored within the observation window gets the window itself:
  // a finite, pessimistic value (the log says "never").
  const cap = (x: number | null) => x ?? mode.maxObserveMs;
  const pick = (rs: FailoverResult[], f: (r: FailoverResult) => number) => median(rs.map(f));
  const fig = (name: string, unit: string, f: (r: FailoverResult) => number) =>
    figure({ name, unit, ours: pick(ours, f), peer: pick(peer, f) });
  return [
    fig('failover.reroute_ms', 'ms', (r) => cap(r.rerouteMs)),
    fig('failover.errors_end_ms', 'ms', (r) => r.errorsEndMs),
    fig('failover.restored_ms', 'ms', (r) => cap(r.restoredMs)),
    fig('failover.failed_requests', 'requests', (r) => r.failed),
  ];
}
