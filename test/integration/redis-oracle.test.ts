/**
 * The Redis oracle through a real cluster (issue 13): the command families of the engine oracle
 * (test/helpers/redis-sequences.ts) and the keyspace commands, replayed against redis-server 7 and
 * a 3-node jincache cluster (`serve --resp-port` per node, replication factor 2), over RESP2 and
 * RESP3, every reply compared byte for byte up to the normalisations. Each step goes to a node
 * chosen at random, so the coordinator of its slot is usually another node: forwarding, Exec,
 * replication and transactions across nodes are what this tests. A MULTI block and the WATCHes
 * before it keep one connection. After every sequence each node's own copy of every key is read
 * (the peer Record message): the two holders of a key must hold what redis-server holds, the same
 * entry both, and the third node nothing.
 *
 * Keys: the families whose commands take several keys (strings, keyspace, transactions) use
 * ONE_SLOT_KEYS (one hash tag; the empty key is in that slot too) and one key elsewhere (`k2`),
 * the others keys of any slot. Multi-key commands over several slots are answered CROSSSLOT, as
 * Redis Cluster answers them: those replies are compared with a one-node Redis Cluster's (every
 * slot, the same connection kind), and the plain redis-server, which would run them, is not sent
 * them. Which keys a command has is asked of Redis (COMMAND GETKEYS), not of jincache.
 *
 * EXCLUSIONS (besides those of redis-sequences.ts), each by design:
 *  - MGET MSET DEL EXISTS TOUCH UNLINK over several slots: a plain connection gets them split per
 *    slot and answered as one server would (what a cluster client does for its user); Redis
 *    Cluster answers CROSSSLOT. Compared with redis-server.
 *  - WATCH of a key in another slot than the keys watched before it: CROSSSLOT (Redis Cluster
 *    answers OK); a transaction whose commands are in another slot than its watched keys: EXEC
 *    answers CROSSSLOT (Redis Cluster runs it). A transaction runs at one slot's coordinator, which
 *    can check only the versions of its own keys.
 *  - DBSIZE and INFO keyspace count live keys; Redis also counts expired keys it has not reclaimed
 *    yet (SET ... PXAT <past> leaves one). Before either is sent, a whole SCAN of redis-server
 *    reclaims them; DBSIZE is not queued in transactions.
 *  - Hot-key mirrors are off (load.enabled false): FLUSHALL leaves a mirrored copy readable on
 *    the other nodes for up to its lease (reported: cluster/mirror.ts and local-data.ts do not
 *    drop mirrors on a flush). JINCACHE_ORACLE_MIRRORS=1 turns them on.
 * NORMALISED (besides those of redis-sequences.ts): KEYS compared as sets; SCAN from cursor 0 by
 * the set of keys of the whole walk (from another cursor: the shape only); RANDOMKEY: null for
 * null, else a key redis-server has; INFO keyspace by its keys= and expires= figures.
 *
 * Bounded for `npm test` (ORACLE_RUNS sequences per family and protocol, default 6, seeded by
 * ORACLE_SEED); a failure prints the shrunk sequence with both replies. JINCACHE_ORACLE_EXPLORE=1
 * runs many more sequences (ORACLE_RUNS, default 150), longer ones, every family to the end, and
 * prints every difference found, grouped, before failing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeHash } from '../../src/cache/engine/index.ts';
import { HASH, STRING } from '../../src/cache/engine/types.ts';
import { slotOf } from '../../src/core/placement/hash.ts';
import { Record as RecordMessage } from '../../src/peer/messages.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { callPeer } from '../helpers/peer.ts';
import { freePort } from '../helpers/ports.ts';
import { RespClient, startRedisServer, type RedisServer, type Reply } from '../helpers/redis-oracle.ts';
import {
  ENGINE_KEYS,
  ONE_SLOT_KEYS,
  SLOT0_TAG,
  UNORDERED,
  allKeys,
  c,
  canon,
  cmd,
  difference,
  elements,
  families,
  generators,
  rel,
  resolve,
  show,
  smallValue,
  value,
  type Family,
  type KeySpace,
  type Part,
  type Step,
  type Template,
} from '../helpers/redis-sequences.ts';

const EXPLORE = process.env.JINCACHE_ORACLE_EXPLORE === '1';
const SEED = Number(process.env.ORACLE_SEED ?? 20261213);
/** Sequences per family and protocol. */
const RUNS = Number(process.env.ORACLE_RUNS ?? (EXPLORE ? 150 : 6));
const NODES = 3;
/** Hot-key mirrors on (EXCLUSIONS). */
const MIRRORS = process.env.JINCACHE_ORACLE_MIRRORS === '1';
const GROUP = 'scores';

// ---------------------------------------------------------------- the families

/** ONE_SLOT_KEYS and `k2`, in another slot: multi-key commands meet CROSSSLOT now and then. */
const MOSTLY_ONE_SLOT: KeySpace = { ...ONE_SLOT_KEYS, keys: [...ONE_SLOT_KEYS.keys, 'k2'] };
const ONE_SLOT_FAMILIES = new Set(['strings', 'keyspace', 'transactions']);

const spread = generators(ENGINE_KEYS);
const pattern = fc.constantFrom('*', '*', 'k*', 'k?', '{t}*', '*a', '[k{]*', '', '\\{*', 'k[0-1]', '*\xff*', `{${SLOT0_TAG}}*`, '*k*', '?');
const scanType = fc.constantFrom<Part[]>([], [], ['TYPE', 'string'], ['TYPE', 'hash'], ['type', 'HASH'], ['TYPE', 'list'], ['TYPE', 'bogus']);
const scanCount = fc.constantFrom<Part[]>([], [], ['COUNT', '1'], ['COUNT', '3'], ['COUNT', '1000'], ['count', '0'], ['COUNT', '-1'], ['COUNT', 'x']);
const scanMatch = pattern.map((p): Part[] => ['MATCH', p]);

/** The keyspace commands: DBSIZE, KEYS, SCAN, RANDOMKEY, TYPE, EXISTS, FLUSHALL/FLUSHDB, INFO keyspace. */
const KEYSPACE_WIDE: fc.Arbitrary<Template>[] = [
  cmd('set', spread.key, value),
  cmd('set', spread.key, value, c('EX'), rel(false)),
  cmd('hset', spread.key, fc.constantFrom('a', 'b'), smallValue),
  cmd('del', spread.keys),
  cmd('expire', spread.key, fc.oneof(rel(false), fc.constant('0'))),
  cmd('exists', spread.keys),
  cmd('type', spread.key),
  cmd('dbsize'),
  cmd('dbsize'),
  cmd('keys', pattern),
  cmd('scan', c('0'), fc.oneof(fc.constant<Part[]>([]), scanMatch), scanCount, scanType),
  cmd('scan', c('0'), scanType, scanMatch, scanCount),
  cmd('scan', fc.constantFrom('1', '17', '18446744073709551615', '-1', 'abc', '', '18446744073709551616', '+0')),
  cmd('scan', c('0'), fc.constantFrom<Part[]>(['MATCH'], ['BOGUS', '1'], ['COUNT'], ['TYPE'], ['MATCH', '*', 'COUNT'])),
  cmd('randomkey'),
  cmd('info', fc.constantFrom('keyspace', 'KEYSPACE')),
  fc.constantFrom<Template>(['FLUSHALL'], ['flushall', 'SYNC'], ['FLUSHALL', 'async'], ['FLUSHDB'], ['flushdb', 'ASYNC'], ['FLUSHALL', 'BOGUS'], ['FLUSHDB', 'SYNC', 'x']),
  spread.noiseOf(['dbsize', 'keys', 'randomkey', 'flushall', 'flushdb', 'scan']),
];

/**
 * More for transactions: keyspace commands (Redis Cluster queues them: they have no slot), and
 * the commands on the transaction itself that MULTI queues (UNWATCH) or answers at once (WATCH,
 * MULTI). Not DBSIZE: after SET ... PXAT <past> Redis counts a key that is gone (EXCLUSIONS), and
 * inside a transaction nothing can make it reclaim the key first.
 */
const IN_TRANSACTIONS: fc.Arbitrary<Template>[] = [
  cmd('keys', pattern),
  fc.constantFrom<Template>(['FLUSHALL'], ['ECHO', 'x'], ['PING'], ['UNWATCH'], ['MULTI'], ['WATCH', ONE_SLOT_KEYS.hot[0]]),
];
/** Never queued by MULTI: their keys are no part of the transaction's slot. */
const NOT_QUEUED = new Set(['watch', 'multi']);

function clusterFamilies(maxLength: number): Family[] {
  const keysOf = (f: string) => (ONE_SLOT_FAMILIES.has(f) ? MOSTLY_ONE_SLOT : ENGINE_KEYS);
  const shared = families(keysOf, { nodes: NODES, maxLength });
  const tx = generators(MOSTLY_ONE_SLOT);
  return [
    ...shared.filter((f) => f.name !== 'transactions'),
    {
      name: 'transactions',
      arb: tx.sequence([...tx.MIXED, fc.oneof(...IN_TRANSACTIONS)], { transactions: true, nodes: NODES, maxLength }),
      share: 1,
    },
    { name: 'keyspace commands', arb: spread.sequence(KEYSPACE_WIDE, { nodes: NODES, maxLength }), share: 1 },
  ];
}

/** Every key a family's commands may touch: what is read back after a sequence. */
const EVERY_KEY = [...new Set([...allKeys(ENGINE_KEYS), ...allKeys(MOSTLY_ONE_SLOT)])];

// ---------------------------------------------------------------- the servers

interface Env {
  /** redis-server, one connection per protocol. */
  redis: Record23<RespClient>;
  /** A one-node Redis Cluster (every slot): what a multi-key command over slots gets. */
  cluster: Record23<RespClient>;
  /** One connection per jincache node and protocol. */
  jin: Record23<RespClient[]>;
  /** Where the replication check reads from. */
  nodeUrls: string[];
  /** RESP2 to redis-server for the checks (never in MULTI). */
  control: RespClient;
}
type Record23<T> = { 2: T; 3: T };

const text = (r: Reply): string | null => (r.type === 'bulk' ? r.value.toString('latin1') : r.type === 'verbatim' ? r.text.toString('latin1') : r.type === 'simple' ? r.value : null);
const isError = (r: Reply, prefix: string): boolean => r.type === 'error' && r.message.startsWith(prefix);

/**
 * The keys Redis finds in `command` (COMMAND GETKEYS); [] when it has none or is malformed.
 * `single`: [] for a command too short to name two keys (they cannot be in two slots).
 */
async function keysOf(env: Env, command: readonly string[], single = false): Promise<string[]> {
  if (command.length < 2 || (single && command.length < 3)) return [];
  const r = await env.control.call('COMMAND', 'GETKEYS', ...command);
  return r.type === 'array' ? r.items.map((k) => (k.type === 'bulk' ? k.value.toString('latin1') : '')) : [];
}

const oneSlotOf = (keys: readonly string[]): number | undefined => {
  const slots = new Set(keys.map(slotOf));
  return slots.size === 1 ? [...slots][0] : undefined;
};

/** Commands a plain jincache connection splits over slots (EXCLUSIONS). */
const SPLIT = new Set(['mget', 'mset', 'del', 'exists', 'touch', 'unlink']);

// ---------------------------------------------------------------- the cluster's own normalisations

/** INFO keyspace's db0 figures that are exact (avg_ttl is Redis's sampled estimate). */
function keyspaceFigures(r: Reply): string {
  const t = text(r);
  if (t === null) return canon(r);
  const line = /^db0:(.*)$/m.exec(t)?.[1] ?? 'keys=0,expires=0';
  return `${r.type} ${line.replace(/,avg_ttl=\d+/, '')}`;
}

/**
 * How two replies to a keyspace command compare (the walks a SCAN needs are made here), or
 * undefined for the other commands.
 */
async function keyspaceDifference(env: Env, command: readonly string[], a: Reply, b: Reply, jin: RespClient, protocol: 2 | 3): Promise<string | null | undefined> {
  const name = command[0]!.toLowerCase();
  const both = `redis ${canon(a).slice(0, 300)} vs ours ${canon(b).slice(0, 300)}`;
  if (a.type === 'error' || b.type === 'error') return name === 'keys' || name === 'scan' || name === 'randomkey' || name === 'info' ? (canon(a) === canon(b) ? null : both) : undefined;
  if (name === 'keys') {
    const set = (r: Reply) => (r.type === 'array' ? r.items.map(canon).sort().join(' ') : canon(r));
    return a.type === b.type && set(a) === set(b) ? null : `${both} (as sets)`;
  }
  if (name === 'randomkey') {
    if (a.type !== b.type) return both;
    if (b.type !== 'bulk') return null;
    const exists = await env.control.call('EXISTS', b.value.toString('latin1'));
    return exists.type === 'integer' && exists.value === 1 ? null : `RANDOMKEY answered ${canon(b)}, which redis-server does not have`;
  }
  if (name === 'info' && command.length === 2 && command[1]!.toLowerCase() === 'keyspace') {
    return keyspaceFigures(a) === keyspaceFigures(b) ? null : `redis ${keyspaceFigures(a)} vs ours ${keyspaceFigures(b)}`;
  }
  if (name === 'scan') {
    const page = (r: Reply): { cursor: string; keys: string[] } | null =>
      r.type === 'array' && r.items.length === 2 && r.items[0]!.type === 'bulk' && r.items[1]!.type === 'array' && r.items[1].items.every((k) => k.type === 'bulk')
        ? { cursor: r.items[0].value.toString('latin1'), keys: r.items[1].items.map((k) => (k as { value: Buffer }).value.toString('latin1')) }
        : null;
    const pa = page(a);
    const pb = page(b);
    if (pa === null || pb === null) return `not a SCAN page: ${both}`;
    if (command[1] !== '0') return null; // a walk from elsewhere: its cursor is each server's own
    const walk = async (client: RespClient, first: { cursor: string; keys: string[] }): Promise<string> => {
      const keys = new Set(first.keys);
      let cursor = first.cursor;
      for (let n = 0; cursor !== '0'; n++) {
        if (n > 5000) throw new Error(`SCAN walk from ${show(command)} did not end`);
        const next = page(await client.call('SCAN', cursor, ...command.slice(2)));
        if (next === null) throw new Error('SCAN went wrong in a walk');
        next.keys.forEach((k) => keys.add(k));
        cursor = next.cursor;
      }
      return [...keys].map((k) => JSON.stringify(k)).sort().join(' ');
    };
    const [wa, wb] = [await walk(env.redis[protocol], pa), await walk(jin, pb)];
    return wa === wb ? null : `a whole SCAN walk: redis {${wa}} vs ours {${wb}}`;
  }
  return undefined;
}

// ---------------------------------------------------------------- running a sequence

/** A shrunk failure's story: every command with both replies, and what differed. */
class Transcript {
  readonly lines: string[];
  constructor(protocol: 2 | 3) {
    this.lines = [`RESP${protocol}`];
  }
  add(line: string): void {
    this.lines.push(line);
  }
  fail(why: string): string {
    return [...this.lines, `  DIFFERS: ${why}`].join('\n');
  }
}

const reply = (r: Reply) => canon(r).slice(0, 200);

/**
 * Make redis-server reclaim the keys that have expired, so that DBSIZE counts live keys: a whole
 * SCAN (it deletes each expired key it meets). Returns the live keys.
 */
async function reclaim(env: Env): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const page = await env.control.call('SCAN', cursor, 'COUNT', '1000');
    assert.ok(page.type === 'array' && page.items[0]!.type === 'bulk' && page.items[1]!.type === 'array');
    cursor = page.items[0].value.toString('latin1');
    for (const k of page.items[1].items) if (k.type === 'bulk') keys.push(k.value.toString('latin1'));
  } while (cursor !== '0');
  return keys;
}

async function reset(env: Env): Promise<void> {
  const all = [env.redis[2], env.redis[3], env.cluster[2], env.cluster[3], ...env.jin[2], ...env.jin[3]];
  // a failed sequence may have left a connection in MULTI or watching
  await Promise.all(all.map(async (cl) => {
    await cl.call('DISCARD');
    await cl.call('UNWATCH');
  }));
  const flushed = await Promise.all([env.redis[2].call('FLUSHALL'), env.cluster[2].call('FLUSHALL'), env.jin[2][0]!.call('FLUSHALL')]);
  for (const r of flushed) assert.equal(canon(r), '+OK', 'FLUSHALL between sequences');
}

/**
 * Run `steps` on redis-server and the cluster; null when every reply agrees, else the transcript
 * up to the first difference.
 */
async function runSequence(env: Env, steps: readonly Step[], protocol: 2 | 3): Promise<string | null> {
  await reset(env);
  const redis = env.redis[protocol];
  const clusterRef = env.cluster[protocol];
  const t0s = Math.floor(Date.now() / 1000);
  const log = new Transcript(protocol);
  let i = 0;
  /** The connection that holds this sequence's WATCHes until the next EXEC, and their slot. */
  let watching: { node: number; slot: number } | null = null;
  const encodingOf = async (command: readonly string[]): Promise<string | null> => {
    if (!UNORDERED.has(command[0]!.toLowerCase()) || command.length < 2) return null;
    const r = await env.control.call('OBJECT', 'ENCODING', command[1]!);
    return r.type === 'bulk' ? r.value.toString('latin1') : null;
  };
  /** Why jincache's reply differs from the reference's, or null. */
  const compare = async (command: readonly string[], ref: { reply: Reply; bytes: Buffer }, ours: { reply: Reply; bytes: Buffer }, jin: RespClient): Promise<string | null> => {
    const special = await keyspaceDifference(env, command, ref.reply, ours.reply, jin, protocol);
    if (special !== undefined) return special;
    const why = difference(command, ref, ours.bytes);
    return why === null ? null : difference(command, ref, ours.bytes, await encodingOf(command));
  };

  for (const step of steps) {
    const nodeOf = (s: Step) => watching?.node ?? s.node ?? 0;
    if (step.kind === 'watch') {
      const node = nodeOf(step);
      const jin = env.jin[protocol][node]!;
      const slot = slotOf(step.key);
      if (watching !== null && watching.slot !== slot) {
        // EXCLUSIONS: WATCH in a second slot is refused (Redis would watch it).
        const ours = await jin.call('WATCH', step.key);
        log.add(`@${node} WATCH ${JSON.stringify(step.key)}  ->  ${reply(ours)} (another slot than the keys watched)`);
        if (!isError(ours, 'CROSSSLOT')) return log.fail('WATCH in a second slot did not answer CROSSSLOT');
        continue;
      }
      const [r, ours] = await Promise.all([redis.call('WATCH', step.key), jin.call('WATCH', step.key)]);
      log.add(`@${node} WATCH ${JSON.stringify(step.key)}  ->  ${reply(r)}`);
      if (canon(r) !== canon(ours)) return log.fail(`redis ${canon(r)} vs ours ${canon(ours)}`);
      watching = { node, slot };
      continue;
    }

    if (step.kind === 'cmd') {
      const node = step.node ?? 0;
      const jin = env.jin[protocol][node]!;
      const command = resolve(step.t, t0s, i++);
      const name = command[0]!.toLowerCase();
      const keys = await keysOf(env, command, true);
      if (keys.length > 1 && oneSlotOf(keys) === undefined) {
        const clustered = await clusterRef.callBytes(...command);
        if (isError(clustered.reply, 'CROSSSLOT') && !SPLIT.has(name)) {
          const ours = await jin.callBytes(...command);
          log.add(`@${node} ${show(command)}  ->  ${reply(ours.reply)} (keys in several slots; Redis Cluster: ${reply(clustered.reply)})`);
          const why = difference(command, clustered, ours.bytes);
          if (why !== null) return log.fail(`against Redis Cluster: ${why}`);
          continue;
        }
      }
      if (name === 'dbsize' || name === 'info') await reclaim(env);
      const [r, ours] = await Promise.all([redis.callBytes(...command), jin.callBytes(...command)]);
      log.add(`@${node} ${show(command)}  ->  ${reply(r.reply)}`);
      const why = await compare(command, r, ours, jin);
      if (why !== null) return log.fail(why);
      continue;
    }

    // MULTI ... EXEC on the watching connection, or the step's node.
    const node = nodeOf(step);
    const jin = env.jin[protocol][node]!;
    const body = step.body.map((t) => resolve(t, t0s, i++));
    const bodyKeys = await Promise.all(body.map((b) => (NOT_QUEUED.has(b[0]!.toLowerCase()) ? [] : keysOf(env, b))));
    const slots = new Set(bodyKeys.flat().map(slotOf));
    const crossing = slots.size > 1;
    const watchedElsewhere = !crossing && watching !== null && slots.size === 1 && !slots.has(watching.slot);
    // Over several slots the reference is Redis Cluster: it queues each command, refusing one whose
    // own keys span slots, and answers CROSSSLOT to EXEC when the queued ones do.
    const ref = crossing ? clusterRef : redis;
    log.add(`@${node} MULTI${crossing ? ' (keys in several slots: against Redis Cluster)' : watchedElsewhere ? ' (in another slot than the watched keys)' : ''}`);
    const [m, mo] = await Promise.all([watchedElsewhere ? Promise.resolve(null) : ref.call('MULTI'), jin.call('MULTI')]);
    if (m !== null && canon(m) !== canon(mo)) return log.fail(`MULTI: redis ${canon(m)} vs ours ${canon(mo)}`);
    for (const command of body) {
      if (watchedElsewhere) {
        const ours = await jin.callBytes(...command);
        log.add(`  ${show(command)}  ->  ${reply(ours.reply)}`);
        continue;
      }
      const [r, ours] = await Promise.all([ref.callBytes(...command), jin.callBytes(...command)]);
      log.add(`  ${show(command)}  ->  ${reply(r.reply)}`);
      const why = difference(command, r, ours.bytes);
      if (why !== null) return log.fail(`queueing: ${why}`);
    }
    if (watchedElsewhere) {
      // EXCLUSIONS: the transaction is not run; redis-server forgets its watches as EXEC would.
      const [ours] = await Promise.all([jin.call('EXEC'), redis.call('UNWATCH')]);
      log.add(`EXEC  ->  ${reply(ours)}`);
      watching = null;
      if (!isError(ours, 'CROSSSLOT') && !isError(ours, 'EXECABORT')) return log.fail('a transaction in another slot than its watched keys ran');
      continue;
    }
    const [exec, ours] = await Promise.all([ref.callBytes('EXEC'), jin.callBytes('EXEC')]);
    if (crossing) await redis.call('UNWATCH');
    watching = null;
    log.add(`EXEC  ->  ${canon(exec.reply).slice(0, 400)}`);
    if (ours.bytes.equals(exec.bytes)) continue;
    // Command by command, so normalised replies (PTTL...) are compared by their rules.
    const theirs = elements(exec.bytes);
    const mine = elements(ours.bytes);
    if (theirs === null || mine === null || theirs.length !== mine.length || theirs.length !== body.length) return log.fail(`EXEC: redis ${canon(exec.reply).slice(0, 300)} vs ours ${canon(ours.reply).slice(0, 300)}`);
    for (const [k, command] of body.entries()) {
      const why = await compare(command, theirs[k]!, mine[k]!, jin);
      if (why !== null) return log.fail(`in EXEC, ${show(command)}: ${why}`);
    }
  }

  const state = await stateDifference(env, protocol);
  return state === null ? null : log.fail(`after the sequence: ${state}`);
}

/**
 * The keyspace after a sequence, read on every side: DBSIZE and KEYS from a node, and every
 * node's own copy of every key (owner and backup must both hold redis-server's entry; the third
 * node holds nothing live).
 */
async function stateDifference(env: Env, protocol: 2 | 3): Promise<string | null> {
  const jin = env.jin[protocol][0]!;
  // DBSIZE equal and every key alike below (those of the key spaces, and any other a command
  // made, a value taken for a key by a malformed one): the same keys
  const live = await reclaim(env);
  const [dbsize, ours] = await Promise.all([env.control.call('DBSIZE'), jin.call('DBSIZE')]);
  if (canon(dbsize) !== canon(ours)) return `DBSIZE: redis ${canon(dbsize)} vs ours ${canon(ours)}`;
  const now = Date.now();
  for (const key of new Set([...EVERY_KEY, ...live])) {
    const [type, copies] = await Promise.all([
      env.control.call('TYPE', key),
      Promise.all(env.nodeUrls.map((url) => callPeer(RecordMessage, url, { group: GROUP, key }))),
    ]);
    const held = copies.flatMap((a) => (a.kind === 'record' && a.record.value !== null && (a.record.expiresAt === 0 || a.record.expiresAt > now) ? [a.record] : []));
    const kind = text(type);
    if (kind === 'none') {
      if (held.length > 0) return `${JSON.stringify(key)}: redis has none, ${held.length} node(s) hold a live copy`;
      continue;
    }
    if (held.length !== 2) return `${JSON.stringify(key)} (${kind}): ${held.length} live copies, not 2 (owner and backup)`;
    const [a, b] = held as [(typeof held)[0], (typeof held)[0]];
    if (a.version !== b.version || a.expiresAt !== b.expiresAt || (a.type ?? STRING) !== (b.type ?? STRING) || !a.value!.equals(b.value!)) {
      return `${JSON.stringify(key)}: owner and backup differ (versions ${a.version} and ${b.version})`;
    }
    const pexpiretime = await env.control.call('PEXPIRETIME', key);
    const at = pexpiretime.type === 'integer' ? pexpiretime.value : NaN;
    if ((at === -1) !== (a.expiresAt === 0) || (at > 0 && Math.abs(at - a.expiresAt) > 1000)) return `${JSON.stringify(key)}: expires at ${a.expiresAt}, redis ${at}`;
    if (kind === 'string') {
      const v = await env.control.call('GET', key);
      if ((a.type ?? STRING) !== STRING || v.type !== 'bulk' || !v.value.equals(a.value!)) return `${JSON.stringify(key)}: the copies hold ${JSON.stringify(a.value!.toString('latin1').slice(0, 80))}, redis ${canon(v).slice(0, 80)}`;
    } else if (kind === 'hash') {
      const all = await env.control.call('HGETALL', key);
      const theirs = all.type === 'array' ? all.items.map(canon) : [];
      const pairs: string[] = [];
      for (let j = 0; j + 1 < theirs.length; j += 2) pairs.push(`${theirs[j]}=${theirs[j + 1]}`);
      const mine = a.type === HASH ? [...decodeHash(a.value!)].map(([f, v]) => `${JSON.stringify(f)}=${JSON.stringify(v.toString('latin1'))}`) : ['(not a hash)'];
      if (pairs.sort().join(' ') !== mine.sort().join(' ')) return `${JSON.stringify(key)}: the copies hold the hash {${mine.join(' ').slice(0, 200)}}, redis {${pairs.join(' ').slice(0, 200)}}`;
    } else {
      return `${JSON.stringify(key)}: redis has a ${kind}`;
    }
  }
  return null;
}

// ---------------------------------------------------------------- the test

describe('jincache through a 3-node cluster against redis-server 7 (oracle)', { timeout: EXPLORE ? 3_600_000 : 120_000 }, () => {
  let redis: RedisServer;
  let redisCluster: RedisServer;
  let cluster: TestCluster;
  const env = {} as Env;
  const started = Date.now();
  const found: { family: string; transcript: string }[] = [];

  before(async () => {
    const ports = await Promise.all(Array.from({ length: NODES }, () => freePort()));
    // each assigned as it comes up, so that after() stops whatever started if another failed
    await Promise.all([
      startRedisServer().then((s) => (redis = s)),
      startRedisServer({ cluster: true }).then((s) => (redisCluster = s)),
      startCluster({ nodes: NODES, config: { replication: { factor: 2 }, ...(MIRRORS ? {} : { load: { enabled: false } }) }, nodeArgs: (i) => ['--resp-port', String(ports[i])] }).then((c) => (cluster = c)),
    ]);
    const connect2and3 = async (port: number): Promise<Record23<RespClient>> => {
      const [c2, c3] = await Promise.all([RespClient.connect(port), RespClient.connect(port)]);
      await c3.hello(3);
      return { 2: c2, 3: c3 };
    };
    env.redis = await connect2and3(redis.port);
    env.cluster = await connect2and3(redisCluster.port);
    const perNode = await Promise.all(ports.map(connect2and3));
    env.jin = { 2: perNode.map((p) => p[2]), 3: perNode.map((p) => p[3]) };
    env.control = await RespClient.connect(redis.port);
    env.nodeUrls = cluster.nodes.map((n) => n.url);
    // the one-node Redis Cluster serves every slot
    assert.equal(canon(await env.cluster[2].call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383')), '+OK');
    for (let n = 0; ; n++) {
      const info = text(await env.cluster[2].call('CLUSTER', 'INFO')) ?? '';
      if (info.includes('cluster_state:ok')) break;
      assert.ok(n < 200, 'the one-node Redis Cluster did not come up');
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  after(async () => {
    for (const cl of [env.redis?.[2], env.redis?.[3], env.cluster?.[2], env.cluster?.[3], ...(env.jin?.[2] ?? []), ...(env.jin?.[3] ?? []), env.control]) cl?.close();
    await Promise.all([redis?.stop(), redisCluster?.stop(), cluster?.stop()]);
    console.log(`oracle through the cluster: ${Date.now() - started} ms`);
    if (!EXPLORE) assert.ok(Date.now() - started < 90_000, `the cluster oracle took ${Date.now() - started} ms (bound: 90 s)`);
  });

  it('runs against Redis 7, a Redis Cluster node and three jincache nodes', () => {
    assert.match(redis.version, /^7\./);
    assert.equal(slotOf(''), 0);
    assert.equal(slotOf(`{${SLOT0_TAG}}x`), 0, 'ONE_SLOT_KEYS share the empty key\'s slot');
    assert.equal(env.jin[2].length, 3);
  });

  it('answers CROSSSLOT for multi-key commands over several slots, as Redis Cluster does', async () => {
    for (const protocol of [2, 3] as const) {
      for (const command of [['MSETNX', 'k0', '1', 'k2', '2'], ['RENAME', 'k0', 'k2'], ['COPY', 'k0', 'k2'], ['RENAMENX', '', 'k2']]) {
        for (const jin of env.jin[protocol]) {
          const [theirs, ours] = await Promise.all([env.cluster[protocol].callBytes(...command), jin.callBytes(...command)]);
          assert.ok(isError(theirs.reply, 'CROSSSLOT'), show(command));
          assert.deepEqual(ours.bytes, theirs.bytes, `${show(command)}: ${canon(ours.reply)}`);
        }
      }
      // and in a transaction: one command over slots is refused as it is queued
      const jin = env.jin[protocol][1]!;
      assert.equal(canon(await jin.call('MULTI')), '+OK');
      assert.ok(isError(await jin.call('MSETNX', 'k0', '1', 'k2', '2'), 'CROSSSLOT'));
      assert.ok(isError(await jin.call('EXEC'), 'EXECABORT'));
    }
  });

  for (const { name, arb, share } of clusterFamilies(EXPLORE ? 60 : 30)) {
    it(`${name}: every reply is Redis's, through any node, in RESP2 and RESP3`, { timeout: EXPLORE ? 3_600_000 : 90_000 }, async () => {
      const property = fc.asyncProperty(arb, fc.constantFrom<2 | 3>(2, 3), async (steps, protocol) => {
        const why = await runSequence(env, steps, protocol);
        if (why === null) return;
        if (EXPLORE) found.push({ family: name, transcript: why });
        else throw new Error(`\n${why}`);
      });
      await fc.assert(property, { seed: SEED, numRuns: 2 * Math.ceil(RUNS * share) });
      if (EXPLORE) {
        const mine = found.filter((f) => f.family === name);
        // One example per kind of difference: the command that differed and the shape of its replies.
        const groups = new Map<string, string[]>();
        for (const f of mine) {
          const last = f.transcript.split('\n').slice(-2).join(' ').replace(/"[^"]*"/g, '"…"').replace(/\d+/g, 'N');
          const k = last.slice(0, 160);
          groups.set(k, [...(groups.get(k) ?? []), f.transcript]);
        }
        for (const [k, ts] of groups) {
          const shortest = ts.sort((x, y) => x.length - y.length)[0]!;
          console.log(`\n=== ${name}: ${ts.length}x ${k}\n${shortest.split('\n').slice(-12).join('\n')}`);
        }
        assert.equal(mine.length, 0, `${mine.length} sequences differ in ${groups.size} ways (printed above)`);
      }
    });
  }
});
