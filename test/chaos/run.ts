/**
 * `npm run chaos`: the full chaos suite (bounded to ~5 min). A 5-node cluster on real etcd
 * (lease TTL 2 s, heartbeat 500 ms, request timeout 1 s), every node behind a fault proxy,
 * bounded load throughout, and in turn: kill -9 of a node (then restarted), SIGSTOP for 10 s,
 * a peer partition (drop 5 s, then 800 ms delay 5 s), etcd stopped for 10 s. After each: failed
 * client requests, acknowledged writes readable through every live node, replica convergence.
 * Beside that per-worker load, every phase runs the shared-key load of issue 17 (phases.ts
 * SHARED: 16 clients on 8 shared keys and 2 counters, every running node targeted, the faulty one
 * included) and checks its history: stale reads, lost writes, linearizability, INCR anomalies.
 * Prints a table, writes bench/results/chaos.json, and exits non-zero when a target is missed.
 *
 * `npm run chaos -- --hosts`: the suite on namespaced test hosts instead (./hosts.ts: kernel
 * partitions, a 3-member etcd, shared keys and the linearizability checker).
 * `npm run chaos -- --scale`: the control-plane scale test (./scale.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEtcd } from '../helpers/etcd.ts';
import { GROUP, LoadGenerator, startChaosCluster, until } from './lib.ts';
import { CLIENT_TIMEOUT_MS, CLUSTER_CONFIG, etcdPhase, HEARTBEAT_MS, LEASE_TTL_MS, RESTORE_AFTER_LEASE_MS, killPhase, partitionPhase, pausePhase, REQUEST_TIMEOUT_MS, SHARED, table, type PhaseContext, type PhaseResult } from './phases.ts';
import { respIncr } from './resp-incr.ts';
import { httpOpClient } from './workload.ts';

if (process.argv.includes('--hosts') || process.argv.includes('--scale')) {
  const suite = process.argv.includes('--hosts') ? await import('./hosts.ts') : await import('./scale.ts');
  process.exit(await suite.main());
}

const OUT = resolve(import.meta.dirname, '../../bench/results/chaos.json');
const BUDGET_MS = 330_000;

const started = Date.now();
const loadBefore = loadavg();
const budget = setTimeout(() => {
  console.error(`chaos: over the ${BUDGET_MS / 1000} s budget; aborting`);
  process.exit(2);
}, BUDGET_MS);
budget.unref();

const log = (m: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s ${new Date().toISOString().slice(11, 23)}] ${m}`);
const etcd = await startEtcd();
const cluster = await startChaosCluster({ nodes: 5, etcdEndpoints: etcd.endpoints, config: CLUSTER_CONFIG });
const results: PhaseResult[] = [];
const faulted = new Set<string>();
const WORKERS = 8;
const load = new LoadGenerator({ workers: WORKERS, keysPerWorker: 60, timeoutMs: CLIENT_TIMEOUT_MS, targets: () => cluster.serving().filter((n) => !faulted.has(n.id)) });
const incr = respIncr();
const sharedClient = { ...httpOpClient({ group: GROUP }), incr: incr.incr };
try {
  await until(() => cluster.serving(), (i) => i.nodes.length === 5 && new Set(i.partitions.owners).size === 5, 30_000);
  log('cluster up');
  load.start();
  await sleep(3000);
  const ctx: PhaseContext = { cluster, etcd, load, faulted, log, sharedClient };
  const [n1, n2, n3, n4] = cluster.nodes;
  results.push(await killPhase(ctx, n2!, { holdMs: 8000, restart: true }));
  results.push(await pausePhase(ctx, n3!, 10_000));
  results.push(await partitionPhase(ctx, n4!, { dropMs: 5000, delayMs: 5000, delay: 800 }));
  results.push(await etcdPhase(ctx, 10_000));
  void n1;
} finally {
  await load.stop();
  incr.close();
  await cluster.stop();
  await etcd.stop();
}

console.log(`\n${table(results)}\n`);
const loadAfter = loadavg();
console.log(`load average (1, 5, 15 min): ${loadBefore.map((x) => x.toFixed(2)).join(' ')} at the start, ${loadAfter.map((x) => x.toFixed(2)).join(' ')} at the end`);
const shared = (r: PhaseResult): NonNullable<PhaseResult['shared']> => r.shared!;
// A write in flight at a coordinator that stops answering fails as may-or-may-not (it is never
// applied twice, README "A write is applied at most once"): at most one per worker, each has one
// request in flight. Reads never fail: they go to the next holder.
const inFlightOnly = (r: PhaseResult): boolean => r.failedReads === 0 && r.failed <= WORKERS;
/** Phases checked against README's weaker promise for a node cut off in one direction. */
const windowed = results.filter((r) => r.shared?.heldToWindow === true).map((r) => r.name).join(', ') || 'none';
/** A shared-key figure as the phase is held to it: beyond the Known window, or all of it. */
const held = (r: PhaseResult, f: (c: { stale: number; linearizability_violations: number; incr: number }) => number): number => {
  const s = r.shared!;
  return f(s.heldToWindow && s.beyondWindow !== undefined ? s.beyondWindow : { stale: s.stale, linearizability_violations: s.linearizability_violations, incr: s.incr.length });
};
const targets = [
  { what: `kill -9: 0 failed reads, failed writes only those in flight at the victim (<= ${WORKERS})`, ok: inFlightOnly(results[0]!) },
  { what: 'kill -9: 0 lost acknowledged writes', ok: results[0]!.lost === 0 },
  { what: 'kill -9: rerouting within 1 s', ok: results[0]!.rerouteMs !== undefined && results[0]!.rerouteMs >= 0 && results[0]!.rerouteMs < 1000 },
  { what: `kill -9: replication restored within ${RESTORE_AFTER_LEASE_MS / 1000} s after the lease TTL (${LEASE_TTL_MS / 1000} s)`, ok: results[0]!.restoredMs !== undefined && results[0]!.restoredMs >= 0 && results[0]!.restoredMs <= LEASE_TTL_MS + RESTORE_AFTER_LEASE_MS },
  { what: `SIGSTOP: p99 within request_timeout (${REQUEST_TIMEOUT_MS} ms)`, ok: results[1]!.p99Ms <= REQUEST_TIMEOUT_MS },
  { what: 'SIGSTOP: breaker opens', ok: results[1]!.breakerOpened === true },
  { what: `SIGSTOP: 0 failed reads, failed writes only those in flight at the victim (<= ${WORKERS})`, ok: inFlightOnly(results[1]!) },
  { what: 'partition heal: replicas converge', ok: results[2]!.divergent === 0 },
  { what: 'every phase: 0 lost acknowledged writes', ok: results.every((r) => r.lost === 0) },
  { what: 'every phase: every acknowledged key readable through every live node after the phase (3 tries)', ok: results.every((r) => r.unreadable === 0) },
  { what: 'every phase: 0 stale reads (no read older than the last acknowledged write of its key)', ok: results.every((r) => r.staleReads === 0) },
  { what: `every phase, shared keys: 0 stale reads at any node, the faulty one included (${windowed}: none beyond README's Known window, ${HEARTBEAT_MS} ms)`, ok: results.every((r) => held(r, (c) => c.stale) === 0) },
  { what: 'every phase, shared keys: 0 lost acknowledged writes (final reads through every node)', ok: results.every((r) => shared(r).lost === 0) },
  { what: `every phase, shared keys: every key linearizable, decided within the budget (${windowed}: or explained by the Known window)`, ok: results.every((r) => held(r, (c) => c.linearizability_violations) === 0 && shared(r).unknown.length === 0) },
  { what: `every phase, shared keys: 0 INCR anomalies (${windowed}: none beyond the Known window), 0 reads of a value never written`, ok: results.every((r) => held(r, (c) => c.incr) === 0 && shared(r).unexplained === 0) },
  { what: 'every phase, shared keys: 0 failed reads at the nodes not under the fault', ok: results.every((r) => shared(r).failedReads === 0) },
];
for (const t of targets) console.log(`${t.ok ? 'MET   ' : 'MISSED'} ${t.what}`);
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(
  OUT,
  `${JSON.stringify(
    {
      when: new Date().toISOString(),
      config: CLUSTER_CONFIG,
      load: { workers: WORKERS, keys: WORKERS * 60, clientTimeoutMs: CLIENT_TIMEOUT_MS, writeRatio: 0.5 },
      sharedLoad: { ...SHARED, clientTimeoutMs: CLIENT_TIMEOUT_MS, protocols: 'reads, writes and deletes over HTTP; INCRBY 1 over RESP', targets: 'every running node, the faulty one included' },
      loadAverage: { start: loadBefore, end: loadAfter },
      note: 'failed = failed client requests sent to nodes not under the fault; failedAtVictim = requests in flight at the faulted node itself when the fault hit (clients do not target a faulted node afterwards). shared = the shared-key load of the phase: failed / failedAtFaulty = ops that did not succeed at the other nodes / at the faulty node; stale = reads older than an acknowledged write that began after the read value\'s write ended (issue 17); lost = keys whose final reads miss an acknowledged write; linearizability_violations = keys whose history is not linearizable (Wing-Gong/Lowe, per key); incr = INCR anomalies (duplicate or lost effects); beyondWindow = stale reads, keys not linearizable and INCR anomalies that README\'s Known window (one heartbeat after the first acknowledged write a read missed) does not explain; only the phases with heldToWindow (the partition) are held to those instead of the full figures',
      phases: results,
      targets,
      durationMs: Date.now() - started,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${OUT}`);
process.exit(targets.every((t) => t.ok) ? 0 : 1);
