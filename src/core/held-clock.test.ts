import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeldClock } from './held-clock.ts';

function counting(): { clock: { now(): number }; reads: () => number; advance: (ms: number) => void } {
  let t = 1000;
  let reads = 0;
  return {
    clock: {
      now: () => {
        reads++;
        return t;
      },
    },
    reads: () => reads,
    advance: (ms) => (t += ms),
  };
}

test('unheld, every now() reads the source', () => {
  const src = counting();
  const c = new HeldClock(src.clock);
  assert.equal(c.now(), 1000);
  src.advance(5);
  assert.equal(c.now(), 1005);
  assert.equal(src.reads(), 2);
});

test('held, one reading until release; the next hold reads again', () => {
  const src = counting();
  const c = new HeldClock(src.clock);
  c.hold();
  assert.equal(c.now(), 1000);
  src.advance(7);
  assert.equal(c.now(), 1000);
  assert.equal(src.reads(), 1);
  c.release();
  assert.equal(c.now(), 1007);
  c.hold();
  src.advance(1);
  assert.equal(c.now(), 1008);
  c.release();
  assert.equal(c.held, false);
});

test('refresh() takes a new reading within a hold', () => {
  const src = counting();
  const c = new HeldClock(src.clock);
  c.hold();
  assert.equal(c.now(), 1000);
  src.advance(3);
  c.refresh();
  assert.equal(c.now(), 1003);
  c.release();
});

test('holds nest; release without hold throws', () => {
  const src = counting();
  const c = new HeldClock(src.clock);
  c.hold();
  c.hold();
  assert.equal(c.now(), 1000);
  src.advance(2);
  c.release();
  assert.equal(c.now(), 1000, 'still held by the outer hold');
  c.release();
  assert.equal(c.now(), 1002);
  assert.throws(() => c.release(), /without a hold/);
});
