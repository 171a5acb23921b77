// MULTI/EXEC bodies: a transaction is its commands run one after another on an overlay, it
// changes each key once (its final state), a failed command changes nothing, WATCH aborts it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NULL_ARRAY, OK, array, bulk, integer, type Reply } from '../reply.ts';
import { checkQueued, execute, executeTransaction, watchOf } from './index.ts';
import { MapView, Slot, argv } from './testing.ts';
import type { EngineContext, EngineEntry, EngineView } from './types.ts';

const NOW = 1_700_000_000_000;
const ctx: EngineContext = { now: NOW, maxValueBytes: 1 << 16, random: () => 0.5 };
const b = (s: string) => Buffer.from(s, 'latin1');
const err = (message: string): Reply => ({ type: 'error', message });

const key = fc.constantFrom('a', 'b', 'c');
const val = fc.constantFrom('1', '-2', 'x', '', '2.5');
const command: fc.Arbitrary<string[]> = fc.oneof(
  fc.tuple(fc.constant('SET'), key, val).map((t) => [...t]),
  fc.tuple(fc.constant('SET'), key, val, fc.constantFrom('NX', 'XX', 'GET', 'KEEPTTL')).map((t) => [...t]),
  fc.tuple(fc.constant('SET'), key, val, fc.constant('PX'), fc.constantFrom('100', '0')).map((t) => [...t]),
  fc.tuple(fc.constantFrom('INCR', 'GET', 'DEL', 'TTL', 'PERSIST', 'TYPE', 'HGETALL', 'GETDEL'), key).map((t) => [...t]),
  fc.tuple(fc.constant('INCRBYFLOAT'), key, val).map((t) => [...t]),
  fc.tuple(fc.constant('APPEND'), key, val).map((t) => [...t]),
  fc.tuple(fc.constant('HSET'), key, fc.constantFrom('f', 'g'), val).map((t) => [...t]),
  fc.tuple(fc.constant('HINCRBY'), key, fc.constantFrom('f', 'g'), val).map((t) => [...t]),
  fc.tuple(fc.constant('HDEL'), key, fc.constantFrom('f', 'g')).map((t) => [...t]),
  fc.tuple(fc.constantFrom('RENAME', 'COPY'), key, key).map((t) => [...t]),
  fc.tuple(fc.constant('PEXPIRE'), key, fc.constantFrom('100', '-1')).map((t) => [...t]),
  fc.tuple(fc.constant('MSET'), key, val, key, val).map((t) => [...t]),
  fc.constantFrom<string[]>(['INCR'], ['NOPE', 'a']),
);

/** The slot's live contents, comparable. */
function contents(view: MapView): [string, number, string, number][] {
  return [...view.entries].map(([k, e]) => [k, e.type, e.value.toString('latin1'), e.expiresAt] as [string, number, string, number]).sort();
}

describe('executeTransaction', () => {
  it('answers and changes what its commands do one after another', () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 12 }), fc.array(command, { maxLength: 12 }), (setup, body) => {
        const one = new Slot(ctx);
        const all = new Slot(ctx);
        for (const c of setup) {
          one.run(...c);
          all.run(...c);
        }
        const sequential = body.map((c) => one.run(...c));
        const out = all.transaction(body);
        assert.deepEqual(out.reply, array(sequential));
        assert.deepEqual(contents(all.view), contents(one.view));
        // One change per key, the keys distinct.
        assert.equal(new Set(out.changes.map((c) => c.key)).size, out.changes.length);
      }),
    );
  });

  it('changes a key once, with its final state, in the order keys were first changed', () => {
    const s = new Slot(ctx);
    const out = s.transaction([['SET', 'b', '1'], ['SET', 'a', '1'], ['INCR', 'b'], ['DEL', 'a'], ['HSET', 'c', 'f', 'v']]);
    assert.deepEqual(out.reply, array([OK, OK, integer(2), integer(1), integer(1)]));
    assert.deepEqual(out.changes.map((c) => [c.key, c.value?.toString('latin1') ?? null]), [['b', '2'], ['a', null], ['c', out.changes[2]!.value!.toString('latin1')]]);
  });

  it('a command that fails changes nothing and does not stop the others', () => {
    const s = new Slot(ctx);
    s.run('SET', 's', 'text');
    const out = s.transaction([['SET', 'a', '1'], ['INCR', 's'], ['HSET', 's', 'f', 'v'], ['INCR', 'a'], ['MSET', 'x', '1', 'y']]);
    assert.deepEqual(out.reply, array([
      OK,
      err('ERR value is not an integer or out of range'),
      err('WRONGTYPE Operation against a key holding the wrong kind of value'),
      integer(2),
      err("ERR wrong number of arguments for 'mset' command"),
    ]));
    assert.deepEqual(out.changes.map((c) => c.key), ['a']);
    assert.deepEqual(s.run('GET', 's'), bulk(b('text')));
  });

  it('an empty transaction answers an empty array', () => {
    assert.deepEqual(new Slot(ctx).transaction([]), { reply: array([]), changes: [] });
  });
});

describe('WATCH', () => {
  it('aborts when a watched key was written since, and runs when it was not', () => {
    const s = new Slot(ctx);
    s.run('SET', 'k', '1');
    const w = watchOf('k', s.view, ctx);
    assert.deepEqual(s.transaction([['INCR', 'k']], [w]).reply, array([integer(2)]));
    const w2 = watchOf('k', s.view, ctx);
    s.run('SET', 'k', '2'); // same client or another: Redis aborts either way
    assert.deepEqual(s.transaction([['INCR', 'k']], [w2]), { reply: NULL_ARRAY, changes: [] });
    assert.deepEqual(s.run('GET', 'k'), bulk(b('2')));
  });

  it('sees a key created and deleted since WATCH, through the view’s tombstone versions', () => {
    const s = new Slot(ctx);
    const w = watchOf('k', s.view, ctx);
    assert.deepEqual(w, { key: 'k', version: 0, live: false });
    s.run('SET', 'k', '1');
    s.run('DEL', 'k');
    assert.deepEqual(s.transaction([['SET', 'k', 'x']], [w]).reply, NULL_ARRAY);
  });

  it('without EngineView.version, it compares live versions (a create-and-delete goes unnoticed)', () => {
    const entries = new Map<string, EngineEntry>();
    const view: EngineView = { get: (k) => entries.get(k) };
    const w = watchOf('k', view, ctx);
    entries.set('k', { type: 0, value: b('1'), expiresAt: 0, version: 3 });
    assert.deepEqual(executeTransaction([argv('GET', 'k')], view, ctx, [w]).reply, NULL_ARRAY);
    entries.delete('k');
    assert.deepEqual(executeTransaction([argv('GET', 'k')], view, ctx, [w]).reply.type, 'array');
  });

  it('aborts when a key live at WATCH has expired since (as Redis 7)', () => {
    const s = new Slot(ctx);
    s.run('SET', 'k', '1', 'PX', '10');
    const w = watchOf('k', s.view, ctx);
    s.ctx = { ...ctx, now: NOW + 10 };
    assert.deepEqual(s.transaction([['GET', 'k']], [w]).reply, NULL_ARRAY);
    // Already absent at WATCH: its expiry changes nothing.
    const w2 = watchOf('k', s.view, s.ctx);
    assert.deepEqual(s.transaction([['GET', 'k']], [w2]).reply, array([{ type: 'bulk', value: null }]));
  });
});

describe('checkQueued', () => {
  it('refuses what Redis refuses at queue time (unknown commands, arity), not syntax or types', () => {
    assert.deepEqual(checkQueued(argv('GET')), err("ERR wrong number of arguments for 'get' command"));
    assert.deepEqual(checkQueued(argv('nope', 'x')), err("ERR unknown command 'nope', with args beginning with: 'x' "));
    assert.equal(checkQueued(argv('SET', 'k', 'v', 'BOGUS')), null);
    assert.equal(checkQueued(argv('incr', 'k')), null);
  });

  it('execute answers the same errors', () => {
    const view = new MapView(() => NOW);
    for (const c of [['GET'], ['nope', 'x'], ['HSET', 'h', 'f']]) {
      assert.deepEqual(execute(argv(...c), view, ctx).reply, checkQueued(argv(...c)));
    }
  });
});
