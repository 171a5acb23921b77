import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isTopKError, SpaceSaving } from './topk.ts';
import { seededRandom, zipfSampler } from './zipf.ts';

describe('SpaceSaving', () => {
  it('finds every true top-16 key of a Zipf(1.1) stream with capacity 256, counts within the bound', () => {
    const random = seededRandom(42);
    const next = zipfSampler(100_000, 1.1, random);
    // rank r -> a key name that does not sort like the rank, so order comes from counts only
    const name = (r: number): string => `user:${(r * 2654435761) >>> 0}`;
    const sketch = new SpaceSaving({ capacity: 256 });
    const exact = new Map<string, number>();
    const N = 300_000;
    for (let i = 0; i < N; i++) {
      const k = name(next());
      sketch.offer(k);
      exact.set(k, (exact.get(k) ?? 0) + 1);
    }
    const trueTop = [...exact.entries()].sort((a, b) => b[1] - a[1]).slice(0, 16);
    const got = sketch.top(16);
    assert.equal(got.length, 16);
    const gotKeys = new Set(got.map((h) => h.key));
    for (const [k] of trueTop) assert.ok(gotKeys.has(k), `true top key ${k} missing`);
    for (const h of sketch.top(256)) {
      const truth = exact.get(h.key) ?? 0;
      assert.ok(h.count - h.error <= truth && truth <= h.count, `${h.key}: ${h.count}-${h.error} vs ${truth}`);
      assert.ok(h.error <= N / 256 + 1e-9, `error ${h.error} above N/capacity`);
    }
    // and the top keys are estimated well, not merely found
    for (const h of got) {
      const truth = exact.get(h.key)!;
      assert.ok((h.count - truth) / truth < 0.02, `${h.key} overestimated: ${h.count} vs ${truth}`);
    }
  });

  it('keeps memory bounded by capacity whatever the key count', () => {
    const sketch = new SpaceSaving({ capacity: 64 });
    for (let i = 0; i < 200_000; i++) sketch.offer(`k${i}`);
    assert.equal(sketch.size, 64);
    assert.equal(sketch.top(1000).length, 64);
    assert.equal(sketch.total, 200_000);
  });

  it('decays, so a newly hot key overtakes a formerly hot one', () => {
    const sketch = new SpaceSaving({ capacity: 8 });
    for (let i = 0; i < 1000; i++) sketch.offer('old');
    for (let round = 0; round < 10; round++) {
      sketch.decay(0.5);
      for (let i = 0; i < 100; i++) sketch.offer('new');
    }
    const [first, second] = sketch.top(2);
    assert.equal(first?.key, 'new');
    assert.equal(second?.key, 'old');
    assert.ok(second!.count < 1, `old count ${second!.count}`);
    assert.ok(Math.abs(sketch.total - (1000 / 1024 + 100 * (2 - 1 / 512))) < 1e-6);
  });

  it('weights, ties by key, ignores non-positive weights', () => {
    const sketch = new SpaceSaving({ capacity: 4 });
    sketch.offer('b', 5);
    sketch.offer('a', 5);
    sketch.offer('c', 2.5);
    sketch.offer('d', 0);
    sketch.offer('d', Number.NaN);
    assert.deepEqual(
      sketch.top(3).map((h) => [h.key, h.count]),
      [
        ['a', 5],
        ['b', 5],
        ['c', 2.5],
      ],
    );
    assert.equal(sketch.estimate('d'), 0);
  });

  it('validates options', () => {
    assert.throws(() => new SpaceSaving({ capacity: 0 }), (e) => isTopKError(e) && /capacity.*Got: 0/.test(e.message));
    assert.throws(() => new SpaceSaving().decay(0), isTopKError);
  });

  it('property: count - error <= exact <= count, error <= total / capacity, counts sum to total', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 5 })), { maxLength: 400 }), (capacity, stream) => {
        const sketch = new SpaceSaving({ capacity });
        const exact = new Map<string, number>();
        for (const [k, w] of stream) {
          sketch.offer(`k${k}`, w);
          exact.set(`k${k}`, (exact.get(`k${k}`) ?? 0) + w);
        }
        const all = sketch.top(capacity);
        let sum = 0;
        for (const h of all) {
          const truth = exact.get(h.key) ?? 0;
          assert.ok(h.count - h.error <= truth && truth <= h.count);
          assert.ok(h.error <= sketch.total / capacity + 1e-9);
          sum += h.count;
        }
        assert.equal(sum, sketch.total);
        // the heap gives the true minimum: every untracked key's weight is at most the smallest count
        const min = all.length === capacity ? all[all.length - 1]!.count : 0;
        for (const [k, w] of exact) if (sketch.estimate(k) === 0) assert.ok(w <= min);
      }),
      { numRuns: 300 },
    );
  });
});

it("top(k, seenWithin) leaves out keys not offered in the last steps", () => {
  const s = new SpaceSaving({ capacity: 8 });
  s.offer('old', 100);
  s.advance();
  s.offer('new', 1);
  s.advance();
  assert.deepEqual(s.top(5).map((h) => h.key), ['old', 'new']);
  assert.deepEqual(s.top(5, 2).map((h) => h.key), ['new']);
  assert.deepEqual(s.top(5, 1), []);
  s.offer('old', 1);
  assert.deepEqual(s.top(5, 1).map((h) => h.key), ['old']);
});
