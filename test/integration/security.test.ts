/**
 * SPEC §7 end to end, with real clients: two nodes with passwords and users, HTTPS on the client
 * API and TLS on the Redis listener (certificates made by openssl for this run), mutual TLS
 * between the nodes, and an etcd that itself speaks TLS and requires a user with a role limited
 * to /jincache/. Then a node with small client limits (SPEC §8): too many clients, a greedy
 * input, a client that never reads, an idle one, and random garbage, none of which may take the
 * node down or let its memory run away.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import http from 'node:http';
import { makeCerts, type TestCerts } from '../helpers/certs.ts';
import { runCli, startCluster, type TestCluster } from '../helpers/cluster.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const ADMIN = 'admin-pw';
const USERS = [
  { name: 'reader', password: 'read-pw', permissions: ['read'] },
  { name: 'writer', password: 'write-pw', permissions: ['read', 'write'] },
];

/** GET/PUT/... over HTTPS trusting `ca` (optionally presenting a client certificate). */
function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; ca?: string; cert?: { cert: string; key: string } } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: opts.method ?? 'GET',
      headers: opts.headers ?? {},
      ...(opts.ca !== undefined ? { ca: readFileSync(opts.ca) } : {}),
      ...(opts.cert !== undefined ? { cert: readFileSync(opts.cert.cert), key: readFileSync(opts.cert.key) } : {}),
      timeout: 5000,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

const basic = (user: string, pw: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });

async function etcdctl(endpoint: string, ca: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('etcdctl', [`--endpoints=https://${endpoint}`, `--cacert=${ca}`, ...args]);
  return stdout;
}

describe('security: passwords, permissions and TLS everywhere (2 nodes, TLS etcd with auth)', { timeout: 120_000 }, () => {
  let certs: TestCerts;
  let etcd: EtcdCluster;
  let cluster: TestCluster;
  const api: number[] = [];
  const resp: number[] = [];
  const apiUrl = (i: number) => `https://127.0.0.1:${api[i]}`;

  before(async () => {
    certs = makeCerts(['node', 'etcd']);
    etcd = await startEtcd({ tls: { ...certs.leaf('etcd'), ca: certs.ca } });
    const e = etcd.endpoints[0]!;
    // least privilege: jincache's etcd user may read and write /jincache/ and nothing else
    await etcdctl(e, certs.ca, 'user', 'add', 'root:root-pw');
    await etcdctl(e, certs.ca, 'user', 'grant-role', 'root', 'root');
    await etcdctl(e, certs.ca, 'role', 'add', 'jincache');
    await etcdctl(e, certs.ca, 'role', 'grant-permission', 'jincache', '--prefix=true', 'readwrite', '/jincache/');
    await etcdctl(e, certs.ca, 'user', 'add', 'jincache:etcd-pw');
    await etcdctl(e, certs.ca, 'user', 'grant-role', 'jincache', 'jincache');
    await etcdctl(e, certs.ca, 'auth', 'enable');
    for (let i = 0; i < 2; i++) {
      api.push(await freePort());
      resp.push(await freePort());
    }
    const node = certs.leaf('node');
    cluster = await startCluster({
      nodes: 2,
      staticPeers: false,
      config: {
        auth: { requirepass: ADMIN, users: USERS },
        tls: { cert_file: node.cert, key_file: node.key },
        cluster: { tls: { cert_file: node.cert, key_file: node.key, ca_file: certs.ca } },
        etcd: { enabled: true, endpoints: etcd.endpoints, tls: { ca_file: certs.ca }, username: 'jincache', password: 'etcd-pw', lease_ttl: '2s' },
        replication: { factor: 2 },
      },
      nodeArgs: (i) => ['--api-port', String(api[i]), '--resp-port', String(resp[i])],
      ready: async (_n, i) => (await request(`${apiUrl(i)}/health`, { ca: certs.ca })).status === 200,
    });
    // both nodes found each other through the TLS etcd and talk over mutual TLS
    await waitFor('both members active everywhere', async () => {
      for (let i = 0; i < 2; i++) {
        const r = await request(`${apiUrl(i)}/cluster`, { ca: certs.ca, headers: { authorization: `Bearer ${ADMIN}` } });
        if (r.status !== 200) return false;
        const info = JSON.parse(r.body) as { nodes: { status: string }[] };
        if (info.nodes.filter((n) => n.status === 'active').length !== 2) return false;
      }
      return true;
    }, 20_000);
  });

  after(async () => {
    await cluster?.stop();
    await etcd?.stop();
    certs?.remove();
  });

  test('HTTPS API: 401 with WWW-Authenticate without a credential, 403 without the permission, /health open, /metrics closed', async () => {
    const key = `${apiUrl(0)}/api/scores/sec-k`;
    const none = await request(key, { ca: certs.ca });
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Basic realm=/);
    assert.equal((await request(key, { ca: certs.ca, headers: basic('writer', 'wrong') })).status, 401);
    assert.equal((await request(key, { ca: certs.ca, method: 'PUT', body: 'v1', headers: basic('reader', 'read-pw') })).status, 403);
    assert.equal((await request(key, { ca: certs.ca, method: 'PUT', body: 'v1', headers: basic('writer', 'write-pw') })).status, 204);
    // written at node 0, read at node 1 (replicated over mutual TLS)
    const read = await request(`${apiUrl(1)}/api/scores/sec-k`, { ca: certs.ca, headers: basic('reader', 'read-pw') });
    assert.deepEqual([read.status, read.body], [200, 'v1']);
    assert.equal((await request(`${apiUrl(0)}/cluster/rebalance`, { ca: certs.ca, method: 'POST', body: '{"dryRun":true}', headers: basic('writer', 'write-pw') })).status, 403, 'admin routes need admin');
    assert.equal((await request(`${apiUrl(0)}/health`, { ca: certs.ca })).status, 200);
    assert.equal((await request(`${apiUrl(0)}/metrics`, { ca: certs.ca })).status, 401);
    // with server.api_port the peer port serves no client API, even to a holder of a cluster
    // certificate and the admin password; /cluster names the API's own HTTPS address
    const peer = await request(`${cluster.nodes[0]!.url.replace(/^http:/, 'https:')}/api/scores/sec-k`, { ca: certs.ca, cert: certs.leaf('node'), headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(peer.status, 404, peer.body);
    const info = JSON.parse((await request(`${apiUrl(0)}/cluster`, { ca: certs.ca, headers: { authorization: `Bearer ${ADMIN}` } })).body) as { nodes: { id: string; apiAddress?: string }[] };
    assert.deepEqual(info.nodes.map((n) => n.apiAddress).sort(), [apiUrl(0), apiUrl(1)].sort());
  });

  test('curl: a real HTTPS client with the CA, and refused without it', async () => {
    const ok = spawnSync('curl', ['-sS', '--cacert', certs.ca, '-u', 'writer:write-pw', '-X', 'PUT', '--data-binary', 'from-curl', '-o', '/dev/null', '-w', '%{http_code}', `${apiUrl(0)}/api/scores/curl-k`], { encoding: 'utf8' });
    assert.equal(ok.stdout, '204', ok.stderr);
    const get = spawnSync('curl', ['-sS', '--cacert', certs.ca, '-H', `Authorization: Bearer ${ADMIN}`, `${apiUrl(1)}/api/scores/curl-k`], { encoding: 'utf8' });
    assert.equal(get.stdout, 'from-curl');
    const untrusted = spawnSync('curl', ['-sS', `${apiUrl(0)}/health`], { encoding: 'utf8' });
    assert.equal(untrusted.status, 60, 'curl refuses a certificate it cannot verify (exit 60)');
  });

  test('a request forged by another site is refused even with a valid credential (CSRF)', async () => {
    const headers = { authorization: `Bearer ${ADMIN}`, origin: 'https://evil.example' };
    const r = await request(`${apiUrl(0)}/api/scores/csrf-k`, { ca: certs.ca, method: 'PUT', body: 'forged', headers });
    assert.equal(r.status, 403);
    const after = await request(`${apiUrl(0)}/api/scores/csrf-k`, { ca: certs.ca, headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(after.status, 404, 'nothing was written');
    const cross = await request(`${apiUrl(0)}/cluster/rebalance`, { ca: certs.ca, method: 'POST', body: '{}', headers: { authorization: `Bearer ${ADMIN}`, 'sec-fetch-site': 'cross-site' } });
    assert.equal(cross.status, 403);
  });

  test('redis-cli over TLS: NOAUTH, WRONGPASS, NOPERM in Redis\'s words; a user with the permission is served', () => {
    const cli = (...args: string[]) => spawnSync('redis-cli', ['--tls', '--cacert', certs.ca, '-p', String(resp[0]), ...args], { encoding: 'utf8' });
    assert.match(cli('GET', 'sec-k').stdout, /^NOAUTH Authentication required/);
    assert.match(cli('--user', 'writer', '--pass', 'nope', '--no-auth-warning', 'GET', 'sec-k').stdout + cli('--user', 'writer', '--pass', 'nope', '--no-auth-warning', 'GET', 'sec-k').stderr, /WRONGPASS/);
    assert.match(cli('--user', 'reader', '--pass', 'read-pw', '--no-auth-warning', 'SET', 'sec-r', 'x').stdout, /^NOPERM this user has no permissions to run the 'set' command/);
    assert.equal(cli('--user', 'writer', '--pass', 'write-pw', '--no-auth-warning', 'SET', 'sec-r', 'x').stdout.trim(), 'OK');
    assert.equal(cli('-a', ADMIN, '--no-auth-warning', 'GET', 'sec-r').stdout.trim(), 'x');
    assert.match(cli('--user', 'writer', '--pass', 'write-pw', '--no-auth-warning', 'FLUSHALL').stdout, /^NOPERM this user has no permissions to run the 'flushall' command/, 'FLUSHALL needs admin');
    assert.match(cli('--user', 'writer', '--pass', 'write-pw', '--no-auth-warning', 'CLIENT', 'KILL', 'ID', '1').stdout, /^NOPERM/, 'CLIENT KILL needs admin');
    assert.equal(cli('-a', ADMIN, '--no-auth-warning', 'GET', 'sec-r').stdout.trim(), 'x', 'nothing flushed');
    const plain = spawnSync('redis-cli', ['-p', String(resp[0]), 'PING'], { encoding: 'utf8', timeout: 5000 });
    assert.doesNotMatch(plain.stdout, /PONG/, 'a plain-text client gets nothing from the TLS listener');
  });

  test('ioredis over TLS with a user and password', async () => {
    const client = new Redis({ host: '127.0.0.1', port: resp[1]!, tls: { ca: readFileSync(certs.ca) }, username: 'writer', password: 'write-pw', lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      assert.equal(await client.set('sec-io', 'hello'), 'OK');
      assert.equal(await client.get('sec-io'), 'hello');
      assert.equal(await client.call('ACL', 'WHOAMI'), 'writer');
    } finally {
      client.disconnect();
    }
  });

  test('node-redis with its defaults (RESP3, HELLO 3 AUTH) over TLS; a reader refused a write with NOPERM', async () => {
    const tlsSocket = { host: '127.0.0.1', port: resp[0]!, tls: true as const, ca: readFileSync(certs.ca), reconnectStrategy: false as const };
    const writer = createClient({ socket: tlsSocket, username: 'writer', password: 'write-pw' });
    const reader = createClient({ socket: tlsSocket, username: 'reader', password: 'read-pw' });
    try {
      await writer.connect();
      await reader.connect();
      assert.equal(await writer.set('sec-nr', 'v'), 'OK');
      assert.equal(await reader.get('sec-nr'), 'v');
      await assert.rejects(reader.set('sec-nr', 'x'), /NOPERM/);
      await assert.rejects(createClient({ socket: tlsSocket, username: 'writer', password: 'nope' }).connect(), /WRONGPASS/);
    } finally {
      await writer.quit().catch(() => undefined);
      await reader.quit().catch(() => undefined);
    }
  });

  test('node-to-node: a peer without a certificate from the cluster CA is refused in the handshake', async () => {
    const peer = `https://127.0.0.1:${cluster.nodes[0]!.port}/_jincache/ping`;
    await assert.rejects(request(peer, { ca: certs.ca, method: 'POST' }), 'no client certificate');
    await assert.rejects(request(peer, { ca: certs.ca, method: 'POST', cert: certs.stranger }), 'a certificate of another CA');
    const member = await request(peer, { ca: certs.ca, method: 'POST', cert: certs.leaf('node') });
    assert.ok(member.status > 0, 'a member certificate gets an answer (whatever it says)');
  });

  test('etcd: the node could only have registered with its TLS credentials; without them etcd refuses', async () => {
    const e = etcd.endpoints[0]!;
    const members = await etcdctl(e, certs.ca, '--user', 'jincache:etcd-pw', 'get', '--prefix', '--keys-only', '/jincache/nodes/');
    assert.equal(members.trim().split('\n').filter(Boolean).length, 2, members);
    await assert.rejects(etcdctl(e, certs.ca, 'get', '--prefix', '/jincache/nodes/'), /user name is empty|permission denied|authentication/i);
    await assert.rejects(etcdctl(e, certs.ca, '--user', 'jincache:etcd-pw', 'put', '/elsewhere', 'x'), /permission denied/);
  });

  test('jincache status over HTTPS: refused with a hint without a password, served with JINCACHE_PASSWORD', async () => {
    const args = ['status', '--node', apiUrl(0), '--cacert', certs.ca];
    const refused = await runCli(args);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /401.*--password|JINCACHE_PASSWORD/);
    const ok = await runCli([...args, '--json'], 20_000, { JINCACHE_PASSWORD: ADMIN });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { nodes: unknown[] }).nodes.length, 2);
  });

  test('no password is ever shown: not in logs, /cluster, /metrics or the process arguments', async () => {
    const secrets = [ADMIN, 'read-pw', 'write-pw', 'etcd-pw'];
    const bearer = { authorization: `Bearer ${ADMIN}` };
    const cluster0 = (await request(`${apiUrl(0)}/cluster`, { ca: certs.ca, headers: bearer })).body;
    const metrics0 = (await request(`${apiUrl(0)}/metrics`, { ca: certs.ca, headers: bearer })).body;
    for (const n of cluster.nodes) {
      const seen = [n.log(), cluster0, metrics0, readFileSync(`/proc/${n.pid}/cmdline`, 'utf8')].join('\n');
      for (const secret of secrets) assert.equal(seen.includes(secret), false, `${secret} shown by ${n.id}`);
    }
  });

  test('jincache config against the TLS etcd with its user: served with the credentials, refused without', async () => {
    const base = ['config', 'get', 'scores', '--etcd', etcd.endpoints[0]!, '--etcd-cacert', certs.ca];
    const ok = await runCli([...base, '--etcd-user', 'jincache'], 20_000, { JINCACHE_ETCD_PASSWORD: 'etcd-pw' });
    assert.equal(ok.code, 0, ok.stderr);
    const refused = await runCli(base, 20_000);
    assert.equal(refused.code, 1, refused.stdout);
    const half = await runCli([...base, '--etcd-user', 'jincache'], 20_000);
    assert.equal(half.code, 2, 'a user without a password is a usage error');
  });

  test('protected mode: a node on a non-loopback address without a password refuses to start, in one line', async () => {
    const out = await runCli(['serve', '--host', '0.0.0.0', '--port', String(await freePort())], 20_000);
    assert.equal(out.code, 2);
    assert.equal(out.stderr.trim().split('\n').length, 1, out.stderr);
    assert.match(out.stderr, /without a password/);
  });

  test('certificates reload on SIGHUP: new connections get the renewed one, an open connection keeps working', async () => {
    const fingerprint = (port: number): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = tls.connect({ port, host: '127.0.0.1', ca: readFileSync(certs.ca) }, () => {
          resolve(s.getPeerCertificate().fingerprint256);
          s.end();
        });
        s.on('error', reject);
      });
    const before = await fingerprint(api[0]!);
    const open = new Redis({ host: '127.0.0.1', port: resp[0]!, tls: { ca: readFileSync(certs.ca) }, password: ADMIN, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await open.connect();
      assert.equal(await open.set('hup', '1'), 'OK');
      const renewed = certs.leaf('node-renewed');
      const node = certs.leaf('node');
      copyFileSync(renewed.cert, node.cert);
      copyFileSync(renewed.key, node.key);
      process.kill(cluster.nodes[0]!.pid, 'SIGHUP');
      await waitFor('node-1 serves the renewed certificate', async () => (await fingerprint(api[0]!)) !== before, 10_000);
      assert.notEqual(await fingerprint(resp[0]!), before, 'the RESP listener too');
      assert.equal(await open.get('hup'), '1', 'the connection opened before the reload still works');
      // and the peers still talk (node-2 presents its old certificate, from the same CA)
      const w = await request(`${apiUrl(1)}/api/scores/after-hup`, { ca: certs.ca, method: 'PUT', body: 'x', headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal(w.status, 204);
    } finally {
      open.disconnect();
    }
  });
});

/** RSS of a process, bytes (Linux). */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

async function metric(url: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels}`) && !l.startsWith('#'));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** A raw connection; resolves with the first bytes the server sends (or '' at close). */
function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

function firstData(s: net.Socket, ms = 3000): Promise<string> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(''), ms);
    s.once('data', (d) => {
      clearTimeout(t);
      resolve(d.toString('latin1'));
    });
    s.once('close', () => {
      clearTimeout(t);
      resolve('');
    });
  });
}

function closed(s: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve(true);
    const t = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

describe('client certificates (tls.client_auth) and public metrics on a node with a password (1 node)', { timeout: 60_000 }, () => {
  let certs: TestCerts;
  let cluster: TestCluster;
  let api: number;
  let resp: number;
  const base = () => `https://127.0.0.1:${api}`;

  before(async () => {
    certs = makeCerts(['node', 'client']);
    api = await freePort();
    resp = await freePort();
    const node = certs.leaf('node');
    const client = certs.leaf('client');
    cluster = await startCluster({
      nodes: 1,
      config: {
        auth: { requirepass: ADMIN, public_metrics: true },
        tls: { cert_file: node.cert, key_file: node.key, ca_file: certs.ca, client_auth: true },
      },
      nodeArgs: () => ['--api-port', String(api), '--resp-port', String(resp)],
      ready: async () => (await request(`${base()}/health`, { ca: certs.ca, cert: client })).status === 200,
    });
  });

  after(async () => {
    await cluster?.stop();
    certs?.remove();
  });

  test('HTTPS: no client certificate, or one from another CA, is refused in the handshake; a certificate from the CA is served', async () => {
    await assert.rejects(request(`${base()}/health`, { ca: certs.ca }), 'no client certificate');
    await assert.rejects(request(`${base()}/health`, { ca: certs.ca, cert: certs.stranger }), 'a stranger\'s certificate');
    const client = certs.leaf('client');
    assert.equal((await request(`${base()}/health`, { ca: certs.ca, cert: client })).status, 200);
    // a certificate proves the connection, not the user: the password is still needed
    assert.equal((await request(`${base()}/api/scores/k`, { ca: certs.ca, cert: client })).status, 401);
    assert.equal((await request(`${base()}/api/scores/k`, { ca: certs.ca, cert: client, method: 'PUT', body: 'v', headers: { authorization: `Bearer ${ADMIN}` } })).status, 204);
  });

  test('auth.public_metrics: /metrics answers without a credential while every key stays closed', async () => {
    const client = certs.leaf('client');
    const m = await request(`${base()}/metrics`, { ca: certs.ca, cert: client });
    assert.equal(m.status, 200);
    assert.match(m.body, /^# HELP jincache_requests_total/m);
    assert.equal((await request(`${base()}/api/scores/k`, { ca: certs.ca, cert: client })).status, 401);
    assert.equal((await request(`${base()}/cluster`, { ca: certs.ca, cert: client })).status, 401);
  });

  test('redis-cli over TLS: refused without a client certificate, served with one and the password', () => {
    const client = certs.leaf('client');
    const cli = (...args: string[]) => spawnSync('redis-cli', ['--tls', '--cacert', certs.ca, '-p', String(resp), ...args], { encoding: 'utf8', timeout: 5000 });
    const without = cli('-a', ADMIN, '--no-auth-warning', 'PING');
    assert.doesNotMatch(without.stdout, /PONG/, 'no certificate, no answer');
    assert.equal(cli('--cert', client.cert, '--key', client.key, '-a', ADMIN, '--no-auth-warning', 'PING').stdout.trim(), 'PONG');
    assert.match(cli('--cert', client.cert, '--key', client.key, 'GET', 'k').stdout, /^NOAUTH/);
  });
});

describe('client limits: too many, greedy, silent and garbage clients (1 node)', { timeout: 120_000 }, () => {
  let cluster: TestCluster;
  let respPort: number;
  let url: string;

  before(async () => {
    respPort = await freePort();
    cluster = await startCluster({
      nodes: 1,
      config: {
        cache: { max_value_bytes: '1MiB' },
        limits: { max_clients: 20, max_input_buffer_bytes: '3MiB', client_output_buffer_bytes: '1MiB', idle_timeout: '1s' },
        auth: { public_metrics: true },
      },
      args: ['--resp-port', String(respPort)],
    });
    url = cluster.nodes[0]!.url;
  });

  after(() => cluster?.stop());

  test('max_clients over RESP and HTTP together: the one too many is refused in its protocol\'s words', async () => {
    const open: net.Socket[] = [];
    try {
      // fill up to the limit (whatever clients are already counted), then one more of each protocol
      for (let i = 0; i < 25; i++) {
        const s = await connect(respPort);
        s.write('PING\r\n');
        const first = await firstData(s);
        if (first === '-ERR max number of clients reached\r\n') {
          s.destroy();
          break;
        }
        assert.equal(first, '+PONG\r\n');
        open.push(s);
      }
      assert.ok(open.length >= 15 && open.length <= 20, `${open.length} clients admitted of max_clients 20`);
      const status = await new Promise<number>((resolve, reject) => {
        // a new connection (no keep-alive pool): it is one client too many
        http.get(`${url}/api/scores/x`, { agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      assert.equal(status, 503);
      assert.ok((await metric(url, 'jincache_clients_refused_total', '{limit="max_clients"}')) >= 2);
    } finally {
      for (const s of open) s.destroy();
    }
    await waitFor('connections released', async () => (await fetch(`${url}/health`)).ok);
  });

  test('greedy clients: the input budget of all clients holds; the greediest go, the node and its other clients stay', async () => {
    const before = rss(cluster.nodes[0]!.pid);
    const greedy: net.Socket[] = [];
    for (let i = 0; i < 12; i++) {
      const s = await connect(respPort);
      s.on('error', () => {});
      // a SET whose value never finishes arriving: 900 KB held each, 10.8 MB asked for in all
      s.write(`*3\r\n$3\r\nSET\r\n$2\r\ng${i % 10}\r\n$1000000\r\n`);
      s.write(Buffer.alloc(900_000, 0x61));
      greedy.push(s);
    }
    await sleep(500);
    const held = await metric(url, 'jincache_client_input_bytes');
    assert.ok(held <= 3 * 1024 * 1024, `input held by all clients ${held} <= 3 MiB`);
    assert.ok((await metric(url, 'jincache_clients_refused_total', '{limit="input_buffer"}')) >= 1, 'some greedy client was dropped');
    const alive = greedy.filter((s) => !s.destroyed).length;
    assert.ok(alive >= 1 && alive < 12, `${alive} greedy clients kept`);
    const fresh = await connect(respPort);
    fresh.write('PING\r\n');
    assert.equal(await firstData(fresh), '+PONG\r\n');
    fresh.destroy();
    for (const s of greedy) s.destroy();
    const grown = rss(cluster.nodes[0]!.pid) - before;
    assert.ok(grown < 64 * 1024 * 1024, `RSS grew ${(grown / 2 ** 20).toFixed(1)} MiB`);
  });

  test('a client that never reads its replies is dropped at client_output_buffer_bytes', async () => {
    const writer = await connect(respPort);
    writer.write(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$524288\r\n${'b'.repeat(524288)}\r\n`);
    assert.equal(await firstData(writer), '+OK\r\n');
    writer.destroy();
    const lazy = await connect(respPort);
    lazy.pause(); // reads nothing
    lazy.write('GET big\r\n'.repeat(200));
    await waitFor('dropped for its output', async () => (await metric(url, 'jincache_clients_refused_total', '{limit="output_buffer"}')) >= 1, 10_000);
    lazy.destroy();
  });

  test('idle_timeout: a silent client is closed', async () => {
    const idle = await connect(respPort);
    assert.equal(await closed(idle, 4000), true);
    assert.ok((await metric(url, 'jincache_clients_refused_total', '{limit="idle_timeout"}')) >= 1);
  });

  test('fuzz: random bytes and random HTTP requests change nothing and never take the node down', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), async (bytes) => {
        const s = await connect(respPort);
        s.on('error', () => {});
        s.write(Buffer.from(bytes));
        await firstData(s, 200);
        s.destroy();
      }),
      { numRuns: 60 },
    );
    const methods = fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'HEAD', 'PATCH', 'OPTIONS');
    const paths = fc.oneof(fc.constantFrom('/api/scores/k', '/api/', '/api/%zz/x', '/cluster', '/cluster/rebalance', '/cluster/migrations/x/cancel', '/metrics', '/health', '/x'), fc.string({ maxLength: 40 }).map((p) => `/${encodeURIComponent(p)}`));
    await fc.assert(
      fc.asyncProperty(methods, paths, fc.string({ maxLength: 200 }), async (method, path, body) => {
        const res = await fetch(`${url}${path}`, { method, ...(method === 'GET' || method === 'HEAD' ? {} : { body }) });
        await res.arrayBuffer();
        // 501: what a static node answers for migrations and applied rebalances (they need etcd)
        assert.ok(res.status < 500 || res.status === 501 || res.status === 503 || res.status === 504, `${method} ${path} -> ${res.status}`);
      }),
      { numRuns: 150 },
    );
    assert.equal((await fetch(`${url}/health`)).status, 200);
  });
});
