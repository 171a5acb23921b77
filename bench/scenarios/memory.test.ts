import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, startProcess, waitForPort } from '../lib/procs.ts';
import { CASES, cacheBytesFor, forceGc, parseVmRss, readRss, settledRss } from './memory.ts';

test('parseVmRss reads kB from /proc/PID/status', () => {
  assert.equal(parseVmRss('Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nVmData: 1 kB\n'), 12345 * 1024);
  assert.throws(() => parseVmRss('Name:\tnode\n'), /VmRSS/);
});

test('readRss and settledRss of this process', async () => {
  const rss = readRss(process.pid);
  assert.ok(Math.abs(rss - process.memoryUsage().rss) < 64 * 1024 * 1024, `${rss} vs ${process.memoryUsage().rss}`);
  const t0 = Date.now();
  const settled = await settledRss(process.pid, { maxMs: 2000, intervalMs: 100, tolerance: 0.5 });
  assert.ok(settled > 0);
  assert.ok(Date.now() - t0 < 1000, 'a stable process settles at the first pair of readings');
});

test('forceGc frees a child\'s garbage through its inspector', { timeout: 30_000 }, async () => {
  const port = await freePort();
  // Allocates ~200 MB of garbage once, then idles: only a GC gets its heap back down.
  const script = 'let a = []; for (let i = 0; i < 2e6; i++) a.push({ i, s: "x" + i }); a = null; setInterval(() => {}, 1000)';
  const p = startProcess({ name: 'gc-child', command: process.execPath, args: [`--inspect=127.0.0.1:${port}`, '-e', script] });
  try {
    await waitForPort(port, { proc: p });
    await new Promise((r) => setTimeout(r, 1500));
    const before = readRss(p.pid);
    await forceGc(port);
    await new Promise((r) => setTimeout(r, 300));
    const after = readRss(p.pid);
    assert.ok(after < before, `RSS ${before} -> ${after} after a forced GC`);
  } finally {
    await p.stop();
  }
});

test('the cases: 100 B (issue 8), 1 KiB and 10M 16-byte entries (issue 18), each with room to evict nothing', () => {
  assert.deepEqual(CASES.map((c) => [c.suffix, c.valueBytes, c.entries.full]), [['', 100, 1_000_000], ['.1kib', 1024, 1_000_000], ['.16b', 16, 10_000_000]]);
  for (const c of CASES) {
    const mib = Number(/^(\d+)MiB$/.exec(cacheBytesFor(c.entries.full, c.valueBytes))![1]);
    // far above key + value + any per-entry charge up to 200 bytes
    assert.ok(mib * 2 ** 20 >= c.entries.full * (c.valueBytes + 14 + 200), `${c.suffix}: ${mib} MiB`);
  }
});
