// A single-member etcd on loopback for bench scenarios that need dynamic membership. Started as a
// procs.ts child (so the harness stops it by PID whatever happens) with a temporary data dir.
// Installs Debian's etcd-server through scripts/install-deps.sh when /usr/bin/etcd is missing.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, startProcess, waitForHttp, type Proc } from './procs.ts';
import { REPO_DIR } from './results.ts';
import { ScenarioSkipped } from './scenario.ts';

const ETCD_BIN = '/usr/bin/etcd';

export interface BenchEtcd {
  /** `127.0.0.1:PORT`, the form `serve --etcd` takes. */
  endpoint: string;
  proc: Proc;
  /** SIGKILL (SIGTERM can take seconds, see ETCD-NOTES) and remove the data dir. */
  stop(): Promise<void>;
}

/** Throws ScenarioSkipped when etcd is missing and cannot be installed. */
export function ensureEtcd(log: (l: string) => void = () => {}): void {
  if (existsSync(ETCD_BIN)) return;
  log('  installing etcd-server from Debian');
  spawnSync('bash', [join(REPO_DIR, 'scripts', 'install-deps.sh'), 'etcd'], { cwd: REPO_DIR, timeout: 300_000, stdio: 'ignore' });
  if (!existsSync(ETCD_BIN)) throw new ScenarioSkipped(`${ETCD_BIN} is missing and scripts/install-deps.sh etcd did not install it`);
}

export async function startEtcd(log: (l: string) => void = () => {}): Promise<BenchEtcd> {
  ensureEtcd(log);
  const [client, peer] = (await freePorts(2)) as [number, number];
  const dir = mkdtempSync(join(tmpdir(), 'jincache-bench-etcd-'));
  const clientUrl = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const proc = startProcess({
    name: 'etcd',
    command: ETCD_BIN,
    args: [
      '--name', 'bench',
      '--data-dir', dir,
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `bench=${peerUrl}`,
      '--logger=zap',
      '--log-level=warn',
      '--unsafe-no-fsync',
    ],
    cwd: dir,
  });
  const stop = async () => {
    await proc.stop(0);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForHttp(`${clientUrl}/health`, { proc, timeoutMs: 20_000 });
  } catch (e) {
    await stop();
    throw e;
  }
  return { endpoint: `127.0.0.1:${client}`, proc, stop };
}
