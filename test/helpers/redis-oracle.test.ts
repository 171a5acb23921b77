// The oracle harness itself: the reply decoder against the writer, the client against a real
// redis-server in RESP2 and RESP3, the comparison's normalisations, and two redis-servers fed the
// oracles' random sequences (redis-sequences.ts), which must agree: otherwise a normalisation is
// missing, and the oracles would report differences that are Redis's own.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as W from '../../src/front/resp/writer.ts';
import {
  RespClient,
  asWriterReply,
  decodeReply,
  replyDifference,
  startRedisServer,
  type RedisServer,
  type Reply,
} from './redis-oracle.ts';
import { ENGINE_KEYS, UNORDERED, difference, elements, families, resolve, show, type Step } from './redis-sequences.ts';

describe('decodeReply', () => {
  it('decodes what the writer encodes, in both protocols, and waits for the rest of a partial reply', () => {
    const leaf = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((a) => W.bulk(Buffer.from(a))),
      fc.constant(W.NULL_BULK),
      fc.constant(W.NULL_ARRAY),
      fc.maxSafeInteger().map(W.integer),
      fc.stringMatching(/^[ -~]{0,20}$/).map(W.simple),
      fc.stringMatching(/^[ -~]{0,20}$/).map(W.error),
      fc.double({ noNaN: true }).map(W.double),
      fc.boolean().map(W.boolean),
      fc.bigInt().map(W.bigNumber),
      fc.string({ maxLength: 20 }).map((t) => W.verbatim(t)),
    );
    const reply = fc.oneof(leaf, fc.array(leaf, { maxLength: 4 }).map(W.array), fc.array(fc.tuple(leaf, leaf), { maxLength: 3 }).map(W.map), fc.array(leaf, { maxLength: 3 }).map(W.setOf));
    fc.assert(
      fc.property(reply, fc.constantFrom<W.RespProtocol>(2, 3), fc.nat(), (r, p, cut) => {
        const bytes = W.encodeAs(p, r);
        const d = decodeReply(bytes);
        assert.ok(d !== null && d.next === bytes.length);
        assert.deepEqual(W.encodeAs(p, asWriterReply(d.reply)), bytes);
        const at = cut % bytes.length;
        assert.equal(decodeReply(bytes.subarray(0, at)), null);
      }),
      { numRuns: 400 },
    );
  });

  it('keeps the kind of null and refuses bytes that are not RESP', () => {
    assert.deepEqual(decodeReply(Buffer.from('$-1\r\n'))?.reply, { type: 'null', wire: '$' });
    assert.deepEqual(decodeReply(Buffer.from('*-1\r\n'))?.reply, { type: 'null', wire: '*' });
    assert.deepEqual(decodeReply(Buffer.from('_\r\n'))?.reply, { type: 'null', wire: '_' });
    assert.throws(() => decodeReply(Buffer.from('?x\r\n')), /unknown RESP type byte/);
    assert.throws(() => decodeReply(Buffer.from('$3\r\nabcd\r\n')), /not followed by CRLF/);
  });
});

describe('against redis-server', () => {
  let a: RedisServer;
  let b: RedisServer;
  before(async () => {
    [a, b] = await Promise.all([startRedisServer(), startRedisServer()]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('speaks RESP2, and RESP3 after HELLO 3, with typed replies and push frames apart', async () => {
    const c = await RespClient.connect(a.port);
    const sub = await RespClient.connect(a.port);
    try {
      assert.deepEqual(await c.call('GET', 'nokey'), { type: 'null', wire: '$' });
      const hello = await c.hello(3);
      assert.equal(hello.type, 'map');
      assert.deepEqual(await c.call('GET', 'nokey'), { type: 'null', wire: '_' });
      assert.deepEqual(await c.call('SET', 'k', '\x00\xff'), { type: 'simple', value: 'OK' });
      const got = await c.call('GET', 'k');
      assert.ok(got.type === 'bulk' && got.value.equals(Buffer.from([0, 0xff])));
      assert.equal((await c.call('NOSUCH')).type, 'error');
      await sub.hello(3);
      await sub.sendRaw('*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n', 0); // RESP3: answered by a push frame
      for (let i = 0; i < 100 && sub.pushes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      await c.call('PUBLISH', 'ch', 'hi');
      for (let i = 0; i < 100 && sub.pushes.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(sub.pushes.map((p) => (p.type === 'push' ? p.items.map((x) => (x.type === 'bulk' ? x.value.toString() : String((x as { value: unknown }).value))) : [])), [
        ['subscribe', 'ch', '1'],
        ['message', 'ch', 'hi'],
      ]);
    } finally {
      c.close();
      sub.close();
    }
  });

  it('two redis-servers fed the oracles\' random sequences agree after normalisation', async () => {
    const [ca, cb] = await Promise.all([RespClient.connect(a.port), RespClient.connect(b.port)]);
    /** Why the two servers' replies to `command` differ (EXEC: reply by reply), or null. */
    const differ = async (command: readonly string[], body: readonly string[][], x: { reply: Reply; bytes: Buffer }, y: { reply: Reply; bytes: Buffer }): Promise<string | null> => {
      if (x.bytes.equals(y.bytes)) return null;
      if (command[0] === 'EXEC') {
        const [ex, ey] = [elements(x.bytes), elements(y.bytes)];
        if (ex === null || ey === null || ex.length !== ey.length) return difference(command, x, y.bytes);
        for (const [k, c] of body.entries()) {
          const why = await differ(c, [], ex[k]!, ey[k]!);
          if (why !== null) return `${show(c)}: ${why}`;
        }
        return null;
      }
      const encoding = UNORDERED.has(command[0]!.toLowerCase()) ? await ca.call('OBJECT', 'ENCODING', command[1] ?? '') : null;
      return difference(command, x, y.bytes, encoding?.type === 'bulk' ? encoding.value.toString() : null);
    };
    const run = async (steps: readonly Step[]): Promise<string[]> => {
      for (const c of [ca, cb]) await c.call('FLUSHALL');
      const t0s = Math.floor(Date.now() / 1000);
      const found: string[] = [];
      let i = 0;
      for (const step of steps) {
        const body = step.kind === 'multi' ? step.body.map((t) => resolve(t, t0s, i++)) : [];
        const commands = step.kind === 'cmd' ? [resolve(step.t, t0s, i++)] : step.kind === 'watch' ? [['WATCH', step.key]] : [['MULTI'], ...body, ['EXEC']];
        for (const command of commands) {
          const [x, y] = await Promise.all([ca.callBytes(...command), cb.callBytes(...command)]);
          const why = await differ(command, body, x, y);
          if (why !== null) found.push(`${show(command)}: ${why}`);
        }
      }
      return found;
    };
    try {
      for (const { name, arb } of families(() => ENGINE_KEYS)) {
        for (const steps of fc.sample(arb, { numRuns: 6, seed: 1 })) assert.deepEqual(await run(steps), [], name);
      }
      // and a real difference is found
      await cb.call('SET', 'k0', 'other');
      const [x, y] = await Promise.all([ca.callBytes('GET', 'k0'), cb.callBytes('GET', 'k0')]);
      assert.notEqual(await differ(['GET', 'k0'], [], x, y), null);
    } finally {
      ca.close();
      cb.close();
    }
  });
});

describe('normalisations', () => {
  const int = (value: number): Reply => ({ type: 'integer', value });
  it('TTL and PTTL within a tolerance, -1 and -2 exactly', () => {
    assert.equal(replyDifference(['TTL', 'k'], int(10), int(9)), null);
    assert.notEqual(replyDifference(['TTL', 'k'], int(10), int(8)), null);
    assert.notEqual(replyDifference(['ttl', 'k'], int(-1), int(-2)), null);
    assert.equal(replyDifference(['pttl', 'k'], int(10_000), int(9_500)), null);
    assert.notEqual(replyDifference(['PTTL', 'k'], int(10_000), int(8_000)), null);
  });

  it('RANDOMKEY, CLIENT ID, INFO and TIME are not compared byte for byte; the rest is', () => {
    const bulk = (s: string): Reply => ({ type: 'bulk', value: Buffer.from(s) });
    assert.equal(replyDifference(['RANDOMKEY'], bulk('a'), bulk('b')), null);
    assert.notEqual(replyDifference(['RANDOMKEY'], bulk('a'), { type: 'null', wire: '$' }), null);
    assert.equal(replyDifference(['CLIENT', 'ID'], int(3), int(7)), null);
    assert.equal(replyDifference(['INFO'], bulk('# Server'), { type: 'verbatim', format: 'txt', text: Buffer.from('x') }), null);
    assert.equal(replyDifference(['TIME'], { type: 'array', items: [bulk('100'), bulk('5')] }, { type: 'array', items: [bulk('101'), bulk('9')] }), null);
    assert.notEqual(replyDifference(['GET', 'k'], { type: 'null', wire: '$' }, { type: 'null', wire: '*' }), null);
    assert.notEqual(replyDifference(['GET', 'k'], bulk('a'), { type: 'simple', value: 'a' }), null);
  });
});
