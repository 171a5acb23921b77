/** PeerClocks: a peer's deadline read on this node's clock is never later than the sender meant, and close to it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { Ping } from '../../peer/messages.ts';
import { DEADLINE_HEADER, FROM_HEADER, pathOf } from '../../peer/protocol.ts';
import { PeerServer } from '../../peer/server.ts';
import { PeerClocks } from './clocks.ts';

test('property: whatever the skew and the one-way delays, a peer time read here is never later than its true local time, and within the best round trip of it', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -10_000, max: 10_000 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 })), { minLength: 1, maxLength: 10 }),
      fc.integer({ min: 1, max: 1_000_000 }),
      (skew, delays, peerTime) => {
        const clocks = new PeerClocks();
        let t = 1_000_000;
        let bestRtt = Infinity;
        for (const [out, back] of delays) {
          // the peer's clock reads local + skew when it answers, `out` ms after the heartbeat left
          clocks.sample('p', t, t + out + skew, t + out + back);
          t += 500;
        }
        for (const [out, back] of delays.slice(-4)) bestRtt = Math.min(bestRtt, out + back);
        const exact = peerTime - skew;
        const local = clocks.toLocal('p', 1_000_000 + peerTime) - 1_000_000;
        assert.ok(local <= exact + 1e-9, `read as ${local}, truly ${exact}`);
        assert.ok(exact - local <= bestRtt + 1e-9, 'earlier by at most the best round trip');
      },
    ),
  );
});

test('a clock that moves (NTP step, faked time) is followed from its next heartbeat', () => {
  const clocks = new PeerClocks();
  clocks.sample('p', 1000, 1001, 1002); // same clock
  clocks.sample('p', 1500, 1501, 1502);
  assert.equal(clocks.toLocal('p', 5000), 4999, 'no skew: earlier by the error bound only');
  clocks.sample('p', 2000, 5001, 2002); // the peer jumped 3 s ahead
  assert.equal(clocks.toLocal('p', 8000), 8000 - 3000 - 1);
  clocks.sample('p', 2500, 2501, 2502); // and back
  assert.equal(clocks.toLocal('p', 5000), 4999);
  assert.equal(clocks.toLocal('unknown', 5000), 5000, 'a peer never measured: unchanged');
  assert.equal(clocks.toLocal(undefined, 5000), 5000);
});

test('a peer request\'s deadline is read on the receiver\'s clock: one from a sender 3 s behind, 1 s ahead on its clock, is 1 s ahead here, not past', async () => {
  const clocks = new PeerClocks();
  const now = Date.now();
  clocks.sample('behind', now, now - 3000, now); // its clock reads 3 s less than ours
  const server = new PeerServer({ localTime: (from, t) => clocks.toLocal(from, t) });
  let seen = 0;
  server.handle(Ping, (_req, meta) => {
    seen = meta.deadline;
    return { id: 'me', hints: 0, table: 0, resp: '', now: Date.now() };
  });
  const listener = http.createServer((req, res) => server.serve(req, res));
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  try {
    // what the sender's PeerClient sends: its own clock's deadline (sent raw: this process's clock is not 3 s behind)
    const res = await fetch(`http://127.0.0.1:${(listener.address() as AddressInfo).port}${pathOf(Ping)}`, {
      method: 'POST',
      headers: { [DEADLINE_HEADER]: String(Date.now() - 3000 + 1000), [FROM_HEADER]: 'behind' },
    });
    assert.equal(res.status, 200);
    const ahead = seen - Date.now();
    assert.ok(ahead > 800 && ahead <= 1000, `deadline ${ahead} ms ahead here`);
  } finally {
    listener.close();
  }
});
