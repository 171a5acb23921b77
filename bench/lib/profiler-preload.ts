// Loaded into a profiled process with `node --import bench/lib/profiler-preload.ts ...` (by
// bench/profile.ts): SIGUSR2 starts profiling, the next SIGUSR2 stops it and writes the profile
// to $PROFILE_OUT, so only the measured window is in it (not start-up, not the warm-up).
//
// PROFILE_KIND=cpu: the V8 CPU profiler (what `--cpu-prof` writes), sampling every
//   PROFILE_INTERVAL_US µs (default 200).
// PROFILE_KIND=heap: the sampling heap profiler with the objects the young and old
//   collections freed kept in it, so it shows what was allocated, garbage included (`--heap-prof`
//   reports only what is still alive when it stops, which hides per-command garbage).
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

const out = process.env.PROFILE_OUT;
const kind = process.env.PROFILE_KIND === 'heap' ? 'heap' : 'cpu';
if (out === undefined) throw new Error('profiler-preload: PROFILE_OUT is not set');

const session = new Session();
session.connect();
let running = false;

function post(method: string, params: object = {}): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res as Record<string, unknown>))));
}

async function toggle(): Promise<void> {
  if (!running) {
    running = true;
    if (kind === 'cpu') {
      await post('Profiler.enable');
      await post('Profiler.setSamplingInterval', { interval: Number(process.env.PROFILE_INTERVAL_US ?? 200) });
      await post('Profiler.start');
    } else {
      await post('HeapProfiler.enable');
      await post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    }
    return;
  }
  running = false;
  const res = kind === 'cpu' ? await post('Profiler.stop') : await post('HeapProfiler.stopSampling');
  writeFileSync(out!, JSON.stringify(res.profile));
}

process.on('SIGUSR2', () => {
  toggle().catch((e: unknown) => process.stderr.write(`profiler-preload: ${String(e)}\n`));
});
