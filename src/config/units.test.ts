import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { UnitError, formatDuration, formatSize, isUnitError, parseDuration, parseSize } from './units.ts';

describe('parseDuration', () => {
  const valid: Array<[string | number, number]> = [
    ['500ms', 500],
    ['5s', 5_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1.5s', 1_500],
    ['1.1s', 1_100], // 1.1 * 1000 is 1100.0000000000002 in binary floating point
    ['0.25m', 15_000],
    ['.5s', 500],
    ['0s', 0],
    [' 30s ', 30_000],
    ['10 s', 10_000],
    ['250', 250], // digits only: milliseconds, as a CLI flag gives them
    [250, 250],
    [0, 0],
  ];
  for (const [input, ms] of valid) {
    it(`reads ${JSON.stringify(input)} as ${ms} ms`, () => assert.equal(parseDuration(input), ms));
  }

  const invalid: Array<[unknown, RegExp]> = [
    ['fast', /expected a duration like 500ms, 5s or 2m/],
    ['', /expected a duration/],
    ['5 seconds', /expected a duration/],
    ['5S', /expected a duration/], // units are lower case: "M" could be read as months
    ['1d', /expected a duration/],
    ['-5s', /expected a duration/],
    [-1, /not negative/],
    [1.5, /whole number of milliseconds/],
    ['0.5ms', /whole number of milliseconds/],
    [Number.NaN, /expected a duration/],
    [Infinity, /expected a duration/],
    ['1e3s', /expected a duration/],
  ];
  for (const [input, re] of invalid) {
    it(`rejects ${String(typeof input === 'string' ? JSON.stringify(input) : input)}`, () => {
      assert.throws(
        () => parseDuration(input as string),
        (e: unknown) => {
          assert.ok(isUnitError(e));
          assert.ok(e instanceof UnitError);
          assert.equal(e.code, 'UNIT_INVALID');
          assert.equal(e.kind, 'duration');
          assert.equal(e.value, input);
          assert.match(e.allowed, re);
          assert.match(e.message, re);
          return true;
        },
      );
    });
  }

  it('names the bad value in its message', () => {
    assert.throws(() => parseDuration('fast'), { message: 'invalid duration "fast": expected a duration like 500ms, 5s or 2m' });
  });
});

describe('parseSize', () => {
  const valid: Array<[string | number, number]> = [
    ['100B', 100],
    ['512KiB', 512 * 1024],
    ['64MiB', 64 * 1024 * 1024],
    ['1GiB', 1024 ** 3],
    ['1TiB', 1024 ** 4],
    ['64MB', 64_000_000],
    ['1KB', 1000],
    ['2GB', 2e9],
    ['1.5KiB', 1536],
    ['64mib', 64 * 1024 * 1024], // units are case-insensitive
    ['4096', 4096],
    [4096, 4096],
    [0, 0],
  ];
  for (const [input, bytes] of valid) {
    it(`reads ${JSON.stringify(input)} as ${bytes} bytes`, () => assert.equal(parseSize(input), bytes));
  }

  const invalid: Array<[unknown, RegExp]> = [
    ['lots', /expected a size like 512KiB, 64MiB or 1GiB/],
    ['64M', /expected a size/], // ambiguous: MB or MiB? make the operator say
    ['64 megabytes', /expected a size/],
    ['-1KiB', /expected a size/],
    [-1, /not negative/],
    ['0.1KiB', /whole number of bytes/],
    [1.5, /whole number of bytes/],
    ['99999999TiB', /too large/],
  ];
  for (const [input, re] of invalid) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parseSize(input as string),
        (e: unknown) => isUnitError(e) && e.kind === 'size' && e.value === input && re.test(e.allowed) && re.test(e.message),
      );
    });
  }
});

describe('formatDuration / formatSize', () => {
  const durations: Array<[number, string]> = [
    [0, '0ms'],
    [250, '250ms'],
    [1_500, '1.5s'],
    [1_234, '1.234s'],
    [30_000, '30s'],
    [61_000, '61s'],
    [90_000, '1.5m'],
    [300_000, '5m'],
    [3_600_000, '1h'],
  ];
  for (const [ms, text] of durations) it(`formats ${ms} ms as ${text}`, () => assert.equal(formatDuration(ms), text));

  const sizes: Array<[number, string]> = [
    [0, '0B'],
    [100, '100B'],
    [1536, '1.5KiB'],
    [64 * 2 ** 20, '64MiB'],
    [2 ** 30, '1GiB'],
    [1_000_000, '1MB'],
    [1001, '1001B'],
  ];
  for (const [b, text] of sizes) it(`formats ${b} bytes as ${text}`, () => assert.equal(formatSize(b), text));

  it('parse(format(x)) === x for any whole ms and byte count', () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 40 }), (n) => {
        assert.equal(parseDuration(formatDuration(n)), n);
        assert.equal(parseSize(formatSize(n)), n);
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips values built from units, which take the unit paths', () => {
    fc.assert(
      fc.property(fc.nat({ max: 10_000 }), fc.constantFrom(1, 1000, 60_000, 3_600_000, 1024, 2 ** 20, 2 ** 30, 1e6), (k, unit) => {
        const n = k * unit;
        assert.equal(parseDuration(formatDuration(n)), n);
        assert.equal(parseSize(formatSize(n)), n);
      }),
      { numRuns: 1000 },
    );
  });
});
