/**
 * The dashboard (issue 15, item 5) in a real headless Chromium against a real etcd cluster of
 * node processes, through a join, a crash and a graceful leave, with data moving (migrations are
 * paced by `migration.bandwidth` so they can be watched while they run).
 *
 * Each check compares what the page shows with the very GET /cluster (and /cluster/migrations)
 * answer the page drew it from: the page keeps that snapshot as `window.jincacheRendered`, and
 * one page.evaluate reads it together with the DOM, so the two are of the same moment. The
 * expectations are computed here from the JSON, independently of the page's code: a card that
 * misreads the API (a migration at "0.0%, 0 entries", one running too many, "every partition has
 * 2 copies" with a holder down, a crashed node both "active" and "down", a leave called a
 * rebalance, a join listed twice) fails. Screenshots go to test-results/dashboard-*.png.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { launchBrowser, type TestBrowser } from '../helpers/browser.ts';
import { startCluster, type TestCluster, type TestNode } from '../helpers/cluster.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { clusterOf, waitFor } from '../helpers/wait.ts';

// The callbacks below run inside the page; the project's tsconfig has no DOM lib.
declare const document: any;
declare const window: any;

const RESULTS = resolve(import.meta.dirname, '../../test-results');
// long enough that a busy machine does not expire a live node's lease (which the page would
// rightly show as a departure)
const LEASE_TTL_S = 4;
const KEYS = 2000;

interface MigrationJson {
  id: string;
  state: string;
  change: string;
  label: string;
  entries: { done: number; total: number };
  partitions: { total: number; done: number };
}
interface NodeJson {
  id: string;
  status: string;
  health: string;
  zone: string | null;
  partitionsOwned: number;
  partitionsReplica: number;
}
interface ClusterJson {
  self: string;
  ringVersion: number;
  replicationFactor: number;
  nodes: NodeJson[];
  departed: { id: string; graceful: boolean; at: number }[];
  partitions: { owners: string[]; underReplicated: number; withDownHolder: number; unavailable: number; moving: number[] };
  migrations: MigrationJson[];
  hotKeys: { key: string }[];
  events: { at: number; kind: string; message: string }[];
  __migrations?: { migrations: MigrationJson[] };
}

/** What the page shows, read in one go with the snapshot it was drawn from. */
interface View {
  snap: ClusterJson;
  polls: number;
  cards: Record<string, string>;
  rows: { id: string; state: string; status: string; health: string; zone: string; text: string }[];
  migs: { id: string; state: string; done: number; total: number; text: string }[];
  moving: number;
  partitions: number;
  hot: string[];
  feed: { kind: string; text: string }[];
}

async function view(page: Page, afterPoll = 0): Promise<View> {
  await page.waitForFunction((n) => Number(document.body.dataset.polls ?? 0) > n && window.jincacheRendered !== undefined, afterPoll, { timeout: 15_000 });
  return page.evaluate(() => {
    const text = (id: string) => String(document.getElementById(id)?.innerText ?? '');
    const all = (sel: string) => [...document.querySelectorAll(sel)] as any[];
    return {
      snap: JSON.parse(JSON.stringify(window.jincacheRendered)),
      polls: Number(document.body.dataset.polls),
      cards: Object.fromEntries(['stat-nodes', 'stat-nodes-note', 'stat-replication', 'stat-replication-note', 'stat-migrations', 'stat-migrations-note', 'ring-version'].map((id) => [id, text(id)])),
      rows: all('[data-testid="node-row"]').map((r) => ({ id: r.dataset.nodeId, state: r.dataset.state, status: r.dataset.status, health: r.dataset.health, zone: r.dataset.zone, text: String(r.innerText) })),
      migs: all('[data-testid="migrations"] .mig').map((m) => ({ id: m.dataset.migrationId, state: m.dataset.state, done: Number(m.dataset.entriesDone), total: Number(m.dataset.entriesTotal), text: String(m.innerText) })),
      moving: Number(document.getElementById('partition-map').dataset.moving ?? 0),
      partitions: Number(document.getElementById('partition-map').dataset.partitions ?? 0),
      hot: all('[data-testid="hot-keys"] li').map((l) => String(l.dataset.key ?? l.innerText)),
      feed: all('[data-testid="event-feed"] li').map((l) => ({ kind: String(l.dataset.kind ?? ''), text: String(l.innerText) })),
    };
  }) as Promise<View>;
}

const fmt = (n: number): string => (Math.abs(n) >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n.toLocaleString('en-US'));
const isOpen = (m: { state: string }): boolean => m.state === 'running' || m.state === 'cancelling';

/** Every card and list against the snapshot, with expectations computed from the JSON alone. */
function checkView(v: View, what: string): void {
  const s = v.snap;
  const at = `${what} (poll ${v.polls})`;
  // nodes card: healthy / members
  const healthy = s.nodes.filter((n) => n.health === 'healthy').length;
  assert.equal(v.cards['stat-nodes'], `${healthy} / ${s.nodes.length}`, `${at}: nodes card`);
  // one row per member and per departed member, each with one state
  const expectedRows = new Map<string, string>();
  for (const n of s.nodes) {
    expectedRows.set(n.id, n.health === 'down' || n.health === 'suspected' ? n.health : n.status === 'joining' || n.status === 'leaving' ? n.status : n.health);
  }
  for (const d of s.departed) if (!expectedRows.has(d.id)) expectedRows.set(d.id, d.graceful ? 'left' : 'down');
  assert.deepEqual(new Map(v.rows.map((r) => [r.id, r.state])), expectedRows, `${at}: node rows`);
  assert.equal(v.rows.length, expectedRows.size, `${at}: each node once`);
  for (const r of v.rows) {
    // the state is the only status word in the row: never "active" beside "down"
    const words = r.text.split(/\s+/).filter((w) => ['active', 'healthy', 'down', 'suspected', 'joining', 'leaving', 'left', 'slow'].includes(w));
    assert.deepEqual(words, [r.state], `${at}: ${r.id} shows one state, saw ${words.join(' ')}:\n${r.text}`);
    const zone = s.nodes.find((n) => n.id === r.id)?.zone;
    if (zone) assert.equal(r.zone, zone, `${at}: ${r.id} zone`);
  }
  // replication card
  const p = s.partitions;
  if (p.unavailable > 0) assert.match(v.cards['stat-replication-note']!, new RegExp(`^${fmt(p.unavailable)} partitions have no copy on a live node`), at);
  else if (p.withDownHolder > 0) {
    assert.equal(v.cards['stat-replication'], fmt(p.withDownHolder), `${at}: replication value`);
    assert.match(v.cards['stat-replication-note']!, new RegExp(`^${fmt(p.withDownHolder)} partitions have a copy on a down node`), at);
  } else if (p.underReplicated > 0) assert.match(v.cards['stat-replication-note']!, new RegExp(`^${fmt(p.underReplicated)} partitions short of copies`), at);
  else {
    assert.equal(v.cards['stat-replication'], 'OK', at);
    assert.equal(v.cards['stat-replication-note'], `every partition has ${s.replicationFactor} copies on live nodes`, at);
  }
  // migrations: the card counts the open ones; every shown one has the API's entries
  const merged = new Map<string, MigrationJson>();
  for (const m of [...s.migrations, ...(s.__migrations?.migrations ?? [])]) merged.set(m.id, { ...merged.get(m.id), ...m });
  const open = [...merged.values()].filter(isOpen);
  assert.equal(v.cards['stat-migrations'], String(open.length), `${at}: migrations card`);
  assert.equal(v.cards['stat-migrations'], String(s.migrations.length), `${at}: /cluster lists the open ones`);
  for (const row of v.migs) {
    const m = merged.get(row.id);
    assert.ok(m, `${at}: migration ${row.id} in the API`);
    assert.equal(row.state, m.state, `${at}: ${row.id} state`);
    assert.equal(row.done, m.entries.done, `${at}: ${row.id} entries done`);
    assert.equal(row.total, m.entries.total, `${at}: ${row.id} entries total`);
    assert.ok(row.text.includes(`${fmt(m.entries.done)} / ${fmt(m.entries.total)} entries`), `${at}: ${row.id} text:\n${row.text}`);
    assert.ok(row.text.includes(m.label), `${at}: ${row.id} says what it is (${m.label}):\n${row.text}`);
    const pct = m.entries.total > 0 ? (100 * Math.min(m.entries.done, m.entries.total)) / m.entries.total : m.partitions.total > 0 ? (100 * m.partitions.done) / m.partitions.total : m.state === 'done' ? 100 : 0;
    assert.ok(row.text.includes(`${pct.toFixed(pct < 10 ? 1 : 0)}%`), `${at}: ${row.id} shows ${pct.toFixed(1)}%:\n${row.text}`);
  }
  // the partition map: every partition, the moving ones marked
  assert.equal(v.partitions, p.owners.length, `${at}: partitions drawn`);
  assert.equal(v.moving, p.moving.length, `${at}: moving partitions marked`);
  // hot keys
  if (s.hotKeys.length === 0) assert.deepEqual(v.hot, ['Nothing hot right now.'], `${at}: hot keys`);
  else assert.deepEqual(v.hot, s.hotKeys.slice(0, 20).map((k) => k.key), `${at}: hot keys`);
  // the feed is the node's own events, newest first, each once
  const expectedFeed = [...s.events].sort((a, b) => b.at - a.at).slice(0, 60);
  const feedKinds = v.feed.map((f) => f.kind);
  const shown = v.feed.map((f) => f.text).join('\n');
  const missing = expectedFeed.filter((e) => !shown.includes(e.message));
  assert.deepEqual(missing, [], `${at}: the feed shows the node's events; missing:\n${missing.map((e) => `${e.at} ${e.kind} ${e.message}`).join('\n')}\nshown:\n${shown}`);
  assert.ok(!feedKinds.includes('rebalance') || s.events.some((e) => e.kind === 'rebalance'), `${at}: no rebalance the node did not report`);
}

describe('dashboard in a headless browser: join, crash, leave', () => {
  let etcd: EtcdCluster;
  let cluster: TestCluster;
  let browser: TestBrowser;
  let page: Page;
  const pageErrors: string[] = [];
  const shot = (name: string) => page.screenshot({ path: resolve(RESULTS, `dashboard-${name}.png`), fullPage: true });
  const node = (id: string): TestNode => cluster.nodes.find((n) => n.id === id)!;

  before(async () => {
    mkdirSync(RESULTS, { recursive: true });
    etcd = await startEtcd();
    cluster = await startCluster({
      nodes: 3,
      staticPeers: false,
      args: ['--etcd', etcd.endpoints.join(',')],
      config: {
        etcd: { lease_ttl: `${LEASE_TTL_S}s` },
        fault_tolerance: { heartbeat_interval: '250ms', request_timeout: '1s' },
        load: { window: '3s' },
        // paced and in small batches, so a migration runs long enough to be seen running with
        // some partitions copied (at the default 10,000 entries a batch, the join's data is two
        // batches, and the progress jumps from nothing to every partition). At 128 KiB/s a
        // sender, the join (1 MB from 3 senders) ran about 3 s: a loaded full run polled it twice
        // before any progress was reported, then saw it done. At 64 KiB/s it runs about 6 s.
        migration: { bandwidth: '64KiB', batch_size: 100 },
      },
    });
    await waitFor('3 nodes in one table', async () => {
      const infos = await Promise.all(cluster.nodes.map((n) => clusterOf(n.url)));
      return infos.every((i) => i.nodes.length === 3 && i.migrations.length === 0 && i.ringVersion === infos[0].ringVersion);
    }, 20_000, 100);
    const value = 'v'.repeat(1024);
    const seed = cluster.nodes[0]!.url;
    // a node answers 503 while it has not confirmed its table yet (just after the cluster formed)
    const put = async (key: string): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        const r = await fetch(`${seed}/api/scores/${key}`, { method: 'PUT', body: value });
        await r.arrayBuffer();
        if (r.status === 204) return;
        assert.ok(r.status === 503 && attempt < 50, `PUT ${key}: ${r.status}`);
        await sleep(100);
      }
    };
    for (let i = 0; i < KEYS; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => put(`key-${i + j}`)));
    browser = await launchBrowser();
    page = await browser.browser.newPage({ viewport: { width: 1400, height: 1100 } });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text());
    });
    const res = await page.goto(`${seed}/`, { waitUntil: 'load', timeout: 30_000 });
    assert.equal(res?.status(), 200);
  });

  after(async () => {
    if (page) await shot('final').catch(() => {});
    await browser?.close();
    await cluster?.stop();
    await etcd?.stop();
  });

  test('steady: every card agrees with /cluster; hot keys show up and decay back to nothing', async () => {
    let v = await view(page);
    checkView(v, 'steady');
    assert.equal(v.cards['stat-replication'], 'OK');
    // a hot key: 2 s of reads of one key, then silence
    const seed = cluster.nodes[0]!.url;
    const end = Date.now() + 2000;
    while (Date.now() < end) await Promise.all(Array.from({ length: 20 }, () => fetch(`${seed}/api/scores/key-7`).then((r) => r.arrayBuffer())));
    await waitFor('the hot key on the page', async () => (v = await view(page, v.polls)).hot.includes('key-7'), 10_000, 0);
    checkView(v, 'hot');
    await shot('hot-keys');
    // the load window is 3 s: the key must leave the list, in the API and on the page
    await waitFor('nothing hot again', async () => (v = await view(page, v.polls)).snap.hotKeys.length === 0, 15_000, 0);
    checkView(v, 'cooled');
    assert.deepEqual(v.hot, ['Nothing hot right now.']);
    assert.deepEqual(pageErrors, []);
  });

  test('a join: the running migration shows its real progress and the moving partitions; then its real totals', async () => {
    const joinAt = Date.now();
    const node4 = await cluster.addNode('node-4', ['--etcd', etcd.endpoints.join(',')]);
    let v = await view(page);
    let running: View | undefined;
    const seen: string[] = [];
    await waitFor('the join migration seen running with entries copied', async () => {
      v = await view(page, v.polls);
      checkView(v, 'join');
      const m = v.snap.migrations.find((x) => x.change === 'join' && x.state === 'running');
      seen.push(`${v.snap.ringVersion} ${[...(v.snap.__migrations?.migrations ?? [])].slice(0, 2).map((x) => `${x.id} ${x.change} ${x.state} ${x.entries.done}/${x.entries.total} p${x.partitions.done}/${x.partitions.total}`).join('; ')} moving ${v.moving}`);
      // caught in the middle: some partitions copied, some still moving (the entries may all be
      // across already: empty partitions are copied too)
      if (m !== undefined && m.entries.done > 0 && m.partitions.done < m.partitions.total && v.moving > 0) running = v;
      return running !== undefined;
    }, 30_000, 0).catch((e: Error) => {
      throw new Error(`${e.message}\nsnapshots seen (ring, newest migrations, moving):\n${seen.join('\n')}`);
    });
    await shot('join');
    const m = running!.snap.migrations.find((x) => x.change === 'join')!;
    const row = running!.migs.find((r) => r.id === m.id)!;
    assert.ok(row.done > 0 && row.done === m.entries.done && row.total === m.entries.total, `running row shows ${row.done} / ${row.total}`);
    assert.ok(row.text.includes(`${fmt(m.partitions.done)} / ${fmt(m.partitions.total)} partitions`), row.text);
    assert.match(row.text, /entries\/s/);
    assert.equal(running!.cards['stat-migrations'], '1');
    console.log(`# join ${m.id}: seen at ${m.entries.done} / ${m.entries.total} entries, ${m.partitions.done} / ${m.partitions.total} partitions, ${running!.moving} moving`);

    await waitFor('the join done', async () => {
      v = await view(page, v.polls);
      checkView(v, 'join done');
      return v.snap.migrations.length === 0 && v.snap.nodes.some((n) => n.id === 'node-4' && n.partitionsOwned > 0);
    }, 60_000, 0);
    const doneRow = v.migs.find((r) => r.id === m.id);
    assert.ok(doneRow && doneRow.state === 'done', 'the finished join stays listed');
    assert.ok(doneRow.total > 0 && doneRow.done === doneRow.total, `finished with its real counts ${doneRow.done} / ${doneRow.total}`);
    assert.equal(v.cards['stat-migrations'], '0');
    assert.equal(v.moving, 0);
    const joins = v.snap.events.filter((e) => e.at >= joinAt && e.kind === 'join');
    assert.deepEqual(joins.map((e) => e.message), ['node-4 joined'], 'the join is in the feed once');
    assert.equal(v.feed.filter((f) => f.kind === 'join' && f.text.includes('node-4')).length, 1);
    assert.ok(node4.pid > 0);
  });

  test('a crash: the node is down once, the replication card counts the partitions with a copy on it', async () => {
    const crashAt = Date.now();
    const victim = node('node-2');
    const before = await clusterOf(cluster.nodes[0]!.url) as ClusterJson;
    const held = before.nodes.find((n) => n.id === 'node-2')!;
    await victim.stop('SIGKILL');
    let v = await view(page);
    let down: View | undefined;
    await waitFor('node-2 down on the page, still a member', async () => {
      v = await view(page, v.polls);
      checkView(v, 'crash');
      if (v.snap.nodes.some((n) => n.id === 'node-2' && n.health === 'down') && v.snap.partitions.withDownHolder > 0) down = v;
      return down !== undefined;
    }, 15_000, 0);
    await shot('crash');
    // computed from health and holders: every partition node-2 held has a copy on a down node
    assert.equal(down!.snap.partitions.withDownHolder, held.partitionsOwned + held.partitionsReplica);
    assert.equal(down!.cards['stat-replication'], fmt(held.partitionsOwned + held.partitionsReplica));
    assert.equal(down!.rows.find((r) => r.id === 'node-2')!.state, 'down');
    console.log(`# crash: node-2 down with ${down!.snap.partitions.withDownHolder} partitions holding a copy on it`);

    await waitFor('node-2 removed and repaired', async () => {
      v = await view(page, v.polls);
      checkView(v, 'after crash');
      // out of the membership (its lease ran out), out of the table (the leader removed it) and repaired
      const p = v.snap.partitions;
      // the leader commits the table without node-2 first and records the repair just after, so a
      // snapshot between the two shows no open migration yet: wait for the repair's record too
      const repaired = (v.snap.__migrations?.migrations ?? []).some((m) => m.change === 'crash' && m.state === 'done');
      return !v.snap.nodes.some((n) => n.id === 'node-2') && !p.owners.includes('node-2') && p.withDownHolder === 0 && v.snap.migrations.length === 0 && p.underReplicated === 0 && repaired;
    }, 60_000, 0);
    assert.equal(v.rows.find((r) => r.id === 'node-2')?.state, 'down', 'a removed crashed node stays listed as down');
    assert.equal(v.cards['stat-replication'], 'OK');
    const leaves = v.snap.events.filter((e) => e.at >= crashAt && e.kind === 'leave' && e.message.startsWith('node-2 '));
    assert.equal(leaves.length, 1, leaves.map((e) => e.message).join('\n'));
    assert.match(leaves[0]!.message, /^node-2 is gone/);
    assert.ok(v.snap.events.some((e) => e.at >= crashAt && e.kind === 'table' && /node-2 removed/.test(e.message)));
    const repair = [...(v.snap.__migrations?.migrations ?? [])].find((m) => m.change === 'crash');
    assert.ok(repair && repair.state === 'done', 'the repair is listed, done');
  });

  test('a graceful leave: labelled a leave (not a rebalance), the node then left, once in the feed', async () => {
    const leaveAt = Date.now();
    const leaver = node('node-4');
    const stopping = leaver.stop('SIGTERM');
    let v = await view(page);
    let during: View | undefined;
    await waitFor('the leave seen on the page', async () => {
      v = await view(page, v.polls);
      checkView(v, 'leave');
      const m = v.snap.migrations.find((x) => x.change === 'leave');
      if (m !== undefined && v.rows.find((r) => r.id === 'node-4')?.state === 'leaving') during = v;
      return during !== undefined || !v.snap.nodes.some((n) => n.id === 'node-4');
    }, 30_000, 0);
    if (during !== undefined) {
      await page.screenshot({ path: resolve(RESULTS, 'dashboard-leave.png'), fullPage: true });
      const m = during.snap.migrations.find((x) => x.change === 'leave')!;
      assert.equal(m.label, 'leave of node-4');
      assert.match(during.migs.find((r) => r.id === m.id)!.text, /leave of node-4/);
      assert.match(during.cards['stat-migrations-note']!, /leave of node-4/);
    }
    await stopping;
    await waitFor('node-4 gone', async () => {
      v = await view(page, v.polls);
      checkView(v, 'after leave');
      return !v.snap.nodes.some((n) => n.id === 'node-4') && v.snap.migrations.length === 0;
    }, 30_000, 0);
    if (during === undefined) await page.screenshot({ path: resolve(RESULTS, 'dashboard-leave.png'), fullPage: true });
    assert.ok(during !== undefined, 'the leave was seen while it ran');
    assert.equal(v.rows.find((r) => r.id === 'node-4')?.state, 'left');
    const events = v.snap.events.filter((e) => e.at >= leaveAt);
    assert.deepEqual(events.filter((e) => e.kind === 'leave' && e.message.startsWith('node-4 ')).map((e) => e.message), ['node-4 left (graceful leave)']);
    assert.ok(!events.some((e) => e.kind === 'rebalance'), 'a leave is not a rebalance');
    assert.ok(events.some((e) => e.kind === 'table' && e.message.endsWith('node-4 left')), events.map((e) => `${e.kind}: ${e.message}`).join('\n'));
    const leave = (v.snap.__migrations?.migrations ?? []).find((m) => m.change === 'leave')!;
    const row = v.migs.find((r) => r.id === leave.id)!;
    assert.ok(row.total > 0 && row.done === row.total, `the finished leave shows ${row.done} / ${row.total} entries`);
    assert.deepEqual(pageErrors, []);
  });
});
