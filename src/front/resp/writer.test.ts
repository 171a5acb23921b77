import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RespClient, startRedisServer } from '../../../test/helpers/redis-oracle.ts';
import {
  ReplyBatch,
  encode,
  encodeAs,
  simple,
  error,
  integer,
  bulk,
  array,
  map,
  mapOf,
  setOf,
  double,
  boolean,
  bigNumber,
  verbatim,
  pushMessage,
  withAttributes,
  formatDouble,
  OK,
  NULL_BULK,
  NULL_ARRAY,
  EMPTY_ARRAY,
  TRUE,
  FALSE,
  type RespProtocol,
  type RespReply,
} from './writer.ts';

const s = (b: Buffer) => b.toString('latin1');

test('each reply type is framed as RESP2', () => {
  assert.equal(s(encode(OK)), '+OK\r\n');
  assert.equal(s(encode(simple('PONG'))), '+PONG\r\n');
  assert.equal(s(encode(error('ERR syntax error'))), '-ERR syntax error\r\n');
  assert.equal(s(encode(integer(0), integer(-2), integer(12345))), ':0\r\n:-2\r\n:12345\r\n');
  assert.equal(s(encode(bulk('héllo'))), '$6\r\nh\xc3\xa9llo\r\n');
  assert.equal(s(encode(bulk(Buffer.from([0, 13, 10])))), '$3\r\n\x00\r\n\r\n');
  assert.equal(s(encode(bulk(''))), '$0\r\n\r\n');
  assert.equal(s(encode(NULL_BULK)), '$-1\r\n');
  assert.equal(s(encode(NULL_ARRAY)), '*-1\r\n');
  assert.equal(s(encode(array([]))), '*0\r\n');
  assert.equal(s(encode(array([bulk('a'), NULL_BULK, array([integer(1)])]))), '*3\r\n$1\r\na\r\n$-1\r\n*1\r\n:1\r\n');
});

test('CR and LF cannot break out of a one-line reply', () => {
  assert.equal(s(encode(error('ERR bad\r\nkey'))), '-ERR bad  key\r\n');
  assert.equal(s(encode(simple('a\nb'))), '+a b\r\n');
});

test('non-integers are refused rather than sent malformed', () => {
  assert.throws(() => encode(integer(1.5)), RangeError);
});

test('a batch keeps order across scratch refills and large by-reference values', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.uint8Array({ maxLength: 20_000 }).map((a) => bulk(Buffer.from(a))),
          fc.integer().map(integer),
          fc.string({ maxLength: 3000 }).map((t) => simple(t.replace(/[\r\n]/g, ' '))),
        ),
        { maxLength: 40 },
      ),
      fc.array(fc.nat({ max: 40 }), { maxLength: 5 }),
      (replies, takeAt) => {
        // Reference: encode each reply alone.
        const expected = Buffer.concat(replies.map((r) => encode(r)));
        const batch = new ReplyBatch();
        const out: Buffer[] = [];
        replies.forEach((r, i) => {
          batch.push(r);
          if (takeAt.includes(i)) out.push(...batch.take());
        });
        const total = batch.byteLength;
        const rest = batch.take();
        assert.equal(total, rest.reduce((n, b) => n + b.length, 0));
        out.push(...rest);
        assert.ok(batch.empty);
        assert.deepEqual(Buffer.concat(out), expected);
      },
    ),
    { numRuns: 150 },
  );
});

test('large values are passed by reference, not copied', () => {
  const big = Buffer.alloc(100_000, 1);
  const batch = new ReplyBatch();
  batch.push(bulk(big));
  assert.ok(batch.take().includes(big));
});

/** Independent reference: the text of each reply built from strings, the way the spec reads. */
function reference(r: RespReply, proto: RespProtocol = 2): Buffer {
  const b = (t: string) => Buffer.from(t, 'utf8');
  const blob = (v: Buffer | string) => {
    const p = typeof v === 'string' ? b(v) : v;
    return Buffer.concat([b(`$${p.length}\r\n`), p, b('\r\n')]);
  };
  const all = (head: string, items: readonly RespReply[]) => Buffer.concat([b(head), ...items.map((i) => reference(i, proto))]);
  switch (r.type) {
    case 'simple':
      return b(`+${r.value.replace(/[\r\n]/g, ' ')}\r\n`);
    case 'error':
      return b(`-${r.message.replace(/[\r\n]/g, ' ')}\r\n`);
    case 'integer':
      return b(`:${r.value}\r\n`);
    case 'bulk':
      if (r.value === null) return b(proto === 3 ? '_\r\n' : '$-1\r\n');
      return blob(r.value);
    case 'array':
      if (r.items === null) return b(proto === 3 ? '_\r\n' : '*-1\r\n');
      return all(`*${r.items.length}\r\n`, r.items);
    case 'map':
      return all(`${proto === 3 ? '%' : '*'}${proto === 3 ? r.entries.length : 2 * r.entries.length}\r\n`, r.entries.flat());
    case 'set':
      return all(`${proto === 3 ? '~' : '*'}${r.items.length}\r\n`, r.items);
    case 'push':
      return all(`${proto === 3 ? '>' : '*'}${r.items.length}\r\n`, r.items);
    case 'double':
      return proto === 3 ? b(`,${formatDouble(r.value)}\r\n`) : blob(formatDouble(r.value));
    case 'boolean':
      return b(proto === 3 ? (r.value ? '#t\r\n' : '#f\r\n') : r.value ? ':1\r\n' : ':0\r\n');
    case 'bignum':
      return proto === 3 ? b(`(${r.value}\r\n`) : blob(r.value);
    case 'verbatim': {
      if (proto === 2) return blob(r.value);
      const p = typeof r.value === 'string' ? b(r.value) : r.value;
      return Buffer.concat([b(`=${p.length + 4}\r\n${r.format}:`), p, b('\r\n')]);
    }
    case 'attribute':
      return proto === 3 ? Buffer.concat([all(`|${r.attributes.length}\r\n`, r.attributes.flat()), reference(r.value, proto)]) : reference(r.value, proto);
  }
}

const leaf: fc.Arbitrary<RespReply> = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }).map((a) => bulk(Buffer.from(a))),
  fc.string({ unit: 'binary', maxLength: 200 }).map((t) => bulk(t)),
  fc.constant(NULL_BULK),
  fc.maxSafeInteger().map(integer),
  fc.constantFrom(0, 9, 10, 99, 100, -1, -10, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER).map(integer),
  fc.string({ unit: 'binary', maxLength: 300 }).map(simple),
  fc.string({ unit: 'binary', maxLength: 300 }).map(error),
  fc.double().map(double),
  fc.boolean().map(boolean),
  fc.bigInt().map(bigNumber),
  fc.tuple(fc.string({ unit: 'binary', maxLength: 300 }), fc.constantFrom('txt', 'mkd')).map(([t, f]) => verbatim(t, f)),
);
const reply: fc.Arbitrary<RespReply> = fc.letrec<{ r: RespReply }>((tie) => ({
  r: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('r'), { maxLength: 4 }).map(array),
    fc.constant(NULL_ARRAY),
    fc.array(fc.tuple(tie('r'), tie('r')), { maxLength: 3 }).map(map),
    fc.array(tie('r'), { maxLength: 4 }).map(setOf),
    fc.array(tie('r'), { maxLength: 4 }).map(pushMessage),
    fc.tuple(fc.array(fc.tuple(leaf, leaf), { maxLength: 2 }), leaf).map(([a, v]) => withAttributes(a, v)),
  ),
})).r;

test('encoding matches a string-built reference for every reply shape, in both protocols', () => {
  fc.assert(
    fc.property(fc.array(reply, { maxLength: 40 }), fc.constantFrom<RespProtocol>(2, 3), (replies, proto) => {
      const batch = new ReplyBatch(proto);
      for (const r of replies) batch.push(r);
      assert.deepEqual(Buffer.concat(batch.take()), Buffer.concat(replies.map((r) => reference(r, proto))));
    }),
    { numRuns: 300 },
  );
});

test('RESP3 types and their RESP2 forms', () => {
  const both = (r: RespReply): [string, string] => [s(encodeAs(3, r)), s(encodeAs(2, r))];
  assert.deepEqual(both(NULL_BULK), ['_\r\n', '$-1\r\n']);
  assert.deepEqual(both(NULL_ARRAY), ['_\r\n', '*-1\r\n']);
  assert.deepEqual(both(EMPTY_ARRAY), ['*0\r\n', '*0\r\n']);
  assert.deepEqual(both(mapOf({ a: integer(1), b: NULL_BULK })), ['%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n_\r\n', '*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$-1\r\n']);
  assert.deepEqual(both(map([])), ['%0\r\n', '*0\r\n']);
  assert.deepEqual(both(setOf([simple('x')])), ['~1\r\n+x\r\n', '*1\r\n+x\r\n']);
  assert.deepEqual(both(double(1.5)), [',1.5\r\n', '$3\r\n1.5\r\n']);
  assert.deepEqual(both(double(Infinity)), [',inf\r\n', '$3\r\ninf\r\n']);
  assert.deepEqual(both(double(-Infinity)), [',-inf\r\n', '$4\r\n-inf\r\n']);
  assert.deepEqual(both(double(Number.NaN)), [',nan\r\n', '$3\r\nnan\r\n']);
  assert.deepEqual(both(TRUE), ['#t\r\n', ':1\r\n']);
  assert.deepEqual(both(FALSE), ['#f\r\n', ':0\r\n']);
  assert.deepEqual(both(bigNumber(-(2n ** 70n))), ['(-1180591620717411303424\r\n', '$23\r\n-1180591620717411303424\r\n']);
  assert.deepEqual(both(verbatim('a\r\nb')), ['=8\r\ntxt:a\r\nb\r\n', '$4\r\na\r\nb\r\n']);
  assert.deepEqual(both(pushMessage([bulk('message'), bulk('ch'), bulk('hi')])), ['>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n', '*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n']);
  assert.deepEqual(both(withAttributes([[bulk('ttl'), integer(5)]], bulk('v'))), ['|1\r\n$3\r\nttl\r\n:5\r\n$1\r\nv\r\n', '$1\r\nv\r\n']);
  // the hot-path replies are the same bytes in both protocols
  for (const r of [OK, bulk('v'), integer(42), error('ERR x'), array([bulk('a')])]) assert.equal(s(encodeAs(3, r)), s(encode(r)));
});

test('a batch switches protocol between replies (HELLO 3 is answered in RESP3)', () => {
  const batch = new ReplyBatch();
  batch.push(NULL_BULK);
  batch.protocol = 3;
  batch.push(NULL_BULK);
  assert.equal(s(Buffer.concat(batch.take())), '$-1\r\n_\r\n');
  assert.throws(() => new ReplyBatch(4 as RespProtocol), /protocol must be 2 or 3. Got: 4/);
});

test('constructors refuse values that would go out malformed', () => {
  assert.throws(() => bigNumber('12a'), /big number must be decimal digits/);
  assert.throws(() => bigNumber('007'), RangeError);
  assert.throws(() => verbatim('x', 'text'), /three lower-case letters/);
});

test('doubles are formatted as printf %.17g, as Redis 7.0 does', () => {
  const cases: [number, string][] = [
    [1.5, '1.5'], [0.1, '0.10000000000000001'], [3, '3'], [-0, '-0'], [0, '0'], [1e300, '1.0000000000000001e+300'],
    [123456789012345678, '1.2345678901234568e+17'], [1e-5, '1.0000000000000001e-05'], [0.0001, '0.0001'],
    [1e17, '1e+17'], [1e16, '10000000000000000'], [12345678901234567, '12345678901234568'], [-2.5, '-2.5'],
    [5e-324, '4.9406564584124654e-324'], [Number.MAX_VALUE, '1.7976931348623157e+308'], [100, '100'], [0.5, '0.5'],
  ];
  for (const [d, text] of cases) assert.equal(formatDouble(d), text, String(d));
});

test('RESP3 and RESP2 encodings equal redis-server 7 for the same values (Lua replies)', async () => {
  const redis = await startRedisServer();
  const [c2, c3] = await Promise.all([RespClient.connect(redis.port), RespClient.connect(redis.port)]);
  try {
    await c3.hello(3);
    /** The bytes Redis sends for a Lua script's answer, in each protocol, against ours for `ours`. */
    const check = async (script: string, ours: RespReply, ...argv: string[]) => {
      for (const [c, proto] of [[c2, 2], [c3, 3]] as const) {
        const theirs = await c.callBytes('EVAL', `redis.setresp(3); ${script}`, '0', ...argv);
        assert.equal(s(encodeAs(proto, ours)), s(theirs.bytes), `${script} ${argv.join(' ')} in RESP${proto}`);
      }
    };
    await check('return true', TRUE);
    await check('return false', FALSE);
    await check("return {big_number='-123456789012345678901234567890'}", bigNumber('-123456789012345678901234567890'));
    await check("return {verbatim_string={format='txt', string='hi\\r\\nthere'}}", verbatim('hi\r\nthere'));
    await check("return {map={a=1}}", mapOf({ a: integer(1) }));
    await check("return {set={a=true}}", setOf([bulk('a')]));
    await check("return redis.call('get', 'nokey')", NULL_BULK);
    await check("return redis.call('hgetall', 'nokey')", map([]));
    await check("return {1, {double=2.5}, {map={k={1, 'x'}}}}", array([integer(1), double(2.5), mapOf({ k: array([integer(1), bulk('x')]) })]));
    const doubles = fc.sample(fc.double({ noNaN: true }), { numRuns: 150, seed: 42 }).concat([0.1, 3, 1e16, 1e17, 1e-5, 1e21, -1e-300, Infinity, -Infinity]);
    for (const d of doubles) await check('return {double=tonumber(ARGV[1])}', double(d), Object.is(d, -0) ? '-0' : String(d));
  } finally {
    c2.close();
    c3.close();
    await redis.stop();
  }
});

test('a batch of small replies that outgrows the scratch buffer still leaves as one buffer', () => {
  const value = Buffer.alloc(100, 0x78);
  const batch = new ReplyBatch();
  // 16 pipelined GET hits, over and over: the scratch fills up in the middle of some batch.
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 16; i++) batch.push(bulk(value));
    const chunks = batch.take();
    assert.equal(chunks.length, 1, `round ${round}`);
    assert.equal(chunks[0]!.length, 16 * (value.length + 8));
  }
});

test('reuse(): once the taken views are written, the next replies fill the same scratch from its start', () => {
  const batch = new ReplyBatch();
  batch.push(bulk(Buffer.from('first')));
  const [first] = batch.take();
  const copy = Buffer.from(first!);
  // not reused: a taken view is never overwritten
  batch.push(bulk(Buffer.from('other')));
  const [second] = batch.take();
  assert.deepEqual(first, copy);
  assert.notEqual(second!.byteOffset, first!.byteOffset);
  // reused: the scratch is written again from where `first` began
  batch.reuse();
  batch.push(bulk(Buffer.from('third')));
  const [third] = batch.take();
  assert.equal(third!.buffer, first!.buffer);
  assert.equal(third!.byteOffset, first!.byteOffset);
  assert.equal(third!.toString(), '$5\r\nthird\r\n');
  // bytes not taken yet are never written over
  batch.push(bulk(Buffer.from('pending')));
  batch.reuse();
  batch.push(bulk(Buffer.from('after')));
  assert.equal(Buffer.concat(batch.take()).toString(), '$7\r\npending\r\n$5\r\nafter\r\n');
});

test('property: a value written from a source (GET from the store) is framed as bulk() of it, among any other replies', () => {
  const source = (v: Buffer) => ({ copyValueTo: (target: Uint8Array, at: number) => target.set(v, at) });
  fc.assert(
    fc.property(
      fc.array(fc.record({ fromSource: fc.boolean(), size: fc.oneof(fc.nat(40), fc.integer({ min: 1500, max: 9000 })), protocol: fc.constantFrom(2 as const, 3 as const) }), { maxLength: 40 }),
      (items) => {
        const batch = new ReplyBatch();
        const want: Buffer[] = [];
        items.forEach((it, i) => {
          const v = Buffer.alloc(it.size, i & 0xff);
          batch.protocol = it.protocol;
          if (it.fromSource) batch.fromSource(v.length, source(v));
          else batch.push(simple(`r${i}`));
          want.push(encodeAs(it.protocol, it.fromSource ? bulk(v) : simple(`r${i}`)));
        });
        assert.deepEqual(Buffer.concat(batch.take()), Buffer.concat(want));
      },
    ),
    { numRuns: 200 },
  );
});
