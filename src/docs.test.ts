/**
 * The documents name files, and files move: this keeps docs/SPEC-CONFORMANCE.md, README.md and
 * docs/deploy.md honest about the tree. Every repository path they name (`src/...`, `test/...`,
 * `bench/...`, `scripts/...`, `config/...`, `docs/...`, `bin/...`, `.ci/...`; `{a,b}`
 * alternatives and `*` / `**` globs allowed, a glob must match at least one file) must exist,
 * and every relative Markdown link must reach a file and, with a `#fragment`, a heading of that
 * file (GitHub's anchors).
 *
 * It reads files only: no processes, no network. A path outside those folders (`/etc/...`, a
 * URL, `/jincache/config/{group}` in etcd) is not a repository path and is not checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const DOCS = ['docs/SPEC-CONFORMANCE.md', 'README.md', 'docs/deploy.md'] as const;
const ROOTS = ['src', 'test', 'bench', 'scripts', 'config', 'docs', 'bin', '.ci'];
/** Never part of what a document may name: installed, built or produced by a run. */
const SKIP = new Set(['node_modules', '.git', 'dist', 'data', 'test-results']);

/** A repository path: one of ROOTS, then segments of name characters, globs and {a,b} groups. */
const PATH = new RegExp(`(?<![\\w./:-])(?:${ROOTS.map((r) => r.replace('.', '\\.')).join('|')})/(?:(?:[\\w.*-]|\\{[\\w.,*-]*\\})+/?)*`, 'g');

export interface Named {
  path: string;
  line: number;
}

function lineOf(text: string, index: number): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** Every repository path a text names, in order, with the line it is on. */
export function namedPaths(text: string): Named[] {
  const out: Named[] = [];
  for (const m of text.matchAll(PATH)) {
    // a sentence may end right after a path
    const path = m[0].replace(/\.+$/, '');
    out.push({ path, line: lineOf(text, m.index) });
  }
  return out;
}

/** `a/{b,c}/d{1,2}` → its alternatives (groups do not nest). */
export function expandBraces(path: string): string[] {
  const m = /\{([^{}]*)\}/.exec(path);
  if (m === null) return [path];
  const head = path.slice(0, m.index);
  const tail = path.slice(m.index + m[0].length);
  return m[1]!.split(',').flatMap((alt) => expandBraces(`${head}${alt}${tail}`));
}

function globRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` is any number of folders, a final `**` anything below
      re += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function filesUnder(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) filesUnder(p, out);
    else out.push(relative(ROOT, p));
  }
  return out;
}

let files: string[] | undefined;

/** Whether `path` (one alternative, relative to the repository) names something that exists. */
export function exists(path: string): boolean {
  if (path.includes('*')) {
    files ??= filesUnder(ROOT);
    const re = globRegExp(path.replace(/\/$/, '/**'));
    return files.some((f) => re.test(f));
  }
  const full = join(ROOT, path);
  if (!existsSync(full)) return false;
  return !path.endsWith('/') || statSync(full).isDirectory();
}

/** The text with fenced code blocks and inline code blanked out (line numbers kept). */
function prose(markdown: string): string {
  return markdown
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, (block) => block.replace(/[^\n]/g, ' '))
    .replace(/`[^`\n]*`/g, (code) => ' '.repeat(code.length));
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .replace(/`/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors of a Markdown file's headings (outside code blocks), repeats numbered as GitHub does. */
export function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of prose(markdown).matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    // the heading as written (prose() blanked its inline code)
    const heading = markdown.slice(m.index, m.index + m[0].length).replace(/^#{1,6}[ \t]+/, '').replace(/[ \t#]*$/, '');
    const base = slug(heading);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Relative Markdown links `[text](target)` outside code, with their line. */
export function relativeLinks(markdown: string): Named[] {
  const out: Named[] = [];
  for (const m of prose(markdown).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
    out.push({ path: target, line: lineOf(markdown, m.index) });
  }
  return out;
}

function read(doc: string): string {
  return readFileSync(join(ROOT, doc), 'utf8');
}

test('the path finder finds repository paths, expands braces and leaves other paths alone', () => {
  const text = [
    'See `src/core/placement/{hash,ring,table}.ts` and src/cli/cluster.ts.',
    'Tests: `test/integration/migration*.test.ts`, `src/**/*.test.ts`, src/cluster/migration/ (a folder).',
    'Run by `.ci/run` through bin/jincache.js, not by xbin/x.',
    'Not ours: /etc/jincache/config/x, https://example.org/docs/a.md, `/jincache/config/{group}`, node:test/x, a.ci/x.',
  ].join('\n');
  assert.deepEqual(namedPaths(text), [
    { path: 'src/core/placement/{hash,ring,table}.ts', line: 1 },
    { path: 'src/cli/cluster.ts', line: 1 },
    { path: 'test/integration/migration*.test.ts', line: 2 },
    { path: 'src/**/*.test.ts', line: 2 },
    { path: 'src/cluster/migration/', line: 2 },
    { path: '.ci/run', line: 3 },
    { path: 'bin/jincache.js', line: 3 },
  ]);
  assert.deepEqual(expandBraces('src/core/placement/{hash,ring}.{ts,test.ts}'), [
    'src/core/placement/hash.ts',
    'src/core/placement/hash.test.ts',
    'src/core/placement/ring.ts',
    'src/core/placement/ring.test.ts',
  ]);
  // what it checks against: real paths pass, made-up ones fail
  assert.equal(exists('src/docs.test.ts'), true);
  assert.equal(exists('src/cluster/migration/'), true);
  assert.equal(exists('test/integration/migration*.test.ts'), true);
  assert.equal(exists('src/transport/http/server.ts'), false);
  assert.equal(exists('src/docs.test.ts/'), false, 'a trailing slash names a folder');
  assert.equal(exists('test/integration/nothing-like-this*.test.ts'), false);
});

test('anchors and links are read as GitHub reads them', () => {
  const md = '# Top\n## 1. Install (on every host)\n```sh\n# not a heading\n```\n## Top\n[a](#top-1) [b](x.md#y) [c](https://e.org) `[d](z.md)`\n';
  assert.deepEqual([...anchors(md)], ['top', '1-install-on-every-host', 'top-1']);
  assert.deepEqual(relativeLinks(md), [
    { path: '#top-1', line: 7 },
    { path: 'x.md#y', line: 7 },
  ]);
});

for (const doc of DOCS) {
  test(`${doc}: every repository path it names exists`, () => {
    const named = namedPaths(read(doc));
    // a finder that finds nothing would pass everything
    assert.ok(named.length >= (doc === 'docs/deploy.md' ? 3 : 20), `${doc} names ${named.length} paths`);
    const missing = named.filter((n) => !expandBraces(n.path).every(exists)).map((n) => `${doc}:${n.line}: ${n.path}`);
    assert.deepEqual(missing, [], `paths named but not in the repository:\n${missing.join('\n')}`);
  });

  test(`${doc}: every relative link reaches a file, and a heading when it has a #fragment`, () => {
    const broken: string[] = [];
    for (const link of relativeLinks(read(doc))) {
      const [file = '', fragment] = link.path.split('#');
      const target = file === '' ? doc : normalize(join(dirname(doc), decodeURIComponent(file)));
      if (target.startsWith('..') || !existsSync(join(ROOT, target))) {
        broken.push(`${doc}:${link.line}: ${link.path} (no file ${target} in the repository)`);
        continue;
      }
      if (fragment !== undefined && !anchors(read(target)).has(fragment)) broken.push(`${doc}:${link.line}: ${link.path} (no heading #${fragment} in ${target})`);
    }
    assert.deepEqual(broken, [], broken.join('\n'));
  });
}

test('docs/SPEC-CONFORMANCE.md has a section for every SPEC section, §1 to §8', () => {
  const headings = [...read('docs/SPEC-CONFORMANCE.md').matchAll(/^## §(\d+) /gm)].map((m) => Number(m[1]));
  assert.deepEqual(headings, [1, 2, 3, 4, 5, 6, 7, 8]);
});
