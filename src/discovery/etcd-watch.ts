/**
 * A local mirror of one etcd key or prefix that stays correct across every watch failure.
 *
 * Protocol (ETCD-NOTES "Watch reconnect"): read the range, then watch from the read's
 * revision + 1, so no event between the read and the watch is missed. etcd3 resumes a broken
 * stream from the last revision by itself; but when that revision was compacted meanwhile the
 * watcher emits `error` ("Watcher canceled") and is dead. Then we re-read and re-watch. While etcd
 * is unreachable the mirror keeps its last known state: readers never see it empty because of an
 * outage, only because of real deletions.
 *
 * Ordering: events of one watcher arrive in revision order; a generation counter drops anything
 * still arriving from a watcher we replaced, and each re-read replaces the whole state (it is
 * newer than everything the old watcher delivered), so the newest state always wins.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { delays, etcdCall, noopLogger, pause, type EtcdLogger } from './etcd-client.ts';

export type WatchedRange = { key: string; prefix?: undefined } | { prefix: string; key?: undefined };

export interface EtcdMirrorOptions {
  client: Etcd3;
  /** The single key or the prefix to mirror. */
  range: WatchedRange;
  /**
   * Called after the state changed, with the keys whose value changed (added, modified or
   * removed). Not called for the initial read in start(). Must not throw (errors are logged).
   */
  onChange: (state: ReadonlyMap<string, string>, changed: ReadonlySet<string>) => void;
  /** Default: no logging. */
  logger?: EtcdLogger;
  /** Cap of the re-read retry backoff after a dead watch. Default 1000 ms. */
  retryCapMs?: number;
  /** Name used in log lines. Default: the key or prefix. */
  name?: string;
}

/** One successful read of the range. */
interface Snapshot {
  state: Map<string, string>;
  revision: bigint;
}

export class EtcdMirror {
  readonly #client: Etcd3;
  readonly #range: WatchedRange;
  readonly #onChange: EtcdMirrorOptions['onChange'];
  readonly #logger: EtcdLogger;
  readonly #retryCapMs: number;
  readonly #name: string;
  /** key -> value (utf8); replaced wholesale on every re-read. */
  #state = new Map<string, string>();
  #watcher: Watcher | null = null;
  /** Bumped whenever the watcher is replaced or stopped; stale callbacks compare against it. */
  #generation = 0;
  #abort = new AbortController();
  #resyncing = false;
  #disconnected = false;

  constructor(opts: EtcdMirrorOptions) {
    this.#client = opts.client;
    this.#range = opts.range;
    this.#onChange = opts.onChange;
    this.#logger = opts.logger ?? noopLogger;
    this.#retryCapMs = opts.retryCapMs ?? 1000;
    this.#name = opts.name ?? opts.range.key ?? opts.range.prefix ?? '';
  }

  /** First read, then watch. Rejects (converted etcd error) when the read fails; nothing to clean. */
  async start(): Promise<void> {
    this.#abort = new AbortController();
    const snap = await this.#read();
    this.#state = snap.state;
    this.#watch(snap.revision + 1n);
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    this.#generation++;
    const w = this.#watcher;
    this.#watcher = null;
    if (w !== null) await w.cancel().catch(() => undefined);
  }

  state(): ReadonlyMap<string, string> {
    return this.#state;
  }

  async #read(): Promise<Snapshot> {
    const range = this.#range;
    const res = await etcdCall(`read ${this.#name}`, () =>
      range.key !== undefined
        ? this.#client.get(range.key).exec()
        : this.#client.getAll().prefix(range.prefix).exec(),
    );
    const state = new Map<string, string>();
    for (const kv of res.kvs) state.set(kv.key.toString('utf8'), kv.value.toString('utf8'));
    return { state, revision: BigInt(res.header.revision) };
  }

  #watch(fromRevision: bigint): void {
    const gen = ++this.#generation;
    const builder = this.#client.watch().startRevision(fromRevision.toString());
    const range = this.#range;
    const watcher = (range.key !== undefined ? builder.key(range.key) : builder.prefix(range.prefix)).watcher();
    this.#watcher = watcher;

    watcher.on('data', (res) => {
      if (gen !== this.#generation) return;
      const changed = new Set<string>();
      for (const ev of res.events) this.#apply(ev.type, ev.kv, changed);
      if (changed.size > 0) this.#emit(changed);
    });
    watcher.on('disconnected', (err) => {
      if (gen !== this.#generation || this.#disconnected) return;
      this.#disconnected = true;
      this.#logger.warn({ watch: this.#name, err: err.message }, 'etcd watch disconnected; keeping last known state');
    });
    watcher.on('connected', () => {
      if (gen !== this.#generation || !this.#disconnected) return;
      this.#disconnected = false;
      this.#logger.info({ watch: this.#name }, 'etcd watch reconnected');
    });
    // Always listen: an unhandled 'error' would throw. It means the watch is dead (cancelled,
    // e.g. because its revision was compacted): re-read and re-watch.
    watcher.on('error', (err) => {
      if (gen !== this.#generation) return;
      this.#logger.warn({ watch: this.#name, err: err.message }, 'etcd watch cancelled; re-reading');
      void this.#resync();
    });
    watcher.on('end', () => {
      if (gen !== this.#generation) return;
      this.#logger.warn({ watch: this.#name }, 'etcd watch ended; re-reading');
      void this.#resync();
    });
  }

  #apply(type: string, kv: IKeyValue, changed: Set<string>): void {
    const key = kv.key.toString('utf8');
    if (type === 'Put') {
      const value = kv.value.toString('utf8');
      if (this.#state.get(key) !== value) {
        this.#state.set(key, value);
        changed.add(key);
      }
    } else if (type === 'Delete') {
      if (this.#state.delete(key)) changed.add(key);
    } else {
      throw new Error(`etcd watch: impossible event type ${type}`);
    }
  }

  #emit(changed: ReadonlySet<string>): void {
    try {
      this.#onChange(this.#state, changed);
    } catch (err) {
      this.#logger.error({ watch: this.#name, err: (err as Error).message }, 'etcd watch listener threw');
    }
  }

  /** Replace the dead watcher: re-read until it works (state kept meanwhile), then watch again. */
  async #resync(): Promise<void> {
    if (this.#resyncing) return;
    this.#resyncing = true;
    const gen = ++this.#generation; // silence the dead watcher from now on
    const old = this.#watcher;
    this.#watcher = null;
    if (old !== null) void old.cancel().catch(() => undefined);
    const signal = this.#abort.signal;
    try {
      for (const delay of delays(100, this.#retryCapMs)) {
        if (signal.aborted || gen !== this.#generation) return;
        try {
          const snap = await this.#read();
          if (signal.aborted || gen !== this.#generation) return;
          const changed = new Set<string>();
          for (const [k, v] of snap.state) if (this.#state.get(k) !== v) changed.add(k);
          for (const k of this.#state.keys()) if (!snap.state.has(k)) changed.add(k);
          this.#state = snap.state;
          this.#watch(snap.revision + 1n);
          this.#logger.info({ watch: this.#name, revision: snap.revision.toString() }, 'etcd watch re-established');
          if (changed.size > 0) this.#emit(changed);
          return;
        } catch (err) {
          this.#logger.warn({ watch: this.#name, err: (err as Error).message, retryInMs: delay }, 'etcd re-read failed');
          await pause(delay, signal);
        }
      }
    } finally {
      this.#resyncing = false;
    }
  }
}
