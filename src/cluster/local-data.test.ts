import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NO_EXPIRY, type WriteOp } from '../cache/ops.ts';
import { Group } from '../cache/group.ts';
import { partitionOf as hashPartition } from '../core/placement/hash.ts';
import type { Clock } from '../core/types.ts';
import { HybridClock } from '../core/version.ts';
import { LocalData } from './local-data.ts';

const clock: Clock = { now: () => 1_000_000 };
const partitionOf = (key: string): number => hashPartition(key, 64);

function setup() {
  let loads = 0;
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const loader = async (key: string): Promise<Buffer> => {
    loads++;
    await gate;
    return Buffer.from(`origin:${key}`);
  };
  const groups = new Map([['g', new Group({ name: 'g', maxBytes: 1 << 20, clock, partitionOf, loader })]]);
  const local = new LocalData({ groups, hlc: new HybridClock(clock), clock });
  return { local, loads: () => loads, release };
}

test('a miss that reaches load() after another load filled the cache is answered from the cache: one origin load', async () => {
  const { local, loads, release } = setup();
  // reader A misses and loads; reader B missed too, but is still on its way (it awaited other holders)
  const a = local.load('g', 'k');
  release();
  assert.equal((await a)?.source, 'load');
  const b = await local.load('g', 'k');
  assert.deepEqual([b?.source, b?.value.toString()], ['hit', 'origin:k']);
  assert.equal(loads(), 1);
});

test('concurrent loads of one key share one origin load', async () => {
  const { local, loads, release } = setup();
  const all = Array.from({ length: 20 }, () => local.load('g', 'k'));
  release();
  const got = await Promise.all(all);
  assert.ok(got.every((r) => r?.value.toString() === 'origin:k'));
  assert.equal(loads(), 1);
});

test('property: writeHere() decides and applies exactly as write() does, and its reused record keeps no value', () => {
  const key = fc.constantFrom('a', 'b', 'c');
  const op = fc.oneof(
    fc.record({ op: fc.constant('set' as const), value: fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)), expiry: fc.oneof(fc.constant(NO_EXPIRY), fc.record({ kind: fc.constant('in' as const), ms: fc.integer({ min: 1, max: 5000 }) }), fc.constant({ kind: 'keep' as const })), cond: fc.constantFrom(undefined, 'nx' as const, 'xx' as const) }).map(({ cond, ...o }) => (cond === undefined ? o : { ...o, cond })),
    fc.constant({ op: 'del' as const }),
    fc.record({ op: fc.constant('expire' as const), expiry: fc.oneof(fc.constant(NO_EXPIRY), fc.record({ kind: fc.constant('in' as const), ms: fc.integer({ min: -10, max: 5000 }) })) }),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(key, op, fc.nat(3000)), { maxLength: 40 }), (steps) => {
      let now = 1_000_000;
      const c: Clock = { now: () => now };
      const make = (): LocalData => new LocalData({ groups: new Map([['g', new Group({ name: 'g', maxBytes: 1 << 20, clock: c, partitionOf })]]), hlc: new HybridClock(c), clock: c });
      const a = make();
      const b = make();
      for (const [k, o, dt] of steps) {
        now += dt;
        const out = a.write('g', k, o as WriteOp);
        assert.deepEqual(b.writeHere('g', k, o as WriteOp), out.result);
        for (const x of ['a', 'b', 'c']) assert.deepEqual(b.record('g', x), a.record('g', x), `${x} after ${o.op}`);
      }
      assert.equal((b as unknown as { scratch: { value: unknown } }).scratch.value, null);
    }),
    { numRuns: 200 },
  );
});
