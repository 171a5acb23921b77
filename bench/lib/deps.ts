// External programs the bench measures against, installed from Debian when missing (issue 8:
// "installs what it needs from Debian when missing"). Bounded in time; never fatal to the whole
// suite: a scenario that cannot get its peer is skipped with the reason.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_DIR } from './results.ts';
import { ScenarioSkipped } from './scenario.ts';

/** Absolute path of `name` on PATH, or null. */
export function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir.length > 0 && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

function run(cmd: string, args: string[], timeoutSec: number, log: (l: string) => void): boolean {
  log(`  $ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: REPO_DIR, encoding: 'utf8', timeout: timeoutSec * 1000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-5).join('\n');
    log(`  -> failed (status ${r.status}${r.error ? `, ${r.error.message}` : ''})${tail ? `\n${tail}` : ''}`);
    return false;
  }
  return true;
}

/**
 * Makes sure redis-server and redis-benchmark are installed: scripts/install-deps.sh redis when
 * it exists, else apt-get. Throws ScenarioSkipped when they are still missing.
 */
export function ensureRedis(log: (l: string) => void = () => {}): void {
  const missing = () => ['redis-server', 'redis-benchmark', 'redis-cli'].filter((b) => which(b) === null);
  if (missing().length === 0) return;
  log(`  installing ${missing().join(', ')} from Debian`);
  const script = join(REPO_DIR, 'scripts', 'install-deps.sh');
  const ok = existsSync(script) && run('bash', [script, 'redis'], 300, log);
  if (!ok) {
    // Wait for another apt user's lock rather than failing at once.
    run('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'update'], 300, log);
    run('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'install', '-y', '--no-install-recommends', 'redis-server', 'redis-tools'], 300, log);
  }
  const still = missing();
  if (still.length > 0) throw new ScenarioSkipped(`could not install ${still.join(', ')} (scripts/install-deps.sh redis, then apt-get)`);
}
