/**
 * The front door: what every client request passes through, whichever protocol it came in by
 * (the HTTP API, the Redis listener, the embedded library). The rules are decided here once:
 * which keys, values and TTLs are accepted, the deadline a request gets (the group's live
 * request_timeout), how each outcome is counted in /metrics (`jincache_requests_total` with a
 * `protocol` label), and which error each failure is. The protocols only parse and format.
 *
 * Keys arrive as byte strings (src/core/keys.ts): the HTTP API converts its UTF-8 keys, the Redis
 * listener takes the bytes as they are.
 */
import { JincacheError, type JincacheErrorCode } from '../core/errors.ts';
import type { Clock } from '../core/types.ts';
import type { Expiry, WriteOp, WriteResult } from '../cache/ops.ts';
import type { LiveConfig } from '../config/live.ts';
import { answerInto, type GetResult, type LocalRead } from '../cluster/kv.ts';
import type { ValueSink } from '../cache/store.ts';
import type { Reply } from '../cache/reply.ts';
import type { ExecRequest, ScanRequest } from '../peer/messages.ts';
import type { Permission } from '../config/schema.ts';
import type { Metrics, RequestCells, RequestOp, RequestProtocol, RequestResult } from '../observe/metrics.ts';
import { OPEN_DEFAULT, type Authenticator, type Principal } from './auth.ts';

/** Longest key over HTTP (SPEC §2: UTF-8 keys up to 1 KiB; they travel in the URL). */
export const HTTP_MAX_KEY_BYTES = 1024;
/** Longest time to live, ms: keeps `now + ttl` an exact integer (about 71,000 years). */
export const MAX_TTL_MS = Math.floor(Number.MAX_SAFE_INTEGER / 4);

/** What the door needs of the router. */
export interface DoorKv {
  get(group: string, key: string, opts: { deadline: number }): Promise<GetResult | null>;
  getLocal(group: string, key: string): GetResult | undefined;
  /** getLocal() into a sink, without copying the value (Router.getLocalInto). Absent: the door uses getLocal(). */
  getLocalInto?(group: string, key: string, sink: ValueSink): LocalRead;
  write(group: string, key: string, op: WriteOp, opts: { deadline: number }): Promise<WriteResult>;
  writeLocal(group: string, key: string, op: WriteOp): WriteResult | undefined;
  /**
   * Whether write() of `key`, called now, applies it before its first await (this node
   * coordinates it), so that its promise only waits for the acknowledgment (Router.appliesHere).
   * Absent: never.
   */
  appliesHere?(key: string): boolean;
  count(group: string, opts: { deadline: number }): Promise<number>;
  /** Redis commands on one hash slot, run at its coordinator (Router.exec). Absent: such commands are refused. */
  exec?(group: string, req: Omit<ExecRequest, 'group'>, opts: { deadline: number }): Promise<Reply>;
  /** A page of one partition's live keys (Router.scanPage). Absent: SCAN, KEYS, RANDOMKEY are refused. */
  scanPage?(group: string, req: Omit<ScanRequest, 'group'>, opts: { deadline: number }): Promise<{ cursor: number; keys: string[] }>;
  /** How many partitions the keyspace has (the table's partition count). */
  partitionCount?(): number;
  /** FLUSHALL of a group on every member (Router.flush). */
  flush?(group: string, opts: { deadline: number }): Promise<number>;
}

export interface FrontDoorOptions {
  kv: DoorKv;
  live: LiveConfig;
  metrics: Metrics;
  clock: Clock;
  /** Persistent nodes: a promise to await before acknowledging a write while the disk lags. */
  backpressure?: () => Promise<void> | undefined;
  /** Users and passwords (SPEC §7). Default: none required. */
  auth?: Authenticator;
  /**
   * The earliest time a request read now may have reached this node (trust.ts
   * SelfTrust.receivedSince): now, but right after a pause the start of the pause. Default: now.
   */
  receivedSince?: () => number;
}

/** How a failure is told to each protocol's clients. */
interface ErrorForm {
  result: RequestResult;
  /** The Redis error prefix (the first word of the error line). */
  redis: string;
}

const ERRORS: Record<JincacheErrorCode, ErrorForm> = {
  BAD_REQUEST: { result: 'bad_request', redis: 'ERR' },
  KEY_TOO_LARGE: { result: 'bad_request', redis: 'ERR' },
  VALUE_TOO_LARGE: { result: 'bad_request', redis: 'ERR' },
  BAD_TTL: { result: 'bad_request', redis: 'ERR' },
  UNKNOWN_GROUP: { result: 'not_found', redis: 'ERR' },
  NOT_FOUND: { result: 'not_found', redis: 'ERR' },
  UNAUTHORIZED: { result: 'unauthorized', redis: 'NOAUTH' },
  FORBIDDEN: { result: 'forbidden', redis: 'NOPERM' },
  TIMEOUT: { result: 'timeout', redis: 'TRYAGAIN' },
  PEER_UNAVAILABLE: { result: 'unavailable', redis: 'TRYAGAIN' },
  NO_OWNER: { result: 'unavailable', redis: 'CLUSTERDOWN' },
  NOT_SERVING: { result: 'unavailable', redis: 'TRYAGAIN' },
  LOADER_FAILED: { result: 'error', redis: 'ERR' },
  NOT_IMPLEMENTED: { result: 'error', redis: 'ERR' },
  INTERNAL: { result: 'error', redis: 'ERR' },
};

/** The metrics result of a failure. */
export function resultOf(e: JincacheError): RequestResult {
  return ERRORS[e.code].result;
}

/** The Redis error line (without the leading '-') of a failure. */
export function redisErrorOf(e: JincacheError): string {
  return `${ERRORS[e.code].redis} ${e.message}`;
}

export class FrontDoor {
  private readonly kv: DoorKv;
  private readonly live: LiveConfig;
  private readonly metrics: Metrics;
  private readonly clock: Clock;
  private readonly backpressure: () => Promise<void> | undefined;
  private readonly auth: Authenticator | undefined;
  private readonly receivedSince: () => number;
  /** Where synchronous answers are counted: a GET hit's cells and a write's, each for the last protocol and group (countLocal). */
  private hitMemo: CellMemo | undefined;
  private writeMemo: CellMemo | undefined;

  constructor(opts: FrontDoorOptions) {
    this.auth = opts.auth;
    this.receivedSince = opts.receivedSince ?? (() => opts.clock.now());
    this.kv = opts.kv;
    this.live = opts.live;
    this.metrics = opts.metrics;
    this.clock = opts.clock;
    this.backpressure = opts.backpressure ?? (() => undefined);
    // a group added or removed changes the label its hits are counted under
    this.live.subscribe(() => {
      this.hitMemo = undefined;
      this.writeMemo = undefined;
    });
  }

  // ---- who may ------------------------------------------------------------------------------

  /** Whether requests need a credential (a password is configured). */
  get authRequired(): boolean {
    return this.auth?.required === true;
  }

  /** Who a request is before it shows a credential: the open "default" user, or nobody when one is required. */
  anonymous(): Principal | null {
    return this.authRequired ? null : OPEN_DEFAULT;
  }

  /** The user `name` if `password` is theirs (undefined otherwise). Without passwords configured, nobody. */
  async authenticate(name: string, password: string): Promise<Principal | undefined> {
    return this.auth?.check(name, password);
  }

  /** Throws UNAUTHORIZED (no credential) or FORBIDDEN (lacking `permission`) unless `who` may. */
  authorize(who: Principal | null, permission: Permission): Principal {
    if (who === null) throw new JincacheError('UNAUTHORIZED', 'Authentication required.');
    if (!who.can(permission)) throw new JincacheError('FORBIDDEN', `user ${who.name} has no ${permission} permission`);
    return who;
  }

  // ---- the rules ----------------------------------------------------------------------------

  /** The group clients address when they name none (cache.group_name). */
  get defaultGroup(): string {
    return this.live.base.cache.group_name;
  }

  /** Longest key accepted over `protocol`, bytes. */
  maxKeyBytes(protocol: RequestProtocol): number {
    const limit = this.live.current().cache.max_key_bytes;
    return protocol === 'http' ? Math.min(limit, HTTP_MAX_KEY_BYTES) : limit;
  }

  /** Largest value accepted, bytes (cache.max_value_bytes). */
  maxValueBytes(): number {
    return this.live.current().cache.max_value_bytes;
  }

  /** Throws unless `group` is configured. */
  checkGroup(group: string): void {
    if (this.live.group(group) === undefined) throw new JincacheError('UNKNOWN_GROUP', `unknown group "${group}"`);
  }

  /** Throws unless `key` (a byte string) is acceptable over `protocol`. */
  checkKey(protocol: RequestProtocol, key: string): void {
    const max = this.maxKeyBytes(protocol);
    if (key.length > max) throw new JincacheError('KEY_TOO_LARGE', `key of ${key.length} bytes exceeds ${max}`);
  }

  /** Throws unless a value of `bytes` bytes is acceptable. */
  checkValue(bytes: number): void {
    const max = this.maxValueBytes();
    if (bytes > max) throw new JincacheError('VALUE_TOO_LARGE', `value of ${bytes} bytes exceeds the limit of ${max}`);
  }

  /**
   * A relative TTL in ms as an expiry: positive and at most MAX_TTL_MS, rounded up to a whole
   * ms, never "no expiry". `what` names the input in the error.
   */
  ttl(ms: number, what: string): Expiry {
    if (!Number.isFinite(ms) || ms <= 0 || ms > MAX_TTL_MS) throw new JincacheError('BAD_TTL', `${what} is invalid: expected a time to live > 0 and at most ${MAX_TTL_MS} ms`);
    return { kind: 'in', ms: Math.ceil(ms) };
  }

  /** An absolute expiry (ms since epoch): positive and at most MAX_TTL_MS from now. */
  expireAt(ms: number, what: string): Expiry {
    if (!Number.isFinite(ms) || ms <= 0 || ms > this.clock.now() + MAX_TTL_MS) throw new JincacheError('BAD_TTL', `${what} is invalid: expected a time > 0`);
    return { kind: 'at', ms: Math.ceil(ms) };
  }

  /** Absolute deadline of a request to `group` starting now, or at `from` (the group's live request_timeout). */
  deadline(group: string, from = this.clock.now()): number {
    const g = this.live.group(group);
    if (g === undefined) throw new JincacheError('UNKNOWN_GROUP', `unknown group "${group}"`);
    return from + g.request_timeout;
  }

  /**
   * The deadline of a request that changes data: counted from when it may have arrived. Right
   * after a pause this node reads the requests that waited in its sockets meanwhile; counted from
   * then, a write sent during the pause could be applied after its client gave up, over writes
   * acknowledged since (issue 17). It keeps the deadline it had on arrival instead: one already
   * past fails (TIMEOUT) without being applied. A read is answered as usual (a late answer is a
   * current one).
   */
  private writeDeadline(group: string): number {
    const deadline = this.deadline(group, this.receivedSince());
    if (deadline <= this.clock.now()) throw new JincacheError('TIMEOUT', 'the request waited in this node\'s socket while the node was paused, past its deadline: not applied');
    return deadline;
  }

  // ---- requests -----------------------------------------------------------------------------

  /** Read `key`; counted in /metrics as `op`. */
  async get(protocol: RequestProtocol, who: Principal | null, group: string, key: string, op: RequestOp = 'get'): Promise<GetResult | null> {
    const began = performance.now();
    let result: RequestResult = 'miss';
    try {
      this.authorize(who, 'read');
      this.checkKey(protocol, key);
      const got = await this.kv.get(group, key, { deadline: this.deadline(group) });
      if (got !== null) result = got.source;
      return got;
    } catch (e) {
      result = this.failed(e);
      throw e;
    } finally {
      this.observe(protocol, op, group, result, began);
    }
  }

  /**
   * The synchronous read (no promise) when this node may answer from its own copy now;
   * undefined means "call get()". Counted in /metrics only when it answers.
   */
  getLocal(protocol: RequestProtocol, who: Principal | null, group: string, key: string): GetResult | undefined {
    if (!this.readsLocally(protocol, who, key)) return undefined;
    const began = this.startLocal(this.hitMemo, protocol, 'get', group);
    const got = this.kv.getLocal(group, key);
    if (got !== undefined) this.hitMemo = this.countLocal(this.hitMemo, protocol, 'get', group, 'hit', began);
    return got;
  }

  /**
   * getLocal() with the value written into `sink` (the Redis reply batch) instead of returned:
   * `hit` (written), `wrongtype` (a key of another type: nothing written), undefined: "call get()".
   * Counted in /metrics only when it answers.
   */
  getLocalInto(protocol: RequestProtocol, who: Principal | null, group: string, key: string, sink: ValueSink): LocalRead {
    if (!this.readsLocally(protocol, who, key)) return undefined;
    const began = this.startLocal(this.hitMemo, protocol, 'get', group);
    const got = this.kv.getLocalInto !== undefined ? this.kv.getLocalInto(group, key, sink) : answerInto(this.kv.getLocal(group, key), sink);
    if (got !== undefined) this.hitMemo = this.countLocal(this.hitMemo, protocol, 'get', group, 'hit', began);
    return got;
  }

  /**
   * When a synchronous answer starts: performance.now(), or NaN when it is one `memo` counts and
   * need not be timed (see countLocal). Timing every GET hit (two clock reads and the histogram)
   * was a fifth of its server CPU at pipeline 16.
   */
  private startLocal(memo: CellMemo | undefined, protocol: RequestProtocol, op: RequestOp, group: string): number {
    if (memo !== undefined && memo.untimed > 0 && memo.group === group && memo.protocol === protocol && memo.op === op) return NaN;
    return performance.now();
  }

  /**
   * observe(protocol, op, group, result, began) for a synchronous answer, on the cells of `memo`
   * when it counted the same (the common case: one group); returns the memo for the next one.
   * Only configured groups are memoised: observe() counts any other under `_unknown`. Of the
   * answers one memo counts, one in TIME_EVERY is timed; the others (began NaN) are counted in
   * full with the last timed one's duration (Metrics.countAgain): the counters and the
   * histogram's count are exact, its buckets and sum sampled.
   */
  private countLocal(memo: CellMemo | undefined, protocol: RequestProtocol, op: RequestOp, group: string, result: RequestResult, began: number): CellMemo | undefined {
    if (memo === undefined || memo.group !== group || memo.protocol !== protocol || memo.op !== op) {
      if (this.live.group(group) === undefined) {
        this.observe(protocol, op, group, result, began); // began is a time: startLocal gives NaN only for a memo's own group
        return memo;
      }
      memo = { protocol, op, group, cells: this.metrics.requestCells(protocol, op, group, result), untimed: 0 };
    }
    if (Number.isNaN(began)) {
      memo.untimed--;
      this.metrics.countAgain(memo.cells);
    } else {
      memo.untimed = TIME_EVERY - 1;
      this.metrics.count(memo.cells, (performance.now() - began) / 1000);
    }
    return memo;
  }

  /** Whether a synchronous read may answer: get() refuses what this cannot pass, in its own words. */
  private readsLocally(protocol: RequestProtocol, who: Principal | null, key: string): boolean {
    return who !== null && who.can('read') && key.length <= this.maxKeyBytes(protocol);
  }

  /** Apply a write at its coordinator; counted as `op`. Resolves once it is acknowledged (and, on a persistent node, the disk keeps up). */
  async write(protocol: RequestProtocol, who: Principal | null, group: string, key: string, write: WriteOp, op: RequestOp = opOf(write)): Promise<WriteResult> {
    const began = performance.now();
    let result: RequestResult = 'ok';
    try {
      this.authorize(who, 'write');
      this.checkKey(protocol, key);
      if (write.op === 'set') this.checkValue(write.value.length);
      const deadline = this.writeDeadline(group);
      const out = await this.kv.write(group, key, write, { deadline });
      await this.durable(deadline);
      return out;
    } catch (e) {
      result = this.failed(e);
      throw e;
    } finally {
      this.observe(protocol, op, group, result, began);
    }
  }

  /**
   * Redis commands on one hash slot, run atomically at its coordinator (cache/engine): `perm`
   * is what they need (read for HGET, write for INCR and a transaction that writes). Every key
   * is checked first; a write waits for the disk as write() does.
   */
  async exec(protocol: RequestProtocol, who: Principal | null, group: string, req: Omit<ExecRequest, 'group'>, perm: 'read' | 'write', op: RequestOp = req.transaction ? 'exec' : 'command'): Promise<Reply> {
    const began = performance.now();
    let result: RequestResult = 'ok';
    try {
      this.authorize(who, perm);
      for (const k of req.keys) this.checkKey(protocol, k);
      const deadline = perm === 'write' ? this.writeDeadline(group) : this.deadline(group);
      if (this.kv.exec === undefined) throw new JincacheError('BAD_REQUEST', 'this node runs no command engine');
      const out = await this.kv.exec(group, req, { deadline });
      if (perm === 'write') await this.durable(deadline);
      return out;
    } catch (e) {
      result = this.failed(e);
      throw e;
    } finally {
      this.observe(protocol, op, group, result, began);
    }
  }

  /** Before a write is acknowledged on a persistent node: wait (within the deadline) while the disk lags. */
  private async durable(deadline: number): Promise<void> {
    const bp = this.backpressure();
    if (bp !== undefined) await withinDeadline(bp, deadline, this.clock, 'the disk of this node is behind (or failing): the write is not acknowledged');
  }

  /** A page of one partition's live keys (SCAN, KEYS, RANDOMKEY); needs read. */
  async scanPage(protocol: RequestProtocol, who: Principal | null, group: string, req: Omit<ScanRequest, 'group'>): Promise<{ cursor: number; keys: string[] }> {
    const began = performance.now();
    let result: RequestResult = 'ok';
    try {
      this.authorize(who, 'read');
      if (this.kv.scanPage === undefined) throw new JincacheError('BAD_REQUEST', 'this node cannot walk the keyspace');
      return await this.kv.scanPage(group, req, { deadline: this.deadline(group) });
    } catch (e) {
      result = this.failed(e);
      throw e;
    } finally {
      this.observe(protocol, 'other', group, result, began);
    }
  }

  /** The keyspace's partition count (SCAN cursors). */
  partitionCount(): number {
    return this.kv.partitionCount?.() ?? 1;
  }

  /** FLUSHALL / FLUSHDB: every entry of the group, on every node; needs admin. */
  async flush(protocol: RequestProtocol, who: Principal | null, group: string): Promise<void> {
    const began = performance.now();
    let result: RequestResult = 'ok';
    try {
      this.authorize(who, 'admin');
      if (this.kv.flush === undefined) throw new JincacheError('BAD_REQUEST', 'this node cannot flush');
      await this.kv.flush(group, { deadline: this.deadline(group) });
    } catch (e) {
      result = this.failed(e);
      throw e;
    } finally {
      this.observe(protocol, 'other', group, result, began);
    }
  }

  /** The synchronous write when it needs no network (see Router.writeLocal); undefined means "call write()". */
  writeLocal(protocol: RequestProtocol, who: Principal | null, group: string, key: string, write: WriteOp): WriteResult | undefined {
    if (who === null || !who.can('write') || key.length > this.maxKeyBytes(protocol) || (write.op === 'set' && write.value.length > this.maxValueBytes())) return undefined;
    // right after a pause the write may be older than it looks: write() checks its deadline
    if (this.receivedSince() < this.clock.now()) return undefined;
    const op = opOf(write);
    const began = this.startLocal(this.writeMemo, protocol, op, group);
    const out = this.kv.writeLocal(group, key, write);
    if (out !== undefined) this.writeMemo = this.countLocal(this.writeMemo, protocol, op, group, 'ok', began);
    return out;
  }

  /**
   * Whether write() of `key`, called now, takes effect before it returns its promise (or fails
   * without effect): the promise then only waits for the write's acknowledgment. A Redis
   * connection runs the commands after such a write without waiting for it.
   */
  appliesHere(key: string): boolean {
    return this.kv.appliesHere?.(key) ?? false;
  }

  /** Live entries of `group` across the cluster. */
  async count(protocol: RequestProtocol, who: Principal | null, group: string): Promise<number> {
    const began = performance.now();
    let result: RequestResult = 'ok';
    try {
      this.authorize(who, 'read');
      return await this.kv.count(group, { deadline: this.deadline(group) });
    } catch (e) {
      result = this.failed(e);
      throw e;
    } finally {
      this.observe(protocol, 'other', group, result, began);
    }
  }

  /** Count a request a protocol answered itself (PING, INFO, a bad command), or that failed before reaching the door's methods. */
  observe(protocol: RequestProtocol, op: RequestOp, group: string, result: RequestResult, began: number): void {
    // a group name comes from the client: only configured groups become label values
    const label = this.live.group(group) !== undefined ? group : '_unknown';
    this.metrics.request(protocol, op, label, result, (performance.now() - began) / 1000);
    if (op !== 'get' || label === '_unknown') return;
    if (result === 'hit') this.metrics.cacheHit(label);
    else if (result === 'miss') this.metrics.cacheMiss(label);
    else if (result === 'load') {
      this.metrics.cacheMiss(label);
      this.metrics.cacheLoad(label, 'ok');
    }
  }

  private failed(e: unknown): RequestResult {
    return e instanceof JincacheError ? resultOf(e) : 'error';
  }
}

/** The cells FrontDoor.countLocal last counted in, and what for (the result is fixed per memo: 'hit' for reads, 'ok' for writes). */
interface CellMemo {
  readonly protocol: RequestProtocol;
  readonly op: RequestOp;
  readonly group: string;
  readonly cells: RequestCells;
  /** Answers left to count before the next one is timed. */
  untimed: number;
}

/** One synchronous answer in this many is timed for the latency histogram (FrontDoor.countLocal). */
const TIME_EVERY = 16;

/** `p`, or a TIMEOUT at `deadline`. */
function withinDeadline(p: Promise<void>, deadline: number, clock: Clock, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new JincacheError('TIMEOUT', what)), Math.max(0, deadline - clock.now()));
    p.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function opOf(w: WriteOp): RequestOp {
  return w.op === 'set' ? 'put' : w.op === 'del' ? 'delete' : 'expire';
}
