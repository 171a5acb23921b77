/**
 * A LevelDB node process restarted keeps its data (issue 5 item 5): after a graceful stop, and
 * after kill -9 (writes acknowledged more than the documented flush window before the kill).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

function request(method: string, url: string, body?: string): Promise<{ status: number; body: string; cache: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, cache: res.headers['x-cache'] as string | undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function writeAll(url: string, keys: string[], tag: string): Promise<void> {
  for (let i = 0; i < keys.length; i += 50) {
    const slice = keys.slice(i, i + 50);
    const res = await Promise.all(slice.map((k) => request('PUT', `${url}/api/scores/${k}`, `${tag}:${k}`)));
    for (const r of res) assert.equal(r.status, 204);
  }
}

async function readAll(url: string, keys: string[], tag: string): Promise<number> {
  let ok = 0;
  for (let i = 0; i < keys.length; i += 50) {
    const res = await Promise.all(keys.slice(i, i + 50).map((k) => request('GET', `${url}/api/scores/${k}`)));
    res.forEach((r, j) => {
      if (r.status === 200 && r.body === `${tag}:${keys[i + j]}`) ok++;
    });
  }
  return ok;
}

describe('a LevelDB node restarted', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'jincache-level-'));
  const clusters: TestCluster[] = [];
  const start = async (): Promise<TestCluster> => {
    const c = await startCluster({ nodes: 1, config: { storage: { engine: 'leveldb', path: join(dataDir, '{id}') }, replication: { factor: 1 } } });
    clusters.push(c);
    return c;
  };

  after(async () => {
    agent.destroy();
    for (const c of clusters) await c.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('keeps every write across a graceful restart and a kill -9', async () => {
    const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`);
    let c = await start();
    await writeAll(c.nodes[0]!.url, keys, 'v1');
    // deletes must stay deleted after the restart
    for (const k of keys.slice(0, 100)) assert.equal((await request('DELETE', `${c.nodes[0]!.url}/api/scores/${k}`)).status, 204);
    await c.nodes[0]!.stop('SIGTERM');

    // same id, same data dir (the port differs: the data belongs to the node id)
    c = await start();
    const url = c.nodes[0]!.url;
    assert.equal(await readAll(url, keys.slice(100), 'v1'), keys.length - 100, 'every live key back after a graceful restart');
    for (const k of keys.slice(0, 100)) assert.equal((await request('GET', `${url}/api/scores/${k}`)).status, 404, `${k} stays deleted`);
    assert.match(c.nodes[0]!.log(), /loaded data from disk/);

    await writeAll(url, keys, 'v2');
    await sleep(200); // the documented durability window is a few ms (group commit); 200 ms is far past it
    await c.nodes[0]!.stop('SIGKILL');
    c = await start();
    assert.equal(await readAll(c.nodes[0]!.url, keys, 'v2'), keys.length, 'every acknowledged write back after kill -9');
  });
});
