/**
 * The namespaced test hosts themselves, on the real kernel: connectivity over the bridge, each
 * nft fault doing what it says (and only that), healing, the tmpfs, and teardown leaving nothing
 * behind, also after the owner process was SIGKILLed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { resolve } from 'node:path';
import { cleanupStale, createLab, leftovers, netnsUnavailable, type Lab, type LabHost } from './lab.ts';
import { isolate, loss, oneWay } from './nft.ts';

const skip = netnsUnavailable();

/** Not exited (a zombie waiting for its reaper counts as exited). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}
if (skip !== undefined) console.log(`# skipped: ${skip}`);

const PORT = 9000;
const PROBE = `const s=require('net').connect({host:process.argv[1],port:+process.argv[2],timeout:400});s.on('data',()=>{console.log('ok');process.exit(0)});s.on('timeout',()=>{console.log('timeout');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)})`;

describe('netns lab', { skip, timeout: 60_000 }, () => {
  let lab: Lab;
  let a: LabHost;
  let b: LabHost;
  let c: LabHost;

  before(async () => {
    lab = createLab({ hosts: ['a', 'b', 'c'] });
    [a, b, c] = [lab.host('a'), lab.host('b'), lab.host('c')];
    for (const h of [a, b, c]) {
      const p = lab.spawn(h, process.execPath, ['-e', `require('net').createServer((s)=>s.end('hi')).listen(${PORT}, '${h.ip}', ()=>console.log('up'))`], { stdout: true });
      await new Promise((r) => p.child.stdout!.once('data', r));
    }
  });

  after(async () => {
    await lab?.destroy();
  });

  /** Can `from` open a TCP connection to `to` (and get its greeting)? */
  const reach = (from: LabHost, to: LabHost): string => lab.exec(from, process.execPath, ['-e', PROBE, to.ip, String(PORT)]).stdout.trim();
  const fromRoot = (to: LabHost): Promise<string> =>
    new Promise((r) => {
      const s = net.connect({ host: to.ip, port: PORT, timeout: 400 });
      s.on('data', () => (s.destroy(), r('ok')));
      s.on('timeout', () => (s.destroy(), r('timeout')));
      s.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
    });

  test('hosts have their own addresses in one per-run subnet and reach each other and the harness', async () => {
    assert.match(lab.subnet, /^10\.(2[0-4]\d)\.\d{1,3}$/);
    assert.deepEqual(lab.hosts.map((h) => h.ip), [`${lab.subnet}.10`, `${lab.subnet}.11`, `${lab.subnet}.12`]);
    assert.match(a.ns, new RegExp(`^jcn-${lab.runId}-a$`));
    assert.equal(reach(a, b), 'ok');
    assert.equal(reach(c, a), 'ok');
    assert.equal(await fromRoot(b), 'ok');
  });

  test('isolate: the host reaches no peer and no peer reaches it; the harness still does', async () => {
    lab.faults(isolate('b', ['a', 'c']));
    try {
      assert.equal(reach(a, b), 'timeout');
      assert.equal(reach(b, c), 'timeout');
      assert.equal(reach(a, c), 'ok', 'the others still talk');
      assert.equal(await fromRoot(b), 'ok', 'the harness is never cut');
    } finally {
      lab.heal();
    }
    assert.equal(reach(a, b), 'ok', 'healed');
  });

  test('one-way: packets from a to b are dropped, b to a still arrive', () => {
    lab.faults(oneWay(['a'], ['b']));
    try {
      const rules = lab.exec(a, '/usr/sbin/nft', ['list', 'chain', 'inet', 'jincache_fault', 'output']).stdout;
      assert.match(rules, new RegExp(`ip daddr ${b.ip.replace(/\./g, '\\.')} drop`));
      assert.equal(lab.exec(b, '/usr/sbin/nft', ['list', 'chain', 'inet', 'jincache_fault', 'output']).stdout.includes('drop'), false);
      // TCP needs both directions, so a connection fails either way; a's packets are what is lost
      assert.equal(reach(a, b), 'timeout');
      assert.equal(reach(a, c), 'ok');
      assert.equal(reach(c, b), 'ok');
    } finally {
      lab.heal();
    }
  });

  test('loss: the numgen rule drops about its share of the packets, of the named peers only', () => {
    lab.faults(loss('c', ['a'], 80));
    try {
      assert.match(lab.exec(c, '/usr/sbin/nft', ['list', 'table', 'inet', 'jincache_fault']).stdout, /numgen random mod 100 < 80 drop/);
      // 10 connection attempts of 400 ms each: a SYN, a SYN-ACK and the data must all pass
      let ok = 0;
      for (let i = 0; i < 10; i++) if (reach(a, c) === 'ok') ok++;
      assert.ok(ok < 10, `some attempts fail (${ok}/10 got through)`);
      assert.equal(reach(b, c), 'ok');
    } finally {
      lab.heal();
    }
    assert.equal(reach(a, c), 'ok');
  });

  test('a tmpfs fills up and frees again', () => {
    const t = lab.tmpfs('disk', 2 * 1024 * 1024);
    const written = t.fill();
    assert.ok(written > 1.5 * 1024 * 1024 && written <= 2 * 1024 * 1024, `filled ${written} bytes`);
    const df = lab.exec(a, 'df', ['-k', t.path]).stdout;
    assert.match(df, /100%/, 'the host sees it full');
    t.free();
    t.unmount();
  });

  test('destroy leaves no namespace, link, mount or work dir', async () => {
    const id = lab.runId;
    lab.tmpfs('leftover', 1024 * 1024);
    await lab.destroy();
    assert.deepEqual(leftovers(id), { namespaces: [], links: [], mounts: [], dir: false });
  });
});

describe('netns lab: a crashed run', { skip, timeout: 30_000 }, () => {
  test('is removed by the next run (processes in its namespaces included)', async () => {
    const labTs = resolve(import.meta.dirname, 'lab.ts');
    const script = `import { createLab } from ${JSON.stringify(labTs)};
      const lab = createLab({ hosts: ['x', 'y'] });
      lab.tmpfs('t', 1 << 20);
      const p = lab.spawn(lab.host('x'), process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
      console.log(lab.runId + ' ' + p.pid);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((r) => child.stdout!.once('data', (d) => r(String(d).trim())));
    const [runId, orphan] = line.split(' ');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const before = leftovers(runId!);
    assert.equal(before.namespaces.length, 2, 'the crash left its namespaces');
    assert.equal(before.mounts.length, 1, 'and its tmpfs');
    const removed = cleanupStale();
    assert.ok(removed.includes(runId!), `cleanupStale removed ${removed.join(', ')}`);
    assert.deepEqual(leftovers(runId!), { namespaces: [], links: [], mounts: [], dir: false });
    assert.equal(running(Number(orphan)), false, 'the process left inside a namespace was killed');
  });
});
