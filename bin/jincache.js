#!/usr/bin/env node
// Entry point of the `jincache` command.
//
// In a checkout (src/ beside this folder) it runs the TypeScript sources directly with Node's type
// stripping (Node >= 22.18). An installed package has no src/: it runs the JavaScript built into
// dist/ (`npm pack` builds it), which needs Node >= 22.12 (commander's minimum). On an older Node
// (e.g. a system Node 20) it re-runs this same command on the Node the project pins as a
// devDependency (the npm `node` package), wherever `node_modules` resolution finds one.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'cli', 'main.ts');
const fromSource = existsSync(source);
const entry = fromSource ? source : join(root, 'dist', 'cli', 'main.js');
const [needMajor, needMinor] = fromSource ? [22, 18] : [22, 12];
const [major, minor] = process.versions.node.split('.').map(Number);

if (major > needMajor || (major === needMajor && minor >= needMinor)) {
  await import(pathToFileURL(entry).href);
} else {
  const pinned = pinnedNode();
  if (pinned === undefined) {
    const how = fromSource ? 'run `npm install` to get the pinned Node 24' : 'install a newer Node, or `npm install node@24` beside jincache';
    console.error(`jincache needs Node >= ${needMajor}.${needMinor} (this is ${process.version}); ${how}`);
    process.exit(1);
  }
  reRunOn(pinned);
}

/** The `node` package's binary as seen from this package, if installed and runnable. */
function pinnedNode() {
  try {
    const bin = join(dirname(createRequire(join(root, 'package.json')).resolve('node/package.json')), 'bin', 'node');
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Run this command in a child on `node` and leave as it does. The child shares this process
 * group, so a terminal's Ctrl-C reaches it directly as well as here; a signal sent to this
 * process alone (`kill PID`, a supervisor) reaches only here. Forwarding every one is safe
 * because the child takes a copy that arrives right after the first as the same stop request
 * (src/cli/signals.ts), and this process keeps listening, so it never dies before the child.
 */
function reRunOn(node) {
  const child = spawn(node, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  const forward = (signal) => child.kill(signal);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, forward);
  child.once('error', (e) => {
    console.error(`jincache: could not run ${node}: ${e.message}`);
    process.exit(1);
  });
  child.once('exit', (code, signal) => {
    if (signal === null) process.exit(code ?? 1);
    // killed by a signal: end the same way, so the caller sees what the child's caller would
    process.exitCode = 128 + (constants.signals[signal] ?? 0);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  });
}
