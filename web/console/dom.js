// DOM building and formatting helpers.
//
// SECURITY: every piece of data reaches the page through text nodes (textContent) or attribute
// values set here. The console never uses innerHTML, outerHTML, insertAdjacentHTML or
// document.write, so an endpoint name, a model or file name or an error message such as
// "<img src=x onerror=...>" is shown as text and never parsed as markup. The Content-Security-
// Policy the controller serves the console with (no inline script or style) is the second line.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
    else if (k.startsWith('on')) {
      // Handlers are functions only: a string would be an inline script (and CSP blocks it).
      if (typeof v !== 'function') throw new TypeError(`${k} must be a function`);
      el.addEventListener(k.slice(2), v);
    } else if (k === 'style') {
      throw new TypeError('use el.style (CSSOM): inline style attributes are blocked by CSP');
    } else el.setAttribute(k, v === true ? '' : String(v));
  }
}

// h('a', {href: '#/x', class: 'btn'}, 'text', child, ...): an element with text children.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

// The same for SVG elements (charts).
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

// Replaces the children of `el` unless `signature` equals the one of its last render: polling
// re-renders only what changed, so a button is not swapped out under the user's pointer.
export function renderIfChanged(el, signature, build) {
  if (el.dataset.signature === signature) return false;
  el.dataset.signature = signature;
  el.replaceChildren(...[build()].flat(Infinity).filter((c) => c !== null && c !== undefined));
  return true;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${UNITS[i]}`;
}

// Milliseconds as "850 ms", "1.24 s", "3 min 5 s", "2 h 4 min".
export function fmtMs(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 2 : 1)} s`;
  const whole = Math.round(sec);
  const min = Math.floor(whole / 60);
  const rest = whole % 60;
  if (min < 60) return rest ? `${min} min ${rest} s` : `${min} min`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

export function fmtSeconds(s) {
  return fmtMs(s * 1000);
}

// A time (ms since the epoch, or an ISO 8601 string) as "12 s ago".
export function fmtAgo(t) {
  const ms = typeof t === 'string' ? Date.parse(t) : t;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) return 'never';
  const d = Date.now() - ms;
  if (d < 1500) return 'just now';
  return `${fmtMs(d)} ago`;
}

export function fmtTime(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) return '–';
  return new Date(ms).toLocaleTimeString();
}

export function shortSha(sha) {
  return typeof sha === 'string' ? sha.slice(0, 10) : '';
}

// A horizontal bar of `parts` [{value, class, label}] over `total`; widths set through the CSSOM
// (allowed by the CSP, unlike style attributes).
export function bar(total, parts, markers = []) {
  const el = h('div', {class: 'bar', role: 'img'});
  const labels = [];
  for (const p of parts) {
    const seg = h('span', {class: ['bar-seg', p.class]});
    seg.style.width = `${total > 0 ? Math.min(100, (100 * p.value) / total) : 0}%`;
    el.append(seg);
    if (p.label) labels.push(p.label);
  }
  for (const m of markers) {
    const mk = h('span', {class: ['bar-marker', m.class], title: m.label});
    mk.style.left = `${total > 0 ? Math.min(100, (100 * m.value) / total) : 0}%`;
    el.append(mk);
    labels.push(m.label);
  }
  el.setAttribute('aria-label', labels.join(', '));
  return el;
}

// A table that becomes a list of cards in a narrow window (each cell labelled by data-label).
export function table(columns, rows, props = {}) {
  return h('div', {class: 'table-wrap'},
    h('table', {class: ['table', props.class]},
      h('thead', null, h('tr', null, columns.map((c) => h('th', {scope: 'col'}, c)))),
      h('tbody', null, rows.map((r) => {
        const tr = h('tr', r.props || null);
        (r.cells || r).forEach((cell, i) => tr.append(h('td', {'data-label': columns[i]}, cell)));
        return tr;
      }))));
}

export function badge(text, kind) {
  return h('span', {class: ['badge', kind && `badge-${kind}`]}, text);
}
