/** Hot-key mirrors across an ownership change: only the owner's mirror is served, and a new owner drops the old one's first. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Group } from '../cache/group.ts';
import type { PartitionTable } from '../core/placement/table.ts';
import type { NodeId, NodeInfo } from '../core/types.ts';
import { HybridClock } from '../core/version.ts';
import { MirrorInvalidate } from '../peer/messages.ts';
import { PeerServer } from '../peer/server.ts';
import { FakeNetwork } from '../peer/testing.ts';
import { LocalData } from './local-data.ts';
import type { Members } from './membership.ts';
import { Mirror } from './mirror.ts';

const G = 'g';
const clock = { now: () => Date.now() };

function table(version: number, holders: NodeId[]): PartitionTable {
  return { version, partitionCount: 1, replicationFactor: holders.length, members: ['a', 'b', 'c'].map((id) => ({ id, weight: 1 })), assignments: [holders], createdAt: 0 };
}

function cluster() {
  const net = new FakeNetwork();
  const infos: NodeInfo[] = ['a', 'b', 'c'].map((id) => ({ id, address: id, status: 'active', last_seen: 0 }));
  const members = (self: NodeId): Members => ({ self, member: (id) => infos.find((m) => m.id === id), list: () => infos, onChange: () => () => {} });
  const nodes = new Map<NodeId, { mirror: Mirror; local: LocalData; table: PartitionTable }>();
  /** "x>y": x's failure detector calls y unusable. */
  const unusable = new Set<string>();
  for (const id of ['a', 'b', 'c']) {
    const groups = new Map([[G, new Group({ name: G, maxBytes: 1 << 20, clock, partitionOf: () => 0 })]]);
    const local = new LocalData({ groups, hlc: new HybridClock(clock), clock });
    const server = new PeerServer();
    net.attach(id, server);
    const node = { local, table: table(1, ['a', 'b']) } as { mirror: Mirror; local: LocalData; table: PartitionTable };
    node.mirror = new Mirror({
      self: id,
      members: members(id),
      table: () => node.table,
      partitionOf: () => 0,
      usable: (peer) => !unusable.has(`${id}>${peer}`),
      local,
      groups,
      client: net,
      server,
      selfTrusted: () => true,
      hotKeys: () => [{ group: G, key: 'k', qps: 100 }],
      intervalMs: 10,
    });
    nodes.set(id, node);
  }
  const n = (id: NodeId) => nodes.get(id)!;
  n('a').local.applyOne({ group: G, key: 'k', value: Buffer.from('old'), version: 5, expiresAt: 0 });
  return { net, n, unusable };
}

const text = (r: { value: Buffer } | undefined): string | undefined => r?.value.toString();

/** Let a, the owner, push its hot key for a while, then stop. */
async function pushFromA(c: ReturnType<typeof cluster>): Promise<void> {
  c.n('a').mirror.start();
  await sleep(50);
  c.n('a').mirror.stop();
}

test('a mirror is served only while the node that pushed it is the key\'s owner', async () => {
  const c = cluster();
  await pushFromA(c);
  assert.equal(text(c.n('c').mirror.get(G, 'k')), 'old', 'pushed by the owner');
  c.n('c').table = table(2, ['b', 'a']); // the partition moved to b
  assert.equal(c.n('c').mirror.get(G, 'k'), undefined, 'a no longer owns it: its mirror is dropped');
  c.n('c').table = table(3, ['a', 'b']);
  assert.equal(c.n('c').mirror.get(G, 'k'), undefined, 'and stays dropped');
});

test('for a lease after it became the owner, a write at the new owner first drops the key\'s mirrors everywhere, even on nodes still on the old table', async () => {
  const c = cluster();
  c.n('b').mirror.waits(G, 'k'); // b has seen table 1
  await pushFromA(c);
  assert.equal(text(c.n('c').mirror.get(G, 'k')), 'old');
  c.n('b').table = table(2, ['b', 'a']); // b has the new table; c not yet
  assert.equal(c.n('b').mirror.waits(G, 'k'), true, 'b must invalidate before it acknowledges');
  await c.n('b').mirror.beforeWrite(G, 'k', 9, Date.now() + 500);
  assert.equal(c.net.count(MirrorInvalidate), 2, 'to a and c');
  assert.equal(c.n('c').mirror.get(G, 'k'), undefined, 'c, still on table 1, serves the old owner\'s mirror no more');
});

test('a mirror whose owner this node cannot reach is not served, and a write coordinated around that owner drops its mirrors everywhere first', async () => {
  const c = cluster();
  await pushFromA(c);
  assert.equal(text(c.n('b').mirror.get(G, 'k')), 'old', 'b holds a\'s mirror');
  // a keeps reaching its peers, they no longer reach a: writes of k are coordinated by b
  c.unusable.add('c>a');
  assert.equal(c.n('c').mirror.get(G, 'k'), undefined, 'c cannot reach the owner: its mirror is not served');
  c.unusable.add('b>a');
  assert.equal(c.n('b').mirror.waits(G, 'k'), true, 'b holds a mirror of k: it must drop it before it acknowledges');
  await c.n('b').mirror.beforeWrite(G, 'k', 9, Date.now() + 500);
  assert.equal(c.net.count(MirrorInvalidate), 1, 'to c (b cannot reach a)');
  c.unusable.delete('b>a');
  c.unusable.delete('c>a');
  assert.equal(c.n('b').mirror.get(G, 'k'), undefined, 'dropped at b');
  assert.equal(c.n('c').mirror.get(G, 'k'), undefined, 'dropped at c');
});

test('a node left out of a later push (its owner now distrusts it) still has its earlier copy dropped by the next write', async () => {
  const c = cluster();
  c.n('a').mirror.start();
  await sleep(50);
  assert.equal(text(c.n('c').mirror.get(G, 'k')), 'old', 'c got a push');
  c.unusable.add('a>c'); // a's detector now distrusts c; c still serves what it got
  await sleep(50); // more pushes, to b only
  await c.n('a').mirror.beforeWrite(G, 'k', 9, Date.now() + 500);
  c.n('a').mirror.stop();
  assert.equal(c.n('c').mirror.get(G, 'k'), undefined, 'c\'s earlier copy was invalidated too');
});
