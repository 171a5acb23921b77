import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupStore } from '../cache/store.ts';
import type { PeerHealth } from '../cluster/health/classifier.ts';
import type { Members } from '../cluster/membership.ts';
import { partitionOf, slotOf } from '../core/placement/hash.ts';
import { createTable, nextTable, type PartitionTable } from '../core/placement/table.ts';
import type { NodeInfo } from '../core/types.ts';
import { RespCluster, TABLE_SETTLE_MS } from './resp-cluster.ts';

const PARTITIONS = 64;

function setup(infos: NodeInfo[]) {
  let now = 1_000_000;
  const clock = { now: () => now };
  let table: PartitionTable = createTable(infos.map((i) => ({ id: i.id, weight: 1 })), { partitionCount: PARTITIONS, clock });
  const listeners: ((next: PartitionTable, prev: PartitionTable) => void)[] = [];
  const tables = {
    table: () => table,
    reached: async () => true,
    onChange(l: (next: PartitionTable, prev: PartitionTable) => void) {
      listeners.push(l);
      return () => void listeners.splice(listeners.indexOf(l), 1);
    },
  };
  const byId = new Map(infos.map((i) => [i.id, i]));
  const members: Members = { self: 'a', member: (id) => byId.get(id), list: () => [...byId.values()], onChange: () => () => {} };
  const health = new Map<string, PeerHealth>();
  const detector = { usable: (id: string) => (health.get(id) ?? 'healthy') === 'healthy', health: (id: string) => health.get(id) ?? 'healthy' };
  const store = new GroupStore({ name: 'g', maxBytes: 1 << 20, clock, partitionOf: (k) => partitionOf(k, PARTITIONS) });
  const view = new RespCluster({ self: 'a', address: '10.0.0.1:6380', tables, members, detector, redirects: () => 'auto', store: () => store, clock });
  return {
    view,
    store,
    health,
    advance: (ms: number) => void (now += ms),
    changeTable() {
      const prev = table;
      table = nextTable(prev, prev.members, { clock });
      for (const l of listeners) l(table, prev);
    },
  };
}

const info = (id: string, port: number, resp?: string): NodeInfo => ({ id, address: `http://10.0.0.${port - 8000}:${port}`, status: 'active', last_seen: 0, ...(resp !== undefined ? { resp_address: resp } : {}) });

test('RESP addresses: this node its own, etcd members from their registration, static peers from their heartbeat', () => {
  const { view } = setup([info('a', 8001), info('b', 8002, '10.0.0.2:6381'), info('c', 8003), info('d', 8004, '[::1]:6383')]);
  assert.deepEqual(view.node('a'), { id: 'a', host: '10.0.0.1', port: 6380, busPort: 8001, health: 'online', pongAt: 1_000_000 });
  assert.deepEqual(view.node('b'), { id: 'b', host: '10.0.0.2', port: 6381, busPort: 8002, health: 'online', pongAt: 0 });
  assert.equal(view.node('c'), undefined, 'a static peer not heard from yet is not listed');
  assert.equal(view.node('d')!.host, '::1', 'an IPv6 address loses its brackets, as Redis names it');
  assert.equal(view.node('nobody'), undefined);
  view.onPingAnswer('c', 1, '10.0.0.3:6382');
  assert.deepEqual(view.node('c'), { id: 'c', host: '10.0.0.3', port: 6382, busPort: 8003, health: 'online', pongAt: 1_000_000 });
  // a peer without a RESP listener answers '' and stays unlisted; garbage is not listed either
  view.onPingAnswer('c', 1, '');
  assert.equal(view.node('c'), undefined);
  view.onPingAnswer('c', 1, 'no-port');
  assert.equal(view.node('c'), undefined);
  assert.deepEqual(view.nodes().map((n) => n.id), ['a', 'b', 'd']);
});

test('health: usable is online, down is fail, anything else unusable is pfail', () => {
  const { view, health } = setup([info('a', 8001), info('b', 8002, '10.0.0.2:6381')]);
  for (const [h, want] of [['healthy', 'online'], ['suspected', 'pfail'], ['slow', 'pfail'], ['down', 'fail']] as const) {
    health.set('b', h);
    assert.equal(view.node('b')!.health, want, h);
  }
});

test('current: for a second after a table change, only nodes heard on the new table', () => {
  const t = setup([info('a', 8001), info('b', 8002, '10.0.0.2:6381')]);
  t.advance(TABLE_SETTLE_MS);
  assert.equal(t.view.current('b'), true, 'a table in force for a second: every node');
  t.changeTable();
  assert.equal(t.view.current('b'), false);
  t.view.onPingAnswer('b', t.view.table().version - 1, '10.0.0.2:6381');
  assert.equal(t.view.current('b'), false, 'heard on the old table');
  t.view.onPingAnswer('b', t.view.table().version, '10.0.0.2:6381');
  assert.equal(t.view.current('b'), true);
  t.changeTable();
  assert.equal(t.view.current('b'), false);
  t.advance(TABLE_SETTLE_MS - 1);
  assert.equal(t.view.current('b'), false);
  t.advance(1);
  assert.equal(t.view.current('b'), true);
});

test('keys in a slot: live values of this node\'s copy, tombstones and other slots left out', () => {
  const { view, store } = setup([info('a', 8001)]);
  const put = (k: string, value: Buffer | null) => store.apply(k, { value, version: 1, expiresAt: 0 });
  for (const k of ['{u}1', '{u}2', '{u}3', 'x']) put(k, Buffer.from('v'));
  put('{u}gone', null);
  const slot = slotOf('u');
  assert.equal(view.countKeysInSlot(slot), 3);
  assert.deepEqual(view.keysInSlot(slot, 10).sort(), ['{u}1', '{u}2', '{u}3']);
  assert.equal(view.keysInSlot(slot, 2).length, 2);
  assert.deepEqual(view.keysInSlot(slot, 0), []);
  assert.equal(view.countKeysInSlot((slot + 1) % 16384), 0);
});
