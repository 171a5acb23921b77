#!/usr/bin/env node
// Entry point of the `jincache` command. The sources are TypeScript run directly by Node's type
// stripping (Node >= 22.18 / 24). On an older Node (e.g. a system Node 20) re-run this same
// command on the Node 24 the project pins as a devDependency.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [major, minor] = process.versions.node.split('.').map(Number);
const canStrip = major > 22 || (major === 22 && minor >= 18);

if (canStrip) {
  await import(join(here, '..', 'src', 'cli', 'main.ts'));
} else {
  const pinned = join(here, '..', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(pinned)) {
    console.error(`jincache needs Node >= 22.18 (this is ${process.version}); run \`npm install\` to get the pinned Node 24`);
    process.exit(1);
  }
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
