/**
 * EtcdRegistry against a real single-member etcd: join, graceful leave, crash (kill -9 of the
 * process holding the lease), and a watch whose revision was compacted while it was cut off.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeInfo } from '../../src/core/types.ts';
import { createEtcdClient, isEtcdUnavailableError, type EtcdLogger } from '../../src/discovery/etcd-client.ts';
import { EtcdRegistry } from '../../src/discovery/etcd-registry.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { freePort } from '../helpers/ports.ts';

const REGISTRY_URL = new URL('../../src/discovery/etcd-registry.ts', import.meta.url).href;

function node(id: string): NodeInfo {
  return { id, address: `http://127.0.0.1:1${id.length}00`, status: 'active', last_seen: 0 };
}

const ids = (r: EtcdRegistry): string[] => r.members().map((m) => m.id);

/** Poll `check` every 20 ms until it returns true; fail after `timeoutMs` with `what`. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await check()) return Date.now() - start;
    await sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
}

/** Logger that records messages, to prove a code path really ran. */
function recordingLogger(): EtcdLogger & { messages: string[] } {
  const messages: string[] = [];
  const push = (_o: object, msg: string): void => {
    messages.push(msg);
  };
  return { messages, info: push, warn: push, error: push };
}

/**
 * A TCP proxy in front of etcd that can cut every connection and refuse new ones (while keeping
 * its port), to disconnect one client while the others keep working.
 */
class CuttableProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #open = true;
  port = 0;

  constructor(target: { host: string; port: number }) {
    this.#server = createServer((client) => {
      if (!this.#open) {
        client.destroy();
        return;
      }
      const upstream = netConnect(target);
      this.#sockets.add(client).add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.#sockets.delete(client);
        this.#sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
  }

  async listen(): Promise<void> {
    this.port = await freePort();
    await new Promise<void>((resolve) => this.#server.listen(this.port, '127.0.0.1', resolve));
  }

  cut(): void {
    this.#open = false;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  restore(): void {
    this.#open = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

describe('EtcdRegistry (single etcd member)', { timeout: 60_000 }, () => {
  let etcd: EtcdCluster;
  let prefixCounter = 0;
  /** Each test gets its own prefix so leftovers of one cannot satisfy another. */
  const freshPrefix = (): string => `/jincache-t${++prefixCounter}`;

  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    await etcd?.stop();
  });

  test('two registries see each other; a graceful stop is seen within 1 s', async () => {
    const prefix = freshPrefix();
    const a = new EtcdRegistry({ endpoints: etcd.endpoints, prefix, leaseTtlMs: 5000 });
    const b = new EtcdRegistry({ endpoints: etcd.endpoints, prefix, leaseTtlMs: 5000 });
    try {
      await a.start(node('a'));
      await b.start(node('b'));
      await waitFor('both see a and b', () => ids(a).join() === 'a,b' && ids(b).join() === 'a,b', 2000);

      const seen: string[][] = [];
      a.onChange((m) => seen.push(m.map((x) => x.id)));
      const stopAt = Date.now();
      await b.stop();
      const ms = await waitFor('a sees b leave', () => ids(a).join() === 'a', 1000);
      assert.ok(Date.now() - stopAt < 1000, `leave seen after ${ms} ms`);
      assert.deepEqual(seen.at(-1), ['a']);
      assert.deepEqual(ids(b), [], 'a stopped registry reports no members');
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('start() against an unreachable etcd rejects with EtcdUnavailableError after startTimeoutMs', async () => {
    const r = new EtcdRegistry({
      endpoints: ['127.0.0.1:1'],
      prefix: freshPrefix(),
      leaseTtlMs: 2000,
      dialTimeoutMs: 200,
      startTimeoutMs: 600,
    });
    const t = Date.now();
    await assert.rejects(r.start(node('a')), isEtcdUnavailableError);
    const ms = Date.now() - t;
    assert.ok(ms >= 300 && ms < 3000, `gave up after ${ms} ms`);
    assert.deepEqual(ids(r), []);
  });

  test('NodeInfo is published under one lease with a heartbeat key (SPEC §4 layout)', async () => {
    const prefix = freshPrefix();
    const a = new EtcdRegistry({ endpoints: etcd.endpoints, prefix, leaseTtlMs: 3000 });
    const admin = createEtcdClient({ endpoints: etcd.endpoints });
    try {
      await a.start(node('a'));
      const nodeKv = (await admin.get(`${prefix}/nodes/a`).exec()).kvs[0];
      const hbKv = (await admin.get(`${prefix}/heartbeat/a`).exec()).kvs[0];
      assert.ok(nodeKv && hbKv, 'both keys exist');
      const info = JSON.parse(nodeKv.value.toString()) as NodeInfo;
      assert.equal(info.id, 'a');
      assert.equal(info.status, 'active');
      assert.ok(info.last_seen > 0);
      assert.ok(Number(hbKv.value.toString()) > 0);
      assert.equal(nodeKv.lease, hbKv.lease);
      assert.equal(nodeKv.lease, a.leaseId());

      await a.update({ ...node('a'), status: 'leaving' });
      const updated = JSON.parse((await admin.get(`${prefix}/nodes/a`).string()) ?? '{}') as NodeInfo;
      assert.equal(updated.status, 'leaving');
      await a.stop();
      assert.equal(await admin.getAll().prefix(`${prefix}/`).count(), 0, 'revoke removed both keys');
    } finally {
      await a.stop();
      admin.close();
    }
  });

  test('a node killed with -9 disappears after about the lease TTL (2 s)', async () => {
    const prefix = freshPrefix();
    const a = new EtcdRegistry({ endpoints: etcd.endpoints, prefix, leaseTtlMs: 2000 });
    const code = `
      const { EtcdRegistry } = await import(${JSON.stringify(REGISTRY_URL)});
      const r = new EtcdRegistry({ endpoints: ${JSON.stringify(etcd.endpoints)}, prefix: ${JSON.stringify(prefix)}, leaseTtlMs: 2000 });
      await r.start({ id: 'victim', address: 'http://127.0.0.1:1', status: 'active', last_seen: 0 });
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await a.start(node('a'));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        child.once('exit', (c) => reject(new Error(`child exited ${c}: ${stderr}`)));
      });
      await waitFor('a sees the victim', () => ids(a).join() === 'a,victim', 2000);
      const killedAt = Date.now();
      assert.ok(child.pid !== undefined);
      process.kill(child.pid, 'SIGKILL');
      await waitFor('a sees the victim expire', () => ids(a).join() === 'a', 4000);
      const ms = Date.now() - killedAt;
      // ETCD-NOTES: expiry lands between ~2/3 TTL and TTL (+ etcd's 500 ms expiry check tick).
      assert.ok(ms >= 1000 && ms <= 3500, `victim removed ${ms} ms after kill -9`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await a.stop();
    }
  });

  test('membership stays correct when the watched revision is compacted while cut off', async () => {
    const prefix = freshPrefix();
    const target = etcd.endpoints[0]!.split(':');
    const proxy = new CuttableProxy({ host: target[0]!, port: Number(target[1]) });
    await proxy.listen();
    const log = recordingLogger();
    // `a` talks through the proxy; the others directly.
    const a = new EtcdRegistry({
      endpoints: [`127.0.0.1:${proxy.port}`],
      prefix,
      leaseTtlMs: 6000,
      logger: log,
    });
    const b = new EtcdRegistry({ endpoints: etcd.endpoints, prefix, leaseTtlMs: 6000 });
    const c = new EtcdRegistry({ endpoints: etcd.endpoints, prefix, leaseTtlMs: 6000 });
    const admin = createEtcdClient({ endpoints: etcd.endpoints });
    try {
      await a.start(node('a'));
      await b.start(node('b'));
      await waitFor('a sees b', () => ids(a).join() === 'a,b', 2000);

      proxy.cut();
      await b.stop(); // b leaves and c joins while a is cut off
      await c.start(node('c'));
      for (let i = 0; i < 5; i++) await admin.put(`${prefix}/noise`).value(String(i));
      const rev = (await admin.get(`${prefix}/noise`).exec()).header.revision;
      await admin.kv.compact({ revision: rev, physical: true });
      assert.equal(ids(a).join(), 'a,b', 'a keeps its last known membership while cut off');

      proxy.restore();
      await waitFor('a sees b gone and c present', () => ids(a).join() === 'a,c', 5000);
      assert.ok(
        log.messages.includes('etcd watch cancelled; re-reading'),
        `the compacted watch was re-established by a re-read; log: ${log.messages.join(' | ')}`,
      );
      // And the new watch is live: a later leave is seen.
      await c.stop();
      await waitFor('a sees c leave', () => ids(a).join() === 'a', 2000);
    } finally {
      await Promise.all([a.stop(), b.stop(), c.stop()]);
      admin.close();
      await proxy.close();
    }
  });
});
