// HTTP load with autocannon@9, run programmatically in the harness process.
//
// Because the load generator shares this process (and the machine's 2 cores) with whatever it
// measures, the two sides of a comparison are never loaded at once: compareAlternating runs
// ours, peer, ours, peer, ... in short slices with identical settings and reports the median of
// the per-round ratios, which cancels most of the drift of a shared machine.

import autocannon from 'autocannon';
import type { AutocannonResult, AutocannonRequest } from 'autocannon';
import * as hdr from 'hdr-histogram-js';
import { median } from './figure.ts';

export interface LoadSpec {
  method: 'GET' | 'PUT';
  /** Request paths, used in turn request by request (one shared cursor). Non-empty. */
  paths: readonly string[];
  /** Request body (PUT). Default none. */
  body?: Buffer;
  /** Concurrent keep-alive connections. Default 50 (as redis-benchmark's -c 50). */
  connections?: number;
  /** Measured seconds. Default 5. Ignored when `amount` is set. */
  durationSec?: number;
  /** Stop after this many requests instead of after `durationSec`. */
  amount?: number;
  /** Unmeasured seconds of the same load first (JIT, connection set-up). Default 0. */
  warmupSec?: number;
  /** Per-request timeout in seconds. Default 10. */
  timeoutSec?: number;
  /**
   * Largest tolerated share of failed requests (errors, timeouts, non-2xx). Default 0.01: above
   * it the run throws, because a throughput made of errors is not a figure.
   */
  maxFailureShare?: number;
}

export interface LoadResult {
  /** Successful (2xx) responses per second. */
  rps: number;
  /** Latency percentiles of 2xx responses, in ms, at microsecond resolution. */
  p50Ms: number;
  p99Ms: number;
  ok: number;
  failed: number;
  durationSec: number;
}

export class LoadError extends Error {
  readonly code = 'BENCH_LOAD';
  override name = 'LoadError';
}

export function isLoadError(e: unknown): e is LoadError {
  return e instanceof LoadError;
}

/** One load run against `baseUrl` (e.g. `http://127.0.0.1:8001`). */
export async function runLoad(baseUrl: string, spec: LoadSpec): Promise<LoadResult> {
  if (spec.paths.length === 0) throw new LoadError('LoadSpec.paths must not be empty');
  if ((spec.warmupSec ?? 0) > 0) {
    await runOnce(baseUrl, { ...spec, amount: undefined, durationSec: spec.warmupSec, maxFailureShare: 1 });
  }
  return runOnce(baseUrl, spec);
}

async function runOnce(baseUrl: string, spec: LoadSpec): Promise<LoadResult> {
  const connections = spec.connections ?? 50;
  const durationSec = spec.durationSec ?? 5;
  const timeoutSec = spec.timeoutSec ?? 10;
  const paths = spec.paths;
  let cursor = 0;
  const request: AutocannonRequest = {
    method: spec.method,
    setupRequest: (req) => {
      const path = paths[cursor]!;
      cursor = cursor + 1 === paths.length ? 0 : cursor + 1;
      return { ...req, path };
    },
  };
  if (spec.body) {
    request.body = spec.body;
    request.headers = { 'content-type': 'application/octet-stream' };
  }

  // autocannon's own latency histogram is in whole milliseconds, too coarse for sub-ms local
  // requests; record microseconds ourselves from its per-response event.
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });

  // An outer bound in case autocannon stalls (amount mode against a stuck server).
  const boundMs = ((spec.amount === undefined ? durationSec : 600) + timeoutSec + 15) * 1000;

  const result = await new Promise<AutocannonResult>((resolve, reject) => {
    let settled = false;
    const inst = autocannon(
      {
        url: baseUrl,
        connections,
        pipelining: 1,
        timeout: timeoutSec,
        ...(spec.amount === undefined ? { duration: durationSec } : { amount: spec.amount }),
        requests: [request],
      },
      (err, res) => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        if (err) reject(new LoadError(`autocannon against ${baseUrl}: ${err.message}`));
        else resolve(res);
      },
    );
    inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status >= 200 && status < 300) hist.recordValue(Math.max(1, Math.round(ms * 1000)));
    });
    const guard = setTimeout(() => {
      inst.stop();
      if (settled) return;
      settled = true;
      reject(new LoadError(`load against ${baseUrl} did not finish within ${boundMs} ms`));
    }, boundMs);
  });

  const ok = result['2xx'];
  const failed = result.errors + result.timeouts + result.non2xx;
  const total = ok + failed;
  const maxShare = spec.maxFailureShare ?? 0.01;
  if (total === 0 || failed / total > maxShare) {
    throw new LoadError(
      `${spec.method} ${baseUrl}: ${failed} of ${total} requests failed ` +
        `(errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}); allowed share ${maxShare}`,
    );
  }
  const p50Ms = hist.getValueAtPercentile(50) / 1000;
  const p99Ms = hist.getValueAtPercentile(99) / 1000;
  hist.destroy();
  const secs = result.duration > 0 ? result.duration : durationSec;
  return { rps: ok / secs, p50Ms, p99Ms, ok, failed, durationSec: secs };
}

export interface CompareOptions {
  /** Base URL of our server. */
  ours: string;
  /** Base URL of the peer. */
  peer: string;
  spec: LoadSpec;
  /**
   * Rounds of (ours, peer), each `spec.durationSec` per side, after one warm-up of
   * `spec.warmupSec` per side. Default 1. Many short rounds cancel a shared machine's drift
   * better than a few long ones: the ratio is the median of the per-round ratios.
   */
  rounds?: number;
  /** Progress lines. Default: silent. */
  log?: (line: string) => void;
  /** Checked before every run; default none. */
  signal?: AbortSignal;
}

export interface Comparison {
  /** Per-field medians over the rounds. */
  ours: LoadResult;
  peer: LoadResult;
  /** Medians of the per-round ratios ours / peer. */
  rpsRatio: number;
  p50Ratio: number;
  p99Ratio: number;
  rounds: { ours: LoadResult; peer: LoadResult }[];
}

/** Loads ours and the peer alternately (A B A B ...) with the same spec; see the file comment. */
export async function compareAlternating(opts: CompareOptions): Promise<Comparison> {
  const rounds = opts.rounds ?? 1;
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) {
    throw new LoadError(`rounds must be an integer in 1..50. Got: ${rounds}`);
  }
  const log = opts.log ?? (() => {});
  opts.signal?.throwIfAborted();
  const warmupSec = opts.spec.warmupSec ?? 0;
  if (warmupSec > 0) {
    // Once per side, not per round: rounds are short slices, and many of them.
    await runOnce(opts.ours, { ...opts.spec, amount: undefined, durationSec: warmupSec, maxFailureShare: 1 });
    await runOnce(opts.peer, { ...opts.spec, amount: undefined, durationSec: warmupSec, maxFailureShare: 1 });
  }
  const slice: LoadSpec = { ...opts.spec, warmupSec: 0 };
  const done: { ours: LoadResult; peer: LoadResult }[] = [];
  for (let i = 0; i < rounds; i++) {
    opts.signal?.throwIfAborted();
    const ours = await runLoad(opts.ours, slice);
    const peer = await runLoad(opts.peer, slice);
    log(`  round ${i + 1}/${rounds}: ours ${fmtLoad(ours)} | peer ${fmtLoad(peer)} | ratio ${(ours.rps / peer.rps).toFixed(2)}`);
    done.push({ ours, peer });
  }
  return {
    ours: medianResult(done.map((r) => r.ours)),
    peer: medianResult(done.map((r) => r.peer)),
    rpsRatio: median(done.map((r) => r.ours.rps / r.peer.rps)),
    p50Ratio: median(done.map((r) => r.ours.p50Ms / r.peer.p50Ms)),
    p99Ratio: median(done.map((r) => r.ours.p99Ms / r.peer.p99Ms)),
    rounds: done,
  };
}

function medianResult(rs: readonly LoadResult[]): LoadResult {
  return {
    rps: median(rs.map((r) => r.rps)),
    p50Ms: median(rs.map((r) => r.p50Ms)),
    p99Ms: median(rs.map((r) => r.p99Ms)),
    ok: median(rs.map((r) => r.ok)),
    failed: median(rs.map((r) => r.failed)),
    durationSec: median(rs.map((r) => r.durationSec)),
  };
}

export function fmtLoad(r: LoadResult): string {
  return `${Math.round(r.rps)} req/s p50 ${r.p50Ms.toFixed(2)} p99 ${r.p99Ms.toFixed(2)} ms${r.failed > 0 ? ` (${r.failed} failed)` : ''}`;
}
