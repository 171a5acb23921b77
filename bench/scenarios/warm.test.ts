import { test } from 'node:test';
import assert from 'node:assert/strict';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { keyName, originValue, ownerChangedShare } from './warm.ts';

test('ownerChangedShare counts the keys whose partition changed owner', () => {
  const keys = Array.from({ length: 1000 }, (_, i) => keyName(i));
  const before = ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b'];
  assert.equal(ownerChangedShare(keys, before, before), 0);
  // Partition 3 moves to d: exactly the keys hashing to it change owner.
  const after = [...before];
  after[3] = 'd';
  const expected = keys.filter((k) => partitionOf(k, 8) === 3).length / keys.length;
  assert.ok(expected > 0);
  assert.equal(ownerChangedShare(keys, before, after), expected);
  assert.equal(ownerChangedShare(keys, before, before.map(() => 'z')), 1);
});

test('ownerChangedShare rejects owner lists of different tables', () => {
  assert.throws(() => ownerChangedShare(['k'], ['a'], ['a', 'b']), /same, non-zero length/);
  assert.throws(() => ownerChangedShare(['k'], [], []), /same, non-zero length/);
});

test('originValue is 100 bytes and names its key', () => {
  assert.equal(Buffer.byteLength(originValue(keyName(7))), 100);
  assert.ok(originValue('w0000007').startsWith('origin:w0000007:'));
});
