// SCAN, KEYS and RANDOMKEY over a keyspace of many partitions, behind the front door: a fake
// DoorKv whose partitions hold sorted keys and page through them by index (the store's cursor is
// its own; what matters here is that the front walks partitions in order, several at once).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LiveConfig } from '../../config/live.ts';
import { parseConfig } from '../../config/schema.ts';
import { globMatch } from '../../core/glob.ts';
import { Metrics } from '../../observe/metrics.ts';
import type { ScanRequest } from '../../peer/messages.ts';
import { OPEN_DEFAULT } from '../auth.ts';
import { FrontDoor, type DoorKv } from '../door.ts';
import { testListener } from '../../../test/helpers/resp-env.ts';
import { execute, type CommandEnv } from './commands.ts';
import { newSession } from './session.ts';
import type { RespReply } from './writer.ts';

class PartitionedKv implements DoorKv {
  /** Each partition's keys, sorted. */
  readonly parts: string[][];
  pages = 0;
  constructor(parts: string[][]) {
    this.parts = parts.map((p) => [...p].sort());
  }
  getLocal: DoorKv['getLocal'] = () => undefined;
  writeLocal: DoorKv['writeLocal'] = () => undefined;
  get = async () => null;
  write = async () => ({ applied: false, existed: false });
  count = async () => this.parts.flat().length;
  partitionCount = () => this.parts.length;
  async scanPage(_g: string, req: Omit<ScanRequest, 'group'>): Promise<{ cursor: number; keys: string[] }> {
    this.pages++;
    const all = this.parts[req.partition]!;
    const next = Math.min(all.length, req.cursor + req.count);
    const keys = all.slice(req.cursor, next).filter((k) => req.match === undefined || globMatch(req.match, k));
    return { cursor: next >= all.length ? 0 : next, keys };
  }
}

function setup(parts: string[][]) {
  const kv = new PartitionedKv(parts);
  const clock = { now: () => 0 };
  const door = new FrontDoor({ kv, live: new LiveConfig(parseConfig({ cache: { group_name: 'g' } })), metrics: new Metrics({ defaultMetrics: false }), clock });
  const env: CommandEnv = { door, group: 'g', clock, info: async () => '', keyspace: async () => ({ keys: 0, expires: 0, avgTtl: 0 }), listener: testListener() };
  const session = newSession(1, OPEN_DEFAULT);
  const run = async (...args: string[]): Promise<RespReply> => execute(env, session, args.map((a) => Buffer.from(a, 'latin1')));
  return { kv, run };
}

const text = (r: RespReply): string => (r.type === 'bulk' && r.value !== null ? r.value.toString('latin1') : `(${r.type})`);
const texts = (r: RespReply): string[] => (r.type === 'array' && r.items !== null ? r.items.map(text) : []);

/** SCAN from 0 to the end: every key seen, and the calls made. */
async function walk(run: (...a: string[]) => Promise<RespReply>, ...opts: string[]): Promise<{ keys: string[]; calls: number }> {
  const keys: string[] = [];
  let cursor = '0';
  let calls = 0;
  do {
    const r = await run('SCAN', cursor, ...opts);
    assert.ok(r.type === 'array' && r.items !== null && r.items.length === 2, JSON.stringify(r));
    const [c, page] = r.items;
    cursor = text(c!);
    keys.push(...texts(page!));
    calls++;
    assert.ok(calls < 10_000);
  } while (cursor !== '0');
  return { keys, calls };
}

const keyspace = fc.integer({ min: 1, max: 300 }).chain((n) => fc.array(fc.array(fc.stringMatching(/^[a-e]{1,3}$/), { maxLength: 40 }).map((ks) => [...new Set(ks)]), { minLength: n, maxLength: n }));

test('a whole SCAN walk returns every key once, whatever COUNT, and KEYS every key', async () => {
  await fc.assert(
    fc.asyncProperty(keyspace, fc.constantFrom('1', '3', '10', '1000'), async (parts, count) => {
      const { run } = setup(parts.map((ks, p) => ks.map((k) => `${p}:${k}`)));
      const every = parts.flatMap((ks, p) => ks.map((k) => `${p}:${k}`)).sort();
      const { keys } = await walk(run, 'COUNT', count);
      assert.deepEqual([...keys].sort(), every);
      assert.deepEqual(texts(await run('KEYS', '*')).sort(), every);
      assert.deepEqual(texts(await run('KEYS', '*:a*')).sort(), every.filter((k) => /:a/.test(k)));
    }),
    { numRuns: 60 },
  );
});

test('a SCAN call over empty partitions asks them several at once, and a dense one a page per call', async () => {
  // 4096 empty partitions: 64 calls of 64 partitions each, in doubling windows (7 rounds, not 64)
  const empty = setup(Array.from({ length: 4096 }, () => []));
  const { calls } = await walk(empty.run);
  assert.equal(calls, 64);
  assert.equal(empty.kv.pages, 4096);
  // one key per partition: a COUNT 10 call asks 1 + 2 + 4 + 8 partitions at most
  const dense = setup(Array.from({ length: 4096 }, (_, p) => [`k${p}`]));
  await dense.run('SCAN', '0', 'COUNT', '10');
  assert.ok(dense.kv.pages <= 15, `${dense.kv.pages} pages`);
  // a partition holding more than COUNT: one page
  const full = setup([Array.from({ length: 100 }, (_, i) => `k${i}`), ['x']]);
  const r = await full.run('SCAN', '0', 'COUNT', '10');
  assert.equal(full.kv.pages, 1);
  assert.ok(r.type === 'array' && r.items !== null);
  assert.equal(texts(r.items[1]!).length, 10);
});

test('SCAN reads its cursor and COUNT as Redis does (found by the cluster oracle)', async () => {
  const { run } = setup([['a'], ['b']]);
  // strtoul: "" is 0, a sign is taken, a NUL ends the number; a leading space is not a number
  for (const cursor of ['', '+0', '0']) {
    const r = await run('SCAN', cursor, 'COUNT', '10');
    assert.ok(r.type === 'array' && r.items !== null, `SCAN ${JSON.stringify(cursor)}: ${JSON.stringify(r)}`);
    assert.deepEqual(texts(r.items[1]!), ['a', 'b']);
  }
  for (const cursor of [' 1', 'abc', '18446744073709551616', '+', '-']) assert.deepEqual(await run('SCAN', cursor), { type: 'error', message: 'ERR invalid cursor' });
  assert.equal((await run('SCAN', '5\x00x')).type, 'array');
  // COUNT is a 64-bit integer
  assert.equal((await run('SCAN', '0', 'COUNT', '9223372036854775807')).type, 'array');
  assert.deepEqual(await run('SCAN', '0', 'COUNT', '9223372036854775808'), { type: 'error', message: 'ERR value is not an integer or out of range' });
  assert.deepEqual(await run('SCAN', '0', 'COUNT', '0'), { type: 'error', message: 'ERR syntax error' });
});

test('RANDOMKEY finds the one key of a nearly empty keyspace, and answers nil for an empty one', async () => {
  const one = setup(Array.from({ length: 4096 }, (_, p) => (p === 1234 ? ['only'] : [])));
  assert.equal(text(await one.run('RANDOMKEY')), 'only');
  const none = setup(Array.from({ length: 4096 }, () => []));
  assert.deepEqual(await none.run('RANDOMKEY'), { type: 'bulk', value: null });
});
