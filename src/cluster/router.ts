/**
 * Who answers a request. Every key belongs to a partition whose holders (the table in force:
 * owner first, then backups) serve it; the router sends each read and write to the right holder
 * and serves the ones other nodes send here. It is built with everything it needs; there is one
 * read path and one write protocol.
 *
 * Reads go to the first holder the failure detector finds usable, and on failure to the next one,
 * retried with backoff within the caller's deadline; a loader group whose holders all fail loads
 * locally (groupcache's fallback). When any holder's copy may lack acknowledged writes
 * (Freshness: it just came back, is catching up, has hints coming, or a table change made it a
 * holder before its copy arrived), no copy is read alone: every holder is asked and the newest
 * version answers (read repair sends it to the ones that were behind).
 *
 * Writes go to the first usable holder, which coordinates them: it decides the write against its
 * copy (conditions, increments: cache/ops.ts), gives it a version above everything it holds for
 * the key, applies it, replicates it to the other usable holders and keeps a hint for the
 * unusable ones (hinted handoff). A write sent to another node carries its *fence*, the message
 * deadline: the coordinator never applies it at or after that time. A sender that gives up on an
 * attempt at time t sent it with fence t, so a write stuck in a paused or partitioned node cannot
 * be applied later with a version newer than a write acknowledged after it. A write is sent to
 * another holder only when its attempt surely never arrived.
 *
 * Every message carries the version of the table its sender routed by. A receiver with a newer
 * table corrects an older sender: a read that reached a node no longer holding the key is routed
 * again by the newer table; replicated records are passed on to the holders the newer table lists;
 * a write stamped with a newer table than the receiver's waits (at most TABLE_WAIT_MS) for it.
 */
import { holdersOf, type PartitionTable } from '../core/placement/table.ts';
import type { Clock, NodeId } from '../core/types.ts';
import { JincacheError } from '../core/errors.ts';
import { compareWrites } from '../core/version.ts';
import { NO_EXPIRY, type WriteOp, type WriteResult } from '../cache/ops.ts';
import type { WireRecord } from '../peer/codec.ts';
import { Count, Exec, Flush, Read, Record, Replicate, Scan, Write, type ExecRequest, type ReadAnswer, type RecordAnswer, type ScanRequest } from '../peer/messages.ts';
import type { Engine } from '../cache/engine/types.ts';
import { watchOf } from '../cache/engine/index.ts';
import type { Reply } from '../cache/reply.ts';
import type { MessageMeta } from '../peer/protocol.ts';
import type { PeerServer } from '../peer/server.ts';
import { hintsAny, readOrder, replicaPlan, writeOrder } from './health/failover.ts';
import { notDelivered } from './health/errors.ts';
import { isRetryable, withRetry } from './health/breakers.ts';
import { answerInto, type GetResult, type KvService, type LocalRead, type PutOptions, type RequestOptions } from './kv.ts';
import type { ValueSink } from '../cache/store.ts';
import type { LocalData } from './local-data.ts';
import type { Peers } from './peers.ts';
import { ReplicaBatcher } from './replica-batch.ts';

/** Longest a peer request waits for this node to receive the newer table its sender routed by. */
export const TABLE_WAIT_MS = 250;

/** Longest a backup serving a read waits for the owner's copy (getAsHolder): a quarter of the budget at most. */
export const OWNER_ASK_MS = 150;

/** The table in force, and a way to wait for a newer one. */
export interface TableView {
  table(): PartitionTable;
  /** Resolves true once the table in force has at least `version` (false after `timeoutMs`). */
  reached(version: number, timeoutMs: number): Promise<boolean>;
}

/** The one predicate for "this copy may lack acknowledged writes" (freshness.ts). */
export interface CopyFreshness {
  mayLackWrites(id: NodeId, partition: number): boolean;
}

/** Data moving between holders (migration): who else gets a partition's writes, who had it before. */
export interface Moves {
  /** Nodes that must receive this partition's writes besides its holders (new holders while it moves). */
  extraReplicas(partition: number): readonly NodeId[];
  /** Nodes that may still hold this partition's data; a miss at the owner asks them before the origin. */
  previousHolders(partition: number): readonly NodeId[];
}

/** Copies of hot keys on other nodes (mirror.ts). */
export interface Mirrors {
  /** A mirrored copy of another owner's hot key, served where the read arrives. */
  get(group: string, key: string): GetResult | undefined;
  /** Whether `beforeWrite` has work to do for this key now (`partition`: the key's, when the caller has it). */
  waits(group: string, key: string, partition?: number): boolean;
  /** Before a write of the key is acknowledged: no mirror may serve the old value after this resolves. */
  beforeWrite(group: string, key: string, version: number, deadline: number): Promise<void>;
}

/** Per-group settings read on every request (live config). */
export interface RouterSettings {
  /** Budget of a request that names no deadline (fault_tolerance.request_timeout, per group). */
  requestTimeoutMs(group: string): number;
  /** Retries after a failed attempt (fault_tolerance.max_retries, per group). */
  maxRetries(group: string): number;
  /** Wait for the backups before acknowledging (replication.sync). */
  readonly syncReplication: boolean;
}

export interface RouterOptions {
  self: NodeId;
  tables: TableView;
  partitionOf(key: string): number;
  /** The failure detector's verdict: may requests be sent there now? */
  usable(id: NodeId): boolean;
  /**
   * Surely not running: no process answers there (connection refused) or it is no member any
   * more (its lease expired). Commands fail over only past such a holder (see commandOrder).
   * Default: whatever is not usable.
   */
  down?(id: NodeId): boolean;
  freshness: CopyFreshness;
  /** Published as catching up (registry status 'joining'): not chosen to coordinate writes while another holder can. */
  joining(id: NodeId): boolean;
  local: LocalData;
  peers: Peers;
  /** Keep writes for a holder that did not get them, to replay when it is back (handoff.ts). */
  hint(peer: NodeId, records: readonly WireRecord[]): void;
  /**
   * Resolves once `peer` has been told, by a heartbeat answer, that this node holds hints for it
   * (at once when it is not reaching this node), or at `deadline` (detector.ts nextPingFrom).
   * Default: at once.
   */
  toldOfHints?(peer: NodeId, deadline: number): Promise<void>;
  /**
   * From now until the returned release: heartbeat answers to `peer` say this node holds hints for
   * it, before the write they are for exists (handoff.ts announce). Default: nothing.
   */
  announceHints?(peer: NodeId): () => void;
  settings: RouterSettings;
  defaultGroup: string;
  clock: Clock;
  /** Registers the router's messages (Read, Record, Write, Replicate, Count). */
  server: PeerServer;
  /** Default: nothing moves (static clusters). */
  moves?: Moves;
  /** Default: no mirrors. */
  mirrors?: Mirrors;
  /** Called with writes a backup did not confirm (they are hinted too). Default: none. */
  onReplicationFailure?: (peer: NodeId, records: number, error: JincacheError) => void;
  /**
   * May this node answer from its own copy now (trust.ts: not after a pause, a lost lease or a
   * table found behind, until it has confirmed the table and caught up)? Default: always.
   */
  selfTrusted?: () => boolean;
  /**
   * A peer routed by table `version`, newer than this node's: wait up to `waitMs` for it, and if
   * it does not come and is really in force, stop trusting this node's own copy (trust.ts
   * SelfTrust.tableSeen). Default: nothing.
   */
  tableSeen?: (version: number, waitMs: number) => Promise<void>;
  /** The command engine Exec runs (cache/engine). Default: none (Exec is refused). */
  engine?: Engine;
  /** cache.max_value_bytes, for the engine's size checks. Default 512 MiB. */
  maxValueBytes?: () => number;
  /**
   * How the writes replicated to one peer in one turn of the event loop are gathered into one
   * request (replica-batch.ts): when the turn ends (default setImmediate). Tests with a fake
   * event loop pass their own.
   */
  replicaDefer?: (fn: () => void) => void;
}

/** Holders told of a write's hints before it was applied, and the end of that announcement (see Router.tellFirst). */
interface Told {
  peers: ReadonlySet<NodeId>;
  release: () => void;
}

/** What a newest-copy read found (see Router.newestRead). */
type NewestRead = { kind: 'answer'; value: GetResult | null } | { kind: 'none' } | { kind: 'failed' };

/** How Router.newestRead reads the holders it is given. */
interface NewestOptions {
  /** A holder that fails is left out instead of failing the read (the caller has nobody better to ask). */
  bestEffort?: boolean;
  /** Holders answer even when they do not trust their copy. */
  doubtful?: boolean;
  /**
   * The holders given are not all of the partition's (fromOthers leaves out this node, which does
   * not trust its copy, and the holders it cannot use): their answers stand for the partition when
   * one of them lacks nothing, or all answered and none said its copy may lack writes. When all
   * answered but some said so, the newest of their copies and this node's own (when it holds the
   * partition) answers, but not "absent".
   */
  partial?: boolean;
}

/** One holder's copy in a newest-copy read, and whether that holder said its copy may lack writes. */
interface HeldCopy {
  record: WireRecord | null;
  lacking: boolean;
}

const NOTHING: readonly NodeId[] = Object.freeze([]);
const NO_MOVES: Moves = { extraReplicas: () => NOTHING, previousHolders: () => NOTHING };
const NO_MIRRORS: Mirrors = { get: () => undefined, waits: () => false, beforeWrite: async () => {} };

export class Router implements KvService {
  readonly defaultGroup: string;
  private readonly self: NodeId;
  private readonly tables: TableView;
  private readonly partitionOf: (key: string) => number;
  private readonly usable: (id: NodeId) => boolean;
  private readonly down: (id: NodeId) => boolean;
  private readonly freshness: CopyFreshness;
  private readonly joining: (id: NodeId) => boolean;
  private readonly local: LocalData;
  private readonly engine: Engine | undefined;
  private readonly maxValueBytes: () => number;
  private readonly peers: Peers;
  private readonly hint: (peer: NodeId, records: readonly WireRecord[]) => void;
  private readonly toldOfHints: (peer: NodeId, deadline: number) => Promise<void>;
  private readonly announceHints: (peer: NodeId) => () => void;
  private readonly settings: RouterSettings;
  private readonly clock: Clock;
  private readonly moves: Moves;
  private readonly mirrors: Mirrors;
  private readonly onReplicationFailure: RouterOptions['onReplicationFailure'];
  private readonly selfTrusted: () => boolean;
  private readonly tableSeen: (version: number, waitMs: number) => Promise<void>;
  /** Replicate requests, one per peer and turn of the event loop. */
  private readonly replicas: ReplicaBatcher;
  /** Peer requests this node answered for a sender whose table was older (re-routed reads, forwarded replicas, refused record reads). */
  staleRoutes = 0;

  constructor(opts: RouterOptions) {
    this.defaultGroup = opts.defaultGroup;
    this.self = opts.self;
    this.tables = opts.tables;
    this.partitionOf = opts.partitionOf;
    this.usable = opts.usable;
    this.down = opts.down ?? ((id) => !opts.usable(id));
    this.freshness = opts.freshness;
    this.joining = opts.joining;
    this.local = opts.local;
    this.engine = opts.engine;
    this.maxValueBytes = opts.maxValueBytes ?? (() => 512 * 1024 * 1024);
    this.peers = opts.peers;
    this.hint = opts.hint;
    this.toldOfHints = opts.toldOfHints ?? (async () => {});
    this.announceHints = opts.announceHints ?? (() => () => {});
    this.settings = opts.settings;
    this.clock = opts.clock;
    this.moves = opts.moves ?? NO_MOVES;
    this.mirrors = opts.mirrors ?? NO_MIRRORS;
    this.onReplicationFailure = opts.onReplicationFailure;
    this.selfTrusted = opts.selfTrusted ?? (() => true);
    this.tableSeen = opts.tableSeen ?? (async () => {});
    this.replicas = new ReplicaBatcher({
      send: (id, records, deadline, table) => this.peers.call(Replicate, id, records, deadline, table),
      clock: this.clock,
      ...(opts.replicaDefer !== undefined ? { defer: opts.replicaDefer } : {}),
    });
    const server = opts.server;
    server.handle(Read, (req, meta) => this.serveRead(req.group, req.key, meta));
    server.handle(Record, (req, meta) => this.serveRecord(req.group, req.key, req.doubtful === true, meta));
    server.handle(Write, (req, meta) => this.serveWrite(req.group, req.key, req.op, meta));
    server.handle(Replicate, (records, meta) => this.serveReplicate(records, meta));
    server.handle(Count, (req) => this.local.keyspace(req.group, this.ownedPartitions()));
    server.handle(Exec, (req, meta) => this.serveExec(req, meta));
    server.handle(Scan, (req) => this.serveScan(req));
    server.handle(Flush, (req) => ({ dropped: this.local.flush(req.group, req.version).dropped }));
  }

  /** The owner of a key's partition under the current table. */
  ownerOf(key: string): NodeId {
    return this.holders(key)[0]!;
  }

  private holders(key: string, table = this.tables.table()): readonly NodeId[] {
    const holders = holdersOf(table, this.partitionOf(key));
    if (holders.length === 0) throw new JincacheError('NO_OWNER', 'the partition table has no members yet');
    return holders;
  }

  private deadline(group: string, opts: RequestOptions): number {
    return opts.deadline ?? this.clock.now() + this.settings.requestTimeoutMs(group);
  }

  // ---- reads --------------------------------------------------------------------------------

  /**
   * Synchronous read, for callers that can skip a promise when the answer is already here: the
   * value when this node may answer from its own copy right now (it owns the key and no holder's
   * copy may lack writes) or from a mirror; undefined means "call get()".
   */
  getLocal(group: string, key: string): GetResult | undefined {
    const from = this.localSource(key);
    return from === 'own' ? this.local.cachedHit(group, key) : from === 'mirror' ? this.mirrors.get(group, key) : undefined;
  }

  /**
   * getLocal() into a sink (the Redis reply batch), without a copy of the value on the way:
   * the same answer, as a LocalRead.
   */
  getLocalInto(group: string, key: string, sink: ValueSink): LocalRead {
    // A key held here names its partition in its record: a hit is answered without hashing the
    // key for it (bench/profile.ts: slotOf was 3% of a GET hit's time); what the own copy did not
    // answer is routed as getLocal() routes it.
    const own = this.local.cachedHitInto(group, key, sink, this.ownAnswers);
    if (own !== undefined) return own;
    if (this.localSource(key) !== 'mirror') return undefined;
    return answerInto(this.mirrors.get(group, key), sink);
  }

  /** Where getLocal() may answer from: this node's own copy (it owns the key and no holder's copy may lack writes), a mirror (another node owns it), or nowhere. */
  private localSource(key: string): 'own' | 'mirror' | undefined {
    const partition = this.partitionOf(key);
    const holders = holdersOf(this.tables.table(), partition);
    if (holders[0] !== this.self) return holders.length === 0 ? undefined : 'mirror';
    return this.noneLacksWrites(holders, partition) ? 'own' : undefined;
  }

  /** Whether this node's own copy may answer a read of `partition` now: it owns it and no holder's copy may lack writes. */
  private answersOwn(partition: number): boolean {
    const holders = holdersOf(this.tables.table(), partition);
    return holders[0] === this.self && this.noneLacksWrites(holders, partition);
  }

  /** No holder of `partition` may lack writes (freshness.ts): a copy of it may answer alone. */
  private noneLacksWrites(holders: readonly NodeId[], partition: number): boolean {
    // an indexed loop: for-of's iterator showed up in the GET's allocations (bench/profile.ts --kind heap)
    for (let i = 0; i < holders.length; i++) if (this.freshness.mayLackWrites(holders[i]!, partition)) return false;
    return true;
  }

  /** answersOwn, bound once: handed to the store on every GET hit. */
  private readonly ownAnswers = (partition: number): boolean => this.answersOwn(partition);

  async get(group: string, key: string, opts: RequestOptions = {}): Promise<GetResult | null> {
    this.local.group(group); // an unknown group fails here, before any network
    const deadline = this.deadline(group, opts);
    const partition = this.partitionOf(key);
    const holders = this.holders(key);
    // a hot key mirrored here by its owner is answered here (the owner reads its own copy)
    if (holders[0] !== this.self) {
      const mirrored = this.mirrors.get(group, key);
      if (mirrored !== undefined) return mirrored;
    }
    const stale = (id: NodeId): boolean => this.freshness.mayLackWrites(id, partition);
    // a copy that may lack writes is never read alone: ask every holder, the newest copy wins
    const checked = holders.some(stale);
    let fresh = stale;
    // this node's copy may lack writes and the other holders could not all be asked
    let doubtSelf = false;
    if (checked) {
      // half the budget at most: a holder that answers slowly (one just back behind an 800 ms
      // delay: npm run chaos, partition phase, reads at healthy nodes failed with 504 when it
      // turned usable again) leaves the other half to the holders in read order
      const newest = await this.newestRead(group, key, holders, shareOf(deadline, 1 / 2, this.clock.now()));
      if (newest.kind === 'answer') return newest.value;
      // No holder has the key and the group loads it: there is no copy left to be stale, and
      // the load belongs at the owner, whose singleflight every other miss joins. (Avoiding a
      // holder on probation here sent such reads to a backup, which loaded the key a second
      // time: seen right after a cluster starts, when every peer is on probation.)
      if (newest.kind === 'none') fresh = () => false;
      else if (newest.kind === 'failed') doubtSelf = stale(this.self);
    }
    // a node that does not trust its own copy (after a pause) asks the other holders only
    const order = readOrder(this.selfTrusted() ? holders : holders.filter((id) => id !== this.self), { usable: this.usable, onProbation: fresh });
    if (order.length === 0) throw new JincacheError('NOT_SERVING', `this node is recovering after a pause and is the only holder of "${key}"; retry shortly`);
    if (order[0] === this.self && !doubtSelf) return this.getAsHolder(group, key, deadline, checked);
    // A copy here that may lack writes, read because the check failed, answers what it has but
    // not "absent": the next holder is tried. The new owner of a partition whose copy was not
    // made yet, read while the holder with the value was unreachable, answered an acknowledged
    // write as missing (stall.test: every node stalled, one member removed, "stall-17: 404").
    // (Refusing such a copy altogether failed reads at healthy nodes during a kill -9 in
    // chaos-hosts-short.)
    const asHolder = async (): Promise<GetResult | null> => {
      const got = await this.getAsHolder(group, key, deadline, checked);
      if (got === null && doubtSelf) throw new JincacheError('NOT_SERVING', `this node's copy may lack "${key}" and its other holders could not be asked; retry shortly`);
      return got;
    };
    try {
      return await withRetry(
        (n) => {
          const target = order[n % order.length]!;
          if (target === this.self) return asHolder();
          return this.readFrom(target, group, key, attemptDeadline(deadline, n, order.length, this.clock.now()));
        },
        { maxRetries: this.settings.maxRetries(group), deadline },
      );
    } catch (e) {
      // every holder failed: a loader group loads here, through the group's singleflight
      // (groupcache's fallback); a plain key-value group has nothing else to ask
      if (isRetryable(e) && this.local.group(group).loader !== undefined && this.clock.now() < deadline) return this.load(group, key, deadline);
      throw e;
    }
  }

  private async readFrom(id: NodeId, group: string, key: string, deadline: number): Promise<GetResult | null> {
    const a = await this.peers.call(Read, id, { group, key }, deadline);
    return a.found ? { value: a.value, source: a.source, expiresAt: a.expiresAt, ...(a.type !== undefined ? { type: a.type } : {}) } : null;
  }

  /**
   * Read as a holder: the local copy, then (for a partition that just moved here) the nodes that
   * held it before, then the origin loader. While this node's copy may lack writes and the caller
   * has not `checked` every holder yet, the newest copy among the holders answers: a peer that
   * routed a read here (its view of this node may lag) still gets the acknowledged value.
   */
  private async getAsHolder(group: string, key: string, deadline: number, checked: boolean): Promise<GetResult | null> {
    const partition = this.partitionOf(key);
    if (!this.selfTrusted()) return this.fromOthers(group, key, partition, deadline);
    if (!checked && this.freshness.mayLackWrites(this.self, partition)) {
      const holders = holdersOf(this.tables.table(), partition);
      const newest = await this.newestRead(group, key, holders.includes(this.self) ? holders : [this.self, ...holders], deadline, { bestEffort: true });
      if (newest.kind === 'answer') return newest.value;
      if (newest.kind === 'failed') throw new JincacheError('NOT_SERVING', `this node's copy may lack "${key}" and no holder whose copy lacks nothing answered; retry shortly`);
    }
    // A read sent to a backup by a node that took the owner for unreachable, while the owner
    // answers here: the owner applies a write before it replicates it, and a read there may have
    // returned it already, so the backup's copy alone could answer older after newer (npm run
    // chaos, kill -9 phase: kill-9/n0 read "335" via node-5 at 13921 ms while INCR -> 335 was
    // replicating, then "334" via node-2 at 14005 ms). The newest of the copies answers when
    // every holder answered within OWNER_ASK_MS (the owner may be the hung one) and one of them
    // lacks nothing; otherwise this copy answers as before (never "absent" because the holders
    // asked were all new ones without the data yet: that is newestRead's 'failed').
    const owner = holdersOf(this.tables.table(), partition)[0];
    if (!checked && owner !== undefined && owner !== this.self && this.usable(owner)) {
      const now = this.clock.now();
      const ask = now + Math.max(1, Math.min(OWNER_ASK_MS, Math.floor((deadline - now) / 4)));
      const newest = await this.newestRead(group, key, holdersOf(this.tables.table(), partition), ask);
      if (newest.kind === 'answer') return newest.value;
    }
    const hit = this.local.cached(group, key);
    if (hit !== undefined) return hit;
    const previous = this.moves.previousHolders(partition);
    // a tombstone here is newer knowledge than whatever a previous holder kept
    if (previous.length > 0 && this.local.record(group, key) === undefined) {
      for (const id of previous) {
        if (id === this.self || !this.usable(id)) continue;
        try {
          const a = await this.peers.call(Record, id, { group, key }, deadline);
          if (a.kind !== 'record') continue;
          this.local.applyOne(a.record);
          const now = this.local.cached(group, key);
          if (now !== undefined) return now;
          if (a.record.value === null) break; // deleted there: absent, no origin load
        } catch {
          // the previous holder is gone or slow: the next one, then the origin
        }
      }
    }
    return this.load(group, key, deadline);
  }

  /**
   * The miss path (disk, then the origin) within the request's deadline: a slow origin fails the
   * request with TIMEOUT at the deadline, and its load goes on for the next reader (singleflight).
   */
  private load(group: string, key: string, deadline: number): Promise<GetResult | null> {
    const loading = this.local.load(group, key);
    const left = deadline - this.clock.now();
    if (left <= 0) return Promise.reject(new JincacheError('TIMEOUT', `loading "${key}": the request's deadline passed`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new JincacheError('TIMEOUT', `loading "${key}" did not finish within the request's deadline`)), left);
      loading.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }

  /**
   * A read this node would serve from its own copy while it does not trust it (trust.ts): the
   * newest copy among the other holders it can use answers, or the origin when none has the key.
   * When some of them say their copies may lack writes, this node's own copy is compared too (the
   * writes they lack may be the ones it holds hints for), and "absent" is no answer from them.
   * When some do not trust their copies either (every node paused at once), the newest of *every*
   * holder's copy answers, this node's included: a write acknowledged by any holder is in one of
   * them. When none of them can be asked, the read fails (NOT_SERVING, retryable).
   */
  private async fromOthers(group: string, key: string, partition: number, deadline: number): Promise<GetResult | null> {
    const holders = holdersOf(this.tables.table(), partition);
    const others = holders.filter((id) => id !== this.self && this.usable(id));
    let newest: NewestRead = others.length === 0 ? { kind: 'failed' } : await this.newestRead(group, key, others, deadline, { partial: true });
    if (newest.kind === 'failed' && holders.every((id) => id === this.self || this.usable(id)) && holders.includes(this.self)) {
      newest = await this.newestRead(group, key, holders, deadline, { doubtful: true });
    }
    if (newest.kind === 'answer') return newest.value;
    if (newest.kind === 'none') return this.load(group, key, deadline);
    throw new JincacheError('NOT_SERVING', `this node is recovering after a pause and no other holder of "${key}" answered; retry shortly`);
  }

  /**
   * Read every usable holder's own copy (tombstones included) and answer with the newest;
   * holders with an older copy get the newest through the hint queue (read repair). Not an
   * answer when a holder failed ('failed'), or when no holder has anything and the group's
   * loader may know ('none'); see NewestOptions.
   *
   * "Absent" is an answer only from copies that cannot all lack the key: every holder given
   * answered (of a `partial` list, none saying its copy may lack writes), or one did that lacks
   * nothing, by this node's view of it (freshness.ts) and by its own word (RecordAnswer.lacking:
   * what a holder knows about itself, such as being made a holder before its copy arrived, its
   * peers cannot see). When every node stalled and one was removed, the holder that still had a
   * key did not trust its copy and asked only the new holder, which had no copy yet: "absent"
   * answered an acknowledged write as missing (stall.test, "stall-18: 404").
   */
  private async newestRead(group: string, key: string, holders: readonly NodeId[], deadline: number, opts: NewestOptions = {}): Promise<NewestRead> {
    const { bestEffort = false, doubtful = false, partial = false } = opts;
    const targets = holders.filter((id) => this.usable(id));
    const answers = await Promise.allSettled(targets.map((id) => (id === this.self ? Promise.resolve({ record: this.local.record(group, key) ?? null, lacking: false }) : this.fetchRecord(id, group, key, deadline, doubtful))));
    let best: WireRecord | undefined;
    let failed = false;
    // A holder left out (unusable here, or failed) may have the newest write: the others' copies
    // answer only when one of them lacks nothing. (A node just back from a pause sees every peer
    // as unusable: its own doubtful copy alone, or nobody's, read as "absent", is no answer.)
    const partition = this.partitionOf(key);
    let answered = 0;
    let complete = false;
    let lacking = false;
    for (let i = 0; i < answers.length; i++) {
      const a = answers[i]!;
      if (a.status === 'rejected') failed ||= !bestEffort;
      else {
        answered++;
        lacking ||= a.value.lacking;
        complete ||= !a.value.lacking && !this.freshness.mayLackWrites(targets[i]!, partition);
        const r = a.value.record;
        if (r !== null && (best === undefined || compareWrites(r, best) > 0)) best = r;
      }
    }
    const sound = complete || (answered === holders.length && !(partial && lacking));
    // Every holder of a partial list answered, and one of them said its copy may lack writes: the
    // copy it lacks may be this node's. After a partition the node that was cut off holds hints
    // for its peers (they say so), and its own copy has those writes: refusing to answer there
    // failed reads at healthy nodes forwarded to it (chaos-hosts-short, partition phase, 503).
    const mixed = partial && !sound && answered === holders.length;
    if (mixed && holdersOf(this.tables.table(), partition).includes(this.self)) {
      const mine = this.local.record(group, key);
      if (mine !== undefined && (best === undefined || compareWrites(mine, best) > 0)) best = mine;
    }
    failed ||= !bestEffort && !sound && !mixed;
    if (best !== undefined) {
      answers.forEach((a, i) => {
        const id = targets[i]!;
        if (a.status !== 'fulfilled' || (a.value.record !== null && compareWrites(best, a.value.record) <= 0)) return;
        if (id === this.self) this.local.applyOne(best);
        else this.hint(id, [best]);
      });
    }
    if (failed) return { kind: 'failed' };
    const loader = this.local.group(group).loader !== undefined;
    const absent = best === undefined || best.value === null || (best.expiresAt > 0 && best.expiresAt <= this.clock.now());
    // best effort answers with what the copies it got have, but "absent" only from a sound one:
    // copies that may all lack writes (a holder the crash repair has not filled yet, while the
    // holder with the value is unreachable) answered an acknowledged write as missing
    // (stall.test: every node stalled, one member removed, "stall-17: 404")
    if (absent && !sound && !loader) return { kind: 'failed' };
    if (absent) return loader ? { kind: 'none' } : { kind: 'answer', value: null };
    const found = best!;
    return { kind: 'answer', value: { value: found.value!, source: 'hit', expiresAt: found.expiresAt, ...(found.type !== undefined ? { type: found.type } : {}) } };
  }

  /** A holder's own copy; a holder that no longer holds the key under a newer table fails the read (its copy may lack writes). */
  private async fetchRecord(id: NodeId, group: string, key: string, deadline: number, doubtful = false): Promise<HeldCopy> {
    const a = await this.peers.call(Record, id, doubtful ? { group, key, doubtful } : { group, key }, deadline);
    if (a.kind === 'misdirected') throw new JincacheError('PEER_UNAVAILABLE', `${id} no longer holds the key under its newer partition table`);
    return { record: a.kind === 'record' ? a.record : null, lacking: a.lacking === true };
  }

  /**
   * Read: a read another node routed here, by table `meta.table`. When this node's table is
   * newer and no longer lists it as a holder of the key, the sender's table is stale and so may
   * this node's copy be: the read is routed again, by this node's table. Versions only grow
   * along such a chain, so it ends. When the sender's table is newer, wait briefly for it.
   */
  private async serveRead(group: string, key: string, meta: MessageMeta): Promise<ReadAnswer> {
    let got: GetResult | null;
    if (meta.table !== undefined && meta.table < this.tables.table().version && !this.holders(key).includes(this.self)) {
      this.staleRoutes++;
      got = await this.get(group, key, { deadline: meta.deadline });
    } else {
      if (meta.table !== undefined) await this.awaitTable(meta.table, meta.deadline);
      this.local.group(group);
      got = await this.getAsHolder(group, key, meta.deadline, false);
    }
    return got === null ? { found: false } : { found: true, value: got.value, expiresAt: got.expiresAt, source: got.source === 'load' ? 'load' : 'hit', ...(got.type !== undefined ? { type: got.type } : {}) };
  }

  /** Record: this node's own copy, or misdirected when the sender's older table sent it to a node that no longer holds the key. */
  private serveRecord(group: string, key: string, doubtful: boolean, meta: MessageMeta): RecordAnswer {
    if (!doubtful && !this.selfTrusted()) throw new JincacheError('NOT_SERVING', 'this node is recovering after a pause: its copy may lack writes');
    if (meta.table !== undefined && meta.table < this.tables.table().version && !this.holders(key).includes(this.self)) {
      this.staleRoutes++;
      return { kind: 'misdirected' };
    }
    const record = this.local.record(group, key);
    const lacking = this.freshness.mayLackWrites(this.self, this.partitionOf(key));
    if (record === undefined) return lacking ? { kind: 'none', lacking } : { kind: 'none' };
    return lacking ? { kind: 'record', record, lacking } : { kind: 'record', record };
  }

  // ---- writes -------------------------------------------------------------------------------

  async put(group: string, key: string, value: Buffer, opts: PutOptions & RequestOptions = {}): Promise<boolean> {
    const expiry = opts.ttlMs !== undefined && opts.ttlMs > 0 ? { kind: 'in' as const, ms: opts.ttlMs } : NO_EXPIRY;
    return (await this.write(group, key, { op: 'set', value, expiry, ...(opts.condition !== undefined ? { cond: opts.condition } : {}) }, opts)).applied;
  }

  async delete(group: string, key: string, opts: RequestOptions = {}): Promise<boolean> {
    return (await this.write(group, key, { op: 'del' }, opts)).existed;
  }

  async expire(group: string, key: string, ttlMs: number, opts: RequestOptions = {}): Promise<boolean> {
    return (await this.write(group, key, { op: 'expire', expiry: ttlMs > 0 ? { kind: 'in', ms: ttlMs } : NO_EXPIRY }, opts)).applied;
  }

  /**
   * Synchronous write, for callers that can skip promises when it needs no network: applied here
   * when this node coordinates the key's writes and nobody else must hear of it first (the key's
   * only holder, no partition move, no mirror to invalidate, not catching up). Undefined means
   * "call write()".
   */
  writeLocal(group: string, key: string, op: WriteOp): WriteResult | undefined {
    const table = this.tables.table();
    // a key with more than one holder never qualifies: decided before hashing the key
    if (Math.min(table.replicationFactor, table.members.length) !== 1 || !this.selfTrusted()) return undefined;
    // a key held here (value or tombstone) has its partition in the store: no hash of it
    const held = this.local.heldPartition(group, key);
    const partition = held >= 0 ? held : this.partitionOf(key);
    const holders = holdersOf(table, partition);
    if (holders.length !== 1 || holders[0] !== this.self) return undefined;
    if (this.moves.extraReplicas(partition).length > 0 || this.mirrors.waits(group, key, partition) || this.joining(this.self)) return undefined;
    return this.local.writeHere(group, key, op);
  }

  /**
   * Send a write to its coordinator: the first usable holder (not one catching up while another
   * can), and on a failed attempt the next one, but only when the attempt surely never arrived
   * (refused, breaker open, NOT_SERVING). An attempt that timed out or whose connection broke
   * may have been applied and seen by readers; applying it again at another coordinator, after
   * writes acknowledged in between, would show it twice in the key's history (W, W2, W: the
   * chaos checker's finding under packet loss, however the retry's version is chosen). So the
   * caller gets the failure, which says the write may or may not have taken effect, until the
   * failure detector takes that coordinator out of the order (a heartbeat timeout or so).
   *
   * While this node does not trust its copy (trust.ts) it coordinates no write that another
   * holder can take, even one its failure detector calls unusable: right after a pause every peer
   * looks gone from here, and a write applied here with only hints for the others would be
   * acknowledged while the holders everyone else reads lack it (issue 17).
   */
  async write(group: string, key: string, op: WriteOp, opts: RequestOptions = {}): Promise<WriteResult> {
    this.local.group(group);
    const deadline = this.deadline(group, opts);
    const order = this.writeOrderOf(this.holders(key));
    if (order[0] === this.self) return this.coordinate(group, key, op, deadline);
    return withRetry(
      (n) => {
        const target = order[n % order.length]!;
        if (target === this.self) return this.coordinate(group, key, op, deadline);
        return this.peers.call(Write, target, { group, key, op }, attemptDeadline(deadline, n, order.length, this.clock.now()));
      },
      { maxRetries: this.settings.maxRetries(group), deadline, retryable: notDelivered },
    );
  }

  /** The holders a write of a partition held by `holders` is sent to, in turn. */
  private writeOrderOf(holders: readonly NodeId[]): readonly NodeId[] {
    // a holder catching up coordinates only when no other holder can
    return writeOrder(this.selfTrusted() || holders.length === 1 ? holders : holders.filter((id) => id !== this.self), { usable: this.usable, behind: this.joining });
  }

  /**
   * Whether write() of `key`, called now, coordinates it here: it is then applied (or refused)
   * before write() first awaits, and its promise only waits for the acknowledgment (the
   * replicas, the mirrors). A Redis connection runs the commands after such a write without
   * waiting for it (front/resp/server.ts).
   */
  appliesHere(key: string): boolean {
    const partition = this.partitionOf(key);
    const holders = holdersOf(this.tables.table(), partition);
    if (holders.length === 0 || this.writeOrderOf(holders)[0] !== this.self) return false;
    // a holder to be told first (tellFirst): the write waits before it is applied
    return !hintsAny(this.self, holders, this.moves.extraReplicas(partition), { usable: this.usable });
  }

  /**
   * Apply a write here as its coordinator and replicate it. `fence`: the write must not be
   * applied at or after this time (its sender has given up by then); it is also the
   * replication deadline.
   */
  private async coordinate(group: string, key: string, op: WriteOp, fence: number): Promise<WriteResult> {
    // A write decided on the copy (a condition, an expiry) must be decided on one that lacks
    // nothing, as a command is (coordinateExec): not after a pause, and while this copy may lack
    // writes the key is caught up from the other holders first. (Refusing it then made SET NX
    // fail with TRYAGAIN for the first seconds of every new static cluster, whose nodes all
    // start catching up: redis-clients.test.)
    // the holders to tell first are told before the catch-up: nothing may await between the
    // catch-up and the apply, or another coordinator's writes could slip in between
    const telling = this.tellFirst(key, fence);
    const told = telling === undefined ? undefined : await telling;
    try {
      if (!(op.op === 'set' && op.cond === undefined) && op.op !== 'del') {
        if (!this.selfTrusted()) throw new JincacheError('NOT_SERVING', `this node is recovering after a pause; the write of "${key}" was not applied`);
        const partition = this.partitionOf(key);
        if (this.freshness.mayLackWrites(this.self, partition)) await this.catchUpKeys(group, [key], partition, fence);
      }
      // one synchronous block from the fence check to the apply: nothing can run in between
      if (this.clock.now() >= fence) throw new JincacheError('TIMEOUT', `write of "${key}" arrived after its deadline; not applied`);
      const out = this.local.write(group, key, op);
      if (out.record === undefined) return out.result;
      // keep a quarter of the time left for the answer to travel back: a backup that has not
      // confirmed by then gets a hint instead, so a hung backup cannot time the whole write out
      await this.replicate(key, [out.record], shareOf(fence, 3 / 4, this.clock.now()), told?.peers);
      return out.result;
    } finally {
      told?.release();
    }
  }

  /**
   * Before a write of `key` is applied here: the holders it will be hinted for (the detector
   * calls them unusable) are told, by the answer to their next heartbeat here, that this node
   * holds hints for them, and the write waits for that (at most half its time; not for a holder
   * that sends no heartbeats here: it does not reach this node). A holder wrongly taken for
   * unreachable, still serving its copy, then reads the newest copy across the holders before
   * any client can see the write: acknowledged at once, the write was missing there until its
   * next heartbeat (npm run chaos, etcd stopped: node-1 hinted k7's write for node-2 at 5732 ms
   * and acknowledged it 5 ms later; node-2 answered the older value four times in the next
   * 200 ms). Told only after the apply, the holder still answered the older value while a read
   * through this node returned the write being replicated (npm run chaos, partition phase:
   * node-3 coordinated k5's write around node-4, a read through node-1 returned it at 2231 ms,
   * node-4 answered the value before it at 2292 ms). Undefined (not a promise): nobody to tell.
   */
  private tellFirst(key: string, fence: number): Promise<Told> | undefined {
    const partition = this.partitionOf(key);
    const holders = holdersOf(this.tables.table(), partition);
    const extra = this.moves.extraReplicas(partition);
    const verdicts = { usable: this.usable };
    // nobody to tell: no promise, so the write is applied before write() first awaits (appliesHere)
    return hintsAny(this.self, holders, extra, verdicts) ? this.tell(replicaPlan(this.self, holders, extra, verdicts).hint, fence) : undefined;
  }

  private async tell(hint: readonly NodeId[], fence: number): Promise<Told> {
    const releases = hint.map((id) => this.announceHints(id));
    const release = (): void => releases.forEach((r) => r());
    const by = shareOf(fence, 1 / 2, this.clock.now());
    try {
      await Promise.all(hint.map((id) => this.toldOfHints(id, by)));
    } catch (e) {
      release();
      throw e;
    }
    return { peers: new Set(hint), release };
  }

  /** Write: coordinate a write another node sent here. A sender with a newer table chose this node by it: wait briefly for that table. */
  private async serveWrite(group: string, key: string, op: WriteOp, meta: MessageMeta): Promise<WriteResult> {
    this.local.group(group);
    if (meta.table !== undefined) await this.awaitTable(meta.table, meta.deadline);
    // the sender may take it elsewhere: a refusal here applied nothing
    if (!this.selfTrusted()) throw new JincacheError('NOT_SERVING', `this node is recovering after a pause; the write of "${key}" was not applied`);
    return this.coordinate(group, key, op, meta.deadline);
  }

  /**
   * Send records to the partition's other holders (and new holders while it moves). With sync
   * replication the caller waits for the reachable ones; a holder the detector calls unusable
   * gets a hint at once, and one that does not confirm gets it as a hint afterwards.
   */
  private async replicate(key: string, records: WireRecord[], deadline: number, told?: ReadonlySet<NodeId>): Promise<void> {
    const partition = this.partitionOf(key);
    const holders = holdersOf(this.tables.table(), partition);
    const extra = this.moves.extraReplicas(partition);
    // every acknowledged write passes here: mirrors of the key are invalidated before the ack
    const invalidations = this.mirrorsWait(records, deadline);
    const plan = replicaPlan(this.self, holders, extra, { usable: this.usable });
    const waits: Promise<unknown>[] = [];
    for (const id of plan.hint) {
      if (told?.has(id) === true) this.hint(id, records);
      else waits.push(this.hintAndTell(id, records, deadline));
    }
    for (const id of plan.send) waits.push(this.replicateTo(id, records, deadline));
    if (this.settings.syncReplication) await Promise.all(waits);
    if (invalidations !== undefined) await invalidations;
  }

  /**
   * Keep a hint for a holder the detector calls unusable, and before the write is acknowledged
   * wait until that holder has been told so by a heartbeat answer, if it still pings this node:
   * for a holder tellFirst did not tell (it turned unusable after the write was decided, or the
   * records are passed on for a sender with an older table).
   */
  private hintAndTell(id: NodeId, records: readonly WireRecord[], deadline: number): Promise<void> {
    this.hint(id, records);
    return this.toldOfHints(id, deadline);
  }

  private mirrorsWait(records: readonly WireRecord[], deadline: number): Promise<unknown> | undefined {
    let waits: Promise<void>[] | undefined;
    for (const r of records) {
      if (!this.mirrors.waits(r.group, r.key)) continue;
      (waits ??= []).push(this.mirrors.beforeWrite(r.group, r.key, r.version, deadline));
    }
    return waits === undefined ? undefined : Promise.all(waits);
  }

  /**
   * Send replicated records to one holder, in one request with the other records for it this
   * turn (replica-batch.ts); one that does not confirm them by `deadline` gets them as a hint
   * (never rejects).
   */
  private async replicateTo(id: NodeId, records: readonly WireRecord[], deadline: number): Promise<void> {
    const failure = await this.replicas.replicate(id, records, deadline, this.tables.table().version);
    if (failure === undefined) return;
    this.hint(id, records);
    this.onReplicationFailure?.(id, records.length, failure);
  }

  /**
   * Replicate: records a coordinator sent here. Applied, then, when the sender routed by an
   * older table than this node's, sent on to this table's holders (but this node and the
   * sender) before the sender's write is acknowledged: a migration or repair committed meanwhile
   * may list holders the sender did not know.
   */
  private async serveReplicate(records: WireRecord[], meta: MessageMeta): Promise<void> {
    this.local.apply(records);
    if (meta.table === undefined || meta.table >= this.tables.table().version || records.length === 0) return;
    const table = this.tables.table();
    const byTarget = new Map<NodeId, WireRecord[]>();
    for (const r of records) {
      const partition = this.partitionOf(r.key);
      for (const id of [...holdersOf(table, partition), ...this.moves.extraReplicas(partition)]) {
        if (id === this.self || id === meta.from) continue;
        const list = byTarget.get(id);
        if (list === undefined) byTarget.set(id, [r]);
        else list.push(r);
      }
    }
    if (byTarget.size === 0) return;
    this.staleRoutes++;
    // the sender's own wait ends at the deadline: answer it before then
    const tellBy = shareOf(meta.deadline, 3 / 4, this.clock.now());
    await Promise.all([...byTarget].map(([id, recs]) => (this.usable(id) ? this.replicateTo(id, recs, meta.deadline) : this.hintAndTell(id, recs, tellBy))));
  }

  /** Wait (briefly) for the newer table a sender routed by; still behind after that: this node's table lags, it stops trusting its copy. */
  private async awaitTable(version: number, deadline: number): Promise<void> {
    if (version <= this.tables.table().version) return;
    await this.tableSeen(version, Math.max(0, Math.min(TABLE_WAIT_MS, deadline - this.clock.now() - 1)));
  }

  // ---- commands at the coordinator (Exec) --------------------------------------------------

  /**
   * Run Redis commands on one hash slot at its coordinator (cache/engine): INCR, HSET, GETSET,
   * RENAME, a MULTI/EXEC transaction. The coordinator is the key's first holder that is not down
   * (commandOrder); the commands run there atomically, and what they change is versioned, applied
   * and replicated before the reply comes back. Read-only commands run there too, so they see
   * every write the coordinator acknowledged. Retried only when the attempt surely never arrived,
   * and only there: a command may not be idempotent (INCR).
   */
  async exec(group: string, req: Omit<ExecRequest, 'group'>, opts: RequestOptions = {}): Promise<Reply> {
    this.local.group(group);
    const deadline = this.deadline(group, opts);
    const target = this.commandOrder(req.key)[0]!;
    const full: ExecRequest = { group, ...req };
    if (target === this.self) return this.coordinateExec(full, deadline);
    return withRetry((n) => this.peers.call(Exec, target, full, attemptDeadline(deadline, n, 1, this.clock.now())), {
      maxRetries: this.settings.maxRetries(group),
      deadline,
      retryable: notDelivered,
    });
  }

  /**
   * Where commands on `key` run: its first holder that is not down, whatever else the failure
   * detector or the hint queues say of it. A command is decided on its coordinator's copy, so
   * two nodes running commands on one key at once answer the same INCR twice; and every view
   * but the owner's own can be wrong about the owner: a sender or a backup that took a slow
   * owner (on a loaded machine) for unreachable, or for behind because it held a hint for it,
   * ran INCRs the owner was running too (npm run chaos, etcd phase: etcd-stopped-10s/n1 ops
   * 3803 and 3804 both answered 202 while node-4 took the owner node-5 for suspected for 150 ms;
   * the counter ended 3 short). Only a holder surely not running (no process, or no member) is
   * passed over. An owner that may lack writes catches the keys up before it runs them
   * (coordinateExec); while it does not trust its copy at all (after a pause) commands fail.
   */
  private commandOrder(key: string): NodeId[] {
    const holders = this.holders(key);
    const up = holders.filter((id) => id === this.self || !this.down(id));
    return up.length > 0 ? up : [...holders];
  }

  /**
   * Exec: run commands another node sent here. Only where this node would run them itself: a
   * sender that took the owner for down sends them to the backup, which runs them only when it
   * takes the owner for down too. The refusal applies nothing.
   */
  private async serveExec(req: ExecRequest, meta: MessageMeta): Promise<Reply> {
    this.local.group(req.group);
    if (meta.table !== undefined) await this.awaitTable(meta.table, meta.deadline);
    const first = this.commandOrder(req.key)[0];
    if (first !== this.self) throw new JincacheError('NOT_SERVING', `commands on "${req.key}" run at ${first} as this node sees it; not run here`);
    return this.coordinateExec(req, meta.deadline);
  }

  private async coordinateExec(req: ExecRequest, fence: number): Promise<Reply> {
    const engine = this.engine;
    if (engine === undefined && req.commands.length > 0) throw new JincacheError('BAD_REQUEST', 'this node runs no command engine');
    // A command reads before it writes: it must run on a copy that lacks nothing. Not after a
    // pause (the table itself may have moved on). While another holder may hold writes this copy
    // lacks (it owes this node hints, a catch-up or a migration copy is running), the keys are
    // caught up from the other holders first: a write they acknowledged without this node is in
    // their copies.
    if (!this.selfTrusted()) throw new JincacheError('NOT_SERVING', `this node is recovering after a pause; the command on "${req.key}" was not run`);
    // told first, caught up last: waiting between the catch-up and the run let INCRs that another
    // node ran meanwhile (it still took this restarted owner for down) be run again on the
    // caught-up value (npm run chaos, kill -9 phase: kill-9/n1 answered 366 and 367 twice)
    const telling = this.tellFirst(req.key, fence);
    const told = telling === undefined ? undefined : await telling;
    try {
      // the wait may have shown this node the owner it took for down is back (it pinged here):
      // one coordinator per key, so it runs the commands, not this node
      const first = told === undefined ? this.self : this.commandOrder(req.key)[0];
      if (first !== this.self) throw new JincacheError('NOT_SERVING', `commands on "${req.key}" run at ${first} now; not run here`);
      const partition = this.partitionOf(req.key);
      if (this.freshness.mayLackWrites(this.self, partition)) await this.catchUpKeys(req.group, req.keys, partition, fence);
      await this.local.prepare(req.group, req.keys);
      // one synchronous block from the fence check to the apply: nothing can run in between
      if (this.clock.now() >= fence) throw new JincacheError('TIMEOUT', `the command on "${req.key}" arrived after its deadline; not run`);
      const ctx = { now: this.clock.now(), maxValueBytes: this.maxValueBytes(), protocol: req.protocol ?? 2 };
      const out = this.local.execute(req.group, (view) => {
        // no command: what WATCH records of `keys` now, a [version, live] pair each
        if (!req.transaction && req.commands.length === 0) {
          const pairs: Reply[] = req.keys.map((k) => {
            const w = watchOf(k, view, ctx);
            return { type: 'array', items: [{ type: 'integer', value: w.version }, { type: 'integer', value: w.live === true ? 1 : 0 }] };
          });
          return { reply: { type: 'array', items: pairs }, changes: [] };
        }
        return req.transaction ? engine!.executeTransaction(req.commands, view, ctx, req.watched) : engine!.execute(req.commands[0]!, view, ctx);
      });
      if (out.records.length > 0) await this.replicate(req.key, out.records, shareOf(fence, 3 / 4, this.clock.now()), told?.peers);
      return out.reply;
    } finally {
      told?.release();
    }
  }

  /**
   * Bring this node's copies of `keys` up to the newest copy among the partition's other holders
   * that are not down (their own copies, tombstones included). Fails (NOT_SERVING, nothing run)
   * when one of them does not answer: it may hold the newest write.
   */
  private async catchUpKeys(group: string, keys: readonly string[], partition: number, deadline: number): Promise<void> {
    const others = holdersOf(this.tables.table(), partition).filter((id) => id !== this.self && !this.down(id));
    const fetches = keys.flatMap((key) => others.map((id) => this.fetchRecord(id, group, key, deadline, true)));
    let copies: HeldCopy[];
    try {
      copies = await Promise.all(fetches);
    } catch (e) {
      throw new JincacheError('NOT_SERVING', `this node's copy may lack acknowledged writes and another holder did not answer (${(e as Error).message}); the command was not run`);
    }
    for (const c of copies) if (c.record !== null) this.local.applyOne(c.record);
  }

  // ---- the keyspace -------------------------------------------------------------------------

  /**
   * A page of one partition's live keys (SCAN, KEYS, RANDOMKEY), from a holder that trusts its
   * copy: this node when it is one, else the others in read order. The cursor is the store's
   * (GroupStore.scanPartition): the same order on every node, so a walk survives a move.
   */
  async scanPage(group: string, req: Omit<ScanRequest, 'group'>, opts: RequestOptions = {}): Promise<{ cursor: number; keys: string[] }> {
    this.local.group(group);
    const deadline = this.deadline(group, opts);
    const holders = holdersOf(this.tables.table(), req.partition);
    const full: ScanRequest = { group, ...req };
    if (holders.includes(this.self) && this.selfTrusted()) return this.serveScan(full);
    const order = readOrder(holders.filter((id) => id !== this.self), { usable: this.usable, onProbation: () => false });
    if (order.length === 0) throw new JincacheError('NOT_SERVING', `no holder of partition ${req.partition} can be asked`);
    return withRetry(
      (n) => this.peers.call(Scan, order[n % order.length]!, full, attemptDeadline(deadline, n, order.length, this.clock.now())),
      { maxRetries: this.settings.maxRetries(group), deadline },
    );
  }

  /** The table's partition count (SCAN cursors walk partitions in order). */
  partitionCount(): number {
    return this.tables.table().partitionCount;
  }

  private serveScan(req: ScanRequest): { cursor: number; keys: string[] } {
    if (!this.selfTrusted()) throw new JincacheError('NOT_SERVING', 'this node is recovering after a pause: its copy may lack writes');
    return this.local.scan(req.group, req.partition, req.cursor, req.count, req.type, req.match);
  }

  /**
   * FLUSHALL: every member drops the group's entries and refuses writes at or under one version
   * from now on (the flush floor), so nothing flushed comes back by replication, hints or
   * migration. Fails (the flush may be partial; run it again) unless every member confirmed.
   */
  async flush(group: string, opts: RequestOptions = {}): Promise<number> {
    this.local.group(group);
    const deadline = this.deadline(group, opts);
    const { version, dropped } = this.local.flush(group);
    const others = await Promise.allSettled(this.peers.others().map((id) => this.peers.call(Flush, id, { group, version }, deadline)));
    const failed = others.filter((r) => r.status === 'rejected').length;
    if (failed > 0) throw new JincacheError('PEER_UNAVAILABLE', `the flush did not reach ${failed} of ${others.length + 1} nodes; run it again`);
    return others.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value.dropped : 0), dropped);
  }

  // ---- counts -------------------------------------------------------------------------------

  /** Live entries of a group across the cluster (each owner counts its own partitions). */
  async count(group: string, opts: RequestOptions = {}): Promise<number> {
    return (await this.keyspace(group, opts)).keys;
  }

  /** INFO keyspace over the cluster: live keys, how many expire, their mean time left (ms). */
  async keyspace(group: string, opts: RequestOptions = {}): Promise<{ keys: number; expires: number; avgTtl: number }> {
    this.local.group(group);
    const deadline = this.deadline(group, opts);
    const owners = new Set<NodeId>();
    for (const holders of this.tables.table().assignments) if (holders[0] !== undefined) owners.add(holders[0]);
    const parts = await Promise.all([...owners].map((id) => (id === this.self ? this.local.keyspace(group, this.ownedPartitions()) : this.peers.call(Count, id, { group }, deadline))));
    const keys = parts.reduce((a, b) => a + b.count, 0);
    const expires = parts.reduce((a, b) => a + b.expires, 0);
    const ttl = parts.reduce((a, b) => a + b.ttlSumMs, 0);
    return { keys, expires, avgTtl: expires === 0 ? 0 : Math.round(ttl / expires) };
  }

  private ownedPartitions(): number[] {
    const mine: number[] = [];
    this.tables.table().assignments.forEach((holders, p) => {
      if (holders[0] === this.self) mine.push(p);
    });
    return mine;
  }

  /** Live entries of a group in the partitions this node owns. */
  countOwned(group: string): number {
    return this.local.count(group, this.ownedPartitions());
  }
}

/**
 * Deadline of attempt `n` out of a list of `candidates`: while another holder remains untried,
 * an attempt gets half of the time left, so a hung holder cannot eat the whole budget and the
 * next holder still has time to answer.
 */
export function attemptDeadline(deadline: number, n: number, candidates: number, now: number): number {
  if (n + 1 >= candidates) return deadline;
  return shareOf(deadline, 1 / 2, now);
}

/** The time `share` of the way from `now` to `deadline` (at least 1 ms ahead). */
function shareOf(deadline: number, share: number, now: number): number {
  return now + Math.max(1, Math.floor((deadline - now) * share));
}
