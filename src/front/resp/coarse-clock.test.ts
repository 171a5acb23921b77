import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoarseClock } from './coarse-clock.ts';

test('reads the source once per tick while used, stops when unused, restarts on the next read', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  let time = 1000;
  let reads = 0;
  const clock = new CoarseClock({
    now: () => {
      reads++;
      return time;
    },
  });
  assert.equal(clock.now(), 1000);
  time = 1005;
  // Between ticks the cached value is served: no source reads.
  for (let i = 0; i < 100; i++) assert.equal(clock.now(), 1000);
  assert.equal(reads, 1);
  t.mock.timers.tick(1);
  assert.equal(clock.now(), 1005);
  assert.equal(reads, 2);
  // A tick after a read refreshes; a tick with no read since stops the timer.
  t.mock.timers.tick(1);
  t.mock.timers.tick(1);
  assert.equal(reads, 3);
  time = 2000;
  t.mock.timers.tick(5);
  assert.equal(reads, 3, 'stopped: no reads while idle');
  // Stale no more: the first read after the stop reads the source.
  assert.equal(clock.now(), 2000);
  assert.equal(reads, 4);
  clock.stop();
});
