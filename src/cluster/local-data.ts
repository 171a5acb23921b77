/**
 * The data this node holds, and the owner-side operations on it. Everything here is local and
 * synchronous except origin loads; routing and replication live in the router.
 */
import type { Group } from '../cache/group.ts';
import type { HitHead, StoredEntry, ValueSink } from '../cache/store.ts';
import type { Clock } from '../core/types.ts';
import type { HybridClock } from '../core/version.ts';
import { decideWrite, type ValueDecision, type WriteOp, type WriteResult } from '../cache/ops.ts';
import type { WireRecord } from '../peer/codec.ts';
import { JincacheError } from '../core/errors.ts';
import { globMatch } from '../core/glob.ts';
import { STRING, type EngineEntry, type EngineOutcome, type EngineType, type EngineView } from '../cache/engine/types.ts';
import type { GetResult, LocalRead } from './kv.ts';

export interface WriteOutcome {
  result: WriteResult;
  /** What to replicate: none when a condition stopped the write or nothing changed. */
  record?: WireRecord;
}

/**
 * Called once per key operation served here as owner (load monitoring). `partition`: the key's,
 * when the store already knew it (undefined: the hook computes it).
 */
export type ServeHook = (op: 'get' | 'put' | 'delete' | 'expire', group: string, key: string, bytesIn: number, bytesOut: number, partition?: number) => void;

export interface LocalDataOptions {
  groups: ReadonlyMap<string, Group>;
  hlc: HybridClock;
  clock: Clock;
  /** Default: none. */
  onServe?: ServeHook;
  /** Persistent nodes: the entry from disk when the LRU evicted it. Default: none. */
  readThrough?: (group: string, key: string) => Promise<StoredEntry | undefined>;
  /** The group's ttl_default (live config), given to values written without an expiry. Default: none. */
  ttlDefault?: (group: string) => number | undefined;
}

/** What the reused decision holds between writes: no value kept alive. */
const NO_BYTES = Buffer.alloc(0);

export class LocalData {
  readonly groups: ReadonlyMap<string, Group>;
  private readonly hlc: HybridClock;
  private readonly clock: Clock;
  /** Set by the node once its plugins have started. */
  onServe: ServeHook | undefined;
  private readonly readThrough: LocalDataOptions['readThrough'];
  private readonly ttlDefault: (group: string) => number | undefined;

  constructor(opts: LocalDataOptions) {
    this.ttlDefault = opts.ttlDefault ?? (() => undefined);
    this.onServe = opts.onServe;
    this.readThrough = opts.readThrough;
    this.groups = opts.groups;
    this.hlc = opts.hlc;
    this.clock = opts.clock;
  }

  group(name: string): Group {
    const g = this.known(name);
    if (g === undefined) throw new JincacheError('UNKNOWN_GROUP', `unknown group "${name}"`);
    return g;
  }

  /** The group named `name`, undefined when there is none; the one found last is remembered. */
  private known(name: string): Group | undefined {
    if (name === this.lastName) return this.lastGroup;
    const g = this.groups.get(name);
    if (g !== undefined) {
      this.lastName = name;
      this.lastGroup = g;
    }
    return g;
  }

  /**
   * The group known() found last (the groups are fixed when the node starts): a SET looked its
   * group up by name four times (perf: Map lookups ~1.5% of a SET at pipeline 16).
   */
  private lastName: string | undefined = undefined;
  private lastGroup: Group | undefined = undefined;

  /** Serve a read as the owner: cache, then the group's loader (one load per key at a time). */
  async get(groupName: string, key: string): Promise<GetResult | null> {
    return this.cached(groupName, key) ?? this.load(groupName, key);
  }

  /** The live cached value, if any (no load); a miss is counted as served too. */
  cached(groupName: string, key: string): GetResult | undefined {
    const hit = this.cachedHit(groupName, key);
    if (hit === undefined) this.onServe?.('get', groupName, key, 0, 0);
    return hit;
  }

  /** Like cached(), but a miss is not counted as served (the caller goes on to the full read path). */
  cachedHit(groupName: string, key: string): GetResult | undefined {
    const e = this.group(groupName).store.get(key);
    const hit = liveHit(e);
    if (hit !== undefined) this.onServe?.('get', groupName, key, 0, hit.value.length, e!.partition);
    return hit;
  }

  /**
   * cachedHit() into a sink, without copying the value (GroupStore.getInto); a miss is not
   * counted. `may`: GroupStore.getInto's, whether this copy may answer for the key's partition.
   */
  cachedHitInto(groupName: string, key: string, sink: ValueSink, may?: (partition: number) => boolean): LocalRead {
    const head = this.head;
    if (!this.group(groupName).store.getInto(key, sink, head, may)) return undefined;
    this.onServe?.('get', groupName, key, 0, head.length, head.partition);
    return head.type === STRING ? 'hit' : 'wrongtype';
  }

  /** The store's partition of a held key of the group, -1 when none is held (GroupStore.partitionHeld). */
  heldPartition(groupName: string, key: string): number {
    const group = this.known(groupName);
    return group === undefined ? -1 : group.store.partitionHeld(key);
  }

  /** write()'s view of the entry it decides on (peekHead's, reused: read only inside write()). */
  private readonly held: StoredEntry = { value: null, version: 0, expiresAt: 0, partition: 0, type: 0 };

  /** cachedHitInto()'s answer from the store, reused for every read. */
  private readonly head: HitHead = { type: 0, partition: 0, length: 0 };

  /** The stored write for a key, tombstones included, with its version (for replicas and migration). */
  record(groupName: string, key: string): WireRecord | undefined {
    const e = this.group(groupName).store.peek(key);
    if (e === undefined) return undefined;
    const type = e.type;
    return type ? { group: groupName, key, value: e.value, version: e.version, expiresAt: e.expiresAt, type } : { group: groupName, key, value: e.value, version: e.version, expiresAt: e.expiresAt };
  }

  /** Miss path: the disk (persistent nodes), then the group's loader, or null for a plain key-value group. */
  async load(groupName: string, key: string): Promise<GetResult | null> {
    const group = this.group(groupName);
    if (this.readThrough !== undefined) {
      const e = await this.readThrough(groupName, key);
      if (e !== undefined) {
        if (e.value !== null && (e.expiresAt === 0 || e.expiresAt > this.clock.now())) return { value: e.value, source: 'hit', expiresAt: e.expiresAt };
        return null; // a tombstone or expired entry on disk is an answer: absent, no origin load
      }
    }
    if (group.loader === undefined) return null;
    // The caller missed, but it may have awaited since (other holders, the disk): a load that
    // finished meanwhile filled the cache, and a second origin load would be the stampede that
    // singleflight exists to prevent (a CI run saw 2 loads for 100 concurrent misses)
    const filled = liveHit(group.store.get(key));
    if (filled !== undefined) return filled;
    let value: Buffer | null;
    try {
      value = await group.load(key);
    } catch (e) {
      throw new JincacheError('LOADER_FAILED', `loading "${key}" in group "${groupName}" failed: ${(e as Error).message}`, { cause: e });
    }
    if (value === null) return null;
    const ttl = this.ttlDefault(groupName);
    const expiresAt = ttl !== undefined && ttl > 0 ? this.clock.now() + Math.ceil(ttl) : 0;
    // Check again after the load, because a write may have raced it: 1) miss, 2) load starts,
    // 3) a PUT lands, 4) the load returns older origin data. The PUT must win, and a fresh version
    // for the loaded value would beat it, so keep what is stored.
    const current = group.store.get(key);
    if (current !== undefined && current.value !== null) return { value: current.value, source: 'hit', expiresAt: current.expiresAt };
    group.store.apply(key, { value, version: this.hlc.next(), expiresAt });
    return { value, source: 'load', expiresAt };
  }

  /**
   * Decide and apply a write here as the node that coordinates it (the owner, or the first
   * reachable holder): decideWrite against the live entry, then a version above every version
   * this node issued or holds for the key, so the write wins over all it follows. Returns the
   * record to replicate; none when a condition stopped it or nothing changed.
   */
  write(groupName: string, key: string, op: WriteOp): WriteOutcome {
    this.made = undefined; // a write that threw must not hand its record to the next one
    const result = this.coordinate(groupName, key, op, undefined);
    const record = this.made;
    this.made = undefined;
    return record === undefined ? { result } : { result, record };
  }

  /**
   * write() for a write no other node gets (Router.writeLocal: this node is the key's only
   * holder): the same decision and apply, and no record kept to replicate, so the one built for
   * the store is reused from write to write (it and write()'s outcome were 170 of a SET's 658
   * bytes, bench/profile.ts --kind heap).
   */
  writeHere(groupName: string, key: string, op: WriteOp): WriteResult {
    return this.coordinate(groupName, key, op, this.scratch);
  }

  /** write() and writeHere(): the record is built in `into` when given, else made anew and left in `made`. */
  private coordinate(groupName: string, key: string, op: WriteOp, into: WireRecord | undefined): WriteResult {
    const group = this.group(groupName);
    const now = this.clock.now();
    // one lookup for both what the write is decided on (the live value) and the version to
    // beat (tombstones included): a get() and a peek() each copied the value out of the store.
    // A SET or DEL is decided on whether a value is held, not on its bytes: none are copied
    // (the copy was 4% of a SET's time at pipeline 16, bench/profile.ts)
    const held = op.op === 'expire' ? group.store.peek(key) : group.store.peekHead(key, this.held);
    const live = held !== undefined && held.value !== null ? held : undefined;
    const d = decideWrite(live, op, now, this.ttlDefault(groupName), this.decision);
    if (d.change === 'none') {
      if (live !== undefined) group.store.get(key); // a write that found the key still counts as a use (LRU), as get() did
      return d.result;
    }
    let value: Buffer | null = null;
    if (d.change === 'value') {
      value = d.value;
      this.decision.value = NO_BYTES; // read: the reused decision keeps no value alive, even when checkFits throws
      this.checkFits(groupName, key, value.length);
      // a borrowed value the store would keep as given is copied (a key's UTF-8 is at most 3 bytes a char)
      if (op.op === 'set' && op.borrowed === true && (into === undefined || group.store.keepsGiven(3 * key.length, value.length))) value = Buffer.from(value);
    }
    const version = Math.max(this.hlc.next(), (held?.version ?? 0) + 1);
    // an EXPIRE keeps what the entry is (a hash stays a hash); a SET makes a string
    const type = op.op === 'expire' ? (live?.type ?? 0) : 0;
    const expiresAt = d.change === 'value' ? d.expiresAt : 0;
    let record: WireRecord;
    if (into !== undefined) {
      record = into;
      record.group = groupName;
      record.key = key;
      record.value = value;
      record.version = version;
      record.expiresAt = expiresAt;
      record.type = value !== null ? type : 0;
    } else {
      // built without a spread (a spread's object literal is one more allocation per SET)
      record = { group: groupName, key, value, version, expiresAt };
      if (type !== 0 && value !== null) record.type = type;
      this.made = record;
    }
    const partition = held?.partition; // read before the apply: `held` may be reused by then
    this.applyOne(record);
    this.onServe?.(op.op === 'set' ? 'put' : op.op === 'del' ? 'delete' : 'expire', groupName, key, value?.length ?? 0, 0, partition);
    if (into !== undefined) record.value = null; // the scratch keeps no value alive
    return d.result;
  }

  /** coordinate()'s decision of a SET, filled by decideWrite and read before the next write. */
  private readonly decision: ValueDecision = { change: 'value', value: NO_BYTES, expiresAt: 0, result: { applied: false, existed: false } };

  /** coordinate()'s record for write() (see there). */
  private made: WireRecord | undefined;
  /** writeHere()'s record, reused. */
  private readonly scratch: WireRecord = { group: '', key: '', value: null, version: 0, expiresAt: 0, type: 0 };

  /**
   * Persistent nodes: read `keys` back from disk where the LRU dropped them, so a command run
   * here (execute) sees every entry it addresses. Memory-only nodes: nothing to do.
   */
  async prepare(groupName: string, keys: readonly string[]): Promise<void> {
    if (this.readThrough === undefined) return;
    const store = this.group(groupName).store;
    for (const key of keys) {
      if (store.peek(key) !== undefined) continue;
      const e = await this.readThrough(groupName, key);
      if (e !== undefined) store.apply(key, e);
    }
  }

  /**
   * Run `run` (a command engine: cache/engine) over this node's live entries of a group, and
   * apply the changes it returns, each with a version above every version this node issued or
   * holds for its key, as coordinated writes are. Synchronous, so nothing interleaves: the
   * engine's commands are atomic here. Returns the reply and the records to replicate.
   */
  execute(groupName: string, run: (view: EngineView) => EngineOutcome): { reply: EngineOutcome['reply']; records: WireRecord[] } {
    const group = this.group(groupName);
    const store = group.store;
    const view: EngineView = {
      get(key: string): EngineEntry | undefined {
        const e = store.get(key);
        if (e === undefined || e.value === null) return undefined;
        return { type: e.type as EngineType, value: e.value, expiresAt: e.expiresAt, version: e.version };
      },
      // deletes included: WATCH notices a key created and deleted again
      version: (key: string): number => store.peek(key)?.version ?? 0,
    };
    const out = run(view);
    // all or nothing: a change the budget cannot hold fails the command before any is applied
    for (const c of out.changes) if (c.value !== null) this.checkFits(groupName, c.key, c.value.length);
    const records: WireRecord[] = [];
    for (const c of out.changes) {
      const held = store.peek(c.key)?.version ?? 0;
      const version = Math.max(this.hlc.next(), held + 1);
      const record: WireRecord =
        c.value === null
          ? { group: groupName, key: c.key, value: null, version, expiresAt: 0 }
          : { group: groupName, key: c.key, value: c.value, version, expiresAt: c.expiresAt, ...(c.type !== STRING ? { type: c.type } : {}) };
      this.applyOne(record);
      this.onServe?.(c.value === null ? 'delete' : 'put', groupName, c.key, c.value?.length ?? 0, 0);
      records.push(record);
    }
    return { reply: out.reply, records };
  }

  /** A value the group's budget on this node could never hold is refused, not acknowledged and dropped. */
  private checkFits(groupName: string, key: string, valueBytes: number): void {
    const store = this.group(groupName).store;
    if (!store.fits(key.length, valueBytes)) {
      throw new JincacheError('VALUE_TOO_LARGE', `a value of ${valueBytes} bytes does not fit group "${groupName}"'s budget of ${store.stats().maxBytes} bytes on this node (cache_bytes)`);
    }
  }

  /** Apply writes from another node (replication, handoff, migration). Returns how many won. */
  apply(records: readonly WireRecord[]): number {
    let applied = 0;
    for (const r of records) if (this.applyOne(r)) applied++;
    return applied;
  }

  /** Apply one write from another node: true when it won (is now held), last writer wins. */
  applyOne(r: WireRecord): boolean {
    const group = this.known(r.group);
    if (group === undefined) return false; // a group this node does not know: nothing to keep
    this.hlc.observe(r.version);
    // a WireRecord is a WriteRecord (value, version, expiresAt and the type riding along; the
    // store reads those and keeps none of the object): no copy of it per write
    return group.store.apply(r.key, r);
  }

  /** A page of one partition's live keys (SCAN), filtered by type and a Redis glob pattern. */
  scan(groupName: string, partition: number, cursor: number, count: number, type?: number, match?: string): { cursor: number; keys: string[] } {
    const page = this.group(groupName).store.scanPartition(partition, cursor, count, type);
    return match === undefined || match === '*' ? page : { cursor: page.cursor, keys: page.keys.filter((k) => globMatch(match, k)) };
  }

  /**
   * FLUSHALL here: drop every entry of the group and refuse writes at or under `version` from
   * now on. `version` undefined: a new version (this node coordinates the flush). Returns the
   * version and how many entries went.
   */
  flush(groupName: string, version?: number): { version: number; dropped: number } {
    const v = version ?? this.hlc.next();
    this.hlc.observe(v);
    return { version: v, dropped: this.group(groupName).store.flush(v) };
  }

  /** Live entries of a group in the given partitions, how many expire, and their time left in all (INFO keyspace). */
  keyspace(groupName: string, partitions: Iterable<number>): { count: number; expires: number; ttlSumMs: number } {
    const store = this.group(groupName).store;
    const out = { count: 0, expires: 0, ttlSumMs: 0 };
    for (const p of partitions) {
      const s = store.liveStats(p);
      out.count += s.live;
      out.expires += s.expiring;
      out.ttlSumMs += s.ttlSumMs;
    }
    return out;
  }

  /** Live entries of a group in the given partitions (e.g. the ones this node owns). */
  count(groupName: string, partitions: Iterable<number>): number {
    const store = this.group(groupName).store;
    let n = 0;
    // counted in place: no entry is copied out of the store
    for (const p of partitions) n += store.liveCount(p);
    return n;
  }
}

/** A stored entry as a read's answer: undefined for none or a tombstone. */
function liveHit(e: StoredEntry | undefined): GetResult | undefined {
  const value = e?.value ?? null;
  if (value === null) return undefined;
  const type = e!.type;
  return type ? { value, source: 'hit', expiresAt: e!.expiresAt, type } : { value, source: 'hit', expiresAt: e!.expiresAt };
}
