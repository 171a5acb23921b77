/**
 * What a newcomer sees after `npm start` (issue 15, item 4): `node bin/jincache.js cluster
 * --nodes 3` (what the npm script runs) in a process group of its own, as a terminal's foreground
 * job, on free ports. A clean start prints no WARN or ERROR, nothing that reads like a change on a
 * brand-new cluster (a table "version 1 from 1", a catch-up, a peer going healthy -> down), and
 * ends with the usage banner: no log line after it until Ctrl-C. One Ctrl-C (SIGINT to the whole
 * group) stops every node, each logging its stop once, and the cluster says once that all left.
 *
 * With `--etcd auto` the private etcd must outlive that Ctrl-C until the nodes drained and
 * revoked their leases (it used to die with the terminal's signal, and every node then warned
 * and left by lease expiry).
 *
 * Output goes to a pipe, so the nodes log pino JSON lines; the banner and the cluster's own lines
 * are plain text.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN } from '../helpers/cluster.ts';
import { freePort, freePortRun } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

interface LogLine {
  level: number;
  msg: string;
  nodeId?: string;
  [k: string]: unknown;
}

function parse(line: string): LogLine | undefined {
  try {
    const j = JSON.parse(line) as LogLine;
    return typeof j.msg === 'string' ? j : undefined;
  } catch {
    return undefined;
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

const BANNER_END = '  Ctrl-C stops the cluster.';
/** How long the cluster is watched after the banner for lines that would scroll it away. */
const QUIET_MS = 4000;

describe('npm start: a clean start-up and stop', () => {
  let pgid: number | undefined;
  after(() => {
    if (pgid !== undefined && groupAlive(pgid)) process.kill(-pgid, 'SIGKILL');
  });

  test('no WARN, nothing misleading, the banner last; one Ctrl-C stops every node once', async () => {
    const base = await freePortRun(3); // base + 1 and base + 2 are the other nodes' ports
    const [api, resp] = [await freePort(), await freePortRun(3)]; // node i gets resp + i - 1
    const child = spawn(process.execPath, [BIN, 'cluster', '--nodes', '3', '--base-port', String(base), '--api-port', String(api), '--resp-port', String(resp)], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    pgid = child.pid!;
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));

    await waitFor('the banner', () => {
      if (child.exitCode !== null) throw new Error(`the cluster exited during start-up:\n${out}`);
      return out.includes(BANNER_END);
    }, 45_000, 100);
    const atBanner = out.length;
    await sleep(QUIET_MS);
    const start = out;

    // the banner is the last block: nothing was printed after it
    assert.equal(start.slice(atBanner).trim(), '', `lines after the banner:\n${start.slice(atBanner)}`);
    const lines = start.split('\n');
    const bannerStart = lines.findIndex((l) => l.startsWith('jincache: 3-node cluster running'));
    assert.ok(bannerStart > 0, `the banner:\n${start}`);
    assert.equal(lines.slice(bannerStart).filter((l) => l.trim() !== '').at(-1), BANNER_END);
    assert.ok(lines.slice(bannerStart).every((l) => parse(l) === undefined), 'no log line inside or after the banner');

    const logs = lines.map(parse).filter((l): l is LogLine => l !== undefined);
    assert.ok(logs.length > 0, `the nodes logged JSON lines:\n${start}`);
    const shown = (ls: LogLine[]): string => ls.map((l) => `${l.level} [${l.nodeId}] ${l.msg} ${JSON.stringify(l)}`).join('\n');
    // pino levels: 40 warn, 50 error, 60 fatal
    const loud = logs.filter((l) => l.level >= 40);
    assert.deepEqual(loud, [], `no WARN or ERROR on a clean start:\n${shown(loud)}`);
    // (a busy machine may make a peer "slow" for a moment: that is an info line, not a flap)
    const flaps = logs.filter((l) => l.msg === 'peer health changed' && (l.to === 'down' || l.to === 'suspected'));
    assert.deepEqual(flaps, [], `no peer goes healthy -> down while the nodes start together:\n${shown(flaps)}`);
    assert.ok(!logs.some((l) => l.msg === 'partition table changed'), `the first table is no change ("version 1 from 1"):\n${shown(logs)}`);
    assert.ok(!logs.some((l) => l.msg === 'caught up'), `nothing to catch up on a brand-new cluster:\n${shown(logs)}`);
    for (const id of ['node-1', 'node-2', 'node-3']) {
      assert.equal(logs.filter((l) => l.nodeId === id && l.msg === 'node started').length, 1, `${id} started once`);
    }
    // a handful of lines, not a page: each node says it started (node 1 its Redis listener too)
    assert.ok(logs.length <= 8, `${logs.length} start-up log lines:\n${shown(logs)}`);

    // the cluster answers as the banner says
    assert.equal((await fetch(`http://127.0.0.1:${api}/api/scores/greeting`, { method: 'PUT', body: 'hello' })).status, 204);
    assert.equal(await (await fetch(`http://127.0.0.1:${api}/api/scores/greeting`)).text(), 'hello');

    // one Ctrl-C: SIGINT to every process of the group
    process.kill(-pgid, 'SIGINT');
    const { code, signal } = await exited;
    await waitFor('every process of the job gone', () => !groupAlive(pgid!), 20_000, 50);
    const stop = out.slice(start.length);
    assert.equal(signal, null, out);
    assert.equal(code, 0, out);
    const stopLogs = stop.split('\n').map(parse).filter((l): l is LogLine => l !== undefined);
    for (const id of ['node-1', 'node-2', 'node-3']) {
      const mine = stopLogs.filter((l) => l.nodeId === id).map((l) => l.msg);
      assert.equal(mine.filter((m) => m.startsWith('stopping')).length, 1, `${id} began its stop once:\n${mine.join('\n')}`);
      assert.equal(mine.filter((m) => m === 'node stopped').length, 1, `${id} logged its stop once:\n${mine.join('\n')}`);
      assert.ok(!stop.includes(`${id} left`), `no second line per node from the cluster:\n${stop}`);
    }
    assert.equal(stop.split('stopping the cluster').length - 1, 1, stop);
    assert.match(stop, /jincache: every node left the cluster \(node-1, node-2, node-3: exit 0\)\n$/);
    const stopLoud = stopLogs.filter((l) => l.level >= 40);
    assert.deepEqual(stopLoud, [], `no WARN while stopping:\n${shown(stopLoud)}`);
  });

  test('--etcd auto: one Ctrl-C leaves the private etcd up until every node drained and revoked its lease', async () => {
    const base = await freePortRun(3);
    const [api, resp] = [await freePort(), await freePortRun(3)]; // node i gets resp + i - 1
    const child = spawn(process.execPath, [BIN, 'cluster', '--nodes', '3', '--etcd', 'auto', '--base-port', String(base), '--api-port', String(api), '--resp-port', String(resp)], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    pgid = child.pid!;
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    await waitFor('the banner', () => {
      if (child.exitCode !== null) throw new Error(`the cluster exited during start-up:\n${out}`);
      return out.includes(BANNER_END);
    }, 60_000, 100);
    const before = out.length;
    // the terminal's Ctrl-C reaches the whole foreground group; the private etcd is not in it
    process.kill(-pgid, 'SIGINT');
    const { code, signal } = await exited;
    await waitFor('every process of the job gone', () => !groupAlive(pgid!), 20_000, 50);
    const stop = out.slice(before);
    assert.equal(signal, null, out);
    assert.equal(code, 0, out);
    const logs = stop.split('\n').map(parse).filter((l): l is LogLine => l !== undefined);
    const shown = logs.map((l) => `${l.level} [${l.nodeId}] ${l.msg}`).join('\n');
    for (const bad of ['could not revoke etcd lease; peers will drop us after the TTL', 'drain failed; leaving anyway', 'drain incomplete; leaving anyway', 'could not resign; leadership passes on after the TTL']) {
      assert.ok(!logs.some((l) => l.msg === bad), `"${bad}" while stopping (etcd went first?):\n${shown}`);
    }
    for (const id of ['node-1', 'node-2', 'node-3']) assert.equal(logs.filter((l) => l.nodeId === id && l.msg === 'node stopped').length, 1, `${id} stopped once:\n${shown}`);
    assert.match(stop, /jincache: every node left the cluster \(node-1, node-2, node-3: exit 0\)\n$/);
  });
});
