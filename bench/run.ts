// `npm run bench` — runs the benchmark scenarios in order, prints a table and writes
// bench/results/latest.json, bench/results/meta.json and the table in BENCHMARKS.md.
//
//   node bench/run.ts [--quick] [--only http,redis] [--aa] [--no-write] [--list]
//
// --quick   shorter runs, one round per side (whole suite <= 3 min; full <= 15 min)
// --only    run just these scenarios; their figures replace their previous ones in the results,
//           other scenarios' figures are kept with their own date and commit
// --aa      A/A calibration: where supported, "ours" is a second copy of the peer, so the ratios
//           show the harness's own noise; never written to the results
// --no-write  print only
// --budget S  override every scenario's time budget (seconds), e.g. to test the overrun path
//
// Every figure is measured side by side with its peer in the same run and reported as a ratio.
// Each scenario has a time budget (its optional prepare(), e.g. installing redis, has its own);
// every child process is stopped by PID after each scenario, and on Ctrl-C or exit.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Figure } from './lib/figure.ts';
import { machineInfo } from './lib/machine.ts';
import { installCleanup, livePids, stopAll } from './lib/procs.ts';
import { REPO_DIR, fmtNum, fmtRatio, writeResults, type ScenarioRecord } from './lib/results.ts';
import { isScenarioSkipped, type ScenarioOptions, type ScenarioPrepare, type ScenarioRun } from './lib/scenario.ts';

interface Entry {
  name: string;
  /** Module under bench/scenarios exporting `run(opts: ScenarioOptions): Promise<Figure[]>`. */
  file: string;
  /** What it measures, for --list. */
  about: string;
  /** Wall-clock budget in seconds; past it the scenario fails and its processes are stopped. */
  budgetSec: { quick: number; full: number };
  /**
   * Default true. false: not part of a plain run, only run when named with --only (a scenario
   * whose figure another scenario already measures in its own run).
   */
  inSuite?: boolean;
}

// The suite, in run order: the in-process scenarios first, then those that start servers.
// A scenario whose file does not exist is reported as skipped, so a new scenario plugs in by
// adding its file and a line here.
//
// Budgets are caps against a hung scenario, set at about twice the time measured on the 2-core
// bench machine, so their sum is larger than the suite's own bound; what must hold is the
// measured total (full <= 15 min, --quick <= 3 min), which the summary line checks.
const SCENARIOS: readonly Entry[] = [
  { name: 'placement', file: 'placement.ts', about: 'ring/table balance, moved share and plan time, in-process', budgetSec: { quick: 20, full: 90 } },
  {
    name: 'rebalance',
    file: 'rebalance.ts',
    about: 'imbalance detection µs, rebalance planning ms, Zipf max/mean, load monitor record() cost, in-process',
    budgetSec: { quick: 15, full: 30 },
  },
  // storage: 6-19 s quick, 94 s full while other work loaded the machine (load average 11).
  { name: 'storage', file: 'storage.ts', about: 'LevelDB batch write, write-through persistence and restart load, in-process', budgetSec: { quick: 40, full: 150 } },
  { name: 'http', file: 'http.ts', about: 'HTTP GET/PUT vs bare node:http; 3-node cluster vs one node', budgetSec: { quick: 45, full: 200 } },
  { name: 'monitor', file: 'monitor.ts', about: 'GET throughput with the load monitor on vs off (load.enabled: false)', budgetSec: { quick: 25, full: 60 } },
  { name: 'redis', file: 'redis.ts', about: 'redis-benchmark GET/SET at pipeline 1 and 16, one key and -r 10k / 1M, vs redis-server', budgetSec: { quick: 110, full: 420 } },
  { name: 'redis-secure', file: 'redis-secure.ts', about: 'redis-benchmark GET/SET (P16) plain, with AUTH and with TLS, each vs redis-server configured the same', budgetSec: { quick: 60, full: 180 } },
  {
    name: 'redis-cluster-client',
    file: 'redis-cluster-client.ts',
    about: 'ioredis Redis.Cluster GET/SET over 3 jincache nodes vs a 3-master Redis Cluster',
    budgetSec: { quick: 60, full: 150 },
  },
  { name: 'idle', file: 'idle.ts', about: 'RSS of an idle node with no data (built dist/ and from the checkout) vs a bare Node process', budgetSec: { quick: 40, full: 90 } },
  { name: 'memory', file: 'memory.ts', about: 'bytes per entry (RSS after a forced GC) vs redis used_memory: 100 B, 1 KiB and 16-byte values (10M)', budgetSec: { quick: 90, full: 400 } },
  {
    name: 'migration',
    file: 'migration.ts',
    about: 'keys/s moved to a joining node (tuned and SPEC-default migration settings) vs redis-cli --cluster rebalance (both in the same run)',
    budgetSec: { quick: 90, full: 330 },
  },
  {
    name: 'redis-cluster-migration',
    file: 'redis-cluster-migration.ts',
    about: 'the Redis Cluster rebalance rate alone (migration measures it side by side; --only to run it)',
    budgetSec: { quick: 60, full: 150 },
    inSuite: false,
  },
  { name: 'warm', file: 'warm.ts', about: 'warm hit rate right after a join vs the share a groupcache-style cache reloads', budgetSec: { quick: 40, full: 120 } },
  { name: 'zipf', file: 'zipf.ts', about: 'Zipf(1.1) max/mean node QPS before/after rebalance + mirroring, real 4-node cluster', budgetSec: { quick: 60, full: 120 } },
  { name: 'failover', file: 'failover.ts', about: 'kill -9 to rerouted traffic and restored replication vs Redis Cluster', budgetSec: { quick: 40, full: 150 } },
];

/** The bounds issue 8 sets on a whole run, in seconds. */
const SUITE_BOUND_SEC = { quick: 180, full: 900 };

const SCENARIO_DIR = join(REPO_DIR, 'bench', 'scenarios');

function usage(msg: string): never {
  process.stderr.write(`bench: ${msg}\nusage: node bench/run.ts [--quick] [--only ${SCENARIOS.map((s) => s.name).join(',')}] [--aa] [--no-write] [--budget SEC] [--list]\n`);
  process.exit(2);
}

function parseCli(): { quick: boolean; only: Set<string> | null; aa: boolean; write: boolean; list: boolean; budget: number | null } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        aa: { type: 'boolean', default: false },
        'no-write': { type: 'boolean', default: false },
        budget: { type: 'string' },
        list: { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    usage((e as Error).message);
  }
  let only: Set<string> | null = null;
  if (values.only !== undefined) {
    only = new Set(values.only.split(',').map((s) => s.trim()).filter((s) => s.length > 0));
    for (const n of only) if (!SCENARIOS.some((s) => s.name === n)) usage(`unknown scenario "${n}"`);
  }
  let budget: number | null = null;
  if (values.budget !== undefined) {
    budget = Number(values.budget);
    if (!Number.isFinite(budget) || budget <= 0) usage(`--budget must be a positive number of seconds. Got: ${values.budget}`);
  }
  return { quick: values.quick, only, aa: values.aa, write: !values['no-write'] && !values.aa, list: values.list, budget };
}

interface Loaded {
  run: ScenarioRun;
  prepare: ScenarioPrepare | null;
}

/** The scenario's module, or why it cannot run (file not written yet, no run export). */
async function loadScenario(e: Entry): Promise<Loaded | string> {
  const file = join(SCENARIO_DIR, e.file);
  if (!existsSync(file)) return `bench/scenarios/${e.file} does not exist yet`;
  const mod = (await import(file)) as { run?: unknown; prepare?: unknown };
  if (typeof mod.run !== 'function') return `bench/scenarios/${e.file} exports no run() function`;
  return { run: mod.run as ScenarioRun, prepare: typeof mod.prepare === 'function' ? (mod.prepare as ScenarioPrepare) : null };
}

/** Bound on a scenario's prepare() (installing packages), outside its measuring budget. */
const PREPARE_BUDGET_SEC = 600;

class BudgetExceeded extends Error {
  readonly code = 'BENCH_BUDGET';
}

/** After an overrun, how long the abandoned scenario gets to notice its aborted signal. */
const ABORT_GRACE_MS = 15_000;

/**
 * Races `start(signal)` against the budget. On overrun, aborts the signal and waits (bounded)
 * for the scenario to stop, so it does not start servers while the next scenario measures.
 */
async function withBudget<T>(start: (signal: AbortSignal) => Promise<T>, sec: number, name: string): Promise<T> {
  const ac = new AbortController();
  const p = start(ac.signal);
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'overrun'>((resolve) => {
    timer = setTimeout(() => resolve('overrun'), sec * 1000);
  });
  try {
    const r = await Promise.race([p, t]);
    if (r !== 'overrun') return r;
  } finally {
    clearTimeout(timer);
  }
  ac.abort(new BudgetExceeded(`${name} exceeded its ${sec} s budget`));
  await Promise.race([p.catch(() => {}), new Promise((r) => setTimeout(r, ABORT_GRACE_MS))]);
  throw new BudgetExceeded(`${name} exceeded its ${sec} s budget`);
}

function printTable(figures: readonly Figure[]): void {
  const rows = [['figure', 'unit', 'ours', 'peer', 'ratio', 'target', 'result']];
  for (const f of figures) {
    rows.push([
      f.name,
      f.unit,
      fmtNum(f.ours),
      f.peer === null ? '-' : fmtNum(f.peer),
      f.ratio === null ? '-' : fmtRatio(f.ratio),
      f.target ?? '-',
      f.pass === null ? 'reported' : f.pass ? 'pass' : 'MISS',
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  '));
}

async function main(): Promise<number> {
  const cli = parseCli();
  if (cli.list) {
    for (const s of SCENARIOS) {
      const state = !existsSync(join(SCENARIO_DIR, s.file)) ? '(n/a)  ' : s.inSuite === false ? '(--only)' : '';
      console.log(`${s.name.padEnd(24)} ${state.padEnd(8)} ${s.about}`);
    }
    return 0;
  }
  installCleanup();
  const machine = machineInfo(REPO_DIR);
  const commit = machine.commit === null ? null : machine.dirty ? `${machine.commit}+dirty` : machine.commit;
  const chosen = SCENARIOS.filter((s) => (cli.only === null ? s.inSuite !== false : cli.only.has(s.name)));
  const suiteStart = Date.now();
  console.log(
    `bench: ${cli.quick ? 'quick' : 'full'} run of ${chosen.map((s) => s.name).join(', ')}` +
      `${cli.aa ? ' (A/A calibration, nothing written)' : ''} on ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}`,
  );

  const figures: Figure[] = [];
  const records: ScenarioRecord[] = [];
  let failed = 0;
  for (const e of chosen) {
    const t0 = Date.now();
    const budget = cli.budget ?? (cli.quick ? e.budgetSec.quick : e.budgetSec.full);
    const log = (line: string) => console.log(`[${e.name} ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${line}`);
    let status: ScenarioRecord['status'] = 'ok';
    let reason: string | null = null;
    let got: Figure[] = [];
    log(`start (budget ${budget} s)`);
    try {
      const mod = await loadScenario(e);
      if (typeof mod === 'string') {
        status = 'skipped';
        reason = mod;
      } else {
        const opts: ScenarioOptions = { quick: cli.quick, aa: cli.aa, log };
        const prepare = mod.prepare;
        if (prepare) await withBudget((signal) => prepare({ ...opts, signal }), PREPARE_BUDGET_SEC, `${e.name} prepare`);
        const t1 = Date.now();
        got = await withBudget((signal) => mod.run({ ...opts, signal }), budget, e.name);
        log(`measured in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
      }
    } catch (err) {
      if (isScenarioSkipped(err)) {
        status = 'skipped';
        reason = err.message;
      } else {
        status = 'failed';
        reason = err instanceof BudgetExceeded ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
        failed++;
      }
    } finally {
      // Whatever the scenario left running (a throw, a blown budget) is stopped by PID here.
      if (livePids().length > 0) log(`stopping ${livePids().length} leftover process(es)`);
      await stopAll();
    }
    const durationSec = (Date.now() - t0) / 1000;
    log(`${status} in ${durationSec.toFixed(1)} s${reason === null ? '' : `: ${reason}`}`);
    figures.push(...got);
    records.push({ name: e.name, status, reason, quick: cli.quick, date: new Date().toISOString(), durationSec, commit, figures: got.map((f) => f.name) });
  }

  const suiteSec = (Date.now() - suiteStart) / 1000;
  const bound = cli.quick ? SUITE_BOUND_SEC.quick : SUITE_BOUND_SEC.full;
  // Only a plain run of the whole suite is held to the bound (--only runs a part of it).
  const over = cli.only === null && cli.budget === null && suiteSec > bound ? ` — OVER the ${bound} s bound for a ${cli.quick ? 'quick' : 'full'} run` : '';
  console.log(`\nbench: done in ${suiteSec.toFixed(0)} s${over}\n`);
  printTable(figures);
  for (const r of records) if (r.status !== 'ok') console.log(`${r.name}: ${r.status} — ${(r.reason ?? '').split('\n')[0]}`);
  const misses = figures.filter((f) => f.pass === false).length;
  console.log(`\n${figures.length} figures, ${misses} miss(es), ${failed} failed scenario(s)`);
  if (cli.write) {
    writeResults({ figures, scenarios: records, machine, merge: cli.only !== null });
    console.log('wrote bench/results/latest.json, bench/results/meta.json and BENCHMARKS.md');
  }
  // Misses are results, not errors; a scenario that could not run is an error.
  return failed > 0 ? 1 : 0;
}

// Exit explicitly: a scenario abandoned after its budget may still hold timers or sockets.
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
