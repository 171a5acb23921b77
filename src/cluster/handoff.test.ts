import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Handoff, HintedHandoff, HintQueue } from './handoff.ts';
import type { WireRecord } from '../peer/codec.ts';
import type { NodeInfo } from '../core/types.ts';
import type { PartitionTable } from '../core/placement/table.ts';
import { PeerServer } from '../peer/server.ts';
import { FakeNetwork } from '../peer/testing.ts';
import { Peers } from './peers.ts';
import type { Members } from './membership.ts';

const rec = (key: string, version: number, value: string | null = `${key}@${version}`): WireRecord => ({
  group: 'g',
  key,
  value: value === null ? null : Buffer.from(value),
  version,
  expiresAt: 0,
});

describe('HintQueue', () => {
  test('one hint per key: the newest version wins whatever the arrival order', () => {
    const q = new HintQueue();
    q.add('p', [rec('k', 5), rec('k', 3)]);
    q.add('p', [rec('k', 4)]);
    assert.equal(q.pending('p'), 1);
    assert.equal(q.take('p', 10)[0]!.version, 5);
    q.add('p', [rec('x', 1), rec('x', 2, null)]);
    assert.equal(q.take('p', 10)[0]!.value, null, 'a newer delete replaces the value');
  });

  test('replay order is oldest first; a rewritten key moves to the newest end', () => {
    const q = new HintQueue();
    q.add('p', [rec('a', 1), rec('b', 2), rec('c', 3)]);
    q.add('p', [rec('a', 4)]);
    assert.deepEqual(q.take('p', 10).map((r) => r.key), ['b', 'c', 'a']);
    assert.deepEqual(q.take('p', 10), []);
  });

  test('bounded per peer by count and bytes: the oldest are dropped and counted', () => {
    const q = new HintQueue({ maxRecords: 3 });
    const dropped = q.add('p', [rec('a', 1), rec('b', 2), rec('c', 3), rec('d', 4), rec('e', 5)]);
    assert.equal(dropped, 2);
    assert.deepEqual(q.stats().p, { pending: 3, bytes: q.stats().p!.bytes, dropped: 2 });
    assert.deepEqual(q.take('p', 10).map((r) => r.key), ['c', 'd', 'e']);
    const small = new HintQueue({ maxBytes: 100 });
    small.add('p', [rec('a', 1, 'x'.repeat(60)), rec('b', 2, 'y'.repeat(60))]);
    assert.deepEqual(small.take('p', 10).map((r) => r.key), ['b']);
    assert.equal(new HintQueue().add('other', [rec('a', 1)]), 0, 'peers are bounded separately');
  });

  test('restore puts failed hints back ahead of newer ones, unless superseded', () => {
    const q = new HintQueue();
    q.add('p', [rec('a', 1), rec('b', 2)]);
    const batch = q.take('p', 2);
    q.add('p', [rec('c', 3), rec('b', 9)]);
    q.restore('p', batch);
    const out = q.take('p', 10);
    assert.deepEqual(out.map((r) => `${r.key}${r.version}`), ['a1', 'c3', 'b9']);
  });
});

describe('Handoff', () => {
  test('replays in batches oldest first; a failed batch stays queued for the next replay', async () => {
    const q = new HintQueue();
    q.add('p', [rec('a', 1), rec('b', 2), rec('c', 3)]);
    const sent: string[][] = [];
    let fail = true;
    const h = new Handoff({
      queue: q,
      batchSize: 2,
      send: async (_peer, records) => {
        if (fail) throw new Error('unreachable');
        sent.push(records.map((r) => r.key));
      },
    });
    assert.equal(await h.replay('p'), 0);
    assert.equal(q.pending('p'), 3);
    fail = false;
    assert.equal(await h.replay('p'), 3);
    assert.deepEqual(sent, [['a', 'b'], ['c']]);
    assert.equal(q.pending('p'), 0);
  });

  test('one replay per peer at a time', async () => {
    const q = new HintQueue();
    q.add('p', [rec('a', 1)]);
    let calls = 0;
    const h = new Handoff({ queue: q, send: async () => void calls++ });
    const [x, y] = await Promise.all([h.replay('p'), h.replay('p')]);
    assert.equal(x, 1);
    assert.equal(y, 1);
    assert.equal(calls, 1);
  });
});

describe('HintedHandoff', () => {
  test('settledSince counts a heartbeat answer from when its heartbeat was sent: one that waited in the socket through a pause speaks for before it', () => {
    const infos: NodeInfo[] = ['a', 'b'].map((id) => ({ id, address: id, status: 'active', last_seen: 0 }));
    const members: Members = { self: 'a', member: (id) => infos.find((m) => m.id === id), list: () => infos, onChange: () => () => {} };
    const h = new HintedHandoff({
      self: 'a',
      peers: new Peers({ client: new FakeNetwork(), members, tableVersion: () => 1, breakers: { call: (_p, fn) => fn() } }),
      members,
      tables: { table: () => ({ version: 1, assignments: [['a', 'b']] }) as unknown as PartitionTable },
      usable: () => true,
      local: { apply: () => 0 },
      server: new PeerServer(),
      requestTimeoutMs: () => 500,
      onDropped: () => {},
    });
    const stallEnd = Date.now();
    // b answered "no hints for you" to a heartbeat sent before the pause; a reads it after
    h.noteHeld('b', 0, 1, stallEnd - 3000);
    assert.equal(h.settledSince(stallEnd), false, 'b may have acknowledged writes without a since');
    h.noteHeld('b', 0, 1, stallEnd + 1);
    assert.equal(h.settledSince(stallEnd), true);
  });
});
