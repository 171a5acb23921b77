/**
 * The faults of the chaos suite, each run under load and followed by the checks. Shared by
 * `npm run chaos` (test/chaos/run.ts, every fault) and the short form inside `npm test`.
 *
 * Two loads run in every phase. The per-worker load (lib.ts LoadGenerator) keeps each key to one
 * worker and sends nothing to the node under the fault: it measures latency, failures at the
 * healthy nodes, and that acknowledged writes stay readable. The shared-key load (issue 17, when
 * the context has a `sharedClient`) is what a user of a shared cache does: 16 clients race on 8
 * keys of the phase's own (reads, writes and deletes over HTTP) and 2 counters (INCR over RESP),
 * each request to a random running node, the one under the fault included; every op is recorded
 * and the history is checked (consistency.ts: stale reads, lost writes after final reads through
 * every node, linearizability per key, INCR anomalies), failures at the faulty node apart.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EtcdCluster } from '../helpers/etcd.ts';
import { analyze, type Consistency } from './consistency.ts';
import { History } from './history.ts';
import { figures, holderCopies, LoadGenerator, until, verify, type ChaosCluster, type ChaosNode, type PhaseFigures, type Verification } from './lib.ts';
import { finalReads, Workload, type Mix, type OpClient } from './workload.ts';

export const REQUEST_TIMEOUT_MS = 1000;
export const CLIENT_TIMEOUT_MS = 2000;
export const LEASE_TTL_MS = 2000;
export const HEARTBEAT_MS = 500;
/** kill -9: replication must be whole again this long after the victim's lease expired (the repair copies the victim's partitions from their surviving holders). */
export const RESTORE_AFTER_LEASE_MS = 3000;

export const CLUSTER_CONFIG = {
  etcd: { lease_ttl: `${LEASE_TTL_MS}ms` },
  replication: { factor: 2, sync: true },
  fault_tolerance: { heartbeat_interval: `${HEARTBEAT_MS}ms`, request_timeout: `${REQUEST_TIMEOUT_MS}ms`, max_retries: 3, circuit_threshold: 0.5 },
};

/** The shared-key load of every phase (issue 17). */
export const SHARED = {
  clients: 16,
  keys: 8,
  counters: 2,
  mix: { read: 0.5, write: 0.35, delete: 0.05, incr: 0.1 } satisfies Mix,
  /** Load on the phase's fresh keys before the fault. */
  warmupMs: 1500,
};

/** The shared-key verdict of a phase: the history's checks, and what could not be read at the end. */
export interface SharedResult extends Consistency {
  /**
   * Held to README's Known window (the partition phase). Every phase reports `beyondWindow`
   * (a heartbeat): a stale read within it elsewhere comes from a node its peers wrongly took for
   * unreachable (a loaded machine), which README's window describes too; only this phase's
   * targets accept it.
   */
  heldToWindow: boolean;
  /** The node under the fault (its clients' failures are `failedAtFaulty`). */
  faulty: string[];
  /** Keys some node could not read after the load (unverified there, not lost). */
  unread: string[];
  /** Time the checks took, ms. */
  checkMs: number;
  /** Every key's holders and their copies after the final reads (lib.ts holderCopies). */
  copies: { [key: string]: string };
}

export interface PhaseResult extends PhaseFigures, Verification {
  name: string;
  /** The shared-key load's verdict (absent when the context has no sharedClient). */
  shared?: SharedResult;
  /** kill: ms until every live node stopped routing to the victim */
  rerouteMs?: number;
  /** kill: ms until every live node has a table without the victim, every partition with `factor` holders, and no repair still copying (-1: not within the hold) */
  restoredMs?: number;
  /** SIGSTOP: whether some node's breaker for the victim was seen open */
  breakerOpened?: boolean;
  /** ms from heal until every live node saw every member usable again */
  healMs?: number;
  failureExamples: string[];
  staleExamples: string[];
  durationMs: number;
}

/** A breaker state that proves the breaker opened. */
function tripped(state: string | undefined): boolean {
  return state === 'open' || state === 'half-open';
}

export interface PhaseContext {
  cluster: ChaosCluster;
  etcd: EtcdCluster;
  load: LoadGenerator;
  /** nodes under a fault: clients do not target them (a client cannot be saved from a hung node by the servers) */
  faulted: Set<string>;
  log: (msg: string) => void;
  /** Runs the shared-key load in every phase when set (HTTP, and INCR over RESP). */
  sharedClient?: OpClient;
}

const unusable = (h: string | undefined): boolean => h === 'down' || h === 'suspected';
/** A node's health as one node's GET /cluster reports it (undefined: not a member there). */
const healthOf = (info: { nodes: { id: string; health?: string }[] }, id: string): string | undefined => info.nodes.find((n) => n.id === id)?.health;

/**
 * Run `fault` with load running; afterwards stop the load's sampling window, settle, verify.
 * `windowMs`: the fault is one README promises less for (its "Known window"): the shared-key
 * check also says what lies beyond that window (consistency.ts `beyondWindow`).
 */
async function phase(ctx: PhaseContext, name: string, victim: string | undefined, fault: () => Promise<Partial<PhaseResult>>, settleMs: number, windowMs?: number): Promise<PhaseResult> {
  ctx.log(`phase ${name}: start`);
  const shared = ctx.sharedClient === undefined ? undefined : startShared(ctx, ctx.sharedClient, name, windowMs);
  if (shared !== undefined) await sleep(SHARED.warmupMs);
  const from = ctx.load.samples.length;
  const failuresBefore = ctx.load.failureExamples().length;
  const stalesBefore = ctx.load.staleExamples().length;
  const started = Date.now();
  const extra = await fault();
  await sleep(settleMs);
  const samples = ctx.load.samples.slice(from);
  const figs = figures(samples, victim);
  const sharedResult = await shared?.finish(victim === undefined ? [] : [victim]);
  const v = await verify(ctx.cluster, ctx.load, { timeoutMs: CLIENT_TIMEOUT_MS });
  const result: PhaseResult = {
    name,
    ...figs,
    ...v,
    ...extra,
    ...(sharedResult !== undefined ? { shared: sharedResult } : {}),
    failureExamples: ctx.load.failureExamples().slice(failuresBefore).filter((f) => victim === undefined || !f.includes(`via ${victim}:`)).slice(0, 5),
    staleExamples: ctx.load.staleExamples().slice(stalesBefore, stalesBefore + 5),
    durationMs: Date.now() - started,
  };
  ctx.log(`phase ${name}: ${JSON.stringify({ ...figs, lost: v.lost, unreadable: v.unreadable, overlapped: v.overlapped, divergent: v.divergent, ...extra })}`);
  for (const e of v.unreadableExamples) ctx.log(`  unreadable: ${e}`);
  for (const e of result.staleExamples) ctx.log(`  stale: ${e}`);
  if (sharedResult !== undefined) logShared(ctx, name, sharedResult);
  return result;
}

/** Slug of a phase name, for its shared keys. */
const slug = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);

/** Start the shared-key load on keys of the phase's own; finish() stops it, reads every key through every node and checks the history. */
function startShared(ctx: PhaseContext, client: OpClient, name: string, windowMs: number | undefined): { finish(faulty: string[]): Promise<SharedResult> } {
  const history = new History();
  const t0 = performance.now();
  const keys = Array.from({ length: SHARED.keys }, (_, i) => `${slug(name)}/k${i}`);
  const counterKeys = Array.from({ length: SHARED.counters }, (_, i) => `${slug(name)}/n${i}`);
  const running = (): ChaosNode[] => ctx.cluster.nodes.filter((n) => n.running());
  const workload = new Workload({ history, client, keys, counterKeys, clients: SHARED.clients, mix: SHARED.mix, targets: running, timeoutMs: CLIENT_TIMEOUT_MS, maxMs: 120_000 });
  workload.start();
  return {
    async finish(faulty) {
      await workload.stop();
      const unread = await finalReads({ history, client, keys: [...keys, ...counterKeys], targets: running(), timeoutMs: CLIENT_TIMEOUT_MS });
      // JINCACHE_CHAOS_HISTORY_DIR: keep every phase's history (to analyze it again: consistency.ts)
      const dir = process.env.JINCACHE_CHAOS_HISTORY_DIR;
      if (dir !== undefined) writeFileSync(join(dir, `${slug(name)}.json`), JSON.stringify({ faulty, t0, windowMs, ops: history.ops() }));
      const tc = performance.now();
      const details = analyze(history.ops(), { faulty: new Set(faulty), t0, budget: { timeMs: 5000, maxSteps: 25_000_000 }, shrinkMs: 10_000, windowMs: windowMs ?? HEARTBEAT_MS });
      const checkMs = Math.round(performance.now() - tc);
      const copies: { [key: string]: string } = {};
      for (const key of [...keys, ...counterKeys]) copies[key] = await holderCopies(ctx.cluster, key, CLIENT_TIMEOUT_MS);
      return { ...details, heldToWindow: windowMs !== undefined, faulty, unread, checkMs, copies };
    },
  };
}

/** Whether a report line names `key` as stale, lost, not linearizable or an INCR anomaly. */
function anomalous(r: SharedResult, key: string): boolean {
  const named = (line: string): boolean => line.includes(` ${key} `) || line.startsWith(`${key}:`);
  return r.staleExamples.some(named) || r.lostExamples.some(named) || r.violations.some((v) => v.key === key) || r.incr.some((a) => a.key === key);
}

function logShared(ctx: PhaseContext, name: string, r: SharedResult): void {
  const { requests, failed, failedReads, failedAtFaulty, indeterminate, stale, staleAtFaulty, lost, unexplained, linearizability_violations, unknown, incr, unread, checkMs, beyondWindow } = r;
  ctx.log(`phase ${name}, shared keys: ${JSON.stringify({ requests, failed, failedReads, failedAtFaulty, indeterminate, stale, staleAtFaulty, lost, unexplained, linearizability_violations, unknown: unknown.length, incr: incr.length, unread: unread.length, checkMs, ...(beyondWindow !== undefined ? { beyondWindow } : {}) })}`);
  for (const e of r.failureExamples.slice(0, 3)) ctx.log(`  shared failed: ${e}`);
  for (const e of r.staleExamples) ctx.log(`  shared stale: ${e}`);
  for (const e of r.lostExamples) ctx.log(`  shared lost: ${e}`);
  for (const a of incr) ctx.log(`  INCR ${a.kind}: ${a.key} ${a.detail}`);
  for (const u of unknown) ctx.log(`  linearizability unknown: ${u.key} (${u.reason})`);
  for (const [key, c] of Object.entries(r.copies)) if (anomalous(r, key)) ctx.log(`  ${key}: ${c}`);
  for (const v of r.violations) ctx.log(`  not linearizable: ${v.key} (${v.history.length} ops${v.isMinimal ? ', minimal' : ''}):\n    ${v.history.join('\n    ')}`);
}

export async function killPhase(ctx: PhaseContext, victim: ChaosNode, opts: { holdMs: number; restart: boolean }): Promise<PhaseResult> {
  return phase(ctx, 'kill -9', victim.id, async () => {
    ctx.faulted.add(victim.id);
    ctx.log(`killing ${victim.id}`);
    await victim.kill('SIGKILL');
    const others = (): ChaosNode[] => ctx.cluster.serving();
    const restored = until(others, (i) => i.nodes.every((n: { id: string }) => n.id !== victim.id) && i.partitions.underReplicated === 0 && i.migrations.length === 0, opts.holdMs, 100);
    const rerouteMs = await until(others, (i) => healthOf(i, victim.id) === undefined || unusable(healthOf(i, victim.id)), 5000, 20);
    const [restoredMs] = await Promise.all([restored, sleep(opts.holdMs)]);
    if (opts.restart) {
      ctx.log(`restarting ${victim.id}`);
      await victim.restart();
      ctx.log(`${victim.id} serving again`);
      ctx.faulted.delete(victim.id);
      await until(others, (i) => i.nodes.length === ctx.cluster.nodes.length, 15_000);
    }
    return { rerouteMs, restoredMs };
  }, 3000);
}

export async function pausePhase(ctx: PhaseContext, victim: ChaosNode, pauseMs: number): Promise<PhaseResult> {
  return phase(ctx, 'SIGSTOP 10s', victim.id, async () => {
    ctx.faulted.add(victim.id);
    victim.pause();
    let breakerOpened = false;
    const end = Date.now() + pauseMs;
    while (Date.now() < end) {
      // half-open is only reachable from open: a breaker seen half-open has opened (a paused
      // peer's breaker cycles open -> half-open -> open once a second as probes time out)
      const t = await until(ctx.cluster.serving, (i) => tripped(i.breakers?.[victim.id]), 200, 50);
      if (t >= 0) breakerOpened = true;
      // any single node seeing it open counts
      for (const n of ctx.cluster.serving()) {
        try {
          const i = (await (await fetch(`${n.url}/cluster`, { signal: AbortSignal.timeout(500) })).json()) as { breakers?: Record<string, string> };
          if (tripped(i.breakers?.[victim.id])) breakerOpened = true;
        } catch {
          // ignore
        }
      }
      await sleep(200);
    }
    victim.resume();
    ctx.faulted.delete(victim.id);
    const healMs = await until(ctx.cluster.serving, (i) => healthOf(i, victim.id) !== undefined && !unusable(healthOf(i, victim.id)), 20_000);
    return { breakerOpened, healMs };
  }, 4000);
}

/**
 * The proxy in front of the victim drops (then delays) what its peers send it; what it sends them
 * passes. So the victim still reaches its peers and answers its clients while they take it for
 * unreachable: README's "Known window" (one direction only), checked as that weaker promise.
 */
export async function partitionPhase(ctx: PhaseContext, victim: ChaosNode, opts: { dropMs: number; delayMs: number; delay: number }): Promise<PhaseResult> {
  return phase(ctx, 'partition (drop, delay)', victim.id, async () => {
    ctx.faulted.add(victim.id);
    victim.proxy.set({ mode: 'drop' });
    await sleep(opts.dropMs);
    victim.proxy.set({ mode: 'delay', ms: opts.delay });
    await sleep(opts.delayMs);
    victim.proxy.set({ mode: 'pass' });
    ctx.faulted.delete(victim.id);
    const healMs = await until(ctx.cluster.serving, (i) => healthOf(i, victim.id) !== undefined && !unusable(healthOf(i, victim.id)), 20_000);
    return { healMs };
  }, 4000, HEARTBEAT_MS);
}

export async function etcdPhase(ctx: PhaseContext, downMs: number): Promise<PhaseResult> {
  return phase(ctx, 'etcd stopped 10s', undefined, async () => {
    const m = ctx.etcd.members[0]!;
    await m.stop('SIGKILL');
    await sleep(downMs);
    await m.start();
    const healMs = await until(ctx.cluster.serving, (i) => i.nodes.length === ctx.cluster.nodes.length && i.nodes.every((n: { health?: string }) => !unusable(n.health)), 30_000);
    return { healMs };
  }, 4000);
}

/** Print the results as a table. */
export function table(results: readonly PhaseResult[]): string {
  const cols: [string, (r: PhaseResult) => string][] = [
    ['phase', (r) => r.name],
    ['requests', (r) => String(r.requests)],
    ['failed', (r) => String(r.failed)],
    ['in flight at victim', (r) => String(r.failedAtVictim)],
    ['p50 ms', (r) => String(r.p50Ms)],
    ['p99 ms', (r) => String(r.p99Ms)],
    ['max ms', (r) => String(r.maxMs)],
    ['stale reads', (r) => String(r.staleReads)],
    ['acked keys', (r) => String(r.ackedKeys)],
    ['lost', (r) => String(r.lost)],
    ['unreadable', (r) => String(r.unreadable)],
    ['divergent', (r) => String(r.divergent)],
    ['reroute ms', (r) => (r.rerouteMs === undefined ? '' : String(r.rerouteMs))],
    ['restored ms', (r) => (r.restoredMs === undefined ? '' : String(r.restoredMs))],
    ['breaker', (r) => (r.breakerOpened === undefined ? '' : r.breakerOpened ? 'opened' : 'closed')],
    ['heal ms', (r) => (r.healMs === undefined ? '' : String(r.healMs))],
    // the shared-key load (issue 17): failures at healthy / at the faulty node, then the checks
    ['shared ops', (r) => (r.shared === undefined ? '' : String(r.shared.requests))],
    ['shared failed h/f', (r) => (r.shared === undefined ? '' : `${r.shared.failed}/${r.shared.failedAtFaulty}`)],
    ['shared stale (at f)', (r) => (r.shared === undefined ? '' : `${r.shared.stale} (${r.shared.staleAtFaulty})`)],
    ['shared lost', (r) => (r.shared === undefined ? '' : String(r.shared.lost))],
    ['not linearizable', (r) => (r.shared === undefined ? '' : `${r.shared.linearizability_violations}${r.shared.unknown.length > 0 ? ` (+${r.shared.unknown.length} unknown)` : ''}`)],
    ['INCR anomalies', (r) => (r.shared === undefined ? '' : String(r.shared.incr.length))],
    // phases checked against the Known window: stale / not linearizable / INCR anomalies it does not explain
    ['beyond window s/l/i', (r) => (r.shared?.beyondWindow === undefined ? '' : `${r.shared.beyondWindow.stale}/${r.shared.beyondWindow.linearizability_violations}/${r.shared.beyondWindow.incr}`)],
  ];
  const rows = [cols.map(([h]) => h), ...results.map((r) => cols.map(([, f]) => f(r)))];
  const widths = cols.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}
