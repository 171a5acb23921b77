import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthClassifier } from './classifier.ts';

function fake() {
  let t = 1_000_000;
  return { clock: { now: () => t }, advance: (ms: number) => (t += ms) };
}

describe('HealthClassifier', () => {
  test('unknown and answering peers are healthy; a high latency average makes a peer slow but usable', () => {
    const { clock } = fake();
    const c = new HealthClassifier({ clock, slowThresholdMs: 100 });
    assert.equal(c.health('a'), 'healthy');
    c.success('a', 5);
    assert.equal(c.health('a'), 'healthy');
    for (let i = 0; i < 10; i++) c.success('a', 400);
    assert.equal(c.health('a'), 'slow');
    assert.equal(c.usable('a'), true);
    for (let i = 0; i < 20; i++) c.success('a', 5);
    assert.equal(c.health('a'), 'healthy');
  });

  test('timeouts make a member suspected after suspectAfter in a row; one success clears it', () => {
    const { clock } = fake();
    const c = new HealthClassifier({ clock, suspectAfter: 2 });
    c.setMembers(['a']);
    c.failure('a', 'timeout');
    assert.notEqual(c.health('a'), 'suspected');
    c.failure('a', 'timeout');
    assert.equal(c.health('a'), 'suspected');
    assert.equal(c.usable('a'), false);
    c.success('a', 3);
    assert.equal(c.usable('a'), true);
  });

  test('connection refused is down at once; leaving the membership is down', () => {
    const { clock } = fake();
    const c = new HealthClassifier({ clock, suspectAfter: 3 });
    c.setMembers(['a', 'b']);
    c.failure('a', 'refused');
    assert.equal(c.health('a'), 'down');
    c.setMembers(['a']);
    assert.equal(c.health('b'), 'down');
    c.setMembers(['a', 'b']);
    assert.equal(c.health('b'), 'healthy');
  });

  test('a recovered peer is on probation for probationMs (fake time)', () => {
    const f = fake();
    const c = new HealthClassifier({ clock: f.clock, suspectAfter: 1, probationMs: 3000 });
    c.setMembers(['a']);
    c.success('a', 1);
    assert.equal(c.onProbation('a'), false, 'never unusable: no probation');
    c.failure('a', 'timeout');
    assert.equal(c.onProbation('a'), false, 'unusable peers are not on probation, they are skipped');
    f.advance(10_000);
    c.success('a', 1);
    assert.equal(c.onProbation('a'), true);
    f.advance(2999);
    assert.equal(c.onProbation('a'), true);
    f.advance(1);
    assert.equal(c.onProbation('a'), false);
  });

  test('a peer that never answered before (start-up) gets no probation when it turns usable', () => {
    const f = fake();
    const c = new HealthClassifier({ clock: f.clock, suspectAfter: 1 });
    c.setMembers(['a']);
    c.failure('a', 'refused');
    c.success('a', 1);
    assert.equal(c.onProbation('a'), false);
  });

  test('transitions() reports each class change once', () => {
    const { clock } = fake();
    const c = new HealthClassifier({ clock, suspectAfter: 1 });
    c.setMembers(['a']);
    assert.deepEqual(c.transitions(), []);
    c.failure('a', 'reset');
    assert.deepEqual(c.transitions(), [{ id: 'a', from: 'healthy', to: 'suspected' }]);
    assert.deepEqual(c.transitions(), []);
    c.success('a', 1);
    assert.deepEqual(c.transitions(), [{ id: 'a', from: 'suspected', to: 'healthy' }]);
  });

  test('bad options are refused with the value', () => {
    const { clock } = fake();
    assert.throws(() => new HealthClassifier({ clock, suspectAfter: 0 }), /suspectAfter must be an integer >= 1. Got: 0/);
    assert.throws(() => new HealthClassifier({ clock, slowThresholdMs: -1 }), /slowThresholdMs/);
  });
});
