/**
 * Shared-key workloads and what they may not show (issue 17). Many clients race on a few keys,
 * each request sent to a chosen node; every operation is recorded with its start, end and
 * outcome, and the history is checked:
 *
 *  - a read is *stale* when it returns the value of a write W' although another write W of that
 *    key began after W' ended and was acknowledged before the read began: W' then precedes W in
 *    real time, and no linearizable store may show W' after W (issue 17 states it with "W was
 *    acknowledged after W' ended"; a W that overlapped W' may be ordered before it, so it is not
 *    counted); a read of "absent" is stale once any write of the key was acknowledged before it
 *    began (the workload never deletes);
 *  - a write is *lost* when the key's final value (read through every node at the end) comes from
 *    a write that ended before that acknowledged write began.
 *
 * Values are unique (`client:seq`), so a read names the write it saw.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Op {
  kind: 'put' | 'get';
  key: string;
  /** put: the value written; get: the value read (null: absent), undefined when it failed. */
  value: string | null | undefined;
  start: number;
  end: number;
  ok: boolean;
  /** The node the client sent it to. */
  node: string;
}

export interface WorkloadTarget {
  id: string;
  url: string;
}

export interface WorkloadOptions {
  clients: number;
  keys: number;
  /** Share of puts. */
  writeRatio: number;
  /** Each request picks one of these (called per request). */
  targets: () => readonly WorkloadTarget[];
  group: string;
  clientTimeoutMs: number;
  /** Pause between a client's requests. Default 5 ms. */
  thinkMs?: number;
}

/** Run the workload until `stop` resolves (and at most `maxMs`); returns every operation. */
export async function runWorkload(opts: WorkloadOptions, stop: Promise<void>, maxMs: number): Promise<Op[]> {
  const ops: Op[] = [];
  let done = false;
  void stop.then(() => (done = true));
  const end = Date.now() + maxMs;
  await Promise.all(
    Array.from({ length: opts.clients }, async (_, c) => {
      for (let seq = 0; !done && Date.now() < end; seq++) {
        const targets = opts.targets();
        const t = targets[Math.floor(Math.random() * targets.length)]!;
        const key = `shared-${Math.floor(Math.random() * opts.keys)}`;
        const url = `${t.url}/api/${opts.group}/${key}`;
        const start = Date.now();
        if (Math.random() < opts.writeRatio) {
          const value = `${c}:${seq}`;
          let ok = false;
          try {
            const res = await fetch(url, { method: 'PUT', body: value, signal: AbortSignal.timeout(opts.clientTimeoutMs) });
            await res.arrayBuffer();
            ok = res.status === 204;
          } catch {
            ok = false;
          }
          ops.push({ kind: 'put', key, value, start, end: Date.now(), ok, node: t.id });
        } else {
          let value: string | null | undefined;
          try {
            const res = await fetch(url, { signal: AbortSignal.timeout(opts.clientTimeoutMs) });
            const body = await res.text();
            value = res.status === 200 ? body : res.status === 404 ? null : undefined;
          } catch {
            value = undefined;
          }
          ops.push({ kind: 'get', key, value, start, end: Date.now(), ok: value !== undefined, node: t.id });
        }
        await sleep(opts.thinkMs ?? 5);
      }
    }),
  );
  return ops;
}

export interface HistoryCheck {
  ops: number;
  failed: number;
  stale: Op[];
  /** A line per stale read: the read, the write it saw, the later acknowledged write. */
  staleExamples: string[];
}

/** Stale reads in `ops` (see the file comment). */
export function staleReads(ops: readonly Op[]): HistoryCheck {
  const writes = new Map<string, Op[]>();
  const byValue = new Map<string, Op>();
  for (const o of ops) {
    if (o.kind !== 'put') continue;
    const list = writes.get(o.key) ?? [];
    list.push(o);
    writes.set(o.key, list);
    byValue.set(o.value!, o);
  }
  const stale: Op[] = [];
  const examples: string[] = [];
  for (const r of ops) {
    if (r.kind !== 'get' || !r.ok) continue;
    const seen = r.value === null ? undefined : byValue.get(r.value!);
    const seenEnd = seen?.end ?? Number.NEGATIVE_INFINITY;
    const later = (writes.get(r.key) ?? []).find((w) => w.ok && w !== seen && w.start > seenEnd && w.end < r.start);
    if (later === undefined) continue;
    stale.push(r);
    if (examples.length < 10) {
      examples.push(`GET ${r.key} via ${r.node} [${r.start}, ${r.end}] read ${r.value ?? '(absent)'}${seen ? ` (written via ${seen.node} [${seen.start}, ${seen.end}])` : ''}; ${later.value} was written after it via ${later.node} [${later.start}, ${later.end}]`);
    }
  }
  return { ops: ops.length, failed: ops.filter((o) => !o.ok).length, stale, staleExamples: examples };
}

/**
 * Writes lost in the end: `finals` maps each key to the value every node returns for it now.
 * Lost: an acknowledged write of the key began after the write that produced the final value had
 * ended (it should have replaced it), or the key is absent although a write was acknowledged.
 */
export function lostWrites(ops: readonly Op[], finals: ReadonlyMap<string, string | null>): string[] {
  const lost: string[] = [];
  const byValue = new Map(ops.filter((o) => o.kind === 'put').map((o) => [o.value!, o]));
  for (const [key, value] of finals) {
    const acked = ops.filter((o) => o.kind === 'put' && o.key === key && o.ok);
    const final = value === null ? undefined : byValue.get(value);
    const endOfFinal = final?.end ?? Number.NEGATIVE_INFINITY;
    const missed = acked.find((w) => w !== final && w.start > endOfFinal);
    if (missed !== undefined) lost.push(`${key}: final ${value ?? '(absent)'}, but ${missed.value} (acknowledged, started ${missed.start}) came after it`);
  }
  return lost;
}
