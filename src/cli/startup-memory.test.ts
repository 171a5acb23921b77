import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getHeapSpaceStatistics } from 'node:v8';
import { releaseStartupMemory } from './startup-memory.ts';

const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!;

test('releaseStartupMemory shrinks a grown young generation and leaves no global gc behind', () => {
  // grow the young generation the way a start-up does: many allocations that survive scavenges
  const kept: unknown[] = [];
  for (let i = 0; i < 400_000; i++) kept.push({ i, s: `v${i}` });
  const grown = newSpace().space_size;
  kept.length = 0;
  releaseStartupMemory();
  const after = newSpace();
  assert.ok(grown > 2 * 2 ** 20, `the young generation grew (${grown} bytes)`);
  assert.ok(after.space_size < grown, `shrunk: ${after.space_size} < ${grown}`);
  assert.ok(after.physical_space_size <= 2 * 2 ** 20, `at most 2 MiB resident (${after.physical_space_size})`);
  assert.equal((globalThis as { gc?: unknown }).gc, undefined);
});
