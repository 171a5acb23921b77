import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeInfo } from '../core/types.ts';
import type { MembershipListener, Registry } from '../discovery/registry.ts';
import { ClusterEvents, type ClusterEventMap } from './events.ts';
import { Membership } from './membership.ts';

const clock = (start = 1000) => {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
};

test('ClusterEvents: typed handlers per kind, a disposer that stops them, and the feed line', () => {
  const c = clock();
  const events = new ClusterEvents(c);
  const joins: ClusterEventMap['join'][] = [];
  const tables: number[] = [];
  const offJoin = events.on('join', (e) => joins.push(e));
  events.on('table', (e) => tables.push(e.version));
  events.emit('join', { node: 'node-4', address: 'http://h:1', zone: 'b' }, 'node-4 joined');
  events.emit('leave', { node: 'node-2', graceful: true }, 'node-2 left');
  events.emit('table', { version: 7, previous: 6, joined: ['node-4'], left: [], cause: 'join' }, 'partition table v7 in force');
  offJoin();
  offJoin(); // twice is harmless
  events.emit('join', { node: 'node-5', address: 'http://h:2', zone: null }, 'node-5 joined');
  assert.deepEqual(joins, [{ node: 'node-4', address: 'http://h:1', zone: 'b' }]);
  assert.deepEqual(tables, [7]);
  // the feed has every line, with its time and kind (or the feed label given)
  c.advance(5);
  events.emit('suspect', { node: 'node-3', health: 'down', from: 'healthy' }, 'node-3: healthy -> down', 'health');
  events.note('handoff', '3 hinted writes replayed to node-3');
  assert.deepEqual(
    events.feed().map((e) => [e.at, e.kind, e.message]),
    [
      [1000, 'join', 'node-4 joined'],
      [1000, 'leave', 'node-2 left'],
      [1000, 'table', 'partition table v7 in force'],
      [1000, 'join', 'node-5 joined'],
      [1005, 'health', 'node-3: healthy -> down'],
      [1005, 'handoff', '3 hinted writes replayed to node-3'],
    ],
  );
});

test('ClusterEvents: a throwing handler neither breaks the emitter nor the other handlers; the feed is bounded', () => {
  const events = new ClusterEvents(clock());
  const seen: string[] = [];
  events.on('recover', () => {
    throw new Error('a listener bug');
  });
  events.on('recover', (e) => seen.push(e.node));
  assert.doesNotThrow(() => events.emit('recover', { node: 'node-2', health: 'healthy', from: 'down' }, 'node-2 recovered'));
  assert.deepEqual(seen, ['node-2']);
  for (let i = 0; i < 500; i++) events.note('status', `line ${i}`);
  const feed = events.feed();
  assert.equal(feed.length, 200);
  assert.equal(feed.at(-1)!.message, 'line 499');
  assert.equal(feed[0]!.message, 'line 300');
});

/** A registry whose membership the test sets. */
function fakeRegistry(initial: NodeInfo[]): Registry & { set(members: NodeInfo[]): void } {
  let members: NodeInfo[] = [];
  const listeners = new Set<MembershipListener>();
  return {
    async start() {
      members = initial;
    },
    async stop() {},
    async update() {},
    members: () => members,
    onChange(l) {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
    set(next) {
      members = next;
      for (const l of listeners) l(next);
    },
  };
}

const info = (id: string, status: NodeInfo['status'] = 'active', zone?: string): NodeInfo => ({ id, address: `http://127.0.0.1:${id.slice(-1)}`, status, last_seen: 0, ...(zone ? { zone } : {}) });

test('Membership emits one join per new member and one leave per departure, graceful when it published leaving first', async () => {
  const c = clock();
  const events = new ClusterEvents(c);
  const registry = fakeRegistry([info('node-1'), info('node-2'), info('node-3')]);
  const m = new Membership({ self: 'node-1', registry, events, clock: c });
  const got: string[] = [];
  events.on('join', (e) => got.push(`join ${e.node} ${e.zone}`));
  events.on('leave', (e) => got.push(`leave ${e.node} ${e.graceful ? 'graceful' : 'gone'}`));
  await m.start(info('node-1'));
  assert.deepEqual(got, [], 'the first view is the cluster as it is, not joins');
  registry.set([info('node-1'), info('node-2'), info('node-3'), info('node-4', 'active', 'b')]);
  // the same membership again (a watch re-read) is no news
  registry.set([info('node-1'), info('node-2'), info('node-3'), info('node-4', 'active', 'b')]);
  registry.set([info('node-1'), info('node-2', 'leaving'), info('node-3'), info('node-4', 'active', 'b')]);
  c.advance(10);
  registry.set([info('node-1'), info('node-3'), info('node-4', 'active', 'b')]);
  registry.set([info('node-1'), info('node-4', 'active', 'b')]);
  assert.deepEqual(got, ['join node-4 b', 'leave node-2 graceful', 'leave node-3 gone']);
  assert.equal(m.leftGracefully('node-2'), true);
  assert.equal(m.leftGracefully('node-3'), false);
  assert.deepEqual(m.departures(), [
    { id: 'node-2', graceful: true, at: 1010 },
    { id: 'node-3', graceful: false, at: 1010 },
  ]);
  // the status change is a line of the feed
  assert.ok(events.feed().some((e) => e.kind === 'status' && e.message === 'node-2 is leaving'));
  // a member that comes back is no longer departed
  registry.set([info('node-1'), info('node-3'), info('node-4', 'active', 'b')]);
  assert.deepEqual(m.departures().map((d) => d.id), ['node-2']);
  assert.deepEqual(got.at(-1), 'join node-3 null');
});
