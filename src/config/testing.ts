/** Helpers for the config tests (not used by the product). */
import assert from 'node:assert/strict';
import { isConfigError, type ConfigError } from './errors.ts';

/** The ConfigError `fn` throws (fails the test when it throws nothing or something else). */
export function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(isConfigError(e), `expected a ConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a ConfigError, nothing was thrown');
}
