// Micro-benchmark of the per-group store's hot path (GroupStore in src/cache/store.ts), in one
// process, no network: what get / apply cost per call with a million keys, so a change to the
// store's layout can be judged before and after on the same machine in the same minute.
//
//   node bench/store-micro.ts [--keys N] [--value BYTES] [--rounds R]
//
// Keys are `bench:00000000`.. (14 bytes, as in the memory scenario). Every call gets a fresh key
// string cut from one buffer of all the keys (toString('latin1', ..)), the way a protocol front end hands a
// key over: a string built once and reused would have its hash cached by V8, which no server sees.
// Phases, each over all keys in a shuffled order:
//   insert     apply() of a new key (100-byte value)
//   overwrite  apply() of a newer version of a held key, same size (written in place)
//   resize     apply() of a newer version 20 bytes longer, then back (a new record each: the
//              arena compacts the segments the old records die in)
//   get        get() of a held key (a hit: the value copied out, recency updated)
//   getBytes   getBytes() straight from the key buffer (when the store has it)
//   miss       get() of an absent key
//   delete     apply() of a tombstone over a held value
// Each phase is run R times (default 3) on a fresh store for insert, and the best round is kept:
// on a shared 2-core machine the best of a few is the least disturbed one. Times are CPU times of
// this process (see time()).

import { parseArgs } from 'node:util';
import { GroupStore } from '../src/cache/store.ts';

const { values: cli } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    value: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
  },
});
const N = Number(cli.keys);
const VALUE_BYTES = Number(cli.value);
const ROUNDS = Number(cli.rounds);
const KEY_BYTES = 14;

const keyBuf = Buffer.alloc(N * KEY_BYTES);
for (let i = 0; i < N; i++) keyBuf.write(`bench:${String(i).padStart(8, '0')}`, i * KEY_BYTES, 'latin1');
const missBuf = Buffer.from(keyBuf);
for (let i = 0; i < N; i++) missBuf[i * KEY_BYTES] = 0x6d; // 'mench:..': never stored

// one shuffled order shared by every phase (xorshift, fixed seed: the same order every run)
const order = new Uint32Array(N);
for (let i = 0; i < N; i++) order[i] = i;
let seed = 0x9e3779b9;
for (let i = N - 1; i > 0; i--) {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  const j = (seed >>> 0) % (i + 1);
  const t = order[i]!;
  order[i] = order[j]!;
  order[j] = t;
}

const value = Buffer.alloc(VALUE_BYTES, 0x61);
const longerValue = Buffer.alloc(VALUE_BYTES + 20, 0x62);
const clock = { now: () => 1_000_000 };
const partitionOf = (key: string): number => key.charCodeAt(KEY_BYTES - 1) & 63;

function key(buf: Buffer, i: number): string {
  return buf.toString('latin1', i * KEY_BYTES, (i + 1) * KEY_BYTES);
}

function fresh(): GroupStore {
  return new GroupStore({ name: 'bench', maxBytes: 64 * 1024 * 1024 * 1024, clock, partitionOf });
}

/**
 * Ops per second of CPU time (user + system of this process), not of wall time: on a machine
 * shared with other work, wall time counts the time spent waiting for a core.
 */
function time(fn: () => number): { mops: number; check: number } {
  const t0 = process.cpuUsage();
  const check = fn();
  const t = process.cpuUsage(t0);
  const ns = (t.user + t.system) * 1000;
  return { mops: (N / ns) * 1000, check };
}

const best = new Map<string, number>();
function record(name: string, mops: number): void {
  best.set(name, Math.max(best.get(name) ?? 0, mops));
}

type BytesLookup = (buf: Uint8Array, start: number, end: number) => unknown;

/** apply() of `value` (null: a tombstone) at `version` to every key in the shuffled order; the writes that won. */
function applyAll(store: GroupStore, value: Buffer | null, version: number): number {
  let ok = 0;
  for (let n = 0; n < N; n++) if (store.apply(key(keyBuf, order[n]!), { value, version, expiresAt: 0 })) ok++;
  return ok;
}

for (let round = 0; round < ROUNDS; round++) {
  const store = fresh();
  let version = 1;
  record('insert', time(() => applyAll(store, value, version)).mops);
  version++;
  record('overwrite', time(() => applyAll(store, value, version)).mops);
  // another length each time: a new record per write, and the old ones' segments compacted
  for (const longer of [longerValue, value]) {
    version++;
    record('resize', time(() => applyAll(store, longer, version)).mops);
  }
  record('get', time(() => {
    let bytes = 0;
    for (let n = 0; n < N; n++) bytes += store.get(key(keyBuf, order[n]!))?.value?.length ?? 0;
    return bytes;
  }).mops);
  const getBytes = (store as unknown as { getBytes?: BytesLookup }).getBytes;
  if (typeof getBytes === 'function') {
    const lookup = getBytes.bind(store);
    record('getBytes', time(() => {
      let hits = 0;
      for (let n = 0; n < N; n++) if (lookup(keyBuf, order[n]! * KEY_BYTES, (order[n]! + 1) * KEY_BYTES) !== undefined) hits++;
      return hits;
    }).mops);
  }
  record('miss', time(() => {
    let hits = 0;
    for (let n = 0; n < N; n++) if (store.get(key(missBuf, order[n]!)) !== undefined) hits++;
    return hits;
  }).mops);
  version++;
  record('delete', time(() => applyAll(store, null, version)).mops);
}

console.log(`GroupStore micro-benchmark: ${N} keys of ${KEY_BYTES} bytes, ${VALUE_BYTES}-byte values, best of ${ROUNDS} rounds, per CPU second (node ${process.version})`);
for (const [name, mops] of best) console.log(`  ${name.padEnd(10)} ${mops.toFixed(2).padStart(6)} M ops/s  (${(1000 / mops).toFixed(0)} ns/op)`);
