/**
 * Hot-key mirroring (issue 6): one hot key's reads spread over every node, and no read after an
 * acknowledged write returns the old value.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { partitionOf } from '../../src/core/placement/hash.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { clusterOf, waitFor } from '../helpers/wait.ts';

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

function request(method: string, url: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('hot-key mirroring', () => {
  let cluster: TestCluster;
  let hotKey = '';
  let stop = false;
  let driver: Promise<void> = Promise.resolve();

  before(async () => {
    cluster = await startCluster({ nodes: 3, config: { load: { window: '2s' } } });
    const owners: string[] = (await clusterOf(cluster.nodes[0]!.url)).partitions.owners;
    for (let i = 0; hotKey === ''; i++) if (owners[partitionOf(`hot:${i}`, 4096)] === 'node-1') hotKey = `hot:${i}`;
  });

  after(async () => {
    stop = true;
    await driver;
    agent.destroy();
    await cluster?.stop();
  });

  test('reads of one hot key are served by every node, not only its owner', async () => {
    assert.equal((await request('PUT', `${cluster.nodes[1]!.url}/api/scores/${hotKey}`, 'v0')).status, 204);
    // a steady read load through every node, bounded by `stop` and a 60 s cap
    const end = Date.now() + 60_000;
    driver = (async () => {
      let i = 0;
      while (!stop && Date.now() < end) {
        await Promise.all(cluster.nodes.map((n) => request('GET', `${n.url}/api/scores/${hotKey}`).catch(() => null)));
        if (++i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const hits = async (i: number): Promise<number> => (await clusterOf(cluster.nodes[i]!.url)).mirrors.hits as number;
    await waitFor('node-2 and node-3 serve the hot key from their mirrors', async () => (await hits(1)) > 200 && (await hits(2)) > 200, 15_000, 200);
    const owner = await clusterOf(cluster.nodes[0]!.url);
    assert.ok(owner.mirrors.pushed >= 1, 'the owner mirrors the key');
    assert.equal(owner.mirrors.hits, 0, 'the owner reads its own copy');
    // over a fresh interval, the owner serves about its own third of the reads, not all of them
    const ownerServed = (c: any): number => (c.load?.qps?.get ?? 0) as number;
    const h1 = await hits(1);
    const h2 = await hits(2);
    await new Promise((r) => setTimeout(r, 2000));
    const spread = (await hits(1)) - h1 + ((await hits(2)) - h2);
    const servedByOwner = ownerServed(await clusterOf(cluster.nodes[0]!.url)) * 2;
    assert.ok(spread > servedByOwner, `mirrors served ${spread} reads in 2 s, the owner ~${Math.round(servedByOwner)}`);
  });

  test('no read after an acknowledged write returns the old value', async () => {
    for (let i = 1; i <= 60; i++) {
      const writer = cluster.nodes[i % 3]!;
      const value = `v${i}`;
      const put = await request('PUT', `${writer.url}/api/scores/${hotKey}`, value);
      assert.equal(put.status, 204);
      const reads = await Promise.all(cluster.nodes.map((n) => request('GET', `${n.url}/api/scores/${hotKey}`)));
      reads.forEach((r, n) => assert.equal(r.body, value, `write ${i} at ${writer.id}, then read at node-${n + 1}`));
      // let mirrors be refreshed between writes, so each write really has mirrors to invalidate
      await new Promise((r) => setTimeout(r, 60));
    }
    // and the mirrors are still in use afterwards
    const c = await clusterOf(cluster.nodes[2]!.url);
    assert.ok(c.mirrors.held >= 0);
  });
});
