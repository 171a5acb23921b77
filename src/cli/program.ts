/**
 * The `jincache` command line (SPEC §1). Exit codes scripts can rely on:
 * 0 success, 1 failure (the cluster answered badly or could not be reached), 2 bad usage or config.
 */
import { Command, CommanderError } from 'commander';
import { runServe } from './serve.ts';
import { runCluster } from './cluster.ts';
import { runStatus } from './status.ts';
import { runConfig } from './config.ts';
import { runMigrationAction, runMigrations } from './migrations.ts';
import { runRebalance } from './rebalance.ts';

import { EXIT_OK, EXIT_USAGE } from './exit.ts';

export { EXIT_OK };

function collectList(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

export function buildProgram(): Command {
  const program = new Command('jincache')
    .description('distributed in-memory cache and key-value cluster')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('serve')
    .description('run one node')
    .option('-c, --config <file>', 'YAML config file (SPEC §5)')
    .option('--id <id>', 'node id (default: from --peers by address, else node-<port>)')
    .option('--zone <zone>', 'failure domain (rack, datacenter): copies of a partition go to distinct zones')
    .option('--host <host>', 'address to bind', undefined)
    .option('--port <n>', 'node-to-node port (and client API unless --api-port)')
    .option('--api-port <n>', 'separate client API and dashboard port')
    .option('--resp-port <n>', 'Redis-protocol listener port')
    .option('--etcd <urls>', 'etcd endpoints, comma-separated (dynamic membership)', collectList)
    .option('--peers <list>', 'static peers: id=http://host:port[?zone=z],... (or http://host:port,...)', collectList)
    .option('--secret <secret>', 'cluster secret required on node-to-node endpoints')
    .option('--log-level <level>', 'trace|debug|info|warn|error|silent')
    .action(async (opts) => {
      process.exitCode = await runServe(opts);
    });

  program
    .command('cluster')
    .description('run a local cluster (what `npm start` runs)')
    .option('-n, --nodes <n>', 'number of nodes', '3')
    .option('--base-port <n>', 'first node port', '8001')
    .option('--api-port <n>', 'client API and dashboard port of node 1', '9999')
    .option('--resp-port <n>', 'Redis-protocol port of node 1 (node i: this + i - 1)', '6380')
    .option('--etcd <mode>', '"auto" to start a private etcd, or etcd URLs')
    .option('-c, --config <file>', 'YAML config file passed to every node')
    .action(async (opts) => {
      process.exitCode = await runCluster(opts);
    });

  program
    .command('status')
    .description('print the nodes and their partitions')
    .option('--node <url>', 'any node\'s client API', 'http://127.0.0.1:9999')
    .option('--user <name>', 'user to authenticate as (default: JINCACHE_USER, else "default")')
    .option('--password <password>', 'password (default: the environment variable JINCACHE_PASSWORD)')
    .option('--cacert <file>', 'CA certificate (PEM) the node\'s HTTPS certificate is signed by')
    .option('--json', 'machine-readable output')
    .action(async (opts) => {
      process.exitCode = await runStatus(opts);
    });

  program
    .command('rebalance')
    .description('plan and apply a load rebalance (the elected leader also does this by itself)')
    .option('--node <url>', 'any node\'s client API', 'http://127.0.0.1:9999')
    .option('--user <name>', 'user to authenticate as (default: JINCACHE_USER, else "default")')
    .option('--password <password>', 'password (default: the environment variable JINCACHE_PASSWORD)')
    .option('--cacert <file>', 'CA certificate (PEM) the node\'s HTTPS certificate is signed by')
    .option('--strategy <s>', 'minimal-disturbance | load-optimal | weight-adjustment (default: config rebalance.strategy)')
    .option('--dry-run', 'print the plan and change nothing')
    .option('--json', 'machine-readable output')
    .action(async (opts) => {
      process.exitCode = await runRebalance(opts);
    });

  program
    .command('config')
    .description('read or write live per-group overrides in etcd (/jincache/config/{group})')
    .argument('<action>', 'get or set')
    .argument('<key>', 'GROUP or GROUP.FIELD, e.g. scores.cache_bytes')
    .argument('[value]', 'JSON object for GROUP, or a value for GROUP.FIELD (omit to remove the field)')
    .option('--etcd <urls>', 'etcd endpoints, comma-separated', collectList)
    .option('--etcd-cacert <file>', 'CA certificate (PEM) etcd\'s certificate is signed by (endpoints then use https)')
    .option('--etcd-user <name>', 'etcd user (with --etcd-password or JINCACHE_ETCD_PASSWORD)')
    .option('--etcd-password <password>', 'etcd password (default: the environment variable JINCACHE_ETCD_PASSWORD)')
    .option('--prefix <prefix>', 'etcd key prefix', '/jincache')
    .option('--json', 'compact JSON output')
    .action(async (action: string, key: string, value: string | undefined, opts: { etcd?: string[]; prefix: string; json?: boolean; etcdCacert?: string; etcdUser?: string; etcdPassword?: string }) => {
      process.exitCode = await runConfig(action, key, value, { ...opts, etcd: opts.etcd ?? ['127.0.0.1:2379'] });
    });

  const migrations = program
    .command('migrations')
    .description('list data migrations with their progress; cancel or roll one back')
    .option('--node <url>', 'any node\'s client API', 'http://127.0.0.1:9999')
    .option('--user <name>', 'user to authenticate as (default: JINCACHE_USER, else "default")')
    .option('--password <password>', 'password (default: the environment variable JINCACHE_PASSWORD)')
    .option('--cacert <file>', 'CA certificate (PEM) the node\'s HTTPS certificate is signed by')
    .option('--watch', 'live progress bars until Ctrl-C')
    .option('--until-done', 'with --watch: exit once no migration is open')
    .option('--json', 'machine-readable output')
    .action(async (opts: { node: string; watch?: boolean; untilDone?: boolean; json?: boolean; user?: string; password?: string; cacert?: string }) => {
      process.exitCode = await runMigrations({ ...opts, prefix: '/jincache' });
    });
  for (const action of ['cancel', 'rollback'] as const) {
    migrations
      .command(action)
      .description(action === 'cancel' ? 'stop a running migration within one batch (the previous table stays in force)' : 'restore the table before a migration, with no data lost')
      .argument('<id>', 'migration id (see `jincache migrations`)')
      .option('--node <url>', 'any node\'s client API (default http://127.0.0.1:9999)')
      .option('--user <name>', 'user to authenticate as (default: JINCACHE_USER, else "default")')
      .option('--password <password>', 'password (default: the environment variable JINCACHE_PASSWORD)')
      .option('--cacert <file>', 'CA certificate (PEM) the node\'s HTTPS certificate is signed by')
      .option('--etcd <urls>', 'write the request to etcd directly, comma-separated endpoints', collectList)
      .option('--etcd-cacert <file>', 'CA certificate (PEM) etcd\'s certificate is signed by (endpoints then use https)')
      .option('--etcd-user <name>', 'etcd user (with --etcd-password or JINCACHE_ETCD_PASSWORD)')
      .option('--etcd-password <password>', 'etcd password (default: the environment variable JINCACHE_ETCD_PASSWORD)')
      .option('--prefix <prefix>', 'etcd key prefix', '/jincache')
      .option('--json', 'machine-readable output')
      .action(async (id: string, opts: { node?: string; etcd?: string[]; prefix: string; json?: boolean; user?: string; password?: string; cacert?: string }) => {
        // `--node` and the others before or after the action name: commander gives them to whichever command parsed them
        const parent = migrations.opts() as { node: string; json?: boolean; user?: string; password?: string; cacert?: string };
        const pick = <K extends 'user' | 'password' | 'cacert'>(k: K) => ((opts[k] ?? parent[k]) !== undefined ? { [k]: opts[k] ?? parent[k] } : {});
        process.exitCode = await runMigrationAction(action, id, { ...opts, ...pick('user'), ...pick('password'), ...pick('cacert'), node: opts.node ?? parent.node, json: opts.json ?? parent.json });
      });
  }

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    throw e;
  }
}

