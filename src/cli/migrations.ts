/**
 * `jincache migrations [--watch] [--node URL] [--json]` and `jincache migrations cancel|rollback ID`.
 *
 * Reading goes to a node (GET /cluster/migrations). Cancel and rollback are requests written into
 * the migration record; the elected leader acts on them. They go to etcd directly with `--etcd`,
 * otherwise through the node (its control route, or its peer route on older nodes).
 */
import { etcdAccess, nodeAuth, nodeRequest, refusal, type EtcdAuthFlags, type NodeAuthFlags, type NodeResponse } from './request.ts';
import { createRequire } from 'node:module';
import { createEtcdClient } from '../discovery/etcd-client.ts';
import { EtcdMigrationStore } from '../cluster/migration/store.ts';
import { isMigrationId, isOpen, type Migration, type MigrationDoc } from '../cluster/migration/record.ts';
import { viewOf, type MigrationView } from '../cluster/migration/view.ts';
import { renderTable } from './status.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit.ts';

// cli-progress ships no types: the little of it used here, typed locally
interface Bar {
  setTotal(total: number): void;
  update(value: number, payload: object): void;
}
interface CliProgress {
  MultiBar: new (opts: object, preset: object) => { create(total: number, start: number, payload: object): Bar; stop(): void };
  Presets: { shades_classic: object };
}
/** Loaded when bars are drawn (every CLI command's module is loaded by `jincache serve` too). */
const cliProgress = (): CliProgress => createRequire(import.meta.url)('cli-progress') as CliProgress;

export interface MigrationsFlags extends NodeAuthFlags, EtcdAuthFlags {
  node: string;
  json?: boolean;
  watch?: boolean;
  /** With --watch: exit once no migration is open (scripts, tests). */
  untilDone?: boolean;
  etcd?: string[];
  prefix: string;
  /** Poll period of --watch, ms. Default 500. */
  intervalMs?: number;
}

async function fetchList(flags: MigrationsFlags): Promise<MigrationView[]> {
  const url = new URL('/cluster/migrations', flags.node);
  let res: NodeResponse;
  try {
    res = await nodeRequest(url, { timeoutMs: 5000, auth: nodeAuth(flags) });
  } catch (e) {
    throw new Error(`cannot reach ${url.origin}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new Error(refusal(res, url));
  return res.json<{ migrations?: MigrationView[] }>().migrations ?? [];
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatMigrations(list: readonly MigrationView[]): string {
  if (list.length === 0) return 'no migrations';
  const rows = list.map((m) => [
    m.id,
    m.kind,
    m.state,
    `v${m.fromVersion} -> v${m.toVersion}`,
    `${m.partitions.done}/${m.partitions.total}`,
    `${m.entries.done}/${m.entries.total}`,
    fmtBytes(m.bytes.done),
    m.rate > 0 ? `${m.rate}/s` : '-',
    m.etaSeconds === null ? '-' : `${m.etaSeconds}s`,
    m.reason ?? '',
  ]);
  return renderTable(['ID', 'KIND', 'STATE', 'TABLE', 'PARTITIONS', 'ENTRIES', 'BYTES', 'RATE', 'ETA', 'NOTE'], rows);
}

export async function runMigrations(flags: MigrationsFlags): Promise<number> {
  try {
    if (!flags.watch) {
      const list = await fetchList(flags);
      console.log(flags.json ? JSON.stringify({ migrations: list }) : formatMigrations(list));
      return EXIT_OK;
    }
    return await watch(flags);
  } catch (e) {
    console.error(`jincache migrations: ${(e as Error).message}`);
    return EXIT_FAILURE;
  }
}

/** Live progress bars, one per open migration, until Ctrl-C (or, with untilDone, until none is open). */
async function watch(flags: MigrationsFlags): Promise<number> {
  const tty = process.stdout.isTTY === true && !flags.json;
  const bars = tty
    ? new (cliProgress().MultiBar)(
        { format: ' {id} {kind} [{bar}] {percentage}% | {value}/{total} entries | {rate}/s | ETA {eta_s}s | {state}', hideCursor: true, clearOnComplete: false, stopOnComplete: false },
        cliProgress().Presets.shades_classic,
      )
    : undefined;
  const shown = new Map<string, Bar>();
  let stopped = false;
  const onSigint = (): void => {
    stopped = true;
  };
  process.once('SIGINT', onSigint);
  try {
    while (!stopped) {
      const list = await fetchList(flags);
      const open = list.filter((m) => m.state === 'running' || m.state === 'cancelling');
      if (bars !== undefined) {
        for (const m of list) {
          if (!open.includes(m) && !shown.has(m.id)) continue;
          const payload = { id: m.id, kind: m.kind, rate: m.rate, state: m.state, eta_s: m.etaSeconds ?? '-' };
          const total = Math.max(1, m.entries.total);
          let bar = shown.get(m.id);
          if (bar === undefined) shown.set(m.id, (bar = bars.create(total, m.entries.done, payload)));
          bar.setTotal(total);
          bar.update(m.state === 'done' ? total : m.entries.done, payload);
        }
      } else {
        const line = flags.json ? JSON.stringify({ at: Date.now(), migrations: open }) : open.map((m) => `${m.id} ${m.kind} ${m.state} ${m.entries.done}/${m.entries.total} entries ${m.partitions.done}/${m.partitions.total} partitions ${m.rate}/s eta ${m.etaSeconds ?? '-'}s`).join('\n') || 'no open migration';
        console.log(line);
      }
      if (flags.untilDone && open.length === 0) break;
      await new Promise((r) => setTimeout(r, flags.intervalMs ?? 500));
    }
  } finally {
    process.off('SIGINT', onSigint);
    bars?.stop();
  }
  return EXIT_OK;
}

/** `jincache migrations cancel|rollback ID`. */
export async function runMigrationAction(action: string, id: string, flags: MigrationsFlags): Promise<number> {
  if (action !== 'cancel' && action !== 'rollback') {
    console.error(`jincache migrations: unknown action "${action}" (expected cancel or rollback)`);
    return EXIT_USAGE;
  }
  if (!isMigrationId(id)) {
    console.error(`jincache migrations ${action}: "${id}" is not a migration id`);
    return EXIT_USAGE;
  }
  try {
    const out = flags.etcd !== undefined ? await viaEtcd(action, id, flags) : await viaNode(action, id, flags);
    console.log(flags.json ? JSON.stringify(out) : `${action === 'cancel' ? 'cancel' : 'rollback'} requested for ${id} (state ${out.state})`);
    return EXIT_OK;
  } catch (e) {
    console.error(`jincache migrations ${action}: ${(e as Error).message}${(e as Error).cause instanceof Error ? ` (${((e as Error).cause as Error).message})` : ""}`);
    return EXIT_FAILURE;
  }
}

async function viaNode(action: 'cancel' | 'rollback', id: string, flags: MigrationsFlags): Promise<MigrationView> {
  const url = new URL(`/cluster/migrations/${encodeURIComponent(id)}/${action}`, flags.node);
  const res = await nodeRequest(url, { method: 'POST', timeoutMs: 10_000, auth: nodeAuth(flags) });
  if (!res.ok) throw new Error(refusal(res, url));
  return res.json<MigrationView>();
}

async function viaEtcd(action: 'cancel' | 'rollback', id: string, flags: MigrationsFlags): Promise<MigrationView> {
  const client = createEtcdClient({ endpoints: flags.etcd!, dialTimeoutMs: 5000, ...etcdAccess(flags) });
  const store = new EtcdMigrationStore({ client, prefix: flags.prefix });
  try {
    let problem: string | undefined;
    const out = await store.update(id, (m: Migration): MigrationDoc | null => {
      if (action === 'cancel') {
        if (!isOpen(m.state)) {
          problem = `migration ${id} is ${m.state}; only a running migration can be cancelled`;
          return null;
        }
        return { ...m, state: 'cancelling', updatedAt: Date.now() };
      }
      if (m.kind === 'repair' || m.state === 'rolled_back' || m.state === 'superseded' || m.state === 'failed') {
        problem = `migration ${id} (${m.kind}, ${m.state}) cannot be rolled back`;
        return null;
      }
      return { ...m, rollbackRequested: true, state: m.state === 'running' ? 'cancelling' : m.state, updatedAt: Date.now() };
    });
    if (out === undefined) throw new Error(`no migration ${id}`);
    if (problem !== undefined) throw new Error(problem);
    return viewOf(out, new Map(), false);
  } finally {
    client.close();
  }
}
