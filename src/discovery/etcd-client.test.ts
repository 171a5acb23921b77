import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GRPCUnavailableError, EtcdLeaseInvalidError } from 'etcd3';
import {
  CappedBackoff,
  checkPrefix,
  createEtcdClient,
  delays,
  etcdCall,
  EtcdUnavailableError,
  isEtcdUnavailableError,
  normalizeEndpoint,
  toEtcdError,
} from './etcd-client.ts';

test('normalizeEndpoint adds the scheme and names bad values', () => {
  assert.equal(normalizeEndpoint('127.0.0.1:2379'), 'http://127.0.0.1:2379');
  assert.equal(normalizeEndpoint(' http://10.0.0.1:2379/ '), 'http://10.0.0.1:2379');
  assert.equal(normalizeEndpoint('https://etcd.local:2379'), 'https://etcd.local:2379');
  assert.throws(() => normalizeEndpoint('127.0.0.1'), /needs a host and a port/);
  assert.throws(() => normalizeEndpoint('unix://x:1'), /must use http or https/);
  assert.throws(() => normalizeEndpoint('::::'), /"::::"/);
});

test('checkPrefix rejects empty and trailing-slash prefixes', () => {
  assert.equal(checkPrefix('/jincache'), '/jincache');
  assert.throws(() => checkPrefix(''), TypeError);
  assert.throws(() => checkPrefix('/jincache/'), /trailing/);
});

test('CappedBackoff grows exponentially with jitter and stays under the cap', () => {
  const seen: number[] = [];
  let b = new CappedBackoff(100, 1000);
  for (let i = 0; i < 20; i++) {
    seen.push(b.duration);
    b = b.next();
  }
  assert.ok(seen[0]! >= 50 && seen[0]! <= 100, `first ${seen[0]}`);
  assert.ok(seen[3]! >= 400 && seen[3]! <= 800, `fourth ${seen[3]}`);
  for (const d of seen.slice(5)) assert.ok(d >= 500 && d <= 1000, `capped ${d}`);
  assert.throws(() => new CappedBackoff(0, 10), RangeError);
  assert.throws(() => new CappedBackoff(100, 10), RangeError);
  const it = delays(10, 20);
  assert.ok(it.next().value <= 10);
});

test('toEtcdError converts connectivity errors once and passes others through', async () => {
  const unavailable = toEtcdError(new GRPCUnavailableError('14 UNAVAILABLE'), 'get x');
  assert.ok(isEtcdUnavailableError(unavailable));
  assert.equal(unavailable.code, 'ETCD_UNAVAILABLE');
  assert.ok(unavailable.message.startsWith('get x: etcd unavailable'));
  assert.equal(toEtcdError(unavailable), unavailable, 'not wrapped twice');

  const broken = Object.assign(new Error('Execution prevented because the circuit breaker is open'), {
    isBrokenCircuitError: true,
  });
  assert.ok(isEtcdUnavailableError(toEtcdError(broken)));

  const lease = new EtcdLeaseInvalidError('123');
  assert.equal(toEtcdError(lease), lease);
  assert.equal(isEtcdUnavailableError(new Error('x')), false);

  await assert.rejects(
    etcdCall('put y', () => Promise.reject(new GRPCUnavailableError('down'))),
    (e: unknown) => e instanceof EtcdUnavailableError && e.cause instanceof GRPCUnavailableError,
  );
});

test('an unreachable etcd fails fast with EtcdUnavailableError, not a hang', async () => {
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  const client = createEtcdClient({ endpoints: ['127.0.0.1:1'], dialTimeoutMs: 500 });
  try {
    const t = Date.now();
    await assert.rejects(etcdCall('get', () => client.get('k').string()), isEtcdUnavailableError);
    assert.ok(Date.now() - t < 3000);
  } finally {
    client.close();
  }
});

test('createEtcdClient validates its options', () => {
  assert.throws(() => createEtcdClient({ endpoints: [] }), /must not be empty/);
  assert.throws(() => createEtcdClient({ endpoints: ['127.0.0.1:2379'], dialTimeoutMs: 0 }), RangeError);
});
