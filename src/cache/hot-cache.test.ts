import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HOT_ENTRY_OVERHEAD_BYTES, HotCache } from './hot-cache.ts';

class FakeClock {
  t = 5_000;
  now(): number {
    return this.t;
  }
}

const size = (key: string, value: Buffer): number => Buffer.byteLength(key) + value.length + HOT_ENTRY_OVERHEAD_BYTES;

test('get/set/delete and expiry against the injected clock', () => {
  const clock = new FakeClock();
  const hot = new HotCache({ maxBytes: 10_000, clock });
  hot.set('a', Buffer.from('1'), 0);
  hot.set('b', Buffer.from('2'), clock.t + 100);
  assert.equal(hot.get('a')?.toString(), '1');
  assert.equal(hot.get('b')?.toString(), '2');
  clock.t += 100;
  assert.equal(hot.get('b'), undefined);
  assert.equal(hot.stats().entries, 1);
  // an already expired value is not kept and drops the older copy
  hot.set('a', Buffer.from('x'), clock.t);
  assert.equal(hot.get('a'), undefined);
  hot.set('c', Buffer.from('3'), 0);
  assert.equal(hot.delete('c'), true);
  assert.equal(hot.delete('c'), false);
  hot.set('d', Buffer.from('4'), 0);
  hot.clear();
  assert.deepEqual(hot.stats(), { bytes: 0, entries: 0 });
});

test('property: bytes stay within the bound and the latest copy is kept', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 150, max: 1500 }),
      fc.array(fc.tuple(fc.nat(20), fc.nat(300)), { maxLength: 150 }),
      (maxBytes, sets) => {
        const hot = new HotCache({ maxBytes, clock: new FakeClock() });
        for (const [k, n] of sets) {
          const key = `k${k}`;
          const value = Buffer.alloc(n, 7);
          hot.set(key, value, 0);
          const { bytes } = hot.stats();
          assert.ok(bytes <= maxBytes, `bytes ${bytes} > ${maxBytes}`);
          if (size(key, value) <= maxBytes) assert.equal(hot.get(key)?.length, n);
          else assert.equal(hot.get(key), undefined);
        }
      },
    ),
    { numRuns: 150 },
  );
});

test('resize evicts least recently used copies; 0 disables', () => {
  const clock = new FakeClock();
  const one = size('k0', Buffer.alloc(10));
  const hot = new HotCache({ maxBytes: one * 5, clock });
  for (let i = 0; i < 5; i++) hot.set(`k${i}`, Buffer.alloc(10), 0);
  hot.get('k0');
  hot.resize(one * 2);
  assert.deepEqual(hot.stats(), { bytes: one * 2, entries: 2 });
  assert.ok(hot.get('k0'));
  assert.ok(hot.get('k4'));
  hot.resize(0);
  hot.set('k9', Buffer.alloc(1), 0);
  assert.equal(hot.get('k9'), undefined);
  assert.deepEqual(hot.stats(), { bytes: 0, entries: 0 });
  hot.resize(one);
  hot.set('k9', Buffer.alloc(10), 0);
  assert.ok(hot.get('k9'));
  assert.throws(() => hot.resize(-1), /maxBytes.*Got: -1/);
});
