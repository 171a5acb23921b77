// LevelDB persistence, in-process (issue 5 item 5): how fast 100-byte records reach LevelDB and
// come back on a restart. The target for a LevelDB migration is >= 150k keys/s, so the
// two write paths a migration batch can take are held to it:
//   - storage.leveldb.write: LevelStorage.writeBatch in batches of 1000 (the raw batch API);
//   - storage.persist.write: GroupStore.apply with the Persister hook, group commit, until
//     flushed (what a migration batch applied on a leveldb node costs end to end).
//     Its peer is the same apply loop on a memory-only store, so the ratio is the price of
//     persistence.
//   - storage.leveldb.load: a restart's recovery, the disk streamed back into a GroupStore.
// Each figure is the median of several rounds on fresh databases in a temp dir (removed after).
// Nothing here starts a process or opens a socket.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Figure, figure, median } from '../lib/figure.ts';
import type { ScenarioOptions } from '../lib/scenario.ts';
import { GroupStore } from '../../src/cache/store.ts';
import { partitionOf as hashPartition } from '../../src/core/placement/hash.ts';
import { LevelStorage, type PersistRecord } from '../../src/storage/leveldb.ts';
import { Persister } from '../../src/storage/persist.ts';

export type { Figure };

/** Issue 5: migration throughput with LevelDB. */
const WRITE_TARGET = 150_000;
const VALUE_BYTES = 100;
const BATCH = 1000;
const PARTITIONS = 4096;

interface Mode {
  keys: number;
  rounds: number;
}
const QUICK: Mode = { keys: 100_000, rounds: 2 };
const FULL: Mode = { keys: 300_000, rounds: 5 };

const partitionOf = (key: string): number => hashPartition(key, PARTITIONS);
const clock = { now: () => Date.now() };

export async function run(opts: ScenarioOptions): Promise<Figure[]> {
  const mode = opts.quick ? QUICK : FULL;
  const log = opts.log ?? (() => {});
  const root = mkdtempSync(join(tmpdir(), 'jincache-bench-storage-'));
  let dbs = 0;
  const fresh = async (): Promise<LevelStorage> => {
    const s = new LevelStorage({ path: join(root, `db${dbs++}`), partitionOf, clock });
    await s.open();
    return s;
  };
  // keys and values made up front: the timings measure storage, not string building
  const keys = Array.from({ length: mode.keys }, (_, i) => `user:${i}:profile`);
  const value = Buffer.alloc(VALUE_BYTES, 0x61);
  const budget = mode.keys * (VALUE_BYTES + 200) * 2; // everything fits: no eviction in these runs

  const raw: number[] = [];
  const persisted: number[] = [];
  const memory: number[] = [];
  const load: number[] = [];
  try {
    for (let round = 0; round < mode.rounds; round++) {
      opts.signal?.throwIfAborted();
      // 1) the raw batch API
      {
        const s = await fresh();
        const t0 = performance.now();
        for (let i = 0; i < keys.length; i += BATCH) {
          const batch: PersistRecord[] = [];
          for (let j = i; j < Math.min(i + BATCH, keys.length); j++) batch.push({ group: 'bench', key: keys[j]!, value, version: j + 1, expiresAt: 0 });
          await s.writeBatch(batch);
        }
        raw.push(keys.length / ((performance.now() - t0) / 1000));
        await s.close();
      }
      opts.signal?.throwIfAborted();
      // 2) store + hook + group commit, as a migration batch applies on a leveldb node
      let loadDb: LevelStorage;
      {
        const s = await fresh();
        const store = new GroupStore({ name: 'bench', maxBytes: budget, clock, partitionOf });
        const p = new Persister({ storage: s, clock });
        p.attach('bench', store);
        const t0 = performance.now();
        for (let i = 0; i < keys.length; i += BATCH) {
          for (let j = i; j < Math.min(i + BATCH, keys.length); j++) store.apply(keys[j]!, { value, version: j + 1, expiresAt: 0 });
          await p.flush(); // a migration target confirms a batch once it is on disk
        }
        persisted.push(keys.length / ((performance.now() - t0) / 1000));
        await p.stop();
        loadDb = s;
      }
      // peer of 2): the same applies on a memory-only store
      {
        const store = new GroupStore({ name: 'bench', maxBytes: budget, clock, partitionOf });
        const t0 = performance.now();
        for (let j = 0; j < keys.length; j++) store.apply(keys[j]!, { value, version: j + 1, expiresAt: 0 });
        memory.push(keys.length / ((performance.now() - t0) / 1000));
      }
      opts.signal?.throwIfAborted();
      // 3) recovery: reopen the database of 2) and load it into an empty store
      {
        await loadDb.close();
        const s = new LevelStorage({ path: loadDb.path, partitionOf, clock });
        await s.open();
        const store = new GroupStore({ name: 'bench', maxBytes: budget, clock, partitionOf });
        const p = new Persister({ storage: s, clock });
        p.attach('bench', store);
        const t0 = performance.now();
        const r = await p.load();
        const secs = (performance.now() - t0) / 1000;
        if (r.records !== keys.length || store.stats().entries !== keys.length) {
          throw new Error(`load returned ${r.records} records, store holds ${store.stats().entries}; expected ${keys.length}`);
        }
        load.push(keys.length / secs);
        await p.stop();
        await s.close();
      }
      log(`storage round ${round + 1}/${mode.rounds}: raw ${fmt(raw.at(-1)!)}, persisted ${fmt(persisted.at(-1)!)}, memory ${fmt(memory.at(-1)!)}, load ${fmt(load.at(-1)!)} keys/s`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return [
    figure({ name: 'storage.leveldb.write.keys_s', unit: 'keys/s', ours: median(raw), target: { kind: 'value>=', value: WRITE_TARGET } }),
    figure({
      name: 'storage.persist.write.keys_s',
      unit: 'keys/s',
      ours: median(persisted),
      peer: median(memory),
      target: { kind: 'value>=', value: WRITE_TARGET },
    }),
    figure({ name: 'storage.leveldb.load.keys_s', unit: 'keys/s', ours: median(load) }),
  ];
}

const fmt = (x: number): string => `${Math.round(x / 1000)}k`;

// `node bench/scenarios/storage.ts [--quick]` runs it alone and prints the figures
if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await run({ quick: process.argv.includes('--quick'), log: console.log });
  console.table(figures);
}
