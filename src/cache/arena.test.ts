import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RECORD_HEADER_BYTES, ValueArena } from './arena.ts';

const SEG = 4096;
const bytes = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

test('options are validated and name the bad value', () => {
  assert.throws(() => new ValueArena({ segmentBytes: 100 }), /segmentBytes.*Got: 100/);
  assert.throws(() => new ValueArena({ segmentBytes: SEG, largeValueBytes: SEG }), /largeValueBytes.*Got: 4096/);
  assert.throws(() => new ValueArena({ maxDeadShare: 1 }), /maxDeadShare.*Got: 1/);
});

test('write, read, length, compare, free; reads are copies', () => {
  const a = new ValueArena({ segmentBytes: SEG, initialSlots: 4 });
  a.write(0, Buffer.from('hello'));
  a.write(1, Buffer.alloc(0));
  assert.equal(a.read(0).toString(), 'hello');
  assert.equal(a.read(1).length, 0);
  assert.equal(a.has(1), true);
  assert.equal(a.length(0), 5);
  assert.equal(a.compare(0, Buffer.from('hello')), 0);
  assert.equal(a.compare(0, Buffer.from('help')), -1);
  assert.equal(a.compare(0, Buffer.from('hell')), 1);
  // a read is the caller's: changing it or overwriting the slot leaves the other untouched
  const r = a.read(0);
  r[0] = 0x4a;
  assert.equal(a.read(0).toString(), 'hello');
  a.write(0, Buffer.from('world'));
  assert.equal(r.toString(), 'Jello');
  a.free(0);
  assert.equal(a.has(0), false);
  assert.throws(() => a.read(0), /slot 0 holds no value/);
  a.free(0); // twice is a no-op
});

test('an overwrite that fits the record is written in place: no dead bytes', () => {
  const a = new ValueArena({ segmentBytes: SEG });
  a.write(0, bytes(100, 1));
  for (let i = 0; i < 1000; i++) a.write(0, bytes(100 - (i % 40), i & 0xff));
  assert.equal(a.stats().deadBytes, 0);
  assert.equal(a.stats().segments, 1);
  assert.deepEqual(a.read(0), bytes(100 - (999 % 40), 999 & 0xff));
  // smaller than half the record: a new record (the old one is dead)
  a.write(0, bytes(10, 9));
  assert.equal(a.stats().deadBytes, 100 + RECORD_HEADER_BYTES);
  assert.deepEqual(a.read(0), bytes(10, 9));
});

test('large values are kept as given, and freed without touching segments', () => {
  const a = new ValueArena({ segmentBytes: SEG, largeValueBytes: 512 });
  const big = bytes(513, 3);
  a.write(2, big);
  assert.equal(a.read(2), big); // the same Buffer
  assert.equal(a.stats().largeBytes, 513);
  assert.equal(a.stats().segments, 0);
  a.write(2, bytes(20, 4)); // from large to a record
  assert.equal(a.stats().largeBytes, 0);
  assert.deepEqual(a.read(2), bytes(20, 4));
  a.write(2, big); // and back: the record is dead
  assert.equal(a.stats().deadBytes, 20 + RECORD_HEADER_BYTES);
  a.free(2);
  assert.equal(a.stats().largeBytes, 0);
  // a view into a much larger buffer is copied, so the larger buffer is not kept alive
  const batch = Buffer.alloc(4000, 5);
  const view = batch.subarray(100, 700);
  a.write(3, view);
  assert.notEqual(a.read(3).buffer, batch.buffer);
  assert.deepEqual(a.read(3), view);
});

test('compaction reclaims dead segments, moves live records and keeps every value intact', () => {
  const a = new ValueArena({ segmentBytes: SEG, initialSlots: 2048 });
  const N = 2000;
  // 2000 x (30 + 6) bytes: ~18 segments
  for (let s = 0; s < N; s++) a.write(s, bytes(30, s & 0xff));
  const full = a.stats().segments;
  assert.ok(full >= 17, `segments ${full}`);
  // free three in four: most segments are now mostly dead
  for (let s = 0; s < N; s++) if (s % 4 !== 0) a.free(s);
  // new writes do the compaction work as they go (a few records per write)
  for (let s = 0; s < N; s += 4) a.write(s, bytes(60, (s + 1) & 0xff));
  const st = a.stats();
  assert.ok(st.compactedSegments > 0, 'compaction ran');
  assert.ok(st.movedRecords > 0, 'live records moved');
  assert.ok(st.deadBytes <= 0.25 * st.segments * SEG + 2 * SEG, `dead ${st.deadBytes} of ${st.segments} segments`);
  for (let s = 0; s < N; s++) {
    if (s % 4 === 0) assert.deepEqual(a.read(s), bytes(60, (s + 1) & 0xff), `slot ${s}`);
    else assert.equal(a.has(s), false);
  }
  // compactAll leaves at most the head with dead bytes: the live bytes fit in ~4 segments
  a.compactAll();
  const live = (N / 4) * (60 + RECORD_HEADER_BYTES);
  assert.ok(a.stats().segments <= Math.ceil(live / SEG) + 1, `segments ${a.stats().segments}`);
  for (let s = 0; s < N; s += 4) assert.deepEqual(a.read(s), bytes(60, (s + 1) & 0xff));
});

test('a released segment is reused: steady overwrites of changing sizes stay bounded', () => {
  const a = new ValueArena({ segmentBytes: SEG, initialSlots: 256 });
  const N = 200;
  let peak = 0;
  for (let round = 0; round < 200; round++) {
    // sizes alternate between rounds so no overwrite fits in place
    const n = round % 2 === 0 ? 20 : 50;
    for (let s = 0; s < N; s++) a.write(s, bytes(n, (s + round) & 0xff));
    peak = Math.max(peak, a.stats().segments);
  }
  // live data is 200 x 56 bytes, under 3 segments; dead share is bounded at 25% plus slack
  assert.ok(peak <= 8, `peak segments ${peak}`);
  for (let s = 0; s < N; s++) assert.deepEqual(a.read(s), bytes(50, (s + 199) & 0xff));
});

test('property: the arena matches a Map model through writes, frees, growth and compaction', () => {
  const opArb = fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant('write' as const), s: fc.nat(15), n: fc.oneof(fc.nat(300), fc.integer({ min: 400, max: 700 })), fill: fc.nat(255) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('free' as const), s: fc.nat(15) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('compact' as const) }) },
  );
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 20, maxLength: 300 }), (ops) => {
      const a = new ValueArena({ segmentBytes: SEG, largeValueBytes: 512, initialSlots: 8 });
      const model = new Map<number, Buffer>();
      for (const o of ops) {
        if (o.op === 'write') {
          if (o.s >= a.capacity) a.grow(a.capacity * 2 > o.s ? a.capacity * 2 : o.s + 1);
          const b = bytes(o.n, o.fill);
          a.write(o.s, b);
          model.set(o.s, b);
        } else if (o.op === 'free') {
          if (o.s < a.capacity) a.free(o.s);
          model.delete(o.s);
        } else a.compactAll();
        for (let s = 0; s < a.capacity; s++) {
          const want = model.get(s);
          if (want === undefined) assert.equal(a.has(s), false, `slot ${s}`);
          else assert.deepEqual(a.read(s), want, `slot ${s}`);
        }
      }
    }),
    { numRuns: 100 },
  );
});
