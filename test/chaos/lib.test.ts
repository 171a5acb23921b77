/** The chaos checker's own rule for a read that overlaps writes of the same key. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acceptable, acceptableDuring, snapshot, type KeyState } from './lib.ts';

const state = (acked: number, uncertain: number[] = []): KeyState => ({ acked, uncertain: new Set(uncertain), next: Math.max(acked, ...uncertain) + 1 });

test('a read sent before a write was acknowledged may show the value acknowledged when it was sent', () => {
  const st = state(19, [20]);
  const before = snapshot(st);
  // the write of 20 is acknowledged while the read is in flight; the node answered 19
  st.acked = 20;
  st.uncertain.clear();
  assert.equal(acceptable('k:19', 'k', st), false, 'judged against the state when answered, a correct read looks stale');
  assert.equal(acceptableDuring('k:19', 'k', before, st), true);
  assert.equal(acceptableDuring('k:20', 'k', before, st), true);
});

test('older than what was acknowledged when the read was sent is stale', () => {
  const st = state(19, [20]);
  const before = snapshot(st);
  st.acked = 20;
  st.uncertain.clear();
  assert.equal(acceptableDuring('k:18', 'k', before, st), false);
  assert.equal(acceptableDuring('other:19', 'k', before, st), false);
  assert.equal(acceptableDuring('k:', 'k', before, st), false);
});

test('a later write may show only if it was in flight while the read ran', () => {
  const st = state(5);
  const before = snapshot(st);
  assert.equal(acceptableDuring('k:6', 'k', before, st), false, 'never sent');
  st.uncertain.add(6);
  assert.equal(acceptableDuring('k:6', 'k', before, st), true, 'sent while the read ran');
  // a write that failed before the read was sent and was superseded by an acknowledged one
  const st2 = state(7, []);
  const before2 = snapshot(st2);
  assert.equal(acceptableDuring('k:6', 'k', before2, st2), false);
});
