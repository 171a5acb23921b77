#!/usr/bin/env node
// `npm test`: install the system programs the tests need (etcd, redis, chromium) when missing,
// typecheck, run the unit tests (in parallel), then the integration and chaos tests (one file at
// a time: they start real processes and measure timings on a 2-core machine).
// Pass file paths or globs to run only those: `npm test -- test/integration/foundation.test.ts`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const node = process.execPath;
const root = new URL('..', import.meta.url).pathname;
const only = process.argv.slice(2);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  return r.status ?? 1;
}

if (process.env.JINCACHE_SKIP_DEPS !== '1' && run('sh', ['scripts/install-deps.sh']) !== 0) {
  console.error('npm test: installing system dependencies failed');
  process.exit(1);
}

if (only.length === 0 && run(node, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json']) !== 0) {
  console.error('npm test: typecheck failed');
  process.exit(1);
}

const tapDir = mkdtempSync(join(tmpdir(), 'jincache-test-'));
const suites = only.length > 0
  ? [{ name: 'selected', globs: only, concurrency: 1 }]
  : [
      { name: 'unit', globs: ['src/**/*.test.ts', 'bench/**/*.test.ts'], concurrency: 2 },
      { name: 'integration', globs: ['test/**/*.test.ts'], concurrency: 1 },
    ];

let passed = 0;
let failed = 0;
let status = 0;
for (const suite of suites) {
  const tap = join(tapDir, `${suite.name}.tap`);
  const code = run(node, [
    '--test',
    `--test-concurrency=${suite.concurrency}`,
    '--test-timeout=300000',
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    '--test-reporter=tap', `--test-reporter-destination=${tap}`,
    ...suite.globs,
  ]);
  const text = readFileSync(tap, 'utf8');
  const count = (label) => Number(text.match(new RegExp(`^# ${label} (\\d+)$`, 'm'))?.[1] ?? 0);
  passed += count('pass');
  failed += count('fail');
  if (code !== 0) status = code;
}

rmSync(tapDir, { recursive: true, force: true });
console.log(`\ntests: ${passed} passed, ${failed} failed`);
process.exit(status !== 0 || failed > 0 ? 1 : passed === 0 ? 1 : 0);
