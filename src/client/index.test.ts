import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JincacheClient, isJincacheClientError, JincacheClientError } from './index.ts';

test('constructor validates options and names the bad value', () => {
  assert.throws(() => new JincacheClient({ nodes: [] }), /at least one node URL/);
  assert.throws(() => new JincacheClient({ nodes: ['127.0.0.1:8001'] }), /"127\.0\.0\.1:8001" is not an http base URL/);
  assert.throws(() => new JincacheClient({ nodes: ['http://h:1/api'] }), /not an http base URL/);
  assert.throws(() => new JincacheClient({ nodes: ['http://h:1'], timeoutMs: 0 }), /timeoutMs must be a positive integer. Got: 0/);
  assert.throws(() => new JincacheClient({ nodes: ['http://h:1'], refreshIntervalMs: -5 }), /refreshIntervalMs/);
  assert.throws(() => new JincacheClient({ nodes: ['http://h:1'], group: '' }), /group must be a non-empty string/);
});

test('a closed client fails every call with code closed and does no I/O', async () => {
  const c = new JincacheClient({ nodes: ['http://127.0.0.1:1'], refreshIntervalMs: 0 });
  await c.close();
  for (const call of [() => c.get('k'), () => c.put('k', 'v'), () => c.delete('k'), () => c.cluster(), () => c.refresh()]) {
    await assert.rejects(call(), (e) => isJincacheClientError(e) && e.code === 'closed' && e.status === undefined && !e.retryable);
  }
});

test('JincacheClientError: retryable for unavailable, timeout, 503 and 504 only', () => {
  assert.equal(new JincacheClientError('unavailable', 'x').retryable, true);
  assert.equal(new JincacheClientError('timeout', 'x').retryable, true);
  assert.equal(new JincacheClientError('peer_unavailable', 'x', { status: 503 }).retryable, true);
  assert.equal(new JincacheClientError('timeout', 'x', { status: 504 }).retryable, true);
  assert.equal(new JincacheClientError('bad_ttl', 'x', { status: 400 }).retryable, false);
  assert.equal(isJincacheClientError(new Error('x')), false);
});
