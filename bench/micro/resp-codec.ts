// Micro-benchmark of the RESP hot path: encoding the replies GET/SET/DEL answer (a 100-byte bulk,
// +OK, a null bulk, an integer) in pipelined batches of 16, and parsing pipelined GET and SET
// requests (16 per chunk, arguments read as byte ranges, as the server does). Pure CPU, no sockets.
//
//   node bench/micro/resp-codec.ts            # the code in this tree
//   node bench/micro/resp-codec.ts DIR        # and writer.ts / parser.ts from DIR (a baseline
//                                             # copy, e.g. `git show main:src/front/resp/writer.ts`)
//
// With DIR both run in one process, their rounds interleaved, so load from elsewhere on the
// machine hits both alike (on a shared 2-core machine separate runs differ by 30% or more).
//
// Prints ns per reply / per command: the median (and the fastest) of 9 rounds of about 200 ms each,
// after a warm-up. On a loaded machine the fastest round is the steadier figure.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const here = resolve(import.meta.dirname, '../../src/front/resp');
const dirs: [string, string][] = [['', here]];
if (process.argv[2]) dirs.unshift(['baseline ', resolve(process.argv[2])]);

const ROUNDS = 9;
const ROUND_MS = 200;

interface Case {
  name: string;
  body: () => void;
  opsPerCall: number;
  samples: number[];
}
const cases: Case[] = [];
function add(name: string, opsPerCall: number, body: () => void): void {
  cases.push({ name, body, opsPerCall, samples: [] });
}

/** One round of `c`: ns per op over about ROUND_MS. */
function sample(c: Case, ms: number): number {
  let calls = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 100; i++) c.body();
    calls += 100;
    t = performance.now();
  }
  return ((t - t0) * 1e6) / (calls * c.opsPerCall);
}

let sink = 0;
for (const [tag, dir] of dirs) {
  const W = await import(pathToFileURL(`${dir}/writer.ts`).href);
  const P = await import(pathToFileURL(`${dir}/parser.ts`).href);
  const value = Buffer.alloc(100, 0x78);
  const replies: Record<string, unknown> = { 'bulk 100 B': W.bulk(value), '+OK': W.OK, 'null bulk': W.NULL_BULK, integer: W.integer(12345) };
  const protocols = W.encodeAs ? [2, 3] : [2];
  for (const proto of protocols) {
    for (const [name, reply] of Object.entries(replies)) {
      const batch = new W.ReplyBatch();
      if (proto === 3) batch.protocol = 3;
      add(`${tag}writer RESP${proto} ${name}`, 16, () => {
        for (let i = 0; i < 16; i++) batch.push(reply);
        sink += batch.take().length;
      });
    }
  }

  function multibulk(args: string[]): Buffer {
    return Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`, 'latin1');
  }
  const gets = Buffer.concat(Array.from({ length: 16 }, (_, i) => multibulk(['GET', `key:${1000 + i}`])));
  const sets = Buffer.concat(Array.from({ length: 16 }, (_, i) => multibulk(['SET', `key:${1000 + i}`, 'x'.repeat(100)])));
  // A 1 MiB SET arriving in 64 KiB socket reads; the value is kept (take() where the parser has it).
  const bigSet = multibulk(['SET', 'big', 'x'.repeat(1024 * 1024)]);
  const reads = Array.from({ length: Math.ceil(bigSet.length / 65536) }, (_, i) => bigSet.subarray(i * 65536, (i + 1) * 65536));
  {
    const parser = new P.RespParser();
    add(`${tag}parser SET 1 MiB (64 KiB reads, value kept)`, 1, () => {
      for (const r of reads) {
        parser.feed(r);
        while (parser.nextCommand() === 'command') sink += (parser.command.take ? parser.command.take(2) : parser.command.copy(2)).length;
      }
    });
  }
  for (const [name, chunk] of [['GET', gets], ['SET 100 B', sets]] as const) {
    const parser = new P.RespParser();
    add(`${tag}parser ${name}`, 16, () => {
      parser.feed(chunk);
      while (parser.nextCommand() === 'command') sink += parser.command.argc + parser.command.start(1);
    });
  }

}

// Warm every case up first (the JIT sees all reply types, as a server does), then interleave
// the rounds so a burst of load from elsewhere on the machine hits every case alike.
for (const c of cases) sample(c, 300);
for (let r = 0; r < ROUNDS; r++) for (const c of cases) c.samples.push(sample(c, ROUND_MS));
const out: Record<string, string> = {};
for (const c of cases) {
  c.samples.sort((a, b) => a - b);
  out[c.name] = `${c.samples[Math.floor(ROUNDS / 2)]!.toFixed(1)} (min ${c.samples[0]!.toFixed(1)})`;
}
console.log(JSON.stringify({ node: process.version, dirs: dirs.map(([t, d]) => `${t}${d}`), nsPerOp: out, sink: sink > 0 }, null, 1));
