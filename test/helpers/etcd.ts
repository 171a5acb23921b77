/**
 * Real etcd for integration tests: /usr/bin/etcd (Debian's etcd-server, 3.4) started on free
 * loopback ports with temporary data dirs. No mocks: the point of these tests is the behaviour of
 * the real server and the real `etcd3` client (see /work/shared/ETCD-NOTES.md).
 *
 *   const etcd = await startEtcd();               // single member
 *   const etcd3 = await startEtcd({ members: 3 }); // 3-member cluster
 *   const netns = await startEtcd({ members: 3, hosts }); // one member per test host (test/netns)
 *   ...
 *   await etcd.stop();                             // SIGKILL all, remove data dirs
 *
 * Every process is tracked by PID and SIGKILLed when the test process exits, so a failing test
 * cannot leak an etcd. Teardown uses SIGKILL because SIGTERM can take ~7 s (ETCD-NOTES).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.ts';

const ETCD_BIN = '/usr/bin/etcd';
const INSTALL_SCRIPT = resolve(import.meta.dirname, '../../scripts/install-deps.sh');

/** How long a member may take to answer /health before we give up (it usually takes < 1 s). */
const START_TIMEOUT_MS = 20_000;
/** Keep this much of each member's stderr for error messages. */
const STDERR_KEEP = 16 * 1024;

export interface EtcdMember {
  readonly name: string;
  /** PID of the current process (changes after a restart); 0 when not running. */
  readonly pid: number;
  /** e.g. "http://127.0.0.1:23791" */
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /**
   * Send `signal` (default SIGKILL) and wait until the process is gone. With SIGSTOP the process
   * is only paused (etcd "down" while its sockets stay bound); `start()` then resumes it.
   */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Restart with the same data dir and ports (or SIGCONT a paused one); resolves when healthy. */
  start(): Promise<void>;
}

export interface EtcdCluster {
  /** "127.0.0.1:PORT" per member, the form `etcd.endpoints` uses. */
  readonly endpoints: string[];
  readonly members: EtcdMember[];
  /** Index in `members` of the current raft leader (polls until one is known). */
  leaderIndex(): Promise<number>;
  /** SIGKILL every member and remove the data dirs. */
  stop(): Promise<void>;
}

export interface StartEtcdOptions {
  /** Cluster size. Default 1. */
  members?: 1 | 3;
  /**
   * Where each member runs (one per member): its address, where it listens on 2379 (clients) and
   * 2380 (peers), and the command prefix that runs a program there (`ip netns exec NS`).
   * Default: every member on loopback, on free ports, run directly.
   */
  hosts?: readonly EtcdHost[];
  /** Serve clients over TLS with this certificate (the peer URLs stay plain). Loopback members only. */
  tls?: { cert: string; key: string; ca: string };
}

export interface EtcdHost {
  ip: string;
  command: readonly string[];
}

/** Every live etcd child of this process, killed on exit whatever happens. */
const live = new Set<ChildProcess>();
/** Data dirs not yet removed by a cluster's stop(); removed on exit. */
const dataDirs = new Set<string>();

function killAllSync(): void {
  for (const child of live) {
    if (child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  live.clear();
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  dataDirs.clear();
}

let exitHooksInstalled = false;
function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killAllSync);
  // A signal would skip 'exit': kill ours, then re-raise so the default action still happens.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAllSync();
      process.kill(process.pid, signal);
    });
  }
}

function ensureBinary(): void {
  if (existsSync(ETCD_BIN)) return;
  const result = spawnSync(INSTALL_SCRIPT, ['etcd'], { encoding: 'utf8' });
  if (result.status !== 0 || !existsSync(ETCD_BIN)) {
    throw new Error(
      `etcd is not installed and ${INSTALL_SCRIPT} etcd failed (exit ${result.status}): ${result.stderr}`,
    );
  }
}

/** GET a member's URL; over https trusting `ca` (fetch cannot be given a CA). */
function getText(url: string, ca: string | undefined): Promise<{ ok: boolean; text: string }> {
  if (ca === undefined) {
    return fetch(url, { signal: AbortSignal.timeout(1000) }).then(async (res) => ({ ok: res.ok, text: await res.text() }));
  }
  return new Promise((resolveGet, reject) => {
    const req = https.get(url, { ca: readFileSync(ca), timeout: 1000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolveGet({ ok: res.statusCode === 200, text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function isHealthy(clientUrl: string, ca?: string): Promise<boolean> {
  try {
    const res = await getText(`${clientUrl}/health`, ca);
    const body = JSON.parse(res.text) as { health?: string };
    return res.ok && body.health === 'true';
  } catch {
    return false;
  }
}

async function isLeader(clientUrl: string, ca?: string): Promise<boolean> {
  try {
    const res = await getText(`${clientUrl}/metrics`, ca);
    return /^etcd_server_is_leader 1\s*$/m.test(res.text);
  } catch {
    return false;
  }
}

interface MemberSpec {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  /** Run etcd through this (e.g. `ip netns exec NS`, which execs: the PID stays etcd's). */
  command: readonly string[];
}

/** Raised when a member does not come up; carries its stderr. */
export class EtcdStartError extends Error {
  readonly code = 'ETCD_START_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'EtcdStartError';
  }
}

class Member implements EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly #args: string[];
  readonly #command: readonly string[];
  #child: ChildProcess | null = null;
  #paused = false;
  #stderr = '';
  #exited: Promise<void> = Promise.resolve();

  readonly #ca: string | undefined;

  constructor(spec: MemberSpec, initialCluster: string, token: string, tls?: StartEtcdOptions['tls']) {
    this.#ca = tls?.ca;
    this.name = spec.name;
    this.clientUrl = spec.clientUrl;
    this.peerUrl = spec.peerUrl;
    this.dataDir = spec.dataDir;
    this.#command = spec.command;
    this.#args = [
      '--name', spec.name,
      '--data-dir', spec.dataDir,
      '--listen-client-urls', spec.clientUrl,
      '--advertise-client-urls', spec.clientUrl,
      '--listen-peer-urls', spec.peerUrl,
      '--initial-advertise-peer-urls', spec.peerUrl,
      '--initial-cluster', initialCluster,
      // Ignored on restart (the data dir already holds the cluster), required on first boot.
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      '--logger=zap',
      '--log-level=warn',
      '--unsafe-no-fsync',
      ...(tls !== undefined ? ['--cert-file', tls.cert, '--key-file', tls.key] : []),
    ];
  }

  get pid(): number {
    return this.#child?.pid ?? 0;
  }

  /** Spawn the process (no wait). */
  spawn(): void {
    if (this.#child !== null) throw new Error(`etcd ${this.name} is already running (pid ${this.pid})`);
    this.#stderr = '';
    const [cmd, ...args] = [...this.#command, ETCD_BIN, ...this.#args];
    const child = spawn(cmd!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    live.add(child);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_KEEP);
    });
    // A leaked etcd must not keep the test process alive: the exit hook kills it instead.
    child.unref();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
    this.#exited = new Promise((resolveExit) => {
      child.once('exit', () => {
        live.delete(child);
        if (this.#child === child) {
          this.#child = null;
          this.#paused = false;
        }
        resolveExit();
      });
    });
    child.once('error', (err) => {
      this.#stderr += `\nspawn error: ${err.message}`;
    });
  }

  /** Resolve when /health answers true; reject early with stderr when the process dies. */
  async waitHealthy(): Promise<void> {
    const child = this.#child;
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (child === null || child.exitCode !== null || child.signalCode !== null || this.#child !== child) {
        throw new EtcdStartError(
          `etcd ${this.name} exited before becoming healthy (code ${child?.exitCode}, signal ${child?.signalCode}):\n${this.#stderr}`,
        );
      }
      if (await isHealthy(this.clientUrl, this.#ca)) return;
      await sleep(50);
    }
    throw new EtcdStartError(
      `etcd ${this.name} not healthy at ${this.clientUrl} after ${START_TIMEOUT_MS} ms:\n${this.#stderr}`,
    );
  }

  async start(): Promise<void> {
    if (this.#child !== null && this.#paused) {
      this.#child.kill('SIGCONT');
      this.#paused = false;
    } else if (this.#child === null) {
      this.spawn();
    }
    await this.waitHealthy();
  }

  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    if (signal === 'SIGSTOP') {
      child.kill('SIGSTOP');
      this.#paused = true;
      return;
    }
    // Hold the event loop open while we wait for the exit (the child is unref'd otherwise).
    child.ref();
    // A paused process does not act on SIGTERM until resumed.
    if (this.#paused && signal !== 'SIGKILL') child.kill('SIGCONT');
    child.kill(signal);
    await this.#exited;
  }

  isLeader(): Promise<boolean> {
    return this.#child === null || this.#paused ? Promise.resolve(false) : isLeader(this.clientUrl, this.#ca);
  }
}

/** Start a real etcd (1 or 3 members) on free loopback ports; resolves when every member is healthy. */
export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdCluster> {
  const count = opts.members ?? 1;
  if (count !== 1 && count !== 3) throw new Error(`startEtcd: members must be 1 or 3, got ${String(count)}`);
  if (opts.hosts !== undefined && opts.hosts.length !== count) throw new Error(`startEtcd: ${count} members need ${count} hosts, got ${opts.hosts.length}`);
  ensureBinary();
  installExitHooks();

  const specs: MemberSpec[] = [];
  for (let i = 0; i < count; i++) {
    const host = opts.hosts?.[i];
    specs.push({
      name: `m${i}`,
      clientUrl: host === undefined ? `${opts.tls !== undefined ? 'https' : 'http'}://127.0.0.1:${await freePort()}` : `http://${host.ip}:2379`,
      peerUrl: host === undefined ? `http://127.0.0.1:${await freePort()}` : `http://${host.ip}:2380`,
      dataDir: await mkdtemp(join(tmpdir(), 'jincache-etcd-')),
      command: host?.command ?? [],
    });
    dataDirs.add(specs[i]!.dataDir);
  }
  const initialCluster = specs.map((s) => `${s.name}=${s.peerUrl}`).join(',');
  const token = `jincache-test-${process.pid}-${Date.now()}`;
  const members = specs.map((s) => new Member(s, initialCluster, token, opts.tls));

  const stop = async (): Promise<void> => {
    await Promise.all(members.map((m) => m.stop('SIGKILL')));
    await Promise.all(members.map((m) => rm(m.dataDir, { recursive: true, force: true })));
    for (const m of members) dataDirs.delete(m.dataDir);
  };

  try {
    // All members must boot together: a member of a new 3-cluster is not healthy without quorum.
    for (const m of members) m.spawn();
    await Promise.all(members.map((m) => m.waitHealthy()));
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    endpoints: specs.map((s) => s.clientUrl.replace(/^https?:\/\//, '')),
    members,
    async leaderIndex(): Promise<number> {
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (Date.now() < deadline) {
        const flags = await Promise.all(members.map((m) => m.isLeader()));
        const index = flags.indexOf(true);
        if (index >= 0) return index;
        await sleep(50);
      }
      throw new Error('etcd: no leader elected');
    },
    stop,
  };
}
