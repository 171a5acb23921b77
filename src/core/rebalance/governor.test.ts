import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRebalanceError } from './errors.ts';
import { RebalanceGovernor } from './governor.ts';

const skewed = [
  { id: 'a', score: 0.9 },
  { id: 'b', score: 0.3 },
  { id: 'c', score: 0.3 },
];
const flat = [
  { id: 'a', score: 0.5 },
  { id: 'b', score: 0.45 },
  { id: 'c', score: 0.55 },
];

function fake(t = 0) {
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('RebalanceGovernor', () => {
  it('acts only after imbalance is sustained for `sustain` consecutive checks', () => {
    const clock = fake();
    const g = new RebalanceGovernor({ clock, sustain: 3 });
    const d1 = g.check(skewed);
    assert.equal(d1.action, 'wait');
    assert.deepEqual(d1.action === 'wait' && d1.reason === 'sustaining' ? [d1.streak, d1.needed, d1.imbalanced] : null, [1, 3, ['a', 'b', 'c']]);
    assert.equal(g.check(skewed).action, 'wait');
    assert.equal(g.check(skewed).action, 'rebalance');
  });

  it('a balanced check in between resets the streak (hysteresis)', () => {
    const g = new RebalanceGovernor({ clock: fake(), sustain: 3 });
    g.check(skewed);
    g.check(skewed);
    assert.deepEqual(g.check(flat), { action: 'none', reason: 'balanced', mean: 0.5 });
    assert.equal(g.check(skewed).action, 'wait');
    assert.equal(g.check(skewed).action, 'wait');
    assert.equal(g.check(skewed).action, 'rebalance');
  });

  it('allows at most one rebalance per minInterval, and acts when the cooldown ends if still imbalanced', () => {
    const clock = fake(1_000_000);
    const g = new RebalanceGovernor({ clock, sustain: 2, minIntervalMs: 300_000 });
    g.check(skewed);
    assert.equal(g.check(skewed).action, 'rebalance');
    g.rebalanced();
    assert.equal(g.lastRebalanceAt, 1_000_000);
    clock.advance(30_000);
    assert.equal(g.check(skewed).action, 'wait', 'streak restarts after a rebalance');
    clock.advance(30_000);
    const d = g.check(skewed);
    assert.deepEqual(d.action === 'wait' && d.reason === 'cooldown' ? d.until : null, 1_300_000);
    clock.advance(239_999);
    assert.equal(g.check(skewed).action, 'wait');
    clock.advance(1);
    assert.equal(g.check(skewed).action, 'rebalance');
  });

  it('leaves an idle or single-node cluster alone', () => {
    const g = new RebalanceGovernor({ clock: fake(), sustain: 1 });
    const idle = [
      { id: 'a', score: 0.01 },
      { id: 'b', score: 0.001 },
    ];
    assert.equal(g.check(idle).action, 'none');
    assert.equal(g.check([{ id: 'a', score: 0.9 }]).action, 'none');
    assert.equal(g.check([]).action, 'none');
    assert.equal(g.check(skewed).action, 'rebalance');
  });

  it('validates options', () => {
    assert.throws(() => new RebalanceGovernor({ sustain: 0 }), (e) => isRebalanceError(e) && /sustain.*Got: 0/.test(e.message));
    assert.throws(() => new RebalanceGovernor({ threshold: Number.NaN }), isRebalanceError);
    assert.throws(() => new RebalanceGovernor({ minIntervalMs: -1 }), isRebalanceError);
  });
});
