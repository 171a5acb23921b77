/**
 * Every node-to-node message, declared once: its name (the path under /_jincache/), what the
 * request and the response carry, and how each is laid out (protocol.ts has the envelope, wire.ts
 * the field encodings). Which component sends and serves each one is noted beside it; that
 * component keeps both halves of its messages side by side.
 *
 * Keys and values travel as bytes; limits checked on decode are the decoder's defaults below
 * (MAX_*), and the receiving component checks its configured limits on top.
 */
import type { Expiry, WriteOp, WriteResult } from '../cache/ops.ts';
import type { Reply, ReplyPair } from '../cache/reply.ts';
import { CodecError, type WireRecord } from './codec.ts';
import { binaryMessage, jsonMessage } from './protocol.ts';
import type { BodyReader, BodyWriter } from './wire.ts';

/** Largest value a message may carry (SPEC §2: at most 512 MiB). */
export const MAX_VALUE_BYTES = 512 * 1024 * 1024;
/** Largest key (SPEC §2: 64 KiB over RESP). */
export const MAX_KEY_BYTES = 64 * 1024;
/** Most records in one batch (replication, hints, catch-up pages, migration batches). */
export const MAX_BATCH_RECORDS = 1_000_000;
const MAX_NAME = 1024;
/** Groups a message may name (config allows far fewer; a bound on what a body can make us allocate). */
const MAX_GROUPS = 10_000;
const RECORD_LIMITS = { maxRecords: MAX_BATCH_RECORDS, maxValueBytes: MAX_VALUE_BYTES };

const none = {
  write: (): void => {},
  read: (): void => undefined,
};

const key = {
  write: (w: BodyWriter, v: { group: string; key: string }): void => {
    w.str(v.group).str(v.key);
  },
  read: (r: BodyReader): { group: string; key: string } => ({ group: r.str(MAX_NAME), key: r.str(MAX_KEY_BYTES) }),
};

const records = {
  write: (w: BodyWriter, rs: readonly WireRecord[]): void => {
    w.records(rs);
  },
  read: (r: BodyReader): WireRecord[] => r.records(RECORD_LIMITS),
};

// ---- reads (router.ts) ----------------------------------------------------------------------

export type ReadAnswer =
  | { found: false }
  | { found: true; value: Buffer; expiresAt: number; source: 'hit' | 'load'; type?: number };

/**
 * A client read routed to a holder. The receiver serves it from its copy (or its loader), unless
 * its newer table no longer lists it as a holder: then it routes the read again itself.
 */
export const Read = binaryMessage<{ group: string; key: string }, ReadAnswer>({
  name: 'read',
  request: key,
  response: {
    write(w, a) {
      w.bool(a.found);
      if (a.found) w.bytes(a.value).f64(a.expiresAt).u8(a.source === 'load' ? 1 : 0).u8(a.type ?? 0);
    },
    read(r) {
      if (!r.bool()) return { found: false };
      const value = r.bytes(MAX_VALUE_BYTES);
      const expiresAt = r.f64();
      const source = r.u8() === 1 ? 'load' : 'hit';
      const type = r.u8();
      return type === 0 ? { found: true, value, expiresAt, source } : { found: true, value, expiresAt, source, type };
    },
  },
});

export type RecordAnswer =
  | { kind: 'none'; lacking?: true }
  /** The sender routed by an older table, and this node no longer holds the key: its copy may lack writes. */
  | { kind: 'misdirected' }
  | { kind: 'record'; record: WireRecord; lacking?: true };

/**
 * This node's own copy of a key with its version, tombstones included: no loading, no routing.
 * A node that does not trust its copy (trust.ts) refuses (NOT_SERVING) unless `doubtful`: the
 * sender reads every holder and takes the newest (router.ts fromOthers). `lacking`: the answering
 * node knows its copy of the key's partition may lack acknowledged writes (freshness.ts: made a
 * holder before its copy arrived, catching up, hints arriving), which the sender cannot see: such
 * an answer does not stand for the partition alone.
 */
export const Record = binaryMessage<{ group: string; key: string; doubtful?: boolean }, RecordAnswer>({
  name: 'record',
  request: {
    write(w, v) {
      key.write(w, v);
      w.bool(v.doubtful === true);
    },
    read(r) {
      const k = key.read(r);
      return r.bool() ? { ...k, doubtful: true } : k;
    },
  },
  response: {
    write(w, a) {
      w.u8(a.kind === 'none' ? 0 : a.kind === 'misdirected' ? 1 : 2);
      w.bool(a.kind !== 'misdirected' && a.lacking === true);
      if (a.kind === 'record') w.records([a.record]);
    },
    read(r) {
      const kind = r.u8();
      const lacking = r.bool();
      if (kind === 0) return lacking ? { kind: 'none', lacking } : { kind: 'none' };
      if (kind === 1) return { kind: 'misdirected' };
      if (kind !== 2) throw new CodecError(`bad record answer kind ${kind}`);
      const [record] = r.records({ maxRecords: 1, maxValueBytes: MAX_VALUE_BYTES });
      if (record === undefined) throw new CodecError('record answer without a record');
      return lacking ? { kind: 'record', record, lacking } : { kind: 'record', record };
    },
  },
});

/** Live entries of a group in the partitions the receiver owns (DBSIZE, INFO keyspace). */
export const Count = binaryMessage<{ group: string }, { count: number; expires: number; ttlSumMs: number }>({
  name: 'count',
  request: { write: (w, v) => void w.str(v.group), read: (r) => ({ group: r.str(MAX_NAME) }) },
  response: {
    write: (w, v) => void w.f64(v.count).f64(v.expires).f64(v.ttlSumMs),
    read: (r) => ({ count: r.f64(), expires: r.f64(), ttlSumMs: r.f64() }),
  },
});

// ---- writes (router.ts) ---------------------------------------------------------------------

function writeExpiry(w: BodyWriter, e: Expiry): void {
  switch (e.kind) {
    case 'none':
      w.u8(0);
      return;
    case 'in':
      w.u8(1).f64(e.ms);
      return;
    case 'at':
      w.u8(2).f64(e.ms);
      return;
    case 'keep':
      w.u8(3);
      return;
  }
}

function readExpiry(r: BodyReader): Expiry {
  const kind = r.u8();
  switch (kind) {
    case 0:
      return { kind: 'none' };
    case 1:
      return { kind: 'in', ms: r.f64() };
    case 2:
      return { kind: 'at', ms: r.f64() };
    case 3:
      return { kind: 'keep' };
    default:
      throw new CodecError(`bad expiry kind ${kind}`);
  }
}

const CONDS = [undefined, 'nx', 'xx'] as const;

export function writeOp(w: BodyWriter, op: WriteOp): void {
  switch (op.op) {
    case 'set':
      w.u8(1).bytes(op.value);
      writeExpiry(w, op.expiry);
      w.u8(CONDS.indexOf(op.cond));
      return;
    case 'del':
      w.u8(2);
      return;
    case 'expire':
      w.u8(3);
      writeExpiry(w, op.expiry);
      return;
  }
}

export function readOp(r: BodyReader): WriteOp {
  const code = r.u8();
  switch (code) {
    case 1: {
      const value = r.bytes(MAX_VALUE_BYTES);
      const expiry = readExpiry(r);
      const c = r.u8();
      if (c >= CONDS.length) throw new CodecError(`bad set condition ${c}`);
      const cond = CONDS[c];
      return cond === undefined ? { op: 'set', value, expiry } : { op: 'set', value, expiry, cond };
    }
    case 2:
      return { op: 'del' };
    case 3:
      return { op: 'expire', expiry: readExpiry(r) };
    default:
      throw new CodecError(`unknown write op ${code}`);
  }
}

export interface WriteRequest {
  group: string;
  key: string;
  op: WriteOp;
}

/**
 * A write for the receiver to coordinate: decide it against its copy, give it a version, apply
 * and replicate it. The request's deadline is the write's fence: it is never applied after it.
 */
export const Write = binaryMessage<WriteRequest, WriteResult>({
  name: 'write',
  request: {
    write(w, v) {
      key.write(w, v);
      writeOp(w, v.op);
    },
    read(r) {
      const k = key.read(r);
      return { ...k, op: readOp(r) };
    },
  },
  response: {
    write: (w, v) => void w.bool(v.applied).bool(v.existed),
    read: (r) => ({ applied: r.bool(), existed: r.bool() }),
  },
});

// ---- commands run at a key's coordinator (router.ts exec, cache/engine) ----------------------

export interface ExecRequest {
  group: string;
  /** A key of the slot the commands address: it routes the request. */
  key: string;
  /** The keys the commands touch (all in `key`'s slot): a persistent coordinator reads them from disk first. */
  keys: string[];
  /** Each command with its arguments, the name first. None (and no transaction): the versions of `keys` (WATCH). */
  commands: Buffer[][];
  /** One command alone, or a MULTI/EXEC transaction (the reply is then the array of replies). */
  transaction: boolean;
  /** WATCHed keys with the versions they had, and whether they were live (transactions only). */
  watched: { key: string; version: number; live?: boolean }[];
  /** The client's RESP version (a few replies differ in shape: HRANDFIELD WITHVALUES). Default 2. */
  protocol?: 2 | 3;
}

/** Most commands in one transaction, arguments per command, nesting of a reply. */
const MAX_COMMANDS = 100_000;
const MAX_ARGS = 1_000_000;
const MAX_REPLY_DEPTH = 16;
const MAX_REPLY_ITEMS = 10_000_000;

const REPLY_TAG = ['simple', 'error', 'integer', 'bigint', 'bulk', 'array', 'map', 'set', 'double', 'boolean', 'bignum', 'verbatim', 'push', 'attribute', 'null-bulk', 'null-array'] as const;

function writeReply(w: BodyWriter, r: Reply): void {
  switch (r.type) {
    case 'simple':
      w.u8(0).str(Buffer.from(r.value, 'utf8').toString('latin1'));
      return;
    case 'error':
      w.u8(1).str(Buffer.from(r.message, 'utf8').toString('latin1'));
      return;
    case 'integer':
      if (typeof r.value === 'bigint') w.u8(3).str(r.value.toString());
      else w.u8(2).f64(r.value);
      return;
    case 'bulk':
      if (r.value === null) w.u8(14);
      else w.u8(4).bytes(typeof r.value === 'string' ? Buffer.from(r.value, 'utf8') : r.value);
      return;
    case 'array':
      if (r.items === null) w.u8(15);
      else w.u8(5).list(r.items, writeReply);
      return;
    case 'map':
      w.u8(6).list(r.entries, writePair);
      return;
    case 'set':
      w.u8(7).list(r.items, writeReply);
      return;
    case 'double':
      // f64 on the wire refuses non-finite numbers: inf, -inf and nan travel as text
      w.u8(8).str(String(r.value));
      return;
    case 'boolean':
      w.u8(9).bool(r.value);
      return;
    case 'bignum':
      w.u8(10).str(r.value);
      return;
    case 'verbatim':
      w.u8(11).str(r.format).bytes(typeof r.value === 'string' ? Buffer.from(r.value, 'utf8') : r.value);
      return;
    case 'push':
      w.u8(12).list(r.items, writeReply);
      return;
    case 'attribute':
      w.u8(13).list(r.attributes, writePair);
      writeReply(w, r.value);
      return;
  }
}

function writePair(w: BodyWriter, [k, v]: ReplyPair): void {
  writeReply(w, k);
  writeReply(w, v);
}

function readReply(r: BodyReader, depth = 0): Reply {
  if (depth > MAX_REPLY_DEPTH) throw new CodecError(`reply nested deeper than ${MAX_REPLY_DEPTH}`);
  const tag = r.u8();
  const inner = (): Reply => readReply(r, depth + 1);
  const pair = (): ReplyPair => [inner(), inner()];
  switch (REPLY_TAG[tag]) {
    case 'simple':
      return { type: 'simple', value: Buffer.from(r.str(), 'latin1').toString('utf8') };
    case 'error':
      return { type: 'error', message: Buffer.from(r.str(), 'latin1').toString('utf8') };
    case 'integer':
      return { type: 'integer', value: r.f64() };
    case 'bigint': {
      const digits = r.str(32);
      if (!/^-?\d+$/.test(digits)) throw new CodecError(`bad integer ${JSON.stringify(digits)}`);
      return { type: 'integer', value: BigInt(digits) };
    }
    case 'bulk':
      return { type: 'bulk', value: r.bytes(MAX_VALUE_BYTES) };
    case 'null-bulk':
      return { type: 'bulk', value: null };
    case 'array':
      return { type: 'array', items: r.list(MAX_REPLY_ITEMS, inner) };
    case 'null-array':
      return { type: 'array', items: null };
    case 'map':
      return { type: 'map', entries: r.list(MAX_REPLY_ITEMS, pair) };
    case 'set':
      return { type: 'set', items: r.list(MAX_REPLY_ITEMS, inner) };
    case 'double':
      return { type: 'double', value: Number(r.str(64)) };
    case 'boolean':
      return { type: 'boolean', value: r.bool() };
    case 'bignum':
      return { type: 'bignum', value: r.str(1 << 16) };
    case 'verbatim':
      return { type: 'verbatim', format: r.str(8), value: r.bytes(MAX_VALUE_BYTES) };
    case 'push':
      return { type: 'push', items: r.list(MAX_REPLY_ITEMS, inner) };
    case 'attribute': {
      const attributes = r.list(MAX_REPLY_ITEMS, pair);
      return { type: 'attribute', attributes, value: inner() };
    }
    default:
      throw new CodecError(`bad reply tag ${tag}`);
  }
}

/**
 * Redis commands for the receiver to run as the coordinator of `key`'s slot (cache/engine):
 * atomically against its copy, the changes versioned, applied and replicated like writes. The
 * answer is the command's reply (RESP-independent: the sender encodes it for its client).
 */
export const Exec = binaryMessage<ExecRequest, Reply>({
  name: 'exec',
  request: {
    write(w, v) {
      key.write(w, v);
      w.list(v.keys, (w2, k) => void w2.str(k));
      w.list(v.commands, (w2, c) => void w2.list(c, (w3, a) => void w3.bytes(a)));
      w.bool(v.transaction);
      w.list(v.watched, (w2, x) => void w2.str(x.key).f64(x.version).bool(x.live === true));
      w.u8(v.protocol ?? 2);
    },
    read(r) {
      const k = key.read(r);
      const keys = r.list(MAX_ARGS, (r2) => r2.str(MAX_KEY_BYTES));
      const commands = r.list(MAX_COMMANDS, (r2) => r2.list(MAX_ARGS, (r3) => r3.bytes(MAX_VALUE_BYTES)));
      const transaction = r.bool();
      const watched = r.list(MAX_ARGS, (r2) => {
        const key = r2.str(MAX_KEY_BYTES);
        const version = r2.f64();
        return r2.bool() ? { key, version, live: true } : { key, version };
      });
      const protocol = r.u8();
      if (protocol !== 2 && protocol !== 3) throw new CodecError(`bad RESP protocol ${protocol}`);
      return { ...k, keys, commands, transaction, watched, ...(protocol === 3 ? { protocol } : {}) };
    },
  },
  response: { write: writeReply, read: (r) => readReply(r) },
});

// ---- the keyspace (SCAN, KEYS, RANDOMKEY, FLUSHALL) -------------------------------------------

export interface ScanRequest {
  group: string;
  partition: number;
  /** GroupStore.scanPartition's cursor: 0 to start. */
  cursor: number;
  count: number;
  /** Only keys of this entry type. */
  type?: number;
  /** Only keys matching this Redis glob pattern (core/glob.ts). */
  match?: string;
}

/** A page of one partition's live keys, from a holder of it (router.ts scanPage). */
export const Scan = binaryMessage<ScanRequest, { cursor: number; keys: string[] }>({
  name: 'scan',
  request: {
    write(w, v) {
      w.str(v.group).u32(v.partition).f64(v.cursor).u32(v.count).u8(v.type === undefined ? 0 : v.type + 1);
      w.bool(v.match !== undefined);
      if (v.match !== undefined) w.str(v.match);
    },
    read(r) {
      const group = r.str(MAX_NAME);
      const partition = r.u32();
      const cursor = r.f64();
      const count = r.u32();
      const t = r.u8();
      const match = r.bool() ? r.str(MAX_KEY_BYTES) : undefined;
      return { group, partition, cursor, count, ...(t > 0 ? { type: t - 1 } : {}), ...(match !== undefined ? { match } : {}) };
    },
  },
  response: {
    write: (w, v) => void w.f64(v.cursor).list(v.keys, (w2, k) => void w2.str(k)),
    read: (r) => ({ cursor: r.f64(), keys: r.list(MAX_BATCH_RECORDS, (r2) => r2.str(MAX_KEY_BYTES)) }),
  },
});

/**
 * FLUSHALL / FLUSHDB: drop every entry of a group, and refuse from now on every write at or
 * under `version` (the store's flush floor), so a late replica, hint or migration batch cannot
 * bring flushed data back. Sent to every member.
 */
export const Flush = binaryMessage<{ group: string; version: number }, { dropped: number }>({
  name: 'flush',
  request: {
    write: (w, v) => void w.str(v.group).f64(v.version),
    read: (r) => ({ group: r.str(MAX_NAME), version: r.f64() }),
  },
  response: {
    write: (w, v) => void w.f64(v.dropped),
    read: (r) => ({ dropped: r.f64() }),
  },
});

/**
 * Records a coordinator applied, for the other holders (and, while a partition moves, its new
 * holders). A receiver with a newer table passes them on to the holders it lists.
 */
export const Replicate = binaryMessage<WireRecord[], void>({ name: 'replicate', request: records, response: none });

// ---- health and handoff (health/detector.ts, handoff.ts, catchup.ts) ------------------------

/**
 * The heartbeat; the answer says how many hinted writes the receiver holds for the sender, the
 * version of the table it routes by (trust.ts: a node that cannot reach etcd confirms its table
 * with its peers), and the `host:port` of its Redis listener ('' = none): how a static cluster,
 * which has no registry to publish it in, learns every node's RESP address for CLUSTER SLOTS.
 * `now`: the receiver's wall clock as it answered (health/clocks.ts: how far its clock is from
 * the sender's, for the deadlines of the messages it sends).
 */
export const Ping = binaryMessage<void, { id: string; hints: number; table: number; resp: string; now: number }>({
  name: 'ping',
  request: none,
  response: {
    write: (w, v) => void w.str(v.id).u32(v.hints).u32(v.table).str(v.resp).f64(v.now),
    read: (r) => ({ id: r.str(MAX_NAME), hints: r.u32(), table: r.u32(), resp: r.str(MAX_NAME), now: r.f64() }),
  },
});

/** Hinted writes replayed to a holder that missed them; `left`: how many the sender still holds. */
export const Hints = binaryMessage<{ records: WireRecord[]; left: number; dropped: number }, void>({
  name: 'hints',
  request: {
    write: (w, v) => void w.records(v.records).u32(v.left).u32(v.dropped),
    read: (r) => ({ records: r.records(RECORD_LIMITS), left: r.u32(), dropped: r.u32() }),
  },
  response: none,
});

export interface CatchUpPageRequest {
  group: string;
  partition: number;
  /** Only records with a version above this. */
  min: number;
  /** Only keys after this one (the previous page's cursor). */
  after: string | null;
  limit: number;
  bytes: number;
}

/**
 * One page of a partition, in key order, values and tombstones with their versions (a returning
 * holder catching up, the repair tail pass). `next`: the cursor of the next page, null at the end.
 */
export const CatchUpPage = binaryMessage<CatchUpPageRequest, { records: WireRecord[]; next: string | null }>({
  name: 'catchup',
  request: {
    write(w, v) {
      w.str(v.group).u32(v.partition).f64(v.min).bool(v.after !== null);
      if (v.after !== null) w.str(v.after);
      w.u32(v.limit).f64(v.bytes);
    },
    read(r) {
      const group = r.str(MAX_NAME);
      const partition = r.u32();
      const min = r.f64();
      const after = r.bool() ? r.str(MAX_KEY_BYTES) : null;
      return { group, partition, min, after, limit: r.u32(), bytes: r.f64() };
    },
  },
  response: {
    write(w, v) {
      w.records(v.records).bool(v.next !== null);
      if (v.next !== null) w.str(v.next);
    },
    read(r) {
      const rs = r.records(RECORD_LIMITS);
      return { records: rs, next: r.bool() ? r.str(MAX_KEY_BYTES) : null };
    },
  },
});

// ---- migration (migration/receiver.ts, migration/executor.ts) -------------------------------

/** What a migration's source is about to send a receiver: entries per group (a hint the receiver sizes its stores by). */
export interface MigrateReadyRequest {
  migration: string;
  expected: readonly { group: string; entries: number }[];
}

/**
 * Answers once the receiver takes migration batches (a node still starting answers 503). The
 * body says what the source will send; an empty body (a node before it) says nothing.
 */
export const MigrateReady = binaryMessage<MigrateReadyRequest, void>({
  name: 'migrate/ready',
  request: {
    write: (w, v) => void w.str(v.migration).list(v.expected, (x, e) => void x.str(e.group).u32(Math.min(e.entries, 0xffffffff))),
    read: (r) => (r.atEnd ? { migration: '', expected: [] } : { migration: r.str(MAX_NAME), expected: r.list(MAX_GROUPS, (x) => ({ group: x.str(MAX_NAME), entries: x.u32() })) }),
  },
  response: none,
});

/** A batch of a migration's records (codec frame format, built by BatchEncoder), applied last-writer-wins. */
export const MigrateBatch = binaryMessage<{ migration: string; batch: Buffer }, { received: number; applied: number }>({
  name: 'migrate/batch',
  request: {
    write: (w, v) => void w.str(v.migration).bytes(v.batch),
    read: (r) => ({ migration: r.str(MAX_NAME), batch: r.view(MAX_BATCH_RECORDS * 64 + MAX_VALUE_BYTES) }),
  },
  response: {
    write: (w, v) => void w.u32(v.received).u32(v.applied),
    read: (r) => ({ received: r.u32(), applied: r.u32() }),
  },
});

/** [count, sum] of a partition's live entries (migration/plan.ts Checksum). */
export type Sum = [number, number];

const sums = {
  write: (w: BodyWriter, s: readonly Sum[]): void => void w.list(s, (x, [c, sum]) => void x.f64(c).f64(sum)),
  read: (r: BodyReader): Sum[] => r.list(1 << 20, (x): Sum => [x.f64(), x.f64()]),
};

/**
 * The sender's sums of what it sent for some partitions; the answer: the receiver's sums of
 * what it holds there (flushed to disk first when persistent).
 */
export const MigrateVerify = binaryMessage<{ migration: string; partitions: number[]; sums: Sum[] }, { sums: Sum[] }>({
  name: 'migrate/verify',
  request: {
    write(w, v) {
      w.str(v.migration).list(v.partitions, (x, p) => void x.u32(p));
      sums.write(w, v.sums);
    },
    read(r) {
      const migration = r.str(MAX_NAME);
      const partitions = r.list(1 << 20, (x) => x.u32());
      return { migration, partitions, sums: sums.read(r) };
    },
  },
  response: { write: (w, v) => sums.write(w, v.sums), read: (r) => ({ sums: sums.read(r) }) },
});

// ---- hot-key mirrors (mirror.ts) ------------------------------------------------------------

/** Copies of the sender's hot keys, held by the receiver for half a lease. */
export const MirrorPush = binaryMessage<WireRecord[], void>({ name: 'mirror/push', request: records, response: none });

/** Drop these mirrored keys (their versions fence out pushes still in flight). */
export const MirrorInvalidate = binaryMessage<WireRecord[], void>({ name: 'mirror/invalidate', request: records, response: none });

// ---- load (rebalancer.ts) -------------------------------------------------------------------

/** The receiver's latest load report (static clusters, where there is no etcd to publish to). */
export const LoadReportMessage = jsonMessage<void, unknown>({ name: 'load', request: () => undefined, response: (raw) => raw });

/**
 * Apply a rebalance: a node that is not the leader hands an applying POST /cluster/rebalance to
 * the leader (only the leader changes the table). The answer is the leader's RebalanceAnswer.
 */
export const RebalanceMessage = jsonMessage<{ strategy?: string; dryRun: boolean }, unknown>({
  name: 'rebalance',
  request: (raw) => {
    const r = raw as { strategy?: unknown; dryRun?: unknown } | null;
    if (r === null || typeof r !== 'object' || (r.strategy !== undefined && typeof r.strategy !== 'string') || typeof r.dryRun !== 'boolean') throw new CodecError('expected {"strategy"?: string, "dryRun": boolean}');
    return { ...(r.strategy !== undefined ? { strategy: r.strategy as string } : {}), dryRun: r.dryRun };
  },
  response: (raw) => raw,
});

/** Every message, for the server's table and for tests. */
export const MESSAGES = [Read, Record, Count, Write, Replicate, Ping, Hints, CatchUpPage, MigrateReady, MigrateBatch, MigrateVerify, MirrorPush, MirrorInvalidate, LoadReportMessage, RebalanceMessage] as const;
