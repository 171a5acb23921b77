import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Poll `check` until it returns a truthy value or `timeoutMs` passes; returns that value and how
 * long it took. On timeout it throws with `what` and the last value seen.
 */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 10_000, everyMs = 50): Promise<{ value: NonNullable<T>; ms: number }> {
  const start = Date.now();
  let last: unknown;
  while (Date.now() - start < timeoutMs) {
    try {
      last = await check();
      if (last) return { value: last as NonNullable<T>, ms: Date.now() - start };
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 500)}`);
}

/** GET a node's /cluster JSON. */
export async function clusterOf(url: string): Promise<any> {
  const res = await fetch(`${url}/cluster`, { signal: AbortSignal.timeout(2000) });
  return res.json();
}
