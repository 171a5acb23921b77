import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Group } from '../../cache/group.ts';
import { partitionOf } from '../../core/placement/hash.ts';
import type { Clock } from '../../core/types.ts';
import { HeldClock } from '../../core/held-clock.ts';
import { HybridClock } from '../../core/version.ts';
import { decodeRecords, isCodecError, type WireRecord } from '../../peer/codec.ts';
import { LocalData } from '../local-data.ts';
import { BatchEncoder, applyBatch } from './batch.ts';

const clock: Clock = { now: () => 1_000_000 };

function local(groups = ['a', 'b']): LocalData {
  const map = new Map(groups.map((name) => [name, new Group({ name, maxBytes: 1 << 24, clock, partitionOf: (k) => partitionOf(k, 64) })]));
  return new LocalData({ groups: map, hlc: new HybridClock(clock), clock });
}

function encodeAll(records: readonly WireRecord[], capacity: number, maxRecords?: number): Buffer[] {
  const enc = new BatchEncoder({ capacity, ...(maxRecords !== undefined ? { maxRecords } : {}) });
  const out: Buffer[] = [];
  for (const r of records) {
    if (!enc.add(r.group, r.key, r.value, r.version, r.expiresAt, r.type)) {
      out.push(enc.take()!);
      assert.ok(enc.add(r.group, r.key, r.value, r.version, r.expiresAt, r.type), 'an empty batch takes any record');
    }
  }
  const last = enc.take();
  if (last !== undefined) out.push(last);
  assert.equal(enc.take(), undefined);
  return out;
}

test('BatchEncoder writes transport-codec frames: byte keys, typed entries, tombstones, a record larger than the buffer alone', () => {
  const records: WireRecord[] = [
    { group: 'a', key: 'k1', value: Buffer.from('one'), version: 5, expiresAt: 0 },
    { group: 'a', key: Buffer.from('ключ-€-𝄞').toString('latin1'), value: Buffer.alloc(40, 7), version: 6.5, expiresAt: 2_000_000, type: 1 },
    { group: 'b', key: 'gone', value: null, version: 7, expiresAt: 0 },
    { group: 'b', key: 'big', value: Buffer.alloc(500, 1), version: 8, expiresAt: 0 },
    { group: 'a', key: 'after', value: Buffer.from(''), version: 9, expiresAt: 0 },
  ];
  const batches = encodeAll(records, 128);
  assert.ok(batches.length >= 3, `split into ${batches.length} batches`);
  const decoded = batches.flatMap((b) => decodeRecords(b, { maxRecords: 100, maxValueBytes: 1000 }));
  assert.deepEqual(decoded, records);
  // the record cap closes a batch too
  assert.equal(encodeAll(records, 1 << 20, 2).length, 3);
});

test('BatchEncoder grows its buffer up to the capacity: a large batch stays one batch, a count-capped one stays small', () => {
  const records: WireRecord[] = Array.from({ length: 200 }, (_, i) => ({ group: 'a', key: `key-${i}`, value: Buffer.alloc(500, i), version: i + 1, expiresAt: 0 }));
  const one = encodeAll(records, 1 << 20);
  assert.equal(one.length, 1, '~100 KB in a 1 MiB capacity: one batch');
  assert.deepEqual(decodeRecords(one[0]!, { maxRecords: 1000, maxValueBytes: 1000 }), records);
  const capped = encodeAll(records, 1 << 20, 10);
  assert.equal(capped.length, 20);
  for (const b of capped) assert.ok(b.buffer.byteLength < 1 << 20, 'a 10-record batch does not take a 1 MiB buffer');
  assert.deepEqual(capped.flatMap((b) => decodeRecords(b, { maxRecords: 1000, maxValueBytes: 1000 })), records);
});

test('applyBatch applies last-writer-wins in slices and rejects a damaged batch', async () => {
  const data = local();
  data.apply([{ group: 'a', key: 'newer', value: Buffer.from('kept'), version: 100, expiresAt: 0 }]);
  data.apply([{ group: 'a', key: 'deleted', value: null, version: 100, expiresAt: 0 }]);
  const records: WireRecord[] = [];
  for (let i = 0; i < 50; i++) records.push({ group: i % 2 === 0 ? 'a' : 'b', key: `k${i}`, value: Buffer.from(`v${i}`), version: 10 + i, expiresAt: 0 });
  records.push({ group: 'a', key: 'newer', value: Buffer.from('old'), version: 50, expiresAt: 0 });
  records.push({ group: 'a', key: 'deleted', value: Buffer.from('resurrected?'), version: 60, expiresAt: 0 });
  records.push({ group: 'nope', key: 'x', value: Buffer.from('unknown group'), version: 1, expiresAt: 0 });
  const [batch] = encodeAll(records, 1 << 20);
  const out = await applyBatch(batch!, data, { maxRecords: 1000, maxValueBytes: 100, slice: 7 });
  assert.deepEqual(out, { received: 53, applied: 50 });
  assert.equal(data.record('b', 'k49')?.value?.toString(), 'v49');
  assert.equal(data.record('a', 'newer')?.value?.toString(), 'kept');
  assert.equal(data.record('a', 'deleted')?.value, null);
  // values are copies: changing the request buffer afterwards changes nothing stored
  batch!.fill(0);
  assert.equal(data.record('a', 'k0')?.value?.toString(), 'v0');

  const [good] = encodeAll([{ group: 'a', key: 'z', value: Buffer.from('zz'), version: 1, expiresAt: 0 }], 1024);
  await assert.rejects(applyBatch(good!.subarray(0, good!.length - 1), local(), { maxRecords: 10, maxValueBytes: 10 }), isCodecError);
  await assert.rejects(applyBatch(Buffer.concat([good!, Buffer.from([1])]), local(), { maxRecords: 10, maxValueBytes: 10 }), /trailing/);
  await assert.rejects(applyBatch(good!, local(), { maxRecords: 0, maxValueBytes: 10 }), /exceeds the limit/);
  await assert.rejects(applyBatch(good!, local(), { maxRecords: 10, maxValueBytes: 1 }), /exceeds 1/);
});

test('applyBatch holds the clock around each slice: one reading per slice, released between them and after a failure', async () => {
  let reads = 0;
  const source: Clock = { now: () => (reads++, 1_000_000) };
  const held = new HeldClock(source);
  const map = new Map([['a', new Group({ name: 'a', maxBytes: 1 << 24, clock: held, partitionOf: (k) => partitionOf(k, 64) })]]);
  const data = new LocalData({ groups: map, hlc: new HybridClock(source), clock: held });
  const records: WireRecord[] = Array.from({ length: 30 }, (_, i) => ({ group: 'a', key: `k${i}`, value: Buffer.from('v'), version: 10 + i, expiresAt: 2_000_000 }));
  const [batch] = encodeAll(records, 1 << 20);
  const holds: string[] = [];
  const hold = { hold: () => (holds.push('hold'), held.hold()), release: () => (holds.push('release'), held.release()) };
  reads = 0;
  const out = await applyBatch(batch!, data, { maxRecords: 100, maxValueBytes: 100, slice: 10, clockHold: hold });
  assert.equal(out.applied, 30);
  assert.deepEqual(holds, ['hold', 'release', 'hold', 'release', 'hold', 'release'], 'three slices, each held and released');
  assert.ok(reads <= 3 + 30, `the store read the clock once per slice (${reads} reads, the HLC's included)`);
  // a slice that throws (here the receiver's sum callback) still releases the hold
  holds.length = 0;
  const one = encodeAll([{ group: 'a', key: 'z', value: Buffer.from('x'), version: 99, expiresAt: 0 }], 1024)[0]!;
  const onApplied = (): void => {
    throw new Error('boom');
  };
  await assert.rejects(applyBatch(one, data, { maxRecords: 10, maxValueBytes: 10, clockHold: hold, onApplied }), /boom/);
  assert.deepEqual(holds, ['hold', 'release']);
  assert.notEqual(held.now(), held.now() + 1); // unheld: reads the source again
});
