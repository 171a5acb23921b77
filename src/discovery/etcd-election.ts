/**
 * Leader election on etcd, for cluster-wide duties (table writer, rebalancer, migration
 * coordinator). Built on etcd3's Election API: candidates are keys
 * `${prefix}/election/leader/{leaseId}` holding the node id; the oldest one is the leader.
 *
 * Two independent loops, each restarted with capped backoff when it dies:
 *  - the campaign: `elected` makes us leader; `error` (its lease was lost — e.g. etcd unreachable
 *    for 2×TTL — or its start failed) drops leadership and campaigns again with a new lease;
 *  - the observer: tracks who leads, for leader() on every node; its watch dies on compaction
 *    or a long outage, then we observe again. What it reports is checked against etcd itself
 *    on every change and once a second (#verify): etcd3's observer can settle on a wrong leader.
 *
 * The TTL bounds failover: when a leader's process dies, its key expires after ~TTL and the next
 * candidate takes over (ETCD-NOTES: TTL 2 s -> 1.8 s). etcd3's default TTL is 60 s, so pass one.
 * stop() resigns (revokes the lease): the next leader is elected in ~20 ms.
 *
 * Caveat: while etcd is unreachable, a leader keeps believing it leads until its lease is
 * declared lost (up to 2×TTL); duties it runs must be idempotent or fenced (the table CAS is
 * guarded by leaderKey(), which disappears with the lease).
 */
import type { Campaign, Election, ElectionObserver, Etcd3, Namespace } from 'etcd3';
import type { NodeId } from '../core/types.ts';
import type { Disposer, Election as ElectionSeam } from './registry.ts';
import { checkPrefix, connect, delays, noopLogger, pause, toEtcdError, type EtcdConnection, type EtcdLogger } from './etcd-client.ts';

export type EtcdElectionOptions = EtcdConnection & {
  /** Key prefix, no trailing slash, e.g. "/jincache". */
  prefix: string;
  /** The value we campaign with; what leader() returns on every node when we win. */
  nodeId: NodeId;
  /** Campaign lease TTL in whole seconds (>= 1). Default 60 (etcd3's); tests pass 1-2. */
  ttlSeconds?: number;
  /** Default: no logging. */
  logger?: EtcdLogger;
  /** Cap of the re-campaign / re-observe backoff. Default 2000 ms. */
  retryCapMs?: number;
};

type LeaderListener = (leader: NodeId | null) => void;

/** How often the observed leader is checked against etcd (see #verify). */
const VERIFY_MS = 1000;

export class EtcdElection implements ElectionSeam {
  readonly #client: Etcd3;
  readonly #ownsClient: boolean;
  readonly #election: Election;
  readonly #nodeId: NodeId;
  readonly #logger: EtcdLogger;
  readonly #retryCapMs: number;
  readonly #listeners = new Set<LeaderListener>();
  #campaign: Campaign | null = null;
  #leaderKey: string | null = null;
  #observer: ElectionObserver | null = null;
  #candidates: Namespace;
  #verifyTimer: NodeJS.Timeout | undefined;
  #elected = false;
  /** Leader as the observer last saw it. */
  #observed: NodeId | null = null;
  /** What leader() returned last time listeners were told. */
  #reported: NodeId | null = null;
  #running = false;
  #abort = new AbortController();
  #campaignDelays = delays(100, 2000);
  #observeDelays = delays(100, 2000);

  constructor(opts: EtcdElectionOptions) {
    const prefix = checkPrefix(opts.prefix);
    if (typeof opts.nodeId !== 'string' || opts.nodeId === '') {
      throw new TypeError(`nodeId must be a non-empty string, got ${JSON.stringify(opts.nodeId)}`);
    }
    const ttl = opts.ttlSeconds ?? 60;
    if (!Number.isInteger(ttl) || ttl < 1) throw new RangeError(`ttlSeconds must be an integer >= 1, got ${ttl}`);
    this.#nodeId = opts.nodeId;
    this.#logger = opts.logger ?? noopLogger;
    this.#retryCapMs = opts.retryCapMs ?? 2000;
    const { client, owned } = connect(opts);
    this.#client = client;
    this.#ownsClient = owned;
    // etcd3 puts candidates under `${namespace}election/${name}/`.
    this.#election = client.namespace(`${prefix}/`).election('leader', ttl);
    this.#candidates = client.namespace(`${prefix}/election/leader/`);
  }

  /** Start observing and campaigning; resolves once the current leader (or none) is known. */
  async start(): Promise<void> {
    if (this.#running) throw new Error('EtcdElection.start: already started');
    this.#running = true;
    this.#abort = new AbortController();
    this.#campaignDelays = delays(100, this.#retryCapMs);
    this.#observeDelays = delays(100, this.#retryCapMs);
    try {
      await this.#observe();
    } catch (err) {
      this.#running = false;
      throw toEtcdError(err, 'observe election');
    }
    this.#startCampaign();
    this.#verifyTimer = setInterval(() => void this.#verify(), VERIFY_MS);
    this.#verifyTimer.unref();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#abort.abort();
    clearInterval(this.#verifyTimer);
    const campaign = this.#campaign;
    const observer = this.#observer;
    this.#campaign = null;
    this.#observer = null;
    this.#elected = false;
    // Resign first: revoking our lease hands leadership over at once instead of after the TTL.
    if (campaign !== null) {
      await campaign.resign().catch((err: Error) => {
        this.#logger.warn({ err: err.message }, 'could not resign; leadership passes on after the TTL');
      });
    }
    if (observer !== null) await observer.cancel().catch(() => undefined);
    await cancelLeftoverWatches(this.#election);
    this.#observed = null;
    this.#report();
    this.#listeners.clear();
    if (this.#ownsClient) this.#client.close();
  }

  leader(): NodeId | null {
    // Our own `elected` is authoritative for us and arrives before the observer's echo of it.
    return this.#elected ? this.#nodeId : this.#observed;
  }

  isLeader(): boolean {
    return this.#elected;
  }

  /** Our campaign key while we lead: it exists exactly as long as our leadership lease. */
  leaderKey(): string | null {
    return this.#elected ? this.#leaderKey : null;
  }

  onChange(listener: LeaderListener): Disposer {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #startCampaign(): void {
    if (!this.#running) return;
    const campaign = this.#election.campaign(this.#nodeId);
    this.#campaign = campaign;
    campaign.on('elected', () => {
      if (this.#campaign !== campaign) return;
      // leadership counts once its key is known: every table write is guarded by it
      void campaign
        .getCampaignKey()
        .then((key) => {
          if (this.#campaign !== campaign) return;
          this.#leaderKey = key;
          this.#campaignDelays = delays(100, this.#retryCapMs);
          this.#elected = true;
          this.#logger.info({ nodeId: this.#nodeId }, 'elected leader');
          this.#report();
        })
        .catch((err: unknown) => campaign.emit('error', err instanceof Error ? err : new Error(String(err))));
    });
    // Always listen: an unhandled 'error' would throw. It fires once per failure cause (lease
    // lost, start failed), possibly twice for one campaign: only the current one counts.
    campaign.on('error', (err: Error) => {
      if (this.#campaign !== campaign) return;
      this.#campaign = null;
      const wasLeader = this.#elected;
      this.#elected = false;
      this.#leaderKey = null;
      void campaign.resign().catch(() => undefined);
      const delay = this.#campaignDelays.next().value;
      this.#logger.warn({ err: err.message, wasLeader, retryInMs: delay }, 'election campaign failed; campaigning again');
      this.#report();
      void pause(delay, this.#abort.signal).then(() => this.#startCampaign());
    });
  }

  /** Create an observer and wait for its first view. Throws when etcd cannot be read. */
  async #observe(): Promise<void> {
    const observer = await this.#election.observe();
    if (!this.#running) {
      await observer.cancel().catch(() => undefined);
      return;
    }
    this.#observer = observer;
    this.#observeDelays = delays(100, this.#retryCapMs);
    observer.on('change', () => {
      if (this.#observer !== observer) return;
      this.#observed = observer.leader() ?? null;
      this.#report();
      void this.#verify();
    });
    observer.on('error', (err: Error) => {
      if (this.#observer !== observer) return;
      this.#observer = null;
      // Keep the last observed leader while we re-observe: it is the best knowledge we have.
      this.#logger.warn({ err: err.message }, 'election observer failed; observing again');
      void observer.cancel().catch(() => undefined);
      void this.#reobserve();
    });
    this.#observed = observer.leader() ?? null;
    this.#report();
  }

  /**
   * Read the leader from etcd itself: the candidate key with the lowest create revision. etcd3's
   * observer can settle on the wrong one for good: when it starts with no candidate, it takes the
   * last key of the first batch of puts it is shown and then only waits for that key's deletion,
   * so with several nodes campaigning at once a node can believe a non-leader (itself) leads.
   */
  async #verify(): Promise<void> {
    if (!this.#running) return;
    try {
      const first = await this.#candidates.getAll().sort('Create', 'Ascend').limit(1).strings();
      if (!this.#running) return;
      const value = Object.values(first)[0];
      const leader = value === undefined || value === '' ? null : value;
      if (leader === this.#observed) return;
      this.#logger.info({ observed: this.#observed, leader }, 'election observer corrected from etcd');
      this.#observed = leader;
      this.#report();
    } catch {
      // etcd unreachable: keep what we have; the next check tries again
    }
  }

  async #reobserve(): Promise<void> {
    while (this.#running && this.#observer === null) {
      await pause(this.#observeDelays.next().value, this.#abort.signal);
      if (!this.#running) return;
      try {
        await this.#observe();
      } catch (err) {
        this.#logger.warn({ err: (err as Error).message }, 'election observe failed; retrying');
      }
    }
  }

  #report(): void {
    const now = this.leader();
    if (now === this.#reported) return;
    this.#reported = now;
    for (const listener of [...this.#listeners]) {
      try {
        listener(now);
      } catch (err) {
        this.#logger.error({ err: (err as Error).message }, 'leader listener threw');
      }
    }
  }
}

/**
 * etcd3's Campaign.resign() leaves attached the watch a candidate that is not the leader waits
 * on (the deletion of the candidate before it). Once the client closes, the watch manager then
 * retries a closed connection forever on a timer, which keeps the process alive: a library host
 * could not exit after `node.stop()`. Cancel whatever the election's namespace still watches.
 * Reaches into etcd3's internals (Election.namespace.watchManager.watchers) and does nothing
 * when they are not there.
 */
async function cancelLeftoverWatches(election: Election): Promise<void> {
  const manager = (election as unknown as { namespace?: { watchManager?: { watchers?: unknown } } }).namespace?.watchManager;
  const watchers = manager?.watchers;
  if (!Array.isArray(watchers)) return;
  await Promise.all(
    [...watchers].map(async (w) => {
      const cancel = (w as { cancel?: () => Promise<void> }).cancel;
      if (typeof cancel !== 'function') return;
      // bounded: a cancel waits for etcd's answer, and etcd may be gone already
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([cancel.call(w).catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 1000)))]);
      clearTimeout(timer);
    }),
  );
}
