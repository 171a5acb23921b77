/**
 * A private, throwaway etcd for `jincache cluster --etcd auto`: Debian's /usr/bin/etcd on free
 * loopback ports with a temporary data dir, killed with the cluster.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ETCD_BIN = '/usr/bin/etcd';

export interface LocalEtcd {
  endpoint: string;
  stop(): void;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startLocalEtcd(timeoutMs = 15_000): Promise<LocalEtcd> {
  if (!existsSync(ETCD_BIN)) {
    throw new Error(`${ETCD_BIN} is not installed: run \`sh scripts/install-deps.sh etcd\` (Debian etcd-server), or use static peers`);
  }
  const [client, peer] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'jincache-etcd-'));
  const child: ChildProcess = spawn(
    ETCD_BIN,
    [
      '--name', 'default', '--data-dir', dir,
      '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `default=http://127.0.0.1:${peer}`,
      '--logger=zap', '--log-level=warn',
    ],
    // a process group of its own: a terminal's Ctrl-C goes to the cluster's group, and etcd must
    // outlive it until the nodes have drained and revoked their leases (stop() then kills it)
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  // if this process ends without stop() (an uncaught error), etcd goes with it
  const orphan = (): void => void child.kill('SIGKILL');
  process.once('exit', orphan);
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr = (stderr + c).slice(-4000)));
  const stop = (): void => {
    process.off('exit', orphan);
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const endpoint = `127.0.0.1:${client}`;
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) break;
    try {
      const res = await fetch(`http://${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return { endpoint, stop };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error(`etcd did not become healthy: ${stderr.trim() || 'no output'}`);
}
