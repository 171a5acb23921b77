// The engine's commands on a Map-backed slot with a fixed clock: replies, and above all the
// changes they hand the coordinator (type, value, expiry), which the oracle test cannot see.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NULL_BULK, OK, array, bulk, integer, map, type Reply } from '../reply.ts';
import { encodeAs } from '../../front/resp/writer.ts';
import { decodeHash, encodeHash, execute, isEngineCommand, isReadOnlyCommand, ENGINE_COMMANDS } from './index.ts';
import { hashLength } from './hash-codec.ts';
import { Slot, argv } from './testing.ts';
import { HASH, STRING, type EngineContext } from './types.ts';

const NOW = 1_700_000_000_000;

function slot(ctx: Partial<EngineContext> = {}): Slot {
  return new Slot({ now: NOW, maxValueBytes: 1024, ...ctx });
}

const b = (s: string) => Buffer.from(s, 'latin1');
const err = (message: string): Reply => ({ type: 'error', message });
/** A reply as RESP2 text: short to compare, and exactly what a client reads. */
const wire = (r: Reply, protocol: 2 | 3 = 2) => encodeAs(protocol, r).toString('latin1');
/** The items of an array reply. */
function items(r: Reply): readonly Reply[] {
  assert.ok(r.type === 'array' && r.items !== null, `not an array: ${wire(r)}`);
  return r.items;
}
/** The bytes of a bulk reply, as text. */
function text(r: Reply): string {
  assert.ok(r.type === 'bulk' && r.value !== null, `not a bulk: ${wire(r)}`);
  return r.value.toString('latin1');
}

describe('strings', () => {
  it('SET stores the argument, drops the TTL unless KEEPTTL, and reports the change', () => {
    const s = slot();
    const out = s.outcome('SET', 'k', 'v', 'EX', '10');
    assert.deepEqual(out.reply, OK);
    assert.deepEqual(out.changes, [{ key: 'k', type: STRING, value: b('v'), expiresAt: NOW + 10_000 }]);
    assert.deepEqual(s.outcome('SET', 'k', 'w', 'KEEPTTL').changes[0]!.expiresAt, NOW + 10_000);
    assert.deepEqual(s.outcome('SET', 'k', 'x').changes[0]!.expiresAt, 0);
    assert.deepEqual(s.outcome('SET', 'k', 'y', 'PXAT', String(NOW + 5)).changes[0]!.expiresAt, NOW + 5);
    assert.deepEqual(s.outcome('SET', 'k', 'z', 'EXAT', String(NOW / 1000 + 7)).changes[0]!.expiresAt, NOW + 7000);
  });

  it('SET with an absolute time in the past deletes the key (and answers OK)', () => {
    const s = slot();
    s.run('SET', 'k', 'v');
    const out = s.outcome('SET', 'k', 'w', 'PXAT', String(NOW - 1));
    assert.deepEqual(out.reply, OK);
    assert.deepEqual(out.changes, [{ key: 'k', type: STRING, value: null, expiresAt: 0 }]);
    assert.deepEqual(s.run('GET', 'k'), NULL_BULK);
  });

  it('SET NX/XX/GET follow Redis 7: GET answers the old value even when NX refuses', () => {
    const s = slot();
    assert.deepEqual(s.run('SET', 'k', 'v', 'XX'), NULL_BULK);
    assert.deepEqual(s.run('SET', 'k', 'v', 'NX', 'GET'), NULL_BULK);
    assert.deepEqual(s.run('SET', 'k', 'w', 'NX', 'GET'), bulk(b('v')));
    assert.deepEqual(s.run('GET', 'k'), bulk(b('v')));
    assert.deepEqual(s.run('SET', 'k', 'w', 'GET'), bulk(b('v')));
    assert.deepEqual(s.run('SET', 'k', 'v', 'NX', 'XX'), err('ERR syntax error'));
    assert.deepEqual(s.run('SET', 'k', 'v', 'EX', '0'), err("ERR invalid expire time in 'set' command"));
    assert.deepEqual(s.run('SETEX', 'k', '-1', 'v'), err("ERR invalid expire time in 'setex' command"));
    assert.deepEqual(s.run('SET', 'k', 'v', 'EX', '9223372036854775'), err("ERR invalid expire time in 'set' command"));
    s.run('HSET', 'h', 'f', '1');
    assert.deepEqual(s.run('SET', 'h', 'v', 'GET'), err('WRONGTYPE Operation against a key holding the wrong kind of value'));
    assert.deepEqual(s.run('SET', 'h', 'v'), OK); // SET replaces any type
    assert.deepEqual(s.run('TYPE', 'h'), { type: 'simple', value: 'string' });
  });

  it('a command name in any case; the empty key and binary keys', () => {
    const s = slot();
    assert.deepEqual(s.run('sEt', '', 'empty'), OK);
    assert.deepEqual(s.run('get', ''), bulk(b('empty')));
    assert.deepEqual(s.run('SET', '\xff\x00', 'bin'), OK);
    assert.deepEqual(s.view.entries.get('\xff\x00')!.value, b('bin'));
  });

  it('arity and unknown commands in Redis’s words', () => {
    const s = slot();
    assert.deepEqual(s.run('INCR'), err("ERR wrong number of arguments for 'incr' command"));
    assert.deepEqual(s.run('GET', 'a', 'b'), err("ERR wrong number of arguments for 'get' command"));
    assert.deepEqual(s.run('MSET', 'a', '1', 'b'), err("ERR wrong number of arguments for 'mset' command"));
    assert.deepEqual(s.run('HSET', 'h', 'f', 'v', 'g'), err("ERR wrong number of arguments for 'hset' command"));
    assert.deepEqual(s.run('FOO', 'a', 'b'), err("ERR unknown command 'FOO', with args beginning with: 'a' 'b' "));
  });

  it('MSET of one key twice makes one change, with the last value', () => {
    const out = slot().outcome('MSET', 'a', '1', 'b', '2', 'a', '3');
    assert.deepEqual(out.changes.map((c) => [c.key, c.value?.toString()]), [['a', '3'], ['b', '2']]);
  });

  it('MSETNX sets all or none', () => {
    const s = slot();
    assert.deepEqual(s.run('MSETNX', 'a', '1', 'b', '2'), integer(1));
    assert.deepEqual(s.outcome('MSETNX', 'c', '1', 'b', '2').changes, []);
    assert.deepEqual(s.run('EXISTS', 'c'), integer(0));
  });

  it('APPEND, SETRANGE and INCR keep the TTL; GETSET drops it', () => {
    const s = slot();
    s.run('SET', 'k', '1', 'PX', '5000');
    for (const cmd of [['APPEND', 'k', '0'], ['INCR', 'k'], ['SETRANGE', 'k', '0', '2'], ['INCRBYFLOAT', 'k', '0.5']]) {
      assert.equal(s.outcome(...cmd).changes[0]!.expiresAt, NOW + 5000, cmd.join(' '));
    }
    assert.deepEqual(s.run('GET', 'k'), bulk(b('21.5'))); // 1, 10, 11, 21, 21.5
    assert.equal(s.outcome('GETSET', 'k', 'x').changes[0]!.expiresAt, 0);
  });

  it('SETRANGE pads with zero bytes; GETRANGE takes Redis’s index rules', () => {
    const s = slot();
    assert.deepEqual(s.run('SETRANGE', 'k', '3', 'ab'), integer(5));
    assert.deepEqual(s.view.entries.get('k')!.value, Buffer.from([0, 0, 0, 0x61, 0x62]));
    assert.deepEqual(s.run('SETRANGE', 'missing', '5', ''), integer(0));
    assert.equal(s.view.entries.has('missing'), false);
    assert.deepEqual(s.run('SETRANGE', 'k', '-1', 'x'), err('ERR offset is out of range'));
    s.run('SET', 's', 'Hello World');
    assert.deepEqual(s.run('GETRANGE', 's', '0', '4'), bulk(b('Hello')));
    assert.deepEqual(s.run('GETRANGE', 's', '-5', '-1'), bulk(b('World')));
    assert.deepEqual(s.run('GETRANGE', 's', '-1', '-5'), bulk(b('')));
    assert.deepEqual(s.run('GETRANGE', 's', '5', '100'), bulk(b(' World')));
    assert.deepEqual(s.run('GETRANGE', 'none', '0', '1'), bulk(b('')));
  });

  it('GETEX sets, changes or removes the TTL; GETDEL deletes', () => {
    const s = slot();
    s.run('SET', 'k', 'v');
    assert.equal(s.outcome('GETEX', 'k', 'PX', '100').changes[0]!.expiresAt, NOW + 100);
    assert.equal(s.outcome('GETEX', 'k', 'PERSIST').changes[0]!.expiresAt, 0);
    assert.deepEqual(s.outcome('GETEX', 'k').changes, []);
    assert.deepEqual(s.outcome('GETEX', 'k', 'PERSIST').changes, []); // no TTL to remove
    assert.deepEqual(s.run('GETEX', 'k', 'NX'), err('ERR syntax error'));
    assert.deepEqual(s.run('GETDEL', 'k'), bulk(b('v')));
    assert.deepEqual(s.run('GETDEL', 'k'), NULL_BULK);
  });
});

describe('counters', () => {
  it('INCR family: 64-bit integers, bigint past 2^53, Redis’s errors', () => {
    const s = slot();
    assert.deepEqual(s.run('INCR', 'n'), integer(1));
    assert.deepEqual(s.run('INCRBY', 'n', '9007199254740991'), integer(9007199254740992n));
    assert.deepEqual(s.run('DECRBY', 'n', '-1'), integer(9007199254740993n));
    assert.deepEqual(s.run('SET', 'n', '9223372036854775807'), OK);
    assert.deepEqual(s.run('INCR', 'n'), err('ERR increment or decrement would overflow'));
    assert.deepEqual(s.run('DECRBY', 'n', '-9223372036854775808'), err('ERR decrement would overflow'));
    assert.deepEqual(s.run('INCRBY', 'n', '1.5'), err('ERR value is not an integer or out of range'));
    s.run('SET', 'x', ' 5');
    assert.deepEqual(s.run('INCR', 'x'), err('ERR value is not an integer or out of range'));
    s.run('HSET', 'h', 'f', '1');
    assert.deepEqual(s.run('INCR', 'h'), err('WRONGTYPE Operation against a key holding the wrong kind of value'));
    assert.equal(wire(s.run('GET', 'n')), '$19\r\n9223372036854775807\r\n');
  });

  it('a random INCRBY/DECRBY sequence answers the bigint model, and stops at overflow', () => {
    const delta = fc.oneof(fc.integer({ min: -5, max: 5 }).map(BigInt), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), delta), { maxLength: 20 }), (ops) => {
        const s = slot();
        let model = 0n;
        for (const [up, d] of ops) {
          if (!up && d === -(2n ** 63n)) continue; // DECRBY -2^63: its own error, checked above
          const r = s.run(up ? 'INCRBY' : 'DECRBY', 'k', String(d));
          const next = up ? model + d : model - d;
          if (next < -(2n ** 63n) || next >= 2n ** 63n) {
            assert.deepEqual(r, err('ERR increment or decrement would overflow'));
          } else {
            model = next;
            assert.equal(r.type, 'integer');
            assert.equal(BigInt((r as { value: number | bigint }).value), model);
          }
        }
        assert.deepEqual(s.run('GET', 'k'), ops.length === 0 || s.view.entries.size === 0 ? NULL_BULK : bulk(b(String(model))));
      }),
    );
  });

  it('INCRBYFLOAT answers and stores Redis’s text (x87 long double, %.17Lf trimmed)', () => {
    const s = slot();
    assert.deepEqual(s.run('INCRBYFLOAT', 'f', '0.1'), bulk(b('0.1')));
    assert.deepEqual(s.run('INCRBYFLOAT', 'f', '0.2'), bulk(b('0.3')));
    assert.deepEqual(s.run('INCRBYFLOAT', 'f', '1e20'), bulk(b('100000000000000000000'))); // 64 bits: 0.3 is below the last bit
    assert.deepEqual(s.run('INCRBYFLOAT', 'f', 'inf'), err('ERR increment would produce NaN or Infinity'));
    assert.deepEqual(s.run('INCRBYFLOAT', 'f', 'x'), err('ERR value is not a valid float'));
    s.run('SET', 'f', '1e4932');
    assert.deepEqual(s.run('INCRBYFLOAT', 'f', '1e4932'), err('ERR increment would produce NaN or Infinity'));
  });
});

describe('expiry', () => {
  it('EXPIRE NX/XX/GT/LT against the current TTL, no TTL counting as infinite', () => {
    const s = slot();
    s.run('SET', 'k', 'v');
    assert.deepEqual(s.run('EXPIRE', 'k', '100', 'XX'), integer(0));
    assert.deepEqual(s.run('EXPIRE', 'k', '100', 'GT'), integer(0)); // nothing beats no expiry
    assert.deepEqual(s.run('EXPIRE', 'k', '100', 'LT'), integer(1));
    assert.deepEqual(s.run('EXPIRE', 'k', '50', 'NX'), integer(0));
    assert.deepEqual(s.run('EXPIRE', 'k', '200', 'GT'), integer(1));
    assert.deepEqual(s.run('EXPIRE', 'k', '150', 'GT'), integer(0));
    assert.deepEqual(s.run('PEXPIRE', 'k', '150000', 'LT'), integer(1));
    assert.deepEqual(s.run('PEXPIRE', 'k', '150000', 'GT'), integer(0)); // equal is not greater
    assert.deepEqual(s.run('PEXPIRE', 'k', '150000', 'LT'), integer(0)); // nor less
    assert.deepEqual(s.run('PTTL', 'k'), integer(150_000));
    assert.deepEqual(s.run('EXPIRETIME', 'k'), integer((NOW + 150_000) / 1000));
    assert.deepEqual(s.run('PEXPIRETIME', 'k'), integer(NOW + 150_000));
    assert.deepEqual(s.run('EXPIRE', 'k', '1', 'NX', 'XX'), err('ERR NX and XX, GT or LT options at the same time are not compatible'));
    assert.deepEqual(s.run('EXPIRE', 'k', '1', 'GT', 'LT'), err('ERR GT and LT options at the same time are not compatible'));
    assert.deepEqual(s.run('EXPIRE', 'k', '1', 'FOO'), err('ERR Unsupported option FOO'));
    assert.deepEqual(s.run('EXPIRE', 'k', '9223372036854775807'), err("ERR invalid expire time in 'expire' command"));
    assert.deepEqual(s.run('PEXPIREAT', 'missing', '1'), integer(0));
  });

  it('an expiry in the past deletes the key and answers 1; TTL is rounded to the second', () => {
    const s = slot();
    s.run('SET', 'k', 'v');
    const out = s.outcome('EXPIRE', 'k', '-1');
    assert.deepEqual(out.reply, integer(1));
    assert.deepEqual(out.changes, [{ key: 'k', type: STRING, value: null, expiresAt: 0 }]);
    s.run('SET', 'k', 'v', 'PX', '1499');
    assert.deepEqual(s.run('TTL', 'k'), integer(1));
    s.run('SET', 'k', 'v', 'PX', '1500');
    assert.deepEqual(s.run('TTL', 'k'), integer(2));
    assert.deepEqual(s.run('PERSIST', 'k'), integer(1));
    assert.deepEqual(s.run('TTL', 'k'), integer(-1));
    assert.deepEqual(s.run('TTL', 'gone'), integer(-2));
  });

  it('an entry is gone once the clock passes its expiry', () => {
    const s = slot();
    s.run('SET', 'k', 'v', 'PX', '10');
    s.ctx = { ...s.ctx, now: NOW + 9 };
    assert.deepEqual(s.run('GET', 'k'), bulk(b('v')));
    s.ctx = { ...s.ctx, now: NOW + 10 };
    assert.deepEqual(s.run('GET', 'k'), NULL_BULK);
    assert.deepEqual(s.run('EXISTS', 'k'), integer(0));
  });

  it('expiry times beyond 2^53 ms are answered as 64-bit integers', () => {
    const s = slot();
    s.run('SET', 'k', 'v', 'PXAT', '9223372036854775807');
    const r = s.run('PEXPIRETIME', 'k');
    assert.equal(r.type, 'integer');
    assert.equal(typeof (r as { value: unknown }).value, 'bigint');
    assert.doesNotThrow(() => wire(r));
  });
});

describe('keyspace', () => {
  it('DEL counts each key once, EXISTS and TOUCH count repeats', () => {
    const s = slot();
    s.run('MSET', 'a', '1', 'b', '2');
    assert.deepEqual(s.run('EXISTS', 'a', 'a', 'b', 'c'), integer(3));
    assert.deepEqual(s.run('TOUCH', 'a', 'a'), integer(2));
    assert.deepEqual(s.run('DEL', 'a', 'a', 'c'), integer(1));
    assert.deepEqual(s.outcome('UNLINK', 'a', 'c').changes, []);
  });

  it('RENAME moves value, type and TTL; RENAMENX refuses an existing target', () => {
    const s = slot();
    s.run('HSET', 'h', 'f', '1');
    s.run('PEXPIRE', 'h', '5000');
    const out = s.outcome('RENAME', 'h', 'g');
    assert.deepEqual(out.reply, OK);
    assert.deepEqual(
      out.changes.map((c) => [c.key, c.type, c.value === null, c.expiresAt]),
      [['g', HASH, false, NOW + 5000], ['h', STRING, true, 0]],
    );
    assert.deepEqual(s.run('RENAME', 'h', 'x'), err('ERR no such key'));
    assert.deepEqual(s.run('RENAME', 'g', 'g'), OK);
    s.run('SET', 's', 'v');
    assert.deepEqual(s.run('RENAMENX', 'g', 's'), integer(0));
    assert.deepEqual(s.run('RENAMENX', 'g', 'g'), integer(0));
  });

  it('COPY keeps the TTL; REPLACE; DB as a Redis Cluster node answers', () => {
    const s = slot();
    s.run('SET', 'a', 'v', 'EX', '10');
    assert.deepEqual(s.run('COPY', 'a', 'b'), integer(1));
    assert.equal(s.view.entries.get('b')!.expiresAt, NOW + 10_000);
    assert.deepEqual(s.run('COPY', 'a', 'b'), integer(0));
    assert.deepEqual(s.run('COPY', 'a', 'b', 'REPLACE', 'DB', '0'), integer(1));
    assert.deepEqual(s.run('COPY', 'a', 'a'), err('ERR source and destination objects are the same'));
    assert.deepEqual(s.run('COPY', 'a', 'c', 'DB', '1'), err('ERR Copying to another database is not allowed in cluster mode'));
    assert.deepEqual(s.run('COPY', 'a', 'c', 'DB', '16'), err('ERR DB index is out of range'));
    assert.deepEqual(s.run('COPY', 'a', 'c', 'DB', 'x'), err('ERR value is not an integer or out of range'));
    assert.deepEqual(s.run('COPY', 'a', 'c', 'DB'), err('ERR syntax error'));
  });
});

describe('hashes', () => {
  it('HSET creates, updates in place and keeps the TTL; HGETALL answers a map in insertion order', () => {
    const s = slot();
    assert.deepEqual(s.run('HSET', 'h', 'c', '1', 'a', '2', 'b', '3'), integer(3));
    s.run('EXPIRE', 'h', '60');
    const out = s.outcome('HSET', 'h', 'a', '9', 'd', '4');
    assert.deepEqual(out.reply, integer(1));
    assert.equal(out.changes[0]!.type, HASH);
    assert.equal(out.changes[0]!.expiresAt, NOW + 60_000);
    const all = s.run('HGETALL', 'h');
    assert.deepEqual(all, map([['c', '1'], ['a', '9'], ['b', '3'], ['d', '4']].map(([f, v]) => [bulk(b(f!)), bulk(b(v!))] as const)));
    assert.equal(wire(all, 3), '%4\r\n$1\r\nc\r\n$1\r\n1\r\n$1\r\na\r\n$1\r\n9\r\n$1\r\nb\r\n$1\r\n3\r\n$1\r\nd\r\n$1\r\n4\r\n');
    assert.equal(wire(s.run('HGETALL', 'none'), 3), '%0\r\n');
    assert.deepEqual([...decodeHash(s.view.entries.get('h')!.value).keys()], ['c', 'a', 'b', 'd']);
  });

  it('deletes the key with its last field', () => {
    const s = slot();
    s.run('HSET', 'h', 'a', '1', 'b', '2');
    assert.deepEqual(s.run('HDEL', 'h', 'a', 'a', 'x'), integer(1));
    const out = s.outcome('HDEL', 'h', 'b');
    assert.deepEqual(out.changes, [{ key: 'h', type: STRING, value: null, expiresAt: 0 }]);
    assert.deepEqual(s.run('EXISTS', 'h'), integer(0));
    assert.deepEqual(s.run('HLEN', 'h'), integer(0));
  });

  it('HGET HMGET HEXISTS HSTRLEN HKEYS HVALS HSETNX; WRONGTYPE between types', () => {
    const s = slot();
    s.run('HSET', 'h', 'f', 'hello', '', 'empty');
    assert.deepEqual(s.run('HGET', 'h', 'f'), bulk(b('hello')));
    assert.deepEqual(s.run('HGET', 'h', 'x'), NULL_BULK);
    assert.deepEqual(s.run('HMGET', 'h', 'f', 'x', ''), array([bulk(b('hello')), NULL_BULK, bulk(b('empty'))]));
    assert.deepEqual(s.run('HEXISTS', 'h', ''), integer(1));
    assert.deepEqual(s.run('HSTRLEN', 'h', 'f'), integer(5));
    assert.deepEqual(s.run('HKEYS', 'h'), array([bulk(b('f')), bulk(b(''))]));
    assert.deepEqual(s.run('HVALS', 'h'), array([bulk(b('hello')), bulk(b('empty'))]));
    assert.deepEqual(s.run('HSETNX', 'h', 'f', 'x'), integer(0));
    assert.deepEqual(s.run('HSETNX', 'h', 'g', 'x'), integer(1));
    assert.deepEqual(s.run('HMSET', 'h', 'g', 'y'), OK);
    s.run('SET', 's', 'v');
    const wrong = err('WRONGTYPE Operation against a key holding the wrong kind of value');
    for (const cmd of [['HGET', 's', 'f'], ['HSET', 's', 'f', 'v'], ['HGETALL', 's'], ['HMGET', 's', 'f'], ['HLEN', 's'], ['HSCAN', 's', '0'], ['HRANDFIELD', 's']]) {
      assert.deepEqual(s.run(...cmd), wrong, cmd.join(' '));
    }
    assert.deepEqual(s.run('GET', 'h'), wrong);
    assert.deepEqual(s.run('MGET', 'h', 's'), array([NULL_BULK, bulk(b('v'))])); // MGET answers nil
  });

  it('HINCRBY and HINCRBYFLOAT', () => {
    const s = slot();
    assert.deepEqual(s.run('HINCRBY', 'h', 'n', '5'), integer(5));
    assert.deepEqual(s.run('HINCRBY', 'h', 'n', '9223372036854775807'), err('ERR increment or decrement would overflow'));
    assert.deepEqual(s.run('HINCRBYFLOAT', 'h', 'n', '0.1'), bulk(b('5.1')));
    assert.deepEqual(s.run('HINCRBY', 'h', 'n', '1'), err('ERR hash value is not an integer'));
    s.run('HSET', 'h', 's', 'abc');
    assert.deepEqual(s.run('HINCRBYFLOAT', 'h', 's', '1'), err('ERR hash value is not a float'));
    assert.deepEqual(s.run('HINCRBYFLOAT', 'h', 'n', 'inf'), err('ERR value is NaN or Infinity'));
  });

  it('HRANDFIELD: members only, distinct for a positive count, RESP3 pairs WITHVALUES, from ctx.random', () => {
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const s = slot({ random });
    s.run('HSET', 'h', 'a', '1', 'b', '2', 'c', '3', 'd', '4');
    const fields = new Set(['a', 'b', 'c', 'd']);
    for (let i = 0; i < 50; i++) {
      const got = items(s.run('HRANDFIELD', 'h', '2')).map(text);
      assert.equal(new Set(got).size, 2);
      for (const f of got) assert.ok(fields.has(f));
      const rep = s.run('HRANDFIELD', 'h', '-6');
      assert.equal(items(rep).length, 6);
      for (const f of items(rep).map(text)) assert.ok(fields.has(f));
    }
    assert.deepEqual(s.run('HRANDFIELD', 'h', '10'), array(['a', 'b', 'c', 'd'].map((f) => bulk(b(f)))));
    s.ctx = { ...s.ctx, protocol: 3 };
    const nested = s.run('HRANDFIELD', 'h', '-2', 'WITHVALUES');
    assert.match(wire(nested, 3), /^\*2\r\n\*2\r\n\$1\r\n([a-d])\r\n\$1\r\n[1-4]\r\n\*2\r\n/);
    s.ctx = { ...s.ctx, protocol: 2 };
    assert.match(wire(s.run('HRANDFIELD', 'h', '-2', 'WITHVALUES')), /^\*4\r\n/);
    assert.deepEqual(s.run('HRANDFIELD', 'h', '-2000000'), err('ERR value is out of range'));
  });

  it('HSCAN of a small hash: everything with cursor 0; MATCH filters', () => {
    const s = slot();
    s.run('HSET', 'h', 'f1', 'a', 'f2', 'b', 'g1', 'c');
    assert.equal(wire(s.run('HSCAN', 'h', '7')), '*2\r\n$1\r\n0\r\n*6\r\n$2\r\nf1\r\n$1\r\na\r\n$2\r\nf2\r\n$1\r\nb\r\n$2\r\ng1\r\n$1\r\nc\r\n');
    assert.equal(wire(s.run('HSCAN', 'h', '0', 'MATCH', 'f*', 'COUNT', '1')), '*2\r\n$1\r\n0\r\n*4\r\n$2\r\nf1\r\n$1\r\na\r\n$2\r\nf2\r\n$1\r\nb\r\n');
    assert.deepEqual(s.run('HSCAN', 'h', '0', 'COUNT', '0'), err('ERR syntax error'));
    assert.deepEqual(s.run('HSCAN', 'h', 'x'), err('ERR invalid cursor'));
    assert.equal(wire(s.run('HSCAN', 'none', 'x')), '-ERR invalid cursor\r\n');
    assert.equal(wire(s.run('HSCAN', 'none', '0', 'BOGUS')), '*2\r\n$1\r\n0\r\n*0\r\n');
  });

  it('HSCAN of a large hash returns every field present for the whole walk, however the hash changes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 513, max: 900 }), fc.integer({ min: 1, max: 50 }), fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 30 }), (n, count, churn) => {
        const s = slot({ maxValueBytes: 1 << 20 });
        const stable = new Set<string>();
        for (let i = 0; i < n; i++) {
          s.run('HSET', 'h', `f${i}`, 'v');
          if (i % 3 === 0) stable.add(`f${i}`);
        }
        const seen = new Set<string>();
        let cursor = '0';
        let steps = 0;
        do {
          const [next, page] = items(s.run('HSCAN', 'h', cursor, 'COUNT', String(count)));
          cursor = text(next!);
          const pairs = items(page!);
          for (let i = 0; i < pairs.length; i += 2) seen.add(text(pairs[i]!));
          // Change the fields that are not stable between calls: add new ones, delete some.
          const c = churn[steps % Math.max(1, churn.length)] ?? 0;
          s.run('HSET', 'h', `new${c}`, 'x');
          if (c % 3 !== 0) s.run('HDEL', 'h', `f${c}`);
          steps++;
        } while (cursor !== '0' && steps < 10_000);
        assert.equal(cursor, '0');
        for (const f of stable) assert.ok(seen.has(f), `${f} was never returned`);
      }),
      { numRuns: 25 },
    );
  });
});

describe('limits and the contract', () => {
  it('a value over maxValueBytes fails the command and changes nothing', () => {
    const s = slot({ maxValueBytes: 10 });
    const tooBig = err('ERR string exceeds maximum allowed size (proto-max-bulk-len)');
    assert.deepEqual(s.outcome('SET', 'k', 'x'.repeat(11)), { reply: tooBig, changes: [] });
    assert.deepEqual(s.outcome('MSET', 'a', '1', 'b', 'x'.repeat(11)), { reply: tooBig, changes: [] });
    s.run('SET', 'k', '12345');
    assert.deepEqual(s.outcome('APPEND', 'k', '123456'), { reply: tooBig, changes: [] });
    assert.deepEqual(s.outcome('SETRANGE', 'k', '10', 'x'), { reply: tooBig, changes: [] });
    assert.deepEqual(s.run('APPEND', 'k', '12345'), integer(10));
    const hashTooBig = err('ERR hash exceeds maximum allowed size (max_value_bytes)');
    assert.deepEqual(s.outcome('HSET', 'h', 'field', 'value'), { reply: hashTooBig, changes: [] });
    assert.deepEqual(s.run('HSET', 'h', 'f', 'v'), integer(1));
    assert.equal(hashLength(s.view.entries.get('h')!.value), 1);
  });

  it('read-only commands make no changes; the names are lower case', () => {
    assert.equal(isEngineCommand('hgetall'), true);
    assert.equal(isEngineCommand('HGETALL'), false);
    assert.equal(isEngineCommand('ping'), false);
    assert.equal(isReadOnlyCommand('get'), true);
    assert.equal(isReadOnlyCommand('touch'), true);
    assert.equal(isReadOnlyCommand('getex'), false);
    assert.equal(isReadOnlyCommand('set'), false);
    const s = slot();
    s.run('SET', 'k', '1');
    s.run('HSET', 'h', 'f', '1');
    for (const name of ENGINE_COMMANDS.filter(isReadOnlyCommand)) {
      for (const k of ['k', 'h', 'none']) {
        const out = execute(argv(name, k, '0', '1'), s.view, s.ctx);
        assert.deepEqual(out.changes, [], `${name} ${k}`);
        const out2 = execute(argv(name, k, 'f'), s.view, s.ctx);
        assert.deepEqual(out2.changes, [], `${name} ${k} f`);
      }
    }
  });

  it('the view is read, never written; a hash value decodes with decodeHash and encodeHash builds one', () => {
    const s = slot();
    const h = encodeHash(new Map([['a', b('1')]]));
    s.view.entries.set('h', { type: HASH, value: h, expiresAt: 0, version: 7 });
    const before = Buffer.from(h);
    const out = s.outcome('HSET', 'h', 'a', '2');
    assert.ok(h.equals(before));
    assert.deepEqual(decodeHash(out.changes[0]!.value!), new Map([['a', b('2')]]));
  });
});
