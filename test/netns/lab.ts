/**
 * Test hosts on one machine, each in a network namespace of its own (see
 * /work/shared/NETNS-NOTES.md for what works on this kernel):
 *
 *   root namespace     bridge jcb<run>  10.X.Y.1/24   <- the test process: clients, checks
 *     ├─ veth jcv<run>0 ─ netns jcn-<run>-e1  eth0 10.X.Y.10
 *     ├─ veth jcv<run>1 ─ netns jcn-<run>-n1  eth0 10.X.Y.11
 *     └─ ...
 *
 * `<run>` is a random id per lab, and 10.X.Y.0/24 is picked per lab among subnets no route or
 * address of this machine overlaps, so parallel or crashed runs never collide. Processes are
 * started inside a host with `ip netns exec` (which execs, so the PID we hold is the program's).
 * Faults are nft tables inside the hosts (./nft.ts); the bridge address is never matched, so the
 * harness always reaches every host.
 *
 * Teardown is one synchronous routine, run by destroy(), on process exit, on SIGINT/SIGTERM/
 * SIGHUP, and for every earlier run whose owner process is gone (a crashed run; its owner file
 * in /run/jincache-netns names the PID and start time): kill the processes left in its
 * namespaces (by PID, from `ip netns pids`), unmount its tmpfs, delete its namespaces and links.
 *
 * Where namespaces cannot be created (not root, no iproute2/nftables, no permission), tests skip
 * with the reason {@link netnsUnavailable} gives.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plan, renderHeal, renderHost, type Fault } from './nft.ts';

export const IP_BIN = existsSync('/usr/sbin/ip') ? '/usr/sbin/ip' : '/bin/ip';
export const NFT_BIN = '/usr/sbin/nft';
const OWNERS_DIR = '/run/jincache-netns';
const NS_PREFIX = 'jcn-';
const BRIDGE_PREFIX = 'jcb';
const VETH_PREFIX = 'jcv';
/** Per-run work dir (logs, config files, data, tmpfs mounts). */
const WORK_PREFIX = join(tmpdir(), 'jincache-netns-');
/** Run ids: 5 characters of [a-z0-9], so `jcv<run><index>` fits the kernel's 15-character link names. */
const RUN_ID = /^[a-z0-9]{5}$/;
/** Hosts get .10, .11, ... of the subnet; .1 is the bridge (the harness). */
const FIRST_HOST = 10;
const MAX_HOSTS = 240;

export interface LabHost {
  /** Name given by the test, e.g. "n1", "e2". */
  readonly name: string;
  /** The namespace, `jcn-<run>-<name>`. */
  readonly ns: string;
  readonly ip: string;
}

export interface HostProcess {
  readonly pid: number;
  readonly host: LabHost;
  readonly child: ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  running(): boolean;
  /** Send `signal` (default SIGKILL) and wait for the exit (SIGKILL after `graceMs`, default 10 s). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  signal(signal: NodeJS.Signals): void;
}

export interface SpawnOptions {
  /** Added to the harness's environment. */
  env?: Record<string, string>;
  /** Append stdout and stderr here. */
  logFile?: string;
  /** Keep stdin as a pipe (e.g. a control channel). Default: ignored. */
  stdin?: boolean;
  /** Keep stdout as a readable stream (instead of the log file only). Default false. */
  stdout?: boolean;
}

export interface Tmpfs {
  readonly path: string;
  readonly bytes: number;
  /** Write a filler file until the file system is full; resolves the bytes written. */
  fill(): number;
  /** Remove the filler again. */
  free(): void;
  unmount(): void;
}

export interface Lab {
  readonly runId: string;
  /** e.g. "10.213.7" */
  readonly subnet: string;
  /** The bridge's address, where the harness's own traffic comes from. */
  readonly gateway: string;
  readonly hosts: readonly LabHost[];
  /** Work dir of this run (removed by destroy unless JINCACHE_KEEP_LOGS=1). */
  readonly dir: string;
  host(name: string): LabHost;
  /** Start `cmd` inside `host`'s namespace. */
  spawn(host: LabHost, cmd: string, args: readonly string[], opts?: SpawnOptions): HostProcess;
  /** Run `cmd` inside `host` to completion (10 s at most). */
  exec(host: LabHost, cmd: string, args: readonly string[], input?: string): { code: number; stdout: string; stderr: string };
  /** Replace every host's fault table with what `faults` needs (hosts without a rule get none). */
  faults(faults: readonly Fault[]): void;
  /** Remove every fault. */
  heal(): void;
  /** Mount a tmpfs of `bytes` for a test (unmounted by destroy). */
  tmpfs(name: string, bytes: number): Tmpfs;
  destroy(): Promise<void>;
}

export interface LabOptions {
  /** Host names, e.g. ["e1", "e2", "e3", "n1", ...]: distinct, [a-z0-9]{1,8}. */
  hosts: readonly string[];
}

let unavailable: string | undefined | null = null;

/**
 * Why namespaced hosts cannot run here (a sentence for a skip message), or undefined when they
 * can. Probes once per process by creating and deleting a namespace.
 */
export function netnsUnavailable(): string | undefined {
  if (unavailable !== null) return unavailable;
  unavailable = probe();
  return unavailable;
}

function probe(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) return `network namespaces need root (running as uid ${uid})`;
  if (!existsSync(IP_BIN)) return `'ip' (iproute2) is not installed; run scripts/install-deps.sh netns`;
  if (!existsSync(NFT_BIN)) return `'nft' (nftables) is not installed; run scripts/install-deps.sh netns`;
  const ns = `${NS_PREFIX}${newRunId()}-probe`;
  const add = spawnSync(IP_BIN, ['netns', 'add', ns], { encoding: 'utf8' });
  if (add.status !== 0) return `cannot create a network namespace (ip netns add: ${(add.stderr || add.error?.message || '').trim()})`;
  const nft = spawnSync(IP_BIN, ['netns', 'exec', ns, NFT_BIN, 'list', 'tables'], { encoding: 'utf8' });
  spawnSync(IP_BIN, ['netns', 'del', ns]);
  if (nft.status !== 0) return `nft does not work inside a namespace (${(nft.stderr || '').trim()})`;
  return undefined;
}

function newRunId(): string {
  let s = '';
  while (s.length < 5) s += 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(Math.random() * 36)];
  return s;
}

// ---- addresses ------------------------------------------------------------------------------

/** Parse "a.b.c.d/n" (or a bare address: /32) into [network as uint32, prefix length]. */
export function parseCidr(cidr: string): [number, number] {
  const [addr, len] = cidr.split('/');
  const parts = (addr ?? '').split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new RangeError(`not an IPv4 address: "${cidr}"`);
  const bits = len === undefined ? 32 : Number(len);
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw new RangeError(`bad prefix length in "${cidr}"`);
  const value = ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [(value & mask) >>> 0, bits];
}

/** Do two IPv4 networks share an address? */
export function overlaps(a: string, b: string): boolean {
  const [na, la] = parseCidr(a);
  const [nb, lb] = parseCidr(b);
  const len = Math.min(la, lb);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((na & mask) >>> 0) === ((nb & mask) >>> 0);
}

/**
 * A 10.X.Y.0/24 (X in 200..249) that overlaps none of `used` (the machine's routes and
 * addresses; "default" entries are ignored), drawn with `random`.
 */
export function pickSubnet(used: readonly string[], random: () => number = Math.random): string {
  const nets = used.filter((u) => u !== 'default' && /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(u));
  for (let attempt = 0; attempt < 1000; attempt++) {
    const subnet = `10.${200 + Math.floor(random() * 50)}.${Math.floor(random() * 256)}`;
    if (!nets.some((n) => overlaps(n, `${subnet}.0/24`))) return subnet;
  }
  throw new Error(`no free 10.200-249.x.0/24 subnet (routes: ${nets.join(', ')})`);
}

/** Every IPv4 route destination and interface network of this machine's root namespace. */
function usedNetworks(): string[] {
  const routes = spawnSync(IP_BIN, ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' }).stdout ?? '';
  const addrs = spawnSync(IP_BIN, ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }).stdout ?? '';
  const out: string[] = [];
  for (const line of routes.split('\n')) {
    const words = line.trim().split(/\s+/);
    // "local 10.0.0.1 dev ...", "broadcast ...", or the destination first
    const dest = ['local', 'broadcast', 'unicast', 'anycast', 'multicast'].includes(words[0] ?? '') ? words[1] : words[0];
    if (dest !== undefined && dest !== '') out.push(dest);
  }
  for (const m of addrs.matchAll(/inet (\d+\.\d+\.\d+\.\d+\/\d+)/g)) out.push(m[1]!);
  return out;
}

// ---- teardown (one routine for every path) ---------------------------------------------------

interface RunResources {
  runId: string;
  /** Processes we started and track, SIGKILLed first. */
  pids: Set<number>;
}

const liveRuns = new Map<string, RunResources>();
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const r of liveRuns.values()) removeRun(r.runId, r.pids);
    liveRuns.clear();
  });
  // a signal skips 'exit': clean up, then re-raise so the default action still happens
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const r of liveRuns.values()) removeRun(r.runId, r.pids);
      liveRuns.clear();
      process.kill(process.pid, sig);
    });
  }
}

function sh(cmd: string, args: readonly string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 10_000 });
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error.message) : '') };
}

function must(cmd: string, args: readonly string[], input?: string): string {
  const r = sh(cmd, args, input);
  if (r.code !== 0) throw new Error(`${[cmd, ...args].join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A PID that has not exited (zombies count as gone: they hold no namespace). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // field 22 (starttime), counted after the ")" that ends the command name
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function namespacesOf(runId: string): string[] {
  const out = sh(IP_BIN, ['netns', 'list']).stdout;
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${NS_PREFIX}${runId}-`));
}

function linksOf(runId: string): string[] {
  const out = sh(IP_BIN, ['-o', 'link', 'show']).stdout;
  const names: string[] = [];
  for (const m of out.matchAll(/^\d+: ([^:@\s]+)/gm)) {
    const n = m[1]!;
    if (n === `${BRIDGE_PREFIX}${runId}` || (n.startsWith(`${VETH_PREFIX}${runId}`) && n.length > VETH_PREFIX.length + 5)) names.push(n);
  }
  return names;
}

function mountsOf(runId: string): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  const dir = `${WORK_PREFIX}${runId}/`;
  return text
    .split('\n')
    .map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((m) => m.startsWith(dir))
    .sort((a, b) => b.length - a.length);
}

/**
 * Remove everything of run `runId`: processes (ours first, then any left in its namespaces),
 * tmpfs mounts, namespaces, links, the owner file and (unless JINCACHE_KEEP_LOGS=1) the work dir.
 */
function removeRun(runId: string, pids: Iterable<number> = []): void {
  const namespaces = namespacesOf(runId);
  const victims = new Set(pids);
  for (const ns of namespaces) {
    for (const p of sh(IP_BIN, ['netns', 'pids', ns]).stdout.split(/\s+/)) if (/^\d+$/.test(p)) victims.add(Number(p));
  }
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  // a namespace lives on while a process is inside it: wait (briefly) for them to die
  const end = Date.now() + 3000;
  while ([...victims].some(alive) && Date.now() < end) sleepSync(20);
  for (const m of mountsOf(runId)) sh('umount', ['-l', m]);
  for (const ns of namespaces) sh(IP_BIN, ['netns', 'del', ns]);
  for (const link of linksOf(runId)) sh(IP_BIN, ['link', 'del', link]);
  rmSync(join(OWNERS_DIR, runId), { force: true });
  if (process.env.JINCACHE_KEEP_LOGS !== '1') rmSync(`${WORK_PREFIX}${runId}`, { recursive: true, force: true });
}

/**
 * Remove what crashed earlier runs of this harness left behind (a run is stale when its owner
 * process is gone). Returns the run ids removed.
 */
export function cleanupStale(): string[] {
  const runs = new Set<string>();
  for (const l of sh(IP_BIN, ['netns', 'list']).stdout.split('\n')) {
    const m = /^jcn-([a-z0-9]{5})-/.exec(l);
    if (m) runs.add(m[1]!);
  }
  for (const m of sh(IP_BIN, ['-o', 'link', 'show']).stdout.matchAll(/^\d+: jc[bv]([a-z0-9]{5})/gm)) runs.add(m[1]!);
  if (existsSync(OWNERS_DIR)) for (const f of readdirSync(OWNERS_DIR)) if (RUN_ID.test(f)) runs.add(f);
  for (const f of readdirSync(tmpdir())) {
    const m = /^jincache-netns-([a-z0-9]{5})$/.exec(f);
    if (m) runs.add(m[1]!);
  }
  const removed: string[] = [];
  for (const runId of runs) {
    if (liveRuns.has(runId) || ownerAlive(runId)) continue;
    removeRun(runId);
    removed.push(runId);
  }
  return removed;
}

function ownerAlive(runId: string): boolean {
  let text: string;
  try {
    text = readFileSync(join(OWNERS_DIR, runId), 'utf8');
  } catch {
    return false;
  }
  const [pid, start] = text.trim().split(' ');
  return pid !== undefined && alive(Number(pid)) && startTimeOf(Number(pid)) === start;
}

// ---- the lab ------------------------------------------------------------------------------

/** Create the hosts. Throws (having removed what it made) when something fails. */
export function createLab(opts: LabOptions): Lab {
  const reason = netnsUnavailable();
  if (reason !== undefined) throw new Error(`network namespaces unavailable: ${reason}`);
  if (opts.hosts.length === 0 || opts.hosts.length > MAX_HOSTS) throw new RangeError(`createLab: 1..${MAX_HOSTS} hosts, got ${opts.hosts.length}`);
  for (const h of opts.hosts) if (!/^[a-z0-9]{1,8}$/.test(h)) throw new RangeError(`createLab: host names are [a-z0-9]{1,8}, got "${h}"`);
  if (new Set(opts.hosts).size !== opts.hosts.length) throw new RangeError(`createLab: duplicate host names in ${opts.hosts.join(', ')}`);
  installHooks();
  const stale = cleanupStale();
  if (stale.length > 0) console.log(`netns: removed ${stale.length} stale run(s) left by crashed tests: ${stale.join(', ')}`);

  const runId = newRunId();
  const res: RunResources = { runId, pids: new Set() };
  liveRuns.set(runId, res);
  mkdirSync(OWNERS_DIR, { recursive: true });
  writeFileSync(join(OWNERS_DIR, runId), `${process.pid} ${startTimeOf(process.pid)}\n`);
  const dir = `${WORK_PREFIX}${runId}`;
  mkdirSync(dir, { recursive: true });
  const children = new Set<HostProcess>();
  const mounts = new Set<Tmpfs>();
  const bridge = `${BRIDGE_PREFIX}${runId}`;

  try {
    const subnet = pickSubnet(usedNetworks());
    const gateway = `${subnet}.1`;
    must(IP_BIN, ['link', 'add', bridge, 'type', 'bridge']);
    must(IP_BIN, ['addr', 'add', `${gateway}/24`, 'dev', bridge]);
    must(IP_BIN, ['link', 'set', bridge, 'up']);
    // another run may have raced us to the same subnet: then two routes exist, start over
    const routes = sh(IP_BIN, ['-4', 'route', 'show', `${subnet}.0/24`]).stdout.trim().split('\n').filter(Boolean);
    if (routes.length !== 1) throw new Error(`subnet ${subnet}.0/24 is also routed elsewhere: ${routes.join('; ')}`);
    const hosts: LabHost[] = opts.hosts.map((name, i) => ({ name, ns: `${NS_PREFIX}${runId}-${name}`, ip: `${subnet}.${FIRST_HOST + i}` }));
    hosts.forEach((h, i) => {
      const veth = `${VETH_PREFIX}${runId}${i}`;
      must(IP_BIN, ['netns', 'add', h.ns]);
      must(IP_BIN, ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
      must(IP_BIN, ['link', 'set', veth, 'master', bridge, 'up']);
      must(IP_BIN, ['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      must(IP_BIN, ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
      must(IP_BIN, ['-n', h.ns, 'link', 'set', 'lo', 'up']);
    });
    const byName = new Map(hosts.map((h) => [h.name, h]));
    const addrOf = new Map(hosts.map((h) => [h.name, h.ip]));

    const lab: Lab = {
      runId,
      subnet,
      gateway,
      hosts,
      dir,
      host(name) {
        const h = byName.get(name);
        if (h === undefined) throw new RangeError(`lab: no host "${name}" (hosts: ${opts.hosts.join(', ')})`);
        return h;
      },
      spawn(host, cmd, args, sopts = {}) {
        const child = spawn(IP_BIN, ['netns', 'exec', host.ns, cmd, ...args], {
          env: { ...process.env, ...sopts.env },
          stdio: [sopts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        });
        if (child.pid === undefined) throw new Error(`could not start ${cmd} in ${host.ns}`);
        const pid = child.pid;
        res.pids.add(pid);
        if (sopts.logFile !== undefined) {
          const out = createWriteStream(sopts.logFile, { flags: 'a' });
          if (!sopts.stdout) child.stdout!.pipe(out);
          child.stderr!.pipe(out);
        } else {
          if (!sopts.stdout) child.stdout!.resume();
          child.stderr!.resume();
        }
        const exited = new Promise<void>((resolve) => {
          child.once('exit', () => {
            res.pids.delete(pid);
            children.delete(proc);
            resolve();
          });
        });
        const running = (): boolean => child.exitCode === null && child.signalCode === null;
        const proc: HostProcess = {
          pid,
          host,
          child,
          exited,
          running,
          signal(sig) {
            if (running()) child.kill(sig);
          },
          async stop(sig = 'SIGKILL', graceMs = 10_000) {
            if (!running()) return exited;
            // a stopped process acts on nothing but SIGKILL until it is continued
            if (sig !== 'SIGKILL') child.kill('SIGCONT');
            child.kill(sig);
            const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
            await exited;
            clearTimeout(timer);
          },
        };
        children.add(proc);
        return proc;
      },
      exec(host, cmd, args, input) {
        return sh(IP_BIN, ['netns', 'exec', host.ns, cmd, ...args], input);
      },
      faults(faults) {
        const rules = plan(faults, addrOf);
        for (const h of hosts) {
          const r = rules.get(h.name);
          must(IP_BIN, ['netns', 'exec', h.ns, NFT_BIN, '-f', '-'], r === undefined ? renderHeal() : renderHost(r));
        }
      },
      heal() {
        for (const h of hosts) must(IP_BIN, ['netns', 'exec', h.ns, NFT_BIN, '-f', '-'], renderHeal());
      },
      tmpfs(name, bytes) {
        const path = join(dir, `tmpfs-${name}`);
        mkdirSync(path, { recursive: true });
        must('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil(bytes / 1024)}k,mode=0755`, `jincache-${runId}`, path]);
        const filler = join(path, '.filler');
        let mounted = true;
        const t: Tmpfs = {
          path,
          bytes,
          fill() {
            const fd = openSync(filler, 'a');
            const chunk = Buffer.alloc(64 * 1024, 0x5a);
            let written = 0;
            try {
              for (;;) written += writeSync(fd, chunk, 0, chunk.length);
            } catch (e) {
              if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
              // smaller writes at the end, so the last free blocks are used up too
              for (let size = 32 * 1024; size >= 512; size /= 2) {
                try {
                  for (;;) written += writeSync(fd, chunk, 0, size);
                } catch {
                  // next smaller size
                }
              }
            } finally {
              closeSync(fd);
            }
            return written;
          },
          free() {
            rmSync(filler, { force: true });
          },
          unmount() {
            if (!mounted) return;
            mounted = false;
            sh('umount', ['-l', path]);
            mounts.delete(t);
          },
        };
        mounts.add(t);
        return t;
      },
      async destroy() {
        if (!liveRuns.has(runId)) return;
        await Promise.all([...children].map((c) => c.stop('SIGKILL')));
        liveRuns.delete(runId);
        removeRun(runId, res.pids);
      },
    };
    return lab;
  } catch (e) {
    liveRuns.delete(runId);
    removeRun(runId, res.pids);
    throw e;
  }
}

/** For tests of the teardown: the namespaces and links run `runId` still has. */
export function leftovers(runId: string): { namespaces: string[]; links: string[]; mounts: string[]; dir: boolean } {
  return { namespaces: namespacesOf(runId), links: linksOf(runId), mounts: mountsOf(runId), dir: existsSync(`${WORK_PREFIX}${runId}`) };
}
