/**
 * NodeStorage: persistence as a node uses it (config `storage.engine: leveldb`). One LevelDB per
 * node at `storage.path` ("{id}" replaced by the node id), one Persister mirroring every group.
 *
 * Order matters on both ends:
 *   start: open the database, attach every group's store (writes are mirrored from here on),
 *          load the disk into the stores, move the node's hybrid clock past every persisted
 *          version (so a restarted node never issues a version below one it already wrote,
 *          even if the wall clock went back), start the tombstone sweep. Do this before the
 *          node listens, so nothing is served from a cold store.
 *   stop:  after the listeners and plugins stopped (no more writes), write what is buffered,
 *          then close the database.
 */
import { resolve } from 'node:path';
import type { Group } from '../cache/group.ts';
import { DEFAULT_TOMBSTONE_TTL_MS, type StoredEntry } from '../cache/store.ts';
import type { Clock, NodeId, Version } from '../core/types.ts';
import type { HybridClock } from '../core/version.ts';
import type { Logger } from '../observe/logger.ts';
import { LevelStorage } from './leveldb.ts';
import { Persister, type PersisterStats } from './persist.ts';
import type { StorageRecord } from './record.ts';

export interface NodeStorageOptions {
  /** `storage.path` from the config; "{id}" is replaced by the node id. Required. */
  path: string;
  nodeId: NodeId;
  groups: ReadonlyMap<string, Group>;
  partitionOf: (key: string) => number;
  /** `cluster.partitions`: a change re-keys the records on load. Required. */
  partitionCount: number;
  /** The node's version clock: moved past every persisted version on start. Default: none. */
  hlc?: HybridClock;
  /** Default systemClock. */
  clock?: Clock;
  /** Default 10 minutes: the stores' tombstone TTL. */
  tombstoneTtlMs?: number;
  /** fsync each batch. Default false (see persist.ts for the durability window). */
  sync?: boolean;
  /** Default: silent. */
  logger?: Logger;
}

export interface StartSummary {
  /** Records loaded into the stores. */
  records: number;
  /** Dead records deleted while loading. */
  purged: number;
  ms: number;
  /** Groups whose load stopped at their byte budget (the rest is read through from disk). */
  truncated: string[];
  highWatermark: Version;
}

export class NodeStorage {
  readonly path: string;
  readonly storage: LevelStorage;
  readonly persister: Persister;

  private readonly groups: ReadonlyMap<string, Group>;
  private readonly hlc: HybridClock | undefined;
  private readonly logger: Logger | undefined;
  private state: 'new' | 'started' | 'stopped' = 'new';

  constructor(opts: NodeStorageOptions) {
    this.path = resolve(opts.path.replaceAll('{id}', opts.nodeId));
    this.groups = opts.groups;
    this.hlc = opts.hlc;
    this.logger = opts.logger;
    const tombstoneTtlMs = opts.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS;
    this.storage = new LevelStorage({
      path: this.path,
      partitionOf: opts.partitionOf,
      partitionCount: opts.partitionCount,
      tombstoneTtlMs,
      ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
      ...(opts.sync !== undefined ? { sync: opts.sync } : {}),
      ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    });
    this.persister = new Persister({
      storage: this.storage,
      tombstoneTtlMs,
      ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
      ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    });
  }

  /** Open, attach, load, observe the watermark, start the sweep (see the file comment). */
  async start(): Promise<StartSummary> {
    if (this.state !== 'new') throw new Error(`NodeStorage ${this.path} already ${this.state}`);
    this.state = 'started';
    await this.storage.open();
    try {
      for (const [name, g] of this.groups) this.persister.attach(name, g.store);
      const r = await this.persister.load();
      const highWatermark = this.storage.highWatermark();
      this.hlc?.observe(highWatermark);
      this.persister.start();
      const truncated = Object.entries(r.perGroup).filter(([, s]) => s.truncated).map(([g]) => g);
      this.logger?.info({ path: this.path, records: r.records, purged: r.purged, ms: Math.round(r.ms), truncated, highWatermark }, 'warm start from disk');
      return { records: r.records, purged: r.purged, ms: r.ms, truncated, highWatermark };
    } catch (e) {
      await this.persister.stop().catch(() => {});
      await this.storage.close().catch(() => {});
      this.state = 'stopped';
      throw e;
    }
  }

  /** Write what is buffered and close. Idempotent. */
  async stop(): Promise<void> {
    if (this.state !== 'started') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    try {
      await this.persister.stop();
    } finally {
      await this.storage.close();
    }
  }

  /** On a miss: the entry from memory or, when it was evicted, from disk (see Persister.readThrough). */
  readThrough(group: string, key: string): Promise<StoredEntry | undefined> {
    return this.persister.readThrough(group, key);
  }

  /** Resolves when every write applied so far is on disk (a migration target awaits it before confirming). */
  flush(): Promise<void> {
    return this.persister.flush();
  }

  /**
   * Every record of a partition of a group on disk (buffered writes flushed first), evicted ones
   * included: what a migration source or a catch-up answer sends from a leveldb node, where
   * GroupStore.partitionEntries only sees memory. `minVersion`: only newer records.
   */
  async *partitionRecords(group: string, partition: number, opts: { minVersion?: Version } = {}): AsyncGenerator<StorageRecord> {
    await this.persister.flush();
    yield* this.storage.partitionRecords(group, partition, opts);
  }

  /** Version above which peers should send this partition's records after a restart (0: all). */
  catchUpFrom(group: string, partition: number): Version {
    return this.persister.catchUpFrom(group, partition);
  }

  stats(): PersisterStats & { path: string; highWatermark: Version } {
    return { path: this.path, highWatermark: this.storage.highWatermark(), ...this.persister.stats() };
  }
}
