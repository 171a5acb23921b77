// Micro-benchmark of the command engine's hot commands (src/cache/engine): INCR on a counter,
// HSET of an existing field and HGET on a 10-field hash, SET and GET of a 100-byte value. Each
// call is execute(args, view, ctx) against a Map-backed view, the change applied to the view as a
// coordinator would (so INCR counts up and the hash stays 10 fields). Pure CPU, no sockets.
//
//   node bench/micro/engine.ts
//
// Prints ns per command: the median (and the fastest) of 9 rounds of about 200 ms each, after a
// warm-up. On a loaded machine the fastest round is the steadier figure. The "floor" line is the
// least any command costs here (its key as a string, a Map lookup, a reply object), measured in the
// same rounds, to read the others against on a busy machine.
import { execute, encodeHash, type EngineContext } from '../../src/cache/engine/index.ts';
import { MapView } from '../../src/cache/engine/testing.ts';

const ROUNDS = 9;
const ROUND_MS = 200;
const now = Date.now();
const ctx: EngineContext = { now, maxValueBytes: 16 << 20 };
const view = new MapView(() => now);
const b = (s: string) => Buffer.from(s, 'latin1');

const fields = new Map<string, Buffer>();
for (let i = 0; i < 10; i++) fields.set(`field${i}`, b(`value-${i}-`.padEnd(20, 'x')));
view.entries.set('hash', { type: 1, value: encodeHash(fields), expiresAt: 0, version: 1 });
view.entries.set('counter', { type: 0, value: b('0'), expiresAt: 0, version: 1 });
view.entries.set('str', { type: 0, value: Buffer.alloc(100, 0x61), expiresAt: 0, version: 1 });

const cases: [string, Buffer[] | null][] = [
  ['floor (key string + Map.get)', null],
  ['INCR counter', [b('INCR'), b('counter')]],
  ['HSET hash field5 (10 fields)', [b('HSET'), b('hash'), b('field5'), b('value-5-updated-xxxx')]],
  ['HGET hash field7 (10 fields)', [b('HGET'), b('hash'), b('field7')]],
  ['SET str (100 B)', [b('SET'), b('str'), Buffer.alloc(100, 0x62)]],
  ['GET str (100 B)', [b('GET'), b('str')]],
];

let sink = 0;
const floorKey = b('counter');
const floorMap = view.entries;
/** The floor: what any command pays whatever the engine does. */
function floor(): number {
  const e = floorMap.get(floorKey.toString('latin1'));
  return { type: 'bulk', value: e?.value ?? null }.type.length;
}

function sample(args: Buffer[] | null, ms: number): number {
  let calls = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    if (args === null) {
      for (let i = 0; i < 1000; i++) sink += floor();
    } else {
      for (let i = 0; i < 1000; i++) {
        const out = execute(args, view, ctx);
        view.apply(out.changes);
        sink += out.changes.length;
      }
    }
    calls += 1000;
    t = performance.now();
  }
  return ((t - t0) * 1e6) / calls;
}

for (const [, args] of cases) sample(args, 300); // warm-up
const samples = cases.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) for (const [i, [, args]] of cases.entries()) samples[i]!.push(sample(args, ROUND_MS));
for (const [i, [name]] of cases.entries()) {
  const s = samples[i]!.sort((x, y) => x - y);
  console.log(`${name.padEnd(32)} ${s[ROUNDS >> 1]!.toFixed(0).padStart(6)} ns/op   (fastest ${s[0]!.toFixed(0)})`);
}
if (sink < 0) console.log(sink);
