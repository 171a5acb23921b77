import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ClientLimits, type InputHolder } from './limits.ts';

function holder(log: string[], name: string): InputHolder & { name: string; evicted: boolean } {
  const h = {
    name,
    bytes: 0,
    evicted: false,
    evict() {
      h.evicted = true;
      log.push(name);
    },
  };
  return h;
}

describe('ClientLimits', () => {
  test('admits up to max_clients, then refuses until one leaves', () => {
    const refused: string[] = [];
    const l = new ClientLimits({ maxClients: 2, maxInputBytes: 1024, onRefused: (x) => refused.push(x) });
    assert.equal(l.admit(), true);
    assert.equal(l.admit(), true);
    assert.equal(l.admit(), false);
    assert.deepEqual(refused, ['max_clients']);
    assert.equal(l.connections(), 2);
    l.leave();
    assert.equal(l.admit(), true);
    l.leave();
    l.leave();
    l.leave(); // one too many: never below zero
    assert.equal(l.connections(), 0);
  });

  test('an overflowing budget evicts the holder with the most input, which may be the newcomer', () => {
    const log: string[] = [];
    const l = new ClientLimits({ maxInputBytes: 100, maxClients: 10 });
    const small = holder(log, 'small');
    const big = holder(log, 'big');
    assert.equal(l.hold(small, 10), true);
    assert.equal(l.hold(big, 80), true);
    assert.equal(l.input(), 90);
    const third = holder(log, 'third');
    assert.equal(l.hold(third, 20), true); // 110 > 100: big goes
    assert.deepEqual(log, ['big']);
    assert.equal(l.input(), 30);
    assert.equal(l.hold(third, 95), false); // third is now the largest
    assert.deepEqual(log, ['big', 'third']);
    assert.equal(l.input(), 10);
    l.release(small);
    assert.equal(l.input(), 0);
  });

  test('release is idempotent and a holder holding 0 is not tracked', () => {
    const l = new ClientLimits({ maxInputBytes: 100, maxClients: 10 });
    const h = holder([], 'h');
    l.hold(h, 50);
    l.release(h);
    l.release(h);
    assert.equal(l.input(), 0);
    l.hold(h, 0);
    assert.equal(l.input(), 0);
  });

  test('property: after every hold the total is within the budget and equals the sum of the holders', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.array(fc.tuple(fc.nat(7), fc.nat(1500)), { maxLength: 80 }), (budget, steps) => {
        const l = new ClientLimits({ maxInputBytes: budget, maxClients: 10 });
        const hs = Array.from({ length: 8 }, (_, i) => holder([], `h${i}`));
        for (const [i, bytes] of steps) {
          const h = hs[i]!;
          if (h.evicted) continue; // a closed connection holds nothing more
          const before = hs.filter((x) => !x.evicted).map((x) => x.bytes);
          const kept = l.hold(h, bytes);
          assert.ok(l.input() <= budget);
          assert.equal(l.input(), hs.reduce((s, x) => s + x.bytes, 0));
          assert.equal(kept, !h.evicted);
          // whoever was evicted held at least as much as anyone left
          const evictedNow = hs.filter((x) => x.evicted && x.bytes === 0);
          if (evictedNow.length > 0) assert.ok(Math.max(...before, bytes) >= Math.max(0, ...hs.map((x) => x.bytes)));
        }
      }),
    );
  });
});
