#!/usr/bin/env node
// `npm run build`, run by `prepack` (so by `npm pack` and `npm publish`): what an installed
// package runs. Node refuses to strip types under node_modules, so the package ships JavaScript:
// tsc emits src/**/*.ts (tests excluded) as .js + .d.ts into dist/ (tsconfig.build.json), and
// the files src/ reads at run time that are not TypeScript (the dashboard's HTML, CSS and JS) are
// copied beside them. A checkout never uses dist/: bin/jincache.js runs src/ when it is there.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('build: tsc failed');
  process.exit(1);
}

let assets = 0;
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || entry.name.endsWith('.ts')) continue;
  const from = join(entry.parentPath, entry.name);
  cpSync(from, join(dist, relative(src, from)));
  assets++;
}
console.error(`build: dist/ written (${assets} files besides the compiled TypeScript copied from src/)`);
