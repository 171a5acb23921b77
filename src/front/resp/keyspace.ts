/**
 * The commands on the whole keyspace: SCAN, KEYS, RANDOMKEY, FLUSHDB, FLUSHALL. The keyspace is
 * the cluster's: a walk visits the partitions in order and asks a holder of each for a page of
 * its keys (Router.scanPage), so SCAN from any node covers every key.
 *
 * The SCAN cursor is partition × 2^32 + the partition's own cursor (GroupStore.scanPartition,
 * whose order is the same on every node): a key that exists for the whole walk is returned at
 * least once even while its partition moves to another node (the walk goes on at the new holder
 * from the same place). A cursor is a decimal string below 2^64, as Redis's; one that does not
 * name a partition of this table ends the walk.
 */
import { parseScanCursor } from '../../cache/engine/hashes.ts';
import { parseInt64 } from '../../cache/engine/numbers.ts';
import { HASH, STRING } from '../../cache/engine/types.ts';
import { OK, array, bulk, error, integer, NULL_BULK, type RespReply } from './writer.ts';
import { masteredPartitions } from './cluster.ts';
import { guarded, notInteger, syntaxError, type CommandEnv, type CommandSpec, type Session } from './session.ts';

const INNER = 2 ** 32;
/** Partitions one SCAN call visits at most, however few keys they hold. */
const PARTITIONS_PER_CALL = 64;
/** Keys asked of a partition per page while KEYS walks. */
const KEYS_PAGE = 1000;
/**
 * Partitions asked at once by KEYS, and at most by SCAN and RANDOMKEY, whose windows start at one
 * partition and double while the pages come back short (a dense keyspace costs one page a call,
 * a sparse one a few rounds). One partition at a time, KEYS over 4096 nearly empty partitions took
 * seconds on a 3-node cluster (a third of them on other nodes: a round trip each).
 */
const WALK_WINDOW = 64;

const TYPES: Record<string, number | undefined> = { string: STRING, hash: HASH };

interface ScanArgs {
  cursor: bigint;
  count: number;
  match?: string;
  type?: number;
  /** TYPE named a type jincache has no key of: nothing matches. */
  none: boolean;
}

function scanArgs(args: readonly Buffer[]): ScanArgs | RespReply {
  // Redis's strtoul rules (HSCAN's too): "" is 0, a sign is taken, a leading space is not
  const cursor = parseScanCursor(args[1]!);
  if (cursor === null) return error('ERR invalid cursor');
  const out: ScanArgs = { cursor, count: 10, none: false };
  for (let i = 2; i < args.length; i++) {
    const opt = args[i]!.toString('latin1').toLowerCase();
    const val = args[i + 1];
    if (val === undefined) return syntaxError;
    i++;
    if (opt === 'count') {
      const n = parseInt64(val); // a 64-bit integer, as Redis reads it
      if (n === null) return notInteger;
      if (n < 1) return syntaxError;
      out.count = Number(n);
    } else if (opt === 'match') {
      out.match = val.toString('latin1');
    } else if (opt === 'type') {
      const t = TYPES[val.toString('latin1').toLowerCase()];
      if (t === undefined) out.none = true;
      else out.type = t;
    } else {
      return syntaxError;
    }
  }
  return out;
}

/**
 * The partitions a walk covers: all of them (the whole cluster, from any node), or for a
 * cluster-aware connection only those this node is the master of, as a Redis Cluster node
 * answers for its own slots (the client asks every master and merges).
 */
function walked(env: CommandEnv, session: Session): (p: number) => boolean {
  if (session.cluster?.aware !== true || env.cluster === undefined) return () => true;
  const mine = new Set(masteredPartitions(env.cluster));
  return (p) => mine.has(p);
}

/**
 * One SCAN call: pages of the partitions from the cursor's on, a growing window of them asked at
 * once and taken in order, until COUNT keys or PARTITIONS_PER_CALL partitions. A partition's page
 * that was asked for and not reached is dropped (the cursor stops before it).
 */
async function scan(env: CommandEnv, session: Session, a: ScanArgs): Promise<RespReply> {
  const partitions = env.door.partitionCount();
  let p = Number(a.cursor / BigInt(INNER));
  let inner = Number(a.cursor % BigInt(INNER));
  const keys: string[] = [];
  if (a.none) return array([bulk('0'), array([])]);
  const page = (partition: number, cursor: number, count: number) =>
    env.door.scanPage('resp', session.user, env.group, {
      partition,
      cursor,
      count: Math.max(1, count),
      ...(a.type !== undefined ? { type: a.type } : {}),
      ...(a.match !== undefined ? { match: a.match } : {}),
    });
  const covered = walked(env, session);
  let visited = 0;
  let window = 1;
  walk: while (keys.length < a.count && visited < PARTITIONS_PER_CALL) {
    while (p < partitions && !covered(p)) {
      p++;
      inner = 0;
    }
    if (p >= partitions) break;
    // the next `width` partitions the walk covers, from p on
    const width = Math.min(window, PARTITIONS_PER_CALL - visited);
    const ids: number[] = [];
    for (let q = p; q < partitions && ids.length < width; q++) if (covered(q)) ids.push(q);
    window = Math.min(2 * window, WALK_WINDOW);
    const want = a.count - keys.length;
    const pages = await Promise.all(ids.map((id, i) => page(id, i === 0 ? inner : 0, want)));
    for (let i = 0; i < pages.length; i++) {
      const got = pages[i]!;
      keys.push(...got.keys);
      visited++;
      if (got.cursor === 0 || got.cursor >= INNER) {
        p = ids[i]! + 1;
        inner = 0;
      } else {
        // the partition has more: the next call goes on from here
        p = ids[i]!;
        inner = got.cursor;
        break walk;
      }
      if (keys.length >= a.count) break walk;
    }
  }
  const next = p >= partitions ? 0n : BigInt(p) * BigInt(INNER) + BigInt(inner);
  return array([bulk(next.toString()), array(keys.map((k) => bulk(Buffer.from(k, 'latin1'))))]);
}

/** Every key of partition `p` matching `pattern` (KEYS_PAGE keys per page). */
async function partitionKeys(env: CommandEnv, session: Session, p: number, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = 0;
  do {
    const page = await env.door.scanPage('resp', session.user, env.group, { partition: p, cursor, count: KEYS_PAGE, ...(pattern !== '*' ? { match: pattern } : {}) });
    out.push(...page.keys);
    cursor = page.cursor;
  } while (cursor !== 0);
  return out;
}

/** Every key matching `pattern`, the whole cluster walked, WALK_WINDOW partitions at once (KEYS: use SCAN in production, as with Redis). */
async function allKeys(env: CommandEnv, session: Session, pattern: string): Promise<string[]> {
  const covered = walked(env, session);
  const ids = Array.from({ length: env.door.partitionCount() }, (_, p) => p).filter(covered);
  const out: string[] = [];
  for (let i = 0; i < ids.length; i += WALK_WINDOW) {
    const pages = await Promise.all(ids.slice(i, i + WALK_WINDOW).map((p) => partitionKeys(env, session, p, pattern)));
    for (const keys of pages) out.push(...keys);
  }
  return out;
}

export const KEYSPACE_COMMANDS: Record<string, CommandSpec> = {
  scan: {
    perm: 'read',
    arity: -2,
    flags: ['readonly'],
    keys: [0, 0, 0],
    run(env, session, args) {
      const a = scanArgs(args);
      if (!('cursor' in a)) return a;
      return guarded(() => scan(env, session, a));
    },
  },
  keys: {
    perm: 'read',
    arity: 2,
    flags: ['readonly'],
    keys: [0, 0, 0],
    run(env, session, args) {
      const pattern = args[1]!.toString('latin1');
      return guarded(async () => array((await allKeys(env, session, pattern)).map((k) => bulk(Buffer.from(k, 'latin1')))));
    },
  },
  randomkey: {
    perm: 'read',
    arity: 1,
    flags: ['readonly'],
    keys: [0, 0, 0],
    run(env, session) {
      return guarded(async () => {
        const partitions = env.door.partitionCount();
        // eight random partitions first (at once), then a walk from a random one so an almost
        // empty keyspace still answers, in windows that double up to WALK_WINDOW
        const start = Math.floor(Math.random() * partitions);
        const order = [...Array.from({ length: 8 }, () => Math.floor(Math.random() * partitions)), ...Array.from({ length: partitions }, (_, i) => (start + i) % partitions)];
        for (let i = 0, window = 8; i < order.length; i += window, window = Math.min(2 * window, WALK_WINDOW)) {
          const pages = await Promise.all(order.slice(i, i + window).map((p) => env.door.scanPage('resp', session.user, env.group, { partition: p, cursor: 0, count: 16 })));
          const page = pages.find((pg) => pg.keys.length > 0);
          if (page !== undefined) return bulk(Buffer.from(page.keys[Math.floor(Math.random() * page.keys.length)]!, 'latin1'));
        }
        return NULL_BULK;
      });
    },
  },
  dbsize: {
    perm: 'read',
    arity: 1,
    flags: ['readonly', 'fast'],
    keys: [0, 0, 0],
    run(env, session) {
      // a cluster-aware client adds up every master's answer: count this node's own share
      if (session.cluster?.aware === true && env.cluster !== undefined) return integer(env.cluster.countKeysInPartitions(masteredPartitions(env.cluster)));
      return guarded(async () => integer(await env.door.count('resp', session.user, env.group)));
    },
  },
  flushall: { perm: 'admin', arity: -1, flags: ['write'], keys: [0, 0, 0], run: flushRun },
  flushdb: { perm: 'admin', arity: -1, flags: ['write'], keys: [0, 0, 0], run: flushRun },
};

/** FLUSHALL / FLUSHDB [ASYNC|SYNC]: both are synchronous here (the flush floor makes it immediate). */
function flushRun(env: CommandEnv, session: Session, args: Buffer[]): RespReply | Promise<RespReply> {
  if (args.length > 2) return syntaxError;
  if (args.length === 2) {
    const mode = args[1]!.toString('latin1').toLowerCase();
    if (mode !== 'async' && mode !== 'sync') return syntaxError;
  }
  return guarded(async () => {
    await env.door.flush('resp', session.user, env.group);
    return OK;
  });
}
