/**
 * Ctrl-C as a person at a terminal sends it: SIGINT to the whole foreground process group, here
 * a detached child's group (`process.kill(-pgid, 'SIGINT')`). On the system Node (20, older than
 * type stripping) bin/jincache.js re-runs itself on the pinned Node 24, so the group holds the
 * wrapper and its child and both get the signal; `npm start` adds npm, which forwards it again.
 * One Ctrl-C must still be one graceful stop: the node drains, revokes its etcd lease (its
 * registration disappears at once, not a lease TTL later) and exits 0, and the wrapper exits with
 * the child's code. A second Ctrl-C during a drain stops at once and says so.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { stringify } from 'yaml';
import { BIN, startCluster, type TestCluster } from '../helpers/cluster.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { freePort, freePortRun } from '../helpers/ports.ts';
import { clusterOf, waitFor } from '../helpers/wait.ts';

const ROOT = resolve(import.meta.dirname, '../..');
/** Long enough that "gone at once" (a revoked lease) and "gone after the lease" cannot be confused. */
const LEASE_TTL_S = 10;

/** The first `node` on PATH outside any node_modules (npm test puts the pinned one first). */
function systemNode(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '' || dir.includes('node_modules')) continue;
    const candidate = join(dir, 'node');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function versionOf(node: string): string {
  return spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
}

/** Whether bin/jincache.js runs in-process on this Node or re-runs itself on the pinned one. */
function reExecs(version: string): boolean {
  const [major, minor] = version.replace(/^v/, '').split('.').map(Number) as [number, number];
  return !(major > 22 || (major === 22 && minor >= 18));
}

const SYSTEM_NODE = systemNode();
const RUNTIMES: { name: string; node: string | undefined }[] = [
  { name: `the system Node (${SYSTEM_NODE === undefined ? 'none' : versionOf(SYSTEM_NODE)})`, node: SYSTEM_NODE },
  { name: `the pinned Node (${process.version})`, node: process.execPath },
];

/** Process groups started here and not yet seen to end. */
const groups = new Set<number>();

/** SIGKILL every group a failed test left behind (their pipes would keep this process alive). */
function killLeftovers(): void {
  for (const g of groups) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // gone
    }
  }
  groups.clear();
}
process.on('exit', killLeftovers);

interface Foreground {
  readonly pid: number;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** One Ctrl-C: SIGINT to every process of the group. */
  ctrlC(): void;
  exited(): boolean;
  /** Resolves with the group leader's exit (SIGKILLs the group after `timeoutMs`). */
  exit(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** Start `command args` as the foreground job of a terminal would be: in a process group of its own. */
function foreground(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Foreground {
  const child: ChildProcess = spawn(command, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  const pid = child.pid!;
  groups.add(pid);
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal, at: Date.now() })),
  );
  return {
    pid,
    output: () => out,
    ctrlC: () => process.kill(-pid, 'SIGINT'),
    exited: () => child.exitCode !== null || child.signalCode !== null,
    async exit(timeoutMs = 40_000) {
      const timer = setTimeout(() => process.kill(-pid, 'SIGKILL'), timeoutMs);
      const result = await exit;
      clearTimeout(timer);
      // the wrapper has exited; nothing of the group may outlive it
      await waitFor(`process group ${pid} empty`, () => !groupAlive(pid), 5000);
      groups.delete(pid);
      return result;
    },
  };
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** pino JSON lines of the output (other lines skipped). */
function logLines(text: string): { msg: string; pid: number; nodeId?: string; level: number }[] {
  return text.split('\n').flatMap((l) => {
    try {
      const j = JSON.parse(l);
      return typeof j?.msg === 'string' ? [j] : [];
    } catch {
      return [];
    }
  });
}

async function registered(etcd: Etcd3, prefix: string): Promise<string[]> {
  return (await etcd.getAll().prefix(`${prefix}/nodes/`).keys()).map((k) => k.slice(`${prefix}/nodes/`.length)).sort();
}

describe('Ctrl-C through bin/jincache.js', () => {
  let etcd: EtcdCluster;
  let client: Etcd3;
  let cluster: TestCluster;
  let dir: string;

  before(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.endpoints.map((e) => `http://${e}`) });
    // bandwidth: a node's sends are paced, so the force test below can catch a drain in progress
    cluster = await startCluster({
      nodes: 2,
      staticPeers: false,
      args: ['--etcd', etcd.endpoints.join(',')],
      config: { etcd: { lease_ttl: `${LEASE_TTL_S}s` }, migration: { bandwidth: '16KiB' } },
    });
    await waitFor('2 nodes registered', async () => (await registered(client, '/jincache')).length === 2, 15_000);
    dir = mkdtempSync(join(tmpdir(), 'jincache-ctrl-c-'));
  });

  after(async () => {
    killLeftovers();
    await cluster?.stop();
    client?.close();
    await etcd?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** Start `id` through the wrapper on `node`, in its own process group, and wait until it holds partitions. */
  async function joinNode(node: string, id: string): Promise<{ job: Foreground; url: string }> {
    const port = await freePort();
    const job = foreground(node, [BIN, 'serve', '--config', cluster.configFile, '--etcd', etcd.endpoints.join(','), '--id', id, '--port', String(port)]);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(`${id} holds partitions in every table`, async () => {
      if (job.exited()) throw new Error(`${id} exited during start-up:\n${job.output()}`);
      const infos = await Promise.all([url, ...cluster.nodes.map((n) => n.url)].map(clusterOf));
      const versions = new Set(infos.map((i) => i.ringVersion));
      const mine = infos[0].nodes.find((n: { id: string }) => n.id === id);
      return versions.size === 1 && mine?.partitionsOwned > 0 && infos.every((i) => i.migrations.length === 0);
    }, 30_000, 100);
    return { job, url };
  }

  for (const [i, runtime] of RUNTIMES.entries()) {
    test(`serve on ${runtime.name}: one Ctrl-C drains, leaves at once and exits 0`, { skip: runtime.node === undefined && 'no system node on PATH' }, async () => {
      const id = `node-c${i}`;
      const { job } = await joinNode(runtime.node!, id);
      // a few keys, some of them held by the leaving node: they must survive its leave
      const entry = cluster.nodes[0]!.url;
      for (let k = 0; k < 50; k++) assert.equal((await fetch(`${entry}/api/scores/ctrl-c-${i}-${k}`, { method: 'PUT', body: `v${k}` })).status, 204);

      job.ctrlC();
      const { code, signal } = await job.exit();
      const stillRegistered = await registered(client, '/jincache');
      const out = job.output();
      assert.equal(signal, null, `the wrapper exited by itself, not by a signal:\n${out}`);
      assert.equal(code, 0, `exit code 0:\n${out}`);
      assert.ok(!stillRegistered.includes(id), `${id}'s registration was revoked before it exited (registered: ${stillRegistered.join(', ')})`);

      const lines = logLines(out);
      const msgs = lines.map((l) => l.msg);
      assert.equal(msgs.filter((m) => m.startsWith('stopping')).length, 1, `one stop, not two:\n${msgs.join('\n')}`);
      assert.ok(msgs.includes('draining: handing partitions over before leaving'), `it drained:\n${msgs.join('\n')}`);
      assert.ok(msgs.includes('drained: no partitions left here'), `the drain completed:\n${msgs.join('\n')}`);
      assert.ok(msgs.includes('node stopped'), `stop() ran to its end:\n${msgs.join('\n')}`);
      assert.ok(!msgs.some((m) => m.includes('stopping now')), 'no forced stop');
      if (reExecs(versionOf(runtime.node!))) {
        assert.notEqual(lines[0]!.pid, job.pid, 'the node ran in the pinned Node child, not in the wrapper');
      }

      // the others dropped it from their tables right after its exit (the watch of its revoked
      // key, well before its lease would have run out), and lost no key
      await waitFor(`${id} gone from every table`, async () => {
        const infos = await Promise.all(cluster.nodes.map((n) => clusterOf(n.url)));
        return infos.every((info) => !info.nodes.some((n: { id: string }) => n.id === id));
      }, 3000, 20);
      for (let k = 0; k < 50; k++) {
        const res = await fetch(`${entry}/api/scores/ctrl-c-${i}-${k}`);
        assert.equal(res.status, 200, `key ${k} after the leave`);
        assert.equal(await res.text(), `v${k}`);
      }
    });
  }

  test('a second Ctrl-C during the drain stops at once and says so', { skip: SYSTEM_NODE === undefined && 'no system node on PATH' }, async () => {
    const id = 'node-force';
    const { job } = await joinNode(SYSTEM_NODE!, id);
    // ~600 KiB to hand over at 16 KiB/s: a drain of many seconds
    const value = 'x'.repeat(2048);
    const entry = cluster.nodes[0]!.url;
    for (let k = 0; k < 300; k++) assert.equal((await fetch(`${entry}/api/scores/force-${k}`, { method: 'PUT', body: value })).status, 204);

    job.ctrlC();
    await waitFor('the drain started', () => job.output().includes('draining: handing partitions over'), 10_000, 20);
    await sleep(1500); // a person's second Ctrl-C, well after the first
    assert.ok(!job.exited(), `the drain is still running 1.5 s later (else this test proves nothing):\n${job.output()}`);
    const second = Date.now();
    job.ctrlC();
    const { code, signal, at } = await job.exit(10_000);
    const out = job.output();
    assert.equal(signal, null, out);
    assert.equal(code, 130, `128 + SIGINT, the shell's code for an interrupted command:\n${out}`);
    assert.ok(at - second < 2000, `stopped ${at - second} ms after the second Ctrl-C`);
    const msgs = logLines(out).map((l) => l.msg);
    assert.ok(msgs.some((m) => m.includes('stopping now, without finishing the drain')), `it said so:\n${msgs.join('\n')}`);
    assert.ok(!msgs.includes('drained: no partitions left here'), 'the drain did not finish');
  });
});

describe('Ctrl-C of `jincache cluster` and `npm start`', () => {
  let etcd: EtcdCluster;
  let client: Etcd3;
  let dir: string;

  before(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.endpoints.map((e) => `http://${e}`) });
    dir = mkdtempSync(join(tmpdir(), 'jincache-ctrl-c-cluster-'));
  });

  after(async () => {
    killLeftovers();
    client?.close();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const launchers: { name: string; command: () => [string, string[]] | undefined }[] = [
    { name: 'node bin/jincache.js cluster on the system Node', command: () => (SYSTEM_NODE === undefined ? undefined : [SYSTEM_NODE, [BIN, 'cluster']]) },
    { name: 'npm start', command: () => ['npm', ['start', '--']] },
  ];

  for (const [i, launcher] of launchers.entries()) {
    test(`${launcher.name}: one Ctrl-C stops every node gracefully`, { skip: launcher.command() === undefined && 'no system node on PATH' }, async () => {
      const prefix = `/ctrl-c-${i}`;
      const config = join(dir, `cluster-${i}.yaml`);
      writeFileSync(config, stringify({ etcd: { lease_ttl: `${LEASE_TTL_S}s`, prefix } }));
      // node i listens on base + i - 1 and resp + i - 1
      const [base, api, resp] = [await freePortRun(2), await freePort(), await freePortRun(2)];
      const [command, args] = launcher.command()!;
      const job = foreground(command, [
        ...args, '--nodes', '2', '--etcd', etcd.endpoints[0]!, '--config', config,
        '--base-port', String(base), '--api-port', String(api), '--resp-port', String(resp),
      ], { ...process.env, npm_config_loglevel: 'silent' });
      await waitFor('the cluster is up', () => {
        if (job.exited()) throw new Error(`the cluster exited during start-up:\n${job.output()}`);
        return job.output().includes('Ctrl-C stops the cluster');
      }, 30_000, 100);
      // the banner waits for node 1 only
      await waitFor('both nodes registered', async () => (await registered(client, prefix)).length === 2, 20_000, 50);

      job.ctrlC();
      const { code, signal } = await job.exit();
      const left = await registered(client, prefix);
      const out = job.output();
      assert.equal(signal, null, out);
      assert.equal(code, 0, out);
      assert.deepEqual(left, [], 'every registration revoked by the time the cluster exited');
      assert.equal(out.split('stopping the cluster').length - 1, 1, `one stop:\n${out}`);
      const lines = logLines(out);
      for (const id of ['node-1', 'node-2']) {
        const mine = lines.filter((l) => l.nodeId === id).map((l) => l.msg);
        assert.equal(mine.filter((m) => m.startsWith('stopping')).length, 1, `${id} stopped once:\n${mine.join('\n')}`);
        assert.ok(mine.includes('node stopped'), `${id} ran stop() to its end:\n${mine.join('\n')}`);
      }
      // one line for the whole cluster, not a second one per node
      assert.match(out, /every node left the cluster \(node-1, node-2: exit 0\)/);
    });
  }
});
