// The dashboard's pure helpers, imported outside a browser (the module only starts when it finds a
// document).
import { test } from 'node:test';
import assert from 'node:assert/strict';
// @ts-ignore -- plain browser JS module without type declarations
import * as dash from './dashboard.js';

const d = dash as {
  mergeMigrations: (a: unknown, b: unknown) => Array<Record<string, unknown>>;
  isRunning: (m: unknown) => boolean;
  migrationProgress: (m: unknown) => { done: number; total: number; pct: number; partsDone: number; partsTotal: number; rate?: number; eta?: number };
  replicationSummary: (s: unknown) => { value: string; note: string; tone: string };
  nodeState: (row: unknown) => string;
  formatBytes: (n: unknown) => string;
  formatDuration: (n: unknown) => string;
  ownerColours: (ids: string[]) => Map<string, string>;
};

// a MigrationView as GET /cluster/migrations sends it (src/cluster/migration/view.ts)
const view = (over: Record<string, unknown> = {}) => ({
  id: 'm3-x', kind: 'prepare', change: 'join', label: 'join of node-4', state: 'running', fromVersion: 3, toVersion: 4,
  partitions: { total: 1024, done: 300, failed: 0, copying: 2 }, entries: { done: 15_000, total: 50_081 }, bytes: { done: 1e6, total: 3e6 },
  rate: 30_200, etaSeconds: 1.2, ...over,
});

test('migrationProgress reads the entries the API reports, running or finished', () => {
  const p = d.migrationProgress(view());
  assert.equal(p.done, 15_000);
  assert.equal(p.total, 50_081);
  assert.ok(Math.abs(p.pct - (100 * 15_000) / 50_081) < 1e-9);
  assert.equal(p.rate, 30_200);
  assert.equal(p.eta, 1.2);
  const done = d.migrationProgress(view({ state: 'done', entries: { done: 50_081, total: 50_081 }, partitions: { total: 1024, done: 1024, failed: 0, copying: 0 } }));
  assert.deepEqual([done.done, done.total, done.pct], [50_081, 50_081, 100]);
  // no entries at all (empty partitions): progress by partitions
  assert.equal(d.migrationProgress(view({ entries: { done: 0, total: 0 }, partitions: { total: 10, done: 5, failed: 0, copying: 0 } })).pct, 50);
});

test('mergeMigrations overrides by id; only running and cancelling count as running', () => {
  const merged = d.mergeMigrations([view()], { migrations: [view({ entries: { done: 20_000, total: 50_081 } }), view({ id: 'm2-y', state: 'superseded' }), view({ id: 'm1-z', state: 'done' })] });
  assert.deepEqual(merged.map((m) => m.id), ['m3-x', 'm2-y', 'm1-z']);
  assert.deepEqual((merged[0]!.entries as { done: number }).done, 20_000);
  assert.deepEqual(merged.filter(d.isRunning).map((m) => m.id), ['m3-x']);
  for (const state of ['superseded', 'rolled_back', 'cancelled', 'failed', 'done']) assert.equal(d.isRunning({ state }), false, state);
  assert.equal(d.isRunning({ state: 'cancelling' }), true);
});

test('replicationSummary tells copies on down nodes apart from a healthy cluster', () => {
  assert.deepEqual(d.replicationSummary({ replicationFactor: 2, partitions: { underReplicated: 0, withDownHolder: 0, unavailable: 0 } }), { value: 'OK', note: 'every partition has 2 copies on live nodes', tone: 'ok' });
  const down = d.replicationSummary({ replicationFactor: 2, partitions: { underReplicated: 0, withDownHolder: 2048, unavailable: 0 } });
  assert.equal(down.value, '2,048');
  assert.equal(down.note, '2,048 partitions have a copy on a down node');
  assert.equal(d.replicationSummary({ replicationFactor: 2, partitions: { underReplicated: 5, withDownHolder: 0, unavailable: 0 } }).note, '5 partitions short of copies (repairing)');
  assert.equal(d.replicationSummary({ replicationFactor: 2, partitions: { underReplicated: 0, withDownHolder: 9, unavailable: 3 } }).tone, 'bad');
});

test('nodeState: one word per node, down wins over the registration', () => {
  assert.equal(d.nodeState({ node: { status: 'active', health: 'down' } }), 'down');
  assert.equal(d.nodeState({ node: { status: 'active', health: 'suspected' } }), 'suspected');
  assert.equal(d.nodeState({ node: { status: 'leaving', health: 'healthy' } }), 'leaving');
  assert.equal(d.nodeState({ node: { status: 'active', health: 'slow' } }), 'slow');
  assert.equal(d.nodeState({ node: { id: 'x' }, departed: { graceful: true } }), 'left');
  assert.equal(d.nodeState({ node: { id: 'x' }, departed: { graceful: false } }), 'down');
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
