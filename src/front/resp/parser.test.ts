import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RespParser, splitInline, isRespProtocolError, type ParseStep, type RespParserOptions } from './parser.ts';

/** Encode a command the way redis-cli and ioredis do. */
function multibulk(args: Uint8Array[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) parts.push(Buffer.from(`$${a.length}\r\n`), Buffer.from(a), Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

/** Split `data` at the given cut points (sorted, deduplicated, in range). */
function chunks(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  out.push(data.subarray(prev));
  return out;
}

interface Drained {
  commands: string[][];
  error: string | null;
}

/** Feed chunks one by one, pulling every complete command after each. */
function run(parser: RespParser, parts: Buffer[], onStep?: () => void): Drained {
  const commands: string[][] = [];
  let error: string | null = null;
  const drain = () => {
    for (;;) {
      const step: ParseStep = parser.next();
      onStep?.();
      if (step.kind === 'incomplete') return;
      if (step.kind === 'error') {
        error = step.error.message;
        return;
      }
      commands.push(step.args.map((a) => a.toString('latin1')));
    }
  };
  for (const p of parts) {
    parser.feed(p);
    onStep?.();
    drain();
    if (error !== null) break;
  }
  return { commands, error };
}

const token = fc.stringMatching(/^[A-Za-z0-9_:.-]{1,12}$/);
const binaryArg = fc.uint8Array({ minLength: 0, maxLength: 40 });

/** A request and the arguments it must parse to. */
const request = fc.oneof(
  fc.array(binaryArg, { minLength: 1, maxLength: 6 }).map((args) => ({
    bytes: multibulk(args),
    args: args.map((a) => Buffer.from(a).toString('latin1')),
  })),
  fc.tuple(fc.array(token, { minLength: 1, maxLength: 5 }), fc.constantFrom('\r\n', '\n'), fc.constantFrom(' ', '  ', '\t')).map(
    ([args, eol, sep]) => ({ bytes: Buffer.from(args.join(sep) + eol), args }),
  ),
);

test('any valid request stream split at any chunk boundaries parses to the same commands', () => {
  fc.assert(
    fc.property(fc.array(request, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (reqs, cuts) => {
      const stream = Buffer.concat(reqs.map((r) => r.bytes));
      const got = run(new RespParser(), chunks(stream, cuts));
      assert.equal(got.error, null);
      assert.deepEqual(got.commands, reqs.map((r) => r.args));
    }),
    { numRuns: 300 },
  );
});

test('byte-by-byte feeding parses a large argument exactly once', () => {
  const big = Buffer.alloc(100_000, 7);
  const stream = multibulk([Buffer.from('SET'), Buffer.from('k'), big]);
  const parser = new RespParser();
  const parts: Buffer[] = [];
  for (let i = 0; i < stream.length; i += 1000) parts.push(stream.subarray(i, i + 1000));
  const got = run(parser, parts);
  assert.equal(got.error, null);
  assert.equal(got.commands.length, 1);
  assert.equal(got.commands[0]![2]!.length, 100_000);
});

const limits: RespParserOptions = { maxBulkBytes: 64, maxArrayLength: 8, maxInlineBytes: 128, maxBufferedBytes: 512 };

test('random garbage never throws and never buffers beyond the limit', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.nat(), { maxLength: 30 }), (bytes, cuts) => {
      const parser = new RespParser(limits);
      run(parser, chunks(Buffer.from(bytes), cuts), () => {
        assert.ok(parser.bufferedBytes <= limits.maxBufferedBytes!, `buffered ${parser.bufferedBytes}`);
      });
    }),
    { numRuns: 500 },
  );
});

test('corrupted valid streams never throw and stay bounded', () => {
  fc.assert(
    fc.property(
      fc.array(request, { minLength: 1, maxLength: 8 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 5 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      (reqs, edits, cuts) => {
        const stream = Buffer.concat(reqs.map((r) => r.bytes));
        for (const [at, byte] of edits) stream[at % stream.length] = byte;
        const parser = new RespParser(limits);
        run(parser, chunks(stream, cuts), () => {
          assert.ok(parser.bufferedBytes <= limits.maxBufferedBytes!);
        });
      },
    ),
    { numRuns: 500 },
  );
});

function parseAll(input: string | Buffer, opts?: RespParserOptions): Drained {
  return run(new RespParser(opts), [typeof input === 'string' ? Buffer.from(input, 'latin1') : input]);
}

test('empty and null multibulk requests and blank lines are skipped, as Redis does', () => {
  assert.deepEqual(parseAll('*0\r\n*-1\r\n\r\n\n*1\r\n$4\r\nPING\r\n'), { commands: [['PING']], error: null });
});

test('an oversize bulk is rejected from its header, before its payload arrives', () => {
  const parser = new RespParser({ maxBulkBytes: 1024 });
  const got = run(parser, [Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n')]);
  assert.equal(got.error, 'Protocol error: invalid bulk length');
  assert.equal(parser.bufferedBytes, 0);
  assert.ok(parser.failed);
  // Later input is dropped, not buffered.
  parser.feed(Buffer.alloc(10_000));
  assert.equal(parser.bufferedBytes, 0);
  assert.equal(parser.next().kind, 'error');
});

test('protocol errors carry the messages Redis uses', () => {
  assert.equal(parseAll('*2\r\n$3\r\nGET\r\n:1\r\n').error, "Protocol error: expected '$', got ':'");
  assert.equal(parseAll('*x\r\n').error, 'Protocol error: invalid multibulk length');
  assert.equal(parseAll('*9\r\n', limits).error, 'Protocol error: invalid multibulk length');
  assert.equal(parseAll('*1\r\n$-1\r\n').error, 'Protocol error: invalid bulk length');
  assert.equal(parseAll('*1\r\n$1\r\nab\r\n').error, 'Protocol error: expected CRLF after bulk string');
  assert.equal(parseAll(`*${'1'.repeat(40)}`).error, 'Protocol error: too big mbulk count string');
  assert.equal(parseAll('*1\r\n$' + '1'.repeat(40)).error, 'Protocol error: too big bulk count string');
  assert.equal(parseAll('SET "a b\r\n').error, 'Protocol error: unbalanced quotes in request');
  assert.equal(parseAll('A'.repeat(200), limits).error, 'Protocol error: too big inline request');
  const err = new RespParser();
  err.feed(Buffer.from('*1\r\n$1\r\n'));
  err.feed(Buffer.from('xy'));
  assert.equal(err.next().kind, 'incomplete');
  err.feed(Buffer.from('z'));
  const step = err.next();
  assert.ok(step.kind === 'error' && isRespProtocolError(step.error));
});

test('commands before an error are delivered first', () => {
  assert.deepEqual(parseAll('PING\r\n*1\r\n$4\r\nECHO\r\n*z\r\n'), {
    commands: [['PING'], ['ECHO']],
    error: 'Protocol error: invalid multibulk length',
  });
});

test('input beyond maxBufferedBytes fails after the complete commands before it', () => {
  const parser = new RespParser(limits);
  const ping = '*1\r\n$4\r\nPING\r\n';
  parser.feed(Buffer.from(ping.repeat(30))); // 420 bytes
  parser.feed(Buffer.alloc(200, 0x41)); // would exceed 512: refused
  assert.ok(parser.bufferedBytes <= 512);
  let pings = 0;
  let step = parser.next();
  for (; step.kind === 'command'; step = parser.next()) pings++;
  assert.equal(pings, 30);
  assert.equal(step.kind, 'error');
  assert.match(step.kind === 'error' ? step.error.message : '', /too big request/);
});

test('a multibulk request whose arguments add up past the limit fails at the header', () => {
  const parser = new RespParser(limits);
  const arg = Buffer.alloc(60, 0x61);
  const got = run(parser, [multibulk([arg, arg, arg, arg, arg, arg, arg, arg])]);
  assert.match(got.error ?? '', /too big request/);
  assert.ok(parser.bufferedBytes <= 512);
});

test('inline requests split like redis-cli and sdssplitargs', () => {
  const s = (line: string) => splitInline(Buffer.from(line, 'latin1'))?.map((b) => b.toString('latin1'));
  assert.deepEqual(s('  SET  key   value '), ['SET', 'key', 'value']);
  assert.deepEqual(s('SET k "a b\\r\\n\\x41\\"" \'it\\\'s\''), ['SET', 'k', 'a b\r\nA"', "it's"]);
  assert.deepEqual(s('SET "" x'), ['SET', '', 'x']);
  assert.equal(s('"a"b'), undefined);
  assert.equal(s("'abc"), undefined);
  assert.deepEqual(s(''), []);
});

test('options are validated and the bad value named', () => {
  assert.throws(() => new RespParser({ maxBulkBytes: 0 }), /maxBulkBytes must be a positive integer. Got: 0/);
  assert.throws(() => new RespParser({ maxBulkBytes: 1024, maxBufferedBytes: 1000 }), /maxBufferedBytes must be at least/);
});

test('nextCommand() ranges read right away match the arguments, across any split and storage moves', () => {
  // Arguments up to 20 KB make the storage grow and move while a request is half read.
  const bigArg = fc.oneof(binaryArg, fc.integer({ min: 0, max: 20_000 }).map((n) => new Uint8Array(n).fill(n % 251)));
  fc.assert(
    fc.property(
      fc.array(fc.array(bigArg, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (reqs, cuts) => {
        const stream = Buffer.concat(reqs.map((args) => multibulk(args)));
        const parser = new RespParser();
        const got: string[][] = [];
        for (const part of chunks(stream, cuts)) {
          parser.feed(part);
          for (let kind = parser.nextCommand(); kind !== 'incomplete'; kind = parser.nextCommand()) {
            assert.equal(kind, 'command');
            const cmd = parser.command;
            const args: string[] = [];
            for (let i = 0; i < cmd.argc; i++) {
              assert.equal(cmd.length(i), cmd.end(i) - cmd.start(i));
              args.push(cmd.view(i).toString('latin1'));
            }
            got.push(args);
          }
        }
        assert.deepEqual(got, reqs.map((args) => args.map((a) => Buffer.from(a).toString('latin1'))));
        assert.equal(parser.bufferedBytes, 0);
      },
    ),
    { numRuns: 200 },
  );
});

test('a copy outlives the parser moving on; the view it came from does not have to', () => {
  const parser = new RespParser();
  parser.feed(multibulk([Buffer.from('SET'), Buffer.from('k'), Buffer.from('value')]));
  assert.equal(parser.nextCommand(), 'command');
  const kept = parser.command.copy(2);
  parser.feed(Buffer.from('*1\r\n$4\r\nPING\r\n'));
  assert.equal(parser.nextCommand(), 'command');
  assert.equal(kept.toString(), 'value');
  assert.equal(parser.command.view(0).toString(), 'PING');
});

test('inline commands come out through the same ranges', () => {
  const parser = new RespParser();
  parser.feed(Buffer.from('set "a b" \'c\'\r\n'));
  assert.equal(parser.nextCommand(), 'command');
  assert.deepEqual(parser.command.views().map((b) => b.toString()), ['set', 'a b', 'c']);
  assert.equal(parser.nextCommand(), 'incomplete');
  assert.equal(parser.bufferedBytes, 0);
});
