// A real Redis Cluster on loopback for the bench (the peer of the migration and failover
// scenarios), and the small Redis-protocol client it is driven with: one command and its reply
// (CLUSTER INFO, INFO memory, CLUSTER NODES) and a pipelined bulk loader of SET commands. The
// client is written here rather than taken from ioredis so a bulk load costs the measured servers
// as little client-side overhead as possible (pre-encoded commands written in large batches) and
// so reply parsing stays exact. Every redis-server and redis-cli is a procs.ts child, stopped by PID.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts, startProcess, waitForPort, type Proc } from './procs.ts';

export type RespValue = string | number | null | RespError | RespValue[];

/** An error reply (`-ERR ...`), returned as a value rather than thrown: callers decide. */
export class RespError extends Error {
  readonly code = 'BENCH_RESP_ERROR';
  override name = 'RespError';
}

export function isRespError(e: unknown): e is RespError {
  return e instanceof RespError;
}

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`, 'latin1')];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a, 'utf8') : a;
    parts.push(Buffer.from(`$${b.length}\r\n`, 'latin1'), b, Buffer.from('\r\n', 'latin1'));
  }
  return Buffer.concat(parts);
}

/**
 * Parses one reply starting at `offset`. Returns the value and the offset after it, or null when
 * `buf` does not hold the whole reply yet. Bulk strings are decoded as UTF-8.
 */
export function parseReply(buf: Buffer, offset = 0): { value: RespValue; next: number } | null {
  if (offset >= buf.length) return null;
  const eol = buf.indexOf('\r\n', offset, 'latin1');
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[offset]!);
  const line = buf.toString('utf8', offset + 1, eol);
  const after = eol + 2;
  switch (type) {
    case '+':
      return { value: line, next: after };
    case '-':
      return { value: new RespError(line), next: after };
    case ':':
      return { value: Number(line), next: after };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, next: after };
      if (buf.length < after + len + 2) return null;
      return { value: buf.toString('utf8', after, after + len), next: after + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, next: after };
      const out: RespValue[] = [];
      let at = after;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, at);
        if (r === null) return null;
        out.push(r.value);
        at = r.next;
      }
      return { value: out, next: at };
    }
    default:
      throw new RespError(`unexpected RESP type byte ${JSON.stringify(type)} at offset ${offset}`);
  }
}

function open(port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    const t = setTimeout(() => {
      s.destroy();
      reject(new RespError(`connect to 127.0.0.1:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(new RespError(`127.0.0.1:${port}: ${e.message}`));
    });
  });
}

/**
 * Sends one command on a fresh connection and resolves with its reply (an error reply resolves
 * as a RespError value). Rejects on connection failure or timeout (default 5000 ms).
 */
export async function respCall(port: number, args: readonly (string | Buffer)[], timeoutMs = 5000): Promise<RespValue> {
  const s = await open(port, timeoutMs);
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    const t = setTimeout(() => fail(new RespError(`${String(args[0])} on :${port} got no reply within ${timeoutMs} ms`)), timeoutMs);
    function fail(e: Error): void {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      reject(e);
    }
    s.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      const r = parseReply(buf);
      if (r === null || done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve(r.value);
    });
    s.once('error', (e) => fail(new RespError(`127.0.0.1:${port}: ${e.message}`)));
    s.once('close', () => fail(new RespError(`127.0.0.1:${port} closed the connection before replying`)));
    s.write(encodeCommand(args));
  });
}

/** `respCall` that insists on a string reply (INFO, CLUSTER INFO, CLUSTER NODES). */
export async function respText(port: number, args: readonly string[], timeoutMs = 5000): Promise<string> {
  const r = await respCall(port, args, timeoutMs);
  if (typeof r !== 'string') throw new RespError(`${args.join(' ')} on :${port} answered ${r instanceof Error ? r.message : JSON.stringify(r)}`);
  return r;
}

/** `field:value` lines of an INFO / CLUSTER INFO reply. */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

export interface LoadStats {
  sent: number;
  ok: number;
  /** First few error replies, for the message of whoever decides they are fatal. */
  errors: string[];
  errorCount: number;
  seconds: number;
}

export interface PipelineOptions {
  /** Commands written before waiting for their replies. Default 1000. */
  batch?: number;
  /** Bound on the whole load. Default 120000 ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Keys to load: an array, or anything with a length and at(i) (keys made on demand, e.g. 10M of them). */
export interface KeyList {
  readonly length: number;
  at(i: number): string | undefined;
}

/**
 * Sends `SET key value` for every key on one connection, `batch` commands at a time, and counts
 * the replies. A SET reply is one line (`+OK` or `-ERR ...`), so counting lines counts replies.
 */
export async function pipelineSet(port: number, keys: KeyList, value: Buffer, opts: PipelineOptions = {}): Promise<LoadStats> {
  const batch = opts.batch ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const t0 = performance.now();
  const stats: LoadStats = { sent: 0, ok: 0, errors: [], errorCount: 0, seconds: 0 };
  if (keys.length === 0) return stats;
  const s = await open(port, 5000);
  const valueHead = Buffer.from(`\r\n$${value.length}\r\n`, 'latin1');
  const encode = (from: number, to: number): Buffer => {
    const parts: Buffer[] = [];
    for (let i = from; i < to; i++) {
      const k = Buffer.from(keys.at(i)!, 'utf8');
      parts.push(Buffer.from(`*3\r\n$3\r\nSET\r\n$${k.length}\r\n`, 'latin1'), k, valueHead, value, Buffer.from('\r\n', 'latin1'));
    }
    return Buffer.concat(parts);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let replies = 0;
      let pending = '';
      let sentUpTo = 0;
      const guard = setTimeout(() => fail(new RespError(`SET load on :${port} did not finish within ${timeoutMs} ms (${replies}/${keys.length} replies)`)), timeoutMs);
      const onAbort = () => fail(opts.signal?.reason instanceof Error ? opts.signal.reason : new RespError('aborted'));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      let settled = false;
      function fail(e: Error): void {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        opts.signal?.removeEventListener('abort', onAbort);
        reject(e);
      }
      const sendNext = () => {
        const to = Math.min(keys.length, sentUpTo + batch);
        if (to > sentUpTo) {
          s.write(encode(sentUpTo, to));
          stats.sent += to - sentUpTo;
          sentUpTo = to;
        }
      };
      s.on('data', (d: Buffer) => {
        pending += d.toString('latin1');
        let nl: number;
        let start = 0;
        while ((nl = pending.indexOf('\n', start)) >= 0) {
          const line = pending.slice(start, nl);
          start = nl + 1;
          replies++;
          if (line.startsWith('+')) stats.ok++;
          else {
            stats.errorCount++;
            if (stats.errors.length < 5) stats.errors.push(line.trim());
          }
        }
        pending = pending.slice(start);
        // Keep two batches in flight: the server never waits for the next one.
        if (replies + batch >= sentUpTo) sendNext();
        if (replies >= keys.length && !settled) {
          settled = true;
          clearTimeout(guard);
          opts.signal?.removeEventListener('abort', onAbort);
          resolve();
        }
      });
      s.once('error', (e) => fail(new RespError(`SET load on :${port}: ${e.message}`)));
      s.once('close', () => fail(new RespError(`:${port} closed the connection after ${replies} of ${keys.length} replies`)));
      sendNext();
      sendNext();
    });
  } finally {
    s.destroy();
  }
  stats.seconds = (performance.now() - t0) / 1000;
  return stats;
}

/** `n` keys `${prefix}${i}` (i zero-padded to 8 digits): distinct, and hashed over all slots. */
export function benchKeys(n: number, prefix = 'bench:'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(8, '0')}`);
}

/** The keys of benchKeys(n), made on demand: no array of n strings in the harness (n = 10M). */
export function benchKeyList(n: number, prefix = 'bench:'): KeyList {
  return { length: n, at: (i) => (i >= 0 && i < n ? `${prefix}${String(i).padStart(8, '0')}` : undefined) };
}

/** A fixed printable value of `bytes` bytes. */
export function fixedValue(bytes = 100): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = 0x61 + (i % 26);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Redis Cluster on loopback (the peer of the migration and failover scenarios).
// ---------------------------------------------------------------------------------------------

/** CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with. */
export function crc16(buf: Uint8Array): number {
  let crc = 0;
  for (const byte of buf) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The hash slot (0..16383) of a key, honouring `{hash tags}` as Redis Cluster does. */
export function keySlot(key: string): number {
  let k = Buffer.from(key, 'utf8');
  const open = k.indexOf(0x7b); // {
  if (open >= 0) {
    const close = k.indexOf(0x7d, open + 1); // }
    if (close > open + 1) k = k.subarray(open + 1, close);
  }
  return crc16(k) % 16384;
}

export interface RedisNodeRow {
  id: string;
  port: number;
  flags: string[];
  /** Master's id for a replica, null for a master. */
  masterId: string | null;
  connected: boolean;
  /** Slot ranges [from, to] this node serves (masters). */
  slots: [number, number][];
}

/** Parses `CLUSTER NODES` output (one line per node; importing/migrating markers skipped). */
export function parseClusterNodes(text: string): RedisNodeRow[] {
  const out: RedisNodeRow[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 8) continue;
    const addr = f[1]!.split('@')[0]!;
    const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
    const slots: [number, number][] = [];
    for (const s of f.slice(8)) {
      if (s.startsWith('[')) continue;
      const [a, b] = s.split('-');
      slots.push([Number(a), Number(b ?? a)]);
    }
    out.push({ id: f[0]!, port, flags: f[2]!.split(','), masterId: f[3] === '-' ? null : f[3]!, connected: f[7] === 'connected', slots });
  }
  return out;
}

export interface RedisClusterNode {
  port: number;
  /** Cluster bus port (set explicitly with --cluster-port: port + 10000 may be taken). */
  busPort: number;
  proc: Proc;
}

export interface RedisClusterOptions {
  /** Masters. Default 3 (the least `redis-cli --cluster create` accepts). */
  masters?: number;
  /** Replicas per master. Default 0. */
  replicas?: number;
  /** cluster-node-timeout in ms: how long a node may be unreachable before it is failed. Default 5000. */
  nodeTimeoutMs?: number;
  /** Progress lines. Default silent. */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export class RedisClusterError extends Error {
  readonly code = 'BENCH_REDIS_CLUSTER';
  override name = 'RedisClusterError';
}

export function isRedisClusterError(e: unknown): e is RedisClusterError {
  return e instanceof RedisClusterError;
}

/**
 * Runs a short-lived tool (redis-cli) as a tracked child, so a stuck one is stopped by PID on
 * timeout or abort; resolves with its exit code and combined output.
 */
export async function runTool(
  name: string,
  command: string,
  args: readonly string[],
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<{ code: number | null; output: string; seconds: number }> {
  opts.signal?.throwIfAborted();
  const t0 = performance.now();
  const proc = startProcess({ name, command, args, cwd: tmpdir() });
  const stop = () => void proc.stop(1000);
  const timer = setTimeout(stop, opts.timeoutMs ?? 60_000);
  opts.signal?.addEventListener('abort', stop, { once: true });
  const exit = await proc.exited;
  clearTimeout(timer);
  opts.signal?.removeEventListener('abort', stop);
  const seconds = (performance.now() - t0) / 1000;
  opts.signal?.throwIfAborted();
  // redis-cli colours its output even into a file.
  const output = readFileSync(proc.logFile, 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
  return { code: exit.code, output, seconds };
}

/** Polls `check` every `intervalMs` until it returns true; throws RedisClusterError on timeout. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs: number, signal?: AbortSignal, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await sleep(intervalMs);
  }
  throw new RedisClusterError(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A running Redis Cluster; every process is tracked by procs.ts and stopped by PID in stop(). */
export class RedisCluster {
  readonly dir: string;
  readonly nodeTimeoutMs: number;
  /** Every node started, in start order (masters first as created, then added ones). */
  readonly nodes: RedisClusterNode[] = [];
  private readonly log: (line: string) => void;
  private readonly signal: AbortSignal | undefined;

  private constructor(dir: string, nodeTimeoutMs: number, log: (line: string) => void, signal: AbortSignal | undefined) {
    this.dir = dir;
    this.nodeTimeoutMs = nodeTimeoutMs;
    this.log = log;
    this.signal = signal;
  }

  /**
   * Starts masters × (1 + replicas) redis-servers with cluster mode on, persistence off, creates
   * the cluster with `redis-cli --cluster create` and waits until every node says cluster_state:ok.
   */
  static async start(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
    const masters = opts.masters ?? 3;
    const replicas = opts.replicas ?? 0;
    if (!Number.isInteger(masters) || masters < 3) throw new RedisClusterError(`masters must be an integer >= 3. Got: ${masters}`);
    const c = new RedisCluster(mkdtempSync(join(tmpdir(), 'jincache-bench-rc-')), opts.nodeTimeoutMs ?? 5000, opts.log ?? (() => {}), opts.signal);
    try {
      const total = masters * (1 + replicas);
      await Promise.all(Array.from({ length: total }, () => c.startNode()));
      const addrs = c.nodes.map((n) => `127.0.0.1:${n.port}`);
      const r = await runTool('redis-cli-create', 'redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', String(replicas), '--cluster-yes'], {
        timeoutMs: 60_000,
        signal: c.signal,
      });
      if (r.code !== 0) throw new RedisClusterError(`redis-cli --cluster create exited ${r.code}:\n${r.output.slice(-2000)}`);
      await c.waitConverged(total);
      if (replicas > 0) await c.waitReplicasSynced(masters * replicas);
      c.log(`  redis cluster: ${masters} masters × ${replicas} replica(s) on ${addrs.join(' ')} (node timeout ${c.nodeTimeoutMs} ms)`);
      return c;
    } catch (e) {
      await c.stop();
      throw e;
    }
  }

  /** Starts one empty cluster-mode redis-server (not yet part of the cluster). */
  private async startNode(): Promise<RedisClusterNode> {
    const [port, busPort] = (await freePorts(2)) as [number, number];
    const proc = startProcess({
      name: `redis-cluster-${port}`,
      command: 'redis-server',
      args: [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-port', String(busPort),
        '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', String(this.nodeTimeoutMs),
        '--dir', this.dir,
        '--save', '',
        '--appendonly', 'no',
      ],
      cwd: this.dir,
    });
    const node = { port, busPort, proc };
    this.nodes.push(node);
    await waitForPort(port, { proc, timeoutMs: 10_000 });
    return node;
  }

  /** Nodes still running. */
  live(): RedisClusterNode[] {
    return this.nodes.filter((n) => n.proc.alive());
  }

  /** Waits until every live node reports cluster_state:ok, all slots assigned and `known` nodes. */
  async waitConverged(known: number, timeoutMs = 30_000): Promise<void> {
    await until(
      `cluster_state:ok on ${this.live().length} nodes`,
      async () => {
        for (const n of this.live()) {
          const info = parseInfo(await respText(n.port, ['CLUSTER', 'INFO'], 2000));
          if (info.get('cluster_state') !== 'ok' || info.get('cluster_slots_assigned') !== '16384' || Number(info.get('cluster_known_nodes')) < known) return false;
        }
        return true;
      },
      timeoutMs,
      this.signal,
    );
  }

  /**
   * Waits until every replica reports master_link_status:up. A replica that never completed its
   * first sync refuses to fail over ("disconnected from master for longer than allowed"), so a
   * failover measured before this would measure nothing. Also waits until every node sees
   * `expected` replicas: right after create, gossip may still show a replica as an empty master.
   */
  async waitReplicasSynced(expected: number, timeoutMs = 30_000): Promise<void> {
    await until(
      `every node to see ${expected} replicas, each synced with its master`,
      async () => {
        for (const n of this.live()) {
          if ((await this.topology(n.port)).filter((r) => r.masterId !== null).length !== expected) return false;
        }
        for (const row of await this.topology()) {
          if (row.masterId === null) continue;
          const info = parseInfo(await respText(row.port, ['INFO', 'replication'], 2000));
          if (info.get('master_link_status') !== 'up') return false;
        }
        return true;
      },
      timeoutMs,
      this.signal,
    );
  }

  /** `CLUSTER NODES` as seen by the node on `port` (default: the first live node). */
  async topology(port = this.live()[0]?.port): Promise<RedisNodeRow[]> {
    if (port === undefined) throw new RedisClusterError('no live node');
    return parseClusterNodes(await respText(port, ['CLUSTER', 'NODES'], 2000));
  }

  /** slot -> port of the master serving it, as seen by `port`. */
  async slotOwners(port?: number): Promise<Int32Array> {
    const owners = new Int32Array(16384).fill(-1);
    for (const row of await this.topology(port)) {
      if (!row.flags.includes('master')) continue;
      for (const [a, b] of row.slots) owners.fill(row.port, a, b + 1);
    }
    return owners;
  }

  /**
   * SETs every key on the master serving its slot, pipelined over one connection per master, in
   * parallel. Throws if any SET failed.
   */
  async load(keys: readonly string[], value: Buffer): Promise<LoadStats> {
    const owners = await this.slotOwners();
    const byPort = new Map<number, string[]>();
    for (const k of keys) {
      const port = owners[keySlot(k)]!;
      if (port < 0) throw new RedisClusterError(`slot of ${k} has no master`);
      let list = byPort.get(port);
      if (list === undefined) byPort.set(port, (list = []));
      list.push(k);
    }
    const t0 = performance.now();
    const parts = await Promise.all([...byPort].map(([port, ks]) => pipelineSet(port, ks, value, { signal: this.signal })));
    const total: LoadStats = { sent: 0, ok: 0, errors: [], errorCount: 0, seconds: (performance.now() - t0) / 1000 };
    for (const p of parts) {
      total.sent += p.sent;
      total.ok += p.ok;
      total.errorCount += p.errorCount;
      total.errors.push(...p.errors);
    }
    if (total.errorCount > 0) throw new RedisClusterError(`${total.errorCount} of ${total.sent} SETs failed, e.g. ${total.errors[0]}`);
    return total;
  }

  /** DBSIZE of one node. */
  async dbsize(port: number): Promise<number> {
    const r = await respCall(port, ['DBSIZE'], 5000);
    if (typeof r !== 'number') throw new RedisClusterError(`DBSIZE on :${port} answered ${JSON.stringify(r)}`);
    return r;
  }

  /** Sum of DBSIZE over the live masters. */
  async totalKeys(): Promise<number> {
    const masters = (await this.topology()).filter((r) => r.flags.includes('master') && !r.flags.includes('fail'));
    let sum = 0;
    for (const m of masters) sum += await this.dbsize(m.port);
    return sum;
  }

  /**
   * Starts an empty master and joins it with `redis-cli --cluster add-node`, then waits until every
   * node knows it (a rebalance right after would otherwise not see it everywhere).
   */
  async addEmptyMaster(): Promise<RedisClusterNode> {
    const seed = this.live()[0];
    if (seed === undefined) throw new RedisClusterError('no live node to join');
    const node = await this.startNode();
    const r = await runTool('redis-cli-add-node', 'redis-cli', ['--cluster', 'add-node', `127.0.0.1:${node.port}`, `127.0.0.1:${seed.port}`], {
      timeoutMs: 30_000,
      signal: this.signal,
    });
    if (r.code !== 0) throw new RedisClusterError(`redis-cli --cluster add-node exited ${r.code}:\n${r.output.slice(-2000)}`);
    const known = this.live().length;
    await until(
      `every node to know the new master :${node.port}`,
      async () => {
        for (const n of this.live()) {
          const rows = await this.topology(n.port);
          const row = rows.find((x) => x.port === node.port);
          if (rows.length < known || row === undefined || !row.connected || row.flags.includes('handshake') || row.flags.includes('noaddr')) return false;
        }
        return true;
      },
      30_000,
      this.signal,
    );
    // A node that just joined answers CLUSTERDOWN (and so refuses MIGRATE) until its own state
    // turns ok, up to a rejoin delay later.
    await this.waitConverged(known);
    return node;
  }

  /**
   * `redis-cli --cluster rebalance 127.0.0.1:PORT --cluster-use-empty-masters` (plus `extraArgs`),
   * timed wall-clock from start to exit. Throws when it fails.
   */
  async rebalance(extraArgs: readonly string[] = [], timeoutMs = 600_000): Promise<{ seconds: number; output: string }> {
    const seed = this.live()[0];
    if (seed === undefined) throw new RedisClusterError('no live node');
    const r = await runTool('redis-cli-rebalance', 'redis-cli', ['--cluster', 'rebalance', `127.0.0.1:${seed.port}`, '--cluster-use-empty-masters', ...extraArgs], {
      timeoutMs,
      signal: this.signal,
    });
    if (r.code !== 0) throw new RedisClusterError(`redis-cli --cluster rebalance exited ${r.code}:\n${r.output.slice(-2000)}`);
    return { seconds: r.seconds, output: r.output };
  }

  /** Stops every node by PID and removes the cluster's directory. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.proc.stop(2000)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
