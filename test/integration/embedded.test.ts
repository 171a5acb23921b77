/**
 * The embedded library API (issue 7 item 4): a node inside this test process with a function
 * loader, reached both in-process and over real HTTP.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createNode, isConfigError, isJincacheError, JincacheClient, type EmbeddedNode } from '../../src/index.ts';

/** Resolves when `port` on 127.0.0.1 can be listened on (and releases it again). */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

describe('createNode', () => {
  let node: EmbeddedNode;
  const calls = new Map<string, number>();

  before(async () => {
    node = await createNode({
      groups: [
        {
          name: 'users',
          cacheBytes: 1024 * 1024,
          loader: async (key) => {
            calls.set(key, (calls.get(key) ?? 0) + 1);
            // slow enough that all concurrent misses overlap the one load
            await sleep(100);
            if (key.startsWith('missing')) return null;
            if (key.startsWith('boom')) throw new Error('origin down');
            return key.startsWith('bin') ? Buffer.from([1, 2, 3]) : `user ${key}`;
          },
        },
      ],
    });
  });

  after(async () => {
    await node?.stop();
  });

  test('listens on a free port and advertises the real one', async () => {
    assert.match(node.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(node.url.endsWith(':0'), true);
    const info = (await (await fetch(`${node.url}/cluster`)).json()) as { self: string; nodes: { apiAddress: string }[] };
    assert.equal(info.self, node.id);
    assert.equal(info.nodes[0]!.apiAddress, node.url);
  });

  test('50 concurrent gets of one key call the loader once', async () => {
    const values = await Promise.all(Array.from({ length: 50 }, () => node.getString('users', 'ada')));
    for (const v of values) assert.equal(v, 'user ada');
    assert.equal(calls.get('ada'), 1);
    // cached afterwards
    assert.equal(await node.getString('users', 'ada'), 'user ada');
    assert.equal(calls.get('ada'), 1);
  });

  test('loader returning bytes, null and throwing', async () => {
    assert.deepEqual(await node.get('users', 'bin-1'), Buffer.from([1, 2, 3]));
    assert.equal(await node.get('users', 'missing-1'), null);
    await assert.rejects(node.get('users', 'boom-1'), (e) => isJincacheError(e) && e.code === 'LOADER_FAILED');
    // a failure is not cached: the loader runs again
    await assert.rejects(node.get('users', 'boom-1'));
    assert.equal(calls.get('boom-1'), 2);
  });

  test('put, get, delete in the default group, and over HTTP', async () => {
    await node.put('scores', 'k1', 'v1');
    assert.equal(await node.getString('scores', 'k1'), 'v1');
    const res = await fetch(`${node.url}/api/scores/k1`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'v1');
    assert.equal(await node.delete('scores', 'k1'), true);
    assert.equal(await node.get('scores', 'k1'), null);
    assert.equal(await node.delete('scores', 'k1'), false);
    // a put overrides what the loader would give
    await node.put('users', 'grace', Buffer.from('stored'));
    assert.equal(await node.getString('users', 'grace'), 'stored');
    assert.equal(calls.get('grace'), undefined);
  });

  test('ttlSeconds expires a value', async () => {
    await node.put('scores', 'brief', 'x', { ttlSeconds: 0.2 });
    assert.equal(await node.getString('scores', 'brief'), 'x');
    await sleep(300);
    assert.equal(await node.get('scores', 'brief'), null);
    await assert.rejects(node.put('scores', 'brief', 'x', { ttlSeconds: 0 }), TypeError);
  });

  test('unknown group is a typed error', async () => {
    await assert.rejects(node.get('nope', 'k'), (e) => isJincacheError(e) && e.code === 'UNKNOWN_GROUP');
  });

  test('JincacheClient talks to an embedded node', async () => {
    const client = new JincacheClient({ nodes: [node.url], group: 'users' });
    try {
      assert.equal(await client.getString('ada'), 'user ada');
      await client.put('linus', 'kernel');
      assert.equal(await node.getString('users', 'linus'), 'kernel');
    } finally {
      await client.close();
    }
  });
});

describe('createNode options', () => {
  test('stop() frees the port, twice is harmless', async () => {
    const n = await createNode();
    const port = Number(new URL(n.url).port);
    assert.equal(await canListen(port), false, 'port in use while running');
    await n.stop();
    await n.stop();
    assert.equal(await canListen(port), true, 'port free after stop');
  });

  test('a fixed port and id', async () => {
    const probe = createServer();
    const port = await new Promise<number>((r) => probe.listen(0, '127.0.0.1', () => r((probe.address() as { port: number }).port)));
    await new Promise((r) => probe.close(r));
    const n = await createNode({ id: 'embedded-1', port });
    try {
      assert.equal(n.id, 'embedded-1');
      assert.equal(n.url, `http://127.0.0.1:${port}`);
    } finally {
      await n.stop();
    }
  });

  test('contradictory or invalid options are refused before listening', async () => {
    await assert.rejects(createNode({ peers: ['a=http://127.0.0.1:1'] }), /peers need a fixed port/);
    await assert.rejects(createNode({ groups: [{ name: 'bad name!' }] }), (e) => isConfigError(e) && /groups/.test(e.message));
    await assert.rejects(createNode({ config: { cache: { cache_bytes: 'lots' } } }), (e) => isConfigError(e) && /cache_bytes/.test(e.message));
  });
});
