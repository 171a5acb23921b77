/**
 * `jincache cluster`: a local cluster of node processes on 127.0.0.1 (what `npm start` runs).
 * Node i listens on base-port + i - 1; node 1 also serves the client API and dashboard on
 * --api-port and the Redis protocol on --resp-port. Ctrl-C stops every child.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit.ts';
import { startLocalEtcd, type LocalEtcd } from './local-etcd.ts';

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
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    process.stderr.write(`jincache cluster: --nodes ${flags.nodes} is invalid: expected an integer from 1 to 64\n`);
    return EXIT_USAGE;
  }
  if (!Number.isInteger(base) || base < 1 || base + n > 65535) {
    process.stderr.write(`jincache cluster: --base-port ${flags.basePort} is invalid\n`);
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
  const children: ChildProcess[] = [];
  let stopping = false;

  const stopAll = async (): Promise<void> => {
    stopping = true;
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
            setTimeout(() => c.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
    etcd?.stop();
  };

  ids.forEach((id, i) => {
    const args = [BIN, 'serve', '--id', id, '--port', String(base + i)];
    args.push(...(etcdEndpoints !== undefined ? ['--etcd', etcdEndpoints] : ['--peers', peers]));
    if (i === 0) args.push('--api-port', flags.apiPort, '--resp-port', flags.respPort);
    if (flags.config) args.push('--config', flags.config);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code, signal) => {
      if (!stopping) {
        process.stderr.write(`jincache cluster: ${id} exited (${signal ?? code}); stopping the cluster\n`);
        void stopAll().then(() => process.exit(EXIT_FAILURE));
      }
    });
    children.push(child);
  });

  const ready = await waitHealthy(`http://127.0.0.1:${flags.apiPort}/health`, 15_000);
  if (!ready) {
    process.stderr.write('jincache cluster: the nodes did not become healthy within 15 s\n');
    await stopAll();
    return EXIT_FAILURE;
  }
  const api = `http://127.0.0.1:${flags.apiPort}`;
  process.stdout.write(
    [
      '',
      `jincache: ${n}-node cluster running (nodes on 127.0.0.1:${base}-${base + n - 1})`,
      `  dashboard & API   ${api}/`,
      `  store a value     curl -X PUT --data-binary 'hello' ${api}/api/scores/greeting`,
      `  read it back      curl ${api}/api/scores/greeting`,
      `  redis protocol    redis-cli -p ${flags.respPort} set greeting hello`,
      `  cluster status    node bin/jincache.js status --node ${api}`,
      ...(etcdEndpoints !== undefined
        ? [`  etcd              ${etcdEndpoints} (add a node: node bin/jincache.js serve --etcd ${etcdEndpoints} --id node-${n + 1} --port ${base + n})`]
        : []),
      '  Ctrl-C stops the cluster.',
      '',
    ].join('\n'),
  );

  await new Promise<void>((resolve) => {
    const onSignal = (): void => {
      process.stdout.write('\njincache: stopping the cluster…\n');
      void stopAll().then(resolve);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  return EXIT_OK;
}

async function waitHealthy(url: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
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
