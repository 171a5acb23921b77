// The engine against redis-server 7 as the oracle: the same random command sequences run on a
// private redis-server and on the engine (a Map of entries, `execute` per command, MULTI/EXEC
// blocks through `executeTransaction`, WATCH through versions), in RESP2 and RESP3; every reply
// is encoded by the RESP writer and compared byte for byte with what redis-server sent, except
// for the NORMALISED commands. Seeded (ORACLE_SEED to change it), a few hundred sequences per
// command family; a failure shows the whole sequence, shrunk, with both servers' replies.
//
// The families, the expiry grid that keeps TTL comparisons exact, the normalisations and the
// EXCLUSIONS (differences known and left out, with the reason) are test/helpers/redis-sequences.ts,
// shared with the cluster oracle (test/integration/redis-oracle.test.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeAs } from '../../front/resp/writer.ts';
import { RespClient, startRedisServer, type RedisServer, type Reply as WireReply } from '../../../test/helpers/redis-oracle.ts';
import { ENGINE_KEYS, NORMALISED, UNORDERED, canon, difference, elements, families, resolve, show, type Step } from '../../../test/helpers/redis-sequences.ts';
import { checkQueued, execute, executeTransaction, watchOf } from './index.ts';
import { MapView, argv } from './testing.ts';
import type { Watched } from './types.ts';

const SEED = Number(process.env.ORACLE_SEED ?? 20261201);
/** Sequences per family and protocol. */
const RUNS = Number(process.env.ORACLE_RUNS ?? 250);
/** Redis's proto-max-bulk-len default: the engine refuses exactly where Redis does. */
const MAX_VALUE_BYTES = 512 * 1024 * 1024;

// ---------------------------------------------------------------- running a sequence on both

interface Both {
  readonly clients: { 2: RespClient; 3: RespClient };
}

/**
 * Run `steps` on redis-server (over the connection of `protocol`) and on a fresh engine slot;
 * null when every reply agrees, else the transcript up to the first difference.
 */
async function runBoth(env: Both, steps: readonly Step[], protocol: 2 | 3, seen: Map<string, Set<string>>): Promise<string | null> {
  const redis = env.clients[protocol];
  await redis.call('UNWATCH');
  await redis.call('FLUSHALL');
  const view = new MapView(() => Date.now());
  const ctx = () => ({ now: Date.now(), maxValueBytes: MAX_VALUE_BYTES, protocol });
  const t0s = Math.floor(Date.now() / 1000);
  const transcript: string[] = [`RESP${protocol}`];
  let watched: Watched[] = [];
  let i = 0;
  const fail = (why: string) => [...transcript, `  DIFFERS: ${why}`].join('\n');
  const note = (command: readonly string[], r: WireReply) => {
    const name = command[0]!.toLowerCase();
    if (!seen.has(name)) seen.set(name, new Set());
    seen.get(name)!.add(r.type === 'error' ? 'error' : 'answer');
  };
  /** OBJECT ENCODING of the command's key, for the commands whose order depends on it. */
  const encodingOf = async (command: readonly string[]): Promise<string | null> => {
    if (!UNORDERED.has(command[0]!.toLowerCase()) || command.length < 2) return null;
    const r = await redis.call('OBJECT', 'ENCODING', command[1]!);
    return r.type === 'bulk' ? r.value.toString('latin1') : null;
  };
  for (const step of steps) {
    if (step.kind === 'watch') {
      const r = await redis.call('WATCH', step.key);
      assert.equal(r.type, 'simple', `WATCH answered ${canon(r)}`);
      watched.push(watchOf(step.key, view, ctx()));
      transcript.push(`WATCH ${JSON.stringify(step.key)}`);
      continue;
    }
    if (step.kind === 'cmd') {
      const command = resolve(step.t, t0s, i++);
      const r = await redis.callBytes(...command);
      const out = execute(argv(...command), view, ctx());
      view.apply(out.changes);
      const ours = encodeAs(protocol, out.reply);
      transcript.push(`${show(command)}  ->  ${canon(r.reply).slice(0, 200)}`);
      note(command, r.reply);
      let why = difference(command, r, ours);
      if (why !== null) why = difference(command, r, ours, await encodingOf(command));
      if (why !== null) return fail(why);
      continue;
    }
    // MULTI ... EXEC: queue-time errors (arity, unknown command) abort the whole transaction.
    const body = step.body.map((t) => resolve(t, t0s, i++));
    transcript.push('MULTI');
    const m = await redis.call('MULTI');
    assert.equal(m.type, 'simple');
    let aborted = false;
    for (const command of body) {
      const r = await redis.callBytes(...command);
      const queueError = checkQueued(argv(...command));
      transcript.push(`  ${show(command)}  ->  ${canon(r.reply).slice(0, 200)}`);
      if (queueError === null) {
        if (!(r.reply.type === 'simple' && r.reply.value === 'QUEUED')) return fail(`redis did not queue it (${canon(r.reply)}); checkQueued said it may be queued`);
      } else {
        aborted = true;
        const why = difference(command, r, encodeAs(protocol, queueError));
        if (why !== null) return fail(`queue-time error: ${why}`);
      }
    }
    const exec = await redis.callBytes('EXEC');
    transcript.push(`EXEC  ->  ${canon(exec.reply).slice(0, 400)}`);
    if (aborted) {
      if (!(exec.reply.type === 'error' && exec.reply.message.startsWith('EXECABORT'))) return fail(`redis EXEC did not abort: ${canon(exec.reply)}`);
    } else {
      const out = executeTransaction(body.map((b) => argv(...b)), view, ctx(), watched);
      view.apply(out.changes);
      const ours = encodeAs(protocol, out.reply);
      if (!ours.equals(exec.bytes)) {
        // Command by command, so normalised replies (PTTL...) are compared by their rules.
        const theirs = elements(exec.bytes);
        const mine = out.reply;
        if (theirs === null || mine.type !== 'array' || mine.items === null || theirs.length !== mine.items.length) return fail(difference(['EXEC'], exec, ours) ?? 'EXEC differs');
        for (const [k, command] of body.entries()) {
          const r = theirs[k]!;
          note(command, r.reply);
          const mineK = encodeAs(protocol, mine.items[k]!);
          let w = difference(command, r, mineK);
          // The encoding after EXEC: good enough, a transaction rarely changes it back and forth.
          if (w !== null) w = difference(command, r, mineK, await encodingOf(command));
          if (w !== null) return fail(`in EXEC, ${show(command)}: ${w}`);
        }
      }
    }
    watched = [];
  }
  return null;
}

// ---------------------------------------------------------------- the families

describe('the engine against redis-server 7 (oracle)', { timeout: 120_000 }, () => {
  let server: RedisServer;
  const env = {} as { clients: { 2: RespClient; 3: RespClient } };
  const started = Date.now();

  before(async () => {
    server = await startRedisServer();
    const c2 = await RespClient.connect(server.port);
    const c3 = await RespClient.connect(server.port);
    await c3.hello(3);
    env.clients = { 2: c2, 3: c3 };
  });

  after(async () => {
    env.clients?.[2].close();
    env.clients?.[3].close();
    await server?.stop();
    // The whole oracle is bounded: it must stay a unit-speed test.
    assert.ok(Date.now() - started < 60_000, `oracle took ${Date.now() - started} ms`);
  });

  it('runs against Redis 7', () => {
    assert.match(server.version, /^7\./);
  });

  for (const { name, arb, share } of families(() => ENGINE_KEYS)) {
    it(`${name}: every reply is Redis's, in RESP2 and RESP3`, async () => {
      const seen = new Map<string, Set<string>>();
      await fc.assert(
        fc.asyncProperty(arb, fc.constantFrom<2 | 3>(2, 3), async (steps, protocol) => {
          const why = await runBoth(env, steps, protocol, seen);
          if (why !== null) throw new Error(`\n${why}`);
        }),
        { seed: SEED, numRuns: 2 * Math.ceil(RUNS * share) },
      );
      // The generators must reach past the argument checks: every command answered something
      // other than an error at least once (the unknown command aside).
      const onlyErrors = [...seen].filter(([n, kinds]) => n !== 'nosuchcommand' && !kinds.has('answer')).map(([n]) => n);
      assert.deepEqual(onlyErrors, [], `commands that only ever failed in ${name}`);
    });
  }

  it('lists its normalisations', () => {
    // The rules above are the only ones; a new one must be written down here.
    assert.deepEqual(Object.keys(NORMALISED).sort(), ['expiretime', 'hrandfield', 'pexpiretime', 'pttl', 'ttl']);
  });
});

