import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EntryArena, RECORD_HEADER_BYTES } from './arena.ts';
import type { EntryArenaOptions } from './arena.ts';
import { hashBytes } from './key-index.ts';
import { SlotTable } from './slots.ts';

const SEG = 4096;
const bytes = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

/**
 * An arena over a slot table of `slots` slots, each marked as holding nothing. Its owner's
 * index (the locator compaction asks) is a scan of the first `slots` slots: the tests give each
 * slot a key of its own, as a store does.
 */
function makeArena(opts: EntryArenaOptions = {}, slots = 4096): EntryArena {
  const table = new SlotTable();
  while (table.capacity < slots) table.addPage();
  const locate = (buf: Uint8Array, start: number, end: number): number => {
    for (let s = 0; s < slots; s++) if (a.has(s) && a.keyEqualsBytes(s, buf, start, end)) return s;
    return -1;
  };
  const a: EntryArena = new EntryArena(table, locate, { segmentBytes: SEG, ...opts });
  for (let s = 0; s < table.capacity; s++) a.init(s);
  return a;
}

test('options are validated and name the bad value', () => {
  const t = new SlotTable();
  assert.throws(() => new EntryArena(t, () => -1, { segmentBytes: 100 }), /segmentBytes.*Got: 100/);
  assert.throws(() => new EntryArena(t, () => -1, { segmentBytes: SEG, largeValueBytes: SEG }), /largeValueBytes.*Got: 4096/);
  assert.throws(() => new EntryArena(t, () => -1, { maxDeadShare: 1 }), /maxDeadShare.*Got: 1/);
});

test('keys and values: put, read, lengths, compare, key equality, free; reads are copies', () => {
  const a = makeArena();
  a.putLatin1(0, 'k\u00e9y\u0000\u00ff', Buffer.from('hello'));
  a.putBytes(1, Buffer.from([9, 1, 2, 3, 9]), 1, 4, Buffer.alloc(0));
  a.putLatin1(2, '', null);
  assert.equal(a.readValue(0).toString(), 'hello');
  assert.equal(a.keyString(0, false), 'k\u00e9y\u0000\u00ff');
  assert.equal(a.keyLength(0), 5);
  assert.equal(a.valueLength(0), 5);
  assert.equal(a.keyEqualsLatin1(0, 'k\u00e9y\u0000\u00ff'), true);
  assert.equal(a.keyEqualsLatin1(0, 'k\u00e9y\u0000\u00fe'), false);
  assert.equal(a.keyEqualsLatin1(0, 'k\u00e9y\u0000'), false);
  assert.equal(a.keyEqualsBytes(0, Buffer.from('k\u00e9y\u0000\u00ff', 'latin1'), 0, 5), true);
  assert.equal(a.keyEqualsBytes(1, Buffer.from([1, 2, 3]), 0, 3), true);
  assert.equal(a.readValue(1).length, 0);
  assert.equal(a.keyLength(2), 0);
  assert.equal(a.keyEqualsLatin1(2, ''), true);
  assert.equal(a.hashKey(1, 5), hashBytes(5, Buffer.from([1, 2, 3]), 0, 3));
  assert.equal(a.compareValue(0, Buffer.from('hello')), 0);
  assert.equal(a.compareValue(0, Buffer.from('help')), -1);
  assert.equal(a.compareValue(0, Buffer.from('hell')), 1);
  const out = Buffer.alloc(8, 0);
  assert.equal(a.copyValue(0, out, 2), 5);
  assert.equal(out.toString('latin1', 2, 7), 'hello');
  // a read is the caller's: changing it or overwriting the slot leaves the other untouched
  const r = a.readValue(0);
  r[0] = 0x4a;
  assert.equal(a.readValue(0).toString(), 'hello');
  a.setValue(0, Buffer.from('world'));
  assert.equal(r.toString(), 'Jello');
  assert.equal(a.readValue(0).toString(), 'world');
  assert.equal(a.keyString(0, false), 'k\u00e9y\u0000\u00ff', 'the key stays');
  a.free(0);
  assert.equal(a.has(0), false);
  a.free(0); // twice is a no-op
});

test('a UTF-8 key is handed back decoded', () => {
  const a = makeArena();
  const k = Buffer.from('ключ', 'utf8');
  a.putBytes(0, k, 0, k.length, Buffer.from('v'));
  assert.equal(a.keyString(0, true), 'ключ');
  assert.equal(a.keyLength(0), 8);
});

test('an overwrite of the same length is written in place, another length is a new record, a tombstone keeps its record', () => {
  const a = makeArena();
  a.putLatin1(0, 'key', bytes(100, 1));
  for (let i = 0; i < 1000; i++) a.setValue(0, bytes(100, i & 0xff));
  assert.equal(a.stats().deadBytes, 0);
  assert.equal(a.stats().segments, 1);
  assert.deepEqual(a.readValue(0), bytes(100, 999 & 0xff));
  a.setValue(0, bytes(10, 9));
  assert.equal(a.stats().deadBytes, RECORD_HEADER_BYTES + 3 + 100);
  assert.deepEqual(a.readValue(0), bytes(10, 9));
  a.setValue(0, null); // key only: the value bytes are dead where they are
  assert.equal(a.valueLength(0), 0);
  assert.equal(a.keyString(0, false), 'key');
  assert.equal(a.stats().deadBytes, RECORD_HEADER_BYTES + 3 + 100 + 10);
  a.setValue(0, null); // twice is a no-op
  assert.equal(a.stats().deadBytes, RECORD_HEADER_BYTES + 3 + 100 + 10);
  a.setValue(0, bytes(10, 7)); // same length again: back in place, live again
  assert.deepEqual(a.readValue(0), bytes(10, 7));
  assert.equal(a.stats().deadBytes, RECORD_HEADER_BYTES + 3 + 100);
  a.setValue(0, null);
  a.setValue(0, bytes(30, 8)); // another length: a new record, all of the old one dead
  assert.deepEqual(a.readValue(0), bytes(30, 8));
  assert.equal(a.stats().deadBytes, 2 * (RECORD_HEADER_BYTES + 3) + 100 + 10);
  // compaction moves a tombstone's key alone
  a.putLatin1(1, 'tomb', bytes(500, 1));
  a.setValue(1, null);
  for (let s = 2; s < 12; s++) a.putLatin1(s, `filler${s}`, bytes(600, s)); // seal that segment
  const before = a.stats();
  a.compactAll();
  assert.ok(a.stats().movedRecords > before.movedRecords);
  assert.equal(a.keyString(1, false), 'tomb');
  assert.equal(a.valueLength(1), 0);
  assert.equal(a.keyString(0, false), 'key');
  assert.deepEqual(a.readValue(0), bytes(30, 8));
  // only the head may hold dead bytes now: the tombstone's 500 went with its old segment
  assert.ok(a.stats().deadBytes < SEG, `dead ${a.stats().deadBytes}`);
});

test('header lengths take more bytes for longer keys and values', () => {
  const a = makeArena({ segmentBytes: 1 << 20 });
  const long = 'x'.repeat(20_000); // 3-byte varint
  a.putLatin1(0, long, bytes(5000, 2)); // 2-byte varint
  a.putLatin1(1, 'y'.repeat(200), null);
  assert.equal(a.keyLength(0), 20_000);
  assert.equal(a.valueLength(0), 5000);
  assert.equal(a.keyEqualsLatin1(0, long), true);
  assert.deepEqual(a.readValue(0), bytes(5000, 2));
  assert.equal(a.keyString(1, false), 'y'.repeat(200));
  a.compactAll();
  assert.equal(a.keyEqualsLatin1(0, long), true);
});

test('keys either side of a header varint boundary keep their length and value through a tombstone, a revival and compaction', () => {
  const a = makeArena();
  const lengths = [0, 1, 31, 32, 33, 63, 64, 127, 128, 300];
  lengths.forEach((n, s) => a.putLatin1(s, `${s}`.padEnd(n, 'k').slice(0, n || 0), bytes(10 + s, s)));
  lengths.forEach((n, s) => {
    assert.equal(a.keyLength(s), n, `key of ${n} bytes`);
    a.setValue(s, null);
    assert.equal(a.valueLength(s), 0, `tombstone of a ${n}-byte key`);
    assert.equal(a.keyLength(s), n);
  });
  lengths.forEach((n, s) => a.setValue(s, bytes(10 + s, 0x40 + s))); // revived in place: same length
  a.compactAll();
  lengths.forEach((n, s) => {
    assert.equal(a.keyLength(s), n);
    assert.deepEqual(a.readValue(s), bytes(10 + s, 0x40 + s), `value under a ${n}-byte key`);
  });
});

test('compaction tells a freed record from the live record of the same key in another slot', () => {
  const a = makeArena();
  // `k` in the first segment, sealed behind others; then all of it freed and `k` stored again
  // in another slot: its old record is dead, though the index has a slot for its key
  a.putLatin1(200, 'k', bytes(30, 1));
  for (let s = 0; s < 300; s++) a.putLatin1(s, `key${s}`, bytes(30, s));
  for (let s = 0; s < 300; s++) a.free(s);
  a.free(200);
  a.putLatin1(900, 'k', bytes(30, 2));
  assert.ok(a.stats().segments >= 3, 'the first segment is sealed');
  const moved = a.stats().movedRecords;
  a.compactAll();
  assert.equal(a.stats().movedRecords, moved, 'nothing live was left to move');
  assert.deepEqual(a.readValue(900), bytes(30, 2));
  assert.equal(a.has(200), false);
});

test('large entries are kept as given, and freed without touching segments', () => {
  const a = makeArena({ largeValueBytes: 512 });
  const big = bytes(513, 3);
  a.putLatin1(2, 'big', big);
  assert.equal(a.readValue(2), big); // the same Buffer
  assert.equal(a.stats().largeBytes, 513);
  assert.equal(a.stats().segments, 0);
  assert.equal(a.keyEqualsLatin1(2, 'big'), true);
  assert.equal(a.keyEqualsBytes(2, Buffer.from('big'), 0, 3), true);
  a.setValue(2, bytes(20, 4)); // from large to a record, with its key
  assert.equal(a.stats().largeBytes, 0);
  assert.deepEqual(a.readValue(2), bytes(20, 4));
  assert.equal(a.keyString(2, false), 'big');
  a.setValue(2, big); // and back: the record is dead
  assert.equal(a.stats().deadBytes, RECORD_HEADER_BYTES + 3 + 20);
  assert.equal(a.keyString(2, false), 'big');
  a.setValue(2, null); // a tombstone of a large entry: a small key-only record
  assert.equal(a.stats().largeBytes, 0);
  assert.equal(a.keyString(2, false), 'big');
  a.free(2);
  // a key too long for a segment makes a large entry too
  const longKey = 'k'.repeat(SEG);
  a.putLatin1(4, longKey, bytes(1, 1));
  assert.equal(a.keyEqualsLatin1(4, longKey), true);
  assert.equal(a.stats().segments, 1);
  // a view into a much larger buffer is copied, so the larger buffer is not kept alive
  const batch = Buffer.alloc(4000, 5);
  const view = batch.subarray(100, 700);
  a.putLatin1(3, 'v', view);
  assert.notEqual(a.readValue(3).buffer, batch.buffer);
  assert.deepEqual(a.readValue(3), view);
});

test('compaction reclaims dead segments, moves live records and keeps every key and value intact', () => {
  const a = makeArena();
  const N = 2000;
  const key = (s: number): string => `key${s}`;
  // 2000 x (30 + ~7 + 6) bytes: ~21 segments
  for (let s = 0; s < N; s++) a.putLatin1(s, key(s), bytes(30, s & 0xff));
  const full = a.stats().segments;
  assert.ok(full >= 18, `segments ${full}`);
  // free three in four: most segments are now mostly dead
  for (let s = 0; s < N; s++) if (s % 4 !== 0) a.free(s);
  // new writes do the compaction work as they go (a few records per write)
  for (let s = 0; s < N; s += 4) a.setValue(s, bytes(60, (s + 1) & 0xff));
  const st = a.stats();
  assert.ok(st.compactedSegments > 0, 'compaction ran');
  assert.ok(st.movedRecords > 0, 'live records moved');
  assert.ok(st.deadBytes <= 0.25 * st.segments * SEG + 2 * SEG, `dead ${st.deadBytes} of ${st.segments} segments`);
  for (let s = 0; s < N; s++) {
    if (s % 4 === 0) {
      assert.deepEqual(a.readValue(s), bytes(60, (s + 1) & 0xff), `slot ${s}`);
      assert.equal(a.keyString(s, false), key(s));
    } else assert.equal(a.has(s), false);
  }
  // compactAll leaves at most the head with dead bytes
  a.compactAll();
  const live = (N / 4) * (60 + RECORD_HEADER_BYTES + 7);
  assert.ok(a.stats().segments <= Math.ceil(live / SEG) + 1, `segments ${a.stats().segments}`);
  for (let s = 0; s < N; s += 4) {
    assert.deepEqual(a.readValue(s), bytes(60, (s + 1) & 0xff));
    assert.equal(a.keyEqualsLatin1(s, key(s)), true);
  }
});

test('a released segment is reused: steady overwrites of changing sizes stay bounded', () => {
  const a = makeArena();
  const N = 200;
  for (let s = 0; s < N; s++) a.putLatin1(s, `k${s}`, bytes(20, s & 0xff));
  let peak = 0;
  for (let round = 1; round < 200; round++) {
    // sizes alternate between rounds so no overwrite is written in place
    const n = round % 2 === 0 ? 20 : 50;
    for (let s = 0; s < N; s++) a.setValue(s, bytes(n, (s + round) & 0xff));
    peak = Math.max(peak, a.stats().segments);
  }
  // live data is 200 x ~60 bytes, under 3 segments; dead share is bounded at 25% plus slack
  assert.ok(peak <= 8, `peak segments ${peak}`);
  for (let s = 0; s < N; s++) assert.deepEqual(a.readValue(s), bytes(50, (s + 199) & 0xff));
});

test('property: the arena matches a Map model through puts, overwrites, tombstones, frees and compaction', () => {
  const opArb = fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), s: fc.nat(15), k: fc.nat(40), n: fc.oneof(fc.nat(300), fc.integer({ min: 400, max: 700 })), fill: fc.nat(255) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('tomb' as const), s: fc.nat(15) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('free' as const), s: fc.nat(15) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('compact' as const) }) },
  );
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 20, maxLength: 300 }), (ops) => {
      const a = makeArena({ largeValueBytes: 512 }, 16);
      const model = new Map<number, { key: string; value: Buffer | null }>();
      for (const o of ops) {
        const held = model.get(o.op === 'compact' ? -1 : o.s);
        if (o.op === 'set') {
          const b = bytes(o.n, o.fill);
          if (held === undefined) {
            const key = `${o.s}:`.padEnd(o.k + 3, 'k');
            a.putLatin1(o.s, key, b);
            model.set(o.s, { key, value: b });
          } else {
            a.setValue(o.s, b);
            held.value = b;
          }
        } else if (o.op === 'tomb') {
          if (held !== undefined) {
            a.setValue(o.s, null);
            held.value = null;
          }
        } else if (o.op === 'free') {
          a.free(o.s);
          model.delete(o.s);
        } else {
          a.compactAll();
          // dead bytes are counted exactly: once compacted, only the head holds any
          assert.ok(a.stats().deadBytes >= 0 && a.stats().deadBytes < SEG, `dead ${a.stats().deadBytes}`);
        }
        for (let s = 0; s < 16; s++) {
          const want = model.get(s);
          if (want === undefined) {
            assert.equal(a.has(s), false, `slot ${s}`);
            continue;
          }
          assert.equal(a.keyString(s, false), want.key, `key of slot ${s}`);
          assert.equal(a.keyEqualsLatin1(s, want.key), true);
          assert.equal(a.valueLength(s), want.value?.length ?? 0);
          if (want.value !== null) assert.deepEqual(a.readValue(s), want.value, `slot ${s}`);
        }
      }
    }),
    { numRuns: 100 },
  );
});
