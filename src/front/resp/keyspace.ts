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
import { HASH, STRING } from '../../cache/engine/types.ts';
import { OK, array, bulk, error, integer, NULL_BULK, type RespReply } from './writer.ts';
import { masteredPartitions } from './cluster.ts';
import { guarded, notInteger, parseInteger, syntaxError, type CommandEnv, type CommandSpec, type Session } from './session.ts';

const INNER = 2 ** 32;
/** Partitions one SCAN call visits at most, however few keys they hold. */
const PARTITIONS_PER_CALL = 64;
/** Keys asked of a partition per page while KEYS walks. */
const KEYS_PAGE = 1000;

const TYPES: Record<string, number | undefined> = { string: STRING, hash: HASH };

/** Redis's cursor: an unsigned 64-bit decimal (strtoul: a leading '-' wraps), else null. */
function parseCursor(arg: Buffer): bigint | null {
  const s = arg.toString('latin1');
  if (!/^-?\d+$/.test(s)) return null;
  let n = BigInt(s);
  if (n < 0n) n = (n % 2n ** 64n) + 2n ** 64n;
  return n < 2n ** 64n ? n : null;
}

interface ScanArgs {
  cursor: bigint;
  count: number;
  match?: string;
  type?: number;
  /** TYPE named a type jincache has no key of: nothing matches. */
  none: boolean;
}

function scanArgs(args: readonly Buffer[]): ScanArgs | RespReply {
  const cursor = parseCursor(args[1]!);
  if (cursor === null) return error('ERR invalid cursor');
  const out: ScanArgs = { cursor, count: 10, none: false };
  for (let i = 2; i < args.length; i++) {
    const opt = args[i]!.toString('latin1').toLowerCase();
    const val = args[i + 1];
    if (val === undefined) return syntaxError;
    i++;
    if (opt === 'count') {
      const n = parseInteger(val);
      if (n === null) return notInteger;
      if (n < 1) return syntaxError;
      out.count = n;
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

async function scan(env: CommandEnv, session: Session, a: ScanArgs): Promise<RespReply> {
  const partitions = env.door.partitionCount();
  const covered = walked(env, session);
  let p = Number(a.cursor / BigInt(INNER));
  let inner = Number(a.cursor % BigInt(INNER));
  const keys: string[] = [];
  if (a.none) return array([bulk('0'), array([])]);
  for (let visited = 0; p < partitions && keys.length < a.count && visited < PARTITIONS_PER_CALL; visited++) {
    if (!covered(p)) {
      p++;
      inner = 0;
      continue;
    }
    const page = await env.door.scanPage('resp', session.user, env.group, {
      partition: p,
      cursor: inner,
      count: Math.max(1, a.count - keys.length),
      ...(a.type !== undefined ? { type: a.type } : {}),
      ...(a.match !== undefined ? { match: a.match } : {}),
    });
    keys.push(...page.keys);
    if (page.cursor === 0 || page.cursor >= INNER) {
      p++;
      inner = 0;
    } else {
      inner = page.cursor;
    }
  }
  const next = p >= partitions ? 0n : BigInt(p) * BigInt(INNER) + BigInt(inner);
  return array([bulk(next.toString()), array(keys.map((k) => bulk(Buffer.from(k, 'latin1'))))]);
}

/** Every key matching `pattern`, the whole cluster walked (KEYS: use SCAN in production, as with Redis). */
async function allKeys(env: CommandEnv, session: Session, pattern: string): Promise<string[]> {
  const out: string[] = [];
  const partitions = env.door.partitionCount();
  const covered = walked(env, session);
  for (let p = 0; p < partitions; p++) {
    if (!covered(p)) continue;
    let cursor = 0;
    do {
      const page = await env.door.scanPage('resp', session.user, env.group, { partition: p, cursor, count: KEYS_PAGE, ...(pattern !== '*' ? { match: pattern } : {}) });
      out.push(...page.keys);
      cursor = page.cursor;
    } while (cursor !== 0);
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
        // a few random partitions first (cheap), then a walk from a random one so an almost empty keyspace still answers
        const start = Math.floor(Math.random() * partitions);
        for (let i = 0; i < partitions; i++) {
          const p = i < 8 ? Math.floor(Math.random() * partitions) : (start + i) % partitions;
          const page = await env.door.scanPage('resp', session.user, env.group, { partition: p, cursor: 0, count: 16 });
          if (page.keys.length > 0) return bulk(Buffer.from(page.keys[Math.floor(Math.random() * page.keys.length)]!, 'latin1'));
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
