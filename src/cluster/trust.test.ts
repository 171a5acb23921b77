import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PartitionTable } from '../core/placement/table.ts';
import { DRAIN_IDLE_MS, SelfTrust, type SelfTrustOptions } from './trust.ts';

/** A table view whose version the test sets; reached() resolves when it gets there. */
function tables(version: number) {
  const view = {
    version,
    table: () => ({ version: view.version }) as PartitionTable,
    reached: async (v: number, timeoutMs: number) => {
      const end = Date.now() + timeoutMs;
      while (view.version < v && Date.now() < end) await sleep(5);
      return view.version >= v;
    },
  };
  return view;
}

class ManualClock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
}

function trust(over: Partial<SelfTrustOptions> & { tables: SelfTrustOptions['tables'] }): SelfTrust {
  const t = new SelfTrust({ self: 'a', clock: { now: () => Date.now() }, stallMs: 100, settledSince: () => true, settleTimeoutMs: 200, ...over });
  t.start(); // ticks, so the tests' own waits are not stalls
  return t;
}

async function until(what: string, f: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await sleep(5);
  }
}

describe('SelfTrust', () => {
  test('a gap between ticks longer than stallMs is a stall, seen on the request path before any timer', () => {
    const clock = new ManualClock();
    const t = new SelfTrust({ self: 'a', clock, stallMs: 100, tables: tables(1), settledSince: () => false });
    assert.equal(t.trusted(), true);
    clock.t += 101; // the process was stopped: no tick ran
    assert.equal(t.trusted(), false);
    assert.equal(t.current().kind, 'recovering');
    t.stop();
  });

  test('requests read after a stall, until the event loop has waited for I/O again, may have arrived when it began', () => {
    const clock = new ManualClock();
    let idle = 0;
    const t = new SelfTrust({ self: 'a', clock, stallMs: 100, tables: tables(1), settledSince: () => false, loopIdleMs: () => idle });
    const before = clock.t;
    assert.equal(t.receivedSince(), before, 'no stall: a request arrived now');
    clock.t += 6000; // SIGSTOP inside the I/O wait: the loop counts the stop as idle before anything runs
    idle += 6000;
    assert.equal(t.receivedSince(), before, 'the first request read after the pause may have been sent right after it began');
    assert.equal(t.current().kind, 'recovering', 'and the stall was noticed on that path');
    clock.t += 200; // the backlog is read over many turns, none of which waits
    idle += 0.001;
    assert.equal(t.receivedSince(), before, 'still reading the backlog: the loop has not waited for I/O');
    idle += DRAIN_IDLE_MS;
    assert.equal(t.receivedSince(), clock.t, 'the loop waited: everything queued during the pause is read');
    t.stop();
  });

  test('stalledSince: a call started before a stall ended may have timed out because of it; one started after, not', () => {
    const clock = new ManualClock();
    const t = new SelfTrust({ self: 'a', clock, stallMs: 100, tables: tables(1), settledSince: () => false, loopIdleMs: () => 0 });
    const early = clock.t + 50;
    assert.equal(t.stalledSince(early - 50), false);
    clock.t += 6000;
    assert.equal(t.stalledSince(early), true, 'in flight across the stall');
    clock.t += 10;
    assert.equal(t.stalledSince(clock.t), false, 'started after the stall was noticed');
    t.stop();
  });

  test('a stall during the recovery restarts it: the recovery counts from the later stall', () => {
    const clock = new ManualClock();
    const t = new SelfTrust({ self: 'a', clock, stallMs: 100, tables: tables(1), settledSince: () => false, loopIdleMs: () => 0 });
    t.distrust('the etcd lease was lost');
    const first = t.current();
    assert.equal(first.kind, 'recovering');
    clock.t += 500; // no tick ran: a second stall while recovering
    assert.equal(t.trusted(), false);
    const second = t.current();
    assert.ok(second.kind === 'recovering' && first.kind === 'recovering' && second.at > first.at, 'the peers must answer again after this one');
    t.stop();
  });

  test('recovery confirms the table in force (waiting for it to arrive) and the peers\' hints', async () => {
    const view = tables(3);
    let settled = false;
    const t = trust({ tables: view, confirmTable: async () => 4, settledSince: () => settled });
    t.distrust('test');
    await sleep(50);
    assert.equal(t.trusted(), false, 'table v4 is in force, this node has v3');
    view.version = 4;
    await sleep(50);
    assert.equal(t.trusted(), false, 'peers not settled yet');
    settled = true;
    await until('trusted again', () => t.trusted());
    assert.equal(t.recoveries, 1);
    t.stop();
  });

  test('etcd unreachable: a majority of peers answering with this table (none newer) confirms it instead', async () => {
    let agreed = false;
    const t = trust({ tables: tables(5), confirmTable: async () => Promise.reject(new Error('etcd down')), tableAgreedSince: (_t, mine) => agreed && mine === 5 });
    t.distrust('the etcd lease was lost');
    await sleep(150);
    assert.equal(t.trusted(), false, 'neither etcd nor the peers confirmed');
    agreed = true;
    await until('trusted again', () => t.trusted(), 4000);
    t.stop();
  });

  test('tableSeen: a newer table that arrives within the wait costs nothing', async () => {
    const view = tables(1);
    const t = trust({ tables: view, confirmTable: async () => 2 });
    setTimeout(() => (view.version = 2), 20);
    await t.tableSeen(2, 200);
    assert.equal(t.trusted(), true);
    t.stop();
  });

  test('tableSeen: a stamp etcd has no table for (a peer ahead of etcd) costs nothing', async () => {
    const t = trust({ tables: tables(7), confirmTable: async () => 7 });
    await t.tableSeen(8, 20);
    assert.equal(t.trusted(), true);
    t.stop();
  });

  test('tableSeen: a newer table in force that did not arrive, or etcd unable to say, means this node is behind', async () => {
    const behind = trust({ tables: tables(7), confirmTable: async () => 8 });
    await behind.tableSeen(8, 20);
    assert.equal(behind.current().kind, 'recovering');
    behind.stop();
    const unknown = trust({ tables: tables(7), confirmTable: async () => Promise.reject(new Error('etcd down')) });
    await unknown.tableSeen(8, 20);
    assert.equal(unknown.current().kind, 'recovering');
    unknown.stop();
  });

  test('tableSeen: many reports of one version make one etcd read', async () => {
    let reads = 0;
    const t = trust({ tables: tables(1), confirmTable: async () => (reads++, 1) });
    await Promise.all(Array.from({ length: 20 }, () => t.tableSeen(2, 10)));
    assert.equal(reads, 1);
    t.stop();
  });
});
