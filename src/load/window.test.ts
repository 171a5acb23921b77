import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLoadWindowError, RateVector, RateWindow } from './window.ts';

function fakeClock(t = 0): { now(): number; set(v: number): void; tick(ms: number): void } {
  return {
    now: () => t,
    set: (v) => void (t = v),
    tick: (ms) => void (t += ms),
  };
}

describe('RateWindow', () => {
  it('gives the rate over a full window', () => {
    const clock = fakeClock(0);
    const w = new RateWindow({ windowMs: 10_000, buckets: 10, clock });
    // 100 events per second for 20 s
    for (let s = 0; s < 20; s++) {
      for (let k = 0; k < 100; k++) {
        w.add();
        clock.tick(10);
      }
    }
    assert.ok(Math.abs(w.rate() - 100) < 2, `rate ${w.rate()}`);
    // at t = 20 s the newest bucket has just opened: the window holds the 9 full buckets before it
    assert.equal(w.total(), 900);
  });

  it('forgets events one bucket at a time, and all after a whole window', () => {
    const clock = fakeClock(1_000_000);
    const w = new RateWindow({ windowMs: 10_000, buckets: 10, clock });
    w.add(500);
    clock.tick(5_000);
    assert.equal(w.total(), 500);
    clock.tick(4_999);
    assert.equal(w.total(), 500);
    clock.tick(1);
    assert.equal(w.total(), 0, 'the bucket of the burst left the window');
    w.add(7);
    clock.tick(1_000_000);
    assert.equal(w.total(), 0);
    assert.equal(w.rate(), 0);
  });

  it('does not dilute a young window by time never observed', () => {
    const clock = fakeClock(0);
    const w = new RateWindow({ windowMs: 10_000, buckets: 10, clock });
    for (let k = 0; k < 200; k++) {
      w.add();
      clock.tick(10); // 100/s for 2 s
    }
    assert.ok(Math.abs(w.rate() - 100) < 1, `rate ${w.rate()}`);
  });

  it('addAt and a burst in the first instant divide by at least one bucket', () => {
    const clock = fakeClock(0);
    const w = new RateWindow({ windowMs: 10_000, buckets: 10, clock });
    w.addAt(0, 50);
    assert.equal(w.rate(0), 50);
  });

  it('validates options and names the bad value', () => {
    assert.throws(() => new RateWindow({ windowMs: 0 }), (e) => isLoadWindowError(e) && /windowMs.*Got: 0/.test(e.message));
    assert.throws(() => new RateWindow({ buckets: 1.5 }), (e) => isLoadWindowError(e) && /buckets.*1\.5/.test(e.message));
  });
});

describe('RateVector', () => {
  it('keeps per-counter rates over the closed buckets', () => {
    const v = new RateVector({ size: 8, windowMs: 10_000, buckets: 10 });
    for (let b = 0; b < 15; b++) {
      v.inc(3, 100); // 100 per 1 s bucket
      if (b < 5) v.inc(5, 10); // stops after 5 s: leaves the window at 15 s
      v.rotate(b * 1000);
    }
    assert.equal(v.rate(3), 100);
    assert.equal(v.rate(5), 0);
    const seen: [number, number][] = [];
    v.forEachRate((i, r) => seen.push([i, r]));
    assert.deepEqual(seen, [[3, 100]]);
  });

  it('divides a young window by the buckets closed so far', () => {
    const v = new RateVector({ size: 2, windowMs: 10_000, buckets: 10 });
    assert.equal(v.rate(0), 0);
    v.inc(0, 30);
    v.rotate(1000);
    assert.equal(v.rate(0), 30);
    v.rotate(2000);
    assert.equal(v.rate(0), 15);
  });

  it('divides by the time the buckets really covered, so a late tick does not skew the rate', () => {
    const v = new RateVector({ size: 1, windowMs: 10_000, buckets: 10 });
    v.restart(0);
    let t = 0;
    for (let b = 0; b < 30; b++) {
      const d = b % 2 === 0 ? 1500 : 500; // irregular ticks, 100 events per second throughout
      t += d;
      v.inc(0, d / 10);
      v.rotate(t);
    }
    assert.ok(Math.abs(v.rate(0) - 100) < 1e-9, `rate ${v.rate(0)}`);
  });
});
