import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, mergeRaw } from './load.ts';
import { defaultConfig } from './schema.ts';
import { configErrorOf } from './testing.ts';

const EXAMPLE = fileURLToPath(new URL('../../config/jincache.example.yaml', import.meta.url));

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'jincache-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('loadConfig', () => {
  it('with no file and no overrides gives the defaults', () => {
    assert.deepEqual(loadConfig(), defaultConfig());
    assert.deepEqual(loadConfig({}), defaultConfig());
  });

  it('the documented example file lists exactly the defaults', () => {
    assert.deepEqual(loadConfig({ file: EXAMPLE }), defaultConfig());
  });

  it('an empty file gives the defaults', () => {
    assert.deepEqual(loadConfig({ file: write('empty.yaml', '# nothing\n') }), defaultConfig());
  });

  it('precedence: CLI override > file > default', () => {
    const file = write('p.yaml', 'server:\n  port: 8101\n  host: 0.0.0.0\nfault_tolerance:\n  request_timeout: 4s\n');
    const c = loadConfig({ file, overrides: { server: { port: '8202' }, fault_tolerance: { max_retries: 5 } } });
    assert.equal(c.server.port, 8202); // override over file
    assert.equal(c.server.host, '0.0.0.0'); // file, untouched by a sibling override
    assert.equal(c.fault_tolerance.request_timeout, 4000); // file over default
    assert.equal(c.fault_tolerance.max_retries, 5); // override over default
    assert.equal(c.fault_tolerance.heartbeat_interval, 5000); // default
  });

  it('an undefined override (a flag not given) keeps the file value', () => {
    const file = write('u.yaml', 'server: { port: 8101 }\n');
    assert.equal(loadConfig({ file, overrides: { server: { port: undefined, api_port: undefined } } }).server.port, 8101);
  });

  it('a list override replaces the file list', () => {
    const file = write('l.yaml', 'cluster:\n  peers: [http://127.0.0.1:1, http://127.0.0.1:2]\n');
    assert.deepEqual(loadConfig({ file, overrides: { cluster: { peers: ['http://127.0.0.1:3'] } } }).cluster.peers, ['http://127.0.0.1:3']);
  });

  it('a bad override is reported like a bad file key', () => {
    const e = configErrorOf(() => loadConfig({ overrides: { fault_tolerance: { request_timeout: 'fast' } } }));
    assert.equal(e.message, 'config: fault_tolerance.request_timeout = "fast" is invalid: expected a duration like 500ms, 5s or 2m');
  });

  it('a bad value in the file names key, value and what is allowed on one line', () => {
    const file = write('bad.yaml', 'fault_tolerance:\n  request_timeout: fast\n');
    const e = configErrorOf(() => loadConfig({ file }));
    assert.equal(e.message, 'config: fault_tolerance.request_timeout = "fast" is invalid: expected a duration like 500ms, 5s or 2m');
    assert.equal(e.path, 'fault_tolerance.request_timeout');
    assert.equal(e.value, 'fast');
    assert.equal(e.allowed, 'expected a duration like 500ms, 5s or 2m');
    assert.equal(e.file, file);
  });

  it('an override can fix a bad file value (validation runs once, after merging)', () => {
    const file = write('fix.yaml', 'server:\n  port: 99999\n');
    assert.equal(loadConfig({ file, overrides: { server: { port: 8001 } } }).server.port, 8001);
  });

  it('an unknown key in the file is rejected', () => {
    const file = write('typo.yaml', 'cache:\n  cache_byte: 1MiB\n');
    const e = configErrorOf(() => loadConfig({ file }));
    assert.equal(e.kind, 'unknown_key');
    assert.equal(e.path, 'cache.cache_byte');
    assert.match(e.message, /^config: cache\.cache_byte = "1MiB" is not a known key: did you mean cache_bytes\?/);
  });

  it('a missing file is a one-line ConfigError', () => {
    const missing = join(dir, 'nope.yaml');
    const e = configErrorOf(() => loadConfig({ file: missing }));
    assert.equal(e.kind, 'file');
    assert.equal(e.message, `config: ${missing}: file not found`);
  });

  it('a YAML syntax error names the file and the line', () => {
    const file = write('syntax.yaml', 'server:\n  port: 8001\n host: x\n');
    const e = configErrorOf(() => loadConfig({ file }));
    assert.equal(e.kind, 'syntax');
    assert.equal(e.line, 3);
    assert.match(e.message, new RegExp(`^config: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 3: invalid YAML: `));
    assert.doesNotMatch(e.message, /\n/);
  });

  it('a key given twice is a syntax error, not a silent override', () => {
    const file = write('dup.yaml', 'server:\n  port: 1\n  port: 2\n');
    const e = configErrorOf(() => loadConfig({ file }));
    assert.equal(e.kind, 'syntax');
    assert.equal(e.line, 3);
  });

  it('a file that is not a mapping is rejected', () => {
    const e = configErrorOf(() => loadConfig({ file: write('list.yaml', '- a\n- b\n') }));
    assert.match(e.message, /expected a mapping of keys/);
  });
});

describe('mergeRaw', () => {
  it('merges mappings deeply and never modifies its inputs', () => {
    const base = { a: { b: 1, c: [1, 2] }, d: 'x' };
    const over = { a: { c: [3] }, e: 1 };
    const snapshot = structuredClone({ base, over });
    assert.deepEqual(mergeRaw(base, over), { a: { b: 1, c: [3] }, d: 'x', e: 1 });
    assert.deepEqual({ base, over }, snapshot);
  });

  it('keeps a "__proto__" override an own key, so validation rejects it', () => {
    const merged = mergeRaw({ server: { port: 1 } }, JSON.parse('{"server": {"__proto__": {"port": 5}}}')) as { server: Record<string, unknown> };
    assert.equal(Object.getPrototypeOf(merged.server), Object.prototype);
    assert.ok(Object.hasOwn(merged.server, '__proto__'));
    assert.equal(merged.server.port, 1);
  });

  it('lets a scalar replace a mapping and the other way round (validation judges the result)', () => {
    assert.deepEqual(mergeRaw({ a: { b: 1 } }, { a: 5 }), { a: 5 });
    assert.deepEqual(mergeRaw({ a: 5 }, { a: { b: 1 } }), { a: { b: 1 } });
  });
});
