import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addNode, createTable, removeNode } from '../../core/placement/table.ts';
import { addToChecksum, copyMoves, emptyChecksum, orphanedPartitions, packRuns, sameChecksum, sourceOf, takenAnswer, uncopiedReceipts } from './plan.ts';
import { decodeProgress, encodeProgress, memberSig, parseMigration, serializeMigration, type Migration, type MigrationDoc } from './record.ts';
import { encodeTable } from '../../core/placement/table.ts';

const clock = { now: () => 1000 };
const members = ['a', 'b', 'c'].map((id) => ({ id, weight: 1 }));

test('a join copies only to the new node, and only partitions it will hold', () => {
  const t1 = createTable(members, { partitionCount: 256, clock });
  const t2 = addNode(t1, { id: 'd', weight: 1 }, { clock });
  const moves = copyMoves(t1, t2);
  assert.ok(moves.length > 0);
  for (const m of moves) {
    assert.deepEqual(m.receivers, ['d']);
    assert.ok(t2.assignments[m.partition]!.includes('d'));
  }
  // every partition d holds is in the plan: d starts empty
  const held = t2.assignments.filter((h) => h.includes('d')).length;
  assert.equal(moves.length, held);
});

test('a crash repairs from a surviving holder; promoted backups move nothing', () => {
  const t1 = createTable(members, { partitionCount: 256, clock });
  const t2 = removeNode(t1, 'b', { clock });
  const alive = (id: string): boolean => id !== 'b';
  for (const m of copyMoves(t1, t2)) {
    const src = sourceOf(m.from, alive);
    assert.ok(src !== undefined && src !== 'b', `partition ${m.partition} has a live source`);
    assert.ok(!m.receivers.includes(src!));
  }
  assert.equal(sourceOf(['b'], alive), undefined);
});

test('a holder made by a crash removal has no copy yet; one made by a prepared migration has', () => {
  const t1 = createTable(members, { partitionCount: 256, clock });
  const t2 = removeNode(t1, 'b', { clock });
  const gained = (id: string): number[] => copyMoves(t1, t2).filter((m) => m.receivers.includes(id)).map((m) => m.partition);
  assert.ok(gained('a').length > 0 && gained('c').length > 0);
  assert.deepEqual(uncopiedReceipts(t1, t2, 'a', []), gained('a'));
  assert.deepEqual(uncopiedReceipts(t1, t2, 'c', []), gained('c'));
  const migration = (kind: Migration['kind'], state: Migration['state'], fromVersion: number): Migration =>
    ({ id: 'm1', kind, state, fromVersion, from: '', target: '', createdAt: 0, updatedAt: 0, fromTable: t1, targetTable: t2 }) satisfies Migration;
  // the repair of this very change copies afterwards: still uncopied
  assert.deepEqual(uncopiedReceipts(t1, t2, 'a', [migration('repair', 'running', t1.version)]), gained('a'));
  // a prepared migration from t1 (running while it commits, or done) copied first
  assert.deepEqual(uncopiedReceipts(t1, t2, 'a', [migration('prepare', 'running', t1.version)]), []);
  assert.deepEqual(uncopiedReceipts(t1, t2, 'a', [migration('rebalance', 'done', t1.version)]), []);
  // ... but not one that was cancelled, or planned from another table
  assert.deepEqual(uncopiedReceipts(t1, t2, 'a', [migration('prepare', 'cancelled', t1.version)]), gained('a'));
  assert.deepEqual(uncopiedReceipts(t1, t2, 'a', [migration('prepare', 'done', t1.version - 1)]), gained('a'));
  // a join drops nobody: it is always a migration that copies first, even before its record is seen
  const t3 = addNode(t1, { id: 'd', weight: 1 }, { clock });
  assert.ok(copyMoves(t1, t3).length > 0);
  assert.deepEqual(uncopiedReceipts(t1, t3, 'd', []), []);
  // the removed node gains nothing; the first table and an older table hand out nothing
  assert.deepEqual(uncopiedReceipts(t1, t2, 'b', []), []);
  assert.deepEqual(uncopiedReceipts(t2, t1, 'a', []), []);
});

test('partitions are orphaned when every holder is missing', () => {
  const t = createTable(members, { partitionCount: 256, clock, replicationFactor: 2 });
  assert.equal(orphanedPartitions(t, () => true), 0);
  assert.equal(orphanedPartitions(t, (id) => id !== 'b'), 0, 'one missing member of three: its partitions have a backup');
  const bc = t.assignments.filter((h) => h.every((id) => id === 'b' || id === 'c')).length;
  assert.ok(bc > 0);
  assert.equal(orphanedPartitions(t, (id) => id === 'a'), bc, 'two missing: the partitions only they held');
  assert.equal(orphanedPartitions(t, () => false), 256);
  // a live holder that has not received the data yet does not count as a copy
  const withA = t.assignments.filter((h) => h.includes('a')).length;
  assert.equal(orphanedPartitions(t, (id) => id === 'a', (_p, id) => id === 'a'), 256);
  assert.equal(orphanedPartitions(t, (id) => id !== 'b', (_p, id) => id === 'a'), t.assignments.filter((h) => !h.includes('c')).length);
  assert.ok(withA > 0);
});

test('checksums ignore order and see a different version', () => {
  const a = emptyChecksum();
  const b = emptyChecksum();
  addToChecksum(a, 'g', 'k1', 1);
  addToChecksum(a, 'g', 'k2', 2);
  addToChecksum(b, 'g', 'k2', 2);
  addToChecksum(b, 'g', 'k1', 1);
  assert.ok(sameChecksum(a, b));
  const c = emptyChecksum();
  addToChecksum(c, 'g', 'k1', 1);
  addToChecksum(c, 'g', 'k2', 3);
  assert.ok(!sameChecksum(a, c));
});

test('packRuns keeps runs under the limit, a heavy item alone', () => {
  assert.deepEqual(packRuns([1, 2, 3, 10, 1], (x) => x, 5), [[1, 2], [3], [10], [1]]);
});

test('records and progress round-trip; a bad record names the problem', () => {
  const t1 = createTable(members, { partitionCount: 16, clock });
  const doc: MigrationDoc = { id: 'm1-abc', kind: 'prepare', state: 'running', fromVersion: 1, from: encodeTable(t1), target: encodeTable(t1), createdAt: 1, updatedAt: 1 };
  const m = parseMigration(serializeMigration(doc));
  assert.equal(m.id, 'm1-abc');
  assert.equal(m.fromTable.partitionCount, 16);
  assert.throws(() => parseMigration(JSON.stringify({ ...doc, state: 'sleeping' })), /bad state sleeping/);
  const p = { node: 'a', at: 5, rate: 10, partitions: [{ partition: 3, targets: ['d'], state: 'done' as const, entriesDone: 4, entriesTotal: 4, bytesDone: 400, bytesTotal: 400, verified: true }] };
  assert.deepEqual(decodeProgress(encodeProgress(p)), p);
  assert.equal(memberSig([{ id: 'b', weight: 1 }, { id: 'a', weight: 2 }]), 'a:2,b:1');
});

test('the verify fast path answers only when what was taken equals what was sent', () => {
  const taken = emptyChecksum();
  addToChecksum(taken, 'g', 'k1', 1);
  addToChecksum(taken, 'g', 'k2', 2);
  assert.deepEqual(takenAnswer([taken.count, taken.sum], taken), [2, taken.sum]);
  assert.equal(takenAnswer([2, (taken.sum + 1) >>> 0], taken), undefined);
  assert.equal(takenAnswer([3, taken.sum], taken), undefined);
  assert.equal(takenAnswer(undefined, taken), undefined);
  assert.equal(takenAnswer('2', taken), undefined);
  // nothing taken: only an empty send matches
  assert.deepEqual(takenAnswer([0, 0], undefined), [0, 0]);
  assert.equal(takenAnswer([1, 5], undefined), undefined);
});
