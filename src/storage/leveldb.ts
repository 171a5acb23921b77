/**
 * LevelStorage: a node's entries on disk, in LevelDB through classic-level (an LSM tree with its
 * own write-ahead log). It stores what GroupStore holds, key by key, last write wins already
 * settled by the store: this layer never compares versions on write, it records.
 *
 * Durability: every write is one LevelDB batch, atomic, appended to LevelDB's log before the
 * promise resolves. Without `sync` the log append is a write(2) into the OS page cache: it
 * survives the process being killed (SIGKILL, a crash) but not a power loss or kernel crash.
 * `sync: true` makes each batch fsync (slower by the device's flush latency).
 *
 * Watermarks: LevelDB orders by key, not by version, so "everything changed since version V"
 * cannot be read without a full scan. Instead the storage keeps, per (group, partition), the
 * largest version written, and persists the changed ones inside a data batch at most every
 * `watermarkIntervalMs` (and at close). Writing them with every batch would double the writes
 * (a batch of 1000 random keys touches ~900 of 4096 partitions). A watermark on disk therefore
 * never claims more than the disk holds (it is written with or after its data) but may lag by
 * up to that interval after a crash: the catch-up then re-fetches a little more, harmless under
 * last-writer-wins. A restarted node asks its peers for what they hold above its watermark of
 * each partition (see watermark()).
 */
import { mkdir } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { createRequire } from 'node:module';
import type { ClassicLevel } from 'classic-level';

/** classic-level (LevelDB's native addon), loaded when a store is opened: memory-only nodes never do. */
const classicLevel = (): typeof import('classic-level') => createRequire(import.meta.url)('classic-level') as typeof import('classic-level');
import { systemClock, type Clock, type Version } from '../core/types.ts';
import type { Logger } from '../observe/logger.ts';
import { DEFAULT_TOMBSTONE_TTL_MS } from '../cache/store.ts';
import { StorageError, isStorageError } from './errors.ts';
import {
  ALL_DATA,
  ALL_WATERMARKS,
  dataKey,
  decodeRecord,
  decodeVersion,
  encodeRecord,
  encodeVersion,
  groupRange,
  groupWatermarkRange,
  isDead,
  metaKey,
  parseDataKey,
  parseWatermarkKey,
  partitionRange,
  watermarkKey,
  type StorageRecord,
} from './record.ts';

/** On-disk format written by this code; another value on disk refuses to open. */
export const STORAGE_FORMAT = '1';

/**
 * How records are spread over partitions: by Redis Cluster hash slot (core/placement/hash.ts).
 * Recorded in the database (meta 'placement') at its first open.
 */
export const PLACEMENT_SCHEME = 'redis-slots';
/** What a database without the marker was placed by: jincache before hash slots. */
export const LEGACY_PLACEMENT = 'murmur3';

/** Records read per iterator step while loading: bounds memory, and yields between steps. */
export const LOAD_CHUNK = 1000;

/** A write to persist. `partition` may be left out when the storage has a partitionOf. */
export type PersistRecord = Omit<StorageRecord, 'partition'> & { partition?: number };

/** What load()'s callback may answer: 'skip-group' jumps past the rest of this record's group. */
export type LoadAnswer = void | 'skip-group';

export interface LoadResult {
  /** Records handed to the callback. */
  records: number;
  /** Dead records (isDead) found and deleted instead of handed out. */
  purged: number;
  /** Records moved to their new partition because the partition count changed. */
  rekeyed: number;
  ms: number;
}

export interface LevelStorageOptions {
  /** Directory of the database; created (with its parents) if missing. Required. */
  path: string;
  /**
   * Partition of a key, for records written without one and for get(). Default: none, and then
   * every record must carry its partition and get() must be given it.
   */
  partitionOf?: (key: string) => number;
  /**
   * Partition count in force. When it differs from the one the database was written with, the
   * watermarks are discarded at open (catch up everything) and load() moves each record to its
   * new partition. Default: not checked.
   */
  partitionCount?: number;
  /** "Now", to find dead records while loading. Default systemClock. */
  clock?: Clock;
  /** The stores' tombstone TTL: values expired this long ago are dead. Default 10 minutes. */
  tombstoneTtlMs?: number;
  /** fsync every batch (survives power loss, slower). Default false: survives process crashes. */
  sync?: boolean;
  /**
   * LevelDB's memtable size in bytes: larger absorbs more batch writes before a flush to a level-0
   * table. Default 16 MiB (LevelDB's own default is 4 MiB; migration writes in bursts).
   */
  writeBufferSize?: number;
  /** Most time between persisting changed watermarks, in ms (see the file comment). Default 1000. */
  watermarkIntervalMs?: number;
  /** Default: silent. */
  logger?: Logger;
}

type State = 'new' | 'opening' | 'open' | 'closed';
type Db = ClassicLevel<Buffer, Buffer>;

export class LevelStorage {
  readonly path: string;

  private readonly db: Db;
  private readonly partitionOf: ((key: string) => number) | undefined;
  private readonly partitionCount: number | undefined;
  private readonly clock: Clock;
  private readonly tombstoneTtlMs: number;
  private readonly sync: boolean;
  private readonly logger: Logger | undefined;
  private state: State = 'new';
  // group -> partition -> largest version persisted; mirrors the 'w' keys
  private readonly marks = new Map<string, Map<number, Version>>();
  private high: Version = 0;
  // watermarks changed in memory since last persisted: group -> partitions
  private dirtyMarks = new Map<string, Set<number>>();
  private marksWrittenAt = 0;
  private readonly watermarkIntervalMs: number;
  // set at open when the partition count or the placement scheme changed: load() re-keys records
  private rekey = false;
  // the metas load() writes once every record is re-keyed
  private rekeyDone: Array<{ type: 'put'; key: Buffer; value: Buffer }> = [];

  constructor(opts: LevelStorageOptions) {
    if (typeof opts.path !== 'string' || opts.path === '') {
      throw new TypeError(`LevelStorage path must be a non-empty string. Got: ${JSON.stringify(opts.path)}`);
    }
    const ttl = opts.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS;
    if (!Number.isSafeInteger(ttl) || ttl < 0) throw new RangeError(`LevelStorage tombstoneTtlMs must be an integer >= 0. Got: ${ttl}`);
    this.path = opts.path;
    this.partitionOf = opts.partitionOf;
    this.partitionCount = opts.partitionCount;
    this.clock = opts.clock ?? systemClock;
    this.tombstoneTtlMs = ttl;
    this.sync = opts.sync ?? false;
    this.logger = opts.logger;
    this.watermarkIntervalMs = opts.watermarkIntervalMs ?? 1000;
    this.db = new (classicLevel().ClassicLevel)<Buffer, Buffer>(opts.path, {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      writeBufferSize: opts.writeBufferSize ?? 16 * 1024 * 1024,
    });
  }

  /** Open (or create) the database, check its format and read the watermarks. */
  async open(): Promise<void> {
    if (this.state !== 'new') throw new StorageError('STORAGE_CLOSED', `LevelStorage ${this.path} cannot be opened twice`);
    this.state = 'opening';
    try {
      await mkdir(this.path, { recursive: true });
      await this.db.open();
    } catch (e) {
      this.state = 'closed';
      throw new StorageError('STORAGE_IO', `cannot open LevelDB at ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const format = await this.db.get(metaKey('format'));
      if (format !== undefined && format.toString() !== STORAGE_FORMAT) {
        throw new StorageError('STORAGE_FORMAT', `${this.path} holds format ${format.toString()}; this build reads format ${STORAGE_FORMAT}`);
      }
      const ops: Array<{ type: 'put'; key: Buffer; value: Buffer }> = [];
      if (format === undefined) ops.push({ type: 'put', key: metaKey('format'), value: Buffer.from(STORAGE_FORMAT) });
      // Metas describing where records sit: written at once for a database that already agrees,
      // but only once load() has moved every record otherwise (see rekeyDone).
      const placementOps: Array<{ type: 'put'; key: Buffer; value: Buffer }> = [];
      const stored = await this.db.get(metaKey('placement'));
      const placement = stored?.toString() ?? ((format === undefined && !(await this.hasData())) ? PLACEMENT_SCHEME : LEGACY_PLACEMENT);
      if (placement !== PLACEMENT_SCHEME) {
        if (placement !== LEGACY_PLACEMENT || this.partitionOf === undefined) {
          throw new StorageError(
            'STORAGE_PLACEMENT',
            `data in ${this.path} was placed by "${placement}", which this jincache cannot migrate (it places keys by ${PLACEMENT_SCHEME}); start with an empty storage.path or run the jincache that wrote it`,
          );
        }
        // An older jincache: partitions were murmur3(key) mod count. Every record moves.
        this.rekey = true;
        this.logger?.warn({ path: this.path, was: placement, now: PLACEMENT_SCHEME }, 'data written by an older jincache (murmur3 partitions): every record is re-partitioned by hash slot while loading');
      }
      if (stored === undefined || placement !== PLACEMENT_SCHEME) placementOps.push({ type: 'put', key: metaKey('placement'), value: Buffer.from(PLACEMENT_SCHEME) });
      if (this.partitionCount !== undefined) {
        const count = await this.db.get(metaKey('partitions'));
        if (count !== undefined && Number(count.toString()) !== this.partitionCount) {
          // every record may sit under the wrong partition now: what we know per partition is void
          this.rekey = true;
          this.logger?.warn({ path: this.path, was: Number(count.toString()), now: this.partitionCount }, 'partition count changed: watermarks discarded, records re-keyed on load');
        }
        if (count === undefined || this.rekey) placementOps.push({ type: 'put', key: metaKey('partitions'), value: Buffer.from(String(this.partitionCount)) });
      }
      if (this.rekey) {
        // Watermarks are rebuilt from the records as they move. The metas saying where records
        // sit are written only after the last one moved: a crash halfway leaves the old metas,
        // and the next start re-keys again (records already moved stay where they are).
        await this.db.clear(ALL_WATERMARKS);
        this.rekeyDone = placementOps;
      } else {
        ops.push(...placementOps);
      }
      if (ops.length > 0) await this.db.batch(ops, { sync: this.sync });
      for await (const [k, v] of this.db.iterator(ALL_WATERMARKS)) {
        const { group, partition } = parseWatermarkKey(k);
        this.noteMark(group, partition, decodeVersion(v));
      }
    } catch (e) {
      await this.db.close().catch(() => {});
      this.state = 'closed';
      throw isStorageError(e) ? e : new StorageError('STORAGE_IO', `cannot read ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    this.state = 'open';
  }

  /** Close the database. Pending writes complete first (classic-level waits for them). Idempotent. */
  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'new') {
      this.state = 'closed';
      return;
    }
    try {
      if (this.dirtyMarks.size > 0) {
        const batch = this.db.batch();
        this.putDirtyMarks(batch);
        await batch.write({ sync: this.sync });
      }
    } finally {
      this.state = 'closed';
      await this.db.close();
    }
  }

  isOpen(): boolean {
    return this.state === 'open';
  }

  /**
   * Persist records (values and tombstones) in one atomic LevelDB batch, with the watermarks
   * they raise. Records of the same key later in the list overwrite earlier ones.
   */
  async writeBatch(records: readonly PersistRecord[]): Promise<void> {
    this.requireOpen();
    if (records.length === 0) return;
    const batch = this.db.batch();
    // raised watermarks of this batch: group -> partition -> version
    const raised = new Map<string, Map<number, Version>>();
    // records come grouped by group in practice: look the group's maps up once per run
    let group: string | undefined;
    let known: ReadonlyMap<number, Version> | undefined;
    let up: Map<number, Version> = new Map();
    for (const r of records) {
      const partition = r.partition ?? this.partitionFor(r.key);
      batch.put(dataKey(r.group, partition, r.key), encodeRecord(r));
      if (r.group !== group) {
        group = r.group;
        known = this.marks.get(group);
        let m = raised.get(group);
        if (m === undefined) raised.set(group, (m = new Map()));
        up = m;
      }
      if (r.version > (known?.get(partition) ?? 0) && r.version > (up.get(partition) ?? 0)) up.set(partition, r.version);
    }
    // due: persist every changed watermark, this batch's included (they commit with its data)
    const now = this.clock.now();
    const withMarks = now - this.marksWrittenAt >= this.watermarkIntervalMs;
    if (withMarks) {
      for (const [group, m] of raised) for (const [p, v] of m) batch.put(watermarkKey(group, p), encodeVersion(Math.max(v, this.watermark(group, p))));
      this.putDirtyMarks(batch, raised);
    }
    try {
      await batch.write({ sync: this.sync });
    } catch (e) {
      throw new StorageError('STORAGE_IO', `writing ${records.length} records to ${this.path} failed: ${(e as Error).message}`, { cause: e });
    }
    // only once on disk: a watermark must never claim more than the disk holds
    for (const [group, m] of raised) {
      for (const [p, v] of m) {
        this.noteMark(group, p, v);
        if (!withMarks) this.markDirty(group, p);
      }
    }
    if (withMarks) this.marksWrittenAt = now;
  }

  /** The persisted record of a key (value or tombstone), dead or not; undefined when none. */
  async get(group: string, key: string, partition?: number): Promise<StorageRecord | undefined> {
    this.requireOpen();
    const p = partition ?? this.partitionFor(key);
    let raw: Buffer | undefined;
    try {
      raw = await this.db.get(dataKey(group, p, key));
    } catch (e) {
      throw new StorageError('STORAGE_IO', `reading ${group}/${key} from ${this.path} failed: ${(e as Error).message}`, { cause: e });
    }
    return raw === undefined ? undefined : { group, key, partition: p, ...decodeRecord(raw) };
  }

  /** Records of several keys of one group at once (one native call), in the order asked. */
  async getMany(group: string, items: ReadonlyArray<{ key: string; partition: number }>): Promise<Array<StorageRecord | undefined>> {
    this.requireOpen();
    if (items.length === 0) return [];
    let raws: Array<Buffer | undefined>;
    try {
      raws = await this.db.getMany(items.map((i) => dataKey(group, i.partition, i.key)));
    } catch (e) {
      throw new StorageError('STORAGE_IO', `reading ${items.length} keys from ${this.path} failed: ${(e as Error).message}`, { cause: e });
    }
    return raws.map((raw, i) => (raw === undefined ? undefined : { group, key: items[i]!.key, partition: items[i]!.partition, ...decodeRecord(raw) }));
  }

  /**
   * Delete the given tombstones if disk still holds each at that version (a newer write of the
   * key is kept). For forgetting tombstones after their TTL. Returns how many were deleted.
   * The caller must not write these keys concurrently (the write buffer serializes this).
   */
  async forgetTombstones(group: string, items: ReadonlyArray<{ key: string; partition: number; version: Version }>): Promise<number> {
    const found = await this.getMany(group, items);
    const batch = this.db.batch();
    let n = 0;
    found.forEach((r, i) => {
      const it = items[i]!;
      if (r !== undefined && r.value === null && r.version === it.version) {
        batch.del(dataKey(group, it.partition, it.key));
        n++;
      }
    });
    if (n === 0) {
      await batch.close();
      return 0;
    }
    await batch.write({ sync: this.sync });
    return n;
  }

  /**
   * Every persisted record of one partition of a group (values and tombstones, dead ones
   * skipped), in key order, LOAD_CHUNK at a time: the disk side of GroupStore.partitionEntries,
   * which only sees memory. A migration source or a catch-up answer on a leveldb node reads
   * this (after Persister.flush(), so buffered writes are included) to send entries the LRU
   * evicted. `minVersion`: only records with a greater version (a catch-up from a watermark).
   */
  async *partitionRecords(group: string, partition: number, opts: { minVersion?: Version } = {}): AsyncGenerator<StorageRecord> {
    this.requireOpen();
    const min = opts.minVersion ?? -1;
    const now = this.clock.now();
    const it = this.db.iterator(partitionRange(group, partition));
    try {
      for (;;) {
        const chunk = await it.nextv(LOAD_CHUNK);
        if (chunk.length === 0) return;
        for (const [k, v] of chunk) {
          const rec = decodeRecord(v);
          if (rec.version <= min || isDead(rec, now, this.tombstoneTtlMs)) continue;
          yield { group, key: parseDataKey(k).key, partition, ...rec };
        }
      }
    } finally {
      await it.close();
    }
  }

  /**
   * Remove every record of a partition of a group (it moved away), and its watermark. The
   * watermark goes first: a crash in between leaves records without a watermark, which only
   * means a fuller catch-up, never a missed one.
   */
  async dropPartition(group: string, partition: number): Promise<void> {
    this.requireOpen();
    try {
      await this.db.del(watermarkKey(group, partition), { sync: this.sync });
      this.marks.get(group)?.delete(partition);
      this.dirtyMarks.get(group)?.delete(partition);
      await this.db.clear(partitionRange(group, partition));
    } catch (e) {
      throw new StorageError('STORAGE_IO', `dropping partition ${partition} of ${group} failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * FLUSHALL of a group: its flush floor goes to the meta records first, then its records and
   * watermarks are removed. A crash in between leaves records the floor refuses at the next
   * load (Persister.load applies the floor before them), so nothing flushed comes back.
   */
  async flushGroup(group: string, floor: Version): Promise<void> {
    this.requireOpen();
    try {
      const floors = await this.floors();
      floors.set(group, Math.max(floor, floors.get(group) ?? -Infinity));
      await this.db.put(metaKey('floors'), Buffer.from(JSON.stringify(Object.fromEntries(floors))), { sync: true });
      await this.db.clear(groupWatermarkRange(group));
      this.marks.get(group)?.clear();
      this.dirtyMarks.get(group)?.clear();
      await this.db.clear(groupRange(group));
    } catch (e) {
      throw new StorageError('STORAGE_IO', `flushing group ${group} failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The flush floor of every group flushed so far (meta 'floors'). */
  async floors(): Promise<Map<string, Version>> {
    this.requireOpen();
    const raw = await this.db.get(metaKey('floors'));
    if (raw === undefined) return new Map();
    try {
      const parsed = JSON.parse(Buffer.from(raw).toString('utf8')) as Record<string, number>;
      return new Map(Object.entries(parsed).filter(([, v]) => Number.isFinite(v)));
    } catch {
      throw new StorageError('STORAGE_CORRUPT', 'meta record "floors" is not JSON');
    }
  }

  /**
   * Stream every live record to `onRecord`, in key order (group, partition, key), LOAD_CHUNK at
   * a time: memory stays bounded whatever the database size, and the event loop gets a turn
   * between chunks. Dead records (see isDead) are deleted instead of handed out. The callback may
   * answer 'skip-group' to jump past the rest of the current group (e.g. its store is full).
   * Records written concurrently may or may not be seen (the iterator reads a snapshot).
   */
  async load(onRecord: (r: StorageRecord) => LoadAnswer): Promise<LoadResult> {
    this.requireOpen();
    const t0 = performance.now();
    const now = this.clock.now();
    let records = 0;
    let purged = 0;
    let rekeyed = 0;
    // while re-keying, a group the callback skipped is still read through (to move its records)
    let skipped: string | undefined;
    const it = this.db.iterator(ALL_DATA);
    // deletions of dead records and re-keyed moves, written a chunk at a time
    let fixes = this.db.batch();
    try {
      for (;;) {
        const chunk = await it.nextv(LOAD_CHUNK);
        if (chunk.length === 0) break;
        let skipTo: Buffer | undefined;
        for (const [k, v] of chunk) {
          const { group, partition, key } = parseDataKey(k);
          if (skipTo !== undefined && Buffer.compare(k, skipTo) < 0) continue;
          if (skipped === group) {
            // Re-keying must still move this group's records; only the callback is spared them.
            const rec = decodeRecord(v);
            if (this.partitionOf !== undefined && !isDead(rec, now, this.tombstoneTtlMs)) {
              const p = this.partitionOf(key);
              if (p !== partition) {
                fixes.del(k);
                fixes.put(dataKey(group, p, key), v);
                rekeyed++;
              }
              this.noteMarkInBatch(fixes, group, p, rec.version);
            }
            continue;
          }
          const rec = decodeRecord(v);
          if (isDead(rec, now, this.tombstoneTtlMs)) {
            fixes.del(k);
            purged++;
            continue;
          }
          let p = partition;
          if (this.rekey && this.partitionOf !== undefined && this.partitionOf(key) !== partition) {
            p = this.partitionOf(key);
            fixes.del(k);
            fixes.put(dataKey(group, p, key), v);
            rekeyed++;
          }
          if (this.rekey) this.noteMarkInBatch(fixes, group, p, rec.version);
          records++;
          if (onRecord({ group, key, partition: p, ...rec }) === 'skip-group') {
            if (this.rekey) skipped = group;
            else skipTo = groupRange(group).lt;
          }
        }
        if (fixes.length >= LOAD_CHUNK) {
          await fixes.write({ sync: this.sync });
          fixes = this.db.batch();
        }
        if (skipTo !== undefined) it.seek(skipTo);
        await yieldToLoop();
      }
      // Every record sits where it belongs now: say so, with the last moves.
      if (this.rekey) for (const op of this.rekeyDone) fixes.put(op.key, op.value);
      if (fixes.length > 0) await fixes.write({ sync: this.sync });
      else await fixes.close();
    } catch (e) {
      await fixes.close().catch(() => {});
      throw isStorageError(e) ? e : new StorageError('STORAGE_IO', `loading ${this.path} failed: ${(e as Error).message}`, { cause: e });
    } finally {
      await it.close();
    }
    this.rekey = false;
    this.rekeyDone = [];
    const ms = performance.now() - t0;
    this.logger?.info({ path: this.path, records, purged, rekeyed, ms: Math.round(ms) }, 'loaded records from disk');
    return { records, purged, rekeyed, ms };
  }

  /**
   * Largest version persisted for a partition of a group (0: nothing). Everything this node
   * acknowledged up to the flush before a crash is on disk, so what it lacks after a restart
   * is what its peers hold above this, minus clock skew between writers (see persist.ts).
   */
  watermark(group: string, partition: number): Version {
    return this.marks.get(group)?.get(partition) ?? 0;
  }

  /** Watermarks of a group, partition -> version (partitions with nothing persisted are absent). */
  watermarks(group: string): ReadonlyMap<number, Version> {
    return this.marks.get(group) ?? new Map();
  }

  /** The largest version persisted in any group or partition (0: empty). */
  highWatermark(): Version {
    return this.high;
  }

  private markDirty(group: string, partition: number): void {
    let set = this.dirtyMarks.get(group);
    if (set === undefined) this.dirtyMarks.set(group, (set = new Set()));
    set.add(partition);
  }

  /** Put the dirty watermarks (except those in `skip`, already put) into a batch; they are clean after. */
  private putDirtyMarks(batch: ReturnType<Db['batch']>, skip?: ReadonlyMap<string, ReadonlyMap<number, Version>>): void {
    for (const [group, set] of this.dirtyMarks) {
      for (const p of set) if (!skip?.get(group)?.has(p)) batch.put(watermarkKey(group, p), encodeVersion(this.watermark(group, p)));
    }
    this.dirtyMarks = new Map();
  }

  private noteMark(group: string, partition: number, v: Version): void {
    let m = this.marks.get(group);
    if (m === undefined) this.marks.set(group, (m = new Map()));
    if (v > (m.get(partition) ?? 0)) m.set(partition, v);
    if (v > this.high) this.high = v;
  }

  // while re-keying, watermarks are rebuilt from the records as they are read
  private noteMarkInBatch(batch: ReturnType<Db['batch']>, group: string, partition: number, v: Version): void {
    if (v <= this.watermark(group, partition)) return;
    this.noteMark(group, partition, v);
    batch.put(watermarkKey(group, partition), encodeVersion(v));
  }

  /** True when the database holds at least one record. */
  private async hasData(): Promise<boolean> {
    for await (const _ of this.db.keys({ ...ALL_DATA, limit: 1 })) return true;
    return false;
  }

  private partitionFor(key: string): number {
    if (this.partitionOf === undefined) throw new TypeError(`LevelStorage ${this.path}: a record without a partition needs the partitionOf option`);
    return this.partitionOf(key);
  }

  private requireOpen(): void {
    if (this.state !== 'open') throw new StorageError('STORAGE_CLOSED', `LevelStorage ${this.path} is ${this.state === 'closed' ? 'closed' : 'not open'}`);
  }
}
