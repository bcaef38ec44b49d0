// Small dependency-free SVG charts, colour scales and number formats for the gridtwin dashboard.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Create an SVG element with attributes, optionally appended to a parent. */
export function svgEl(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

function svgText(parent, x, y, text, attrs = {}) {
  const node = svgEl('text', { x, y, ...attrs }, parent);
  node.textContent = text;
  return node;
}

/* ---------- number and time formats ---------- */

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const sigFmt = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });
const compactFmt = new Intl.NumberFormat('en-US', { notation: 'compact', maximumSignificantDigits: 3 });

/** Integers (and anything >= 1000) with thousands separators, fractions to 3 significant digits. */
export function formatNumber(x) {
  if (typeof x !== 'number') return x == null ? '–' : String(x);
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) || Math.abs(x) >= 1000) return intFmt.format(x);
  return sigFmt.format(x);
}

/** Short form for tight spaces: 1.23k, 4.5M. */
export function formatCompact(x) {
  return Number.isFinite(x) ? compactFmt.format(x) : '–';
}

/** Bytes in decimal units (as Rucio and the reports count them). */
export function formatBytes(b) {
  if (!Number.isFinite(b)) return '–';
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let i = 0;
  while (Math.abs(b) >= 1000 && i < units.length - 1) { b /= 1000; i += 1; }
  return `${sigFmt.format(b)} ${units[i]}`;
}

const pad2 = (n) => String(n).padStart(2, '0');

/** "2025-01-01 02:50:00" in UTC. */
export function formatUTC(ms) {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return '–';
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
}

/** Axis label: "MM-DD" at midnight UTC, otherwise "HH:MM". */
function formatTick(ms) {
  const d = new Date(ms);
  if (d.getUTCHours() === 0 && d.getUTCMinutes() === 0) return `${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
  return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
}

/* ---------- colour scales ---------- */

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/**
 * A sequential scale through the given colour stops: scale(t) for t in [0, 1] gives "rgb(...)";
 * scale.ink(t) gives a text colour readable on it.
 */
function colorScale(stops) {
  const rgb = stops.map(hexToRgb);
  const mix = (t) => {
    const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (rgb.length - 1);
    const i = Math.min(rgb.length - 2, Math.floor(x));
    const f = x - i;
    return rgb[i].map((c, k) => Math.round(c + (rgb[i + 1][k] - c) * f));
  };
  const scale = (t) => `rgb(${mix(t).join(',')})`;
  scale.ink = (t) => {
    const [r, g, b] = mix(t);
    return 0.299 * r + 0.587 * g + 0.114 * b < 140 ? '#ffffff' : '#1b1f24';
  };
  return scale;
}

/** Core utilisation: pale yellow (idle) to dark blue (full). */
export const utilisationScale = colorScale(['#ffffd9', '#c7e9b4', '#7fcdbb', '#1d91c0', '#253494', '#081d58']);
/** Transfer throughput: pale yellow to dark red. */
export const heatScale = colorScale(['#fff7bc', '#fec44f', '#fe9929', '#d95f0e', '#993404']);

/**
 * Draw a horizontal colour legend into `container`: title, low label, gradient, high label.
 * Returns {setLabels(lo, hi)} to update the end labels.
 */
export function drawLegend(container, scale, { title, lo, hi, steps = 24, extra = null }) {
  const loSpan = document.createElement('span');
  const hiSpan = document.createElement('span');
  const titleSpan = document.createElement('span');
  titleSpan.className = 'legend-title';
  titleSpan.textContent = title;
  const svg = svgEl('svg', { width: 160, height: 12, viewBox: `0 0 ${steps} 1`, preserveAspectRatio: 'none', 'aria-hidden': 'true' });
  for (let i = 0; i < steps; i += 1) {
    svgEl('rect', { x: i, y: 0, width: 1.05, height: 1, fill: scale((i + 0.5) / steps) }, svg);
  }
  container.replaceChildren(titleSpan, loSpan, svg, hiSpan);
  if (extra) container.append(extra);
  const setLabels = (l, h) => { loSpan.textContent = l; hiSpan.textContent = h; };
  setLabels(lo, hi);
  return { setLabels };
}

/* ---------- axes helpers ---------- */

/** Round a step to 1, 2 or 5 times a power of ten. */
function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

function niceTicks(max, count = 4) {
  const step = niceStep((max > 0 ? max : 1) / count);
  const top = Math.ceil((max > 0 ? max : 1) / step) * step;
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
  return { top, ticks };
}

const TIME_STEPS_S = [60, 300, 600, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000];

/* ---------- line chart ---------- */

/**
 * A time-series line chart drawn into an <svg>. Series are {key, label, color, axis: 'left'|'right'}.
 * Data is {t: [seconds since epoch], [key]: [values]}; `epochMs` turns t into UTC for the axis.
 * It redraws itself when the element is resized.
 */
export class LineChart {
  constructor(svg, { series, epochMs = 0, yFormat = formatCompact }) {
    this.svg = svg;
    this.series = series;
    this.epochMs = epochMs;
    this.yFormat = yFormat;
    this.cursorT = null;
    this.cursor = null;
    this.pending = false;
    this.setData({ t: [] }, false);
    this.observer = new ResizeObserver(() => this.scheduleDraw());
    this.observer.observe(svg);
  }

  /** Replace all data (copies the arrays). */
  setData(data, redraw = true) {
    this.data = { t: Array.from(data.t ?? []) };
    for (const s of this.series) this.data[s.key] = Array.from(data[s.key] ?? []);
    if (redraw) this.scheduleDraw();
  }

  /** Add one point; `values` maps series keys to numbers. */
  append(t, values, redraw = true) {
    this.data.t.push(t);
    for (const s of this.series) this.data[s.key].push(values[s.key] ?? NaN);
    if (redraw) this.scheduleDraw();
  }

  lastT() {
    return this.data.t.length ? this.data.t[this.data.t.length - 1] : -Infinity;
  }

  /** Move the vertical cursor to time t (seconds since epoch); null hides it. */
  setCursor(t) {
    this.cursorT = t;
    if (!this.cursor || !this.x) return;
    const inside = t != null && t >= this.x.t0 && t <= this.x.t1;
    this.cursor.setAttribute('visibility', inside ? 'visible' : 'hidden');
    if (inside) {
      const px = this.x.at(t).toFixed(1);
      this.cursor.setAttribute('x1', px);
      this.cursor.setAttribute('x2', px);
    }
  }

  scheduleDraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  destroy() {
    this.observer.disconnect();
  }

  draw() {
    const svg = this.svg;
    const rect = svg.getBoundingClientRect();
    const w = Math.max(200, Math.round(rect.width));
    const h = Math.max(100, Math.round(rect.height));
    const hasRight = this.series.some((s) => s.axis === 'right');
    const m = { l: 48, r: hasRight ? 48 : 14, t: 26, b: 22 };
    const pw = w - m.l - m.r;
    const ph = h - m.t - m.b;
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    svg.replaceChildren();

    const { t } = this.data;
    const t0 = t.length ? t[0] : 0;
    const t1 = t.length > 1 ? t[t.length - 1] : t0 + 3600;
    this.x = { t0, t1, at: (v) => m.l + ((v - t0) / (t1 - t0)) * pw };

    const axisMax = (axis) => {
      let max = 0;
      for (const s of this.series) {
        if ((s.axis ?? 'left') !== axis) continue;
        for (const v of this.data[s.key]) if (v > max) max = v;
      }
      return niceTicks(max);
    };
    const yAxes = { left: axisMax('left'), right: hasRight ? axisMax('right') : null };
    const yAt = (axis, v) => m.t + ph - (v / yAxes[axis].top) * ph;

    // Grid lines and y labels.
    const grid = svgEl('g', { class: 'grid' }, svg);
    for (const v of yAxes.left.ticks) {
      const y = yAt('left', v).toFixed(1);
      svgEl('line', { x1: m.l, x2: m.l + pw, y1: y, y2: y }, grid);
      svgText(svg, m.l - 6, Number(y) + 4, this.yFormat(v), { class: 'tick', 'text-anchor': 'end' });
    }
    if (hasRight) {
      for (const v of yAxes.right.ticks) {
        svgText(svg, m.l + pw + 6, yAt('right', v) + 4, this.yFormat(v), { class: 'tick' });
      }
    }

    // Time ticks aligned to round UTC times.
    const spanS = t1 - t0;
    const maxTicks = Math.max(2, Math.floor(pw / 70));
    const step = TIME_STEPS_S.find((s) => spanS / s <= maxTicks) ?? TIME_STEPS_S[TIME_STEPS_S.length - 1];
    const startMs = this.epochMs + t0 * 1000;
    for (let ms = Math.ceil(startMs / (step * 1000)) * step * 1000; ms <= this.epochMs + t1 * 1000; ms += step * 1000) {
      const x = this.x.at((ms - this.epochMs) / 1000);
      svgEl('line', { x1: x, x2: x, y1: m.t + ph, y2: m.t + ph + 4, class: 'axis' }, svg);
      svgText(svg, x, h - 6, formatTick(ms), { class: 'tick', 'text-anchor': 'middle' });
    }
    svgEl('line', { x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph, class: 'axis' }, svg);

    // Lines; a non-finite value breaks the line.
    for (const s of this.series) {
      const vals = this.data[s.key];
      let d = '';
      let pen = 'M';
      for (let i = 0; i < t.length; i += 1) {
        const v = vals[i];
        if (!Number.isFinite(v)) { pen = 'M'; continue; }
        d += `${pen}${this.x.at(t[i]).toFixed(1)},${yAt(s.axis ?? 'left', v).toFixed(1)}`;
        pen = 'L';
      }
      if (d) svgEl('path', { d, class: 'line', stroke: s.color, ...(s.dash ? { 'stroke-dasharray': s.dash } : {}) }, svg);
    }

    // Legend across the top.
    let lx = m.l;
    for (const s of this.series) {
      svgEl('rect', { x: lx, y: 7, width: 12, height: 4, fill: s.color }, svg);
      const label = svgText(svg, lx + 16, 13, s.label, { class: 'legend-label' });
      lx += 16 + (label.getComputedTextLength() || s.label.length * 7) + 14;
    }

    this.cursor = svgEl('line', { x1: m.l, x2: m.l, y1: m.t, y2: m.t + ph, class: 'cursor', visibility: 'hidden' }, svg);
    this.setCursor(this.cursorT);
  }
}

/* ---------- horizontal bar chart ---------- */

/** Horizontal bars for [{label, value, color}] drawn into an <svg>; the height follows the rows. */
export function drawBars(svg, items, { format = formatNumber, labelWidth = 110 } = {}) {
  const rowH = 20;
  const w = Math.max(220, Math.round(svg.getBoundingClientRect().width) || 320);
  const h = items.length * rowH + 4;
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('height', h);
  svg.replaceChildren();
  const max = Math.max(1, ...items.map((it) => it.value));
  const barW = w - labelWidth - 70;
  items.forEach((it, i) => {
    const y = i * rowH + 2;
    svgText(svg, labelWidth - 6, y + 14, it.label, { class: 'tick', 'text-anchor': 'end' });
    svgEl('rect', { x: labelWidth, y: y + 3, width: Math.max(1, (it.value / max) * barW).toFixed(1), height: rowH - 6, fill: it.color ?? '#4c78a8' }, svg);
    svgText(svg, labelWidth + (it.value / max) * barW + 6, y + 14, format(it.value), { class: 'tick' });
  });
}
