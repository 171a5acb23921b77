import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { figure } from './figure.ts';
import type { MachineInfo } from './machine.ts';
import { BEGIN_MARKER, END_MARKER, fmtNum, mergeResults, renderTable, replaceBlock, writeResults, type ScenarioRecord } from './results.ts';

const machine: MachineInfo = { cpuModel: 'Test CPU', cores: 2, memoryGiB: 4, os: 'linux', node: 'v24.0.0', redis: '7.0.15', jincache: '0.1.0', autocannon: '9.0.0', commit: 'abc', dirty: false };
const rec = (name: string, figures: string[], status: ScenarioRecord['status'] = 'ok'): ScenarioRecord => ({
  name, status, reason: status === 'ok' ? null : 'because', quick: true, date: '2025-01-01T00:00:00.000Z', durationSec: 3, commit: 'abc', figures,
});

test('replaceBlock swaps only the text between the markers', () => {
  const doc = `intro\n${BEGIN_MARKER}\nold\n${END_MARKER}\noutro\n`;
  assert.equal(replaceBlock(doc, 'new'), `intro\n${BEGIN_MARKER}\nnew\n${END_MARKER}\noutro\n`);
  assert.equal(replaceBlock('intro\n', 'new'), `intro\n\n${BEGIN_MARKER}\nnew\n${END_MARKER}\n`);
});

test('the table shows misses as misses, and skipped scenarios with their reason', () => {
  const figs = [
    figure({ name: 'http.get.rps', unit: 'req/s', ours: 8000, peer: 10000, target: { kind: 'ratio>=', value: 0.9 } }),
    figure({ name: 'http.put.rps', unit: 'req/s', ours: 9500, peer: 10000, target: { kind: 'ratio>=', value: 0.9 } }),
    figure({ name: 'http.cluster3.get.rps', unit: 'req/s', ours: 5000, peer: 10000 }),
  ];
  const t = renderTable(figs, { updated: 'now', machine, scenarios: [rec('http', figs.map((f) => f.name)), rec('redis', [], 'skipped')] });
  assert.match(t, /\| `http.get.rps` \| req\/s \| 8,000 \| 10,000 \| 0.80x \| >= 0.9x \| \*\*MISS\*\* \|/);
  assert.match(t, /\| `http.put.rps` .* \| pass \|/);
  assert.match(t, /\| `http.cluster3.get.rps` .* \| — \| reported \|/);
  assert.match(t, /1 pass, 1 miss, 1 reported/);
  assert.match(t, /`redis`: skipped.*because/);
  assert.match(t, /Test CPU, 2 cores/);
});

test('merge keeps other scenarios and drops stale figures of re-run ones', () => {
  const a = figure({ name: 'placement.balance', unit: 'x', ours: 1.02 });
  const old = figure({ name: 'redis.get.p1.rps', unit: 'req/s', ours: 1, peer: 2 });
  const prev = { figures: [a, old], meta: { updated: 'x', machine, scenarios: [rec('placement', [a.name]), rec('redis', [old.name])] } };
  const out = mergeResults(prev, { figures: [], scenarios: [rec('redis', [], 'skipped')], machine, now: new Date(0) });
  assert.deepEqual(out.figures.map((f) => f.name), ['placement.balance']);
  assert.deepEqual(out.meta.scenarios.map((s) => `${s.name}:${s.status}`), ['placement:ok', 'redis:skipped']);
});

test('writeResults writes a plain list, the meta and the table', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-results-'));
  const md = join(dir, 'BENCHMARKS.md');
  writeFileSync(md, `# B\n\n${BEGIN_MARKER}\n${END_MARKER}\n\nafter\n`);
  const f = figure({ name: 'http.get.rps', unit: 'req/s', ours: 1, peer: 1 });
  writeResults({ figures: [f], scenarios: [rec('http', [f.name])], machine, merge: false, resultsDir: dir, benchmarksMd: md, now: new Date(0) });
  const latest = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8'));
  assert.ok(Array.isArray(latest));
  assert.deepEqual(Object.keys(latest[0]).sort(), ['name', 'ours', 'pass', 'peer', 'ratio', 'target', 'unit']);
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
  assert.equal(meta.machine.cores, 2);
  const doc = readFileSync(md, 'utf8');
  assert.match(doc, /`http.get.rps`/);
  assert.match(doc, /\nafter\n$/);
});

test('fmtNum', () => {
  assert.equal(fmtNum(57570.4), '57,570');
  assert.equal(fmtNum(0.8153), '0.815');
  assert.equal(fmtNum(1.5), '1.50');
});
