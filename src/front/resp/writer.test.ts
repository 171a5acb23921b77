import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReplyBatch, encode, simple, error, integer, bulk, array, OK, NULL_BULK, NULL_ARRAY } from './writer.ts';

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

/** Independent reference: the RESP2 text built from strings, the way the spec reads. */
function reference(r: ReturnType<typeof bulk>): Buffer {
  switch (r.type) {
    case 'simple':
      return Buffer.from(`+${r.value.replace(/[\r\n]/g, ' ')}\r\n`, 'utf8');
    case 'error':
      return Buffer.from(`-${r.message.replace(/[\r\n]/g, ' ')}\r\n`, 'utf8');
    case 'integer':
      return Buffer.from(`:${r.value}\r\n`);
    case 'bulk': {
      if (r.value === null) return Buffer.from('$-1\r\n');
      const p = typeof r.value === 'string' ? Buffer.from(r.value, 'utf8') : r.value;
      return Buffer.concat([Buffer.from(`$${p.length}\r\n`), p, Buffer.from('\r\n')]);
    }
    case 'array':
      if (r.items === null) return Buffer.from('*-1\r\n');
      return Buffer.concat([Buffer.from(`*${r.items.length}\r\n`), ...r.items.map(reference)]);
  }
}

test('encoding matches a string-built reference for every reply shape', () => {
  const leaf = fc.oneof(
    fc.uint8Array({ maxLength: 3000 }).map((a) => bulk(Buffer.from(a))),
    fc.string({ unit: 'binary', maxLength: 200 }).map((t) => bulk(t)),
    fc.constant(NULL_BULK),
    fc.maxSafeInteger().map(integer),
    fc.constantFrom(0, 9, 10, 99, 100, -1, -10, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER).map(integer),
    fc.string({ unit: 'binary', maxLength: 300 }).map(simple),
    fc.string({ unit: 'binary', maxLength: 300 }).map(error),
  );
  const reply = fc.oneof(leaf, fc.array(leaf, { maxLength: 5 }).map(array), fc.constant(NULL_ARRAY));
  fc.assert(
    fc.property(fc.array(reply, { maxLength: 60 }), (replies) => {
      const batch = new ReplyBatch();
      for (const r of replies) batch.push(r);
      assert.deepEqual(Buffer.concat(batch.take()), Buffer.concat(replies.map(reference)));
    }),
    { numRuns: 300 },
  );
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
