// jincache live dashboard. Plain browser JavaScript module: no build step, no dependencies.
//
// It polls GET /cluster every second (and GET /cluster/migrations when the node serves it) and
// renders what it gets. Every field is optional: features land over time, and a node that does
// not report something yet simply shows a dash.
//
// The /cluster JSON this page codes against (src/node/node.ts clusterInfo):
//
// {
//   "self": "node-1",                 // the node that answered
//   "ringVersion": 3,                 // partition table version
//   "leader": "node-1",               // elected leader (etcd mode), if any
//   "partitionCount": 4096,
//   "replicationFactor": 2,
//   "nodes": [ {
//     "id": "node-1", "zone": "eu-1",           // zone: null when the node has none
//     "address": "http://127.0.0.1:8001",      // peer listener
//     "apiAddress": "http://127.0.0.1:9999",   // client API listener, when separate
//     "status": "active",                       // joining | active | leaving
//     "health": "healthy",                      // healthy | slow | suspected | down (as the answering node sees it)
//     "weight": 1, "loadScore": 0.12, "qps": 123.4,
//     "memoryBytes": 123456, "storedBytes": 1000, "entries": 10,
//     "partitionsOwned": 1366, "partitionsReplica": 1365 } ],
//   "departed": [ { "id": "node-4", "graceful": true, "at": 1700000000000 } ],   // members that left
//   "partitions": { "owners": ["node-1", ...],   // one owner id per partition, in order
//                   "underReplicated": 0,         // partitions short of copies (a repair is copying them)
//                   "withDownHolder": 0,          // partitions with a copy on a down or suspected node
//                   "unavailable": 0,             // partitions with every copy there
//                   "moving": [12, 13] },         // partitions an open migration still copies
//   "hotKeys": [ { "group": "scores", "key": "k", "count": 123, "node": "node-2" } ],
//   "migrations": [ MigrationView ],              // the open ones (running or cancelling)
//   "events": [ { "at": 1700000000000, "kind": "join", "message": "node-4 joined" } ]
// }
//
// A MigrationView (src/cluster/migration/view.ts), also what GET /cluster/migrations lists (every
// record, newest first): { id, kind, change, label, state, fromVersion, toVersion,
// partitions: { total, done, failed, copying }, entries: { done, total }, bytes: { done, total },
// rate (entries/s), etaSeconds }.
//
// The feed shows the answering node's events as it sent them (joins and leaves come from its
// membership, health changes from its failure detector, tables and migrations from etcd): the
// page adds none of its own, so nothing appears twice.
//
// Stable hooks for tests: data-testid = node-row (with data-node-id, data-status, data-health,
// data-state, data-zone), partition-map (data-partitions, data-moving), event-feed, migrations,
// hot-keys, ring-version, replication (data-with-down-holder, data-under-replicated).

export const POLL_MS = 1000;
const FETCH_TIMEOUT_MS = 2500;
const MAX_EVENTS = 200;
/** How long a member that left stays in the table (marked left, or down when it vanished). */
const GONE_KEEP_MS = 10 * 60 * 1000;

// ------------------------------------------------------------------------------------------
// Pure helpers (exported so they can be unit tested outside a browser).

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function formatBytes(n) {
  const v = num(n);
  if (v === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let x = v;
  let i = 0;
  while (Math.abs(x) >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i === 0 ? x.toFixed(0) : x.toFixed(x < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatNumber(n, digits = 0) {
  const v = num(n);
  if (v === undefined) return '–';
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function formatDuration(seconds) {
  const s = num(seconds);
  if (s === undefined || s < 0) return '–';
  if (s < 1) return '<1s';
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m`;
}

export function formatTime(ms) {
  const d = new Date(ms);
  const p = (x) => String(x).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Migrations from /cluster (the open ones), overridden by id with the ones from /cluster/migrations (all). */
export function mergeMigrations(fromCluster, fromEndpoint) {
  const list = (x) => (Array.isArray(x) ? x : x && Array.isArray(x.migrations) ? x.migrations : []);
  const byId = new Map();
  for (const m of [...list(fromCluster), ...list(fromEndpoint)]) {
    if (!m || typeof m !== 'object' || typeof m.id !== 'string') continue;
    byId.set(m.id, { ...byId.get(m.id), ...m });
  }
  return [...byId.values()];
}

/** Still copying or being cancelled: what the server counts as open (record.ts isOpen). */
export const isRunning = (m) => m.state === 'running' || m.state === 'cancelling';

/** A migration's progress as the page shows it: entries done/total, percent, rate, ETA. */
export function migrationProgress(m) {
  const done = num(m.entries?.done) ?? 0;
  const total = num(m.entries?.total) ?? 0;
  const partsDone = num(m.partitions?.done) ?? 0;
  const partsTotal = num(m.partitions?.total) ?? 0;
  // entries when the sources reported some, else partitions (an empty partition has no entries)
  const pct = total > 0 ? Math.min(100, (100 * done) / total) : partsTotal > 0 ? (100 * partsDone) / partsTotal : m.state === 'done' ? 100 : 0;
  return { done, total, pct, partsDone, partsTotal, bytesDone: num(m.bytes?.done), bytesTotal: num(m.bytes?.total), rate: num(m.rate), eta: num(m.etaSeconds) };
}

/** The replication card: value, note and tone from /cluster `partitions` and the factor. */
export function replicationSummary(s) {
  const p = s.partitions ?? {};
  const rf = num(s.replicationFactor);
  const under = num(p.underReplicated);
  const down = num(p.withDownHolder);
  const lost = num(p.unavailable);
  if (under === undefined && down === undefined) return { value: '–', note: rf ? `factor ${rf}` : 'not reported', tone: '' };
  if (lost) return { value: formatNumber(lost), note: `${formatNumber(lost)} partitions have no copy on a live node`, tone: 'bad' };
  if (down) return { value: formatNumber(down), note: `${formatNumber(down)} partitions have a copy on a down node${under ? ` · ${formatNumber(under)} short of copies` : ''}`, tone: 'warn' };
  if (under) return { value: formatNumber(under), note: `${formatNumber(under)} partitions short of copies (repairing)`, tone: 'warn' };
  return { value: 'OK', note: `every partition has ${rf ?? 'all'} copies on live nodes`, tone: 'ok' };
}

/**
 * One word for a node's row: a node that does not answer is down (or suspected) whatever its
 * registration says; otherwise joining / leaving, or its health (healthy, slow). A member that
 * left is "left" (it drained first) or "down" (it vanished: a crash).
 */
export function nodeState(row) {
  if (row.departed) return row.departed.graceful ? 'left' : 'down';
  const h = row.node.health ?? 'unknown';
  if (h === 'down' || h === 'suspected') return h;
  if (row.node.status === 'joining' || row.node.status === 'leaving') return row.node.status;
  return h;
}

/** Stable colour for each owner id (sorted, so every viewer of the same cluster sees the same). */
export const PALETTE = [
  '#2563eb', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4',
  '#ec4899', '#84cc16', '#f97316', '#6366f1', '#14b8a6', '#a855f7',
];
export function ownerColours(ids) {
  const sorted = [...new Set(ids.filter((x) => typeof x === 'string'))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const map = new Map();
  sorted.forEach((id, i) => {
    // Past the palette, rotate hue so colours stay distinct-ish.
    map.set(id, i < PALETTE.length ? PALETTE[i] : `hsl(${(i * 137.5) % 360} 65% 50%)`);
  });
  return map;
}

// ------------------------------------------------------------------------------------------
// DOM helpers.

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'style') el.style.cssText = v; // CSSOM, which the page's CSP allows (a style attribute it does not)
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (id) => document.getElementById(id);
function setText(id, text) {
  const el = $(id);
  if (el && el.textContent !== text) el.textContent = text;
}

// ------------------------------------------------------------------------------------------
// State.

const state = {
  snapshot: null,
  /** id -> last node row seen, so a member that left can still be shown with its id and colour. */
  known: new Map(),
  events: [],
  eventKeys: new Set(),
  pmapKey: '',
  owners: [],
  /** partitions an open migration still copies */
  moving: new Set(),
  colours: new Map(),
  lastOk: 0,
};

function addEvents(list) {
  let added = false;
  for (const e of list) {
    if (!e || typeof e !== 'object') continue;
    const at = num(e.at) ?? Date.now();
    const key = `${at}|${e.kind}|${e.message}`;
    if (state.eventKeys.has(key)) continue;
    state.eventKeys.add(key);
    state.events.push({ at, kind: String(e.kind ?? 'info'), message: String(e.message ?? '') });
    added = true;
  }
  if (!added) return;
  state.events.sort((a, b) => b.at - a.at);
  if (state.events.length > MAX_EVENTS) {
    for (const e of state.events.splice(MAX_EVENTS)) state.eventKeys.delete(`${e.at}|${e.kind}|${e.message}`);
  }
}

// ------------------------------------------------------------------------------------------
// Rendering.

function renderHeader(s) {
  setText('ring-version', num(s.ringVersion) !== undefined ? `v${s.ringVersion}` : '–');
  setText('leader', s.leader ? String(s.leader) : '–');
  const pc = num(s.partitionCount) ?? (Array.isArray(s.partitions?.owners) ? s.partitions.owners.length : undefined);
  setText('partition-count', pc !== undefined ? formatNumber(pc) : '–');
  setText('replication-factor', num(s.replicationFactor) !== undefined ? `×${s.replicationFactor}` : '–');
  setText('self', s.self ? String(s.self) : '–');
}

function renderCards(s, rows) {
  const live = rows.filter((r) => !r.departed);
  const healthy = live.filter((r) => (r.node.health ?? 'healthy') === 'healthy').length;
  setText('stat-nodes', live.length ? `${healthy} / ${live.length}` : '–');
  const unhealthy = live.length - healthy;
  setText('stat-nodes-note', live.length ? (unhealthy ? `${unhealthy} not healthy` : 'all healthy') : '');
  $('stat-nodes').dataset.tone = unhealthy ? 'warn' : 'ok';

  const qps = live.map((r) => num(r.node.qps)).filter((x) => x !== undefined);
  setText('stat-qps', qps.length ? formatNumber(qps.reduce((a, b) => a + b, 0), 1) : '–');
  setText('stat-qps-note', qps.length ? 'across the cluster' : 'not reported');

  const stored = live.map((r) => num(r.node.storedBytes)).filter((x) => x !== undefined);
  const entries = live.map((r) => num(r.node.entries)).filter((x) => x !== undefined);
  setText('stat-stored', stored.length ? formatBytes(stored.reduce((a, b) => a + b, 0)) : '–');
  // Nodes report their own storage only (a peer's numbers come from its own /cluster), so the
  // sum covers the reporting nodes: say so instead of passing a partial sum off as the cluster's.
  const partial = stored.length < live.length ? ` · ${stored.length} of ${live.length} nodes reporting` : ' (all copies)';
  setText('stat-stored-note', entries.length ? `${formatNumber(entries.reduce((a, b) => a + b, 0))} entries${partial}` : '');

  const rep = replicationSummary(s);
  setText('stat-replication', rep.value);
  setText('stat-replication-note', rep.note);
  $('stat-replication').dataset.tone = rep.tone;
  const card = $('replication-card');
  card.dataset.underReplicated = String(num(s.partitions?.underReplicated) ?? '');
  card.dataset.withDownHolder = String(num(s.partitions?.withDownHolder) ?? '');
}

function healthOf(row) {
  return row.departed ? 'down' : (row.node.health ?? 'unknown');
}

function loadBar(score) {
  const v = num(score);
  if (v === undefined) return h('span', { class: 'muted' }, '–');
  const pct = Math.max(0, Math.min(100, v * 100));
  const tone = v >= 0.8 ? 'bad' : v >= 0.5 ? 'warn' : 'ok';
  return h('div', { class: 'load' }, h('div', { class: 'bar', 'data-tone': tone }, h('span', { style: `width:${pct.toFixed(1)}%` })), h('span', { class: 'load-num' }, v.toFixed(2)));
}

function renderNodes(s, rows) {
  const body = $('nodes-body');
  const zoned = rows.some((r) => typeof r.node.zone === 'string');
  document.querySelectorAll('.col-zone').forEach((el) => (el.hidden = !zoned));
  if (!rows.length) {
    body.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: 11 }, 'No nodes reported.')));
    return;
  }
  const trs = rows.map((row) => {
    const n = row.node;
    const health = healthOf(row);
    const status = row.departed ? (row.departed.graceful ? 'left' : 'gone') : (n.status ?? 'unknown');
    const shown = nodeState(row);
    const colour = state.colours.get(n.id);
    const tags = [];
    if (s.leader && n.id === s.leader) tags.push(h('span', { class: 'tag tag-leader', title: 'leader' }, 'leader'));
    if (s.self && n.id === s.self) tags.push(h('span', { class: 'tag', title: 'this page is served by this node' }, 'this node'));
    const addr = n.apiAddress && n.apiAddress !== n.address ? [n.address ?? '–', h('div', { class: 'sub' }, `api ${n.apiAddress}`)] : [n.address ?? '–'];
    const gone = !!row.departed;
    const title = gone ? (row.departed.graceful ? 'left the cluster after handing its partitions over' : 'vanished without leaving (a crash): removed, its partitions re-replicated') : `registered ${n.status ?? '?'}, ${n.health ?? '?'} as ${s.self ?? 'this node'} sees it`;
    return h(
      'tr',
      { 'data-testid': 'node-row', 'data-node-id': n.id, 'data-status': status, 'data-health': health, 'data-state': shown, 'data-zone': n.zone ?? '', class: gone ? 'gone' : '' },
      h('td', {}, h('div', { class: 'node-id' }, h('span', { class: 'swatch', style: `background:${colour ?? 'transparent'}` }), h('strong', {}, n.id), ...tags)),
      h('td', { class: 'mono opt' }, ...addr),
      h('td', { class: 'col-zone', hidden: !zoned }, n.zone ?? '–'),
      h('td', {}, h('span', { class: 'badge', 'data-health': shown, title }, shown)),
      h('td', { class: 'num opt' }, num(n.weight) !== undefined ? n.weight.toFixed(n.weight % 1 ? 2 : 1) : '–'),
      h('td', {}, gone ? '–' : loadBar(n.loadScore)),
      h('td', { class: 'num' }, gone ? '–' : formatNumber(n.qps, 1)),
      h('td', { class: 'num' }, gone ? '–' : formatBytes(n.memoryBytes)),
      h('td', { class: 'num' }, gone ? '–' : formatBytes(n.storedBytes)),
      h('td', { class: 'num opt' }, gone ? '–' : formatNumber(n.entries)),
      h('td', { class: 'num' }, gone ? '–' : `${formatNumber(n.partitionsOwned)} / ${formatNumber(n.partitionsReplica)}`),
    );
  });
  body.replaceChildren(...trs);
}

function pmapGeometry(count, width) {
  // Fill the card's width with square-ish cells between 5 and 28 px: a 4096-partition table
  // becomes a compact 128-column block, a small one gets big cells. Columns are a power of two
  // so partition numbers line up in rows (row r starts at partition r * cols).
  let cols = 1;
  while (cols < count && width / (cols * 2) >= 5 && (width / cols > 28 || (cols * 2) ** 2 <= count * 4)) cols *= 2;
  const cell = Math.min(28, width / cols);
  return { cols, rows: Math.ceil(count / cols), cell };
}

function drawPartitionMap(force) {
  const owners = state.owners;
  const canvas = $('pmap-canvas');
  const wrap = $('partition-map');
  const empty = $('pmap-empty');
  if (!owners.length) {
    canvas.hidden = true;
    empty.hidden = false;
    wrap.dataset.partitions = '0';
    return;
  }
  canvas.hidden = false;
  empty.hidden = true;
  const width = Math.max(120, wrap.clientWidth);
  const key = `${state.pmapKey}|${width}`;
  if (!force && canvas.dataset.key === key) return;
  canvas.dataset.key = key;
  const { cols, rows, cell } = pmapGeometry(owners.length, width);
  const dpr = window.devicePixelRatio || 1;
  const cssW = cols * cell;
  const cssH = rows * cell;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  // Draw in device pixels with rounded edges so cells stay crisp at fractional sizes.
  const step = cell * dpr;
  const gap = Math.max(1, Math.round(dpr * (cell >= 8 ? 1.5 : 1)));
  for (let i = 0; i < owners.length; i++) {
    const owner = owners[i];
    const c = i % cols;
    const r = Math.floor(i / cols);
    const x0 = Math.round(c * step);
    const y0 = Math.round(r * step);
    const w = Math.round((c + 1) * step) - x0 - gap;
    const hgt = Math.round((r + 1) * step) - y0 - gap;
    ctx.fillStyle = owner ? (state.colours.get(owner) ?? '#94a3b8') : '#e2e8f0';
    ctx.fillRect(x0, y0, w, hgt);
    if (state.moving.has(i)) {
      // a partition an open migration still copies: a dark frame with a white core
      ctx.fillStyle = '#0f172a';
      ctx.fillRect(x0, y0, w, hgt);
      const inset = Math.max(1, Math.round(Math.min(w, hgt) / 4));
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(x0 + inset, y0 + inset, Math.max(1, w - 2 * inset), Math.max(1, hgt - 2 * inset));
    }
  }
  canvas._geom = { cols, cell };
  wrap.dataset.partitions = String(owners.length);
  wrap.dataset.moving = String(state.moving.size);
}

function renderPartitions(s, rows) {
  const owners = Array.isArray(s.partitions?.owners) ? s.partitions.owners : [];
  state.owners = owners;
  const moving = Array.isArray(s.partitions?.moving) ? s.partitions.moving.filter((p) => Number.isInteger(p)) : [];
  state.moving = new Set(moving);
  const counts = new Map();
  for (const o of owners) counts.set(o, (counts.get(o) ?? 0) + 1);
  // Cheap change key: ring version plus owner counts (the table changes only with the version),
  // and the partitions still moving.
  state.pmapKey = `${s.ringVersion}|${owners.length}|${[...counts].map(([k, v]) => `${k}:${v}`).join(',')}|${[...state.colours].join(',')}|${moving.length}:${moving[0] ?? ''}:${moving[moving.length - 1] ?? ''}`;
  drawPartitionMap(false);
  const legend = $('pmap-legend');
  const ids = [...counts.keys()].sort((a, b) => String(a).localeCompare(String(b), 'en', { numeric: true }));
  legend.replaceChildren(
    ...ids.map((id) =>
      h(
        'li',
        { 'data-owner': id ?? '' },
        h('span', { class: 'swatch', style: `background:${(id && state.colours.get(id)) || '#e2e8f0'}` }),
        h('span', {}, id ?? 'unassigned'),
        h('span', { class: 'muted' }, `${formatNumber(counts.get(id))} · ${((100 * (counts.get(id) ?? 0)) / owners.length).toFixed(1)}%`),
      ),
    ),
  );
  if (moving.length) {
    legend.append(h('li', { 'data-owner': '', class: 'legend-moving' }, h('span', { class: 'swatch swatch-moving' }), h('span', {}, 'moving'), h('span', { class: 'muted' }, `${formatNumber(moving.length)} still copying`)));
  }
  const under = num(s.partitions?.underReplicated);
  setText('pmap-note', owners.length ? `${formatNumber(owners.length)} partitions${moving.length ? ` · ${formatNumber(moving.length)} moving` : ''}${under ? ` · ${under} under-replicated` : ''}` : '');
  void rows;
}

function renderHotKeys(s) {
  const list = $('hot-keys');
  const keys = (Array.isArray(s.hotKeys) ? s.hotKeys : []).filter((k) => k && typeof k === 'object');
  if (!keys.length) {
    list.replaceChildren(h('li', { class: 'placeholder' }, Array.isArray(s.hotKeys) ? 'Nothing hot right now.' : 'No hot keys reported.'));
    return;
  }
  const max = Math.max(...keys.map((k) => num(k.count) ?? 0), 1);
  list.replaceChildren(
    ...keys.slice(0, 20).map((k) =>
      h(
        'li',
        { 'data-group': k.group ?? '', 'data-key': k.key ?? '' },
        h('div', { class: 'hot-line' }, h('span', { class: 'tag' }, k.group ?? '?'), h('span', { class: 'mono key', title: String(k.key ?? '') }, String(k.key ?? '')), h('span', { class: 'num hot-count' }, formatNumber(k.count))),
        h('div', { class: 'bar thin' }, h('span', { style: `width:${(100 * (num(k.count) ?? 0)) / max}%` })),
      ),
    ),
  );
}

function renderMigrations(s) {
  const wrap = $('migrations');
  const migs = mergeMigrations(s.migrations, s.__migrations);
  const running = migs.filter(isRunning);
  setText('stat-migrations', Array.isArray(s.migrations) || migs.length ? String(running.length) : '–');
  setText('stat-migrations-note', running.length ? running.map((m) => m.label ?? m.kind ?? m.id).join(', ') : 'idle');
  $('stat-migrations').dataset.tone = running.length ? 'info' : '';
  const finished = migs.length - running.length;
  setText('mig-note', migs.length ? `${running.length} running${finished ? ` · ${finished} finished` : ''}` : '');
  if (!migs.length) {
    wrap.replaceChildren(h('p', { class: 'placeholder' }, 'No migrations running.'));
    return;
  }
  // running first, then the most recent finished ones
  const shown = [...running, ...migs.filter((m) => !isRunning(m)).slice(0, 8)];
  wrap.replaceChildren(
    ...shown.map((m) => {
      const p = migrationProgress(m);
      const open = isRunning(m);
      const bytes = p.bytesDone !== undefined ? `${formatBytes(p.bytesDone)}${p.bytesTotal !== undefined ? ` of ${formatBytes(p.bytesTotal)}` : ''}` : '';
      return h(
        'div',
        { class: 'mig', 'data-migration-id': m.id, 'data-state': m.state ?? '', 'data-entries-done': p.done, 'data-entries-total': p.total },
        h(
          'div',
          { class: 'mig-head' },
          h('strong', {}, m.label ?? m.kind ?? 'migration'),
          h('span', { class: 'muted mono' }, m.id),
          m.toVersion !== undefined ? h('span', { class: 'tag' }, `→ v${m.toVersion}`) : null,
          h('span', { class: 'status', 'data-status': m.state ?? 'unknown' }, (m.state ?? 'unknown').replace('_', ' ')),
          h('span', { class: 'mig-pct num' }, `${p.pct.toFixed(p.pct < 10 ? 1 : 0)}%`),
        ),
        h('div', { class: 'bar big', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': p.pct.toFixed(0) }, h('span', { style: `width:${p.pct}%` })),
        h(
          'div',
          { class: 'mig-meta muted' },
          h('span', { class: 'mig-entries' }, `${formatNumber(p.done)} / ${formatNumber(p.total)} entries`),
          h('span', {}, `${formatNumber(p.partsDone)} / ${formatNumber(p.partsTotal)} partitions`),
          bytes ? h('span', {}, bytes) : null,
          open ? h('span', { class: 'mig-rate' }, p.rate !== undefined ? `${formatNumber(p.rate)} entries/s` : 'rate –') : null,
          open ? h('span', {}, `ETA ${formatDuration(p.eta)}`) : null,
        ),
      );
    }),
  );
}

// Glyphs every common system font has (fullwidth forms and rarer shapes render as boxes on some).
const EVENT_ICONS = { join: '+', leave: '−', health: '!', table: '▦', rebalance: '⇄', imbalance: '⇄', leader: '★', migration: '➜', status: '•', config: '⚙', handoff: '↻', catchup: '↻', storage: '▤', info: 'i' };

function renderEvents() {
  const list = $('event-feed');
  if (!state.events.length) {
    list.replaceChildren(h('li', { class: 'placeholder' }, 'No events yet.'));
    setText('events-note', '');
    return;
  }
  setText('events-note', `${state.events.length} recent`);
  list.replaceChildren(
    ...state.events.slice(0, 60).map((e) =>
      h(
        'li',
        { 'data-kind': e.kind },
        h('span', { class: 'ev-icon', 'data-kind': e.kind, 'aria-hidden': 'true' }, EVENT_ICONS[e.kind] ?? '•'),
        h('span', { class: 'ev-time mono' }, formatTime(e.at)),
        h('span', { class: 'ev-kind' }, e.kind),
        h('span', { class: 'ev-msg' }, e.message),
      ),
    ),
  );
}

function rowsFor(s, now) {
  const nodes = (Array.isArray(s.nodes) ? s.nodes : []).filter((n) => n && typeof n.id === 'string');
  for (const n of nodes) state.known.set(n.id, n);
  const present = new Set(nodes.map((n) => n.id));
  const rows = nodes.map((n) => ({ node: n, departed: undefined }));
  // members that left, as the answering node knows them (graceful leave or vanished)
  for (const d of Array.isArray(s.departed) ? s.departed : []) {
    if (!d || typeof d.id !== 'string' || present.has(d.id) || now - (num(d.at) ?? now) > GONE_KEEP_MS) continue;
    present.add(d.id);
    rows.push({ node: state.known.get(d.id) ?? { id: d.id }, departed: { graceful: d.graceful === true } });
  }
  rows.sort((a, b) => a.node.id.localeCompare(b.node.id, 'en', { numeric: true }));
  return rows;
}

function render(s, now) {
  const rows = rowsFor(s, now);
  const ids = [...rows.map((r) => r.node.id), ...(Array.isArray(s.partitions?.owners) ? s.partitions.owners : [])];
  state.colours = ownerColours(ids);
  renderHeader(s);
  renderCards(s, rows);
  renderNodes(s, rows);
  renderPartitions(s, rows);
  renderHotKeys(s);
  renderMigrations(s);
  renderEvents();
  setText('nodes-updated', `updated ${formatTime(now)}`);
}

// ------------------------------------------------------------------------------------------
// Polling.

async function fetchJson(path) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await fetch(path, { signal: ctl.signal, headers: { accept: 'application/json' }, cache: 'no-store' });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return await res.json();
  } finally {
    clearTimeout(timer);
  }
}

let migrationsEndpoint = true;

async function poll() {
  const now = Date.now();
  try {
    const [cluster, migrations] = await Promise.all([
      fetchJson('/cluster'),
      migrationsEndpoint
        ? fetchJson('/cluster/migrations').catch((e) => {
            // A node without the endpoint answers 404: stop asking until the page reloads.
            if (/HTTP 404/.test(String(e))) migrationsEndpoint = false;
            return undefined;
          })
        : Promise.resolve(undefined),
    ]);
    const snap = cluster && typeof cluster === 'object' ? cluster : {};
    if (migrations !== undefined) snap.__migrations = migrations;
    if (Array.isArray(snap.events)) addEvents(snap.events);
    state.snapshot = snap;
    state.lastOk = now;
    render(snap, now);
    setConn('live', 'live');
    // for tests: the snapshot the page shows now, so what it shows can be checked against the
    // very /cluster answer it was drawn from
    window.jincacheRendered = snap;
    document.body.dataset.polls = String(Number(document.body.dataset.polls ?? 0) + 1);
  } catch (e) {
    const ago = state.lastOk ? ` · last update ${formatTime(state.lastOk)}` : '';
    setConn('down', `unreachable${ago}`);
    console.warn('jincache dashboard: poll failed', e);
  }
}

function setConn(stateName, text) {
  const el = $('conn');
  if (el.dataset.state !== stateName) el.dataset.state = stateName;
  setText('conn-text', text);
  document.body.dataset.conn = stateName;
}

function setupPartitionTooltip() {
  const canvas = $('pmap-canvas');
  const tip = $('pmap-tip');
  canvas.addEventListener('mousemove', (ev) => {
    const g = canvas._geom;
    if (!g) return;
    const r = canvas.getBoundingClientRect();
    const col = Math.floor((ev.clientX - r.left) / g.cell);
    const row = Math.floor((ev.clientY - r.top) / g.cell);
    const i = row * g.cols + col;
    if (col < 0 || col >= g.cols || i < 0 || i >= state.owners.length) {
      tip.hidden = true;
      return;
    }
    tip.textContent = `partition ${i} → ${state.owners[i] ?? 'unassigned'}${state.moving.has(i) ? ' (moving)' : ''}`;
    tip.style.left = `${ev.clientX - r.left + 12}px`;
    tip.style.top = `${ev.clientY - r.top + 12}px`;
    tip.hidden = false;
  });
  canvas.addEventListener('mouseleave', () => (tip.hidden = true));
}

export function start() {
  setupPartitionTooltip();
  let resizeTimer;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => drawPartitionMap(true), 100);
  });
  // setTimeout after each poll (not setInterval) so a slow node never gets overlapping polls.
  const loop = async () => {
    await poll();
    setTimeout(loop, POLL_MS);
  };
  loop();
}

if (typeof document !== 'undefined' && typeof window !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}
