// The cold-start chart: P50 / P90 / P99 of cache misses (the model was downloaded first) next to
// cache hits, as grouped bars in a small inline SVG (built with createElementNS; text as
// textContent).
import {fmtMs, h, s} from './dom.js';

const W = 340;
const H = 180;
const PAD = {left: 52, right: 8, top: 18, bottom: 24};
const SERIES = [
  {key: 'miss', label: 'cache miss (model downloaded)'},
  {key: 'hit', label: 'cache hit (model on the host)'},
];
const STATS = ['p50', 'p90', 'p99'];

function niceCeil(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// coldStarts: {hit: {count, p50, p90, p99}, miss: {...}} from GET /v1/endpoints/{id}.
export function coldStartChart(coldStarts) {
  const cs = coldStarts || {};
  const present = SERIES.filter((x) => cs[x.key] && cs[x.key].count > 0);
  if (!present.length) return h('p', {class: 'muted'}, 'No cold starts yet.');
  const max = niceCeil(Math.max(...present.flatMap((x) => STATS.map((p) => cs[x.key][p] || 0))));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + plotH - (plotH * v) / max;
  const summary = present.map((x) => `${x.key}: ${STATS.map((p) =>
    `${p.toUpperCase()} ${fmtMs(cs[x.key][p])}`).join(', ')} (${cs[x.key].count})`).join('; ');
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `Cold starts: ${summary}`,
  });
  for (let i = 0; i <= 4; i += 1) {
    const v = (max * i) / 4;
    svg.append(
      s('line', {x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid'}),
      s('text', {x: PAD.left - 4, y: y(v) + 3, class: 'axis', 'text-anchor': 'end'}, fmtMs(v)));
  }
  const groupW = plotW / STATS.length;
  const barW = Math.min(28, (groupW - 16) / SERIES.length);
  STATS.forEach((p, i) => {
    const gx = PAD.left + i * groupW + (groupW - barW * SERIES.length) / 2;
    SERIES.forEach((x, j) => {
      const stat = cs[x.key];
      if (!stat || !stat.count) return;
      const v = stat[p] || 0;
      const bx = gx + j * barW;
      svg.append(
        s('rect', {x: bx + 1, y: y(v), width: barW - 2, height: Math.max(0.5, PAD.top + plotH - y(v)),
          class: `bar-${x.key}`},
        s('title', null, `${x.key} ${p.toUpperCase()}: ${fmtMs(v)}`)),
        s('text', {x: bx + barW / 2, y: y(v) - 3, class: 'value', 'text-anchor': 'middle'},
          fmtMs(v)));
    });
    svg.append(s('text', {x: PAD.left + i * groupW + groupW / 2, y: H - 6, class: 'axis',
      'text-anchor': 'middle'}, p.toUpperCase()));
  });
  const legend = h('ul', {class: 'legend'}, SERIES.map((x) => h('li', null,
    h('span', {class: ['swatch', `bar-${x.key}`]}),
    `${x.label}: ${cs[x.key] ? cs[x.key].count : 0}`)));
  return h('figure', {class: 'chart-figure'}, svg, legend);
}
