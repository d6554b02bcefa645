// Small SVG charts drawn by hand: a line chart with a y-axis and a sparkline. No dependencies.
// Series are arrays of numbers, oldest first, one point per second; missing history is simply
// shorter arrays, drawn against the right edge ("now").

const SVG = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

/** A "nice" upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten, at least `min`. */
export function niceMax(value, min = 1) {
  const v = Math.max(value, min);
  const power = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= v) return step * power;
  return 10 * power;
}

/** An axis maximum whose four gridlines all fall on whole numbers (for counts). */
function integerMax(value) {
  const quarter = Math.max(1, value / 4);
  const power = 10 ** Math.floor(Math.log10(quarter));
  for (const step of [1, 2, 5, 10]) if (step * power >= quarter) return 4 * step * power;
  return 40 * power;
}

export function formatNumber(value) {
  if (!Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toFixed(abs >= 1e10 ? 0 : 1)}G`;
  if (abs >= 1e6) return `${(value / 1e6).toFixed(abs >= 1e7 ? 0 : 1)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(0)}k`;
  if (abs >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  if (abs >= 10 || Number.isInteger(value)) return String(Math.round(value));
  return value.toFixed(abs >= 1 ? 1 : 2).replace(/\.?0+$/, '');
}

function pathOf(values, points, x0, width, y0, height, max) {
  const step = width / Math.max(1, points - 1);
  const offset = points - values.length;
  let d = '';
  values.forEach((v, i) => {
    const x = x0 + (offset + i) * step;
    const y = y0 + height - (Math.max(0, v) / max) * height;
    d += `${i === 0 ? 'M' : 'L'}${x.toFixed(1)},${y.toFixed(1)}`;
  });
  return { d, firstX: x0 + offset * step, lastX: x0 + (points - 1) * step };
}

/**
 * Draws a line chart into `container` (replacing what was there), sized to the container.
 * series: [{values: number[], color: string, label?: string, fill?: boolean}]
 * options: {points = 120, seconds = points, format = formatNumber, minMax = 1, integer = false}
 */
export function lineChart(container, series, options = {}) {
  const points = options.points ?? 120;
  const seconds = options.seconds ?? points;
  const format = options.format ?? formatNumber;
  const width = Math.max(200, container.clientWidth);
  const height = Math.max(100, container.clientHeight);
  const left = 44;
  const right = 8;
  const top = 8;
  const bottom = 22;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const peak = Math.max(0, ...series.flatMap((s) => s.values));
  const max = options.integer ? integerMax(peak) : niceMax(peak, options.minMax ?? 1);

  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': options.label ?? 'chart' });
  for (let i = 0; i <= 4; i++) {
    const y = top + (plotH * i) / 4;
    el('line', { class: 'grid', x1: left, x2: width - right, y1: y.toFixed(1), y2: y.toFixed(1) }, svg);
    const label = el('text', { x: left - 8, y: (y + 4).toFixed(1), 'text-anchor': 'end' }, svg);
    label.textContent = format((max * (4 - i)) / 4);
  }
  const ticks = [
    [0, `-${seconds >= 120 ? `${Math.round(seconds / 60)}m` : `${seconds}s`}`],
    [0.5, `-${seconds >= 120 ? `${Math.round(seconds / 120)}m` : `${Math.round(seconds / 2)}s`}`],
    [1, 'now'],
  ];
  for (const [at, text] of ticks) {
    const anchor = at === 0 ? 'start' : at === 1 ? 'end' : 'middle';
    const label = el('text', { x: (left + plotW * at).toFixed(1), y: height - 5, 'text-anchor': anchor }, svg);
    label.textContent = text;
  }
  series.forEach((s, index) => {
    if (s.values.length === 0) return;
    const { d, firstX, lastX } = pathOf(s.values, points, left, plotW, top, plotH, max);
    if (s.fill !== false) {
      const id = `fill-${Math.random().toString(36).slice(2)}-${index}`;
      const gradient = el('linearGradient', { id, x1: 0, x2: 0, y1: 0, y2: 1 }, el('defs', {}, svg));
      el('stop', { offset: '0%', 'stop-color': s.color, 'stop-opacity': 0.18 }, gradient);
      el('stop', { offset: '100%', 'stop-color': s.color, 'stop-opacity': 0 }, gradient);
      const base = (top + plotH).toFixed(1);
      el('path', { d: `${d}L${lastX.toFixed(1)},${base}L${firstX.toFixed(1)},${base}Z`, fill: `url(#${id})` }, svg);
    }
    el('path', { class: 'line', d, stroke: s.color }, svg);
  });
  container.replaceChildren(svg);
}

/**
 * Draws a sparkline into an <svg> element (its size comes from CSS). Until `points` values exist
 * the ones there are spread over the whole width, so a fresh page shows a trend, not a dot.
 */
export function sparkline(svg, values, color, points = 60) {
  const width = Math.max(60, svg.clientWidth || svg.getBoundingClientRect().width || 160);
  const height = Math.max(16, svg.clientHeight || 34);
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const recent = values.slice(-points);
  if (recent.length < 2) return;
  const max = niceMax(Math.max(0, ...recent), 1);
  const { d, firstX, lastX } = pathOf(recent, recent.length, 1, width - 2, 2, height - 4, max);
  el('path', { d: `${d}L${lastX},${height}L${firstX},${height}Z`, fill: color, 'fill-opacity': 0.1 }, svg);
  el('path', { class: 'line', d, stroke: color }, svg);
}
