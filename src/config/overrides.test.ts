import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isConfigError } from './errors.ts';
import { applyGroupOverride, applyGroupOverrides, parseGroupOverride, validateGroupOverride } from './overrides.ts';
import { parseConfig, resolveGroup } from './schema.ts';
import type { Config } from './schema.ts';
import { configErrorOf } from './testing.ts';

function base(): Config {
  return parseConfig({
    cache: { group_name: 'scores', cache_bytes: '64MiB' },
    groups: [{ name: 'users', loader: { url: 'http://127.0.0.1:9000/u/{key}' } }],
  });
}

/** A deep freeze, so any mutation of the base throws in strict-mode module code. */
function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

describe('parseGroupOverride', () => {
  it('reads every field, converting durations and sizes', () => {
    const o = parseGroupOverride(
      JSON.stringify({
        cache_bytes: '128MiB',
        hot_cache_fraction: 0.25,
        request_timeout: '5s',
        max_retries: 1,
        circuit_threshold: 0.75,
        rebalance_threshold: 0.1,
        loader_timeout: 2000,
        ttl_default: '10m',
      }),
    );
    assert.deepEqual(o, {
      cache_bytes: 128 * 2 ** 20,
      hot_cache_fraction: 0.25,
      request_timeout: 5000,
      max_retries: 1,
      circuit_threshold: 0.75,
      rebalance_threshold: 0.1,
      loader_timeout: 2000,
      ttl_default: 600_000,
    });
  });

  it('an empty object is a valid (empty) override; null fields count as unset', () => {
    assert.deepEqual(parseGroupOverride('{}'), {});
    assert.deepEqual(parseGroupOverride('{"cache_bytes": null, "max_retries": 2}'), { max_retries: 2 });
  });

  const bad: Array<[string, string, string]> = [
    ['{"cache_bytes": "lots"}', 'cache_bytes', 'config override for group "users": cache_bytes = "lots" is invalid: expected a size like 512KiB, 64MiB or 1GiB'],
    ['{"request_timeout": "soon"}', 'request_timeout', 'config override for group "users": request_timeout = "soon" is invalid: expected a duration like 500ms, 5s or 2m'],
    ['{"max_retries": 11}', 'max_retries', 'config override for group "users": max_retries = 11 is invalid: expected an integer from 0 to 10'],
    ['{"circuit_threshold": 1.5}', 'circuit_threshold', 'config override for group "users": circuit_threshold = 1.5 is invalid: expected a number greater than 0 and at most 1'],
    ['{"hot_cache_fraction": -0.1}', 'hot_cache_fraction', 'config override for group "users": hot_cache_fraction = -0.1 is invalid: expected a number at least 0 and below 1'],
    ['{"ttl_default": "0s"}', 'ttl_default', 'config override for group "users": ttl_default = "0s" is invalid: expected a duration like 500ms, 5s or 2m, greater than 0'],
  ];
  for (const [json, path, message] of bad) {
    it(`rejects ${json}`, () => {
      const e = configErrorOf(() => parseGroupOverride(json, 'users'));
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.equal(e.path, path);
      assert.equal(e.message, message);
    });
  }

  it('rejects an unknown field, naming it', () => {
    const e = configErrorOf(() => parseGroupOverride('{"cache_size": "1MiB"}'));
    assert.equal(e.kind, 'unknown_key');
    assert.equal(e.path, 'cache_size');
    assert.match(e.message, /^config override: cache_size = "1MiB" is not a known key: did you mean cache_bytes\? known keys here are cache_bytes, /);
  });

  it('rejects JSON that does not parse or is not an object', () => {
    assert.equal(configErrorOf(() => parseGroupOverride('{cache_bytes: 1}')).kind, 'syntax');
    assert.match(configErrorOf(() => parseGroupOverride('{cache_bytes: 1}')).message, /^config override: invalid JSON: /);
    assert.match(configErrorOf(() => parseGroupOverride('[1]')).message, /^config override: \(top level\) = \[1\] is invalid: expected a JSON object/);
    assert.match(configErrorOf(() => validateGroupOverride(null)).message, /expected a JSON object/);
  });
});

describe('applyGroupOverride', () => {
  it('applies per-group fields to that group only and leaves the base untouched', () => {
    const b = deepFreeze(base());
    const before = structuredClone(b);
    const c = applyGroupOverride(b, 'users', parseGroupOverride('{"cache_bytes":"8MiB","request_timeout":"7s","ttl_default":"1m","loader_timeout":"1s","max_retries":0,"hot_cache_fraction":0}'));
    assert.deepEqual(b, before);
    assert.deepEqual(resolveGroup(c, 'users'), {
      name: 'users',
      cache_bytes: 8 * 2 ** 20,
      hot_cache_fraction: 0,
      ttl_default: 60_000,
      request_timeout: 7000,
      max_retries: 0,
      loader: { url: 'http://127.0.0.1:9000/u/{key}', timeout: 1000 },
    });
    // Other groups and the globals keep their values.
    assert.deepEqual(resolveGroup(c, 'scores'), resolveGroup(b, 'scores'));
    assert.equal(c.fault_tolerance.request_timeout, 3000);
    assert.equal(c.cache.cache_bytes, 64 * 2 ** 20);
  });

  it('applies cluster-wide fields from the default group\'s document', () => {
    const b = deepFreeze(base());
    const c = applyGroupOverride(b, 'scores', { circuit_threshold: 0.9, rebalance_threshold: 0.3 });
    assert.equal(c.fault_tolerance.circuit_threshold, 0.9);
    assert.equal(c.rebalance.threshold, 0.3);
    assert.equal(b.fault_tolerance.circuit_threshold, 0.5);
    assert.equal(b.rebalance.threshold, 0.2);
  });

  it('rejects cluster-wide fields for another group, changing nothing', () => {
    const b = deepFreeze(base());
    const before = structuredClone(b);
    const e = configErrorOf(() => applyGroupOverride(b, 'users', { rebalance_threshold: 0.3 }));
    assert.equal(e.path, 'rebalance_threshold');
    assert.match(e.message, /^config override for group "users": rebalance_threshold = 0.3 is invalid: rebalance_threshold is cluster-wide: set it in the override of the default group "scores"$/);
    assert.deepEqual(b, before);
  });

  it('rejects a group that is not configured and a loader timeout without a loader', () => {
    assert.equal(configErrorOf(() => applyGroupOverride(base(), 'nope', { max_retries: 1 })).path, 'group');
    assert.match(configErrorOf(() => applyGroupOverride(base(), 'nope', {})).message, /expected a configured group: scores, users/);
    assert.equal(configErrorOf(() => applyGroupOverride(base(), 'scores', { loader_timeout: 1000 })).path, 'loader_timeout');
  });

  it('an empty override gives an equal config', () => {
    const b = base();
    assert.deepEqual(applyGroupOverride(b, 'users', {}), b);
  });
});

describe('applyGroupOverrides', () => {
  it('applies every group\'s document, and recomputing without one restores the base value', () => {
    const b = deepFreeze(base());
    const all = { scores: parseGroupOverride('{"cache_bytes":"1MiB"}'), users: parseGroupOverride('{"cache_bytes":"2MiB"}') };
    const c = applyGroupOverrides(b, all);
    assert.equal(resolveGroup(c, 'scores')?.cache_bytes, 2 ** 20);
    assert.equal(resolveGroup(c, 'users')?.cache_bytes, 2 * 2 ** 20);
    const { users: _removed, ...rest } = all;
    const d = applyGroupOverrides(b, rest);
    assert.equal(resolveGroup(d, 'users')?.cache_bytes, 64 * 2 ** 20);
  });

  it('throws on the first bad document and applies none', () => {
    const b = deepFreeze(base());
    const before = structuredClone(b);
    assert.throws(() => applyGroupOverrides(b, { scores: { cache_bytes: 1 }, users: { circuit_threshold: 0.1 } }), isConfigError);
    assert.deepEqual(b, before);
  });
});
