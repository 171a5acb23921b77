/**
 * Membership through etcd (SPEC §4):
 *
 *   ${prefix}/nodes/{id}      NodeInfo JSON            } both under ONE lease of leaseTtlMs,
 *   ${prefix}/heartbeat/{id}  last heartbeat (ms, text) } kept alive by the etcd3 client
 *
 * Lifecycle of our registration (a small state machine, see `#lease`):
 *  - start(): grant a lease, put both keys in one txn, read + watch `${prefix}/nodes/`.
 *  - every leaseTtl/3: refresh the heartbeat key (also proves the lease still exists).
 *  - lease `lost` (etcd said it expired, or we could not reach etcd for 2×TTL — the client never
 *    re-grants by itself, ETCD-NOTES) or a write rejected for an unknown lease: REJOIN, i.e. grant
 *    a new lease and re-put the keys, retrying with backoff capped at 2 s, logged.
 *  - stop(): revoke the lease, so peers see the node leave within milliseconds.
 *
 * Reading: an {@link EtcdMirror} of `${prefix}/nodes/` (re-read/re-watch on compaction, last
 * known state kept while etcd is down). members() is that view plus this node itself: a running
 * node is always a member in its own eyes, even in the moment between its old lease expiring and
 * its rejoin (otherwise a 2-node cluster returning from an etcd outage could briefly see nobody).
 *
 * `last_seen` in the nodes key is the time of the last registration/update; heartbeats go to the
 * heartbeat key only, so peers are not woken every TTL/3 with a membership "change".
 */
import type { Etcd3, Lease } from 'etcd3';
import { systemClock, type Clock, type NodeInfo } from '../core/types.ts';
import type { Disposer, MembershipListener, Registry } from './registry.ts';
import {
  checkPrefix,
  connect,
  delays,
  etcdCall,
  isEtcdUnavailableError,
  loadEtcd3,
  noopLogger,
  pause,
  toEtcdError,
  type EtcdConnection,
  type EtcdLogger,
} from './etcd-client.ts';
import { EtcdMirror } from './etcd-watch.ts';

export type EtcdRegistryOptions = EtcdConnection & {
  /** Key prefix, no trailing slash, e.g. "/jincache". */
  prefix: string;
  /** Lease TTL (SPEC `etcd.lease_ttl`); rounded up to whole seconds, at least 1 s. */
  leaseTtlMs: number;
  /** Time source for last_seen and heartbeats. Default: the system clock. */
  clock?: Clock;
  /** Default: no logging. */
  logger?: EtcdLogger;
  /** How long start() keeps retrying an unreachable etcd before it rejects. Default 10 000 ms. */
  startTimeoutMs?: number;
  /** Cap of the rejoin backoff. Default 2000 ms. */
  rejoinBackoffCapMs?: number;
};

/** Our registration, as a discriminated union: exactly one of these at any time. */
type LeaseState =
  | { kind: 'idle' }
  | { kind: 'registered'; lease: Lease; id: string }
  | { kind: 'rejoining' }
  | { kind: 'stopped' };

export class EtcdRegistry implements Registry {
  readonly #client: Etcd3;
  readonly #ownsClient: boolean;
  readonly #prefix: string;
  readonly #ttlSeconds: number;
  readonly #clock: Clock;
  readonly #logger: EtcdLogger;
  readonly #startTimeoutMs: number;
  readonly #rejoinCapMs: number;
  readonly #listeners = new Set<MembershipListener>();
  readonly #lostListeners = new Set<() => void>();
  readonly #mirror: EtcdMirror;
  #self: NodeInfo | null = null;
  #lease: LeaseState = { kind: 'idle' };
  #heartbeat: NodeJS.Timeout | null = null;
  #abort = new AbortController();
  /** Sorted membership as last computed; `#lastJson` detects real changes. */
  #members: readonly NodeInfo[] = [];
  #lastJson = '[]';

  constructor(opts: EtcdRegistryOptions) {
    this.#prefix = checkPrefix(opts.prefix);
    if (!(opts.leaseTtlMs > 0)) throw new RangeError(`leaseTtlMs must be > 0, got ${opts.leaseTtlMs}`);
    this.#ttlSeconds = Math.max(1, Math.ceil(opts.leaseTtlMs / 1000));
    this.#clock = opts.clock ?? systemClock;
    this.#logger = opts.logger ?? noopLogger;
    this.#startTimeoutMs = opts.startTimeoutMs ?? 10_000;
    this.#rejoinCapMs = opts.rejoinBackoffCapMs ?? 2000;
    const { client, owned } = connect(opts);
    this.#client = client;
    this.#ownsClient = owned;
    this.#mirror = new EtcdMirror({
      client,
      range: { prefix: `${this.#prefix}/nodes/` },
      logger: this.#logger,
      name: 'membership',
      onChange: () => this.#recompute(),
    });
  }

  async start(self: NodeInfo): Promise<void> {
    if (this.#lease.kind !== 'idle') throw new Error(`EtcdRegistry.start: already ${this.#lease.kind}`);
    this.#self = self;
    this.#lease = { kind: 'rejoining' };
    this.#abort = new AbortController();
    const deadline = Date.now() + this.#startTimeoutMs;
    let lastError: unknown;
    for (const delay of delays(100, this.#rejoinCapMs)) {
      try {
        if (this.#lease.kind === 'rejoining') await this.#register();
        await this.#mirror.start();
        break;
      } catch (err) {
        lastError = err;
        // Only an unreachable etcd is worth waiting for; anything else is a bug or bad config.
        const remaining = deadline - Date.now();
        if (!isEtcdUnavailableError(err) || remaining <= 0 || this.#abort.signal.aborted) {
          await this.stop().catch(() => undefined);
          throw lastError;
        }
        this.#logger.warn({ err: (err as Error).message, retryInMs: delay }, 'etcd registration failed; retrying');
        await pause(Math.min(delay, remaining), this.#abort.signal);
      }
    }
    this.#heartbeat = setInterval(() => void this.#beat(), (this.#ttlSeconds * 1000) / 3);
    this.#heartbeat.unref();
    this.#recompute();
    this.#logger.info({ id: self.id, ttlSeconds: this.#ttlSeconds }, 'registered in etcd');
  }

  async stop(): Promise<void> {
    const state = this.#lease;
    if (state.kind === 'stopped') return;
    this.#lease = { kind: 'stopped' };
    this.#abort.abort();
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    await this.#mirror.stop();
    // A stopped registry knows nothing (listeners are not called: they were told about live changes).
    this.#members = [];
    this.#lastJson = '[]';
    if (state.kind === 'registered') {
      // Revoke deletes both keys at once: peers see the leave in milliseconds, not after the TTL.
      try {
        await etcdCall('revoke lease', () => state.lease.revoke());
      } catch (err) {
        this.#logger.warn({ err: (err as Error).message }, 'could not revoke etcd lease; peers will drop us after the TTL');
        state.lease.release();
      }
    }
    if (this.#ownsClient) this.#client.close();
  }

  async update(self: NodeInfo): Promise<void> {
    if (this.#self !== null && self.id !== this.#self.id) {
      throw new Error(`EtcdRegistry.update: id changed from ${this.#self.id} to ${self.id}`);
    }
    this.#self = self;
    const state = this.#lease;
    this.#recompute();
    // While rejoining, the rejoin will publish the newest #self.
    if (state.kind !== 'registered') return;
    try {
      await etcdCall('update node', () =>
        this.#client.put(this.#nodeKey(self.id)).value(this.#nodeJson(self)).lease(state.id).exec(),
      );
    } catch (err) {
      this.#onWriteError(err, state);
      throw err;
    }
  }

  /** Sorted by id; always includes this node while started; empty after stop(). */
  members(): readonly NodeInfo[] {
    return this.#members;
  }

  onChange(listener: MembershipListener): Disposer {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** The lease id currently held, for tests and /cluster ("" while none). */
  leaseId(): string {
    return this.#lease.kind === 'registered' ? this.#lease.id : '';
  }

  #nodeKey(id: string): string {
    return `${this.#prefix}/nodes/${id}`;
  }

  #heartbeatKey(id: string): string {
    return `${this.#prefix}/heartbeat/${id}`;
  }

  #nodeJson(self: NodeInfo): string {
    return JSON.stringify({ ...self, last_seen: this.#clock.now() });
  }

  /** Grant a lease and put both keys in one txn. Leaves #lease registered, or throws (converted). */
  async #register(): Promise<void> {
    const self = this.#self;
    if (self === null) throw new Error('EtcdRegistry: no self');
    const lease = this.#client.lease(this.#ttlSeconds);
    // Attached before anything can fail, so no loss goes unnoticed.
    lease.on('lost', (err) => this.#onLeaseLost(lease, err));
    let id: string;
    try {
      id = await etcdCall('grant lease', () => lease.grant());
      await etcdCall('register node', () =>
        this.#client
          .if(this.#nodeKey(self.id), 'Version', '>', -1) // always true: a txn just for atomicity
          .then(
            this.#client.put(this.#nodeKey(self.id)).value(this.#nodeJson(self)).lease(id),
            this.#client.put(this.#heartbeatKey(self.id)).value(String(this.#clock.now())).lease(id),
          )
          .commit(),
      );
    } catch (err) {
      lease.release();
      throw err;
    }
    if (this.#lease.kind === 'stopped') {
      // stop() raced us: do not leave a registration behind.
      await lease.revoke().catch(() => lease.release());
      return;
    }
    this.#lease = { kind: 'registered', lease, id };
  }

  #onLeaseLost(lease: Lease, err: Error): void {
    const state = this.#lease;
    if (state.kind !== 'registered' || state.lease !== lease) return; // an old or failed lease
    this.#logger.warn({ leaseId: state.id, err: err.message }, 'etcd lease lost; rejoining');
    this.#lost();
    void this.#rejoin();
  }

  /** Subscribe to the loss of this node's lease (it was, for a while, not a member in etcd). */
  onLeaseLost(listener: () => void): Disposer {
    this.#lostListeners.add(listener);
    return () => void this.#lostListeners.delete(listener);
  }

  #lost(): void {
    for (const l of this.#lostListeners) {
      try {
        l();
      } catch {
        // a listener's failure must not stop the rejoin
      }
    }
  }

  /** A write told us the lease is gone (or etcd is unreachable, which the keepalive handles). */
  #onWriteError(err: unknown, state: Extract<LeaseState, { kind: 'registered' }>): void {
    const { EtcdLeaseInvalidError } = loadEtcd3();
    if (err instanceof EtcdLeaseInvalidError || (err instanceof Error && err.cause instanceof EtcdLeaseInvalidError)) {
      if (this.#lease === state) {
        this.#logger.warn({ leaseId: state.id }, 'etcd lease unknown to etcd; rejoining');
        this.#lost();
        state.lease.release();
        void this.#rejoin();
      }
    }
  }

  /** Grant a new lease and re-put our keys, retrying with capped backoff until it works or stop(). */
  async #rejoin(): Promise<void> {
    const previous = this.#lease;
    if (previous.kind !== 'registered') return; // already rejoining, or stopped
    this.#lease = { kind: 'rejoining' };
    previous.lease.release();
    let attempt = 0;
    for (const delay of delays(100, this.#rejoinCapMs)) {
      if (this.#lease.kind !== 'rejoining') return;
      attempt++;
      try {
        await this.#register();
        // Re-read: #register() changed the state behind TypeScript's back.
        const now = this.#lease as LeaseState;
        if (now.kind === 'registered') {
          this.#logger.info({ leaseId: now.id, attempts: attempt }, 'rejoined etcd with a new lease');
        }
        return;
      } catch (err) {
        if (attempt === 1 || attempt % 10 === 0) {
          this.#logger.warn({ err: (err as Error).message, attempt, retryInMs: delay }, 'etcd rejoin failed; retrying');
        }
        await pause(delay, this.#abort.signal);
      }
    }
  }

  async #beat(): Promise<void> {
    const state = this.#lease;
    const self = this.#self;
    if (state.kind !== 'registered' || self === null) return;
    try {
      await etcdCall('heartbeat', () =>
        this.#client.put(this.#heartbeatKey(self.id)).value(String(this.#clock.now())).lease(state.id).exec(),
      );
    } catch (err) {
      // Unreachable etcd is the keepalive's business (it emits `lost` when it matters).
      if (!isEtcdUnavailableError(err)) this.#onWriteError(toEtcdError(err), state);
    }
  }

  /** Rebuild the sorted membership from the mirror + self; notify when it really changed. */
  #recompute(): void {
    const byId = new Map<string, NodeInfo>();
    for (const [key, raw] of this.#mirror.state()) {
      const info = parseNodeInfo(raw);
      if (info === null) {
        this.#logger.warn({ key }, 'ignoring malformed NodeInfo in etcd');
        continue;
      }
      byId.set(info.id, info);
    }
    if (this.#self !== null && this.#lease.kind !== 'stopped') byId.set(this.#self.id, this.#self);
    const next = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    // last_seen moves on every re-registration: compare without it, or every rejoin is "a change".
    const json = JSON.stringify(next.map(({ last_seen: _ls, ...rest }) => rest));
    this.#members = next;
    if (json === this.#lastJson) return;
    this.#lastJson = json;
    for (const listener of [...this.#listeners]) {
      try {
        listener(next);
      } catch (err) {
        this.#logger.error({ err: (err as Error).message }, 'membership listener threw');
      }
    }
  }
}

function parseNodeInfo(raw: string): NodeInfo | null {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (typeof o['id'] !== 'string' || typeof o['address'] !== 'string') return null;
  return v as NodeInfo;
}
