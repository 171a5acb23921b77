/**
 * Random Redis command sequences and how their replies are compared: the generators and the
 * normalisations the two oracles share. src/cache/engine/oracle.test.ts replays them against the
 * engine alone (in process); test/integration/redis-oracle.test.ts through a 3-node cluster's RESP
 * ports. Both compare every reply with what redis-server 7 sent, byte for byte, except for the
 * NORMALISED commands below.
 *
 * Time: both sides read the machine's clock (Date.now(), Redis's mstime()), so TTLs agree to a
 * few ms, and TTL-like replies are compared with a tolerance. Comparisons between expiry times
 * (EXPIRE ... GT/LT) must not depend on those ms: every expiry a sequence sets is placed on its
 * own 20-second step (relative ones on even steps, absolute ones 10 s off), so two of them are
 * never closer than 10 s, whatever the few ms between the servers.
 *
 * Keys: a KeySpace names the few keys a family's commands meet on. ENGINE_KEYS is the engine
 * oracle's (any slots: the engine runs every command on one map); the cluster oracle also uses
 * ONE_SLOT_KEYS, all in one hash slot, for the families whose commands take several keys.
 *
 * EXCLUSIONS: differences known and left out of the generators or the comparison, with the reason.
 *  - COPY ... DB 1..15: jincache has one database and answers as a Redis Cluster node
 *    ("Copying to another database is not allowed in cluster mode"); a plain redis-server copies.
 *  - Error texts quoting a non-UTF-8 argument (EXPIRE's "Unsupported option", unknown commands):
 *    replies are JavaScript strings written as UTF-8, Redis sends the raw bytes.
 *  - Expiry instants beyond 2^53 ms (year 287396) are kept as doubles (as the store keeps them):
 *    TTL/PTTL/EXPIRETIME of such a key differ in the low digits.
 *  - HGETALL/HKEYS/HVALS/HSCAN order of a hash Redis keeps as a hash table (over 512 fields or a
 *    field or value over 64 bytes): Redis's order depends on its per-process hash seed; jincache
 *    keeps insertion order. When OBJECT ENCODING says hashtable, those replies are compared as
 *    multisets, and an HSCAN cursor other than 0 (or a walk Redis did not finish in one reply)
 *    is not compared: Redis's cursor is a bucket position in its table.
 *  - SETRANGE/APPEND beyond max_value_bytes but within Redis's 512 MB: the engine oracle runs with
 *    max_value_bytes at 512 MB, so both refuse alike; smaller limits refuse earlier by design.
 *  - HRANDFIELD with a negative count below -2^20 (no WITHVALUES): refused (Redis would build a
 *    reply of that many fields).
 */
import fc from 'fast-check';
import { decodeReply, replyDifference, showReply, type Reply as WireReply } from './redis-oracle.ts';

// ---------------------------------------------------------------- templates

/**
 * A part of a command: text, or an expiry amount resolved when the sequence runs (step `r` of
 * the sequence's 20-second grid, `i` the command's position, so no two commands share a step).
 */
export type Part = string | { readonly kind: 'rel' | 'abs' | 'past'; readonly r: number; readonly ms: boolean };
export type Template = readonly Part[];

/**
 * One step of a sequence. `node`, when the sequence was made for a cluster (SequenceOptions.nodes),
 * is the node the step is sent to (a MULTI block and the WATCHes before it keep one connection).
 */
export type Step =
  | { readonly kind: 'cmd'; readonly t: Template; readonly node?: number }
  | { readonly kind: 'multi'; readonly body: readonly Template[]; readonly node?: number }
  | { readonly kind: 'watch'; readonly key: string; readonly node?: number };

const GRID = 256;

/** The arguments of `t` for the command at position `i` of a sequence that started at `t0s` (Unix seconds). */
export function resolve(t: Template, t0s: number, i: number): string[] {
  return t.map((p) => {
    if (typeof p === 'string') return p;
    let seconds: number;
    if (p.kind === 'rel') seconds = (p.r * GRID + i) * 20;
    else if (p.kind === 'abs') seconds = t0s + (p.r * GRID + i) * 20 + 10;
    else seconds = t0s - p.r;
    return String(p.ms ? seconds * 1000 : seconds);
  });
}

// ---------------------------------------------------------------- keys

/** The keys a family's commands meet on. */
export interface KeySpace {
  /** The two keys most commands use (weights 6 and 3), so they meet each other's data. */
  readonly hot: readonly [string, string];
  /** Every ordinary key (the hot ones included), drawn uniformly for the rest. */
  readonly keys: readonly string[];
  /** Keys Redis takes that a stricter server may not: the empty key, bytes that are not UTF-8. */
  readonly edge: readonly string[];
}

/** The engine oracle's keys: hash slots do not matter there. */
export const ENGINE_KEYS: KeySpace = { hot: ['k0', 'k1'], keys: ['k0', 'k1', 'k2', '{t}a', '{t}b'], edge: ['', '\xff\x00\x80'] };

/** A hash tag whose slot is the empty key's: CRC16("1bz") mod 16384 = 0 = CRC16(""). */
export const SLOT0_TAG = '1bz';

/**
 * Keys in one hash slot (0), the empty key included: multi-key commands, RENAME, COPY and
 * transactions work on them in a cluster as on one server.
 */
export const ONE_SLOT_KEYS: KeySpace = {
  hot: [`{${SLOT0_TAG}}k0`, `{${SLOT0_TAG}}k1`],
  keys: [`{${SLOT0_TAG}}k0`, `{${SLOT0_TAG}}k1`, `{${SLOT0_TAG}}k2`, `{${SLOT0_TAG}}a`, `x{${SLOT0_TAG}}b`],
  edge: ['', `{${SLOT0_TAG}}\xff\x00\x80`],
};

/** Every key of a key space: what a test reads back or deletes. */
export function allKeys(ks: KeySpace): string[] {
  return [...new Set([...ks.keys, ...ks.edge])];
}

// ---------------------------------------------------------------- arguments (no keys)

const latin1 = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a).toString('latin1'));

export const value = fc.oneof(
  { arbitrary: fc.constantFrom('v', '', '42', '-7', '3.5', 'hello world', '9223372036854775807', '-9223372036854775808', '1e3', ' 5', '0x10', 'inf', '0', '007', '10.50'), weight: 3 },
  { arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 12 }), weight: 1 },
  { arbitrary: latin1(8), weight: 1 },
);
export const intArg = fc.oneof(
  { arbitrary: fc.integer({ min: -1000, max: 1000 }).map(String), weight: 3 },
  {
    arbitrary: fc.constantFrom('0', '-1', 'abc', '1.5', '', '007', '+5', ' 5', '-0', '9223372036854775807', '-9223372036854775808', '9223372036854775808', '4611686018427387904', '99999999999999999999'),
    weight: 2,
  },
);
export const floatArg = fc.oneof(
  { arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e30, max: 1e30 }).map(String), weight: 2 },
  { arbitrary: fc.integer({ min: -1000, max: 1000 }).map(String), weight: 1 },
  {
    arbitrary: fc.constantFrom(
      '0.1', '-0.1', '1e20', '-1e20', '1e-20', '1.5', '-0', '0', '0x10', '0x1p-1', '0X1P+1', '0x.8', '0x', '0xg', 'inf', '-inf', 'Infinity',
      'infinit', 'nan', '-nan', '1e4000', '-1e4000', '1e-5000', '3.0e-4950', '.5', '5.', '.', '1e', '1e+', ' 1', '1 ', '+.5', '+1', '1.7976931348623157e308',
      '123456789012345678901234567890', '0.000000000000000000001', '4.9406564584124654e-324', '1.18973149535723176502e+4932', '1.2e+4932', '3.6e-4951', '1.8e-4951',
      '1\x00x', '', 'abc', '9223372036854775807', '0.30000000000000004', '2.5e-17', '7.5e-17',
    ),
    weight: 3,
  },
);

export const named = (name: string) => fc.constantFrom(name.toUpperCase(), name.toLowerCase());
export type ArgArb = fc.Arbitrary<Part | readonly Part[]>;
export const cmd = (name: string, ...rest: ArgArb[]): fc.Arbitrary<Template> =>
  fc.tuple(named(name), ...rest).map(([n, ...r]) => [n, ...r.flatMap((x) => (Array.isArray(x) ? x : [x as Part]))]);
export const c = (s: string) => fc.constant(s);

export const rel = (ms: boolean) => fc.integer({ min: 0, max: 40 }).map((r): Part => ({ kind: 'rel', r, ms }));
export const abs = (ms: boolean) => fc.integer({ min: 0, max: 40 }).map((r): Part => ({ kind: 'abs', r, ms }));
export const past = (ms: boolean) => fc.integer({ min: 1, max: 100_000 }).map((r): Part => ({ kind: 'past', r, ms }));
export const badExpiry = fc.constantFrom('0', '-5', 'abc', '', '1.5', '9223372036854775807', '9223372036854775', '-9223372036854775808', '99999999999999999999');

/** SET's options, well (mostly) and badly combined. */
export const setOptions = fc.oneof(
  { arbitrary: fc.constant<Part[]>([]), weight: 1 },
  {
    arbitrary: fc
      .tuple(
        fc.constantFrom<Part[]>([], [], ['NX'], ['XX'], ['nx'], ['GET'], ['NX', 'GET'], ['get', 'XX']),
        fc.oneof(
          fc.constant<Part[]>([]),
          fc.tuple(fc.constantFrom('EX', 'ex'), rel(false)).map((t): Part[] => [...t]),
          fc.tuple(fc.constantFrom('PX', 'px'), rel(true)).map((t): Part[] => [...t]),
          fc.tuple(fc.constant('EXAT'), fc.oneof(abs(false), past(false))).map((t): Part[] => [...t]),
          fc.tuple(fc.constant('PXAT'), fc.oneof(abs(true), past(true))).map((t): Part[] => [...t]),
          fc.constant<Part[]>(['KEEPTTL']),
          fc.constant<Part[]>(['keepttl']),
        ),
        fc.boolean(),
      )
      .map(([a, b, swap]) => (swap ? [...b, ...a] : [...a, ...b])),
    weight: 5,
  },
  { arbitrary: fc.tuple(fc.constantFrom('EX', 'PX', 'EXAT', 'PXAT'), badExpiry).map((t): Part[] => [...t]), weight: 1 },
  {
    arbitrary: fc.constantFrom<Part[]>(['NX', 'XX'], ['EX'], ['BOGUS'], ['KEEPTTL', 'EX', '10'], ['EX', '10', 'PX', '10'], ['EX', '10', 'EX', '20'], ['PERSIST'], ['NX', 'NX'], ['nx\x00junk'], ['GET', 'GET']),
    weight: 1,
  },
);

export const getexOptions = fc.oneof(
  fc.constant<Part[]>([]),
  fc.tuple(fc.constantFrom('EX', 'ex'), rel(false)).map((t): Part[] => [...t]),
  fc.tuple(fc.constant('PX'), rel(true)).map((t): Part[] => [...t]),
  fc.tuple(fc.constant('EXAT'), fc.oneof(abs(false), past(false))).map((t): Part[] => [...t]),
  fc.tuple(fc.constant('PXAT'), fc.oneof(abs(true), past(true))).map((t): Part[] => [...t]),
  fc.constant<Part[]>(['PERSIST']),
  fc.tuple(fc.constantFrom('EX', 'PXAT'), badExpiry).map((t): Part[] => [...t]),
  fc.constantFrom<Part[]>(['NX'], ['KEEPTTL'], ['GET'], ['PERSIST', 'EX', '10'], ['EX'], ['persist', 'persist']),
);

export const expireFlags = fc.oneof(
  { arbitrary: fc.constant<Part[]>([]), weight: 3 },
  { arbitrary: fc.constantFrom<Part[]>(['NX'], ['XX'], ['GT'], ['LT'], ['gt'], ['xx', 'gt'], ['XX', 'LT']), weight: 3 },
  { arbitrary: fc.constantFrom<Part[]>(['NX', 'XX'], ['GT', 'LT'], ['NX', 'GT'], ['lt', 'nx'], ['BOGUS'], ['NX', 'BOGUS'], ['BOGUS', 'GT', 'LT']), weight: 1 },
);

export const FIELDS = ['f0', 'f1', 'f2', 'f3', '', '\x00x', 'a field', '\xff'];
export const field = fc.constantFrom(...FIELDS);
export const fields = fc.array(field, { minLength: 1, maxLength: 4 });
export const smallValue = value.filter((v) => v.length <= 64);
export const pairs = (v: fc.Arbitrary<string>) => fc.array(fc.tuple(field, v), { minLength: 1, maxLength: 4 }).map((ps) => ps.flat());
// No large negative count that is in range: Redis would build a reply of that many fields.
export const hrandCount = fc.constantFrom('0', '1', '2', '3', '4', '10', '-1', '-2', '-5', 'abc', '-9223372036854775808', '9223372036854775807', '4611686018427387904');
export const hrandCountWithValues = fc.constantFrom('0', '1', '2', '3', '10', '-1', '-2', '-5', 'x', '-9223372036854775808', '9223372036854775807', '4611686018427387904', '4611686018427387903', '-4611686018427387904');
export const scanCursor = fc.constantFrom('0', '0', '0', '1', '', '+0', '-1', ' 1', 'abc', '18446744073709551615', '18446744073709551616', '5\x00x');
export const scanOptions = fc.oneof(
  fc.constant<Part[]>([]),
  fc.tuple(fc.constantFrom('COUNT', 'count'), fc.constantFrom('1', '10', '100', '0', '-1', 'x')).map((t): Part[] => [...t]),
  fc.tuple(fc.constantFrom('MATCH', 'match'), fc.constantFrom('*', 'f*', 'f?', '[a-f]*', '\\f*', '*1', '[^f]*', '[', 'f[0-1]', '', '?', '*\\', 'a*d', '[z-a]*', '**', '[a-\xff]', '[\x80-\x7f]')).map((t): Part[] => [...t]),
  fc.constantFrom<Part[]>(['MATCH', 'f*', 'COUNT', '5'], ['COUNT'], ['TYPE', 'string'], ['BOGUS', '1'], ['MATCH']),
);

/** Over 512 fields or values over 64 bytes: Redis's hash table encoding. */
export const bigValue = fc.oneof(smallValue, fc.string({ minLength: 65, maxLength: 80, unit: 'binary-ascii' }));
export const manyPairs = fc.integer({ min: 0, max: 10_000 }).chain((base) =>
  fc.integer({ min: 1, max: 200 }).map((n) => Array.from({ length: n }, (_, i) => [`m${base + i}`, String(i)]).flat()),
);

// ---------------------------------------------------------------- the families, over a key space

export interface SequenceOptions {
  /** Steps that are MULTI ... EXEC blocks and WATCHes. Default false. */
  transactions?: boolean;
  /** Commands run first (a hash to start from, say). */
  prefix?: fc.Arbitrary<Template[]>;
  /** A cluster of this many nodes: every step names the node it is sent to. Default none. */
  nodes?: number;
  /** Most steps (the prefix aside). Default 40. */
  maxLength?: number;
}

/** Every generator that names a key, over the keys of `ks`. */
export function generators(ks: KeySpace) {
  const [k0, k1] = ks.hot;
  // Most commands on k0 and k1, so they meet each other's data; the rest spread over the others.
  const key = fc.oneof(
    { arbitrary: fc.constant(k0), weight: 6 },
    { arbitrary: fc.constant(k1), weight: 3 },
    { arbitrary: fc.constantFrom(...ks.keys), weight: 2 },
    { arbitrary: fc.constantFrom(...ks.edge), weight: 1 },
  );
  const keys = fc.array(key, { minLength: 1, maxLength: 4 });
  /** Any argument, for arity and ordering-of-checks noise. */
  const anyArg = fc.oneof(key, value, intArg, fc.constantFrom('NX', 'XX', 'GT', 'LT', 'EX', 'PX', 'GET', 'KEEPTTL', 'PERSIST', 'REPLACE', 'WITHVALUES', 'COUNT', 'MATCH'));
  /** The command with 0-4 random arguments: arity errors and odd argument lists. */
  const noise = (name: string) => cmd(name, fc.array(anyArg, { maxLength: 4 }));
  /** One of the commands with random arguments: weighs as much as a couple of ordinary commands. */
  const noiseOf = (names: readonly string[]) => fc.oneof(...names.map(noise));
  const expireAmount = (name: string) => {
    const ms = name.startsWith('p');
    const at = name.endsWith('at');
    return fc.oneof({ arbitrary: at ? fc.oneof(abs(ms), past(ms)) : rel(ms), weight: 4 }, { arbitrary: fc.constantFrom('0', '-5', '-1'), weight: 1 }, { arbitrary: intArg, weight: 1 });
  };
  const expireCmd = (name: string) => cmd(name, key, expireAmount(name), expireFlags);

  const STRINGS: fc.Arbitrary<Template>[] = [
    cmd('get', key),
    cmd('set', key, value, setOptions),
    cmd('setnx', key, value),
    cmd('setex', key, fc.oneof(rel(false), badExpiry), value),
    cmd('psetex', key, fc.oneof(rel(true), badExpiry), value),
    cmd('getset', key, value),
    cmd('getdel', key),
    cmd('getex', key, getexOptions),
    cmd('mget', keys),
    cmd('mset', fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 3 }).map((ps) => ps.flat())),
    cmd('msetnx', fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 3 }).map((ps) => ps.flat())),
    cmd('append', key, value),
    cmd('strlen', key),
    cmd('getrange', key, intArg, intArg),
    cmd('setrange', key, fc.oneof(fc.integer({ min: 0, max: 20 }).map(String), intArg, fc.constantFrom('536870912', '536870913')), value),
    cmd('type', key),
    cmd('del', keys),
    noiseOf(['get', 'set', 'setnx', 'setex', 'getset', 'getdel', 'getex', 'mget', 'mset', 'msetnx', 'append', 'strlen', 'getrange', 'setrange']),
  ];

  const COUNTERS: fc.Arbitrary<Template>[] = [
    cmd('incr', key),
    cmd('decr', key),
    cmd('incrby', key, intArg),
    cmd('decrby', key, intArg),
    cmd('incrbyfloat', key, floatArg),
    cmd('get', key),
    cmd('set', key, fc.oneof(value, intArg, floatArg)),
    cmd('append', key, fc.constantFrom('0', '1', '.5', 'e3', 'x')),
    cmd('hset', key, c('f'), value),
    cmd('pexpire', key, rel(true)),
    cmd('pttl', key),
    noiseOf(['incr', 'decr', 'incrby', 'decrby', 'incrbyfloat']),
  ];

  const EXPIRY: fc.Arbitrary<Template>[] = [
    cmd('set', key, value, setOptions),
    cmd('set', key, value, setOptions),
    cmd('set', key, value, c('KEEPTTL')),
    cmd('set', key, value),
    cmd('hset', key, c('f'), value),
    cmd('getex', key, getexOptions),
    ...['expire', 'pexpire', 'expireat', 'pexpireat'].map(expireCmd),
    ...['ttl', 'pttl', 'expiretime', 'pexpiretime', 'persist', 'exists', 'get', 'type'].map((n) => cmd(n, key)),
    cmd('incr', key),
    cmd('append', key, value),
    cmd('setrange', key, c('1'), value),
    noiseOf(['expire', 'pexpire', 'expireat', 'pexpireat', 'ttl', 'pttl', 'expiretime', 'pexpiretime', 'persist']),
  ];

  const KEYSPACE: fc.Arbitrary<Template>[] = [
    cmd('set', key, value),
    cmd('set', key, value, c('EX'), rel(false)),
    cmd('hset', key, fc.constantFrom('a', 'b'), value),
    cmd('get', key),
    cmd('hgetall', key),
    cmd('type', key),
    cmd('del', keys),
    cmd('unlink', keys),
    cmd('touch', keys),
    cmd('exists', keys),
    cmd('rename', key, key),
    cmd('renamenx', key, key),
    cmd('copy', key, key, fc.constantFrom<Part[]>([], [], ['REPLACE'], ['replace'], ['DB', '0'], ['DB', '0', 'REPLACE'], ['DB', '16'], ['DB', '-1'], ['DB', 'x'], ['DB'], ['BOGUS'], ['REPLACE', 'REPLACE'], ['DB', '99999999999'])),
    cmd('pttl', key),
    cmd('expiretime', key),
    noiseOf(['type', 'del', 'unlink', 'touch', 'exists', 'rename', 'renamenx', 'copy']),
  ];

  const HASHES: fc.Arbitrary<Template>[] = [
    cmd('hset', key, pairs(smallValue)),
    cmd('hmset', key, pairs(smallValue)),
    cmd('hsetnx', key, field, smallValue),
    cmd('hget', key, field),
    cmd('hmget', key, fields),
    cmd('hgetall', key),
    cmd('hdel', key, fields),
    cmd('hexists', key, field),
    cmd('hlen', key),
    cmd('hkeys', key),
    cmd('hvals', key),
    cmd('hstrlen', key, field),
    cmd('hincrby', key, field, intArg),
    cmd('hincrbyfloat', key, field, floatArg),
    cmd('hscan', key, scanCursor, scanOptions),
    cmd('hscan', key, c('0'), c('MATCH'), fc.constantFrom('f*', '**', '[a-\xff]', '[\x80-\x7f]', '?', '*0', '[^f]?', '\\xff')),
    cmd('hrandfield', key),
    cmd('hrandfield', key, hrandCount),
    cmd('hrandfield', key, hrandCountWithValues, fc.constantFrom<Part[]>(['WITHVALUES'], ['withvalues'], ['BOGUS'], ['WITHVALUES', 'x'])),
    cmd('set', key, value),
    cmd('get', key),
    cmd('del', key),
    cmd('expire', key, rel(false)),
    cmd('ttl', key),
    cmd('type', key),
    noiseOf(['hset', 'hmset', 'hsetnx', 'hget', 'hmget', 'hgetall', 'hdel', 'hexists', 'hlen', 'hkeys', 'hvals', 'hstrlen', 'hincrby', 'hincrbyfloat', 'hscan', 'hrandfield']),
  ];

  const LARGE_HASHES: fc.Arbitrary<Template>[] = [
    cmd('hset', key, manyPairs),
    cmd('hset', key, pairs(bigValue)),
    cmd('hdel', key, fields),
    cmd('hgetall', key),
    cmd('hkeys', key),
    cmd('hvals', key),
    cmd('hlen', key),
    cmd('hget', key, field),
    cmd('hscan', key, c('0'), c('COUNT'), c('100000')),
    cmd('hrandfield', key, hrandCountWithValues, c('WITHVALUES')),
    cmd('hincrby', key, field, intArg),
  ];

  /** A mix for transactions: commands that meet each other's data. */
  const MIXED: fc.Arbitrary<Template>[] = [
    cmd('set', key, value, setOptions),
    cmd('get', key),
    cmd('incr', key),
    cmd('incrby', key, intArg),
    cmd('incrbyfloat', key, floatArg),
    cmd('append', key, value),
    cmd('del', keys),
    cmd('hset', key, pairs(smallValue)),
    cmd('hget', key, field),
    cmd('hgetall', key),
    cmd('hincrby', key, field, intArg),
    cmd('hdel', key, fields),
    cmd('rename', key, key),
    cmd('expire', key, rel(false), expireFlags),
    cmd('pttl', key),
    cmd('exists', keys),
    cmd('mset', fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 3 }).map((ps) => ps.flat())),
    noise('incr'),
    noise('hset'),
    fc.constantFrom<Template>(['NOSUCHCOMMAND', k0], ['GET'], ['incrby', k0]),
    noise('nosuchcommand'),
  ];

  function sequence(commands: fc.Arbitrary<Template>[], opts: SequenceOptions = {}): fc.Arbitrary<Step[]> {
    const node = opts.nodes === undefined ? fc.constant(undefined) : fc.nat({ max: opts.nodes - 1 });
    const at = <S extends Step>(arb: fc.Arbitrary<S>): fc.Arbitrary<Step> =>
      opts.nodes === undefined ? arb : fc.tuple(arb, node).map(([s, n]): Step => ({ ...s, node: n }));
    const one = at(fc.oneof(...commands).map((t) => ({ kind: 'cmd' as const, t })));
    const step = opts.transactions
      ? fc.oneof(
          { arbitrary: one, weight: 3 },
          { arbitrary: at(fc.array(fc.oneof(...commands), { minLength: 0, maxLength: 5 }).map((body) => ({ kind: 'multi' as const, body }))), weight: 2 },
          { arbitrary: at(key.map((k) => ({ kind: 'watch' as const, key: k }))), weight: 1 },
        )
      : one;
    const body = fc.array(step, { minLength: 1, maxLength: opts.maxLength ?? 40, size: 'max' });
    if (opts.prefix === undefined) return body;
    return fc.tuple(opts.prefix, body, node).map(([p, b, n]) => [...p.map((t): Step => (n === undefined ? { kind: 'cmd', t } : { kind: 'cmd', t, node: n })), ...b]);
  }

  /** A hash at k0 to start from, so hash commands find one (fields from FIELDS, values up to 64 bytes). */
  const hashPrefix = fc.array(fc.tuple(field, smallValue), { minLength: 1, maxLength: 8 }).map((ps): Template[] => [['HSET', k0, ...ps.flat()]]);

  return { key, keys, anyArg, noise, noiseOf, expireCmd, STRINGS, COUNTERS, EXPIRY, KEYSPACE, HASHES, LARGE_HASHES, MIXED, sequence, hashPrefix };
}

/** The families both oracles run: name, sequences, and a share of the runs (1 = all of them). */
export interface Family {
  readonly name: string;
  readonly arb: fc.Arbitrary<Step[]>;
  readonly share: number;
}

/** The command families, each over the key space `keysOf` gives it. */
export function families(keysOf: (family: string) => KeySpace, opts: Pick<SequenceOptions, 'nodes' | 'maxLength'> = {}): Family[] {
  const make = (name: string, pick: (g: ReturnType<typeof generators>) => fc.Arbitrary<Step[]>, share = 1): Family => ({ name, arb: pick(generators(keysOf(name))), share });
  return [
    make('strings', (g) => g.sequence(g.STRINGS, opts)),
    make('counters', (g) => g.sequence(g.COUNTERS, opts)),
    make('expiry', (g) => g.sequence(g.EXPIRY, opts)),
    make('keyspace', (g) => g.sequence(g.KEYSPACE, opts)),
    make('hashes', (g) => g.sequence(g.HASHES, { ...opts, prefix: g.hashPrefix })),
    make('large hashes', (g) => g.sequence(g.LARGE_HASHES, opts), 1 / 3),
    make('transactions', (g) => g.sequence(g.MIXED, { ...opts, transactions: true })),
  ];
}

// ---------------------------------------------------------------- comparing

/** Commands whose replies cannot be equal byte for byte, and how they are compared instead. */
export const NORMALISED: Readonly<Record<string, string>> = {
  ttl: 'within 1 s when both are >= 0 (the harness rule)',
  pttl: 'within 1000 ms when both are >= 0 (the harness rule)',
  expiretime: 'within 1 s when both are >= 0 (relative expiries were set at two moments)',
  pexpiretime: 'within 1000 ms when both are >= 0',
  hrandfield: 'random: the same reply type and length, every element of the same kind; exact when the whole hash is returned',
};
/** Replies whose order is Redis's hash table's when the hash is encoded as one. */
export const UNORDERED = new Set(['hgetall', 'hkeys', 'hvals', 'hscan']);

export function canon(r: WireReply): string {
  return showReply(r);
}

/** The shape of a reply: types and lengths, not values (HRANDFIELD). */
export function shape(r: WireReply): string {
  if (r.type === 'array' || r.type === 'set') return `${r.type}[${r.items.map(shape).join(',')}]`;
  if (r.type === 'map') return `map[${r.entries.map(([k, v]) => `${shape(k)}:${shape(v)}`).join(',')}]`;
  if (r.type === 'error') return canon(r);
  return r.type;
}

/** The elements of a collection reply as sorted text (pairs kept together for maps and HSCAN). */
export function multiset(name: string, r: WireReply): string {
  if (r.type === 'map') return r.entries.map(([k, v]) => `${canon(k)}=${canon(v)}`).sort().join(' ');
  if (name === 'hscan' && r.type === 'array' && r.items.length === 2 && r.items[1]!.type === 'array') {
    const items = r.items[1].items;
    const out: string[] = [];
    for (let i = 0; i + 1 < items.length; i += 2) out.push(`${canon(items[i]!)}=${canon(items[i + 1]!)}`);
    return `${canon(r.items[0]!)} ${out.sort().join(' ')}`;
  }
  if (r.type === 'array') return r.items.map(canon).sort().join(' ');
  return canon(r);
}

/**
 * Why the replies differ, or null. `encoding` is what redis-server's OBJECT ENCODING said of the
 * command's key (asked only when the bytes differ for an UNORDERED command).
 */
export function difference(command: readonly string[], redis: { reply: WireReply; bytes: Buffer }, ours: Buffer, encoding: string | null = null): string | null {
  if (ours.equals(redis.bytes)) return null;
  const decoded = decodeReply(ours);
  if (decoded === null) return `our reply does not decode: ${JSON.stringify(ours.toString('latin1'))}`;
  const mine = decoded.reply;
  const name = command[0]!.toLowerCase();
  const a = redis.reply;
  const plain = `redis ${canon(a).slice(0, 300)} vs ours ${canon(mine).slice(0, 300)}`;
  // Exclusion: an error quoting bytes that are not UTF-8 (Redis sends them raw, the writer UTF-8).
  if (a.type === 'error' && mine.type === 'error' && Buffer.from(a.message, 'latin1').toString('utf8') === Buffer.from(mine.message, 'latin1').toString('utf8')) return null;
  if (TIMES.has(name) && a.type === 'integer' && mine.type === 'integer' && a.value > 2 ** 53 && Math.abs(a.value - mine.value) / a.value < 1e-9) {
    return null; // Exclusion: an expiry instant beyond 2^53 ms, kept as a double
  }
  if (name === 'ttl' || name === 'pttl') return replyDifference(command, a, mine);
  if (name === 'expiretime' || name === 'pexpiretime') {
    if (a.type !== 'integer' || mine.type !== 'integer' || a.value < 0 || mine.value < 0) return plain;
    return Math.abs(a.value - mine.value) <= (name === 'expiretime' ? 1 : 1000) ? null : plain;
  }
  if (name === 'hrandfield') return shape(a) === shape(mine) ? null : `shapes differ: ${plain}`;
  if (encoding === 'hashtable' && UNORDERED.has(name)) {
    // Exclusion: a cursor into Redis's hash table walks it in bucket order, not comparable.
    if (name === 'hscan' && (command[2] !== '0' || a.type !== 'array' || canon(a.items[0]!) !== canon(bulkZero))) return null;
    return multiset(name, a) === multiset(name, mine) ? null : `${plain} (as multisets; Redis's encoding is hashtable)`;
  }
  return plain;
}

/** The elements of an array reply with the exact bytes each came as; null when not an array. */
export function elements(bytes: Buffer): { reply: WireReply; bytes: Buffer }[] | null {
  if (bytes[0] !== 0x2a /* * */) return null;
  const eol = bytes.indexOf('\r\n');
  const n = Number(bytes.toString('latin1', 1, eol));
  const out: { reply: WireReply; bytes: Buffer }[] = [];
  let at = eol + 2;
  for (let i = 0; i < n; i++) {
    const d = decodeReply(bytes, at)!;
    out.push({ reply: d.reply, bytes: bytes.subarray(at, d.next) });
    at = d.next;
  }
  return out;
}

export const TIMES = new Set(['ttl', 'pttl', 'expiretime', 'pexpiretime']);
export const bulkZero: WireReply = { type: 'bulk', value: Buffer.from('0') };

/** A command as readable text: `SET "k0" "v"`. */
export function show(args: readonly string[]): string {
  return args.map((a, i) => (i === 0 ? a : JSON.stringify(a))).join(' ');
}
