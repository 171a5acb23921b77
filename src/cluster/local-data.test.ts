import { test } from 'node:test';
import assert from 'node:assert/strict';
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
