/**
 * CLI output snapshots (issue 7, item 5): `jincache status` (table and --json), the help texts,
 * a bad config file, an unknown command and an unreachable node, run as real processes.
 *
 * Snapshots live in test/snapshots/<name>.txt with the volatile parts (ports, temp paths,
 * memory sizes, the package version) replaced by placeholders. `UPDATE_SNAPSHOTS=1` rewrites
 * them; a missing snapshot fails the test (so CI never passes by writing its own expectations).
 *
 * Exit codes scripts rely on: 0 success, 1 the cluster could not be reached or answered badly,
 * 2 bad usage or config. Output goes through pipes here, so it must carry no colour codes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { freePort } from '../helpers/ports.ts';
import { runCli, startCluster, type TestCluster } from '../helpers/cluster.ts';
import { clusterOf, waitFor } from '../helpers/wait.ts';

const SNAPSHOTS = resolve(import.meta.dirname, '../snapshots');
const UPDATE = process.env.UPDATE_SNAPSHOTS === '1';
const VERSION = (JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;
const ANSI = /\u001b\[/;

/** Replace what changes from run to run with stable placeholders. */
function normalise(text: string, dirs: readonly string[] = []): string {
  let out = text;
  for (const d of dirs) out = out.split(d).join('<dir>');
  return out
    .replace(/(127\.0\.0\.1|localhost):\d+/g, '$1:<port>')
    .replace(/\/tmp\/[\w.-]+/g, '<tmp>')
    .split(VERSION)
    .join('<version>');
}

/** Compare with test/snapshots/<name>.txt, or write it when UPDATE_SNAPSHOTS=1. */
function matchSnapshot(name: string, actual: string): void {
  const file = join(SNAPSHOTS, `${name}.txt`);
  if (UPDATE) {
    mkdirSync(SNAPSHOTS, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.ok(existsSync(file), `no snapshot ${file}: run with UPDATE_SNAPSHOTS=1 and review it`);
  assert.equal(actual, readFileSync(file, 'utf8'), `output differs from snapshot ${name}.txt (UPDATE_SNAPSHOTS=1 rewrites it)`);
}

function assertNoColour(...outputs: string[]): void {
  for (const o of outputs) assert.ok(!ANSI.test(o), `no ANSI colour codes when not on a terminal: ${JSON.stringify(o.slice(0, 80))}`);
}

/**
 * The status table with its address column normalised: ports vary in width, so after replacing
 * them the column padding is squeezed to the table's two-space separator. The alignment itself is
 * checked on the raw output (see assertAligned).
 */
function normaliseTable(text: string): string {
  return normalise(text)
    .split('\n')
    .map((l) => l.replace(/ {2,}/g, '  '))
    // the LOAD column (6th) is a measured score: keep whether it is reported, not its value
    .map((l) => (l.startsWith('node-') ? l.split('  ').map((c, i) => (i === 5 && /^\d+\.\d+$/.test(c) ? '<load>' : c)).join('  ') : l))
    .join('\n');
}

/** Every line of a rendered table starts its columns at the header's column offsets. */
function assertAligned(lines: string[]): void {
  const header = lines[0]!;
  const starts = [...header.matchAll(/\S+/g)].map((m) => m.index);
  const dashes = lines[1]!;
  assert.deepEqual([...dashes.matchAll(/-+/g)].map((m) => m.index), starts, 'dash line under each header');
  for (const line of lines.slice(2)) {
    const cells = [...line.matchAll(/\S+( \*)?/g)].map((m) => m.index);
    assert.deepEqual(cells, starts, `columns aligned in: ${line}`);
  }
}

describe('jincache CLI', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startCluster({ nodes: 3 });
    // every node's load report reaches the others within a second or two: snapshot that settled
    // state, not whichever moment the CLI happens to catch
    await waitFor('every node reports its load to every node', async () => {
      const infos = await Promise.all(cluster.nodes.map((n) => clusterOf(n.url)));
      return infos.every((c) => (c.nodes as { loadScore?: number }[]).every((n) => typeof n.loadScore === 'number'));
    }, 15_000, 100);
  });

  after(async () => {
    await cluster?.stop();
  });

  test('jincache status prints a table of the nodes', async () => {
    const out = await runCli(['status', '--node', cluster.nodes[0]!.url]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stderr, '');
    assertNoColour(out.stdout);
    const lines = out.stdout.trimEnd().split('\n');
    assert.equal(lines[1], '');
    assertAligned(lines.slice(2));
    matchSnapshot('status', normaliseTable(out.stdout));
  });

  test('jincache status --json prints the /cluster JSON', async () => {
    const out = await runCli(['status', '--node', cluster.nodes[1]!.url, '--json']);
    assert.equal(out.code, 0, out.stderr);
    assertNoColour(out.stdout);
    assert.ok(out.stdout.endsWith('}\n'));
    const info = JSON.parse(out.stdout) as Record<string, any>;
    // the same as the node's own /cluster, apart from what moves between two reads
    const direct = (await (await fetch(`${cluster.nodes[1]!.url}/cluster`)).json()) as Record<string, any>;
    assert.deepEqual(info.partitions, direct.partitions);
    assert.equal(info.self, 'node-2');
    // The 4096 owner ids are summarised (counts per owner) and memory sizes replaced, so the
    // snapshot stays readable and stable.
    const owners: string[] = info.partitions.owners;
    const counts = new Map<string, number>();
    for (const o of owners) counts.set(o, (counts.get(o) ?? 0) + 1);
    info.partitions.owners = `<${owners.length} owner ids: ${[...counts].sort().map(([o, n]) => `${o} ×${n}`).join(', ')}>`;
    // measured values (memory, load, CPU, timestamps) change from run to run: keep their
    // presence and type in the snapshot, not their value
    const measured = new Set(['memoryBytes', 'rssBytes', 'loadScore', 'score', 'cpu', 'elu', 'lagMs', 'at', 'qps', 'bytesInPerSec', 'bytesOutPerSec']);
    const mask = (o: unknown): void => {
      if (o === null || typeof o !== 'object') return;
      for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
        if (measured.has(k) && typeof v === 'number') (o as Record<string, unknown>)[k] = '<number>';
        else mask(v);
      }
    };
    mask(info.nodes);
    mask(info.load);
    // the event feed depends on timing (peers seen starting): its presence is what is stable
    if (Array.isArray(info.events)) info.events = '<events>';
    // the stable core of /cluster is the snapshot; components add fields as they land (load,
    // breakers, mirrors, catch-up...), so for those only their presence is recorded
    const core = ['self', 'ringVersion', 'leader', 'partitionCount', 'replicationFactor', 'nodes', 'partitions', 'groups'];
    for (const k of ['events', 'migrations', 'hotKeys', 'load']) assert.ok(k in info, `/cluster has ${k}`);
    const snapshot: Record<string, unknown> = Object.fromEntries(core.map((k) => [k, info[k]]));
    matchSnapshot('status-json', normalise(`${JSON.stringify(snapshot, null, 2)}\n`));
  });

  test('jincache --help and jincache serve --help', async () => {
    const top = await runCli(['--help']);
    assert.equal(top.code, 0);
    assert.equal(top.stderr, '');
    assertNoColour(top.stdout);
    matchSnapshot('help', normalise(top.stdout));
    const serve = await runCli(['serve', '--help']);
    assert.equal(serve.code, 0);
    assertNoColour(serve.stdout);
    matchSnapshot('serve-help', normalise(serve.stdout));
    // `help serve` says the same as `serve --help`
    const viaHelp = await runCli(['help', 'serve']);
    assert.equal(viaHelp.code, 0);
    assert.equal(viaHelp.stdout, serve.stdout);
  });

  test('an invalid config stops start-up with one line naming the key, the value and what is allowed (exit 2)', async () => {
    const dir = cluster.dir;
    const cases: Array<[name: string, yaml: string | null, args: string[]]> = [
      // (server.port itself would be overridden by the --port flag below)
      ['port out of range', 'server:\n  api_port: 70000\n', []],
      ['bad size', 'cache:\n  cache_bytes: lots\n', []],
      ['bad duration', 'fault_tolerance:\n  heartbeat_interval: soon\n', []],
      ['misspelt key', 'cache:\n  cache_byte: 1MiB\n', []],
      ['broken YAML', 'server: [1\n', []],
      ['missing file', null, []],
      ['bad flag value', 'log:\n  level: info\n', ['--port', 'abc']],
    ];
    const transcript: string[] = [];
    for (const [i, [name, yaml, args]] of cases.entries()) {
      const file = join(dir, `bad-${i}.yaml`);
      if (yaml !== null) writeFileSync(file, yaml);
      const port = await freePort();
      const out = await runCli(['serve', '--config', file, '--port', String(port), ...args], 10_000);
      assert.equal(out.code, 2, `${name}: exit 2\n${out.stderr}`);
      assert.equal(out.stdout, '', `${name}: nothing on stdout`);
      assertNoColour(out.stderr);
      const lines = out.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `${name}: one line, got:\n${out.stderr}`);
      assert.match(lines[0]!, /^config: /);
      // nothing was started: the port is still free
      await assert.rejects(fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) }));
      transcript.push(`# ${name}\n${yaml ?? '(no file)\n'}${args.length ? `args: ${args.join(' ')}\n` : ''}-> exit ${out.code}\n${out.stderr}`);
    }
    matchSnapshot('bad-config', normalise(transcript.join('\n'), [dir]));
  });

  test('an unknown command or option is a usage error (exit 2)', async () => {
    const cmd = await runCli(['frobnicate']);
    assert.equal(cmd.code, 2);
    assert.equal(cmd.stdout, '');
    assert.match(cmd.stderr, /^error: unknown command 'frobnicate'\n/);
    assertNoColour(cmd.stderr);
    const opt = await runCli(['status', '--bogus']);
    assert.equal(opt.code, 2);
    assert.match(opt.stderr, /^error: unknown option '--bogus'\n/);
    matchSnapshot('usage-errors', normalise(`$ jincache frobnicate\n-> exit ${cmd.code}\n${cmd.stderr}\n$ jincache status --bogus\n-> exit ${opt.code}\n${opt.stderr}`));
  });

  test('an unreachable node fails with exit 1 and says which address', async () => {
    const port = await freePort(); // nothing listens there
    const url = `http://127.0.0.1:${port}`;
    const table = await runCli(['status', '--node', url]);
    assert.equal(table.code, 1);
    assert.equal(table.stdout, '');
    assert.equal(table.stderr.trimEnd().split('\n').length, 1, table.stderr);
    assert.ok(table.stderr.includes(`cannot reach ${url}`), table.stderr);
    const json = await runCli(['status', '--node', url, '--json']);
    assert.equal(json.code, 1);
    assert.equal(json.stdout, '', 'no partial JSON on stdout');
    assertNoColour(table.stderr, json.stderr);
    matchSnapshot('unreachable', normalise(`$ jincache status --node ${url}\n-> exit ${table.code}\n${table.stderr}`));
  });
});

/**
 * `jincache migrations --watch` against a stand-in for a node's /cluster/migrations whose one
 * migration goes running 30%, running 70%, done: the real CLI process prints each open state
 * and, with --until-done, exits 0 once none is open.
 */
describe('jincache migrations --watch', () => {
  const view = (state: string, done: number) => ({
    id: 'm-1-2', kind: 'prepare', change: 'join', label: 'join of node-4', joined: ['node-4'], left: [], state, fromVersion: 2, toVersion: 3,
    members: ['node-1', 'node-4'], createdAt: 0, updatedAt: 0, committedAt: null, reason: null, rollbackRequested: false, held: false,
    partitions: { total: 10, done: done / 10, failed: 0, copying: 1 }, entries: { done, total: 100 }, bytes: { done: done * 10, total: 1000 },
    rate: 50, etaSeconds: state === 'done' ? null : Math.round((100 - done) / 50),
  });
  const script = [view('running', 30), view('running', 70), view('done', 100)];
  let polls = 0;
  const server = http.createServer((req, res) => {
    if (req.url !== '/cluster/migrations') return void res.writeHead(404).end();
    const m = script[Math.min(polls++, script.length - 1)]!;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ migrations: [m] }));
  });
  let url = '';
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('--json --until-done: one line per poll with the open migrations, exit 0 once none is open', async () => {
    polls = 0;
    const out = await runCli(['migrations', '--watch', '--until-done', '--json', '--node', url], 15_000);
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as { migrations: { state: string; entries: { done: number } }[] });
    assert.deepEqual(lines.map((l) => l.migrations.map((m) => `${m.state} ${m.entries.done}`)), [['running 30'], ['running 70'], []]);
  });

  test('text: progress lines, then "no open migration"', async () => {
    polls = 0;
    const out = await runCli(['migrations', '--watch', '--until-done', '--node', url], 15_000);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(out.stdout.trim().split('\n'), [
      'm-1-2 prepare running 30/100 entries 3/10 partitions 50/s eta 1s',
      'm-1-2 prepare running 70/100 entries 7/10 partitions 50/s eta 1s',
      'no open migration',
    ]);
    assert.doesNotMatch(out.stdout, ANSI);
  });
});
