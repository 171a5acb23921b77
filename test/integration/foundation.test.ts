/**
 * Foundation (issue 2): three real node processes on loopback with static peers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { runCli, startCluster, type TestCluster } from '../helpers/cluster.ts';
import { NO_EXPIRY } from '../../src/cache/ops.ts';
import { isJincacheError } from '../../src/core/errors.ts';
import { Ping, Write } from '../../src/peer/messages.ts';
import { callPeer } from '../helpers/peer.ts';

const SECRET = 'integration-secret';

/** An origin for the loader group: counts loads, answers slowly so concurrent misses overlap. */
function startOrigin(): Promise<{ server: http.Server; port: number; loads: Map<string, number> }> {
  const loads = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const key = decodeURIComponent((req.url ?? '').replace('/origin/', ''));
    loads.set(key, (loads.get(key) ?? 0) + 1);
    setTimeout(() => {
      if (key.startsWith('absent')) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200);
      res.end(`origin:${key}`);
    }, 300);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port, loads })));
}

describe('a 3-node cluster', () => {
  let cluster: TestCluster;
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  const url = (i: number, path: string): string => `${cluster.nodes[i]!.url}${path}`;

  before(async () => {
    origin = await startOrigin();
    cluster = await startCluster({
      nodes: 3,
      config: {
        cluster: { secret: SECRET },
        cache: { max_value_bytes: '4KiB' },
        groups: [{ name: 'origin', loader: { url: `http://127.0.0.1:${origin.port}/origin/{key}` } }],
      },
    });
  });

  after(async () => {
    await cluster?.stop();
    origin?.server.close();
  });

  test('every node holds the same partition table', async () => {
    const infos = await Promise.all([0, 1, 2].map(async (i) => (await fetch(url(i, '/cluster'))).json() as Promise<any>));
    for (const info of infos) {
      assert.equal(info.nodes.length, 3);
      assert.equal(info.partitionCount, 4096);
      assert.deepEqual(info.partitions.owners, infos[0].partitions.owners);
      assert.equal(info.ringVersion, infos[0].ringVersion);
    }
    const owned = infos[0].nodes.map((n: any) => n.partitionsOwned);
    assert.equal(owned.reduce((a: number, b: number) => a + b, 0), 4096);
    assert.ok(Math.max(...owned) / (4096 / 3) <= 1.05, `owners balanced: ${owned}`);
  });

  test('PUT at one node, GET at every node, for keys owned by each node', async () => {
    const info = (await (await fetch(url(0, '/cluster'))).json()) as any;
    const owners: string[] = info.partitions.owners;
    // one key owned by each node, so every path (local, forwarded) is exercised
    const byOwner = new Map<string, string>();
    for (let i = 0; byOwner.size < 3 && i < 10_000; i++) {
      const key = `user:${i}`;
      const owner = owners[partitionOf(key, 4096)]!;
      if (!byOwner.has(owner)) byOwner.set(owner, key);
    }
    assert.equal(byOwner.size, 3);
    for (const [owner, key] of byOwner) {
      const put = await fetch(url(0, `/api/scores/${encodeURIComponent(key)}`), { method: 'PUT', body: `value of ${key}` });
      assert.equal(put.status, 204, `PUT ${key} (owner ${owner})`);
      for (const i of [0, 1, 2]) {
        const res = await fetch(url(i, `/api/scores/${encodeURIComponent(key)}`));
        assert.equal(res.status, 200, `GET ${key} at node ${i + 1}`);
        assert.equal(res.headers.get('x-cache'), 'hit');
        assert.equal(await res.text(), `value of ${key}`);
      }
    }
    // the seed's query form
    const [, someKey] = [...byOwner][0]!;
    const res = await fetch(url(2, `/api?group=scores&key=${encodeURIComponent(someKey)}`));
    assert.equal(await res.text(), `value of ${someKey}`);
  });

  test('DELETE removes the value everywhere', async () => {
    assert.equal((await fetch(url(1, '/api/scores/doomed'), { method: 'PUT', body: 'x' })).status, 204);
    assert.equal((await fetch(url(2, '/api/scores/doomed'))).status, 200);
    assert.equal((await fetch(url(2, '/api/scores/doomed'), { method: 'DELETE' })).status, 204);
    for (const i of [0, 1, 2]) {
      const res = await fetch(url(i, '/api/scores/doomed'));
      assert.equal(res.status, 404);
      assert.equal(res.headers.get('x-cache'), 'miss');
    }
  });

  test('TTL expiry', async () => {
    assert.equal((await fetch(url(0, '/api/scores/short?ttl=1'), { method: 'PUT', body: 'brief' })).status, 204);
    const res = await fetch(url(1, '/api/scores/short'));
    assert.equal(res.status, 200);
    const expires = Number(res.headers.get('x-jincache-expires'));
    assert.ok(expires > Date.now() && expires <= Date.now() + 1000, `expiry header ${expires}`);
    await sleep(1200);
    for (const i of [0, 1, 2]) assert.equal((await fetch(url(i, '/api/scores/short'))).status, 404);
  });

  test('100 concurrent GETs of one missing key cause exactly one origin load', async () => {
    const key = 'stampede';
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => fetch(url(i % 3, `/api/origin/${key}`)).then(async (r) => ({ status: r.status, body: await r.text(), cache: r.headers.get('x-cache') }))),
    );
    for (const r of results) {
      assert.equal(r.status, 200);
      assert.equal(r.body, `origin:${key}`);
    }
    assert.equal(origin.loads.get(key), 1, 'one origin load');
    assert.ok(results.some((r) => r.cache === 'load'));
    // afterwards it is cached: no further loads
    assert.equal((await fetch(url(2, `/api/origin/${key}`))).headers.get('x-cache'), 'hit');
    assert.equal(origin.loads.get(key), 1);
    // origin 404 -> 404, not cached as a value
    assert.equal((await fetch(url(0, '/api/origin/absent-1'))).status, 404);
  });

  test('bad input gets a 4xx JSON error and changes nothing', async () => {
    assert.equal((await fetch(url(0, '/api/scores/keep'), { method: 'PUT', body: 'original' })).status, 204);
    const bad: Array<[string, RequestInit, number, string]> = [
      ['/api/scores/' + 'k'.repeat(1025), { method: 'PUT', body: 'v' }, 400, 'key_too_large'],
      ['/api/scores/keep', { method: 'PUT', body: 'v'.repeat(5000) }, 413, 'value_too_large'],
      ['/api/scores/keep?ttl=-5', { method: 'PUT', body: 'changed' }, 400, 'bad_ttl'],
      ['/api/scores/keep?ttl=abc', { method: 'PUT', body: 'changed' }, 400, 'bad_ttl'],
      ['/api/nosuchgroup/keep', { method: 'PUT', body: 'changed' }, 404, 'unknown_group'],
      ['/api/scores', { method: 'PUT', body: 'changed' }, 400, 'bad_request'],
      ['/api/scores/%E0%A4%A', { method: 'PUT', body: 'changed' }, 400, 'bad_request'],
      ['/api?group=scores', { method: 'GET' }, 400, 'bad_request'],
      ['/api/scores/keep', { method: 'PATCH', body: 'changed' }, 400, 'bad_request'],
    ];
    for (const [path, init, status, code] of bad) {
      const res = await fetch(url(1, path), init);
      assert.equal(res.status, status, `${init.method} ${path.slice(0, 40)}`);
      const body = (await res.json()) as { error: string; message: string };
      assert.equal(body.error, code);
      assert.equal(typeof body.message, 'string');
    }
    for (const i of [0, 1, 2]) assert.equal(await (await fetch(url(i, '/api/scores/keep'))).text(), 'original');
    // every node still serves
    for (const i of [0, 1, 2]) assert.equal((await fetch(url(i, '/health'))).status, 200);
  });

  test('node-to-node messages require the cluster secret', async () => {
    const forged = { group: 'scores', key: 'keep', op: { op: 'set' as const, value: Buffer.from('forged'), expiry: NO_EXPIRY } };
    const noSecret = await fetch(url(0, '/_jincache/write'), { method: 'POST', body: Write.encodeRequest(forged) });
    assert.equal(noSecret.status, 401);
    await assert.rejects(callPeer(Write, url(0, ''), forged, {}, 'nope'), (e: unknown) => isJincacheError(e) && e.code === 'UNAUTHORIZED');
    for (const i of [0, 1, 2]) assert.equal(await (await fetch(url(i, '/api/scores/keep'))).text(), 'original');
    const ok = await callPeer(Ping, url(0, ''), undefined, { from: 'a-tool' }, SECRET);
    assert.equal(ok.id, cluster.nodes[0]!.id);
  });

  test('jincache status prints the nodes and partition counts', async () => {
    const out = await runCli(['status', '--node', cluster.nodes[0]!.url]);
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.trim().split('\n');
    assert.match(lines[0]!, /^ring version \d+ · 4096 partitions · replication factor 2$/);
    assert.match(lines[2]!, /^NODE\s+ADDRESS\s+STATUS\s+HEALTH\s+WEIGHT\s+LOAD\s+PARTITIONS\s+REPLICAS$/);
    const rows = lines.slice(4);
    assert.equal(rows.length, 3);
    let owned = 0;
    rows.forEach((row, i) => {
      const cols = row.split(/\s+/);
      assert.equal(cols[0], `node-${i + 1}`);
      assert.equal(cols[2], 'active');
      owned += Number(cols[6]);
    });
    assert.equal(owned, 4096);
    const json = await runCli(['status', '--node', cluster.nodes[1]!.url, '--json']);
    assert.equal(json.code, 0);
    assert.equal(JSON.parse(json.stdout).nodes.length, 3);
    const down = await runCli(['status', '--node', 'http://127.0.0.1:1']);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach/);
  });
});
