/**
 * One front door for the HTTP API and the Redis listener (src/front/door.ts): a real node with
 * both, the same inputs sent through each, refused or accepted alike, the data seen alike, and
 * both protocols counted in /metrics under `protocol`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { findSamples, parsePromText } from '../../src/observe/promtext.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { freePort } from '../helpers/ports.ts';

describe('the HTTP API and the Redis listener share one front door', () => {
  let cluster: TestCluster;
  let redis: Redis;
  let base: string;

  before(async () => {
    const respPort = await freePort();
    cluster = await startCluster({ nodes: 1, config: { cache: { max_value_bytes: '4KiB' } }, args: ['--resp-port', String(respPort)] });
    base = cluster.nodes[0]!.url;
    redis = new Redis({ port: respPort, host: '127.0.0.1', maxRetriesPerRequest: 1, lazyConnect: true });
    await redis.connect();
  });

  after(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  const put = (key: string, body: string | Buffer, query = ''): Promise<Response> => fetch(`${base}/api/scores/${encodeURIComponent(key)}${query}`, { method: 'PUT', body });

  async function redisError(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  }

  test('the value limit is the same: at the limit both accept, one byte over both refuse and store nothing', async () => {
    const limit = 4 * 1024;
    assert.equal((await put('v-http', 'x'.repeat(limit))).status, 204);
    assert.equal(await redis.set('v-resp', 'x'.repeat(limit)), 'OK');
    const http = await put('v-http2', 'x'.repeat(limit + 1));
    assert.equal(http.status, 413);
    assert.equal(((await http.json()) as { error: string }).error, 'value_too_large');
    assert.match(await redisError(redis.set('v-resp2', 'x'.repeat(limit + 1))), /^ERR value of 4097 bytes exceeds the limit of 4096$/);
    assert.equal((await fetch(`${base}/api/scores/v-resp2`)).status, 404);
    assert.equal(await redis.get('v-http2'), null);
  });

  test('TTLs follow one rule: a positive time, rounded up to a ms; zero or negative refused over both', async () => {
    assert.equal((await put('t-http', 'v', '?ttl=0.0004')).status, 204, 'a sub-ms TTL is accepted and rounded up');
    assert.equal((await put('t-bad', 'v', '?ttl=0')).status, 400);
    assert.equal((await put('t-bad', 'v', '?ttl=-3')).status, 400);
    assert.match(await redisError(redis.set('t-bad', 'v', 'PX', 0)), /invalid expire time in 'set' command/);
    assert.match(await redisError(redis.set('t-bad', 'v', 'EX', -3)), /invalid expire time in 'set' command/);
    assert.equal(await redis.exists('t-bad'), 0);
    // a TTL set over one protocol is seen over the other
    assert.equal((await put('t-both', 'v', '?ttl=100')).status, 204);
    const pttl = await redis.pttl('t-both');
    assert.ok(pttl > 99_000 && pttl <= 100_000, `PTTL ${pttl}`);
    await redis.set('t-both2', 'v', 'EX', 100);
    const expires = Number((await fetch(`${base}/api/scores/t-both2`)).headers.get('x-jincache-expires'));
    assert.ok(expires > Date.now() + 99_000 && expires <= Date.now() + 100_000);
  });

  test('keys: the same bytes are the same key; RESP keys are binary up to 64 KiB, HTTP keys UTF-8 up to 1 KiB (SPEC §2)', async () => {
    assert.equal((await put('ключ', 'from-http')).status, 204);
    assert.equal(await redis.get('ключ'), 'from-http');
    await redis.set(Buffer.from('naïve'), 'from-resp');
    assert.equal(await (await fetch(`${base}/api/scores/${encodeURIComponent('naïve')}`)).text(), 'from-resp');
    await redis.set(Buffer.from([0xff, 0x00, 0x01]), 'binary');
    assert.equal(await redis.get(Buffer.from([0xff, 0x00, 0x01])), 'binary');
    assert.equal((await put('k'.repeat(1025), 'v')).status, 400);
    assert.equal(await redis.set('k'.repeat(1025), 'v'), 'OK');
    assert.match(await redisError(redis.set('k'.repeat(65_537), 'v')), /^ERR key of 65537 bytes exceeds 65536$/);
  });

  test('both protocols are counted in jincache_requests_total, by protocol', async () => {
    const scrape = async () => parsePromText(await (await fetch(`${base}/metrics`)).text());
    const count = (m: ReturnType<typeof parsePromText>, labels: Record<string, string>) => findSamples(m, 'jincache_requests_total', labels).reduce((a, s) => a + s.value, 0);
    const before0 = await scrape();
    await redis.set('m-1', 'v');
    await redis.get('m-1');
    await redis.get('m-none');
    await redis.ping();
    await fetch(`${base}/api/scores/m-1`);
    const after1 = await scrape();
    const delta = (labels: Record<string, string>) => count(after1, labels) - count(before0, labels);
    assert.equal(delta({ protocol: 'resp', op: 'put', result: 'ok' }), 1);
    assert.equal(delta({ protocol: 'resp', op: 'get', result: 'hit' }), 1);
    assert.equal(delta({ protocol: 'resp', op: 'get', result: 'miss' }), 1);
    assert.equal(delta({ protocol: 'resp', op: 'other' }), 1, 'PING');
    assert.equal(delta({ protocol: 'http', op: 'get', result: 'hit' }), 1);
  });
});
