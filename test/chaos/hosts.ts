/**
 * Chaos on namespaced test hosts (`npm run chaos -- --hosts`): 5 jincache nodes and a 3-member
 * etcd, each on a host of its own (test/netns), faults by the kernel (nft drops and loss inside
 * the hosts), a relay for delay, libfaketime for a skewed clock, a tmpfs for a full disk, kill -9.
 *
 * Every phase runs the same shared-key workload (16 clients, 8 keys of the phase's own, reads,
 * writes, deletes; each request to a random running node, the node under the fault included),
 * records every op, then reads every key through every node and checks the history: lost
 * acknowledged writes, stale reads, and linearizability per key (history.ts,
 * linearizability.ts). Failures at the node under the fault are counted apart, never dropped.
 *
 * Prints a table and writes bench/results/chaos-hosts.json, per phase {name, requests, failed,
 * failedAtFaulty, lost, stale, linearizability_violations, notes} and the details (examples, the
 * shrunk history of every violation).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { clusterInfo, sees, startHostCluster, until, type HostCluster, type HostNode, type NodeSpec } from '../netns/cluster.ts';
import { createLab, netnsUnavailable, type Lab, type Tmpfs } from '../netns/lab.ts';
import { isolate, loss, oneWay, split } from '../netns/nft.ts';
import { analyze, type Consistency } from './consistency.ts';
import { History } from './history.ts';
import { CLIENT_TIMEOUT_MS, CLUSTER_CONFIG } from './phases.ts';
import { finalReads, httpOpClient, Workload, type OpClient } from './workload.ts';
import { GROUP } from './lib.ts';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { ownerOf } from '../../src/core/placement/table.ts';

export const OUT = resolve(import.meta.dirname, '../../bench/results/chaos-hosts.json');
const ETCD_HOSTS = ['e1', 'e2', 'e3'] as const;
/** The workload of issue 17: 16 clients on 8 shared keys. */
export const CLIENTS = 16;
export const KEYS = 8;

export interface HostsEnvOptions {
  /** Nodes started at once (node-1 on host n1, ...). */
  nodes: number;
  /** More hosts and nodes, started by a phase (a join). Default 0. */
  spare?: number;
  /** Node ids with a relay in front of them (delay phases). */
  relay?: readonly string[];
  /** Node ids with a skewable clock. */
  clock?: readonly string[];
  /** A node on LevelDB in a tmpfs of `bytes`. */
  leveldb?: { node: string; bytes: number };
  /** Merged over the chaos cluster config. */
  config?: Record<string, unknown>;
  log?: (m: string) => void;
}

export interface HostsEnv {
  lab: Lab;
  cluster: HostCluster;
  client: OpClient;
  disk: Tmpfs | undefined;
  /** ids of the nodes started at once */
  started: string[];
  log: (m: string) => void;
  stop(): Promise<void>;
}

/** Create the hosts, start etcd and the nodes, wait until they settle (30 s at most). */
export async function startHostsEnv(opts: HostsEnvOptions): Promise<HostsEnv> {
  const log = opts.log ?? ((m: string) => console.log(m));
  const total = opts.nodes + (opts.spare ?? 0);
  const lab = createLab({ hosts: [...ETCD_HOSTS, ...Array.from({ length: total }, (_, i) => `n${i + 1}`)] });
  let cluster: HostCluster | undefined;
  try {
    const disk = opts.leveldb === undefined ? undefined : lab.tmpfs('leveldb', opts.leveldb.bytes);
    const specs: NodeSpec[] = Array.from({ length: total }, (_, i) => {
      const id = `node-${i + 1}`;
      return {
        id,
        host: `n${i + 1}`,
        relay: opts.relay?.includes(id) ?? false,
        clock: opts.clock?.includes(id) ?? false,
        ...(opts.leveldb?.node === id ? { config: { storage: { engine: 'leveldb', path: `${disk!.path}/{id}` } } } : {}),
      };
    });
    const started = specs.slice(0, opts.nodes).map((s) => s.id);
    cluster = await startHostCluster({ lab, etcdHosts: ETCD_HOSTS, nodes: specs, startNow: started, config: { ...CLUSTER_CONFIG, ...opts.config } });
    const c = cluster;
    const ms = await until(c, () => c.nodes.filter((n) => n.running()), (i) => sees(i, started) && new Set(i.partitions?.owners).size === started.length && (i.migrations ?? []).length === 0, 30_000);
    if (ms < 0) throw new Error(`${started.length} nodes did not settle within 30 s`);
    log(`netns: run ${lab.runId}, subnet ${lab.subnet}.0/24, etcd on ${ETCD_HOSTS.map((h) => lab.host(h).ip).join(', ')}, ${started.length} nodes settled in ${ms} ms`);
    return {
      lab,
      cluster,
      client: httpOpClient({ group: GROUP, headers: c.headers }),
      disk,
      started,
      log,
      async stop() {
        await c.stop();
        await lab.destroy();
      },
    };
  } catch (e) {
    await cluster?.stop().catch(() => undefined);
    await lab.destroy();
    throw e;
  }
}

export interface PhaseSpec {
  name: string;
  /** Node ids under the fault (their clients' failures are counted apart). */
  faulty: readonly string[];
  /** Inject, hold, heal. Returns notes (measurements) for the report. */
  run(env: HostsEnv): Promise<string[]>;
  /** Load before the fault. Default 1500 ms. */
  warmupMs?: number;
  /** Load after recovery. Default 2000 ms. */
  recoveryMs?: number;
  /** The fault is one README promises less for (its "Known window", ms): checked as that weaker promise (consistency.ts beyondWindow). */
  windowMs?: number;
}

export interface PhaseReport {
  name: string;
  requests: number;
  failed: number;
  failedAtFaulty: number;
  lost: number;
  stale: number;
  linearizability_violations: number;
  notes: string[];
  faulty: readonly string[];
  durationMs: number;
  details: Consistency;
}

/** Slug of a phase name for its keys. */
const slug = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);

/** Run one phase under the workload; afterwards wait for recovery, read every key everywhere, check. */
export async function runPhase(env: HostsEnv, spec: PhaseSpec, onHistory?: (h: History) => void): Promise<PhaseReport> {
  const { cluster, log } = env;
  const started = Date.now();
  log(`phase ${spec.name}: start`);
  const history = new History();
  onHistory?.(history);
  const t0 = performance.now();
  const keys = Array.from({ length: KEYS }, (_, i) => `${slug(spec.name)}/k${i}`);
  const workload = new Workload({ history, client: env.client, keys, clients: CLIENTS, targets: () => cluster.nodes.filter((n) => n.running()), timeoutMs: CLIENT_TIMEOUT_MS, maxMs: 120_000 });
  workload.start();
  const notes: string[] = [];
  try {
    await sleep(spec.warmupMs ?? 1500);
    notes.push(...(await spec.run(env)));
    const running = (): HostNode[] => cluster.nodes.filter((n) => n.running());
    // healed: every node sees every running node, no migration is open, and every node trusts
    // its own copy again (trust.ts: after a lost lease or a partition it first confirms it with
    // the others); a phase that starts before that inherits the last one's fault
    const healMs = await until(cluster, running, (i) => sees(i, running().map((n) => n.id)) && (i.migrations ?? []).length === 0 && (i.trust?.kind ?? 'trusted') === 'trusted', 30_000);
    notes.push(healMs < 0 ? 'not healed within 30 s (members unusable or a migration open)' : `healed ${healMs} ms after the fault ended`);
    await sleep(spec.recoveryMs ?? 2000);
  } finally {
    await workload.stop();
  }
  const unread = await finalReads({ history, client: env.client, keys, targets: cluster.nodes.filter((n) => n.running()), timeoutMs: CLIENT_TIMEOUT_MS });
  if (unread.length > 0) notes.push(`final reads failed for ${unread.length} key(s) on some node: ${unread.join(', ')}`);
  const tc = performance.now();
  // 10 s of search per key, whatever the steps: a kill -9 phase's key (1,347 ops, 16 clients'
  // writes hung together for 250 ms) needed 3.7M steps, 4 s here, over the default 5M at times
  const details = analyze(history.ops(), { faulty: new Set(spec.faulty), t0, budget: { timeMs: 10_000, maxSteps: 25_000_000 }, shrinkMs: 15_000, ...(spec.windowMs !== undefined ? { windowMs: spec.windowMs } : {}) });
  const checkMs = performance.now() - tc;
  if (checkMs > 2000) notes.push(`the checks took ${(checkMs / 1000).toFixed(1)} s`);
  if (details.staleAtFaulty > 0) notes.push(`${details.staleAtFaulty} of the stale reads via the faulty node(s)`);
  if (details.unexplained > 0) notes.push(`${details.unexplained} read(s) of a value never written`);
  if (details.unknown.length > 0) {
    // the history the checker could not decide, to study the search on (npm test keeps no logs)
    const undecided = new Set(details.unknown.map((u) => u.key));
    const file = join(tmpdir(), `jincache-undecided-${spec.name.replace(/[^\w-]+/g, '_')}-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify(history.ops().filter((o) => undecided.has(o.key))));
    notes.push(`linearizability unknown (budget) for ${[...undecided].join(', ')}; their ops in ${file}`);
  }
  if (details.incr.length > 0) notes.push(`INCR anomalies: ${details.incr.map((a) => a.kind).join(', ')}`);
  const bw = details.beyondWindow;
  if (bw !== undefined) notes.push(`Known window (${bw.windowMs} ms): ${bw.stale} stale read(s) and ${bw.linearizability_violations} key(s) not linearizable beyond it`);
  const report: PhaseReport = {
    name: spec.name,
    requests: details.requests,
    failed: details.failed,
    failedAtFaulty: details.failedAtFaulty,
    lost: details.lost,
    stale: details.stale,
    linearizability_violations: details.linearizability_violations,
    notes,
    faulty: spec.faulty,
    durationMs: Date.now() - started,
    details,
  };
  log(`phase ${spec.name}: ${JSON.stringify({ requests: report.requests, failed: report.failed, failedAtFaulty: report.failedAtFaulty, lost: report.lost, stale: report.stale, violations: report.linearizability_violations, notes })}`);
  for (const e of details.failureExamples.slice(0, 3)) log(`  failed: ${e}`);
  for (const e of details.staleExamples.slice(0, 3)) log(`  stale: ${e}`);
  for (const e of details.lostExamples) log(`  lost: ${e}`);
  const holdersOf = details.violations.length === 0 ? undefined : await env.cluster.table().catch(() => undefined);
  for (const v of details.violations) {
    const holders = holdersOf === undefined ? '?' : (holdersOf.assignments[partitionOf(v.key, holdersOf.partitionCount)] ?? []).join(', ');
    log(`  not linearizable: ${v.key} (${v.history.length} ops${v.isMinimal ? ', minimal' : ''}; holders now ${holders}):\n    ${v.history.join('\n    ')}`);
  }
  return report;
}

// ---- the faults -----------------------------------------------------------------------------

const HOLD_MS = 8000;
const hostOf = (env: HostsEnv, id: string): string => env.cluster.node(id).host.name;
/** Lab host names of every node but `id` (spare hosts included: a later join must not be cut off). */
const peersOf = (env: HostsEnv, ...ids: string[]): string[] => env.cluster.nodes.filter((n) => !ids.includes(n.id)).map((n) => n.host.name);

/** Drop everything between a node and every other host (peers and etcd); clients still reach it. */
export function partitionPhase(id: string, holdMs = HOLD_MS): PhaseSpec {
  return {
    name: `partition ${id} (peers+etcd)`,
    faulty: [id],
    async run(env) {
      env.lab.faults(isolate(hostOf(env, id), [...peersOf(env, id), ...ETCD_HOSTS]));
      await sleep(holdMs);
      env.lab.heal();
      return [`${id} cut from peers and etcd for ${holdMs} ms`];
    },
  };
}

/** The node's packets to its peers are dropped; its peers' packets (and etcd both ways) arrive. */
export function oneWayPhase(id: string, holdMs = HOLD_MS): PhaseSpec {
  return {
    name: `one-way ${id} -> peers dropped`,
    faulty: [id],
    // not README's Known window: with the node's packets to its peers dropped, TCP fails both ways
    async run(env) {
      env.lab.faults(oneWay([hostOf(env, id)], peersOf(env, id)));
      await sleep(holdMs);
      env.lab.heal();
      return [`packets from ${id} to its peers dropped for ${holdMs} ms (etcd untouched)`];
    },
  };
}

export function etcdCutPhase(id: string, holdMs = HOLD_MS): PhaseSpec {
  return {
    name: `${id} cut from etcd only`,
    faulty: [id],
    async run(env) {
      env.lab.faults(isolate(hostOf(env, id), [...ETCD_HOSTS]));
      await sleep(holdMs);
      env.lab.heal();
      return [`${id} cut from all 3 etcd members (peers reachable) for ${holdMs} ms`];
    },
  };
}

/** Nodes `minority` with etcd member e1, against the other nodes with e2 and e3. */
export function splitPhase(minority: readonly string[], holdMs = HOLD_MS): PhaseSpec {
  return {
    name: `split ${minority.join(',')}+e1 | rest+e2,e3`,
    faulty: minority,
    async run(env) {
      const a = [...minority.map((id) => hostOf(env, id)), 'e1'];
      const b = [...peersOf(env, ...minority), 'e2', 'e3'];
      const leaderBefore = await env.cluster.etcd.leaderIndex();
      env.lab.faults(split(a, b));
      await sleep(holdMs);
      env.lab.heal();
      return [`minority ${a.join(',')} | majority ${b.join(',')} for ${holdMs} ms; etcd leader before: e${leaderBefore + 1}`];
    },
  };
}

export function lossPhase(id: string, percent: number, holdMs = HOLD_MS): PhaseSpec {
  return {
    name: `packet loss ${percent}% at ${id}`,
    faulty: [id],
    async run(env) {
      env.lab.faults(loss(hostOf(env, id), [...peersOf(env, id), ...ETCD_HOSTS], percent));
      await sleep(holdMs);
      env.lab.heal();
      return [`${percent}% of the packets between ${id} and every other host lost, both ways, for ${holdMs} ms`];
    },
  };
}

/** Peer traffic to the node waits ms..ms+jitter per chunk in its relay (sockets overtake each other). */
export function delayPhase(id: string, ms: number, jitterMs: number, holdMs = HOLD_MS): PhaseSpec {
  return {
    name: `delay ${ms}-${ms + jitterMs} ms to ${id} (relay)`,
    faulty: [id],
    async run(env) {
      const relay = env.cluster.node(id).relay;
      if (relay === undefined) throw new Error(`${id} has no relay (start the env with relay: ['${id}'])`);
      await relay.set({ mode: 'delay', ms, jitterMs });
      await sleep(holdMs);
      await relay.set({ mode: 'pass' });
      return [`peer traffic to ${id} delayed ${ms}-${ms + jitterMs} ms per chunk for ${holdMs} ms (client traffic direct)`];
    },
  };
}

export function etcdMemberKillPhase(holdMs = HOLD_MS): PhaseSpec {
  return {
    name: 'etcd follower killed',
    faulty: [],
    async run(env) {
      const leader = await env.cluster.etcd.leaderIndex();
      const victim = (leader + 1) % 3;
      await env.cluster.etcd.members[victim]!.stop('SIGKILL');
      await sleep(holdMs);
      const t = Date.now();
      await env.cluster.etcd.members[victim]!.start();
      return [`etcd member e${victim + 1} (a follower; leader e${leader + 1}) SIGKILLed for ${holdMs} ms, healthy ${Date.now() - t} ms after restart`];
    },
  };
}

export function etcdLeaderKillPhase(holdMs = HOLD_MS): PhaseSpec {
  return {
    name: 'etcd leader killed',
    faulty: [],
    async run(env) {
      const leader = await env.cluster.etcd.leaderIndex();
      const t0 = Date.now();
      await env.cluster.etcd.members[leader]!.stop('SIGKILL');
      // a new leader among the other two
      let elected = -1;
      while (Date.now() - t0 < holdMs) {
        const flags = await Promise.all(
          env.cluster.etcd.members.map(async (m, i) => {
            if (i === leader) return false;
            try {
              const text = await (await fetch(`${m.clientUrl}/metrics`, { signal: AbortSignal.timeout(500) })).text();
              return /^etcd_server_is_leader 1\s*$/m.test(text);
            } catch {
              return false;
            }
          }),
        );
        if (flags.includes(true)) {
          elected = Date.now() - t0;
          break;
        }
        await sleep(50);
      }
      await sleep(Math.max(0, holdMs - (Date.now() - t0)));
      await env.cluster.etcd.members[leader]!.start();
      return [`etcd leader e${leader + 1} SIGKILLed for ${holdMs} ms; ${elected < 0 ? 'no new leader seen' : `new leader after ${elected} ms`}`];
    },
  };
}

export function clockSkewPhase(id: string, skewMs: number, holdMs = HOLD_MS): PhaseSpec {
  return {
    name: `clock skew ${skewMs > 0 ? '+' : ''}${skewMs / 1000}s at ${id}`,
    faulty: [id],
    async run(env) {
      const node = env.cluster.node(id);
      if (node.clock === undefined) throw new Error(`${id} has no skewable clock (start the env with clock: ['${id}'])`);
      await node.clock.skew(skewMs);
      const date = (await fetch(`${node.url}/health`)).headers.get('date');
      const seen = date === null ? NaN : (Date.parse(date) - Date.now()) / 1000;
      await sleep(holdMs);
      await node.clock.skew(0);
      return [`${id}'s wall clock ${skewMs > 0 ? 'ahead' : 'behind'} by ${Math.abs(skewMs)} ms for ${holdMs} ms (its HTTP Date header said ${seen.toFixed(1)} s), then back`];
    },
  };
}

/**
 * The LevelDB node's disk fills up under load; then it is killed -9 with the disk still full
 * (what it acknowledged but could not write is gone from it), the disk is freed and it restarts.
 */
export function diskFullPhase(id: string, holdMs = HOLD_MS): PhaseSpec {
  const enospc = (file: string): number => {
    try {
      return readFileSync(file, 'utf8').split('No space left on device').length - 1;
    } catch {
      return 0;
    }
  };
  return {
    name: `LevelDB disk full at ${id}, then kill -9`,
    faulty: [id],
    async run(env) {
      const disk = env.disk;
      if (disk === undefined) throw new Error('no tmpfs (start the env with leveldb)');
      const node = env.cluster.node(id);
      const before = enospc(node.logFile);
      const filled = disk.fill();
      await sleep(holdMs);
      const errors = enospc(node.logFile) - before;
      const alive = node.running();
      await node.kill('SIGKILL');
      disk.free();
      const t = Date.now();
      await node.start();
      return [
        `${id}'s ${disk.bytes >> 20} MiB tmpfs filled (${filled >> 10} KiB of filler) for ${holdMs} ms: node ${alive ? 'kept serving' : 'EXITED'}, ${errors} "No space left on device" in its log`,
        `then SIGKILLed with the disk full, disk freed, restarted (serving ${Date.now() - t} ms later)`,
      ];
    },
  };
}

export function killPhase(id: string, opts: { holdMs?: number; restart: boolean }): PhaseSpec {
  return {
    name: `kill -9 ${id}`,
    faulty: [id],
    async run(env) {
      const node = env.cluster.node(id);
      const others = (): HostNode[] => env.cluster.nodes.filter((n) => n.running());
      await node.kill('SIGKILL');
      const rerouteMs = await until(env.cluster, others, (i) => !sees(i, [id]), 5000, 20);
      await sleep(opts.holdMs ?? 6000);
      const notes = [`${id} SIGKILLed; every live node saw it unusable after ${rerouteMs} ms`];
      if (opts.restart) {
        const t = Date.now();
        await node.start();
        notes.push(`restarted, serving ${Date.now() - t} ms later`);
      }
      return notes;
    },
  };
}

/** Write `count` keys of `bytes` each (so a migration has something to move). */
export async function preload(env: HostsEnv, count: number, bytes: number): Promise<void> {
  const nodes = env.cluster.nodes.filter((n) => n.running());
  const value = 'x'.repeat(bytes);
  let i = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (i < count) {
        const k = i++;
        const n = nodes[k % nodes.length]!;
        await fetch(`${n.url}/api/${GROUP}/preload-${k}`, { method: 'PUT', body: value, headers: env.cluster.headers(), signal: AbortSignal.timeout(5000) }).then((r) => r.arrayBuffer(), () => undefined);
      }
    }),
  );
}

/** An open migration somewhere: its kind and id (null when none within `timeoutMs`). */
async function openMigration(env: HostsEnv, timeoutMs: number): Promise<{ kind: string; id: string; state: string; ms: number } | null> {
  const t = Date.now();
  while (Date.now() - t < timeoutMs) {
    for (const n of env.cluster.nodes.filter((x) => x.running())) {
      const info = await clusterInfo(n, env.cluster.headers(), 500);
      const m = (info?.migrations ?? []).find((x: { state: string; kind: string }) => x.kind !== 'repair');
      if (m !== undefined) return { kind: m.kind, id: m.id, state: m.state, ms: Date.now() - t };
    }
    await sleep(50);
  }
  return null;
}

/** A spare node joins (a migration starts); once the migration is open, kill -9 `victim`. */
export function killDuringJoinPhase(joiner: string, victim: string, holdMs = 6000): PhaseSpec {
  return {
    name: `kill -9 ${victim} during the join of ${joiner}`,
    faulty: [joiner, victim],
    warmupMs: 500,
    async run(env) {
      const start = env.cluster.node(joiner).start();
      const m = await openMigration(env, 15_000);
      await start.catch(() => undefined);
      if (m === null) return [`no migration seen within 15 s of ${joiner} starting: nothing to kill in the middle of`];
      await env.cluster.node(victim).kill('SIGKILL');
      await sleep(holdMs);
      const after = await openMigration(env, 100);
      return [`${joiner} started; ${m.kind} migration ${m.id} open (${m.state}) after ${m.ms} ms; ${victim} SIGKILLed then, not restarted; ${after === null ? 'no migration open' : `migration ${after.id} still open (${after.state})`} ${holdMs} ms later`];
    },
  };
}

/**
 * Load on many keys whose partitions one node owns (many keys, so none is hot enough to be
 * mirrored), for `ms`: the load monitor's window then shows that node above the mean.
 */
export async function skewLoad(env: HostsEnv, owner: string, ms: number): Promise<number> {
  const table = await env.cluster.table();
  const keys: string[] = [];
  for (let i = 0; keys.length < 400 && i < 100_000; i++) {
    const k = `skew-${i}`;
    if (ownerOf(table, partitionOf(k, table.partitionCount)) === owner) keys.push(k);
  }
  const nodes = env.cluster.nodes.filter((n) => n.running());
  const end = Date.now() + ms;
  let sent = 0;
  await Promise.all(
    Array.from({ length: 16 }, async (_, c) => {
      while (Date.now() < end) {
        const k = keys[(sent + c) % keys.length]!;
        const n = nodes[sent++ % nodes.length]!;
        await fetch(`${n.url}/api/${GROUP}/${k}`, { method: sent % 4 === 0 ? 'PUT' : 'GET', ...(sent % 4 === 0 ? { body: 'v'.repeat(256) } : {}), headers: env.cluster.headers(), signal: AbortSignal.timeout(2000) }).then((r) => r.arrayBuffer(), () => undefined);
      }
    }),
  );
  return sent;
}

/**
 * Skew the load onto `hot`, ask the leader for a rebalance; when it plans moves, kill -9
 * `victim` while the migration is open.
 */
export function killDuringRebalancePhase(hot: string, victim: string, holdMs = 6000): PhaseSpec {
  return {
    name: `kill -9 ${victim} during a rebalance`,
    faulty: [victim],
    warmupMs: 500,
    async run(env) {
      const sent = await skewLoad(env, hot, 12_000);
      const nodes = env.cluster.nodes.filter((n) => n.running());
      const info = await clusterInfo(nodes[0]!, env.cluster.headers());
      const leader = nodes.find((n) => n.id === info?.leader) ?? nodes[0]!;
      const notes: string[] = [`${sent} requests on keys ${hot} owns, over 12 s`];
      for (const strategy of ['load-optimal', 'weight-adjustment', 'minimal-disturbance']) {
        const res = await fetch(`${leader.url}/cluster/rebalance`, { method: 'POST', headers: { ...env.cluster.headers(), 'content-type': 'application/json' }, body: JSON.stringify({ strategy, dryRun: false }), signal: AbortSignal.timeout(10_000) });
        const body = (await res.json()) as { moves?: unknown[]; reason?: string };
        notes.push(`${strategy}: ${res.status}, ${body.moves?.length ?? 0} moves${body.reason ? ` (${body.reason})` : ''}`);
        if (res.ok && (body.moves?.length ?? 0) > 0 && body.reason === undefined) break;
      }
      const m = await openMigration(env, 5000);
      if (m === null) return [...notes, 'no rebalance migration opened: the phase ran without its kill'];
      await env.cluster.node(victim).kill('SIGKILL');
      await sleep(holdMs);
      return [...notes, `${m.kind} migration ${m.id} open (${m.state}); ${victim} SIGKILLed then, not restarted`];
    },
  };
}

// ---- the suite ------------------------------------------------------------------------------

export function table(reports: readonly PhaseReport[]): string {
  const cols: [string, (r: PhaseReport) => string][] = [
    ['phase', (r) => r.name],
    ['requests', (r) => String(r.requests)],
    ['failed', (r) => String(r.failed)],
    ['failed at faulty', (r) => String(r.failedAtFaulty)],
    ['lost', (r) => String(r.lost)],
    ['stale', (r) => String(r.stale)],
    ['not linearizable', (r) => String(r.linearizability_violations)],
    ['s', (r) => (r.durationMs / 1000).toFixed(0)],
  ];
  const rows = [cols.map(([h]) => h), ...reports.map((r) => cols.map(([, f]) => f(r)))];
  const widths = cols.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

/** Phases in the order the suite runs them (node-2 has the relay, node-3 the clock, node-5 LevelDB). */
export function suitePhases(): PhaseSpec[] {
  return [
    partitionPhase('node-2'),
    oneWayPhase('node-3'),
    etcdCutPhase('node-4'),
    splitPhase(['node-1', 'node-2']),
    lossPhase('node-5', 20),
    delayPhase('node-2', 150, 300),
    etcdMemberKillPhase(),
    etcdLeaderKillPhase(),
    clockSkewPhase('node-3', 3000),
    diskFullPhase('node-5'),
    killPhase('node-4', { restart: true }),
    killDuringJoinPhase('node-6', 'node-6'),
    killDuringRebalancePhase('node-3', 'node-1'),
  ];
}

const BUDGET_MS = 15 * 60_000;

/** `npm run chaos -- --hosts`; resolves the exit code. */
export async function main(): Promise<number> {
  const reason = netnsUnavailable();
  if (reason !== undefined) {
    console.log(`chaos --hosts skipped: ${reason}`);
    return 0;
  }
  const started = Date.now();
  const budget = setTimeout(() => {
    console.error(`chaos --hosts: over the ${BUDGET_MS / 60_000} min budget; aborting`);
    process.exit(2);
  }, BUDGET_MS);
  budget.unref();
  const log = (m: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${m}`);
  const env = await startHostsEnv({
    nodes: 5,
    spare: 1,
    relay: ['node-2'],
    clock: ['node-3'],
    leveldb: { node: 'node-5', bytes: 32 * 1024 * 1024 },
    config: { migration: { bandwidth: '1MiB' } },
    log,
  });
  const reports: PhaseReport[] = [];
  let only: string[] = [];
  try {
    // `--phase TEXT` (repeatable): only the phases whose name contains one of them; the table
    // is printed and chaos-hosts.json left as it is
    only = process.argv.flatMap((a, i) => (a === '--phase' && process.argv[i + 1] !== undefined ? [process.argv[i + 1]!] : []));
    for (const spec of suitePhases().filter((p) => only.length === 0 || only.some((o) => p.name.includes(o)))) {
      if (spec.name.includes('during the join')) {
        log('preloading 6000 keys of 1 KiB so the join has data to move');
        await preload(env, 6000, 1024);
      }
      reports.push(await runPhase(env, spec));
    }
  } finally {
    await env.stop();
  }
  console.log(`\n${table(reports)}\n`);
  for (const r of reports) for (const n of r.notes) console.log(`  ${r.name}: ${n}`);
  mkdirSync(dirname(OUT), { recursive: true });
  if (only.length === 0) writeFileSync(
    OUT,
    `${JSON.stringify(
      {
        when: new Date().toISOString(),
        config: CLUSTER_CONFIG,
        topology: '5 nodes (+1 spare for the join) and 3 etcd members, each in its own network namespace on one bridge; clients in the root namespace',
        load: { clients: CLIENTS, keysPerPhase: KEYS, mix: 'read 55%, write 40%, delete 5%', clientTimeoutMs: CLIENT_TIMEOUT_MS, targets: 'every running node, the faulty one included' },
        note: 'failed = ops that did not succeed at nodes not under the fault; failedAtFaulty = the same at the faulty node(s); lost = keys whose final reads miss an acknowledged write; stale = reads older than an acknowledged write that began after the read value\'s write ended (issue 17); linearizability_violations = keys whose history is not linearizable (Wing-Gong/Lowe, per key)',
        phases: reports,
        durationMs: Date.now() - started,
      },
      null,
      2,
    )}\n`,
  );
  if (only.length === 0) console.log(`wrote ${OUT}`);
  // a phase held to the Known window: what lies beyond it
  const ok = (r: PhaseReport): boolean => r.lost === 0 && (r.details.beyondWindow?.stale ?? r.stale) === 0 && (r.details.beyondWindow?.linearizability_violations ?? r.linearizability_violations) === 0 && r.details.incr.length === 0 && r.details.unknown.length === 0;
  return reports.every(ok) ? 0 : 1;
}
