/**
 * Clients racing on a shared small key set, recording every operation in a {@link History}:
 * each client loops (bounded in ops and time) picking a key, an operation and a node, the node
 * under a fault included; the HTTP client speaks SPEC §3. INCR goes through `OpClient.incr`,
 * which the HTTP API does not have: a workload with INCRs in its mix needs a client that
 * provides it (resp-incr.ts sends them over the Redis protocol), and the default mix has none.
 */
import type { History, Op, OpKind } from './history.ts';

export interface OpTarget {
  readonly id: string;
  /** Client API base URL. */
  readonly url: string;
  /** Its Redis-protocol port on the same host, when it listens on one (INCR: resp-incr.ts). */
  readonly respPort?: number;
}

export type Reply<T> = { outcome: 'ok'; result: T } | { outcome: 'fail' | 'indeterminate'; error: string };

export interface OpClient {
  read(target: OpTarget, key: string, timeoutMs: number): Promise<Reply<string | null>>;
  write(target: OpTarget, key: string, value: string, timeoutMs: number): Promise<Reply<undefined>>;
  delete(target: OpTarget, key: string, timeoutMs: number): Promise<Reply<undefined>>;
  /** INCR by `delta`: the new value, or "error" when the key holds no integer. Absent: no INCR. */
  incr?(target: OpTarget, key: string, delta: number, timeoutMs: number): Promise<Reply<number | 'error'>>;
}

/**
 * How an HTTP mutation that got no 2xx ended: a 4xx is bad input, which changes nothing (SPEC
 * §3), and so is a refused connection (nothing was sent); a timeout, a reset or a 5xx may have
 * been applied.
 */
export function mutationFailure(status: number | undefined, error?: unknown): Reply<never> {
  if (status !== undefined) return { outcome: status >= 400 && status < 500 && status !== 408 ? 'fail' : 'indeterminate', error: `HTTP ${status}` };
  const code = errorName(error);
  return { outcome: code === 'ECONNREFUSED' ? 'fail' : 'indeterminate', error: code };
}

/** The socket error code under fetch's TypeError, else the error's name (TimeoutError, AbortError). */
function errorName(e: unknown): string {
  return ((e as { cause?: { code?: string } })?.cause?.code ?? (e as Error)?.name ?? 'error') as string;
}

/** ` <error>: <message>` of a SPEC §3 error body, so a failed read says why; empty when the body is not one. */
export function errorBody(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body.error === 'string') return ` ${body.error}${typeof body.message === 'string' ? `: ${body.message.slice(0, 200)}` : ''}`;
  } catch {
    // not JSON
  }
  return '';
}

/** SPEC §3 over fetch. `headers` is called per request (it carries the credential, when any). */
export function httpOpClient(opts: { group: string; headers?: () => Record<string, string> }): OpClient {
  const url = (t: OpTarget, key: string): string => `${t.url}/api/${opts.group}/${encodeURIComponent(key)}`;
  const headers = opts.headers ?? (() => ({}));
  const mutate = async (t: OpTarget, key: string, method: 'PUT' | 'DELETE', body: string | undefined, timeoutMs: number): Promise<Reply<undefined>> => {
    try {
      const res = await fetch(url(t, key), { method, ...(body !== undefined ? { body } : {}), headers: headers(), signal: AbortSignal.timeout(timeoutMs) });
      await res.arrayBuffer();
      return res.status === 204 || res.status === 200 ? { outcome: 'ok', result: undefined } : mutationFailure(res.status);
    } catch (e) {
      return mutationFailure(undefined, e);
    }
  };
  return {
    async read(t, key, timeoutMs) {
      try {
        const res = await fetch(url(t, key), { headers: headers(), signal: AbortSignal.timeout(timeoutMs) });
        const text = await res.text();
        if (res.status === 200) return { outcome: 'ok', result: text };
        if (res.status === 404) return { outcome: 'ok', result: null };
        return { outcome: 'fail', error: `HTTP ${res.status}${errorBody(text)}` };
      } catch (e) {
        return { outcome: 'fail', error: errorName(e) };
      }
    },
    write: (t, key, value, timeoutMs) => mutate(t, key, 'PUT', value, timeoutMs),
    delete: (t, key, timeoutMs) => mutate(t, key, 'DELETE', undefined, timeoutMs),
  };
}

export interface Mix {
  read: number;
  write: number;
  delete: number;
  incr: number;
}

/** 55% reads, 40% writes, 5% deletes, no INCR (the HTTP API has none yet). */
export const DEFAULT_MIX: Mix = { read: 0.55, write: 0.4, delete: 0.05, incr: 0 };

export interface WorkloadOptions {
  history: History;
  client: OpClient;
  /** Keys for reads, writes and deletes, shared by every client. */
  keys: readonly string[];
  /** Keys for INCR (and reads of them); needed when `mix.incr > 0`. */
  counterKeys?: readonly string[];
  /** Concurrent clients. */
  clients: number;
  /** Relative weights; default {@link DEFAULT_MIX}. */
  mix?: Mix;
  /** Nodes a request may go to, asked per request (the faulty one included). */
  targets: () => readonly OpTarget[];
  /** Client deadline per request (then the op is indeterminate). */
  timeoutMs: number;
  /** Pause between one client's requests. Default 2 ms. */
  thinkMs?: number;
  /** Stop after this many ops in all. Default 500 000. */
  maxOps?: number;
  /** Stop after this long. Default 10 minutes. */
  maxMs?: number;
  /** Default Math.random. */
  random?: () => number;
  /** Prefix of written values (they must be unique in the history). Default a random tag. */
  tag?: string;
}

export class Workload {
  readonly #o: Required<Omit<WorkloadOptions, 'counterKeys' | 'tag'>> & { counterKeys: readonly string[]; tag: string };
  #running = false;
  #loops: Promise<void>[] = [];
  #issued = 0;
  #seq = 0;

  constructor(opts: WorkloadOptions) {
    const mix = opts.mix ?? DEFAULT_MIX;
    if (mix.incr > 0 && opts.client.incr === undefined) throw new TypeError('Workload: mix.incr > 0 needs an OpClient with incr (the HTTP API has no INCR yet)');
    if (mix.incr > 0 && (opts.counterKeys ?? []).length === 0) throw new TypeError('Workload: mix.incr > 0 needs counterKeys');
    if (opts.keys.length === 0 && mix.read + mix.write + mix.delete > 0) throw new TypeError('Workload: no keys');
    if (!(opts.clients >= 1)) throw new RangeError(`Workload: clients must be >= 1, got ${opts.clients}`);
    this.#o = {
      thinkMs: 2,
      maxOps: 500_000,
      maxMs: 600_000,
      random: Math.random,
      ...opts,
      mix,
      counterKeys: opts.counterKeys ?? [],
      tag: opts.tag ?? Math.random().toString(36).slice(2, 6),
    };
  }

  /** Ops issued so far. */
  issued(): number {
    return this.#issued;
  }

  start(): void {
    if (this.#running) throw new Error('Workload already running');
    this.#running = true;
    const end = Date.now() + this.#o.maxMs;
    this.#loops = Array.from({ length: this.#o.clients }, (_, c) => this.#loop(c, end));
  }

  /** Resolves when the clients stop by themselves (`maxOps` or `maxMs` reached). */
  async finished(): Promise<void> {
    await Promise.all(this.#loops);
  }

  /** Stop issuing and wait for every op in flight to complete. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  #pick<T>(items: readonly T[]): T | undefined {
    return items[Math.floor(this.#o.random() * items.length)];
  }

  #kind(): OpKind {
    const { read, write, delete: del, incr } = this.#o.mix;
    let x = this.#o.random() * (read + write + del + incr);
    if ((x -= read) < 0) return 'read';
    if ((x -= write) < 0) return 'write';
    if ((x -= del) < 0) return 'delete';
    return 'incr';
  }

  async #loop(client: number, end: number): Promise<void> {
    const { history, client: c, timeoutMs } = this.#o;
    while (this.#running && this.#issued < this.#o.maxOps && Date.now() < end) {
      const target = this.#pick(this.#o.targets());
      if (target === undefined) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      this.#issued++;
      const kind = this.#kind();
      if (kind === 'incr') {
        const key = this.#pick(this.#o.counterKeys)!;
        const op = history.invoke({ client, node: target.id, key, kind, delta: 1 });
        settle(history, op, await c.incr!(target, key, 1, timeoutMs));
      } else if (kind === 'read') {
        // reads go to both kinds of keys (a counter's reads are part of its history)
        const key = this.#pick(this.#o.counterKeys.length > 0 && this.#o.random() < 0.2 ? this.#o.counterKeys : this.#o.keys)!;
        const op = history.invoke({ client, node: target.id, key, kind });
        settle(history, op, await c.read(target, key, timeoutMs));
      } else {
        const key = this.#pick(this.#o.keys)!;
        if (kind === 'write') {
          const value = `${this.#o.tag}.c${client}.${++this.#seq}`;
          const op = history.invoke({ client, node: target.id, key, kind, value });
          settle(history, op, await c.write(target, key, value, timeoutMs));
        } else {
          const op = history.invoke({ client, node: target.id, key, kind });
          settle(history, op, await c.delete(target, key, timeoutMs));
        }
      }
      if (this.#o.thinkMs > 0) await new Promise((r) => setTimeout(r, this.#o.thinkMs));
    }
  }
}

function settle<T>(history: History, op: Op, reply: Reply<T>): void {
  if (reply.outcome === 'ok') history.complete(op, 'ok', reply.result === undefined ? undefined : (reply.result as string | null | number));
  else history.complete(op, reply.outcome, undefined, reply.error);
}

/**
 * After the load: read every key through every target (in parallel, `concurrency` at a time),
 * recorded as final reads; a failed read is retried (up to `attempts` in all). Returns the keys
 * some target could not read (unverified, not lost).
 */
export async function finalReads(opts: { history: History; client: OpClient; keys: readonly string[]; targets: readonly OpTarget[]; timeoutMs: number; attempts?: number; concurrency?: number }): Promise<string[]> {
  const jobs = opts.keys.flatMap((key) => opts.targets.map((target) => ({ key, target })));
  const unread = new Set<string>();
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(opts.concurrency ?? 16, jobs.length) }, async () => {
      while (i < jobs.length) {
        const { key, target } = jobs[i++]!;
        let ok = false;
        for (let a = 0; a < (opts.attempts ?? 3) && !ok; a++) {
          const op = opts.history.invoke({ client: -1, node: target.id, key, kind: 'read', final: true });
          const reply = await opts.client.read(target, key, opts.timeoutMs);
          settle(opts.history, op, reply);
          ok = reply.outcome === 'ok';
          if (!ok) await new Promise((r) => setTimeout(r, 200));
        }
        if (!ok) unread.add(key);
      }
    }),
  );
  return [...unread];
}
