// gridtwin dashboard: loads the run's metadata and series over HTTP, then follows frames over a
// WebSocket. Every string from the server reaches the DOM through textContent or setAttribute.

import {
  LineChart, drawBars, drawLegend, formatBytes, formatCompact, formatNumber, formatUTC,
  heatScale, svgEl, utilisationScale,
} from './charts.js';

const $ = (sel) => document.querySelector(sel);
const TOKEN = new URLSearchParams(location.search).get('token');
const SPEEDS = [1, 2, 5, 10, 25];
const HEAT_SITES = 20;      // link sites shown in the heat map
const HEAT_EVERY = 10;      // frames between recomputing which ones
const BUSIEST = 10;         // rows of the busiest-links table

const state = {
  meta: null,
  epochMs: 0,
  live: false,
  frozen: false,            // live mode: display paused locally
  ended: false,             // live mode: simulation finished
  nFrames: 0,
  latest: null,             // last frame received
  shown: null,              // last frame drawn
  renderQueued: false,
  ws: null,
  retry: 0,
  everConnected: false,
  seekHeld: false,
  traffic: null,            // MB/s summed over frames, per link site
  framesSeen: 0,
  maxMbps: 0,
  drillSite: null,
  drillOpener: null,
  drillCharts: [],
};

/* ---------- DOM and HTTP helpers ---------- */

/** Create an element; attribute values and children (strings become text nodes) are never parsed as HTML. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  node.append(...children.filter((c) => c != null).map((c) => (c instanceof Node ? c : String(c))));
  return node;
}

/** A <table> with a header row and body rows of cell values (text) or nodes. */
function table(headers, rows, attrs = {}) {
  return el('table', attrs,
    el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c))))));
}

/** Relative API URL, carrying the page's token if it has one. */
function apiUrl(path) {
  return `api/${path}${TOKEN ? `?token=${encodeURIComponent(TOKEN)}` : ''}`;
}

async function getJSON(path) {
  const res = await fetch(apiUrl(path), { headers: { Accept: 'application/json' } });
  let body = null;
  try { body = await res.json(); } catch { /* a non-JSON error body */ }
  if (!res.ok) {
    const detail = body?.detail;
    throw new Error(detail == null ? `HTTP ${res.status} for ${path}` :
      typeof detail === 'string' ? detail : JSON.stringify(detail));
  }
  return body;
}

function showError(message) {
  const box = $('#error');
  box.textContent = message ?? '';
  box.hidden = !message;
}

const frameTimeMs = (f) => {
  const ms = Date.parse(f.time);
  return Number.isNaN(ms) ? state.epochMs + f.t * 1000 : ms;
};

/* ---------- header and controls ---------- */

function initHeader(meta) {
  $('#run').textContent = meta.run ?? '';
  document.title = `gridtwin · ${meta.run ?? 'dashboard'}`;
  const badge = $('#mode');
  badge.textContent = state.live ? 'LIVE' : 'REPLAY';
  badge.className = `badge ${state.live ? 'live' : 'replay'}`;
  for (const node of document.querySelectorAll('.replay-only')) node.hidden = state.live;
  if (state.live) setPlaying(true);
  setFrameCount(meta.n_frames ?? 0);
}

function initControls() {
  const speed = $('#speed');
  speed.replaceChildren(...SPEEDS.map((s) => el('option', { value: s }, `${s} fps`)));
  speed.addEventListener('change', () => send({ action: 'speed', value: Number(speed.value) }));

  $('#play').addEventListener('click', () => (state.live ? setFrozen(false) : send({ action: 'play' })));
  $('#pause').addEventListener('click', () => (state.live ? setFrozen(true) : send({ action: 'pause' })));

  // Dragging sends seeks at most every 80 ms; releasing sends the final position.
  const seek = $('#seek');
  let timer = null;
  let lastSent = null;
  const sendSeek = () => {
    const seq = Number(seek.value);
    if (seq !== lastSent) send({ action: 'seek', seq });
    lastSent = seq;
  };
  seek.addEventListener('input', () => {
    setFrameLabel(Number(seek.value));
    if (!timer) timer = setTimeout(() => { timer = null; sendSeek(); }, 80);
  });
  seek.addEventListener('change', () => {
    clearTimeout(timer);
    timer = null;
    sendSeek();
    lastSent = null;
  });
  seek.addEventListener('pointerdown', () => { state.seekHeld = true; });
  for (const ev of ['pointerup', 'pointercancel']) window.addEventListener(ev, () => { state.seekHeld = false; });

  $('#drill-close').addEventListener('click', closeDrill);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('#drill').hidden) closeDrill();
  });
}

function setPlaying(playing) {
  $('#play').setAttribute('aria-pressed', String(playing));
  $('#pause').setAttribute('aria-pressed', String(!playing));
}

/** Live mode: freeze the display locally; resuming shows the latest frame. */
function setFrozen(frozen) {
  state.frozen = frozen;
  setPlaying(!frozen);
  if (!frozen) {
    charts.series?.scheduleDraw();
    charts.throughput?.scheduleDraw();
    scheduleRender();
  }
}

function setFrameCount(n) {
  state.nFrames = Math.max(0, n);
  $('#seek').max = String(Math.max(0, state.nFrames - 1));
  setFrameLabel(state.shown?.seq ?? null);
}

function setFrameLabel(seq) {
  $('#frame-label').textContent = `frame ${seq ?? '–'} / ${state.nFrames}`;
}

function onState(msg) {
  if (!state.live && typeof msg.playing === 'boolean') setPlaying(msg.playing);
  if (Number.isFinite(msg.speed)) {
    const speed = $('#speed');
    if (!SPEEDS.includes(msg.speed) && !speed.querySelector(`option[value="${msg.speed}"]`)) {
      speed.append(el('option', { value: msg.speed }, `${msg.speed} fps`));
    }
    speed.value = String(msg.speed);
  }
  if (Number.isFinite(msg.n_frames)) setFrameCount(Math.max(msg.n_frames, state.live ? state.nFrames : 0));
  if (Number.isFinite(msg.seq) && !state.seekHeld) {
    $('#seek').value = String(msg.seq);
    setFrameLabel(msg.seq);
  }
}

async function onEnd() {
  state.ended = true;
  $('#mode').textContent = 'LIVE · ended';
  $('#mode').classList.add('ended');
  try {
    // Final KPIs and anomalies may only exist once the run is over.
    const meta = await getJSON('meta');
    state.meta = { ...state.meta, kpis: meta.kpis, anomalies: meta.anomalies };
    renderKpis(meta.kpis);
    renderAnomalies(meta.anomalies);
  } catch (e) {
    showError(`Could not reload the run summary: ${e.message}`);
  }
}

/* ---------- KPI cards ---------- */

const LIVE_KPIS = [
  ['now_running', 'running now', 'running'],
  ['now_queued', 'queued now', 'queued'],
  ['now_transferring', 'transferring now', 'transferring'],
  ['now_jobs_per_h', 'jobs / h now', 'jobs_per_h'],
  ['now_transfer_mbps', 'transfers MB/s now', 'transfer_mbps'],
];
const liveCards = new Map();

function kpiCard(key, label, value, live = false) {
  return el('div', { class: live ? 'kpi live' : 'kpi', 'data-kpi': key },
    el('span', { class: 'kpi-label' }, label),
    el('span', { class: 'kpi-value' }, value));
}

function renderKpis(kpis) {
  const cards = Object.entries(kpis ?? {}).map(([k, v]) => kpiCard(k, k.replaceAll('_', ' '), formatNumber(v)));
  liveCards.clear();
  for (const [key, label] of LIVE_KPIS) {
    const card = kpiCard(key, label, '–', true);
    liveCards.set(key, card);
    cards.push(card);
  }
  $('#kpis').replaceChildren(...cards);
  if (state.shown) updateLiveKpis(state.shown.totals);
}

function updateLiveKpis(totals = {}) {
  for (const [key, , field] of LIVE_KPIS) {
    const card = liveCards.get(key);
    const v = totals[field];
    if (!card || v === undefined) continue;
    card.setAttribute('data-value', String(v));
    card.lastChild.textContent = formatNumber(v);
  }
}

/* ---------- site grid ---------- */

let tiles = [];   // aligned with meta.sites: {node, nums, last}

function buildSiteGrid(sites) {
  const byTier = new Map();
  sites.forEach((s, i) => {
    const tier = Number.isFinite(s.tier) ? s.tier : '?';
    if (!byTier.has(tier)) byTier.set(tier, new Map());
    const clouds = byTier.get(tier);
    const cloud = s.cloud || '—';
    if (!clouds.has(cloud)) clouds.set(cloud, []);
    clouds.get(cloud).push(i);
  });

  tiles = new Array(sites.length);
  const sections = [];
  const tiers = [...byTier.keys()].sort((a, b) => (a === '?') - (b === '?') || a - b);
  for (const tier of tiers) {
    const clouds = byTier.get(tier);
    const count = [...clouds.values()].reduce((n, list) => n + list.length, 0);
    const section = el('section', { class: 'tier', 'data-tier': tier },
      el('h3', {}, `T${tier} `, el('span', { class: 'muted' }, `${count} site${count === 1 ? '' : 's'}`)));
    const cloudBox = el('div', { class: 'clouds' });
    for (const cloud of [...clouds.keys()].sort()) {
      const row = el('div', { class: 'tiles' });
      const idx = clouds.get(cloud).sort((a, b) => String(sites[a].site).localeCompare(String(sites[b].site)));
      for (const i of idx) {
        const s = sites[i];
        const nums = el('span', { class: 'nums' }, '–');
        const node = el('button', { type: 'button', class: 'site', 'data-site': s.site },
          el('span', { class: 'name' }, s.site), nums);
        node.addEventListener('click', () => openDrill(s.site, node));
        tiles[i] = { node, nums, last: '' };
        row.append(node);
      }
      cloudBox.append(el('div', { class: 'cloud', 'data-cloud': cloud }, el('span', { class: 'cloud-name' }, cloud), row));
    }
    section.append(cloudBox);
    sections.push(section);
  }
  $('#site-grid').replaceChildren(...sections);

  const noCores = el('span', { class: 'legend-extra' }, el('span', { class: 'swatch none' }), 'no cores');
  drawLegend($('#site-legend'), utilisationScale, { title: 'cores used', lo: '0%', hi: '100%', extra: noCores });
}

/** Update each tile's attributes, colour, text and tooltip in place, touching only what changed. */
function updateTiles(sites = {}) {
  const sitesMeta = state.meta.sites;
  const at = (key, i) => sites[key]?.[i];
  for (let i = 0; i < tiles.length; i += 1) {
    const tile = tiles[i];
    const running = at('running', i) ?? 0;
    const queued = at('queued', i) ?? 0;
    const used = at('used_cores', i) ?? 0;
    const total = at('total_cores', i) ?? sitesMeta[i].total_cores ?? 0;
    const sUsed = at('storage_used', i);
    const sTotal = at('storage_total', i);
    const key = `${running}|${queued}|${used}|${total}|${sUsed}|${sTotal}`;
    if (tile.last === key) continue;
    tile.last = key;

    const node = tile.node;
    node.setAttribute('data-running', running);
    node.setAttribute('data-queued', queued);
    node.setAttribute('data-used', used);
    node.setAttribute('data-total', total);
    node.setAttribute('data-free', total - used);
    const text = `R ${formatCompact(running)} · Q ${formatCompact(queued)}`;
    if (tile.nums.textContent !== text) tile.nums.textContent = text;
    if (total > 0) {
      const u = used / total;
      node.style.backgroundColor = utilisationScale(u);
      node.style.color = utilisationScale.ink(u);
      node.classList.remove('no-cores');
    } else {
      node.style.backgroundColor = '';
      node.style.color = '';
      node.classList.add('no-cores');
    }
    const m = sitesMeta[i];
    const lines = [
      `${m.site} (${m.atlas_site ?? '?'}) · cloud ${m.cloud ?? '?'} · T${m.tier ?? '?'}`,
      `running ${formatNumber(running)}, queued ${formatNumber(queued)}`,
      `cores used ${formatNumber(used)} / ${formatNumber(total)}` +
        (total > 0 ? ` (${formatNumber(Math.round((100 * used) / total))}%)` : ''),
      `cores free ${formatNumber(total - used)}`,
    ];
    if (sTotal != null) lines.push(`storage ${formatBytes(sUsed)} / ${formatBytes(sTotal)}`);
    node.title = lines.join('\n');
  }
}

/* ---------- time series ---------- */

const charts = { series: null, throughput: null };

function initCharts(epochMs) {
  charts.series = new LineChart($('#series'), {
    epochMs,
    series: [
      { key: 'running', label: 'running', color: '#2b6cb0' },
      { key: 'queued', label: 'queued', color: '#dd8a1a' },
      { key: 'transferring', label: 'transferring', color: '#2f9e6b' },
    ],
  });
  charts.throughput = new LineChart($('#throughput'), {
    epochMs,
    series: [
      { key: 'jobs_per_h', label: 'finished jobs/h (left)', color: '#6b46c1' },
      { key: 'transfer_mbps', label: 'transfers MB/s (right)', color: '#c53030', axis: 'right' },
    ],
  });
}

async function loadSeries() {
  try {
    const data = await getJSON('series');
    charts.series.setData(data);
    charts.throughput.setData(data);
  } catch (e) {
    showError(`Could not load the time series: ${e.message}`);
  }
}

/** Live mode: add a frame's totals to both charts unless the series already has that time. */
function appendTotals(f) {
  if (!(f.t > charts.series.lastT())) return;
  const totals = f.totals ?? {};
  charts.series.append(f.t, totals, !state.frozen);
  charts.throughput.append(f.t, totals, !state.frozen);
}

/* ---------- transfer heat map and busiest links ---------- */

let heat = { order: [], pos: null, cells: [], legend: null };

const linkName = (i) => state.meta.link_sites[i] ?? `#${i}`;

/** Add a frame's link throughput to the per-site totals; every HEAT_EVERY frames pick the top sites. */
function accumulateTraffic(links = []) {
  const traffic = state.traffic;
  for (const [src, dst, , , mbps] of links) {
    if (!(mbps > 0)) continue;
    if (src < traffic.length) traffic[src] += mbps;
    if (dst < traffic.length) traffic[dst] += mbps;
    if (mbps > state.maxMbps) state.maxMbps = mbps;
  }
  if (state.framesSeen % HEAT_EVERY === 0) {
    const order = [...traffic.keys()].sort((a, b) => traffic[b] - traffic[a]).slice(0, HEAT_SITES);
    if (order.join() !== heat.order.join()) buildHeatmap(order);
  }
  state.framesSeen += 1;
}

function buildHeatmap(order) {
  const pos = new Int32Array(state.meta.link_sites.length).fill(-1);
  order.forEach((site, p) => { pos[site] = p; });
  const cells = [];
  const head = el('tr', {}, el('th', { class: 'corner', scope: 'col' }, 'src \\ dst'),
    ...order.map((d) => el('th', { class: 'col', scope: 'col', title: linkName(d) }, el('span', {}, linkName(d)))));
  const rows = order.map((s) => {
    const tr = el('tr', {}, el('th', { scope: 'row', title: linkName(s) }, linkName(s)));
    for (const d of order) {
      const td = el('td', { class: 'cell zero', 'data-src': linkName(s), 'data-dst': linkName(d), 'data-mbps': 0 });
      td.title = `${linkName(s)} → ${linkName(d)}: 0 MB/s`;
      cells.push({ td, value: 0 });
      tr.append(td);
    }
    return tr;
  });
  heat = { ...heat, order, pos, cells };
  $('#heatmap').replaceChildren(el('table', { class: 'heat' }, el('thead', {}, head), el('tbody', {}, ...rows)));
  if (state.shown) renderHeatmap(state.shown.links);
}

function renderHeatmap(links = []) {
  const n = heat.order.length;
  const values = new Float64Array(n * n);
  for (const [src, dst, , , mbps] of links) {
    const ps = heat.pos[src] ?? -1;
    const pd = heat.pos[dst] ?? -1;
    if (ps >= 0 && pd >= 0 && mbps > 0) values[ps * n + pd] += mbps;
  }
  const max = state.maxMbps || 1;
  heat.cells.forEach((cell, k) => {
    const v = values[k];
    if (v === cell.value) return;
    cell.value = v;
    const { td } = cell;
    td.setAttribute('data-mbps', v);
    td.title = `${td.dataset.src} → ${td.dataset.dst}: ${formatNumber(v)} MB/s`;
    td.classList.toggle('zero', v === 0);
    // Square-root scale against the busiest link seen so far, so small flows stay visible.
    td.style.backgroundColor = v > 0 ? heatScale(Math.sqrt(v / max)) : '';
  });
  heat.legend.setLabels('0', `${formatNumber(state.maxMbps)} MB/s`);
}

function renderBusiest(links = []) {
  const top = [...links].filter((l) => l[4] > 0 || l[2] > 0)
    .sort((a, b) => b[4] - a[4] || b[2] - a[2]).slice(0, BUSIEST);
  const rows = top.map(([src, dst, active, queued, mbps]) => el('tr', { 'data-link': `${linkName(src)}>${linkName(dst)}` },
    el('td', {}, linkName(src)), el('td', {}, linkName(dst)),
    el('td', { class: 'num' }, formatNumber(active)), el('td', { class: 'num' }, formatNumber(queued)),
    el('td', { class: 'num' }, formatNumber(mbps))));
  if (!rows.length) rows.push(el('tr', { class: 'empty' }, el('td', { colspan: 5 }, 'no active links')));
  $('#busiest-links tbody').replaceChildren(...rows);
}

/* ---------- site drill-down ---------- */

async function openDrill(site, opener) {
  const drill = $('#drill');
  const body = $('#drill-body');
  state.drillSite = site;
  state.drillOpener = opener;
  disposeDrillCharts();
  $('#drill-title').textContent = site;
  body.replaceChildren(el('p', { class: 'muted' }, 'loading…'));
  drill.hidden = false;
  $('#drill-close').focus();
  try {
    const data = await getJSON(`site/${encodeURIComponent(site)}`);
    if (state.drillSite === site) renderDrill(data);
  } catch (e) {
    if (state.drillSite === site) body.replaceChildren(el('p', { class: 'error', role: 'alert' }, e.message));
  }
}

function closeDrill() {
  $('#drill').hidden = true;
  state.drillSite = null;
  disposeDrillCharts();
  state.drillOpener?.focus();
}

function disposeDrillCharts() {
  for (const c of state.drillCharts) c.destroy();
  state.drillCharts = [];
}

const STATE_COLORS = { finished: '#2f9e6b', failed: '#c53030', closed: '#718096', cancelled: '#a0aec0' };

function renderDrill(data) {
  const info = data.info ?? {};
  const infoList = el('dl', { class: 'info' });
  for (const [k, v] of Object.entries(info)) {
    infoList.append(el('dt', {}, k.replaceAll('_', ' ')), el('dd', {}, formatNumber(v)));
  }

  const states = Object.entries(data.states ?? {}).sort((a, b) => b[1] - a[1]);
  const bars = svgEl('svg', { class: 'bars', role: 'img', 'aria-label': states.map(([k, v]) => `${k} ${v}`).join(', ') });

  const errors = data.errors ?? [];
  const errorTable = errors.length
    ? table(['code', 'jobs', 'diagnostic'], errors.map((e) => [e.code, formatNumber(e.n), e.diag ?? '']), { class: 'errors' })
    : el('p', { class: 'muted' }, 'no errors');

  const jobsSvg = svgEl('svg', { class: 'chart small', role: 'img', 'aria-label': 'running and queued jobs' });
  const storeSvg = svgEl('svg', { class: 'chart small', role: 'img', 'aria-label': 'storage used and total, TB' });

  $('#drill-body').replaceChildren(
    infoList,
    el('h3', {}, 'Final job states'), states.length ? bars : el('p', { class: 'muted' }, 'no finished jobs yet'),
    el('h3', {}, 'Errors'), errorTable,
    el('h3', {}, 'Jobs'), jobsSvg,
    el('h3', {}, 'Storage (TB)'), storeSvg,
  );
  if (states.length) drawBars(bars, states.map(([k, v]) => ({ label: k, value: v, color: STATE_COLORS[k] })));

  const series = data.series ?? { t: [] };
  const toTB = (arr) => (arr ?? []).map((b) => b / 1e12);
  const jobs = new LineChart(jobsSvg, {
    epochMs: state.epochMs,
    series: [
      { key: 'running', label: 'running', color: '#2b6cb0' },
      { key: 'queued', label: 'queued', color: '#dd8a1a' },
    ],
  });
  jobs.setData(series);
  const storage = new LineChart(storeSvg, {
    epochMs: state.epochMs,
    yFormat: (v) => formatNumber(v),
    series: [
      { key: 'used', label: 'used TB', color: '#2b6cb0' },
      { key: 'total', label: 'total TB', color: '#4a5568', dash: '4 3' },
    ],
  });
  storage.setData({ t: series.t, used: toTB(series.storage_used), total: toTB(series.storage_total) });
  state.drillCharts = [jobs, storage];
  if (state.shown) for (const c of state.drillCharts) c.setCursor(state.shown.t);
}

/* ---------- anomalies ---------- */

function renderAnomalies(a) {
  const section = $('#anomalies');
  section.hidden = !a;
  if (!a) return;
  const classes = a.classes ?? [];
  const bySite = (a.by_site ?? []).slice(0, 10);
  const rows = (a.rows ?? []).slice(0, 25);
  const bars = svgEl('svg', { class: 'bars', role: 'img', 'aria-label': 'sites with the most anomalies' });
  $('#anomalies-body').replaceChildren(
    el('div', { class: 'anomaly-col' }, el('h3', {}, 'Classes'),
      table(['class', 'count', 'bytes'], classes.map((c) => [c.name, formatNumber(c.count), formatBytes(c.bytes)]))),
    el('div', { class: 'anomaly-col' }, el('h3', {}, 'Sites with most anomalies'), bars),
    el('div', { class: 'anomaly-rows' }, el('h3', {}, `First ${rows.length} anomalies`),
      table(['class', 'site', 'name', 'bytes', 'detail'],
        rows.map((r) => [r.class, r.site, r.name, formatBytes(r.bytes), r.detail ?? '']))),
  );
  drawBars(bars, bySite.map((s) => ({ label: s.site, value: s.count, color: '#b7791f' })), { labelWidth: 140 });
}

/* ---------- frames ---------- */

function onFrame(f) {
  state.latest = f;
  if (f.seq + 1 > state.nFrames && state.live) setFrameCount(f.seq + 1);
  accumulateTraffic(f.links);
  if (state.live) appendTotals(f);
  if (!state.frozen) scheduleRender();
}

function scheduleRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(render);
}

/** Draw the latest frame (at most once per animation frame, however fast frames arrive). */
function render() {
  state.renderQueued = false;
  const f = state.latest;
  if (!f || state.frozen) return;
  state.shown = f;
  const clock = $('#clock');
  const ms = frameTimeMs(f);
  clock.textContent = `${formatUTC(ms)} UTC`;
  clock.setAttribute('datetime', new Date(ms).toISOString());
  clock.setAttribute('data-seq', f.seq);
  if (!state.seekHeld) {
    $('#seek').value = String(f.seq);
    setFrameLabel(f.seq);
  }
  updateLiveKpis(f.totals);
  updateTiles(f.sites);
  renderHeatmap(f.links);
  renderBusiest(f.links);
  for (const c of [charts.series, charts.throughput, ...state.drillCharts]) c.setCursor(f.t);
}

/* ---------- WebSocket ---------- */

function wsUrl() {
  const u = new URL('ws', location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.search = TOKEN ? `?token=${encodeURIComponent(TOKEN)}` : '';
  u.hash = '';
  return u.href;
}

function send(msg) {
  if (state.ws?.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
}

function setConnected(ok) {
  const conn = $('#conn');
  conn.textContent = ok ? 'connected' : 'disconnected';
  conn.className = ok ? 'conn ok' : 'conn down';
}

function connect() {
  const ws = new WebSocket(wsUrl());
  state.ws = ws;
  ws.addEventListener('open', () => {
    setConnected(true);
    state.retry = 0;
    // Live frames made while we were away are only in the series: fetch it again.
    if (state.everConnected && state.live) loadSeries();
    state.everConnected = true;
  });
  ws.addEventListener('message', (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg.type === 'frame') onFrame(msg);
    else if (msg.type === 'frames') msg.frames.forEach(onFrame); // a live backlog, sent in one message
    else if (msg.type === 'state') onState(msg);
    else if (msg.type === 'end') onEnd();
  });
  ws.addEventListener('close', () => {
    if (state.ws !== ws) return;
    setConnected(false);
    if (state.ended) return;
    const delay = Math.min(10000, 500 * 2 ** state.retry);
    state.retry += 1;
    setTimeout(connect, delay);
  });
}

/* ---------- start ---------- */

async function boot() {
  let meta;
  try {
    meta = await getJSON('meta');
  } catch (e) {
    showError(`Could not load the run: ${e.message}. Retrying…`);
    setTimeout(boot, 5000);
    return;
  }
  showError(meta.token_required && !TOKEN ? 'This dashboard needs an access token: open it with ?token=… in the address.' : null);
  state.meta = meta;
  state.live = meta.mode === 'live';
  state.epochMs = Date.parse(meta.epoch) || 0;
  meta.link_sites = meta.link_sites ?? [];
  meta.sites = meta.sites ?? [];
  state.traffic = new Float64Array(meta.link_sites.length);

  initHeader(meta);
  renderKpis(meta.kpis);
  buildSiteGrid(meta.sites);
  heat.legend = drawLegend($('#heat-legend'), heatScale, { title: 'throughput (√ scale)', lo: '0', hi: '– MB/s' });
  buildHeatmap([...state.traffic.keys()].slice(0, HEAT_SITES));
  renderBusiest([]);
  renderAnomalies(meta.anomalies);
  initCharts(state.epochMs);
  await loadSeries();
  connect();
}

setConnected(false);
initControls();
boot();
