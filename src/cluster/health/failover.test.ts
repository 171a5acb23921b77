import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hintsAny, readOrder, replicaPlan, writeOrder } from './failover.ts';
import { attemptDeadline } from '../router.ts';

const verdicts = (down: string[], probation: string[] = []) => ({
  usable: (id: string) => !down.includes(id),
  onProbation: (id: string) => probation.includes(id),
});

describe('failover choice', () => {
  test('reads go to the owner when it is usable, else to the first usable holder in preference order', () => {
    assert.deepEqual(readOrder(['a', 'b', 'c'], verdicts([])), ['a', 'b', 'c']);
    assert.deepEqual(readOrder(['a', 'b', 'c'], verdicts(['a'])), ['b', 'c', 'a']);
    assert.deepEqual(readOrder(['a', 'b', 'c'], verdicts(['a', 'b'])), ['c', 'a', 'b']);
    // nobody usable: still try them all, in preference order
    assert.deepEqual(readOrder(['a', 'b'], verdicts(['a', 'b'])), ['a', 'b']);
  });

  test('a holder on probation is read only after the settled ones', () => {
    assert.deepEqual(readOrder(['a', 'b', 'c'], verdicts([], ['a'])), ['b', 'c', 'a']);
    assert.deepEqual(readOrder(['a', 'b'], verdicts(['b'], ['a'])), ['a', 'b']);
  });

  test('every node picks the same substitute: the choice depends only on holders and verdicts', () => {
    const v = verdicts(['a']);
    const fromNode1 = readOrder(['a', 'b', 'c'], v)[0];
    const fromNode2 = readOrder(['a', 'b', 'c'], v)[0];
    assert.equal(fromNode1, 'b');
    assert.equal(fromNode2, 'b');
  });

  test('writes go to the first usable holder; probation does not matter for writes', () => {
    assert.deepEqual(writeOrder(['a', 'b'], verdicts([], ['a'])), ['a', 'b']);
    assert.deepEqual(writeOrder(['a', 'b', 'c'], verdicts(['a'])), ['b', 'c', 'a']);
  });

  test('replica plan: other holders and extra replicas, unusable ones hinted, coordinator and duplicates skipped', () => {
    assert.deepEqual(replicaPlan('b', ['a', 'b', 'c'], ['d', 'c'], verdicts(['a'])), { send: ['c', 'd'], hint: ['a'] });
    assert.deepEqual(replicaPlan('a', ['a'], [], verdicts([])), { send: [], hint: [] });
  });

  test('property: hintsAny says whether replicaPlan hints anyone', () => {
    const id = fc.constantFrom('a', 'b', 'c', 'd', 'e');
    fc.assert(
      fc.property(id, fc.array(id, { maxLength: 4 }), fc.array(id, { maxLength: 3 }), fc.array(id, { maxLength: 5 }), (coordinator, holders, extra, down) => {
        assert.equal(hintsAny(coordinator, holders, extra, verdicts(down)), replicaPlan(coordinator, holders, extra, verdicts(down)).hint.length > 0);
      }),
    );
  });

  test('an attempt gets half the time left while another holder remains, the whole rest otherwise', () => {
    assert.equal(attemptDeadline(2000, 0, 2, 1000), 1500);
    assert.equal(attemptDeadline(2000, 1, 2, 1500), 2000);
    assert.equal(attemptDeadline(2000, 0, 1, 1000), 2000);
  });
});
