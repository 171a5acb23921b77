import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RespClient, startRedisServer, type Reply } from '../../../test/helpers/redis-oracle.ts';
import { RespParser, splitInline, isCrossProtocolError, isRespProtocolError, type ParseStep, type RespParserOptions } from './parser.ts';

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

test('feed(chunk, length) takes chunk[0, length) only, and a copy: one read buffer reused for every chunk parses the same commands', () => {
  fc.assert(
    fc.property(fc.array(request, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (reqs, cuts) => {
      const stream = Buffer.concat(reqs.map((r) => r.bytes));
      const parser = new RespParser();
      const shared = Buffer.alloc(stream.length + 16);
      const commands: string[][] = [];
      for (const chunk of chunks(stream, cuts)) {
        shared.fill(0x2a); // what a longer earlier read left behind
        chunk.copy(shared);
        parser.feed(shared, chunk.length);
        shared.fill(0x23); // the next read writes over it before the commands are parsed
        for (let step = parser.next(); step.kind === 'command'; step = parser.next()) commands.push(step.args.map((a) => a.toString('latin1')));
      }
      assert.deepEqual(commands, reqs.map((r) => r.args));
    }),
    { numRuns: 200 },
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

/** The most memory a parser may hold under `limits`: its first storage, or the limit and a header. */
const MAX_STORAGE = Math.max(16 * 1024, limits.maxBufferedBytes! + 64);

test('random garbage never throws and never buffers beyond the limit', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.nat(), { maxLength: 30 }), (bytes, cuts) => {
      const parser = new RespParser(limits);
      run(parser, chunks(Buffer.from(bytes), cuts), () => {
        assert.ok(parser.bufferedBytes <= limits.maxBufferedBytes!, `buffered ${parser.bufferedBytes}`);
        assert.ok(parser.storageBytes <= MAX_STORAGE, `storage ${parser.storageBytes}`);
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
          assert.ok(parser.storageBytes <= MAX_STORAGE, `storage ${parser.storageBytes}`);
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
  // a quote opens anywhere in an argument, as in sdssplitargs
  assert.deepEqual(s('a"b c"d'), undefined);
  assert.deepEqual(s('a"b c" d'), ['ab c', 'd']);
  assert.deepEqual(s("x'y z'"), ['xy z']);
  // \v and \f are blanks between arguments but part of an unquoted one
  assert.deepEqual(s('\v\fa\vb\f c'), ['a\vb\f', 'c']);
  assert.deepEqual(s('"a"\v'), ['a']);
  // the line ends at its first NUL (sdssplitargs reads a C string)
  assert.deepEqual(s('a b\0c d'), ['a', 'b']);
  assert.equal(s('"a\0"'), undefined);
  // escapes: \xHH needs two hex digits; other backslashes keep the next byte
  assert.deepEqual(s('"\\x4g" "\\q" "\\\\"'), ['x4g', 'q', '\\']);
  assert.equal(s('"abc\\'), undefined);
  assert.deepEqual(s('"\xff\x80"'), ['\xff\x80']);
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

test('inline requests parse to the arguments redis-server 7 sees (EVAL "return ARGV" as the mirror)', async () => {
  const redis = await startRedisServer();
  try {
    // Lines over a small alphabet dense in quotes, escapes and blanks; no LF (it ends the line)
    // and no NUL (Redis looks for the line's LF with strchr, which stops at a NUL, so it waits).
    const alphabet = fc.constantFrom('a', 'b', 'x', '4', 'f', 'n', ' ', '  ', '\t', '\v', '\f', '\r', '"', "'", '\\', '\\x', '\\x4', '\xe9', '\xff');
    const tails = fc.sample(fc.array(alphabet, { maxLength: 14 }).map((parts) => parts.join('')), { numRuns: 250, seed: 7 });
    tails.push('"a b"c', 'a"b c"', '"\\x41\\x4"', "'it\\'s'", '""', "''", '"\\', '\\"', 'x\r', 'a\rb');
    for (const tail of tails) {
      const line = `EVAL "return ARGV" 0 ${tail}`;
      const client = await RespClient.connect(redis.port);
      let theirs: Reply;
      try {
        [theirs] = (await client.sendRaw(`${line}\r\n`, 1)) as [Reply];
      } finally {
        client.close();
      }
      const got = parseAll(`${line}\r\n`);
      const what = JSON.stringify(tail);
      if (theirs.type === 'error') {
        assert.equal(got.error, theirs.message.replace(/^ERR /, ''), what);
      } else {
        assert.equal(got.error, null, what);
        assert.ok(theirs.type === 'array', what);
        assert.deepEqual(got.commands[0]!.slice(3), theirs.items.map((i) => (i.type === 'bulk' ? i.value.toString('latin1') : `?${i.type}`)), what);
      }
    }
  } finally {
    await redis.stop();
  }
});

test('protocol errors read the same as redis-server 7 answers them', async () => {
  const redis = await startRedisServer({ password: 'secret' });
  try {
    const inputs: [string, boolean][] = [
      // [bytes, whether the client has authenticated]
      ['*2\r\n$3\r\nGET\r\n:1\r\n', true],
      ['*x\r\n', true],
      ['*01\r\n$4\r\nPING\r\n', true],
      ['*-0\r\n', true],
      ['*1\r\n$-1\r\n', true],
      ['*1\r\n$04\r\nPING\r\n', true],
      ['*1\r\n$+4\r\nPING\r\n', true],
      ['SET "a b\r\n', true],
      ["SET 'a\r\n", true],
      ['*11\r\n', false],
      ['*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16385\r\n', false],
    ];
    for (const [input, authed] of inputs) {
      const client = await RespClient.connect(redis.port);
      let theirs: Reply;
      try {
        if (authed) await client.call('AUTH', 'secret');
        [theirs] = (await client.sendRaw(input, 1)) as [Reply];
      } finally {
        client.close();
      }
      assert.ok(theirs.type === 'error', JSON.stringify(input));
      const ours = parseAll(input, { authRequired: !authed });
      assert.equal(`ERR ${ours.error}`, theirs.message, JSON.stringify(input));
    }
    // the limits before authentication are lifted once the server clears the flag
    const parser = new RespParser({ authRequired: true });
    parser.authRequired = false;
    assert.equal(run(parser, [Buffer.from(`*11\r\n${'$1\r\na\r\n'.repeat(11)}`)]).commands.length, 1);
  } finally {
    await redis.stop();
  }
});

test('an HTTP request line or header is reported as a cross-protocol attack, not run', async () => {
  for (const input of [
    'GET / HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\n',
    'POST /api HTTP/1.1\r\n',
    'post\r\n',
    'Host: example.com\r\n',
    'HOST: x\n',
    'PUT /x HTTP/1.0\r\n',
  ]) {
    const parser = new RespParser();
    const got = run(parser, [Buffer.from(input, 'latin1')]);
    assert.deepEqual(got.commands, [], input);
    assert.ok(isCrossProtocolError(parser.error) && isRespProtocolError(parser.error), input);
    assert.match(parser.error.line, /^(GET|POST|post|Host|HOST|PUT)/);
    assert.match(parser.error.message, /SECURITY ATTACK/);
    assert.equal(parser.bufferedBytes, 0, 'the rest is dropped');
  }
  // what Redis users type stays a command
  for (const ok of ['GET / x\r\n', 'GET key\r\n', 'SET / HTTP/1.1\r\n', 'hostname x\r\n', '*2\r\n$4\r\nPOST\r\n$1\r\nx\r\n']) {
    const parser = new RespParser();
    assert.equal(run(parser, [Buffer.from(ok)]).commands.length, 1, ok);
    assert.ok(!isCrossProtocolError(parser.error));
  }
  // redis-server drops the connection without a word on the same lines
  const redis = await startRedisServer();
  try {
    for (const line of ['POST / HTTP/1.1\r\n', 'Host: x\r\n']) {
      const client = await RespClient.connect(redis.port);
      await assert.rejects(client.sendRaw(line, 1), /connection closed/);
      assert.ok(client.closed);
    }
  } finally {
    await redis.stop();
  }
});

test('a value of tens of MiB is held once, in storage sized to it, and taken without a copy', () => {
  const size = 32 * 1024 * 1024;
  const value = Buffer.alloc(size, 0x61);
  value.write('end', size - 3);
  const stream = Buffer.concat([multibulk([Buffer.from('SET'), Buffer.from('big'), value]), Buffer.from('*1\r\n$4\r\nPING\r\n')]);
  const parser = new RespParser({ maxBulkBytes: 64 * 1024 * 1024 });
  let taken: Buffer | undefined;
  const commands: string[] = [];
  for (let at = 0; at < stream.length; at += 64 * 1024) {
    parser.feed(stream.subarray(at, at + 64 * 1024));
    // storage: the request and one socket read of slack, never the next power of two (64 MiB)
    assert.ok(parser.storageBytes <= size + 256 * 1024, `storage ${parser.storageBytes}`);
    for (let k = parser.nextCommand(); k === 'command'; k = parser.nextCommand()) {
      commands.push(parser.command.view(0).toString());
      if (parser.command.argc === 3) taken = parser.command.take(2);
    }
  }
  assert.deepEqual(commands, ['SET', 'PING']);
  assert.ok(taken !== undefined && taken.length === size && taken.toString('latin1', size - 3) === 'end');
  assert.ok(taken.buffer.byteLength > size, 'a view of the parser storage (a copy would be its own buffer)');
  // the parser moved on to a storage of its own: more input does not touch the taken value
  parser.feed(Buffer.from(`*2\r\n$4\r\nECHO\r\n$3\r\nzzz\r\n`.repeat(1000)));
  while (parser.nextCommand() === 'command');
  assert.equal(taken.toString('latin1', 0, 3), 'aaa');
  assert.ok(parser.storageBytes < 1024 * 1024);
});

test('take() of a small argument is a copy that outlives the parser', () => {
  const parser = new RespParser();
  parser.feed(multibulk([Buffer.from('SET'), Buffer.from('k'), Buffer.from('value')]));
  assert.equal(parser.nextCommand(), 'command');
  const v = parser.command.take(2);
  parser.feed(multibulk([Buffer.from('SET'), Buffer.from('k'), Buffer.from('VALUE')]));
  assert.equal(parser.nextCommand(), 'command');
  assert.equal(v.toString(), 'value');
});

test('property: taken arguments stay intact whatever the parser reads afterwards', () => {
  const arg = fc.oneof(fc.uint8Array({ maxLength: 50 }), fc.integer({ min: 30_000, max: 120_000 }).map((n) => new Uint8Array(n).fill(n % 251)));
  fc.assert(
    fc.property(fc.array(fc.array(arg, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (reqs, cuts) => {
      const parser = new RespParser();
      const kept: Buffer[] = [];
      for (const part of chunks(Buffer.concat(reqs.map((r) => multibulk(r))), cuts)) {
        parser.feed(part);
        for (let k = parser.nextCommand(); k === 'command'; k = parser.nextCommand()) {
          for (let i = 0; i < parser.command.argc; i++) kept.push(parser.command.take(i));
        }
      }
      assert.deepEqual(kept.map((b) => Buffer.from(b).toString('latin1')), reqs.flat().map((a) => Buffer.from(a).toString('latin1')));
    }),
    { numRuns: 60 },
  );
});
