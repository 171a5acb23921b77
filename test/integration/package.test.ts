/**
 * The package as a user gets it: `npm pack` of this checkout installed into an empty app, then
 * `import { createNode } from 'jincache'`, `import { JincacheClient } from 'jincache/client'`
 * typechecked with this project's tsc against the installed declarations, the README's ```ts test
 * blocks run in that app, and `npx jincache cluster` started, used and stopped with Ctrl-C.
 *
 * Offline: the app's lockfile pins jincache's dependencies to the versions (and integrity hashes)
 * of this project's package-lock.json, so `npm ci --offline` takes them from the npm cache that
 * the project's own `npm ci` filled. No test here reaches a registry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { freePort, freePortRun } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
/** The pinned Node first on PATH, so `npx jincache` and `#!/usr/bin/env node` run on it. */
const ENV = { ...process.env, PATH: [join(ROOT, 'node_modules/.bin'), process.env.PATH].join(delimiter), npm_config_update_notifier: 'false' };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = ENV, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolveRun) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c) => (stdout += c));
    child.stderr!.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

function ok(r: Run, what: string): Run {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The README's ```ts test blocks, and the output each promises in its `// → ...` comments. */
function readmeBlocks(): { code: string; expected: string[] }[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/^```ts test\n([\s\S]*?)^```$/gm)].map((m) => ({
    code: m[1]!,
    expected: [...m[1]!.matchAll(/\/\/ → (.*)$/gm)].map((e) => e[1]!.trimEnd()),
  }));
}

/**
 * A lockfile for an app that depends on the tarball alone: jincache's entry plus every
 * non-dev package of this project's lockfile, at the same paths (so the same versions).
 */
function appLock(tarball: string, pkg: Record<string, any>): object {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  const packages: Record<string, unknown> = {
    '': { name: 'app', dependencies: { jincache: `file:${tarball}` } },
    'node_modules/jincache': {
      version: pkg.version, resolved: `file:${tarball}`, integrity, license: pkg.license,
      dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages as Record<string, { dev?: boolean }>)) {
    if (path !== '' && entry.dev !== true) packages[path] = entry;
  }
  return { name: 'app', lockfileVersion: 3, requires: true, packages };
}

/** A program using both entry points, with lines the types must reject (so `any` cannot pass). */
const CONSUMER = `import { createNode, isJincacheError, type CreateNodeOptions, type EmbeddedNode } from 'jincache';
import { JincacheClient, isJincacheClientError, type JincacheClientOptions } from 'jincache/client';

const options: CreateNodeOptions = { groups: [{ name: 'users', loader: async (key) => \`user \${key}\` }] };
const node: EmbeddedNode = await createNode(options);
const loaded: string | null = await node.getString('users', '42');
const clientOptions: JincacheClientOptions = { nodes: [node.url], group: 'users' };
const client = new JincacheClient(clientOptions);
await client.put('k', 'v', { ttlSeconds: 5 });
const read: string | null = await client.getString('k');
console.log(loaded, read, isJincacheError(new Error('x')), isJincacheClientError(new Error('x')));
await client.close();
await node.stop();

export function neverCalled(): void {
  // @ts-expect-error a group needs a name
  void createNode({ groups: [{ loader: async () => null }] });
  // @ts-expect-error a value is a string or a Buffer
  void client.put('k', 42);
  // @ts-expect-error getString resolves to string | null
  const n: Promise<number> = client.getString('k');
  void n;
}
`;

describe('the packed package, installed into an empty app', () => {
  let dir: string;
  let app: string;
  let files: string[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'jincache-pack-'));
    const packed = ok(await run('npm', ['pack', '--json', '--pack-destination', dir], ROOT), 'npm pack');
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    files = info!.files.map((f) => f.path);
    const tarball = join(dir, info!.filename);

    app = join(dir, 'app');
    mkdirSync(app);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    writeFileSync(join(app, 'package.json'), JSON.stringify({
      name: 'app', private: true, type: 'module',
      dependencies: { jincache: `file:${tarball}` },
      // the install scripts this project allows for the same packages
      allowScripts: { 'classic-level': true, protobufjs: true },
    }, null, 2));
    writeFileSync(join(app, 'package-lock.json'), JSON.stringify(appLock(tarball, pkg), null, 2));
    ok(await run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], app), 'npm ci --offline in the app (are the dependencies in the npm cache? run `npm ci` in the checkout)');

    // the app's own code: a consumer of both entry points and the README's blocks, as files
    writeFileSync(join(app, 'consumer.ts'), CONSUMER);
    const blocks = readmeBlocks();
    blocks.forEach((b, i) => writeFileSync(join(app, `readme-${i + 1}.ts`), b.code));
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'es2023', module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2023'],
        types: ['node'], typeRoots: [join(app, 'node_modules/@types'), join(ROOT, 'node_modules/@types')],
        strict: true, noEmit: true, skipLibCheck: false, verbatimModuleSyntax: true, erasableSyntaxOnly: true,
      },
      include: ['*.ts'],
    }, null, 2));
  });

  after(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test('the tarball holds the command, dist/ with declarations and the dashboard; no sources, tests, benchmarks or CI', () => {
    for (const f of [
      'bin/jincache.js', 'dist/index.js', 'dist/index.d.ts', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/cli/main.js',
      'dist/observe/dashboard/index.html', 'dist/observe/dashboard/dashboard.js', 'dist/observe/dashboard/dashboard.css',
      'config/jincache.example.yaml', 'README.md', 'package.json',
    ]) assert.ok(files.includes(f), `${f} is in the tarball`);
    const unwanted = files.filter((f) => /^(src|test|bench|\.ci|scripts|docs|node_modules)\//.test(f) || /\.test\.|(^|\/)tsconfig/.test(f));
    assert.deepEqual(unwanted, []);
  });

  test('both entry points import and work, and typecheck against the installed declarations', async () => {
    ok(await run(process.execPath, [TSC, '-p', join(app, 'tsconfig.json')], app), 'tsc on the consumer and the README blocks');
    const r = ok(await run(process.execPath, ['consumer.ts'], app), 'node consumer.ts');
    assert.equal(r.stdout.trim(), 'user 42 v false false');
  });

  describe('npx jincache cluster', () => {
    let cluster: ChildProcess | undefined;
    let output = '';
    let api = '';

    before(async () => {
      const [base, apiPort, resp] = [await freePortRun(2), await freePort(), await freePortRun(2)];
      await freePort(); // node-2 listens on base + 1
      api = `http://127.0.0.1:${apiPort}`;
      // a process group of its own, as a terminal's foreground job
      cluster = spawn('npx', ['--offline', 'jincache', 'cluster', '--nodes', '2', '--base-port', String(base), '--api-port', String(apiPort), '--resp-port', String(resp)], {
        cwd: app, env: ENV, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
      });
      cluster.stdout!.on('data', (c) => (output += c));
      cluster.stderr!.on('data', (c) => (output += c));
      await waitFor('the cluster is up', () => {
        if (cluster!.exitCode !== null) throw new Error(`npx jincache cluster exited:\n${output}`);
        return output.includes('Ctrl-C stops the cluster');
      }, 30_000, 100);
    });

    after(() => {
      if (cluster !== undefined && groupAlive(cluster.pid!)) process.kill(-cluster.pid!, 'SIGKILL');
    });

    test('answers the HTTP API and serves the dashboard', async () => {
      assert.equal((await fetch(`${api}/api/scores/greeting`, { method: 'PUT', body: 'hello' })).status, 204);
      const got = await fetch(`${api}/api/scores/greeting`);
      assert.equal(got.status, 200);
      assert.equal(await got.text(), 'hello');
      for (const [path, type] of [['/', 'text/html'], ['/dashboard.js', 'text/javascript'], ['/dashboard.css', 'text/css']] as const) {
        const res = await fetch(`${api}${path}`);
        assert.equal(res.status, 200, path);
        assert.match(res.headers.get('content-type') ?? '', new RegExp(type), path);
        assert.ok((await res.text()).length > 100, `${path} has a body`);
      }
    });

    test("the README's code blocks run as written and print what their comments say", async () => {
      const blocks = readmeBlocks();
      assert.ok(blocks.length >= 2, `the README has its library and client blocks (found ${blocks.length})`);
      for (const [i, block] of blocks.entries()) {
        assert.ok(block.expected.length > 0, `block ${i + 1} promises some output`);
        const r = ok(await run(process.execPath, [`readme-${i + 1}.ts`], app, { ...ENV, JINCACHE_URL: api }, 30_000), `README block ${i + 1}`);
        assert.deepEqual(r.stdout.trimEnd().split('\n'), block.expected, `README block ${i + 1}:\n${block.code}`);
      }
    });

    test('one Ctrl-C stops every node gracefully', async () => {
      const pgid = cluster!.pid!;
      const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => cluster!.once('exit', (code, signal) => r({ code, signal })));
      process.kill(-pgid, 'SIGINT');
      const { code, signal } = await exit;
      // npm exec runs the command through `sh -c`, which dies of the SIGINT at once; npm then
      // ends by the same signal (its convention). The cluster under it goes on leaving.
      assert.ok(code === 0 || signal === 'SIGINT', `npx ended with ${code ?? signal}:\n${output}`);
      await waitFor('every process of the job gone', () => !groupAlive(pgid), 40_000, 50);
      assert.match(output, /every node left the cluster \(node-1, node-2: exit 0\)/);
    });
  });
});
