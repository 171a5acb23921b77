/**
 * `jincache cluster`: a local cluster of node processes on 127.0.0.1 (what `npm start` runs).
 * Node i listens on base-port + i - 1 and speaks the Redis protocol on resp-port + i - 1 (so a
 * Redis Cluster client reaches every node: 6380-6382 by default); node 1 also serves the client
 * API and dashboard on --api-port. Ctrl-C stops every node gracefully; a second one stops them at
 * once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit.ts';
import { startLocalEtcd, type LocalEtcd } from './local-etcd.ts';
import { onStopSignals, signalExitCode } from './signals.ts';

export interface ClusterFlags {
  nodes: string;
  basePort: string;
  apiPort: string;
  respPort: string;
  etcd?: string;
  config?: string;
}

const BIN = fileURLToPath(new URL('../../bin/jincache.js', import.meta.url));

export async function runCluster(flags: ClusterFlags): Promise<number> {
  const n = Number(flags.nodes);
  const base = Number(flags.basePort);
  const resp = Number(flags.respPort);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    process.stderr.write(`jincache cluster: --nodes ${flags.nodes} is invalid: expected an integer from 1 to 64\n`);
    return EXIT_USAGE;
  }
  if (!Number.isInteger(base) || base < 1 || base + n > 65535) {
    process.stderr.write(`jincache cluster: --base-port ${flags.basePort} is invalid\n`);
    return EXIT_USAGE;
  }
  if (!Number.isInteger(resp) || resp < 1 || resp + n > 65535) {
    process.stderr.write(`jincache cluster: --resp-port ${flags.respPort} is invalid: expected a port with room for ${n} consecutive ports after it\n`);
    return EXIT_USAGE;
  }
  let etcd: LocalEtcd | undefined;
  let etcdEndpoints: string | undefined;
  if (flags.etcd === 'auto') {
    try {
      etcd = await startLocalEtcd();
    } catch (e) {
      process.stderr.write(`jincache cluster: --etcd auto: ${(e as Error).message}\n`);
      return EXIT_FAILURE;
    }
    etcdEndpoints = etcd.endpoint;
  } else if (flags.etcd !== undefined) {
    etcdEndpoints = flags.etcd;
  }
  const ids = Array.from({ length: n }, (_, i) => `node-${i + 1}`);
  const peers = ids.map((id, i) => `${id}=http://127.0.0.1:${base + i}`).join(',');
  const children: { id: string; child: ChildProcess; exited: Promise<number> }[] = [];
  let stopping = false;

  /**
   * Send every node `signal` and wait until all have exited (SIGKILL after `killAfterMs`, when
   * given); then stop the private etcd. EXIT_OK when every node exited 0. A graceful stop sets no
   * kill timer: each node bounds its own drain by `migration.drain_timeout`.
   */
  const stopAll = async (signal: NodeJS.Signals, killAfterMs?: number): Promise<number> => {
    stopping = true;
    const codes = await Promise.all(
      children.map(({ child, exited }) => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill(signal);
          if (killAfterMs !== undefined) setTimeout(() => child.kill('SIGKILL'), killAfterMs).unref();
        }
        return exited;
      }),
    );
    etcd?.stop();
    const ok = codes.every((c) => c === 0);
    if (ok) process.stdout.write(`jincache: every node left the cluster (${ids.join(', ')}: exit 0)\n`);
    return ok ? EXIT_OK : EXIT_FAILURE;
  };

  ids.forEach((id, i) => {
    const args = [BIN, 'serve', '--id', id, '--port', String(base + i), '--resp-port', String(resp + i)];
    args.push(...(etcdEndpoints !== undefined ? ['--etcd', etcdEndpoints] : ['--peers', peers]));
    if (i === 0) args.push('--api-port', flags.apiPort);
    if (flags.config) args.push('--config', flags.config);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    const exited = new Promise<number>((resolve) => {
      child.once('exit', (code, signal) => {
        const status = code ?? 128 + (signal === null ? 0 : constants.signals[signal]);
        if (stopping) {
          // each node logs its own stop; only an unclean one is worth a line here
          if (status !== 0) process.stdout.write(`jincache: ${id} exited (${signal ?? code}) while stopping\n`);
        } else {
          process.stderr.write(`jincache cluster: ${id} exited (${signal ?? code}); stopping the cluster\n`);
          void stopAll('SIGTERM').then(() => process.exit(EXIT_FAILURE));
        }
        resolve(status);
      });
    });
    children.push({ id, child, exited });
  });

  // The nodes are in this process group: a terminal's Ctrl-C reaches each of them as well as this
  // process (and npm, which forwards it here once more). Each node takes the SIGTERM sent below
  // as the same stop as that SIGINT (signals.ts), so one Ctrl-C is one graceful stop.
  const stopped = new Promise<number>((resolve) => {
    onStopSignals({
      graceful: () => {
        process.stdout.write('\njincache: stopping the cluster: every node leaves gracefully (Ctrl-C again to stop at once)\n');
        void stopAll('SIGTERM').then(resolve);
      },
      force: (signal) => {
        process.stdout.write('\njincache: stopping now, without waiting for the nodes to drain\n');
        void stopAll('SIGTERM', 3000).then(() => resolve(signalExitCode(signal)));
      },
    });
  });

  const ready = await waitHealthy(`http://127.0.0.1:${flags.apiPort}/health`, 15_000, () => stopping);
  if (stopping) return stopped;
  if (!ready) {
    process.stderr.write('jincache cluster: the nodes did not become healthy within 15 s\n');
    await stopAll('SIGTERM', 5000);
    return EXIT_FAILURE;
  }
  // The banner is what a person reads: print it once the nodes have settled (every node up,
  // caught up and seeing the others healthy), so the start-up lines do not scroll it away.
  const urls = ids.map((_, i) => (i === 0 ? `http://127.0.0.1:${flags.apiPort}` : `http://127.0.0.1:${base + i}`));
  await waitSettled(urls, n, 15_000, () => stopping);
  if (stopping) return stopped;
  const api = `http://127.0.0.1:${flags.apiPort}`;
  process.stdout.write(
    [
      '',
      `jincache: ${n}-node cluster running (nodes on 127.0.0.1:${base}-${base + n - 1})`,
      `  dashboard & API   ${api}/`,
      `  store a value     curl -X PUT --data-binary 'hello' ${api}/api/scores/greeting`,
      `  read it back      curl ${api}/api/scores/greeting`,
      `  redis protocol    redis-cli -p ${resp} set greeting hello  (every node: ports ${resp}-${resp + n - 1})`,
      `  redis cluster     redis-cli -c -p ${resp} get greeting; redis-cli --cluster check 127.0.0.1:${resp}`,
      `  cluster status    npx jincache status --node ${api}`,
      ...(etcdEndpoints !== undefined
        ? [`  etcd              ${etcdEndpoints} (add a node: npx jincache serve --etcd ${etcdEndpoints} --id node-${n + 1} --port ${base + n})`]
        : []),
      '  Ctrl-C stops the cluster.',
      '',
    ].join('\n'),
  );

  return stopped;
}

/**
 * Wait (bounded) until every node answers /cluster with `members` members in one table version,
 * all healthy, every migration finished and nothing left to catch up. False on timeout.
 */
async function waitSettled(urls: readonly string[], members: number, timeoutMs: number, cancelled: () => boolean): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  const settled = async (url: string): Promise<number | undefined> => {
    try {
      const res = await fetch(`${url}/cluster`, { signal: AbortSignal.timeout(1000) });
      if (!res.ok) return undefined;
      const info = (await res.json()) as { ringVersion: number; nodes: { health?: string; status?: string }[]; migrations?: unknown[]; catchup?: { pending?: number } };
      const calm = info.nodes.length === members && info.nodes.every((x) => x.health === 'healthy' && x.status === 'active') && (info.migrations?.length ?? 0) === 0 && (info.catchup?.pending ?? 0) === 0;
      return calm ? info.ringVersion : undefined;
    } catch {
      return undefined;
    }
  };
  while (Date.now() < end && !cancelled()) {
    const versions = await Promise.all(urls.map(settled));
    if (versions.every((v) => v !== undefined && v === versions[0])) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

async function waitHealthy(url: string, timeoutMs: number, cancelled: () => boolean): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end && !cancelled()) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
