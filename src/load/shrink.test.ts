import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shrinkRates } from './shrink.ts';
import { seededRandom } from './zipf.ts';

/** Poisson sample by inversion (small means). */
function poisson(rand: () => number, mean: number): number {
  let k = 0;
  let p = Math.exp(-mean);
  let s = p;
  const u = rand();
  while (u > s) {
    k++;
    p *= mean / k;
    s += p;
  }
  return k;
}

test('uniform load measured with Poisson noise shrinks to (nearly) equal rates, total kept', () => {
  const rand = seededRandom(7);
  const window = 4;
  const rates: Record<number, number> = {};
  for (let p = 0; p < 60; p++) rates[p] = poisson(rand, 10) / window;
  const out = shrinkRates(rates, window);
  const sum = (r: Record<number, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum(out) - sum(rates)) < 1e-9);
  const vals = Object.values(out);
  const spread = Math.max(...vals) - Math.min(...vals);
  const rawSpread = Math.max(...Object.values(rates)) - Math.min(...Object.values(rates));
  assert.ok(spread < rawSpread * 0.35, `shrunk spread ${spread} vs raw ${rawSpread}`);
  // the top third by sample carries about a third of the estimated load, not the inflated share
  const top = Object.entries(rates).sort((a, b) => b[1] - a[1]).slice(0, 20).map(([p]) => Number(p));
  const share = top.reduce((a, p) => a + out[p]!, 0) / sum(out);
  assert.ok(share < 0.4, `top-20 share after shrinking ${share.toFixed(3)}`);
});

test('a genuinely hot partition keeps its rate', () => {
  const rates: Record<number, number> = { 0: 500 };
  for (let p = 1; p < 50; p++) rates[p] = 10 + (p % 3);
  const out = shrinkRates(rates, 10);
  assert.ok(out[0]! > 450, `hot partition kept: ${out[0]}`);
});

test('degenerate inputs are returned as they are', () => {
  assert.deepEqual(shrinkRates({}, 4), {});
  assert.deepEqual(shrinkRates({ 3: 7 }, 4), { 3: 7 });
  assert.deepEqual(shrinkRates({ 1: 2, 2: 2 }, 0), { 1: 2, 2: 2 });
});
