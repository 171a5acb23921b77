// What the figures were measured on: published beside every table, because a ratio is only
// comparable between runs on similar machines and versions.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem, platform, release } from 'node:os';
import { join } from 'node:path';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  /** `redis-server --version` (e.g. `7.0.15`), or null when not installed. */
  redis: string | null;
  /** Versions from package.json files: jincache itself and the HTTP load generator. */
  jincache: string | null;
  autocannon: string | null;
  /** Commit of the measured code, or null outside git. */
  commit: string | null;
  /** True when the working tree had uncommitted changes to tracked files. */
  dirty: boolean;
}

function tryRun(cmd: string, args: string[], cwd?: string): string | null {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  } catch {
    return null;
  }
}

/** The version string redis-server reports, or null when it is missing. */
export function redisServerVersion(): string | null {
  const out = tryRun('redis-server', ['--version']);
  const m = out?.match(/v=(\d+\.\d+\.\d+)/);
  return m?.[1] ?? null;
}

function packageVersion(file: string): string | null {
  try {
    const v = (JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version;
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
}

export function machineInfo(repoDir: string): MachineInfo {
  const cs = cpus();
  const commit = tryRun('git', ['rev-parse', '--short=12', 'HEAD'], repoDir);
  const status = commit === null ? null : tryRun('git', ['status', '--porcelain', '--untracked-files=no'], repoDir);
  return {
    cpuModel: cs[0]?.model.trim() ?? 'unknown',
    cores: cs.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    redis: redisServerVersion(),
    jincache: packageVersion(join(repoDir, 'package.json')),
    autocannon: packageVersion(join(repoDir, 'node_modules', 'autocannon', 'package.json')),
    commit,
    dirty: status !== null && status.length > 0,
  };
}
