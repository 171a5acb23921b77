/**
 * The dashboard (issue 7, item 1) in a real headless Chromium against three real node processes:
 * the page at `/` lists the nodes with their health, draws the partition map, and follows the
 * cluster when a node is killed with SIGKILL. A screenshot is saved to test-results/dashboard.png.
 *
 * The page renders what GET /cluster says, so every check on the page is made against that JSON,
 * fetched by the test from the same node.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { launchBrowser, type TestBrowser } from '../helpers/browser.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { waitFor } from '../helpers/wait.ts';

// The callbacks below run inside the page; the project's tsconfig has no DOM lib, so they see
// the page's globals untyped.
declare const document: any;

const RESULTS = resolve(import.meta.dirname, '../../test-results');
/** The page polls every second; give it a few polls (on a busy 2-core machine) to catch up. */
const PAGE_WAIT_MS = 10_000;
/** How long after the kill node 1's /cluster may take to stop calling node-3 healthy. */
const DETECT_WAIT_MS = 10_000;

interface ClusterNodeJson {
  id: string;
  status: string;
  health?: string;
  partitionsOwned?: number;
  storedBytes?: number;
}
interface ClusterJson {
  ringVersion: number;
  partitionCount: number;
  nodes: ClusterNodeJson[];
  partitions: { owners: Array<string | null> };
}

async function clusterOf(url: string): Promise<ClusterJson> {
  const res = await fetch(`${url}/cluster`, { signal: AbortSignal.timeout(3000) });
  assert.equal(res.status, 200);
  return (await res.json()) as ClusterJson;
}

/** What the node rows say: id -> { status, health }. */
async function rowsOf(page: Page): Promise<Map<string, { status: string; health: string; text: string }>> {
  const rows = await page.locator('[data-testid="node-row"]').evaluateAll((els) =>
    els.map((e: any) => ({ id: String(e.dataset.nodeId ?? ''), status: String(e.dataset.status ?? ''), health: String(e.dataset.health ?? ''), text: String(e.innerText) })),
  );
  return new Map(rows.map((r) => [r.id, { status: r.status, health: r.health, text: r.text }]));
}

describe('dashboard in a headless browser', () => {
  let cluster: TestCluster;
  let browser: TestBrowser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    mkdirSync(RESULTS, { recursive: true });
    cluster = await startCluster({
      nodes: 3,
      // Fast failure detection once a detector exists (issue 4); harmless before.
      config: { fault_tolerance: { heartbeat_interval: '250ms', request_timeout: '1s' } },
    });
    // nodes exchange load reports within a second or two: open the page on that settled state,
    // so the page and the /cluster read the test compares it with describe the same thing
    await waitFor('every node reporting to node 1', async () => (await clusterOf(cluster.nodes[0]!.url)).nodes.every((n) => typeof n.storedBytes === 'number'), 15_000, 100);
    browser = await launchBrowser();
    page = await browser.browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      // A failed poll of a dead node is expected; anything else the page logs as an error is not.
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text());
    });
    const res = await page.goto(`${cluster.nodes[0]!.url}/`, { waitUntil: 'load', timeout: 30_000 });
    assert.equal(res?.status(), 200);
  });

  after(async () => {
    if (page) await page.screenshot({ path: resolve(RESULTS, 'dashboard-final.png'), fullPage: true }).catch(() => {});
    await browser?.close();
    await cluster?.stop();
  });

  test('shows the three nodes healthy and the partition map coloured by owner', async () => {
    // The rows appear after the first poll.
    await page.waitForFunction(
      () => {
        const rows: any[] = [...document.querySelectorAll('[data-testid="node-row"]')];
        return rows.length === 3 && rows.every((r) => r.dataset.health === 'healthy');
      },
      undefined,
      { timeout: PAGE_WAIT_MS },
    );
    const info = await clusterOf(cluster.nodes[0]!.url);
    const rows = await rowsOf(page);
    assert.deepEqual([...rows.keys()].sort(), ['node-1', 'node-2', 'node-3']);
    for (const n of info.nodes) {
      const row = rows.get(n.id);
      assert.ok(row, `row for ${n.id}`);
      assert.equal(row.status, n.status);
      assert.equal(row.health, n.health ?? 'unknown');
      // "owned / replica" partitions, formatted as the page does (1,365)
      const owned = (n.partitionsOwned ?? 0).toLocaleString('en-US');
      assert.ok(row.text.includes(`${owned} / `), `${n.id} shows ${owned} owned partitions:\n${row.text}`);
    }
    assert.equal(await page.getByTestId('ring-version').textContent(), `v${info.ringVersion}`);

    // The partition map: every partition drawn, one legend entry per owner with its share.
    const pmap = page.getByTestId('partition-map');
    await assert.doesNotReject(pmap.locator('canvas').waitFor({ state: 'visible', timeout: PAGE_WAIT_MS }));
    assert.equal(await pmap.getAttribute('data-partitions'), String(info.partitionCount));
    const legend = await page.locator('#pmap-legend li').evaluateAll((els) =>
      els.map((e: any) => ({ owner: String(e.dataset.owner ?? ''), text: String(e.innerText) })),
    );
    const counts = new Map<string, number>();
    for (const o of info.partitions.owners) counts.set(String(o), (counts.get(String(o)) ?? 0) + 1);
    assert.deepEqual(legend.map((l) => l.owner).sort(), [...counts.keys()].sort());
    for (const l of legend) assert.match(l.text, new RegExp(`\\b${(counts.get(l.owner) ?? 0).toLocaleString('en-US')}\\b`));

    // The canvas really has the owners' colours on it: sample the pixels and count distinct
    // opaque colours (three owners, nothing unassigned).
    const colours = await page.evaluate(() => {
      const c = document.querySelector('#pmap-canvas');
      const data: Uint8ClampedArray = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const seen = new Set<string>();
      for (let i = 0; i < data.length; i += 4 * 7) if (data[i + 3] === 255) seen.add(`${data[i]},${data[i + 1]},${data[i + 2]}`);
      return [...seen];
    });
    assert.equal(colours.length, 3, `three owner colours on the map, saw ${colours.join(' ')}`);

    // The stored-bytes card says whose numbers it sums (nodes report their own storage).
    const reporting = info.nodes.filter((n) => typeof n.storedBytes === 'number').length;
    assert.match(
      await page.locator('#stat-stored-note').innerText(),
      reporting === info.nodes.length ? / entries \(all copies\)$/ : new RegExp(` entries · ${reporting} of ${info.nodes.length} nodes reporting$`),
    );

    // The feed has at least the page's own "watching" entry; panels without data say so.
    assert.ok((await page.getByTestId('event-feed').locator('li').count()) >= 1);
    assert.match((await page.getByTestId('migrations').innerText()).trim(), /No migrations running/);
    assert.equal(await page.locator('#conn').getAttribute('data-state'), 'live');

    await page.screenshot({ path: resolve(RESULTS, 'dashboard.png'), fullPage: true });
    assert.deepEqual(pageErrors, []);
  });

  test('follows a node killed with SIGKILL', async (t) => {
    const node3 = cluster.nodes[2]!;
    await node3.stop('SIGKILL');
    assert.ok(node3.exited());

    // Static clusters keep the member; it is the failure detector (issue 4) that changes node-3's
    // health in /cluster. Wait for it to, or for node-3 to leave the member list.
    const seed = cluster.nodes[0]!.url;
    let info = await clusterOf(seed);
    const node3Health = (i: ClusterJson): string | undefined => i.nodes.find((n) => n.id === 'node-3')?.health ?? (i.nodes.some((n) => n.id === 'node-3') ? undefined : 'gone');
    const end = Date.now() + DETECT_WAIT_MS;
    while ((node3Health(info) ?? 'healthy') === 'healthy' && Date.now() < end) {
      await sleep(250);
      info = await clusterOf(seed);
    }

    // Whatever /cluster says, the page must show the same: it never lies about health, and keeps
    // polling while a member is dead.
    await sleep(2500); // two polls
    info = await clusterOf(seed);
    await page.waitForFunction(
      (expected) => {
        const rows: any[] = [...document.querySelectorAll('[data-testid="node-row"]')];
        return expected.every(([id, health]) => rows.some((r) => r.dataset.nodeId === id && r.dataset.health === health));
      },
      info.nodes.map((n) => [n.id, n.health ?? 'unknown'] as [string, string]),
      { timeout: PAGE_WAIT_MS },
    );
    assert.equal(await page.locator('#conn').getAttribute('data-state'), 'live', 'node 1 still serves the page');
    await page.screenshot({ path: resolve(RESULTS, 'dashboard-after-kill.png'), fullPage: true });

    const reported = node3Health(info) ?? 'healthy';
    if (reported === 'healthy' && !info.nodes.some((n) => (n.health ?? 'healthy') !== 'healthy')) {
      // Until the failure detector lands nothing in /cluster changes after a kill, so there is
      // nothing the page could show. This is the only check that is skipped.
      t.skip(`waits for the failure detector (issue 4): node-1's /cluster still reports node-3 healthy ${DETECT_WAIT_MS / 1000} s after kill -9`);
      return;
    }
    assert.notEqual(reported, 'healthy', `failure detector not reporting node-3 down (/cluster health: ${reported})`);
    // node-3 is marked down on the page: its row's health is down/suspected (or the row is kept,
    // marked gone, when the member left), and the feed says so.
    const row = (await rowsOf(page)).get('node-3');
    assert.ok(row, 'node-3 stays listed');
    assert.ok(['down', 'suspected'].includes(row.health), `node-3 row health ${row.health}`);
    const feed = await page.getByTestId('event-feed').innerText();
    assert.match(feed, /node-3 (is down|is suspected|left)/);
    const healthy = [...(await rowsOf(page))].filter(([, r]) => r.health === 'healthy').map(([id]) => id);
    assert.deepEqual(healthy.sort(), ['node-1', 'node-2']);
  });
});
