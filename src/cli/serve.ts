import { JincacheNode } from '../node/node.ts';
import { isConfigError, loadConfig } from '../config/load.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit.ts';
import { onStopSignals, signalExitCode } from './signals.ts';
import { releaseStartupMemory } from './startup-memory.ts';

export interface ServeFlags {
  config?: string;
  id?: string;
  zone?: string;
  host?: string;
  port?: string;
  apiPort?: string;
  respPort?: string;
  etcd?: string[];
  peers?: string[];
  secret?: string;
  logLevel?: string;
}

/** Raw (pre-validation) config overrides from flags: validation names the flag's config key. */
export function flagOverrides(f: ServeFlags): Record<string, Record<string, unknown>> {
  const o: Record<string, Record<string, unknown>> = {};
  const set = (section: string, key: string, value: unknown): void => {
    if (value === undefined) return;
    (o[section] ??= {})[key] = value;
  };
  const num = (v: string | undefined): number | string | undefined => (v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : v);
  set('node', 'id', f.id);
  set('node', 'zone', f.zone);
  set('server', 'host', f.host);
  set('server', 'port', num(f.port));
  set('server', 'api_port', num(f.apiPort));
  set('server', 'resp_port', num(f.respPort));
  set('etcd', 'endpoints', f.etcd);
  if (f.etcd !== undefined) set('etcd', 'enabled', true);
  set('cluster', 'peers', f.peers);
  set('cluster', 'secret', f.secret);
  set('log', 'level', f.logLevel);
  // secrets from the environment rather than the command line, where `ps` shows them
  set('auth', 'requirepass', process.env.JINCACHE_PASSWORD || undefined);
  if (f.secret === undefined) set('cluster', 'secret', process.env.JINCACHE_CLUSTER_SECRET || undefined);
  return o;
}

export async function runServe(flags: ServeFlags): Promise<number> {
  let config;
  try {
    config = loadConfig({ file: flags.config, overrides: flagOverrides(flags) });
  } catch (e) {
    if (isConfigError(e)) {
      process.stderr.write(`${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  let node: JincacheNode;
  try {
    node = new JincacheNode({ config });
  } catch (e) {
    // a setting that cannot work (no password on a public address, an unreadable password file)
    process.stderr.write(`jincache: ${(e as Error).message}\n`);
    return EXIT_USAGE;
  }
  // Listening from before the start: the nodes of a local cluster start together, and a Ctrl-C
  // that comes while this one is still starting lets the start finish, then leaves gracefully.
  // One Ctrl-C may arrive more than once (the terminal's SIGINT reaches the whole process group,
  // and a parent forwards it too): see signals.ts for why copies count as one.
  let starting: Promise<void> = Promise.resolve();
  const left = new Promise<void>((resolve) => {
    onStopSignals({
      graceful: (signal) => {
        node.logger.info({ signal }, 'stopping: leaving the cluster gracefully (Ctrl-C again to stop at once)');
        void starting.then(() => node.stop()).then(resolve, resolve);
      },
      force: (signal) => {
        node.logger.warn({ signal }, 'second stop signal: stopping now, without finishing the drain (the cluster recovers this node\'s partitions from their replicas)');
        process.exit(signalExitCode(signal));
      },
    });
  });
  // SIGHUP: renewed certificates, without dropping connections
  process.on('SIGHUP', () => {
    try {
      node.reloadCertificates();
    } catch (e) {
      node.logger.warn({ err: (e as Error).message }, 'certificates not reloaded; the previous ones stay in use');
    }
  });
  starting = node.start();
  try {
    await starting;
  } catch (e) {
    process.stderr.write(`jincache: node ${node.id} failed to start: ${(e as Error).message}\n`);
    await node.stop().catch(() => {});
    return EXIT_FAILURE;
  }
  releaseStartupMemory();
  await left;
  // The node has left and closed its listeners; client libraries (etcd's gRPC channel, keep-alive
  // agents) may still hold handles for a while. A stopped server exits now rather than linger.
  process.exit(EXIT_OK);
}
