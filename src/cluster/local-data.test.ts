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

test('groups by name: each name finds its own group in any order, and an unknown one is refused', () => {
  const groups = new Map(['a', 'b'].map((name) => [name, new Group({ name, maxBytes: 1 << 20, clock, partitionOf })] as const));
  const local = new LocalData({ groups, hlc: new HybridClock(clock), clock });
  const set = (value: string): WriteOp => ({ op: 'set', value: Buffer.from(value), expiry: NO_EXPIRY });
  for (const [group, value] of [['a', '1'], ['b', '2'], ['b', '3'], ['a', '4']] as const) local.writeHere(group, `k-${value}`, set(value));
  const held = (group: string): string[] => ['k-1', 'k-2', 'k-3', 'k-4'].filter((k) => groups.get(group)!.store.peek(k) !== undefined);
  assert.deepEqual(held('a'), ['k-1', 'k-4']);
  assert.deepEqual(held('b'), ['k-2', 'k-3']);
  assert.equal(local.heldPartition('b', 'k-1'), -1);
  assert.equal(local.heldPartition('a', 'k-1'), partitionOf('k-1'));
  assert.throws(() => local.group('c'), /unknown group "c"/);
  assert.equal(local.group('a'), groups.get('a'));
  assert.equal(local.applyOne({ group: 'c', key: 'k', value: Buffer.from('x'), version: 1, expiresAt: 0 }), false);
});

test('a borrowed value (a view the caller reuses) is copied wherever the store would keep the Buffer itself', () => {
  const make = (): { local: LocalData; group: Group } => {
    const group = new Group({ name: 'g', maxBytes: 1 << 20, clock, partitionOf });
    return { local: new LocalData({ groups: new Map([['g', group]]), hlc: new HybridClock(clock), clock }), group };
  };
  const borrowed = (value: Buffer): WriteOp => ({ op: 'set', value, expiry: NO_EXPIRY, borrowed: true });
  const read = (group: Group, key: string): string | undefined => group.store.get(key)?.value?.toString('latin1');
  // a small value (copied into a segment), a large one (kept as its own Buffer) and the same under write hooks (persistence keeps what it is given)
  for (const size of [100, 64 * 1024]) {
    for (const hooked of [false, true]) {
      const { local, group } = make();
      const kept: Buffer[] = [];
      if (hooked) group.store.setWriteHooks({ onApply: (_key, entry) => void (entry.value !== null && kept.push(entry.value)) });
      const parse = Buffer.alloc(size + 10, 0x61); // the parser's storage; the value a view into it
      const view = parse.subarray(5, 5 + size);
      assert.ok(local.writeHere('g', 'k', borrowed(view)).applied);
      parse.fill(0x7a); // the parser moves on
      assert.equal(read(group, 'k'), 'a'.repeat(size), `size ${size}, hooks ${hooked}`);
      for (const v of kept) assert.equal(v.toString('latin1'), 'a'.repeat(size), `what the hook kept, size ${size}`);
      // write() never keeps a borrowed value either
      const again = Buffer.alloc(size, 0x62);
      local.write('g', 'k2', borrowed(again));
      again.fill(0x7a);
      assert.equal(read(group, 'k2'), 'b'.repeat(size));
    }
  }
});
