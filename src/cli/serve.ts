import { JincacheNode } from '../node/node.ts';
import { isConfigError, loadConfig } from '../config/load.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit.ts';

export interface ServeFlags {
  config?: string;
  id?: string;
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
  set('server', 'host', f.host);
  set('server', 'port', num(f.port));
  set('server', 'api_port', num(f.apiPort));
  set('server', 'resp_port', num(f.respPort));
  set('etcd', 'endpoints', f.etcd);
  if (f.etcd !== undefined) set('etcd', 'enabled', true);
  set('cluster', 'peers', f.peers);
  set('cluster', 'secret', f.secret);
  set('log', 'level', f.logLevel);
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
  const node = new JincacheNode({ config });
  try {
    await node.start();
  } catch (e) {
    process.stderr.write(`jincache: node ${node.id} failed to start: ${(e as Error).message}\n`);
    await node.stop().catch(() => {});
    return EXIT_FAILURE;
  }
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string): void => {
      node.logger.info({ signal }, 'shutting down');
      node.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  // The node has left and closed its listeners; client libraries (etcd's gRPC channel, keep-alive
  // agents) may still hold handles for a while. A stopped server exits now rather than linger.
  process.exit(EXIT_OK);
}
