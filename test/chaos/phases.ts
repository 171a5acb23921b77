/**
 * The faults of the chaos suite, each run under load and followed by the checks. Shared by
 * `npm run chaos` (test/chaos/run.ts, every fault) and the short form inside `npm test`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EtcdCluster } from '../helpers/etcd.ts';
import { figures, LoadGenerator, until, verify, type ChaosCluster, type ChaosNode, type PhaseFigures, type Verification } from './lib.ts';

export const REQUEST_TIMEOUT_MS = 1000;
export const CLIENT_TIMEOUT_MS = 2000;
export const LEASE_TTL_MS = 2000;
/** kill -9: replication must be whole again this long after the victim's lease expired (the repair copies the victim's partitions from their surviving holders). */
export const RESTORE_AFTER_LEASE_MS = 3000;

export const CLUSTER_CONFIG = {
  etcd: { lease_ttl: `${LEASE_TTL_MS}ms` },
  replication: { factor: 2, sync: true },
  fault_tolerance: { heartbeat_interval: '500ms', request_timeout: `${REQUEST_TIMEOUT_MS}ms`, max_retries: 3, circuit_threshold: 0.5 },
};

export interface PhaseResult extends PhaseFigures, Verification {
  name: string;
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
}

const unusable = (h: string | undefined): boolean => h === 'down' || h === 'suspected';
/** A node's health as one node's GET /cluster reports it (undefined: not a member there). */
const healthOf = (info: { nodes: { id: string; health?: string }[] }, id: string): string | undefined => info.nodes.find((n) => n.id === id)?.health;

/** Run `fault` with load running; afterwards stop the load's sampling window, settle, verify. */
async function phase(ctx: PhaseContext, name: string, victim: string | undefined, fault: () => Promise<Partial<PhaseResult>>, settleMs: number): Promise<PhaseResult> {
  ctx.log(`phase ${name}: start`);
  const from = ctx.load.samples.length;
  const failuresBefore = ctx.load.failureExamples().length;
  const stalesBefore = ctx.load.staleExamples().length;
  const started = Date.now();
  const extra = await fault();
  await sleep(settleMs);
  const samples = ctx.load.samples.slice(from);
  const figs = figures(samples, victim);
  const v = await verify(ctx.cluster, ctx.load, { timeoutMs: CLIENT_TIMEOUT_MS });
  const result: PhaseResult = { name, ...figs, ...v, ...extra, failureExamples: ctx.load.failureExamples().slice(failuresBefore).filter((f) => victim === undefined || !f.includes(`via ${victim}:`)).slice(0, 5), staleExamples: ctx.load.staleExamples().slice(stalesBefore, stalesBefore + 5), durationMs: Date.now() - started };
  ctx.log(`phase ${name}: ${JSON.stringify({ ...figs, lost: v.lost, overlapped: v.overlapped, divergent: v.divergent, ...extra })}`);
  for (const e of result.staleExamples) ctx.log(`  stale: ${e}`);
  return result;
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
  }, 4000);
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
    ['divergent', (r) => String(r.divergent)],
    ['reroute ms', (r) => (r.rerouteMs === undefined ? '' : String(r.rerouteMs))],
    ['restored ms', (r) => (r.restoredMs === undefined ? '' : String(r.restoredMs))],
    ['breaker', (r) => (r.breakerOpened === undefined ? '' : r.breakerOpened ? 'opened' : 'closed')],
    ['heal ms', (r) => (r.healMs === undefined ? '' : String(r.healMs))],
  ];
  const rows = [cols.map(([h]) => h), ...results.map((r) => cols.map(([, f]) => f(r)))];
  const widths = cols.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}
