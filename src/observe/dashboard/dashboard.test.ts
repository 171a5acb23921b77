// The dashboard's pure helpers, imported outside a browser (the module only starts when it finds a
// document).
import { test } from 'node:test';
import assert from 'node:assert/strict';
// @ts-ignore -- plain browser JS module without type declarations
import * as dash from './dashboard.js';

interface Ev {
  kind: string;
  message: string;
}
const d = dash as {
  diffSnapshots: (a: unknown, b: unknown, at: number) => Ev[];
  mergeMigrations: (a: unknown, b: unknown) => Array<Record<string, unknown>>;
  formatBytes: (n: unknown) => string;
  formatDuration: (n: unknown) => string;
  ownerColours: (ids: string[]) => Map<string, string>;
};

test('diffSnapshots derives joins, leaves, health changes, rebalances and migrations', () => {
  const prev = {
    ringVersion: 3,
    leader: 'node-1',
    nodes: [
      { id: 'node-1', status: 'active', health: 'healthy' },
      { id: 'node-2', status: 'active', health: 'healthy' },
      { id: 'node-3', status: 'active', health: 'healthy' },
    ],
    migrations: [{ id: 'm-1', state: 'running' }],
  };
  const next = {
    ringVersion: 4,
    leader: 'node-2',
    nodes: [
      { id: 'node-1', status: 'active', health: 'suspected' },
      { id: 'node-2', status: 'leaving', health: 'healthy' },
      { id: 'node-4', status: 'joining', health: 'healthy', address: 'http://127.0.0.1:8004' },
    ],
    migrations: [{ id: 'm-2', state: 'running', ringVersion: 4 }],
  };
  const evs = d.diffSnapshots(prev, next, 1000);
  const kinds = evs.map((e) => `${e.kind}:${e.message}`);
  assert.ok(kinds.includes('join:node-4 joined (http://127.0.0.1:8004)'), kinds.join('\n'));
  assert.ok(kinds.includes('leave:node-3 left the cluster'));
  assert.ok(kinds.includes('suspicion:node-1 is suspected'));
  assert.ok(kinds.includes('leave:node-2 is leaving'));
  assert.ok(kinds.includes('rebalance:partition table v3 → v4'));
  assert.ok(kinds.includes('leader:node-2 is the leader'));
  assert.ok(kinds.includes('migration:migration m-2 started (to v4)'));
  assert.ok(kinds.includes('migration:migration m-1 finished'));
  assert.equal(evs.length, 8);
  // Nothing changes, nothing reported; missing fields are tolerated.
  assert.deepEqual(d.diffSnapshots(next, next, 2000), []);
  assert.deepEqual(d.diffSnapshots({}, {}, 3000), []);
});

test('mergeMigrations accepts both endpoint shapes and overrides by id', () => {
  const merged = d.mergeMigrations([{ id: 'm-1', entriesDone: 1, state: 'running' }], {
    migrations: [{ id: 'm-1', entriesDone: 5 }, { id: 'm-2' }],
  });
  assert.deepEqual(merged, [{ id: 'm-1', entriesDone: 5, state: 'running' }, { id: 'm-2' }]);
  assert.deepEqual(d.mergeMigrations(undefined, [{ id: 'x' }]), [{ id: 'x' }]);
});

test('formatting helpers', () => {
  assert.equal(d.formatBytes(512), '512 B');
  assert.equal(d.formatBytes(1536), '1.5 KiB');
  assert.equal(d.formatBytes(64 * 1024 * 1024), '64 MiB');
  assert.equal(d.formatBytes(undefined), '–');
  assert.equal(d.formatDuration(3), '3s');
  assert.equal(d.formatDuration(125), '2m 5s');
  assert.equal(d.formatDuration(undefined), '–');
  const colours = d.ownerColours(['node-10', 'node-2', 'node-1', 'node-2']);
  assert.deepEqual([...colours.keys()], ['node-1', 'node-2', 'node-10']);
});
