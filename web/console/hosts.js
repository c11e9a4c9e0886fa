// #/hosts: every host: GPU slots, disk (used / capacity / watermarks), the cached models with
// size, last use and pins (pin, unpin and evict buttons), and downloads with progress and ETA.
// Pin, unpin and evict go through the controller (/v1/hosts/<id>/pins, /evict), which passes
// them to the host's agent. Cordon, drain and uncordon (/v1/hosts/<id>/cordon, ...) take the
// host out of placement or back. Admin keys only (the app does not show the page to others).
import {del, get, post, q} from './api.js';
import {bar, fmtBytes, fmtSeconds, h, renderIfChanged, shortSha, table} from './dom.js';

function eta(d) {
  const left = Math.max(0, (d.bytesTotal || 0) - (d.bytesDone || 0));
  if (!d.bytesPerSecond || d.bytesPerSecond <= 0) return 'ETA unknown';
  return `ETA ${fmtSeconds(left / d.bytesPerSecond)}`;
}

// Last use as a local date and time (not "x ago": the table is redrawn only when data changes).
function lastUse(v) {
  const ms = typeof v === 'string' ? Date.parse(v) : v;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) return 'never';
  return new Date(ms).toLocaleString();
}

// Who holds the snapshot's pins, when the API lists them (pinnedBy, or an agent document's pins
// array): "operator" (the Pin button, `modelcache pin`) and "worker:<id>" (a worker using it).
// Hosts reported without the list (older agents) give only the count: owners is null then, and
// whether the operator holds one of the pins is unknown (byOperator null).
function pinInfo(snap) {
  const list = Array.isArray(snap.pinnedBy) ? snap.pinnedBy
    : Array.isArray(snap.pins) ? snap.pins : null;
  const owners = list ? list.filter((o) => typeof o === 'string') : null;
  const count = owners ? owners.length : typeof snap.pins === 'number' ? snap.pins : snap.pinned ? 1 : 0;
  return {owners, count, byOperator: owners ? owners.includes('operator') : null};
}

// "operator" stays as is, "worker:w-abc123" reads "worker w-abc123"; any other owner as sent.
function ownerLabel(owner) {
  return owner.startsWith('worker:') ? `worker ${owner.slice('worker:'.length)}` : owner;
}

// The Pins cell: one span per owner (text only), or the count when the owners are not known.
function pinCell({owners, count}) {
  if (!count) return h('span', {class: 'pins'}, '–');
  if (!owners) return h('span', {class: 'pins'}, `${count} pin${count > 1 ? 's' : ''}`);
  return h('span', {class: 'pins'}, owners.map((o, i) => [i ? ', ' : null,
    h('span', {class: ['pin-owner', o === 'operator' && 'operator'], 'data-owner': o}, ownerLabel(o))]));
}

// Why Evict is disabled (or what it does).
function evictTitle({owners, count, byOperator}) {
  if (!count) return 'Remove it from this host';
  if (!owners) return 'Pinned snapshots are never evicted: unpin it first';
  const by = `Pinned by ${owners.map(ownerLabel).join(', ')}: pinned snapshots are never evicted`;
  const workers = owners.some((o) => o !== 'operator');
  return `${by}${byOperator ? '; unpin it first' : ''}` +
    `${workers ? `; a worker's pin goes when the worker stops` : ''}`;
}

function diskBlock(disk) {
  const cap = disk.capacityBytes || 0;
  const used = disk.usedBytes || 0;
  const reserved = disk.reservedBytes || 0;
  const markers = [];
  if (disk.highWatermarkBytes) {
    markers.push({value: disk.highWatermarkBytes, class: 'high',
      label: `high watermark ${fmtBytes(disk.highWatermarkBytes)}`});
  }
  if (disk.lowWatermarkBytes) {
    markers.push({value: disk.lowWatermarkBytes, class: 'low',
      label: `low watermark ${fmtBytes(disk.lowWatermarkBytes)}`});
  }
  const text = [`${fmtBytes(used)} used of ${fmtBytes(cap)}`];
  if (reserved) text.push(`${fmtBytes(reserved)} reserved for downloads`);
  for (const m of markers) text.push(m.label);
  return h('div', {class: 'disk'},
    h('h3', null, 'Disk'),
    bar(cap, [
      {value: used, class: 'used', label: `used ${fmtBytes(used)}`},
      {value: reserved, class: 'reserved', label: `reserved ${fmtBytes(reserved)}`},
    ], markers),
    h('p', {class: 'disk-text'}, text.join(' · ')));
}

function gpuBlock(host) {
  const total = host.gpus?.total ?? 0;
  const used = total - (host.gpus?.free ?? 0);
  return h('div', {class: 'gpus'},
    h('h3', null, 'GPU slots'),
    bar(total, [{value: used, class: 'used', label: `${used} of ${total} used`}]),
    h('p', null, `${used} of ${total} used${host.gpuType ? ` · ${host.gpuType}` : ''}`));
}

export function hostsPage(main) {
  const body = h('div', {id: 'hosts'}, h('p', {class: 'muted'}, 'Loading…'));
  const messages = new Map();  // host id → {text, kind} of the last action
  main.append(h('div', {class: 'page-head'}, h('h1', null, 'Hosts')), body);

  async function act(hostId, verb, snap, button) {
    const path = `/v1/hosts/${q(hostId)}/${verb === 'evict' ? 'evict' : 'pins'}`;
    const what = {model: snap.model, commit: snap.commit};
    if (verb === 'evict' &&
        !window.confirm(`Evict ${snap.model}@${shortSha(snap.commit)} from ${hostId}?`)) return;
    button.disabled = true;
    try {
      if (verb === 'unpin') await del(path, what);
      else await post(path, what);
      messages.set(hostId, {kind: 'ok', text: `${verb === 'evict' ? 'Evicted' : verb === 'pin'
        ? 'Pinned' : 'Unpinned'} ${snap.model}@${shortSha(snap.commit)}.`});
    } catch (e) {
      messages.set(hostId, {kind: 'error', text: `Could not ${verb} ${snap.model}: ${e.message}`});
    }
    button.disabled = false;
    await refresh().catch(() => {});
  }

  function snapshotsTable(host) {
    const snaps = [...(host.snapshots || [])].sort((a, b) => a.model.localeCompare(b.model));
    if (!snaps.length) return h('p', {class: 'muted'}, 'No models cached.');
    const columns = ['Model', 'Commit', 'Size', 'Files', 'Last use', 'Pins', 'Actions'];
    return table(columns, snaps.map((snap) => {
      const pins = pinInfo(snap);
      // Every row has the same buttons: the accessible name says which model, commit and host.
      const button = (verb, label, props = {}) => {
        const b = h('button', {type: 'button', class: ['small', verb === 'evict' && 'danger'],
          'data-action': verb,
          'aria-label': `${label} ${snap.model} at commit ${shortSha(snap.commit)} on ${host.id}`,
          ...props}, label);
        b.addEventListener('click', () => act(host.id, verb, snap, b));
        return b;
      };
      // With the owners known, one toggle for the operator's pin: Pin without it, Unpin with it.
      // With only a count (older agents), both. Evict only once nothing pins it.
      const buttons = [];
      if (pins.byOperator !== true) {
        buttons.push(button('pin', 'Pin', {title: 'Keep it on this host (an operator pin)'}));
      }
      if (pins.byOperator !== false) {
        buttons.push(button('unpin', 'Unpin', {disabled: pins.count === 0,
          title: "Remove the operator's pin"}));
      }
      buttons.push(button('evict', 'Evict', {disabled: pins.count > 0, title: evictTitle(pins)}));
      const files = Array.isArray(snap.files) ? snap.files.length : snap.files;
      return {
        props: {'data-model': snap.model, 'data-commit': snap.commit, 'data-pins': String(pins.count),
          'data-operator-pin': pins.byOperator === null ? 'unknown' : String(pins.byOperator)},
        cells: [
          h('span', {class: 'mono model-name'}, snap.model),
          h('span', {class: 'mono', title: snap.commit}, shortSha(snap.commit)),
          h('span', {class: 'size'}, `${fmtBytes(snap.sizeBytes)}${snap.complete === false ? ' (partial)' : ''}`),
          files === undefined ? '–' : String(files),
          lastUse(snap.lastUse),
          pinCell(pins),
          h('span', {class: 'actions'}, buttons),
        ],
      };
    }), {class: 'snapshots'});
  }

  function downloads(host) {
    const list = host.downloads || [];
    if (!list.length) return null;
    return h('div', {class: 'downloads'}, h('h3', null, 'Downloading'),
      h('ul', null, list.map((d) => {
        const pct = d.bytesTotal ? Math.floor((100 * d.bytesDone) / d.bytesTotal) : 0;
        return h('li', {'data-model': d.model},
          h('span', {class: 'mono'}, d.model),
          bar(d.bytesTotal || 0, [{value: d.bytesDone || 0, class: 'used', label: `${pct}%`}]),
          h('span', {class: 'muted'}, `${fmtBytes(d.bytesDone)} of ${fmtBytes(d.bytesTotal)} (${pct}%)` +
            ` · ${fmtBytes(d.bytesPerSecond || 0)}/s · ${eta(d)}`));
      })));
  }

  async function schedule(hostId, verb, button) {
    if (verb === 'drain' &&
        !window.confirm(`Drain ${hostId}? Its idle workers stop and no new ones are placed.`)) return;
    button.disabled = true;
    try {
      await post(`/v1/hosts/${q(hostId)}/${verb}`, {});
      messages.set(hostId, {kind: 'ok', text: verb === 'uncordon' ? 'Uncordoned: it takes workers again.'
        : verb === 'drain' ? 'Draining: idle workers stop, no new ones.' : 'Cordoned: no new workers.'});
    } catch (e) {
      messages.set(hostId, {kind: 'error', text: `Could not ${verb} ${hostId}: ${e.message}`});
    }
    button.disabled = false;
    await refresh().catch(() => {});
  }

  function scheduleButtons(host) {
    if (host.enrolled === false) return null;
    const button = (verb, label, title) => {
      const b = h('button', {type: 'button', class: ['small', verb === 'drain' && 'danger'],
        'data-action': verb, 'aria-label': `${label} ${host.id}`, title}, label);
      b.addEventListener('click', () => schedule(host.id, verb, b));
      return b;
    };
    return h('span', {class: 'actions'}, host.schedule
      ? [button('uncordon', 'Uncordon', 'Place workers on this host again')]
      : [button('cordon', 'Cordon', 'Place no new workers here (running ones go on)'),
        button('drain', 'Drain', 'Cordon, and stop the idle workers here')]);
  }

  function hostCard(host) {
    const msg = messages.get(host.id);
    return h('section', {class: 'card host', 'data-host-id': host.id},
      h('div', {class: 'host-head'},
        h('h2', null, host.id),
        host.lost ? h('span', {class: 'badge badge-bad'}, 'lost') : h('span', {class: 'badge badge-ok'}, 'online'),
        host.schedule ? h('span', {class: 'badge badge-bad'}, host.schedule) : null,
        h('span', {class: 'mono muted'}, host.url),
        scheduleButtons(host)),
      h('div', {class: 'host-stats'}, gpuBlock(host), diskBlock(host.disk || {})),
      downloads(host),
      h('h3', null, 'Cached models'),
      snapshotsTable(host),
      msg ? h('p', {class: msg.kind === 'error' ? 'error' : 'ok-text', role: 'status'}, msg.text) : null);
  }

  async function refresh() {
    const {hosts} = await get('/v1/hosts');
    const stable = hosts.map(({lastSeen, ...rest}) => rest);  // lastSeen moves every heartbeat
    renderIfChanged(body, JSON.stringify([stable, [...messages]]), () => (hosts.length
      ? hosts.map(hostCard)
      : h('p', {class: 'empty'}, 'No host has registered yet (enroll one with `modelcache hosts ' +
        'enroll --host-id ID`, then start its agent with --controller and --host-credential-file).')));
  }
  return {refresh};
}
