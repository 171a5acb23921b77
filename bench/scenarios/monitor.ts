/**
 * Load-monitor overhead (issue 6: "the monitor on the request path must cost ≤ 3% of throughput").
 *
 * Ours: a single node with the load monitor on (the default). Peer: the same node with
 * `load.enabled: false` (no monitor, no reports). Both serve the same 100-byte values; GET
 * throughput is compared in alternating rounds in the same run, and the figure is the median
 * ratio (target ≥ 0.97x, i.e. at most 3% slower).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Figure } from '../lib/figure.ts';
import { figure } from '../lib/figure.ts';
import { compareAlternating, type LoadSpec } from '../lib/http-load.ts';
import { requireJincache, seed, startNode } from '../lib/jincache.ts';
import { freePorts, type Proc } from '../lib/procs.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';
import { benchValue, keyPaths } from './http.ts';

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  const log = opts.log ?? (() => {});
  requireJincache();
  const dir = mkdtempSync(join(tmpdir(), 'jincache-monitor-'));
  const offConfig = join(dir, 'off.yaml');
  writeFileSync(offConfig, 'load:\n  enabled: false\n');
  const paths = keyPaths();
  const value = benchValue();
  const started: Proc[] = [];
  try {
    const [onPort, offPort] = await freePorts(2);
    const on = await startNode({ id: 'mon-on', port: onPort! });
    started.push(on.proc);
    const off = await startNode({ id: 'mon-off', port: offPort! }, { extraArgs: ['--config', offConfig] });
    started.push(off.proc);
    await Promise.all([seed(on.url, paths, value), seed(off.url, paths, value)]);
    const rounds = opts.quick ? 3 : 8;
    const spec: LoadSpec = { paths, method: 'GET', connections: 50, warmupSec: opts.quick ? 0.5 : 1, durationSec: opts.quick ? 1 : 2 };
    log(`  GET with the monitor on vs off: ${rounds} alternating rounds`);
    const c = await compareAlternating({ ours: on.url, peer: off.url, spec, rounds, log, signal: opts.signal });
    return [
      figure({ name: 'monitor.get.rps_on_vs_off', unit: 'req/s', ours: c.ours.rps, peer: c.peer.rps, ratio: c.rpsRatio, target: { kind: 'ratio>=', value: 0.97 } }),
    ];
  } finally {
    await Promise.all(started.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}
