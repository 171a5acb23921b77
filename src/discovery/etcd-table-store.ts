/**
 * The authoritative partition table in etcd (SPEC §4 `/jincache/ring`).
 *
 *   ${prefix}/ring          encodeTable(t)            what nodes read and watch
 *   ${prefix}/ring/version  String(t.version)         what compareAndSwap compares
 *
 * Why a sibling version key rather than the ring key's mod revision: the TableStore contract
 * speaks in table versions, and a writer (the elected leader) may have learnt the current version
 * from a watch event or from load() on another node, not from its own write; comparing the
 * decimal value needs no version→revision bookkeeping and survives etcd restarts and compaction.
 * Both keys are written in the same txn, so they never disagree.
 */
import type { Etcd3 } from 'etcd3';
import { decodeTable, encodeTable, type PartitionTable } from '../core/placement/table.ts';
import type { Disposer, TableStore } from './registry.ts';
import {
  checkPrefix,
  connect,
  delays,
  etcdCall,
  noopLogger,
  pause,
  type EtcdConnection,
  type EtcdLogger,
} from './etcd-client.ts';
import { EtcdMirror } from './etcd-watch.ts';

export type EtcdTableStoreOptions = EtcdConnection & {
  /** Key prefix, no trailing slash, e.g. "/jincache". */
  prefix: string;
  /** Default: no logging. */
  logger?: EtcdLogger;
};

type TableListener = (table: PartitionTable) => void;

export class EtcdTableStore implements TableStore {
  readonly #client: Etcd3;
  readonly #ownsClient: boolean;
  readonly #ringKey: string;
  readonly #versionKey: string;
  readonly #logger: EtcdLogger;
  readonly #listeners = new Set<TableListener>();
  readonly #mirror: EtcdMirror;
  /** Watch lifecycle: started lazily by the first onChange (or start()), ended by stop(). */
  #watch: { kind: 'off' } | { kind: 'starting'; done: Promise<void> } | { kind: 'on' } | { kind: 'stopped' } = {
    kind: 'off',
  };
  #abort = new AbortController();
  /** Version last delivered to listeners (0 = none). */
  #delivered = 0;

  constructor(opts: EtcdTableStoreOptions) {
    const prefix = checkPrefix(opts.prefix);
    this.#ringKey = `${prefix}/ring`;
    this.#versionKey = `${prefix}/ring/version`;
    this.#logger = opts.logger ?? noopLogger;
    const { client, owned } = connect(opts);
    this.#client = client;
    this.#ownsClient = owned;
    this.#mirror = new EtcdMirror({
      client,
      range: { key: this.#ringKey },
      logger: this.#logger,
      name: 'ring',
      onChange: (state) => this.#deliver(state.get(this.#ringKey)),
    });
  }

  async load(): Promise<PartitionTable | null> {
    const raw = await etcdCall('load ring', () => this.#client.get(this.#ringKey).string());
    return raw === null ? null : decodeTable(raw);
  }

  async compareAndSwap(expectedVersion: number, next: PartitionTable, guardKey?: string): Promise<boolean> {
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
      throw new RangeError(`expectedVersion must be an integer >= 0, got ${expectedVersion}`);
    }
    if (!(next.version > expectedVersion)) {
      // Versions only go up; writing an older or equal version would make nodes disagree.
      throw new RangeError(`next.version (${next.version}) must be greater than expectedVersion (${expectedVersion})`);
    }
    const encoded = encodeTable(next);
    const cmp =
      expectedVersion === 0
        ? this.#client.if(this.#versionKey, 'Create', '==', 0) // nothing stored yet
        : this.#client.if(this.#versionKey, 'Value', '==', String(expectedVersion));
    // the writer's leadership key still exists (create revision 0 = no such key)
    const txn = guardKey === undefined ? cmp : cmp.and(guardKey, 'Create', '>', 0);
    const res = await etcdCall('swap ring', () =>
      txn
        .then(
          this.#client.put(this.#ringKey).value(encoded),
          this.#client.put(this.#versionKey).value(String(next.version)),
        )
        .commit(),
    );
    return res.succeeded;
  }

  /**
   * Subscribe to stored-table changes. The first subscription starts the watch; listeners also
   * get the table stored when the watch starts, so load()-then-subscribe cannot miss a version.
   */
  onChange(listener: TableListener): Disposer {
    this.#listeners.add(listener);
    if (this.#watch.kind === 'off') void this.start().catch(() => undefined);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Start watching (retrying while etcd is unreachable); resolves after the first read. */
  start(): Promise<void> {
    switch (this.#watch.kind) {
      case 'on':
        return Promise.resolve();
      case 'starting':
        return this.#watch.done;
      case 'stopped':
        return Promise.reject(new Error('EtcdTableStore: stopped'));
      case 'off': {
        this.#abort = new AbortController();
        const done = this.#startWatch();
        this.#watch = { kind: 'starting', done };
        return done;
      }
      default:
        throw new Error('EtcdTableStore: impossible watch state');
    }
  }

  async stop(): Promise<void> {
    if (this.#watch.kind === 'stopped') return;
    this.#watch = { kind: 'stopped' };
    this.#abort.abort();
    await this.#mirror.stop();
    this.#listeners.clear();
    if (this.#ownsClient) this.#client.close();
  }

  async #startWatch(): Promise<void> {
    for (const delay of delays(100, 2000)) {
      try {
        await this.#mirror.start();
        break;
      } catch (err) {
        if (this.#abort.signal.aborted) return;
        this.#logger.warn({ err: (err as Error).message, retryInMs: delay }, 'ring watch: first read failed; retrying');
        await pause(delay, this.#abort.signal);
        if (this.#abort.signal.aborted) return;
      }
    }
    if (this.#watch.kind !== 'starting') return; // stopped meanwhile
    this.#watch = { kind: 'on' };
    this.#deliver(this.#mirror.state().get(this.#ringKey));
  }

  #deliver(raw: string | undefined): void {
    if (raw === undefined) return; // deleted (only by hand): keep routing by the last table
    let table: PartitionTable;
    try {
      table = decodeTable(raw);
    } catch (err) {
      this.#logger.error({ err: (err as Error).message }, 'ignoring undecodable partition table in etcd');
      return;
    }
    if (table.version === this.#delivered) return;
    if (table.version < this.#delivered) {
      this.#logger.warn({ version: table.version, previous: this.#delivered }, 'partition table version went backwards');
    }
    this.#delivered = table.version;
    for (const listener of [...this.#listeners]) {
      try {
        listener(table);
      } catch (err) {
        this.#logger.error({ err: (err as Error).message }, 'table listener threw');
      }
    }
  }
}
