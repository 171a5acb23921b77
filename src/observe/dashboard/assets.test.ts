import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dashboardAssets } from './assets.ts';

test('every asset exists with a content type, and the page links the others', () => {
  const assets = dashboardAssets();
  for (const path of ['/', '/dashboard.js', '/dashboard.css']) {
    const a = assets.get(path);
    assert.ok(a, `missing ${path}`);
    assert.ok(a.body.length > 500, `${path} is suspiciously small`);
  }
  assert.match(assets.get('/')?.contentType ?? '', /^text\/html/);
  assert.match(assets.get('/dashboard.js')?.contentType ?? '', /^text\/javascript/);
  assert.match(assets.get('/dashboard.css')?.contentType ?? '', /^text\/css/);
  const html = assets.get('/')?.body.toString('utf8') ?? '';
  assert.match(html, /<script type="module" src="\/dashboard\.js">/);
  assert.match(html, /href="\/dashboard\.css"/);
  for (const id of ['partition-map', 'event-feed', 'migrations', 'hot-keys', 'ring-version']) {
    assert.match(html, new RegExp(`data-testid="${id}"`), `page lacks data-testid=${id}`);
  }
  // The JS creates node rows with the attributes tests rely on.
  const js = assets.get('/dashboard.js')?.body.toString('utf8') ?? '';
  for (const attr of ["'data-testid': 'node-row'", "'data-node-id'", "'data-status'", "'data-health'"]) {
    assert.ok(js.includes(attr), `dashboard.js lacks ${attr}`);
  }
});

test('dashboard.js parses as an ES module (node --check)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jincache-dash-'));
  try {
    const file = join(dir, 'dashboard.mjs');
    writeFileSync(file, dashboardAssets().get('/dashboard.js')?.body ?? '');
    const r = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
