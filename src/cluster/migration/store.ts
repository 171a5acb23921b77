/**
 * Where migrations live: `${prefix}/migrations/{id}` (the record) and
 * `${prefix}/migrations/{id}/nodes/{nodeId}` (each source node's progress). One seam
 * ({@link MigrationStore}) with an etcd implementation; the executor, the coordinator and the CLI
 * only see the seam.
 *
 * Record updates are compare-and-swap on the stored value (an etcd txn `Value ==`), because the
 * leader and an operator (cancel, rollback) may write the same record at once.
 */
import type { Etcd3 } from 'etcd3';
import { connect, etcdCall, noopLogger, type EtcdConnection, type EtcdLogger } from '../../discovery/etcd-client.ts';
import { EtcdMirror } from '../../discovery/etcd-watch.ts';
import type { Disposer } from '../../discovery/registry.ts';
import type { NodeId } from '../../core/types.ts';
import { decodeProgress, encodeProgress, parseMigration, serializeMigration, type Migration, type MigrationDoc, type NodeProgress } from './record.ts';

export interface MigrationStore {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Every stored migration, oldest first (local view, kept by a watch). */
  list(): readonly Migration[];
  get(id: string): Migration | undefined;
  /** Progress reports of one migration, by node. */
  progress(id: string): ReadonlyMap<NodeId, NodeProgress>;
  onChange(listener: () => void): Disposer;
  /** Store a new record; false if the id exists. */
  create(doc: MigrationDoc): Promise<boolean>;
  /**
   * Read-modify-write one record with CAS, retrying a few times on races. `fn` returns the new
   * doc or null to leave it. Resolves to the stored result (undefined when absent).
   */
  update(id: string, fn: (m: Migration) => MigrationDoc | null): Promise<Migration | undefined>;
  putProgress(id: string, p: NodeProgress): Promise<void>;
  /** Delete a record and its progress reports. */
  remove(id: string): Promise<void>;
}

export type EtcdMigrationStoreOptions = EtcdConnection & {
  prefix: string;
  logger?: EtcdLogger;
};

export class EtcdMigrationStore implements MigrationStore {
  readonly #client: Etcd3;
  readonly #owned: boolean;
  readonly #base: string;
  readonly #logger: EtcdLogger;
  readonly #mirror: EtcdMirror;
  readonly #listeners = new Set<() => void>();
  // parsed records by id, re-parsed only when the raw value changes
  #parsed = new Map<string, { raw: string; m: Migration }>();
  #progress = new Map<string, Map<NodeId, NodeProgress>>();
  // progress key -> its raw value and decoded report (reports decode only when they change)
  #rawProgress = new Map<string, { raw: string; p: NodeProgress }>();

  constructor(opts: EtcdMigrationStoreOptions) {
    this.#base = `${opts.prefix}/migrations/`;
    this.#logger = opts.logger ?? noopLogger;
    const { client, owned } = connect(opts);
    this.#client = client;
    this.#owned = owned;
    this.#mirror = new EtcdMirror({
      client,
      range: { prefix: this.#base },
      logger: this.#logger,
      name: 'migrations',
      onChange: (state) => {
        this.#rebuild(state);
        for (const l of [...this.#listeners]) l();
      },
    });
  }

  async start(): Promise<void> {
    await this.#mirror.start();
    this.#rebuild(this.#mirror.state());
  }

  async stop(): Promise<void> {
    await this.#mirror.stop();
    this.#listeners.clear();
    if (this.#owned) this.#client.close();
  }

  list(): readonly Migration[] {
    return [...this.#parsed.values()].map((e) => e.m).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  get(id: string): Migration | undefined {
    return this.#parsed.get(id)?.m;
  }

  progress(id: string): ReadonlyMap<NodeId, NodeProgress> {
    return this.#progress.get(id) ?? new Map();
  }

  onChange(listener: () => void): Disposer {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async create(doc: MigrationDoc): Promise<boolean> {
    const key = this.#base + doc.id;
    const res = await etcdCall('create migration', () =>
      this.#client.if(key, 'Create', '==', 0).then(this.#client.put(key).value(serializeMigration(doc))).commit(),
    );
    return res.succeeded;
  }

  async update(id: string, fn: (m: Migration) => MigrationDoc | null): Promise<Migration | undefined> {
    const key = this.#base + id;
    for (let attempt = 0; attempt < 8; attempt++) {
      const raw = await etcdCall('read migration', () => this.#client.get(key).string());
      if (raw === null) return undefined;
      const cur = parseMigration(raw);
      const next = fn(cur);
      if (next === null) return cur;
      const value = serializeMigration(next);
      const res = await etcdCall('update migration', () => this.#client.if(key, 'Value', '==', raw).then(this.#client.put(key).value(value)).commit());
      if (res.succeeded) return parseMigration(value);
    }
    throw new Error(`migration ${id}: update lost the race 8 times`);
  }

  async putProgress(id: string, p: NodeProgress): Promise<void> {
    // only while the record exists, so a late report cannot resurrect a removed migration
    const rec = this.#base + id;
    await etcdCall('put migration progress', () =>
      this.#client.if(rec, 'Create', '>', 0).then(this.#client.put(`${rec}/nodes/${p.node}`).value(encodeProgress(p))).commit(),
    );
  }

  async remove(id: string): Promise<void> {
    const key = this.#base + id;
    await etcdCall('remove migration', () => this.#client.delete().key(key).exec());
    await etcdCall('remove migration progress', () => this.#client.delete().prefix(`${key}/`).exec());
  }

  #rebuild(state: ReadonlyMap<string, string>): void {
    const parsed = new Map<string, { raw: string; m: Migration }>();
    const progress = new Map<string, Map<NodeId, NodeProgress>>();
    const rawProgress = new Map<string, { raw: string; p: NodeProgress }>();
    for (const [key, raw] of state) {
      const rest = key.slice(this.#base.length);
      const slash = rest.indexOf('/');
      if (slash < 0) {
        const old = this.#parsed.get(rest);
        if (old !== undefined && old.raw === raw) {
          parsed.set(rest, old);
          continue;
        }
        try {
          parsed.set(rest, { raw, m: parseMigration(raw) });
        } catch (e) {
          this.#logger.warn({ key, err: (e as Error).message }, 'ignoring invalid migration record');
        }
        continue;
      }
      const id = rest.slice(0, slash);
      const m = /^nodes\/(.+)$/.exec(rest.slice(slash + 1));
      if (m === null) continue;
      // every report rewrites the whole state: decode only the ones that changed
      const cached = this.#rawProgress.get(key);
      const p = cached !== undefined && cached.raw === raw ? cached.p : decodeProgress(raw);
      if (p === undefined) continue;
      rawProgress.set(key, { raw, p });
      let byNode = progress.get(id);
      if (byNode === undefined) progress.set(id, (byNode = new Map()));
      byNode.set(m[1]!, p);
    }
    this.#parsed = parsed;
    this.#progress = progress;
    this.#rawProgress = rawProgress;
  }
}

/** One-shot reads for the CLI (no watch). */
export async function readMigrations(client: Etcd3, prefix: string): Promise<{ migrations: Migration[]; progress: Map<string, Map<NodeId, NodeProgress>> }> {
  const base = `${prefix}/migrations/`;
  const all = await etcdCall('read migrations', () => client.getAll().prefix(base).strings());
  const migrations: Migration[] = [];
  const progress = new Map<string, Map<NodeId, NodeProgress>>();
  for (const [key, raw] of Object.entries(all)) {
    const rest = key.slice(base.length);
    const slash = rest.indexOf('/');
    if (slash < 0) {
      try {
        migrations.push(parseMigration(raw));
      } catch {
        // skip invalid
      }
      continue;
    }
    const p = decodeProgress(raw);
    if (p === undefined) continue;
    const id = rest.slice(0, slash);
    let byNode = progress.get(id);
    if (byNode === undefined) progress.set(id, (byNode = new Map()));
    byNode.set(p.node, p);
  }
  migrations.sort((a, b) => a.createdAt - b.createdAt);
  return { migrations, progress };
}
