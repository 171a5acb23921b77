/**
 * A jincache cluster on namespaced test hosts: a 3-member etcd, one member per host, and nodes,
 * one per host, each `node bin/jincache.js serve --config FILE` inside its host's namespace,
 * bound to the host's address (port 7000), with etcd on the members' addresses.
 *
 * Per node, optionally:
 *  - a relay (./relay.ts, the project's fault proxy) on port 7001 that the node advertises to
 *    its peers, for delay and reordering (no netem on this kernel);
 *  - a skewable wall clock: libfaketime preloaded with a clock file (FAKETIME_TIMESTAMP_FILE,
 *    re-read every second), only the wall clock faked (the monotonic clock, timers, stay real);
 *  - extra config (e.g. LevelDB on a tmpfs).
 *
 * Clients and checks run in the test process (the root namespace) and talk to the nodes over
 * the bridge with {@link HostCluster.headers}, which carry the credential when the nodes need one.
 */
import { mkdirSync, readFileSync, writeFileSync, globSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import type { Etcd3 } from 'etcd3';
import { decodeTable, type PartitionTable } from '../../src/core/placement/table.ts';
import { createEtcdClient } from '../../src/discovery/etcd-client.ts';
import { BIN } from '../helpers/cluster.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import type { FaultMode } from '../helpers/fault-proxy.ts';
import { IP_BIN, type HostProcess, type Lab, type LabHost } from './lab.ts';

export const NODE_PORT = 7000;
export const RELAY_PORT = 7001;
const RELAY = resolve(import.meta.dirname, 'relay.ts');
const LIBFAKETIME = globSync('/usr/lib/*/faketime/libfaketime.so.1')[0];

/**
 * The credential every namespaced node is given, and every client request carries. SPEC §7: a
 * node bound to a non-loopback address without a password refuses to start.
 */
export const HOST_AUTH: NodeAuth | undefined = { password: 'chaos-netns' };

export interface NodeAuth {
  /** `auth.requirepass` of the node; sent as `Authorization: Bearer` on client requests. */
  password: string;
  /** `cluster.secret` (node-to-node requests), when the peer endpoints need one too. */
  secret?: string;
}

export interface NodeSpec {
  id: string;
  /** Lab host name. */
  host: string;
  /** Merged over the cluster's config for this node only. */
  config?: Record<string, unknown>;
  /** Put a relay in front of the node for its peers. Default false. */
  relay?: boolean;
  /** Start the node with a skewable wall clock. Default false. */
  clock?: boolean;
}

export interface HostClusterOptions {
  lab: Lab;
  /** Lab host names of the 3 etcd members. */
  etcdHosts: readonly [string, string, string];
  nodes: readonly NodeSpec[];
  /** Config every node gets (SPEC §5 shape). */
  config: Record<string, unknown>;
  /** Ids of the nodes to start now (default: all). The others wait for `node(id).start()`. */
  startNow?: readonly string[];
  /** Default {@link HOST_AUTH}. */
  auth?: NodeAuth;
}

export interface Relay {
  set(mode: FaultMode): Promise<void>;
}

export interface SkewableClock {
  /** Shift the node's wall clock by `ms` from real time (0: back to real time); effective within ~1 s. */
  skew(ms: number): Promise<void>;
}

export interface HostNode {
  readonly id: string;
  readonly host: LabHost;
  /** Client API base URL (the node itself). */
  readonly url: string;
  /** What the node advertises to peers (its relay when it has one). */
  readonly advertise: string;
  readonly relay: Relay | undefined;
  readonly clock: SkewableClock | undefined;
  /** stdout and stderr of every start, appended. */
  readonly logFile: string;
  pid(): number;
  running(): boolean;
  /** Running and not SIGSTOPped. */
  serving(): boolean;
  /** Start (or start again after a kill); resolves when /health answers 200. */
  start(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  pause(): void;
  resume(): void;
  log(): string;
}

export interface HostCluster {
  readonly lab: Lab;
  readonly etcd: EtcdCluster;
  readonly etcdClient: Etcd3;
  readonly nodes: readonly HostNode[];
  node(id: string): HostNode;
  serving(): HostNode[];
  /** Headers for client requests (the credential, when there is one). */
  headers(): Record<string, string>;
  /** The partition table stored in etcd. */
  table(): Promise<PartitionTable>;
  stop(): Promise<void>;
}

/** Deep merge of plain objects (arrays and scalars of `b` win). */
export function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const old = out[k];
    out[k] = isPlain(old) && isPlain(v) ? merge(old, v) : v;
  }
  return out;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Start etcd on its three hosts, then the nodes; throws (stopping what it started) on failure. */
export async function startHostCluster(opts: HostClusterOptions): Promise<HostCluster> {
  const { lab } = opts;
  const auth = opts.auth ?? HOST_AUTH;
  const etcd = await startEtcd({
    members: 3,
    hosts: opts.etcdHosts.map((name) => {
      const h = lab.host(name);
      return { ip: h.ip, command: [IP_BIN, 'netns', 'exec', h.ns] };
    }),
  });
  const etcdClient = createEtcdClient({ endpoints: etcd.endpoints });
  const headers = (): Record<string, string> => (auth === undefined ? {} : { authorization: `Bearer ${auth.password}` });
  const nodes = opts.nodes.map((spec) => makeNode(lab, spec, opts.config, etcd.endpoints, auth));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const cluster: HostCluster = {
    lab,
    etcd,
    etcdClient,
    nodes,
    node(id) {
      const n = byId.get(id);
      if (n === undefined) throw new RangeError(`no node "${id}" (nodes: ${[...byId.keys()].join(', ')})`);
      return n;
    },
    serving: () => nodes.filter((n) => n.serving()),
    headers,
    async table() {
      const raw = await etcdClient.get('/jincache/ring').string();
      if (raw === null) throw new Error('no partition table in etcd yet');
      return decodeTable(raw);
    },
    async stop() {
      etcdClient.close();
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      await etcd.stop();
    },
  };
  try {
    const now = new Set(opts.startNow ?? nodes.map((n) => n.id));
    await Promise.all(nodes.filter((n) => now.has(n.id)).map((n) => n.start()));
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

function makeNode(lab: Lab, spec: NodeSpec, shared: Record<string, unknown>, etcdEndpoints: readonly string[], auth: NodeAuth | undefined): HostNode {
  const host = lab.host(spec.host);
  const url = `http://${host.ip}:${NODE_PORT}`;
  const advertise = spec.relay ? `http://${host.ip}:${RELAY_PORT}` : url;
  const dir = join(lab.dir, spec.id);
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'config.yaml');
  const logFile = join(dir, 'node.log');
  const authConfig = auth === undefined ? {} : { auth: { requirepass: auth.password }, ...(auth.secret === undefined ? {} : { cluster: { secret: auth.secret } }) };
  const config = merge(merge(merge({ log: { level: process.env.JINCACHE_CHAOS_LOG_LEVEL ?? 'warn' }, cluster: { partitions: 256 } }, shared), spec.config ?? {}), {
    ...authConfig,
    node: { id: spec.id },
    server: { host: host.ip, port: NODE_PORT, advertise },
    etcd: { enabled: true, endpoints: [...etcdEndpoints] },
  });
  writeFileSync(configFile, stringify(config));

  const clockFile = join(dir, 'clock');
  let clockEnv: Record<string, string> = {};
  let clock: SkewableClock | undefined;
  if (spec.clock) {
    if (LIBFAKETIME === undefined) throw new Error('libfaketime is not installed; run scripts/install-deps.sh netns');
    writeFileSync(clockFile, '+0\n');
    clockEnv = { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_CACHE_DURATION: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
    clock = {
      async skew(ms) {
        writeFileSync(clockFile, `${ms >= 0 ? '+' : '-'}${Math.abs(ms) / 1000}s\n`);
        // libfaketime re-reads the file at most once a second
        await sleep(1200);
      },
    };
  }

  let proc: HostProcess | undefined;
  let paused = false;
  let relayProc: HostProcess | undefined;
  let relayLines: Interface | undefined;
  const replies: ((line: string) => void)[] = [];

  const startRelay = async (): Promise<void> => {
    if (relayProc?.running()) return;
    relayProc = lab.spawn(host, process.execPath, [RELAY, '--host', host.ip, '--port', String(RELAY_PORT), '--target', String(NODE_PORT)], { stdin: true, stdout: true, logFile: join(dir, 'relay.log') });
    relayLines = createInterface({ input: relayProc.child.stdout! });
    const ready = new Promise<void>((ok, fail) => {
      relayLines!.once('line', (l) => (l === 'ready' ? ok() : fail(new Error(`relay of ${spec.id}: ${l}`))));
      void relayProc!.exited.then(() => fail(new Error(`relay of ${spec.id} exited`)));
    });
    await ready;
    relayLines.on('line', (l) => replies.shift()?.(l));
  };

  const running = (): boolean => proc?.running() ?? false;
  const node: HostNode = {
    id: spec.id,
    host,
    url,
    advertise,
    relay: spec.relay
      ? {
          async set(mode) {
            if (relayProc === undefined || !relayProc.running()) throw new Error(`relay of ${spec.id} is not running`);
            const reply = new Promise<string>((r) => replies.push(r));
            relayProc.child.stdin!.write(`${JSON.stringify(mode)}\n`);
            const line = await reply;
            if (line !== 'ok') throw new Error(`relay of ${spec.id}: ${line}`);
          },
        }
      : undefined,
    clock,
    logFile,
    pid: () => proc?.pid ?? 0,
    running,
    serving: () => running() && !paused,
    async start() {
      if (running()) throw new Error(`${spec.id} is running`);
      if (spec.relay) await startRelay();
      const p = lab.spawn(host, process.execPath, [BIN, 'serve', '--config', configFile], { env: clockEnv, logFile });
      proc = p;
      paused = false;
      const end = Date.now() + 30_000;
      while (Date.now() < end) {
        if (!p.running()) throw new Error(`${spec.id} exited during start-up:\n${node.log()}`);
        try {
          if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })).ok) return;
        } catch {
          // not yet
        }
        await sleep(100);
      }
      throw new Error(`${spec.id} did not start within 30 s:\n${node.log()}`);
    },
    async kill(signal = 'SIGKILL') {
      paused = false;
      await proc?.stop(signal);
    },
    pause() {
      proc?.signal('SIGSTOP');
      paused = true;
    },
    resume() {
      proc?.signal('SIGCONT');
      paused = false;
    },
    log() {
      try {
        return readFileSync(logFile, 'utf8').slice(-4000);
      } catch {
        return '';
      }
    },
  };
  return node;
}

/** GET /cluster of one node (null when it does not answer within `timeoutMs`). */
export async function clusterInfo(node: HostNode, headers: Record<string, string>, timeoutMs = 1000): Promise<any> {
  try {
    const res = await fetch(`${node.url}/cluster`, { headers, signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

/** Poll every node `nodes()` returns until `pred(info)` holds at all of them; the ms it took, or -1. */
export async function until(cluster: HostCluster, nodes: () => readonly HostNode[], pred: (info: any) => boolean, timeoutMs: number, everyMs = 100): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const list = nodes();
    const infos = await Promise.all(list.map((n) => clusterInfo(n, cluster.headers())));
    if (infos.length > 0 && infos.every((i) => i !== null && pred(i))) return Date.now() - start;
    await sleep(everyMs);
  }
  return -1;
}

/** Every node in `ids` is listed and usable (not down or suspected) in `info`. */
export function sees(info: { nodes?: { id: string; health?: string }[] }, ids: readonly string[]): boolean {
  const nodes = info.nodes ?? [];
  return ids.every((id) => {
    const n = nodes.find((x) => x.id === id);
    return n !== undefined && n.health !== 'down' && n.health !== 'suspected';
  });
}
