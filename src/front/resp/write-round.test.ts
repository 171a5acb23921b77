import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WriteRound, type RoundMember } from './write-round.ts';

/** A round whose end of turn the test runs by hand. */
function manualRound(): { round: WriteRound; turns: Array<() => void>; endTurn: () => void } {
  const turns: Array<() => void> = [];
  const round = new WriteRound((run) => turns.push(run));
  return { round, turns, endTurn: () => turns.shift()!() };
}

function member(log: string[], name: string, onFlush?: () => void): RoundMember {
  return {
    inRound: false,
    flushRound() {
      log.push(name);
      onFlush?.();
    },
  };
}

test('WriteRound: members write once each, in the order added, at the end of the turn', () => {
  const { round, turns, endTurn } = manualRound();
  const log: string[] = [];
  const a = member(log, 'a');
  const b = member(log, 'b');
  round.add(a);
  round.add(b);
  round.add(a);
  assert.equal(turns.length, 1, 'one deferred run per round, however many members');
  assert.deepEqual(log, [], 'nothing is written before the turn ends');
  endTurn();
  assert.deepEqual(log, ['a', 'b']);
  assert.equal(a.inRound, false);
  assert.equal(b.inRound, false);
});

test('WriteRound: a member written before the round (inRound cleared) is skipped', () => {
  const { round, endTurn } = manualRound();
  const log: string[] = [];
  const a = member(log, 'a');
  const b = member(log, 'b');
  round.add(a);
  round.add(b);
  a.inRound = false; // a's batch filled and it wrote itself
  endTurn();
  assert.deepEqual(log, ['b']);
});

test('WriteRound: a member added while the round writes waits for the next round', () => {
  const { round, turns, endTurn } = manualRound();
  const log: string[] = [];
  const c = member(log, 'c');
  const a = member(log, 'a', () => round.add(c));
  round.add(a);
  endTurn();
  assert.deepEqual(log, ['a']);
  assert.equal(turns.length, 1, 'the next round is armed');
  endTurn();
  assert.deepEqual(log, ['a', 'c']);
  // and a member may come back round after round
  round.add(a);
  endTurn();
  assert.deepEqual(log, ['a', 'c', 'a']);
  assert.equal(turns.length, 1, 'a re-added c once more');
});

test('WriteRound: the default round runs after the I/O callbacks of the turn (setImmediate)', async () => {
  const round = new WriteRound();
  const log: string[] = [];
  round.add(member(log, 'a'));
  await Promise.resolve();
  process.nextTick(() => log.push('tick'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(log, ['tick', 'a']);
});
