/**
 * EtcdRegistry when etcd itself fails: a 10 s outage of a single member (kill -9, restart on the
 * same data dir), and kill -9 of the raft leader of a 3-member cluster.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeInfo } from '../../src/core/types.ts';
import { createEtcdClient, type EtcdLogger } from '../../src/discovery/etcd-client.ts';
import { EtcdRegistry } from '../../src/discovery/etcd-registry.ts';
import { startEtcd } from '../helpers/etcd.ts';

function node(id: string): NodeInfo {
  return { id, address: `http://127.0.0.1:9${id.charCodeAt(0)}`, status: 'active', last_seen: 0 };
}

const ids = (r: EtcdRegistry): string => r.members().map((m) => m.id).join();

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await check()) return Date.now() - start;
    await sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
}

function recordingLogger(): EtcdLogger & { messages: string[] } {
  const messages: string[] = [];
  const push = (_o: object, msg: string): void => {
    messages.push(msg);
  };
  return { messages, info: push, warn: push, error: push };
}

test('etcd down for 10 s: membership kept meanwhile, both nodes re-registered after', { timeout: 45_000 }, async () => {
  const etcd = await startEtcd();
  const prefix = '/jincache';
  const logA = recordingLogger();
  const logB = recordingLogger();
  const a = new EtcdRegistry({ endpoints: etcd.endpoints, prefix, leaseTtlMs: 2000, dialTimeoutMs: 1000, logger: logA });
  const b = new EtcdRegistry({ endpoints: etcd.endpoints, prefix, leaseTtlMs: 2000, dialTimeoutMs: 1000, logger: logB });
  let sampler: NodeJS.Timeout | undefined;
  try {
    await a.start(node('a'));
    await b.start(node('b'));
    await waitFor('both see both', () => ids(a) === 'a,b' && ids(b) === 'a,b', 2000);
    const leaseBefore = [a.leaseId(), b.leaseId()];

    // Sample what the registries report all through the outage.
    const samples: string[] = [];
    sampler = setInterval(() => samples.push(`${ids(a)}|${ids(b)}`), 50);

    await etcd.members[0]!.stop('SIGKILL');
    await sleep(10_000);
    const whileDown = samples.length;
    await etcd.members[0]!.start();

    // Leases lapse after 2 s without keepalive; the registries must notice and rejoin.
    const admin = createEtcdClient({ endpoints: etcd.endpoints });
    try {
      await waitFor(
        'both re-registered in etcd under new leases',
        async () => {
          const keys = await admin.getAll().prefix(`${prefix}/nodes/`).keys();
          return (
            keys.sort().join() === `${prefix}/nodes/a,${prefix}/nodes/b` &&
            a.leaseId() !== '' && a.leaseId() !== leaseBefore[0] &&
            b.leaseId() !== '' && b.leaseId() !== leaseBefore[1]
          );
        },
        10_000,
      );
      // Keys sit under the live leases (not a restored old one about to expire).
      const kvs = (await admin.getAll().prefix(`${prefix}/nodes/`).exec()).kvs;
      assert.deepEqual(kvs.map((kv) => kv.lease).sort(), [a.leaseId(), b.leaseId()].sort());
    } finally {
      admin.close();
    }
    // Old leases restored by etcd's restart expire ~TTL later; membership must survive that.
    await sleep(2500);
    await waitFor('both see both again', () => ids(a) === 'a,b' && ids(b) === 'a,b', 3000);
    clearInterval(sampler);

    // While etcd was down, both kept the last known membership exactly.
    assert.ok(whileDown > 150, `sampled ${whileDown} times while etcd was down`);
    assert.deepEqual(new Set(samples.slice(0, whileDown)), new Set(['a,b|a,b']));
    // Around the rejoin a peer may blink out (its old lease can expire before its rejoin lands),
    // but nobody's view is ever empty.
    const empty = samples.filter((s) => s.startsWith('|') || s.endsWith('|'));
    assert.deepEqual(empty, [], 'members() never empty');
    assert.ok(logA.messages.includes('etcd lease lost; rejoining'), logA.messages.join(' | '));
    assert.ok(logA.messages.includes('rejoined etcd with a new lease'), logA.messages.join(' | '));
    assert.ok(logB.messages.includes('rejoined etcd with a new lease'), logB.messages.join(' | '));
  } finally {
    clearInterval(sampler);
    await Promise.all([a.stop(), b.stop()]);
    await etcd.stop();
  }
});

test('3-member etcd: kill -9 of the raft leader loses no registration; new ones work', { timeout: 45_000 }, async () => {
  const etcd = await startEtcd({ members: 3 });
  const prefix = '/jincache';
  const regs: EtcdRegistry[] = [];
  const make = (): EtcdRegistry => {
    const r = new EtcdRegistry({ endpoints: etcd.endpoints, prefix, leaseTtlMs: 2000, dialTimeoutMs: 1000 });
    regs.push(r);
    return r;
  };
  try {
    const a = make();
    const b = make();
    await a.start(node('a'));
    await b.start(node('b'));
    await waitFor('both see both', () => ids(a) === 'a,b' && ids(b) === 'a,b', 2000);

    const leader = await etcd.leaderIndex();
    await etcd.members[leader]!.stop('SIGKILL');
    const survivors = etcd.endpoints.filter((_, i) => i !== leader);

    // A registration during/after the election: start() retries until etcd has a leader again.
    const c = make();
    await c.start(node('c'));
    await waitFor('everyone sees a,b,c', () => regs.every((r) => ids(r) === 'a,b,c'), 5000);

    // Longer than the lease TTL after the kill: nothing expired for lack of keepalives.
    await sleep(3000);
    const admin = createEtcdClient({ endpoints: survivors });
    try {
      const keys = await admin.getAll().prefix(`${prefix}/nodes/`).keys();
      assert.deepEqual(keys.sort(), ['a', 'b', 'c'].map((id) => `${prefix}/nodes/${id}`));
    } finally {
      admin.close();
    }
    for (const r of regs) assert.equal(ids(r), 'a,b,c');
  } finally {
    await Promise.all(regs.map((r) => r.stop()));
    await etcd.stop();
  }
});
