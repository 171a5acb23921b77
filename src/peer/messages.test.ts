import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Reply } from '../cache/reply.ts';
import { isCodecError } from './codec.ts';
import { Exec, MigrateReady, Record, type RecordAnswer, Write } from './messages.ts';

const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
/** Replies as decoded: bulk values are Buffers, simple strings and errors have no CR/LF. */
const reply: fc.Arbitrary<Reply> = fc.letrec<{ r: Reply }>((tie) => ({
  r: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string({ maxLength: 20 }).map((value): Reply => ({ type: 'simple', value })),
    fc.string({ maxLength: 20 }).map((message): Reply => ({ type: 'error', message })),
    fc.integer().map((value): Reply => ({ type: 'integer', value })),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((value): Reply => ({ type: 'integer', value })),
    fc.option(bytes, { nil: null }).map((value): Reply => ({ type: 'bulk', value })),
    fc.option(fc.array(tie('r'), { maxLength: 4 }), { nil: null }).map((items): Reply => ({ type: 'array', items })),
    fc.array(fc.tuple(tie('r'), tie('r')), { maxLength: 3 }).map((entries): Reply => ({ type: 'map', entries })),
    fc.array(tie('r'), { maxLength: 4 }).map((items): Reply => ({ type: 'set', items })),
    fc.oneof(fc.double(), fc.constantFrom(Infinity, -Infinity, NaN)).map((value): Reply => ({ type: 'double', value })),
    fc.boolean().map((value): Reply => ({ type: 'boolean', value })),
  ),
})).r;

test('Exec: every reply survives the wire unchanged', () => {
  fc.assert(
    fc.property(reply, (r) => {
      const back = Exec.decodeResponse(Exec.encodeResponse(r));
      // -0 travels as 0 in a double's text: compare as Redis would print it
      assert.deepEqual(JSON.stringify(back, (_k, v) => (typeof v === 'bigint' ? `${v}n` : Object.is(v, -0) ? 0 : v)), JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? `${v}n` : Object.is(v, -0) ? 0 : v)));
    }),
  );
});

test('Exec: a request survives the wire unchanged; byte keys and arguments stay bytes', () => {
  const req = { group: 'g', key: '\xff\x00k', keys: ['\xff\x00k', ''], commands: [[Buffer.from('SET'), Buffer.from([0xff, 0]), Buffer.alloc(0)]], transaction: true, watched: [{ key: '', version: 42 }] };
  assert.deepEqual(Exec.decodeRequest(Exec.encodeRequest(req)), req);
});

test('Exec: a damaged reply is a CodecError, never a crash', () => {
  fc.assert(
    fc.property(reply, fc.nat(), fc.integer({ min: 0, max: 255 }), (r, at, byte) => {
      const good = Exec.encodeResponse(r);
      const bad = Buffer.from(good);
      bad[at % bad.length] = byte;
      try {
        Exec.decodeResponse(bad);
      } catch (e) {
        assert.ok(isCodecError(e), String(e));
      }
    }),
  );
});

test('Write survives the wire: set with expiry and condition, del', () => {
  for (const op of [{ op: 'del' as const }, { op: 'set' as const, value: Buffer.from([0, 0xff]), expiry: { kind: 'in' as const, ms: 5 }, cond: 'nx' as const }]) {
    const req = { group: 'g', key: '\xffk', op };
    assert.deepEqual(Write.decodeRequest(Write.encodeRequest(req)), req);
  }
});

test('Record answers survive the wire, with whether the holder says its copy may lack writes', () => {
  const record = { group: 'g', key: '\xffk', value: Buffer.from([0, 0xff]), version: 7, expiresAt: 0 };
  const answers: RecordAnswer[] = [{ kind: 'none' }, { kind: 'none', lacking: true }, { kind: 'misdirected' }, { kind: 'record', record }, { kind: 'record', record, lacking: true }];
  for (const a of answers) assert.deepEqual(Record.decodeResponse(Record.encodeResponse(a)), a);
});

test('MigrateReady carries what a source will send; an empty body (a node before it) says nothing', () => {
  const req = { migration: 'm1-x', expected: [{ group: 'g', entries: 500_000 }, { group: '\xffh', entries: 0 }] };
  assert.deepEqual(MigrateReady.decodeRequest(MigrateReady.encodeRequest(req)), req);
  assert.deepEqual(MigrateReady.decodeRequest(Buffer.alloc(0)), { migration: '', expected: [] });
  assert.throws(() => MigrateReady.decodeRequest(Buffer.from([1, 0, 0])), (e: unknown) => isCodecError(e));
});
