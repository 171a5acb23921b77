import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePeers } from './static-registry.ts';

test('parsePeers reads ids, addresses and zones; an "=" inside the URL is not an id', () => {
  const peers = parsePeers(['n1=http://127.0.0.1:8001?zone=a', 'http://127.0.0.1:8002?zone=b', 'n3=127.0.0.1:8003', '127.0.0.1:8004'], 5);
  assert.deepEqual(
    peers.map((p) => [p.id, p.address, p.zone ?? null]),
    [
      ['n1', 'http://127.0.0.1:8001', 'a'],
      ['127.0.0.1:8002', 'http://127.0.0.1:8002', 'b'],
      ['n3', 'http://127.0.0.1:8003', null],
      ['127.0.0.1:8004', 'http://127.0.0.1:8004', null],
    ],
  );
  assert.ok(peers.every((p) => p.status === 'active' && p.last_seen === 5));
});
