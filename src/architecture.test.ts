/**
 * The source tree's shape, checked: folders form layers (a folder imports only from lower
 * layers: type-only imports count), and no two files import each other, however indirectly.
 * A new folder must be given a layer here, which is the point: where it sits is a decision.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = import.meta.dirname;

/** Bottom to top. Same number: neither may import the other. */
const LAYERS: Record<string, number> = {
  core: 0, // pure: types, versions, placement (slots, ring, table), rebalance planning
  config: 1, // the file, its schema, live overrides
  cache: 1, // the per-group store, hot cache, loaders, write operations
  observe: 1, // logs, metrics, dashboard assets
  net: 1, // socket and HTTP plumbing shared by the listeners
  discovery: 2, // membership, table store, election: static and etcd
  storage: 2, // LevelDB persistence
  peer: 2, // the node-to-node protocol: messages, client, server
  load: 3, // the load monitor and service
  client: 3, // jincache/client, the routing HTTP client library
  cluster: 4, // routing, replication, health, repair, migration, mirrors, rebalancing
  front: 5, // the front door, the HTTP API and the Redis listener
  node: 6, // the composition root
  cli: 7, // the jincache command
  '(root)': 8, // index.ts, the library entry
};

function sources(dir: string, out: string[] = []): string[] {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g)) out.push(resolve(dirname(file), m[1]!));
  return out;
}

const folderOf = (file: string): string => {
  const parts = relative(SRC, file).split('/');
  return parts.length > 1 ? parts[0]! : '(root)';
};

const files = sources(SRC);
const graph = new Map(files.map((f) => [f, imports(f)]));

test('every folder has a layer, and imports only from lower layers', () => {
  const bad: string[] = [];
  for (const [file, targets] of graph) {
    const from = folderOf(file);
    assert.ok(from in LAYERS, `folder ${from} has no layer in architecture.test.ts`);
    for (const t of targets) {
      const to = folderOf(t);
      if (to === from) continue;
      if (!(LAYERS[to]! < LAYERS[from]!)) bad.push(`${relative(SRC, file)} (${from}, layer ${LAYERS[from]}) imports ${relative(SRC, t)} (${to}, layer ${LAYERS[to]})`);
    }
  }
  assert.deepEqual(bad, []);
});

test('no import cycles between files', () => {
  // Tarjan's strongly connected components: any component of more than one file is a cycle
  let index = 0;
  const stack: string[] = [];
  const onStack = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(relative(SRC, w));
      } while (w !== v);
      if (c.length > 1) cycles.push(c);
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

test('the check sees imports: it finds the layers it is meant to guard', () => {
  // a check that parses nothing would pass trivially
  const edges = [...graph.values()].reduce((n, t) => n + t.length, 0);
  assert.ok(files.length > 80 && edges > 200, `${files.length} files, ${edges} imports`);
  assert.ok(graph.get(join(SRC, 'node/node.ts'))!.some((t) => folderOf(t) === 'front'));
});
