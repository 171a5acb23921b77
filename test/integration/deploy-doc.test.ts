/**
 * docs/deploy.md, checked against namespaced test hosts: the document's blocks marked `test=NAME`
 * are run as written on four hosts cache1-cache4 (test/netns/lab.ts, one network namespace and
 * address each), and what the text promises is checked. The mapping from the document's hosts to
 * the test's is the one "How this document is tested" states, and only that:
 *
 *  - addresses: 10.0.0.11-14 → the test hosts', 10.0.1.0/24 (the clients) → this process's own;
 *  - paths: /etc/etcd/, /etc/jincache/, /etc/default/etcd, /var/lib/etcd/, /var/lib/jincache/ and
 *    /var/backups/ → under each host's own root directory; step 2's copies done as the text says;
 *  - per-host files: cache1's with the lines the document names (ETCD_NAME and *_URLS; node.id,
 *    server.host, server.advertise) changed to the host's name and address;
 *  - programs: /usr/bin/etcd with the etcd-env variables; the node with the unit's ExecStart
 *    arguments and EnvironmentFile variables, on this checkout's bin/jincache.js; `jincache` in a
 *    block is the same checkout; SIGTERM for `systemctl stop/restart`, SIGHUP for `reload`.
 *
 * The units are checked with `systemd-analyze verify` (which must print nothing) in a private
 * mount namespace where the unit's executables exist; without systemd-analyze, the keys the
 * document relies on are checked by a small parser instead.
 *
 * Bounded: the whole file takes well under 90 s; the lab's teardown kills every process and
 * removes every namespace, also when a step fails.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { BIN } from '../helpers/cluster.ts';
import { createLab, IP_BIN, NFT_BIN, netnsUnavailable, type HostProcess, type Lab, type LabHost } from '../netns/lab.ts';

const DOC = resolve(import.meta.dirname, '../../docs/deploy.md');
const INSTALL_SCRIPT = resolve(import.meta.dirname, '../../scripts/install-deps.sh');
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
/** Where the document's unit runs the installed package from (replaced by this checkout). */
const INSTALLED_NODE = '/opt/jincache/node_modules/node/bin/node';
const INSTALLED_BIN = '/opt/jincache/node_modules/jincache/bin/jincache.js';
const HOSTS = ['cache1', 'cache2', 'cache3', 'cache4'] as const;
type HostName = (typeof HOSTS)[number];
/** The hosts that run an etcd member and a node from the start (cache4 joins later). */
const FIRST = ['cache1', 'cache2', 'cache3'] as const;
/** The blocks the document must have. */
const BLOCKS = ['issue-host.sh', 'pki', 'etcd-env', 'etcd-dropin', 'etcd-users', 'jincache.yaml', 'secrets', 'jincache.service', 'smoke', 'status', 'nftables.conf', 'firewall-add', 'etcd-backup'];
/** Paths the test moves under a host's root (document: "How this document is tested"). */
const HOST_PATHS = /(?<![\w./-])\/(etc\/etcd\/|etc\/jincache\/|etc\/default\/etcd\b|var\/lib\/etcd\/|var\/lib\/jincache\/|var\/backups\/)/g;
/** The document's cache host addresses, 10.0.0.11 (cache1) to 10.0.0.14 (cache4). */
const DOC_ADDRESS = /\b10\.0\.0\.1([1-4])\b/g;
const DOC_CLIENTS = '10.0.1.0/24';

// ---- the document ---------------------------------------------------------------------------

interface Block {
  lang: string;
  code: string;
}

/** Every fenced block whose info string carries `test=NAME`, by name. */
function testedBlocks(markdown: string): Map<string, Block> {
  const blocks = new Map<string, Block>();
  for (const m of markdown.matchAll(/^```(\w+) test=(\S+)\n([\s\S]*?)^```$/gm)) {
    assert.ok(!blocks.has(m[2]!), `docs/deploy.md has two blocks named test=${m[2]}`);
    blocks.set(m[2]!, { lang: m[1]!, code: m[3]! });
  }
  return blocks;
}

/** The output a block promises in its `# → ...` comments, in order. */
function promised(code: string): string[] {
  return [...code.matchAll(/^# → (.*)$/gm)].map((m) => m[1]!.trimEnd());
}

/** The path a file block names in its first line (`# /etc/...`). */
function namedPath(code: string): string {
  const m = /^#\s*(\/\S+)/.exec(code);
  assert.ok(m, `a file block starts with a comment naming its path:\n${code.slice(0, 200)}`);
  return m[1]!;
}

/** KEY=VALUE lines (systemd EnvironmentFile and /etc/default syntax; # comments). */
function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    assert.ok(eq > 0, `not a KEY=VALUE line: "${t}"`);
    env[t.slice(0, eq)] = t.slice(eq + 1).replace(/^(['"])(.*)\1$/, '$2');
  }
  return env;
}

/** A unit file's sections and keys (the last value of a key wins, as for these keys in systemd). */
function parseUnit(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';')) continue;
    const s = /^\[(\w+)\]$/.exec(t);
    if (s) {
      current = new Map();
      sections.set(s[1]!, current);
      continue;
    }
    const eq = t.indexOf('=');
    assert.ok(current !== undefined && eq > 0, `unit line outside a section or without "=": "${t}"`);
    current.set(t.slice(0, eq).trim(), t.slice(eq + 1).trim());
  }
  return sections;
}

/** Host N's copy of a line that names cache1: its own name and address instead. */
function forHost(value: string, host: HostName): string {
  const n = HOSTS.indexOf(host) + 1;
  return value.replaceAll('cache1', host).replaceAll('10.0.0.11', `10.0.0.1${n}`);
}

// ---- running things -------------------------------------------------------------------------

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `cmd` (inside `host`'s namespace when given), bounded by `timeoutMs`. */
function run(host: LabHost | undefined, cmd: string, args: readonly string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Run> {
  const [file, argv] = host === undefined ? [cmd, args] : [IP_BIN, ['netns', 'exec', host.ns, cmd, ...args]];
  return new Promise((resolveRun) => {
    execFile(file, argv, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      resolveRun({ code, stdout, stderr: stderr + (err !== null && code === 1 && stderr === '' ? err.message : '') });
    });
  });
}

/** A bash block, -e and pipefail, as a shell would run it; fails the test on a non-zero exit. */
async function bash(host: LabHost | undefined, script: string, opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Run> {
  const r = await run(host, 'bash', ['-eo', 'pipefail', '-c', script], opts);
  assert.equal(r.code, 0, `block failed (exit ${r.code}):\n${script}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r;
}

interface HttpsAnswer {
  status: number;
  body: string;
}

function httpsRequest(url: string, opts: { ca: Buffer; method?: string; body?: string; auth?: string; timeoutMs?: number }): Promise<HttpsAnswer> {
  return new Promise((resolveReq, reject) => {
    const headers: Record<string, string> = opts.auth === undefined ? {} : { authorization: `Basic ${Buffer.from(opts.auth).toString('base64')}` };
    const req = https.request(url, { method: opts.method ?? 'GET', ca: opts.ca, headers, timeout: opts.timeoutMs ?? 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolveReq({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * Does a TCP connection to ip:port open within `ms`? A firewall drop shows as a timeout. (A bare
 * connection to the TLS Redis port that closes before its handshake once held up the node's
 * graceful stop: tested below.)
 */
function connects(ip: string, port: number, ms = 1000): Promise<boolean> {
  return new Promise((resolveConn) => {
    const s = net.connect({ host: ip, port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolveConn(ok);
    };
    s.setTimeout(ms, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** SHA-256 fingerprint of the certificate a TLS listener presents. */
function servedFingerprint(ip: string, port: number, ca: Buffer): Promise<string> {
  return new Promise((resolveCert, reject) => {
    const s = tls.connect({ host: ip, port, ca, timeout: 3000 }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolveCert(fp);
    });
    s.once('timeout', () => s.destroy(new Error(`TLS timeout ${ip}:${port}`)));
    s.once('error', reject);
  });
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await check().catch(() => false)) return Date.now() - start;
    await sleep(everyMs);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

// ---- the test -------------------------------------------------------------------------------

const skip = netnsUnavailable();
if (skip !== undefined) console.log(`# skipped: network namespaces unavailable: ${skip}`);

describe('docs/deploy.md on namespaced hosts: etcd over TLS with users, nodes over mutual TLS, firewall, operations', { skip, timeout: 90_000 }, () => {
  const blocks = testedBlocks(readFileSync(DOC, 'utf8'));
  const block = (name: string): Block => {
    const b = blocks.get(name);
    assert.ok(b, `docs/deploy.md has a block marked test=${name}`);
    return b;
  };
  let lab: Lab;
  let admin: string;
  let shimPath: string;
  let ca: Buffer;
  const root = (h: HostName): string => join(lab.dir, `root-${h}`);
  const ip = (h: HostName): string => lab.host(h).ip;
  /** The document's text as the test hosts need it: addresses, and (for a host) its paths. */
  const sub = (text: string, host?: HostName): string => {
    let out = text.replace(DOC_ADDRESS, (_m, n: string) => ip(HOSTS[Number(n) - 1]!)).replaceAll(DOC_CLIENTS, `${lab.gateway}/32`);
    if (host !== undefined) out = out.replace(HOST_PATHS, (_m, p: string) => `${root(host)}/${p}`);
    return out;
  };
  const nodes = new Map<HostName, HostProcess>();
  const logs = (h: HostName): string => {
    try {
      return readFileSync(join(lab.dir, `${h}-node.log`), 'utf8').slice(-3000);
    } catch {
      return '';
    }
  };
  const adminAuth = (): string => `default:${parseEnv(readFileSync(envFileOf('cache1'), 'utf8')).JINCACHE_PASSWORD}`;

  // -- the unit: what the node runs and with which environment
  const unit = (): Map<string, Map<string, string>> => parseUnit(block('jincache.service').code);
  const execStart = (): string[] => unit().get('Service')!.get('ExecStart')!.split(/\s+/);
  const envFileOf = (h: HostName): string => sub(unit().get('Service')!.get('EnvironmentFile')!.replace(/^-/, ''), h);
  const configOf = (h: HostName): string => {
    const args = execStart();
    const file = args[args.indexOf('--config') + 1]!;
    assert.equal(namedPath(block('jincache.yaml').code), file, 'the config block is the file the unit passes to --config');
    return sub(file, h);
  };

  /** Step 2's copies: cacheN/etcd/* to /etc/etcd/pki/, cacheN/jincache/* to /etc/jincache/tls/. */
  const install = (h: HostName): void => {
    for (const [from, to] of [['etcd', 'etc/etcd/pki'], ['jincache', 'etc/jincache/tls']] as const) {
      const dst = join(root(h), to);
      mkdirSync(dst, { recursive: true });
      for (const f of readdirSync(join(admin, h, from))) copyFileSync(join(admin, h, from, f), join(dst, f));
    }
  };

  /** Step 4 on a host: the secrets block, and the config file (cache1's, per-host lines changed). */
  const configure = async (h: HostName): Promise<void> => {
    mkdirSync(join(root(h), 'var/lib/jincache'), { recursive: true });
    await bash(undefined, sub(block('secrets').code, h));
    const config = parseYaml(block('jincache.yaml').code) as { node: { id: string }; server: { host: string; advertise: string } };
    config.node.id = forHost(config.node.id, h);
    config.server.host = forHost(config.server.host, h);
    config.server.advertise = forHost(config.server.advertise, h);
    writeFileSync(configOf(h), sub(stringifyYaml(config), h));
  };

  /** `systemctl start jincache`: the unit's ExecStart arguments and EnvironmentFile, this checkout's node. */
  const startNode = (h: HostName): HostProcess => {
    const [node, bin, ...args] = execStart();
    assert.equal(node, INSTALLED_NODE, 'the unit runs the Node the install step puts in /opt/jincache');
    assert.equal(bin, INSTALLED_BIN, 'the unit runs the installed package\'s bin/jincache.js');
    const env = parseEnv(readFileSync(envFileOf(h), 'utf8'));
    const p = lab.spawn(lab.host(h), process.execPath, [BIN, ...args.map((a) => sub(a, h))], { env, logFile: join(lab.dir, `${h}-node.log`) });
    nodes.set(h, p);
    return p;
  };

  /** GET /cluster of a node as the admin (null when it does not answer). */
  const clusterOf = async (h: HostName): Promise<{ nodes: { id: string; status: string; health?: string }[]; migrations?: unknown[]; partitions?: { underReplicated?: number } } | null> => {
    try {
      const r = await httpsRequest(`https://${ip(h)}:9999/cluster`, { ca, auth: adminAuth(), timeoutMs: 2000 });
      return r.status === 200 ? JSON.parse(r.body) : null;
    } catch {
      return null;
    }
  };

  /** Every node in `members` lists exactly `members`, all active and usable, with no migration running. */
  const settled = async (members: readonly HostName[]): Promise<boolean> => {
    const infos = await Promise.all(members.map(clusterOf));
    return infos.every(
      (i) =>
        i !== null &&
        i.nodes.length === members.length &&
        members.every((m) => i.nodes.some((n) => n.id === m && n.status === 'active' && n.health !== 'down' && n.health !== 'suspected')) &&
        (i.migrations ?? []).length === 0 &&
        (i.partitions?.underReplicated ?? 0) === 0,
    );
  };

  const waitSettled = async (members: readonly HostName[], what: string): Promise<number> => {
    try {
      return await waitUntil(what, () => settled(members), 40_000);
    } catch (e) {
      const views = await Promise.all(members.map(async (m) => `${m}: ${JSON.stringify((await clusterOf(m))?.nodes ?? null)}`));
      throw new Error(`${(e as Error).message}\n${views.join('\n')}\n${members.map((m) => `--- ${m} log\n${logs(m)}`).join('\n')}`);
    }
  };

  /**
   * `systemctl stop jincache`: SIGTERM, the node drains and exits; its exit code (null when it was
   * SIGKILLed: not gone within the drain timeout and a margin, where the unit allows 60 s).
   */
  const stopNode = async (h: HostName): Promise<number | null> => {
    const p = nodes.get(h)!;
    await p.stop('SIGTERM', 35_000);
    nodes.delete(h);
    return p.child.exitCode;
  };

  /** From host `from`, an HTTPS request to `to`'s peer port with `from`'s certificate: the HTTP status, or "000" when unreachable. */
  const peerProbe = async (from: HostName, to: HostName): Promise<string> => {
    const tlsDir = join(root(from), 'etc/jincache/tls');
    const r = await run(lab.host(from), 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--connect-timeout', '1', '--cacert', join(tlsDir, 'ca.crt'), '--cert', join(tlsDir, 'host.crt'), '--key', join(tlsDir, 'host.key'), `https://${ip(to)}:8001/health`]);
    return r.stdout;
  };

  before(async () => {
    for (const name of BLOCKS) block(name);
    const deps = spawnSync(INSTALL_SCRIPT, ['etcd', 'tls', 'redis', 'netns'], { encoding: 'utf8' });
    assert.equal(deps.status, 0, `install-deps: ${deps.stderr}`);
    lab = createLab({ hosts: [...HOSTS] });
    admin = join(lab.dir, 'admin');
    mkdirSync(admin);
    // `jincache` in a block is this checkout
    const shims = join(lab.dir, 'bin');
    mkdirSync(shims);
    writeFileSync(join(shims, 'jincache'), `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`);
    chmodSync(join(shims, 'jincache'), 0o755);
    shimPath = `${shims}:${process.env.PATH ?? '/usr/bin:/bin'}`;

    // step 2 on the admin machine
    writeFileSync(join(admin, 'issue-host.sh'), sub(block('issue-host.sh').code));
    await bash(undefined, sub(block('pki').code), { cwd: admin });
    ca = readFileSync(join(admin, 'jincache-ca.crt'));
    for (const h of FIRST) install(h);

    // the firewall first, so everything below runs behind it as on the real hosts
    for (const h of HOSTS) {
      const file = join(lab.dir, `nftables-${h}.conf`);
      writeFileSync(file, sub(block('nftables.conf').code, h));
      const r = await run(lab.host(h), NFT_BIN, ['-f', file]);
      assert.equal(r.code, 0, `nft -f on ${h}: ${r.stderr}`);
    }

    // step 3: etcd as /etc/default/etcd says (cache1's file, ETCD_NAME and *_URLS per host)
    assert.equal(namedPath(block('etcd-env').code), '/etc/default/etcd', "the file Debian's etcd.service reads");
    const etcdEnv = parseEnv(block('etcd-env').code);
    for (const h of FIRST) {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(etcdEnv)) env[k] = sub(k === 'ETCD_NAME' || k.endsWith('_URLS') ? forHost(v, h) : v, h);
      mkdirSync(join(root(h), 'var/lib/etcd'), { recursive: true, mode: 0o700 });
      lab.spawn(lab.host(h), '/usr/bin/etcd', [], { env, logFile: join(lab.dir, `${h}-etcd.log`) });
    }
    // through the firewall: 2381 is open to the clients
    await waitUntil('3 etcd members healthy', async () => {
      const answers = await Promise.all(FIRST.map((h) => fetch(`http://${ip(h)}:2381/health`, { signal: AbortSignal.timeout(1000) }).then((r) => r.json())));
      return answers.every((a) => (a as { health?: string }).health === 'true');
    }, 20_000);
    await bash(lab.host('cache1'), sub(block('etcd-users').code, 'cache1'));

    // step 4: the nodes
    for (const h of FIRST) await configure(h);
    for (const h of FIRST) startNode(h);
  });

  after(async () => {
    await lab?.destroy();
  });

  test('the cluster forms: every node active in every node\'s view, over etcd with TLS and a user', async () => {
    const ms = await waitSettled(FIRST, '3 nodes active everywhere');
    console.log(`# 3 nodes settled ${ms} ms after their start`);
  });

  test('step 5: a write through one host is read through another, over HTTPS and the Redis protocol', async () => {
    const smoke = block('smoke');
    const r = await bash(undefined, sub(smoke.code), { cwd: admin, env: { PATH: shimPath } });
    assert.deepEqual(r.stdout.trimEnd().split('\n'), promised(smoke.code));
  });

  test('step 5: jincache status lists every node active and healthy', async () => {
    const r = await bash(lab.host('cache1'), sub(block('status').code, 'cache1'), { env: { PATH: shimPath } });
    for (const h of FIRST) assert.match(r.stdout, new RegExp(`^${h}( \\*)?\\s+https://${ip(h).replaceAll('.', '\\.')}:8001\\s+active\\s+healthy`, 'm'), r.stdout);
    console.log(`# jincache status:\n${r.stdout.replace(/^/gm, '#   ')}`);
  });

  test('the firewall: clients reach 9999, 6380 and 2381, not 2379, 2380 or 8001', async () => {
    const closed = FIRST.flatMap((h) => [2379, 2380, 8001].map(async (port) => [`${h}:${port}`, await connects(ip(h), port)] as const));
    for (const [where, open] of await Promise.all(closed)) assert.ok(!open, `${where} is closed to the clients`);
    for (const h of FIRST) {
      // open: a TLS handshake with the host's certificate (API and Redis), etcd's plain /health
      for (const port of [9999, 6380]) assert.equal(await servedFingerprint(ip(h), port, ca), new X509Certificate(readFileSync(join(root(h), 'etc/jincache/tls/host.crt'))).fingerprint256, `${h}:${port} is open to the clients`);
      assert.equal((await fetch(`http://${ip(h)}:2381/health`)).status, 200, `${h}:2381 is open to the clients`);
    }
    // and the peer port is open to the other cache hosts, with their certificates
    assert.notEqual(await peerProbe('cache2', 'cache1'), '000', 'cache2 reaches cache1:8001 over mutual TLS');
  });

  test('section 9: the series the monitoring table names are in /metrics (jincache with the metrics user, etcd on 2381)', async () => {
    const doc = readFileSync(DOC, 'utf8');
    const table = doc.slice(doc.indexOf('## 9. Monitoring'), doc.indexOf('## How this document is tested'));
    const names = [...new Set([...table.matchAll(/`((?:jincache|etcd)_[a-z0-9_]+)/g)].map((m) => m[1]!))];
    assert.ok(names.length >= 10, `the monitoring section names its series (${names.join(', ')})`);
    const pw = readFileSync(join(root('cache1'), 'etc/jincache/metrics.pw'), 'utf8').trim();
    const jin = await httpsRequest(`https://${ip('cache1')}:9999/metrics`, { ca, auth: `metrics:${pw}` });
    assert.equal(jin.status, 200);
    const etcd = await (await fetch(`http://${ip('cache1')}:2381/metrics`)).text();
    // a family is exported when it has its TYPE line (a labelled counter has no sample before its first event)
    const missing = names.filter((n) => !new RegExp(`^# TYPE ${n} `, 'm').test(n.startsWith('etcd_') ? etcd : jin.body));
    assert.deepEqual(missing, [], 'every series named is exported');
  });

  test('renewal: new certificates for cache2, SIGHUP (systemctl reload), and new connections get them', async () => {
    const before = await servedFingerprint(ip('cache2'), 9999, ca);
    await bash(undefined, `bash issue-host.sh cache2 ${ip('cache2')}`, { cwd: admin });
    install('cache2');
    const fresh = new X509Certificate(readFileSync(join(root('cache2'), 'etc/jincache/tls/host.crt'))).fingerprint256;
    assert.notEqual(fresh, before, 'a new certificate was issued');
    nodes.get('cache2')!.signal('SIGHUP');
    await waitUntil('cache2 serves the renewed certificate on 9999 and 6380', async () => (await servedFingerprint(ip('cache2'), 9999, ca)) === fresh && (await servedFingerprint(ip('cache2'), 6380, ca)) === fresh, 5000);
    assert.ok(await settled(FIRST), 'the cluster still settled after the reload');
  });

  test('rolling restart: cache1 stops gracefully (exit 0), starts again, and the cluster settles with the data', async () => {
    const t = Date.now();
    assert.equal(await stopNode('cache1'), 0, `graceful stop exits 0:\n${logs('cache1')}`);
    const stopped = Date.now() - t;
    startNode('cache1');
    const ms = await waitSettled(FIRST, 'cache1 back and settled');
    console.log(`# rolling restart of cache1: stopped in ${stopped} ms, settled ${ms} ms after the start`);
    const r = await httpsRequest(`https://${ip('cache1')}:9999/api/scores/greeting`, { ca, auth: 'app:app-pw-change-me' });
    assert.deepEqual([r.status, r.body], [200, 'hello']);
  });

  test('adding cache4: its certificates, its config, the firewall-add block on every host; it joins and serves', async () => {
    await bash(undefined, `bash issue-host.sh cache4 ${ip('cache4')}`, { cwd: admin });
    install('cache4');
    // before the firewall knows it, cache4 cannot reach the peer port
    assert.equal(await peerProbe('cache4', 'cache1'), '000', 'cache4 is kept out before the firewall-add step');
    await configure('cache4');
    for (const h of HOSTS) await bash(lab.host(h), sub(block('firewall-add').code, h));
    startNode('cache4');
    const members = [...FIRST, 'cache4'] as const;
    const ms = await waitSettled(members, 'cache4 joined and the partitions moved');
    console.log(`# cache4 joined and settled in ${ms} ms`);
    const r = await httpsRequest(`https://${ip('cache4')}:9999/api/scores/answer`, { ca, auth: 'app:app-pw-change-me' });
    assert.deepEqual([r.status, r.body], [200, '42']);
  });

  test('removing a node: cache4 stops gracefully, hands its partitions over, and every key is still there', async () => {
    assert.equal(await stopNode('cache4'), 0, `graceful stop exits 0:\n${logs('cache4')}`);
    await waitSettled(FIRST, 'the 3 remaining nodes settled');
    for (const h of FIRST) {
      for (const [key, value] of [['greeting', 'hello'], ['answer', '42']]) {
        const r = await httpsRequest(`https://${ip(h)}:9999/api/scores/${key}`, { ca, auth: 'app:app-pw-change-me' });
        assert.deepEqual([r.status, r.body], [200, value], `${key} through ${h}`);
      }
    }
  });

  test('section 8: an etcd snapshot with the root user', async () => {
    mkdirSync(join(root('cache1'), 'var/backups'), { recursive: true });
    const r = await bash(lab.host('cache1'), sub(block('etcd-backup').code, 'cache1'));
    const snaps = readdirSync(join(root('cache1'), 'var/backups')).filter((f) => /^etcd-\d{4}-\d\d-\d\d\.db$/.test(f));
    assert.equal(snaps.length, 1, 'one snapshot file');
    assert.match(r.stdout, /TOTAL KEY/, 'snapshot status printed its table');
  });

  // Product bug found by this document (src/front/resp/server.ts: a tls.Server with allowHalfOpen
  // never destroys a socket whose client leaves before the handshake, and stop() waits for
  // server.close()): a load balancer's TCP check on the Redis port keeps `systemctl stop` from
  // finishing until systemd's SIGKILL. After every check that needs the cluster: it leaves cache3 killed.
  test('a bare TCP connection to the TLS Redis port does not hold up a graceful stop', async () => {
    assert.ok(await connects(ip('cache3'), 6380), 'the bare connection opened');
    const p = nodes.get('cache3')!;
    await p.stop('SIGTERM', 5000);
    nodes.delete('cache3');
    assert.equal(p.child.exitCode, 0, 'cache3 exited by itself within 5 s of SIGTERM');
  });

  test('the systemd units: jincache.service and the etcd drop-in', async () => {
    const service = block('jincache.service').code;
    const dropin = block('etcd-dropin').code;
    // the keys the document relies on, whatever systemd-analyze says
    const s = unit().get('Service')!;
    for (const key of ['User', 'EnvironmentFile', 'ExecStart', 'ExecReload', 'Restart', 'LimitNOFILE', 'TimeoutStopSec']) assert.ok(s.has(key), `jincache.service sets ${key}`);
    assert.equal(s.get('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(parseUnit(dropin).get('Service')?.get('Restart'), 'on-failure');
    if (!existsSync(SYSTEMD_ANALYZE)) {
      console.log(`# ${SYSTEMD_ANALYZE} is not installed: checked the units' keys with the parser only`);
      return;
    }
    // Verify as installed: the unit and the drop-in in /etc/systemd/system (Debian's etcd.service
    // from /lib), the unit's executables in /opt, all inside a private mount namespace.
    const stage = join(lab.dir, 'units');
    for (const code of [service, dropin]) {
      const path = namedPath(code);
      assert.match(path, /^\/etc\/systemd\/system\//);
      mkdirSync(dirname(join(stage, path)), { recursive: true });
      writeFileSync(join(stage, path), code);
    }
    const script = [
      'set -e',
      `mount -t tmpfs jincache-units /etc/systemd/system && cp -r '${stage}/etc/systemd/system/.' /etc/systemd/system/`,
      `mount -t tmpfs jincache-opt /opt && mkdir -p '${dirname(INSTALLED_NODE)}' '${dirname(INSTALLED_BIN)}'`,
      `ln -s '${process.execPath}' '${INSTALLED_NODE}' && ln -s '${BIN}' '${INSTALLED_BIN}'`,
      `${SYSTEMD_ANALYZE} --man=no verify etcd.service jincache.service`,
    ].join('\n');
    const r = await run(undefined, 'unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script]);
    assert.equal(r.code, 0, `systemd-analyze verify failed:\n${r.stdout}${r.stderr}`);
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'systemd-analyze verify has nothing to say');
  });
});
