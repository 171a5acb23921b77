/**
 * EtcdElection, EtcdTableStore and EtcdConfigWatcher against a real single-member etcd.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTable, nextTable, type PartitionTable } from '../../src/core/placement/table.ts';
import { createEtcdClient } from '../../src/discovery/etcd-client.ts';
import { EtcdConfigWatcher } from '../../src/discovery/etcd-config.ts';
import { EtcdElection } from '../../src/discovery/etcd-election.ts';
import { EtcdTableStore } from '../../src/discovery/etcd-table-store.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';

const ELECTION_URL = new URL('../../src/discovery/etcd-election.ts', import.meta.url).href;

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await check()) return Date.now() - start;
    await sleep(10);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
}

let etcd: EtcdCluster;
let prefixCounter = 0;
const freshPrefix = (): string => `/jc${++prefixCounter}`;

before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

describe('EtcdElection', { timeout: 30_000 }, () => {
  test('fails over within ~TTL when the leader process is killed -9 (TTL 2 s)', async () => {
    const prefix = freshPrefix();
    const code = `
      const { EtcdElection } = await import(${JSON.stringify(ELECTION_URL)});
      const e = new EtcdElection({ endpoints: ${JSON.stringify(etcd.endpoints)}, prefix: ${JSON.stringify(prefix)}, nodeId: 'victim', ttlSeconds: 2 });
      e.onChange(() => { if (e.isLeader()) process.stdout.write('leader\\n'); });
      await e.start();
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const b = new EtcdElection({ endpoints: etcd.endpoints, prefix, nodeId: 'b', ttlSeconds: 2 });
    const watcher = new EtcdElection({ endpoints: etcd.endpoints, prefix, nodeId: 'w', ttlSeconds: 2 });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('leader') && resolve());
        child.once('exit', (c) => reject(new Error(`child exited ${c}: ${stderr}`)));
      });
      await b.start();
      await watcher.start();
      await waitFor('everyone sees the victim lead', () => b.leader() === 'victim' && watcher.leader() === 'victim', 2000);
      assert.equal(b.isLeader(), false);

      const seen: (string | null)[] = [];
      watcher.onChange((l) => seen.push(l));
      const killedAt = Date.now();
      process.kill(child.pid!, 'SIGKILL');
      await waitFor('b becomes leader', () => b.isLeader(), 5000);
      const ms = Date.now() - killedAt;
      assert.ok(ms <= 3500, `failover took ${ms} ms`);
      await waitFor('the watcher sees b lead', () => watcher.leader() === 'b', 1000);
      assert.equal(watcher.isLeader(), false);
      assert.equal(seen.at(-1), 'b');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await Promise.all([b.stop(), watcher.stop()]);
    }
  });

  test('nodes that campaign at the same moment agree on the leader (etcd3 observer corrected)', async () => {
    // etcd3's observer, started with no candidate, can settle on a candidate that is not the
    // leader and keep it: EtcdElection checks it against etcd. Several rounds of 4 nodes
    // campaigning at once: every node must name the one that is elected.
    for (let round = 0; round < 6; round++) {
      const prefix = freshPrefix();
      const nodes = ['a', 'b', 'c', 'd'].map((id) => new EtcdElection({ endpoints: etcd.endpoints, prefix, nodeId: id, ttlSeconds: 30 }));
      try {
        await Promise.all(nodes.map((n) => n.start()));
        await waitFor('one leader elected', () => nodes.filter((n) => n.isLeader()).length === 1, 5000);
        const id = ['a', 'b', 'c', 'd'][nodes.findIndex((n) => n.isLeader())]!;
        await waitFor(`round ${round}: every node names ${id}`, () => nodes.every((n) => n.leader() === id), 3000);
      } finally {
        await Promise.all(nodes.map((n) => n.stop()));
      }
    }
  });

  test('stop() resigns: leadership hands over in well under a second', async () => {
    const prefix = freshPrefix();
    const a = new EtcdElection({ endpoints: etcd.endpoints, prefix, nodeId: 'a', ttlSeconds: 30 });
    const b = new EtcdElection({ endpoints: etcd.endpoints, prefix, nodeId: 'b', ttlSeconds: 30 });
    try {
      await a.start();
      await waitFor('a leads', () => a.isLeader(), 2000);
      await b.start();
      await waitFor('b sees a', () => b.leader() === 'a', 1000);
      const t = Date.now();
      await a.stop();
      await waitFor('b leads', () => b.isLeader(), 1000);
      assert.ok(Date.now() - t < 1000, `handover took ${Date.now() - t} ms (TTL is 30 s)`);
      assert.equal(a.isLeader(), false);
      assert.equal(a.leader(), null, 'a stopped election knows no leader');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('campaigns again after its lease is lost', async () => {
    const prefix = freshPrefix();
    const a = new EtcdElection({ endpoints: etcd.endpoints, prefix, nodeId: 'a', ttlSeconds: 2 });
    const admin = createEtcdClient({ endpoints: etcd.endpoints });
    try {
      await a.start();
      await waitFor('a leads', () => a.isLeader(), 2000);
      const changes: (string | null)[] = [];
      a.onChange((l) => changes.push(l));
      // Revoke the campaign's lease behind its back (what an expiry during an outage looks like).
      const kvs = (await admin.getAll().prefix(`${prefix}/election/leader/`).exec()).kvs;
      assert.equal(kvs.length, 1);
      const leaseId = kvs[0]!.lease;
      await admin.leaseClient.leaseRevoke({ ID: leaseId });
      await waitFor('a loses leadership', () => !a.isLeader(), 3000);
      await waitFor('a leads again with a new lease', () => a.isLeader(), 5000);
      const after = (await admin.getAll().prefix(`${prefix}/election/leader/`).exec()).kvs;
      assert.equal(after.length, 1);
      assert.notEqual(after[0]!.lease, leaseId);
      assert.equal(changes.at(-1), 'a');
    } finally {
      await a.stop();
      admin.close();
    }
  });
});

describe('EtcdTableStore', { timeout: 15_000 }, () => {
  const members = [
    { id: 'a', weight: 1 },
    { id: 'b', weight: 1 },
  ];
  const clock = { now: () => 1_700_000_000_000 };

  test('compareAndSwap is a version CAS; conflicts return false; onChange delivers versions', async () => {
    const prefix = freshPrefix();
    const s1 = new EtcdTableStore({ endpoints: etcd.endpoints, prefix });
    const s2 = new EtcdTableStore({ endpoints: etcd.endpoints, prefix });
    try {
      assert.equal(await s1.load(), null);
      const v1 = createTable(members, { partitionCount: 64, clock });
      const v1other = createTable([{ id: 'z', weight: 1 }], { partitionCount: 64, clock });
      assert.equal(await s1.compareAndSwap(0, v1), true);
      assert.equal(await s2.compareAndSwap(0, v1other), false, 'second writer of version 1 loses');
      assert.deepEqual(await s2.load(), v1);

      const seen: PartitionTable[] = [];
      s2.onChange((t) => seen.push(t));
      await s2.start();
      assert.deepEqual(seen.map((t) => t.version), [1], 'the stored table is delivered when the watch starts');

      const v2 = nextTable(v1, [...members, { id: 'c', weight: 1 }], { clock });
      const v2other = nextTable(v1, [members[0]!], { clock });
      assert.equal(await s1.compareAndSwap(1, v2), true);
      assert.equal(await s2.compareAndSwap(1, v2other), false, 'stale expectedVersion loses');
      assert.equal(await s2.compareAndSwap(0, v2other), false, 'expecting "none stored" loses');
      await waitFor('s2 sees version 2', () => seen.length === 2, 2000);
      assert.deepEqual(seen[1], v2);
      assert.deepEqual(await s1.load(), v2);

      await assert.rejects(s1.compareAndSwap(2, v2), RangeError, 'a version must go up');
    } finally {
      await Promise.all([s1.stop(), s2.stop()]);
    }
  });

  test('a table write guarded by the leader key fails once that leadership is gone', async () => {
    const prefix = freshPrefix();
    const store = new EtcdTableStore({ endpoints: etcd.endpoints, prefix });
    const leader = new EtcdElection({ endpoints: etcd.endpoints, prefix, nodeId: 'a', ttlSeconds: 30 });
    try {
      await leader.start();
      await waitFor('a leads', () => leader.isLeader(), 5000);
      const key = leader.leaderKey();
      assert.ok(key !== null && key.startsWith(`${prefix}/election/`), `leader key ${key}`);
      const v1 = createTable(members, { partitionCount: 64, clock });
      assert.equal(await store.compareAndSwap(0, v1, key!), true, 'the leader writes');
      await leader.stop(); // resigns: the key is deleted with its lease
      assert.equal(leader.leaderKey(), null);
      const v2 = nextTable(v1, [members[0]!], { clock });
      assert.equal(await store.compareAndSwap(1, v2, key!), false, 'a deposed leader cannot write');
      assert.equal((await store.load())?.version, 1);
      assert.equal(await store.compareAndSwap(1, v2), true, 'the version CAS alone would have let it');
    } finally {
      await leader.stop();
      await store.stop();
    }
  });
});

describe('EtcdConfigWatcher', { timeout: 15_000 }, () => {
  test('sees set and delete live; get/set round-trip', async () => {
    const prefix = freshPrefix();
    const writer = new EtcdConfigWatcher({ endpoints: etcd.endpoints, prefix });
    const w = new EtcdConfigWatcher({ endpoints: etcd.endpoints, prefix });
    try {
      await writer.set('cache', '{"cache_bytes":1000}');
      await w.start();
      assert.deepEqual([...w.current()], [['cache', '{"cache_bytes":1000}']]);

      const events: [string, string | null][] = [];
      w.onChange((group, raw) => events.push([group, raw]));
      await writer.set('timeouts', '{"request_ms":250}');
      await waitFor('set seen', () => events.length === 1, 2000);
      assert.deepEqual(events[0], ['timeouts', '{"request_ms":250}']);
      assert.equal(await writer.get('timeouts'), '{"request_ms":250}');

      assert.equal(await writer.delete('cache'), true);
      await waitFor('delete seen', () => events.length === 2, 2000);
      assert.deepEqual(events[1], ['cache', null]);
      assert.deepEqual([...w.current()], [['timeouts', '{"request_ms":250}']]);
      assert.equal(await writer.get('cache'), null);
      await assert.rejects(writer.set('a/b', '{}'), TypeError);
    } finally {
      await Promise.all([w.stop(), writer.stop()]);
    }
  });
});
