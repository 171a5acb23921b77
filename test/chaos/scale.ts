/**
 * Scale of the control plane (`npm run chaos -- --scale`), on namespaced test hosts with a
 * 3-member etcd:
 *
 * 1. 1000 registered members: stand-ins that hold what a node holds in etcd (SPEC §4: a lease,
 *    `nodes/{id}` NodeInfo and `heartbeat/{id}` under it, refreshed every TTL/3 like the real
 *    registry; each also watches `nodes/` like a node does) but no data path (their address
 *    refuses connections), plus 3 real nodes. Measured: the partition table's size in etcd, how
 *    long a 4th real node's join takes to reach every member (the 1000 watchers and the real
 *    nodes' views), the leader failover time (kill -9 of the jincache leader), and etcd's load
 *    (proposals/s, CPU, db size, watchers) in steady state.
 * 2. The size limits, computed: the encoded table against etcd's request limit (1.5 MiB by
 *    default, `--max-request-bytes`) and a `nodes/` range against gRPC's default 4 MiB receive
 *    limit of the client, for growing member and partition counts.
 * 3. A 10-node real cluster with the 3-member etcd under the shared-key workload in namespaces:
 *    throughput, latency and the history checks, steady and across a kill -9.
 *
 * Prints the figures and writes bench/results/chaos-scale.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3, Lease, Watcher } from 'etcd3';
import { decodeTable, encodeTable, type PartitionTable } from '../../src/core/placement/table.ts';
import { createEtcdClient } from '../../src/discovery/etcd-client.ts';
import { clusterInfo, startHostCluster, until, type HostCluster, type HostNode, type NodeSpec } from '../netns/cluster.ts';
import { createLab, netnsUnavailable } from '../netns/lab.ts';
import { History } from './history.ts';
import { killPhase, runPhase, startHostsEnv, table as phaseTable, type PhaseReport, type PhaseSpec } from './hosts.ts';
import { CLUSTER_CONFIG } from './phases.ts';

const OUT = resolve(import.meta.dirname, '../../bench/results/chaos-scale.json');
const PREFIX = '/jincache';
const STAND_INS = 1000;
/** Stand-ins use the SPEC default lease (30 s), so their keepalives and heartbeats are what 1000 default nodes cost. */
const STAND_IN_TTL_S = 30;
const WATCH_CLIENTS = 4;
/** etcd's default --max-request-bytes, and gRPC's default max receive size (the etcd3 client's). */
const ETCD_MAX_REQUEST = 1.5 * 1024 * 1024;
const GRPC_MAX_RECEIVE = 4 * 1024 * 1024;

interface StandIns {
  readonly ids: string[];
  readonly watchers: number;
  /** When each watcher first saw a put of `nodes/{id}` (ms, performance.now), per id watched. */
  seenBy(id: string): number[];
  watch(id: string): void;
  stop(): Promise<void>;
}

/** Register `n` stand-ins (bounded concurrency) and keep them alive like the real registry does. */
async function startStandIns(endpoints: string[], n: number, address: string, log: (m: string) => void): Promise<StandIns> {
  const client = createEtcdClient({ endpoints });
  const ids = Array.from({ length: n }, (_, i) => `standin-${String(i).padStart(4, '0')}`);
  const leases = new Map<string, { lease: Lease; id: string }>();
  const t0 = performance.now();
  await forEachLimit(ids, 50, async (id) => {
    const lease = client.lease(STAND_IN_TTL_S, { autoKeepAlive: false });
    const leaseId = await lease.grant();
    const info = { id, address, status: 'active', last_seen: Date.now() };
    await client
      .if(`${PREFIX}/nodes/${id}`, 'Version', '>', -1)
      .then(client.put(`${PREFIX}/nodes/${id}`).value(JSON.stringify(info)).lease(leaseId), client.put(`${PREFIX}/heartbeat/${id}`).value(String(Date.now())).lease(leaseId))
      .commit();
    leases.set(id, { lease, id: leaseId });
  });
  if (n > 0) log(`${n} stand-ins registered in ${(performance.now() - t0).toFixed(0)} ms`);
  // every TTL/3: a keepalive and a heartbeat put per stand-in, spread over the period
  let running = true;
  const beat = (async () => {
    while (running) {
      const start = Date.now();
      await forEachLimit(ids, 20, async (id) => {
        if (!running) return;
        const l = leases.get(id)!;
        await l.lease.keepaliveOnce().catch(() => undefined);
        await client.put(`${PREFIX}/heartbeat/${id}`).value(String(Date.now())).lease(l.id).catch(() => undefined);
      });
      await sleep(Math.max(0, (STAND_IN_TTL_S * 1000) / 3 - (Date.now() - start)));
    }
  })();
  // every stand-in watches nodes/ (WATCH_CLIENTS clients share the watch streams); with no
  // stand-ins, one watcher still times registrations
  const watcherCount = Math.max(1, n);
  const watchClients: Etcd3[] = Array.from({ length: WATCH_CLIENTS }, () => createEtcdClient({ endpoints }));
  const watched = new Map<string, number[]>();
  const watchers: Watcher[] = [];
  await forEachLimit(Array.from({ length: watcherCount }, (_, i) => i), 50, async (_, i) => {
    const w = await watchClients[i % WATCH_CLIENTS]!.watch().prefix(`${PREFIX}/nodes/`).create();
    w.on('put', (kv) => {
      const key = kv.key.toString().slice(`${PREFIX}/nodes/`.length);
      const seen = watched.get(key);
      if (seen !== undefined && seen.length < watcherCount) seen.push(performance.now());
    });
    watchers.push(w);
  });
  log(`${watcherCount} watchers on ${PREFIX}/nodes/ over ${WATCH_CLIENTS} clients`);
  return {
    ids,
    watchers: watcherCount,
    seenBy: (id) => watched.get(id) ?? [],
    watch: (id) => void watched.set(id, []),
    async stop() {
      running = false;
      await beat;
      await Promise.all(watchers.map((w) => w.cancel().catch(() => undefined)));
      for (const c of watchClients) c.close();
      await forEachLimit([...leases.values()], 50, (l) => l.lease.revoke().catch(() => undefined));
      client.close();
    },
  };
}

async function forEachLimit<T>(items: readonly T[], limit: number, fn: (t: T, i: number) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (i < items.length) {
        const k = i++;
        await fn(items[k]!, k);
      }
    }),
  );
}

/** A few Prometheus counters and gauges of one etcd member. */
async function etcdMetrics(clientUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${clientUrl}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  const want = ['etcd_server_proposals_committed_total', 'process_cpu_seconds_total', 'etcd_mvcc_db_total_size_in_bytes', 'etcd_debugging_mvcc_keys_total', 'etcd_debugging_mvcc_watcher_total', 'etcd_server_is_leader', 'etcd_network_client_grpc_received_bytes_total', 'etcd_network_client_grpc_sent_bytes_total'];
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})?\s+([0-9.e+-]+)$/.exec(line);
    if (m && want.includes(m[1]!)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[3]);
  }
  return out;
}

/** CPU seconds (user + system) a process has used, from /proc (0 when it is gone). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** Encoded size of a table of `members` members (ids like the real ones) and `partitions` partitions. */
function tableBytes(members: number, partitions: number, factor: number): number {
  const ids = Array.from({ length: members }, (_, i) => `node-${String(i).padStart(5, '0')}`);
  const t = {
    version: 1,
    partitionCount: partitions,
    replicationFactor: factor,
    members: ids.map((id) => ({ id, weight: 1 })),
    assignments: Array.from({ length: partitions }, (_, p) => Array.from({ length: factor }, (_, s) => ids[(p * factor + s) % members]!)),
    createdAt: Date.now(),
  } as unknown as PartitionTable;
  return Buffer.byteLength(encodeTable(t));
}

/** Bytes of a `nodes/` range for `n` members (NodeInfo values of the shape the registry writes, plus key overhead). */
function nodesRangeBytes(n: number): number {
  const one = Buffer.byteLength(JSON.stringify({ id: 'node-00000', address: 'http://10.200.100.100:8001', status: 'active', last_seen: Date.now(), api_address: 'http://10.200.100.100:9999', weight: 1 })) + `${PREFIX}/nodes/node-00000`.length + 40;
  return one * n;
}

interface ControlPlaneFigures {
  standIns: number;
  realNodes: number;
  registerMs: number;
  membersSeenMs: number;
  ringBytes: number;
  ringMembers: number;
  join: { registeredMs: number; allWatchersMs: number; watchersSaw: number; realNodesSawMs: number; tableMs: number; migrationBytes: number };
  /** ms: until some survivor names a new leader; allMs: until every survivor does */
  failover: { killed: string; newLeader: string | null; ms: number; allMs: number };
  etcd: { windowS: number; proposalsPerS: number; cpuPerS: number[]; dbBytes: number; keys: number; watchers: number; clientBytesInPerS: number; nodeCpuPerS: number[] };
  notes: string[];
}

async function controlPlane(count: number, log: (m: string) => void): Promise<ControlPlaneFigures> {
  const lab = createLab({ hosts: ['e1', 'e2', 'e3', 'n1', 'n2', 'n3', 'n4'] });
  let cluster: HostCluster | undefined;
  let standIns: StandIns | undefined;
  const notes: string[] = [];
  try {
    const specs: NodeSpec[] = [1, 2, 3, 4].map((i) => ({ id: `node-${i}`, host: `n${i}` }));
    cluster = await startHostCluster({ lab, etcdHosts: ['e1', 'e2', 'e3'], nodes: specs, startNow: [], config: { ...CLUSTER_CONFIG, cluster: { partitions: 4096 } } });
    const c = cluster;
    const t0 = performance.now();
    standIns = await startStandIns(c.etcd.endpoints, count, `http://${lab.gateway}:9`, log);
    const registerMs = performance.now() - t0;
    const real = c.nodes.slice(0, 3);
    const t1 = performance.now();
    await Promise.all(real.map((n) => n.start()));
    const total = count + real.length;
    const seen = await until(c, () => real, (i) => (i.nodes?.length ?? 0) >= total, 60_000, 200);
    const membersSeenMs = seen < 0 ? -1 : performance.now() - t1;
    log(`3 real nodes see ${total} members after ${membersSeenMs.toFixed(0)} ms`);
    const ringRaw = (await c.etcdClient.get(`${PREFIX}/ring`).string()) ?? '';
    let ringMembers = 0;
    try {
      ringMembers = decodeTable(ringRaw).members.length;
    } catch {
      notes.push('no partition table in etcd after start');
    }
    log(`ring: ${ringRaw.length} bytes, ${ringMembers} members`);

    // steady-state etcd load over 20 s (stand-ins beating, 3 nodes heartbeating every 500 ms)
    const windowS = 20;
    const before = await Promise.all(c.etcd.members.map((m) => etcdMetrics(m.clientUrl)));
    const nodeCpuBefore = real.map((n) => cpuSeconds(n.pid()));
    await sleep(windowS * 1000);
    const nodeCpuPerS = real.map((n, i) => Number(((cpuSeconds(n.pid()) - nodeCpuBefore[i]!) / windowS).toFixed(3)));
    const afterM = await Promise.all(c.etcd.members.map((m) => etcdMetrics(m.clientUrl)));
    const leaderIdx = afterM.findIndex((m) => m.etcd_server_is_leader === 1);
    const L = Math.max(0, leaderIdx);
    const etcd = {
      windowS,
      proposalsPerS: ((afterM[L]!.etcd_server_proposals_committed_total ?? 0) - (before[L]!.etcd_server_proposals_committed_total ?? 0)) / windowS,
      cpuPerS: afterM.map((m, i) => Number((((m.process_cpu_seconds_total ?? 0) - (before[i]!.process_cpu_seconds_total ?? 0)) / windowS).toFixed(3))),
      dbBytes: afterM[L]!.etcd_mvcc_db_total_size_in_bytes ?? 0,
      keys: afterM[L]!.etcd_debugging_mvcc_keys_total ?? 0,
      watchers: afterM.reduce((s, m) => s + (m.etcd_debugging_mvcc_watcher_total ?? 0), 0),
      clientBytesInPerS: afterM.reduce((s, m, i) => s + ((m.etcd_network_client_grpc_received_bytes_total ?? 0) - (before[i]!.etcd_network_client_grpc_received_bytes_total ?? 0)), 0) / windowS,
      /** CPU of each real jincache node (cores) while 1000 members are registered */
      nodeCpuPerS,
    };
    log(`etcd steady state: ${JSON.stringify(etcd)}`);

    // a join: node-4 starts; when do the 1000 watchers and the 3 real nodes see it, and the table?
    const joiner = c.nodes[3]!;
    standIns.watch(joiner.id);
    const ringVersion = (await clusterInfo(real[0]!, c.headers()))?.ringVersion ?? 0;
    const tj = performance.now();
    const started = joiner.start().catch((e: Error) => notes.push(`node-4 start: ${e.message.split('\n')[0]}`));
    let registeredMs = -1;
    while (performance.now() - tj < 30_000) {
      const first = standIns.seenBy(joiner.id)[0];
      if (first !== undefined) {
        registeredMs = first - tj;
        break;
      }
      await sleep(10);
    }
    let allWatchersMs = -1;
    while (performance.now() - tj < 30_000) {
      const s = standIns.seenBy(joiner.id);
      if (s.length >= standIns.watchers) {
        allWatchersMs = Math.max(...s) - tj;
        break;
      }
      await sleep(20);
    }
    const watchersSaw = standIns.seenBy(joiner.id).length;
    const realSaw = await until(c, () => real, (i) => (i.nodes ?? []).some((n: { id: string }) => n.id === joiner.id), 30_000, 50);
    const realNodesSawMs = realSaw < 0 ? -1 : performance.now() - tj;
    let migrationBytes = 0;
    for (const kv of await c.etcdClient.getAll().prefix(`${PREFIX}/migrations/`).strings().then((o) => Object.entries(o))) {
      if (!kv[0].includes('/nodes/')) migrationBytes = Math.max(migrationBytes, kv[1].length);
    }
    const tableSaw = await until(c, () => real, (i) => (i.ringVersion ?? 0) > ringVersion && (i.partitions?.owners ?? []).includes(joiner.id), 30_000, 200);
    const tableMs = tableSaw < 0 ? -1 : performance.now() - tj;
    await started;
    if (tableMs < 0) notes.push('the join did not reach the partition table within 30 s: the migration copies partitions from stand-ins, which have no data path');
    const join = { registeredMs: Math.round(registeredMs), allWatchersMs: Math.round(allWatchersMs), watchersSaw, realNodesSawMs: Math.round(realNodesSawMs), tableMs: Math.round(tableMs), migrationBytes };
    log(`join: ${JSON.stringify(join)}`);

    // leader failover: kill -9 the jincache leader, time until the others name another one
    // the leader as the real nodes name it: all agreeing (up to 10 s), else the one most name
    const views = async (): Promise<(string | null)[]> => (await Promise.all(c.nodes.filter((n) => n.running()).map((n) => clusterInfo(n, c.headers(), 2000)))).map((v) => v?.leader ?? null);
    let leaderId: string | null = null;
    let named: (string | null)[] = [];
    const tl = performance.now();
    while (performance.now() - tl < 10_000) {
      named = await views();
      if (new Set(named).size === 1 && named[0] !== null) break;
      await sleep(200);
    }
    const counts = new Map<string, number>();
    for (const v of named) if (v !== null) counts.set(v, (counts.get(v) ?? 0) + 1);
    leaderId = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
    if (new Set(named).size !== 1) notes.push(`the real nodes did not agree on the leader within 10 s: ${JSON.stringify(named)}`);
    const leaderNode = c.nodes.find((n) => n.id === leaderId);
    let failover = { killed: leaderId ?? 'none', newLeader: null as string | null, ms: -1, allMs: -1 };
    if (leaderNode !== undefined) {
      const survivors = (): HostNode[] => c.nodes.filter((n) => n.running() && n.id !== leaderNode.id);
      const tk = performance.now();
      await leaderNode.kill('SIGKILL');
      const next = (v: string | null): boolean => v !== null && v !== leaderNode.id;
      let ms = -1;
      let allMs = -1;
      let newLeader: string | null = null;
      while (performance.now() - tk < 30_000 && allMs < 0) {
        const v = await views();
        if (ms < 0 && v.some(next)) [ms, newLeader] = [performance.now() - tk, v.find(next)!];
        if (v.every(next)) allMs = performance.now() - tk;
        else await sleep(50);
      }
      failover = { killed: leaderNode.id, newLeader, ms: Math.round(ms), allMs: Math.round(allMs) };
      if (allMs < 0) notes.push(`after the leader's kill not every survivor named a new leader within 30 s: ${JSON.stringify(await views())}`);
    } else notes.push('no node named a leader');
    log(`failover: ${JSON.stringify(failover)}`);
    return { standIns: count, realNodes: real.length, registerMs: Math.round(registerMs), membersSeenMs: Math.round(membersSeenMs), ringBytes: ringRaw.length, ringMembers, join, failover, etcd, notes };
  } finally {
    await standIns?.stop().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    await lab.destroy();
  }
}

/**
 * Sizes against the limits. A migration record holds the table it starts from and the one it
 * goes to (measured: 106 KB beside a 51 KB ring at 1003 members), so it meets the request limit
 * at half the table size.
 */
function limits(): { table: { members: number; partitions: number; factor: number; bytes: number; overEtcdLimit: boolean; migrationOverEtcdLimit: boolean }[]; nodesRange: { members: number; bytes: number; overGrpcLimit: boolean }[] } {
  const table = [];
  for (const partitions of [4096, 16384, 65536]) {
    for (const members of [1000, 10_000, 50_000]) {
      for (const factor of [2, 3]) {
        const bytes = tableBytes(members, partitions, factor);
        table.push({ members, partitions, factor, bytes, overEtcdLimit: bytes > ETCD_MAX_REQUEST, migrationOverEtcdLimit: 2 * bytes > ETCD_MAX_REQUEST });
      }
    }
  }
  const nodesRange = [1000, 10_000, 20_000, 50_000].map((members) => {
    const bytes = nodesRangeBytes(members);
    return { members, bytes, overGrpcLimit: bytes > GRPC_MAX_RECEIVE };
  });
  return { table, nodesRange };
}

async function tenNodes(log: (m: string) => void): Promise<{ reports: PhaseReport[]; opsPerS: number[]; latency: { p50: number; p99: number; max: number }[] }> {
  const env = await startHostsEnv({ nodes: 10, log });
  const reports: PhaseReport[] = [];
  const opsPerS: number[] = [];
  const latency: { p50: number; p99: number; max: number }[] = [];
  try {
    const steady: PhaseSpec = {
      name: 'steady load, 10 nodes',
      faulty: [],
      async run() {
        await sleep(10_000);
        return ['no fault, 10 s'];
      },
    };
    for (const spec of [steady, killPhase('node-7', { restart: true })]) {
      let history: History | undefined;
      const r = await runPhase(env, spec, (h) => (history = h));
      reports.push(r);
      const ops = history!.ops().filter((o) => !o.final && o.outcome === 'ok');
      const ms = ops.map((o) => o.ret! - o.call).sort((a, b) => a - b);
      const span = (Math.max(...ops.map((o) => o.ret!)) - Math.min(...ops.map((o) => o.call))) / 1000;
      opsPerS.push(Math.round(ops.length / span));
      const pct = (p: number): number => Math.round((ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] ?? 0) * 10) / 10;
      latency.push({ p50: pct(0.5), p99: pct(0.99), max: Math.round((ms[ms.length - 1] ?? 0) * 10) / 10 });
    }
  } finally {
    await env.stop();
  }
  return { reports, opsPerS, latency };
}

/** `npm run chaos -- --scale`; resolves the exit code. */
export async function main(): Promise<number> {
  const reason = netnsUnavailable();
  if (reason !== undefined) {
    console.log(`chaos --scale skipped: ${reason}`);
    return 0;
  }
  const started = Date.now();
  const budget = setTimeout(() => {
    console.error('chaos --scale: over the 15 min budget; aborting');
    process.exit(2);
  }, 15 * 60_000);
  budget.unref();
  const log = (m: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${m}`);
  const lim = limits();
  for (const t of lim.table) log(`table ${t.members} members x ${t.partitions} partitions x ${t.factor}: ${(t.bytes / 1024).toFixed(0)} KiB${t.overEtcdLimit ? ' > etcd request limit (1.5 MiB)' : t.migrationOverEtcdLimit ? '; a migration record (two tables) > etcd request limit' : ''}`);
  for (const r of lim.nodesRange) log(`nodes/ range of ${r.members} members: ~${(r.bytes / 1024).toFixed(0)} KiB${r.overGrpcLimit ? ' > gRPC 4 MiB receive limit' : ''}`);
  log('control plane with no stand-ins (baseline)');
  const baseline = await controlPlane(0, log);
  log(`control plane with ${STAND_INS} stand-ins`);
  const cp = await controlPlane(STAND_INS, log);
  const ten = await tenNodes(log);
  console.log(`\n${phaseTable(ten.reports)}\n`);
  ten.reports.forEach((r, i) => console.log(`  ${r.name}: ${ten.opsPerS[i]} ok ops/s, latency p50 ${ten.latency[i]!.p50} ms, p99 ${ten.latency[i]!.p99} ms, max ${ten.latency[i]!.max} ms`));
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify({ when: new Date().toISOString(), baseline, controlPlane: cp, limits: lim, tenNodes: ten, durationMs: Date.now() - started }, null, 2)}\n`);
  console.log(`wrote ${OUT}`);
  return 0;
}
