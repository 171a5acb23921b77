import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  INFINITE,
  INT64_MAX,
  INT64_MIN,
  addInt64,
  addLongDouble,
  formatLongDouble,
  int64Bytes,
  longDoubleFromInt64,
  negateInt64,
  parseInt64,
  parseLongDouble,
  type LongDouble,
} from './numbers.ts';

const b = (s: string) => Buffer.from(s, 'latin1');

/** string2ll's rules written the slow, obvious way: the reference for parseInt64. */
function referenceInt64(s: string): bigint | null {
  if (s.length === 0 || s.length >= 21 || !/^(0|-?[1-9][0-9]*)$/.test(s)) return null;
  const v = BigInt(s);
  return v < INT64_MIN || v > INT64_MAX ? null : v;
}

function ld(s: string): LongDouble {
  const v = parseLongDouble(b(s));
  assert.ok(v !== null && v !== INFINITE, `${s} should parse to a finite long double`);
  return v;
}

describe('parseInt64', () => {
  it('follows string2ll: no sign but -, no leading zero, no -0, 64 bits', () => {
    const cases: [string, number | bigint | null][] = [
      ['0', 0], ['-1', -1], ['42', 42], ['9007199254740991', 9007199254740991], ['9007199254740993', 9007199254740993n],
      ['9223372036854775807', INT64_MAX], ['-9223372036854775808', INT64_MIN], ['9223372036854775808', null], ['-9223372036854775809', null],
      ['-0', null], ['007', null], ['+5', null], [' 5', null], ['5 ', null], ['', null], ['-', null], ['1.5', null], ['1e3', null], ['99999999999999999999', null],
    ];
    for (const [s, want] of cases) assert.equal(parseInt64(b(s)), want, s);
  });

  it('agrees with the reference on any text, a number while the value is safe', () => {
    const text = fc.oneof(fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }).map(String), fc.stringMatching(/^[-+ 0-9]{0,21}$/));
    fc.assert(
      fc.property(text, (s) => {
        const want = referenceInt64(s);
        const got = parseInt64(b(s));
        if (want === null) return got === null;
        return BigInt(got!) === want && (typeof got === 'number') === Number.isSafeInteger(Number(want));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('addInt64', () => {
  it('a sequence of INCRBYs is the bigint sum until it would leave 64 bits, where it stops', () => {
    const delta = fc.oneof(fc.integer({ min: -1000, max: 1000 }).map(BigInt), fc.bigInt({ min: INT64_MIN, max: INT64_MAX }));
    fc.assert(
      fc.property(fc.array(delta, { maxLength: 30 }), (deltas) => {
        let model = 0n;
        let value: number | bigint = 0;
        for (const d of deltas) {
          const next = addInt64(value, typeof d === 'bigint' && d >= -(2n ** 53n) && d <= 2n ** 53n ? Number(d) : d);
          const sum = model + d;
          if (sum < INT64_MIN || sum > INT64_MAX) {
            assert.equal(next, null);
          } else {
            assert.ok(next !== null);
            assert.equal(BigInt(next), sum);
            model = sum;
            value = next;
          }
        }
      }),
    );
  });

  it('negates all but -2^63', () => {
    assert.equal(negateInt64(5), -5);
    assert.equal(negateInt64(INT64_MAX), -INT64_MAX);
    assert.equal(negateInt64(INT64_MIN), null);
  });
});

describe('long double (x87 80-bit, as Redis on x86-64)', () => {
  it('prints as Redis 7 answers INCRBYFLOAT (values checked against redis-server 7.0)', () => {
    const sum = (x: string, y: string) => {
      const r = addLongDouble(ld(x), ld(y));
      assert.notEqual(r, INFINITE);
      return formatLongDouble(r as LongDouble);
    };
    assert.equal(sum('0', '0.1'), '0.1'); // 0.1L has 64 bits: 17 digits of it round to 0.1
    assert.equal(sum('0', '1e20'), '100000000000000000000');
    assert.equal(sum('0', '1e-20'), '0'); // %.17Lf
    assert.equal(sum('5', '0x10'), '21');
    assert.equal(sum('5', '3.0e-4950'), '5');
    assert.equal(sum('10.5', '0.1'), '10.6');
    assert.equal(sum('1e4000', '-1e4000'), '0');
    assert.equal(sum('-0', '-0'), '0'); // "-0" is written "0"
    assert.equal(sum('0', '-1e-20'), '0');
    assert.equal(sum('5', '.5'), '5.5');
    assert.equal(sum('5.5', '0x.8'), '6');
    assert.equal(sum('3', '0X1P+1'), '5');
    // 1e4000 is just below 10^4000 as a long double: redis-server printed these digits.
    const huge = formatLongDouble(ld('1e4000'));
    assert.equal(huge.length, 4000);
    assert.ok(huge.startsWith('9999999999999999999965463873099623784932492583506957631301508333'), huge.slice(0, 70));
  });

  it('refuses what strtold does not read whole, NaN, overflow and underflow to zero', () => {
    for (const s of ['', ' 1', '1 ', '1e', '1e+', '.', '0x', '0xg', 'nan', '-nan', 'infinit', 'abc', '1\x00', '1e-5000', '1e5000', '-1e5000', '0x1p99999']) {
      assert.equal(parseLongDouble(b(s)), null, JSON.stringify(s));
    }
    for (const s of ['inf', '-inf', 'Infinity', '+INF']) assert.equal(parseLongDouble(b(s)), INFINITE, s);
    // The least denormal is 2^-16445 (about 3.6e-4951): it and values rounding to it are kept.
    assert.deepEqual(ld('3.6e-4951'), { neg: false, m: 1n, e: -16445 });
    assert.deepEqual(ld('2e-4951'), { neg: false, m: 1n, e: -16445 });
    assert.equal(parseLongDouble(b('1.5e-4951')), null); // below half of it: zero
    assert.deepEqual(ld('1.18973149535723176502e+4932').e + 64, 16384); // the largest finite
  });

  it('rounds to nearest, ties to even, at 64 bits', () => {
    // 2^64 + 1 is between 2^64 and 2^64 + 2 (the spacing there): a tie, to the even 2^64.
    assert.deepEqual(ld(String(2n ** 64n + 1n)), { neg: false, m: 2n ** 63n, e: 1 });
    // 2^64 + 3: a tie between 2^64 + 2 and 2^64 + 4, to the even mantissa (2^64 + 4).
    assert.deepEqual(ld(String(2n ** 64n + 3n)), { neg: false, m: 2n ** 63n + 2n, e: 1 });
    const big = addLongDouble(ld(String(2n ** 63n)), ld('0.5'));
    assert.deepEqual(big, { neg: false, m: 2n ** 63n, e: 0 });
  });

  it('holds every 64-bit integer exactly and prints it back', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), (v) => {
        const x = ld(String(v));
        assert.deepEqual(formatLongDouble(x), String(v));
        assert.deepEqual(longDoubleFromInt64(v).m * 2n ** BigInt(longDoubleFromInt64(v).e), v < 0n ? -v : v);
      }),
    );
  });

  it('adds small integers and halves exactly, whatever the order', () => {
    const n = fc.integer({ min: -1_000_000, max: 1_000_000 });
    fc.assert(
      fc.property(n, n, (x, y) => {
        const a = ld(String(x / 2));
        const c = ld(String(y / 4));
        const s1 = addLongDouble(a, c);
        const s2 = addLongDouble(c, a);
        assert.deepEqual(s1, s2);
        assert.equal(formatLongDouble(s1 as LongDouble), String(x / 2 + y / 4));
      }),
    );
  });
});

describe('int64Bytes', () => {
  it('writes the decimal text of any 64-bit integer', () => {
    fc.assert(
      fc.property(fc.oneof(fc.maxSafeInteger(), fc.integer()), (v) => assert.equal(int64Bytes(v).toString('latin1'), String(v))),
    );
    assert.equal(int64Bytes(0).toString(), '0');
    assert.equal(int64Bytes(INT64_MIN).toString(), '-9223372036854775808');
  });
});
