// #/endpoints/<id>: one endpoint: settings, workers by phase (with each worker's phases from the
// ledger), queue, billed vs unbilled seconds, cold starts (chart), recent jobs, and a box that
// sends a test request through /v2/<id>/runsync.
import {ApiError, del, get, post, q} from './api.js';
import {coldStartChart} from './chart.js';
import {
  badge, bar, fmtAgo, fmtMs, fmtSeconds, fmtTime, h, renderIfChanged, shortSha, table,
} from './dom.js';
import {endpointState} from './endpoint_state.js';
import {phaseChips} from './endpoints.js';
import {isEndedPhase, isLivePhase, PHASE_LABELS} from './phases.js';

const FINAL = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'];
const JOB_KIND = {COMPLETED: 'ok', FAILED: 'bad', TIMED_OUT: 'bad', CANCELLED: 'muted'};
const MAX_WORKERS = 12;

function section(title, id, ...children) {
  return h('section', {class: 'card', id}, h('h2', null, title), ...children);
}

function settings(e) {
  const gpu = `${e.gpuCount} × ${e.gpuType || 'any GPU'}`;
  const rows = [
    ['ID', h('span', {class: 'mono'}, e.id)],
    ['Model link', h('span', {class: 'mono break'}, e.model)],
    ['Repo', h('span', {class: 'mono'}, `${e.repo}@${e.revision}`)],
    ['Commit', h('span', {class: 'mono', title: e.commit}, shortSha(e.commit))],
    ['Access token', e.hasHfToken ? 'set (write-only, never shown)' : 'none'],
    ['Image', e.image ? h('span', {class: 'mono break', 'data-field': 'image'}, e.image)
      : 'none (a process on the host)'],
    ['Worker command', (e.command || []).length
      ? h('span', {class: 'mono break'}, e.command.join(' ')) : 'the image\'s entrypoint'],
    ...(e.args && e.args.length
      ? [['Arguments', h('span', {class: 'mono break'}, e.args.join(' '))]] : []),
    ...(e.image ? [['Registry credentials',
      e.hasRegistryAuth ? 'set (write-only, never shown)' : 'none']] : []),
    ['Worker env', Object.keys(e.env || {}).length
      ? h('span', {class: 'mono break'}, Object.keys(e.env).sort().join(', '))
      : 'none'],
    ['GPUs per worker', gpu],
    ['Workers', `${e.workersMin} min, ${e.workersMax} max, idle timeout ${e.idleTimeout} s`],
    ['Cached replicas', replicasText(e)],
    ...(e.rollout ? [['Commit update', h('span', {'data-field': 'rollout'},
      `${shortSha(e.rollout.from)} → ${shortSha(e.rollout.to)}: ${e.rollout.replaced} of ` +
      `${e.rollout.total} workers replaced (${e.rollout.state})`)]] : []),
    ...(e.upstreamReachable === false ? [['Upstream', 'cannot be reached: workers start only ' +
      'on hosts that hold the model']] : []),
    ['Scaler', `${e.scalerType} ${e.scalerValue}`],
    ['Execution timeout', fmtMs(e.executionTimeoutMs)],
  ];
  return h('dl', {class: 'facts'}, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

// The hosts keeping the commit for the fleet (GET /v1/endpoints/{id} "replicas"), against the
// number asked for.
function replicasText(e) {
  const kept = (e.replicas || []).map((r) =>
    `${r.hostId}${r.lost ? ' (lost)' : r.complete ? '' : ' (downloading)'}`);
  const want = e.cachedReplicas ? `${e.cachedReplicas} wanted` : 'none wanted (the last copy only)';
  return kept.length ? `${want}: ${kept.join(', ')}` : want;
}

// The phases a worker went through, from the ledger (one row per live phase), with durations.
function timeline(worker, rows) {
  const mine = rows.filter((r) => r.workerId === worker.id).sort((a, b) => a.start - b.start);
  const phases = mine.map((r) => r.phase);
  if (!isLivePhase(worker.phase) && phases[phases.length - 1] !== worker.phase) {
    phases.push(worker.phase);
  }
  const chips = mine.map((r) => h('span', {
    class: ['chip', `phase-${r.phase}`, r.billed ? 'billed' : 'unbilled'],
    title: r.billed ? 'billed' : 'not billed',
  }, `${r.phase} ${fmtMs((r.end ?? Date.now()) - r.start)}${r.billed ? '' : ' (unbilled)'}`));
  if (phases.length > mine.length) {
    chips.push(h('span', {class: ['chip', `phase-${worker.phase}`]}, worker.phase));
  }
  return {phases, node: h('span', {class: 'chips timeline'}, chips)};
}

// Why the endpoint's workers are not starting (GET /v1/endpoints/{id} "placementBackoff"): the
// last failed worker's exit code and log tail, and when the controller tries again.
function backoffNotice(b) {
  if (!b) return '';
  const facts = [
    b.exitCode === null || b.exitCode === undefined ? null : `exit code ${b.exitCode}`,
    `${b.failures} ${b.failures === 1 ? 'failure' : 'failures in a row'}`,
    `next try ${fmtTime(b.retryAt)}`,
  ].filter(Boolean).join(' · ');
  return h('div', {class: 'notice notice-bad', role: 'alert'},
    h('h2', null, 'Workers fail before they are ready'),
    h('p', {class: 'backoff-reason'}, b.reason),
    h('p', {class: 'backoff-facts'}, facts),
    b.logTail
      ? [h('p', {class: 'muted'}, 'The last lines of its log:'),
        h('pre', {class: 'output log-tail'}, b.logTail)]
      : h('p', {class: 'muted'}, 'It wrote nothing to its log.'),
    h('p', {class: 'muted'}, 'Fix the worker command or image with Edit endpoint: a change is tried at once.'));
}

// What an ended worker's phase cell adds: how it ended.
function endedNote(w) {
  if (!isEndedPhase(w.phase)) return '';
  const code = w.exitCode === null || w.exitCode === undefined ? '' : `exit code ${w.exitCode}`;
  const text = w.message || code;
  return text ? h('span', {class: 'ended-note'}, ` ${text}`) : '';
}

// The two parallel parts of an unbilled initializing phase (image pull, model download), as
// the agent measured them; '' when unknown (process workers, older agents).
function initializingParts(p) {
  if (!p || (p.imageMs == null && p.downloadMs == null)) return '';
  const image = p.imageMs == null ? '' : p.imageMs === 0 ? 'image present' : `image ${fmtMs(p.imageMs)}`;
  const model = p.downloadMs == null ? '' : `model ${fmtMs(p.downloadMs)}`;
  return ` [${[image, model].filter(Boolean).join(' ∥ ')}]`;
}

function workersTable(workers, ledger, coldStarts) {
  if (!workers.length) return h('p', {class: 'muted'}, 'No workers yet: the first request starts one.');
  const live = (w) => !isEndedPhase(w.phase);
  const sorted = [...workers].sort((a, b) =>
    (live(b) - live(a)) || (b.createdAt - a.createdAt)).slice(0, MAX_WORKERS);
  const cold = new Map(coldStarts.map((c) => [c.workerId, c]));
  return table(['Worker', 'Host', 'Phase', 'Cold start', 'Phases', 'Started'], sorted.map((w) => {
    const t = timeline(w, ledger);
    const c = cold.get(w.id);
    return {
      props: {'data-worker-id': w.id, 'data-phase': w.phase, 'data-phases': t.phases.join(' ')},
      cells: [
        h('span', {class: 'mono'}, w.id),
        w.hostId,
        [badge(PHASE_LABELS[w.phase] || w.phase, `phase-${w.phase}`),
          w.phase === 'failed' && w.message
            ? h('p', {class: 'error worker-message', 'data-field': 'message'}, w.message)
            : endedNote(w)],
        c ? `${c.cacheHit ? 'hit' : 'miss'}: ${fmtMs(c.totalMs)} (download ${fmtMs(c.downloadMs)}` +
          `${initializingParts(c.parts)}, start ${fmtMs(c.startMs)})` : (w.cacheHit ? 'hit' : 'miss'),
        t.node,
        fmtAgo(w.createdAt),
      ],
    };
  }), {class: 'workers'});
}

function jobsTable(jobs) {
  if (!jobs.length) return h('p', {class: 'muted'}, 'No jobs yet.');
  return table(['Job', 'Status', 'Created', 'Delay', 'Execution', 'Worker', 'Error'],
    jobs.map((j) => ({
      props: {'data-job-id': j.id},
      cells: [
        h('span', {class: 'mono'}, j.id),
        badge(j.status, JOB_KIND[j.status] || 'busy'),
        fmtTime(j.createdAt),
        j.delayTime === undefined ? '–' : fmtMs(j.delayTime),
        j.executionTime === undefined ? '–' : fmtMs(j.executionTime),
        j.workerId ? h('span', {class: 'mono'}, j.workerId) : '–',
        j.error ? h('span', {class: 'error-text'}, String(j.error)) : '',
      ],
    })), {class: 'jobs'});
}

function billing(seconds) {
  const billed = Number(seconds?.billed || 0);
  const unbilled = Number(seconds?.unbilled || 0);
  return [
    bar(billed + unbilled, [
      {value: billed, class: 'billed', label: `billed ${fmtSeconds(billed)}`},
      {value: unbilled, class: 'unbilled', label: `not billed ${fmtSeconds(unbilled)}`},
    ]),
    h('p', {class: 'legend-line'},
      h('span', null, h('span', {class: 'swatch billed'}), `billed ${fmtSeconds(billed)}`),
      h('span', null, h('span', {class: 'swatch unbilled'}),
        `not billed (model downloads) ${fmtSeconds(unbilled)}`)),
  ];
}

// The "send a test request" box: POST /v2/<id>/runsync {"input": ...}, then status-sync until
// the job is final.
function testRequestBox(id, signal, onSent) {
  const input = h('textarea', {id: 'test-input', rows: 4, spellcheck: 'false',
    'aria-label': 'Input (JSON)'});
  input.value = '{"prompt": "hello"}';
  const button = h('button', {type: 'submit', class: 'primary'}, 'Send (runsync)');
  const out = h('div', {id: 'test-result', 'aria-live': 'polite'});
  const form = h('form', {class: 'test-request', novalidate: true},
    h('label', {for: 'test-input'}, 'Input (JSON), sent as {"input": …}'), input, button, out);

  function show(result, note) {
    const rows = [['Status', badge(result.status, JOB_KIND[result.status] || 'busy')],
      ['Job', h('span', {class: 'mono'}, result.id)]];
    if (result.delayTime !== undefined) rows.push(['Delay', fmtMs(result.delayTime)]);
    if (result.executionTime !== undefined) rows.push(['Execution', fmtMs(result.executionTime)]);
    if (result.workerId) rows.push(['Worker', h('span', {class: 'mono'}, result.workerId)]);
    if (result.error) rows.push(['Error', h('span', {class: 'error-text'}, String(result.error))]);
    out.replaceChildren(
      h('dl', {class: 'facts', 'data-status': result.status},
        rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
      note ? h('p', {class: 'muted'}, note) : '',
      result.output !== undefined ? h('pre', {class: 'output'}, JSON.stringify(result.output, null, 2)) : '');
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let value;
    try {
      value = JSON.parse(input.value);
    } catch (e) {
      out.replaceChildren(h('p', {class: 'error'}, `The input is not valid JSON: ${e.message}`));
      return;
    }
    button.disabled = true;
    out.replaceChildren(h('p', {class: 'muted'}, 'Waiting for the result (a cold start may download the model first)…'));
    try {
      let result = await post(`/v2/${q(id)}/runsync?wait=120000`, {input: value}, {signal});
      onSent();
      while (!FINAL.includes(result.status)) {
        show(result, 'Still waiting…');
        result = await get(`/v2/${q(id)}/status-sync/${q(result.id)}?wait=60000`, {signal});
      }
      show(result);
    } catch (e) {
      if (e.name !== 'AbortError') out.replaceChildren(h('p', {class: 'error'}, `Request failed: ${e.message}`));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export function endpointPage(main, [id], ctx) {
  const aborter = new AbortController();
  const title = h('h1', {class: 'endpoint-title'}, '');
  const state = h('span', {id: 'endpoint-state'});
  const parts = {
    settings: h('div'), workers: h('div'), phases: h('div', {class: 'phase-summary'}),
    queue: h('div'), billing: h('div'), cold: h('div'), coldList: h('div'), jobs: h('div'),
    backoff: h('div', {id: 'placement-backoff'}),
  };
  const editLink = h('a', {href: `#/endpoints/${id}/edit`, class: 'button', id: 'edit-endpoint-link'},
    'Edit endpoint');
  const deleteButton = h('button', {type: 'button', class: 'danger'}, 'Delete endpoint');
  deleteButton.addEventListener('click', async () => {
    if (!window.confirm('Delete this endpoint? Its workers are stopped.')) return;
    try {
      await del(`/v1/endpoints/${q(id)}`);
      ctx.navigate('#/endpoints');
    } catch (e) {
      window.alert(`Could not delete: ${e.message}`);
    }
  });
  // A readonly key sees the endpoint but gets no buttons that would change it (the API says 403).
  const readonly = ctx.role && ctx.role() === 'readonly';
  editLink.hidden = readonly;
  deleteButton.hidden = readonly;
  main.append(
    h('p', {class: 'crumbs'}, h('a', {href: '#/endpoints'}, '← Endpoints')),
    h('div', {class: 'page-head'}, title, state, editLink),
    parts.backoff,
    h('div', {class: 'grid'},
      section('Workers', 'workers', parts.phases, parts.workers),
      section('Queue', 'queue', parts.queue),
      section('Seconds', 'billing', parts.billing),
      section('Cold starts', 'coldstarts', parts.cold, parts.coldList),
      readonly ? null
        : section('Send a test request', 'test', testRequestBox(id, aborter.signal, ctx.refreshNow)),
      section('Recent jobs', 'jobs', parts.jobs),
      section('Settings', 'settings', parts.settings, h('p', null, deleteButton))));

  async function refresh() {
    const opts = {signal: aborter.signal};
    const optional = (p) => p.catch((e) => (e instanceof ApiError && e.status !== 401 ? e : Promise.reject(e)));
    const [e, {workers}, ledger, cold, jobs] = await Promise.all([
      get(`/v1/endpoints/${q(id)}`, opts),
      get(`/v1/workers?endpoint=${q(id)}`, opts),
      optional(get(`/v1/ledger?endpoint=${q(id)}`, opts)),
      optional(get(`/v1/coldstarts?endpoint=${q(id)}`, opts)),
      optional(get(`/v1/jobs?endpoint=${q(id)}&limit=20`, opts)),
    ]);
    document.title = `${e.name} · modelcache`;
    title.textContent = e.name;
    const st = endpointState(e);
    renderIfChanged(state, JSON.stringify(st), () => badge(st.label, st.kind));
    renderIfChanged(parts.settings, JSON.stringify(e.updatedAt) + e.id, () => settings(e));
    renderIfChanged(parts.phases, JSON.stringify(e.workers), () => phaseChips(e.workers));
    renderIfChanged(parts.backoff, JSON.stringify(e.placementBackoff ?? null),
      () => backoffNotice(e.placementBackoff));
    const ledgerRows = ledger instanceof Error ? [] : ledger.ledger;
    const coldRows = cold instanceof Error ? [] : cold.coldStarts;
    renderIfChanged(parts.workers, JSON.stringify([workers, ledgerRows, coldRows, Math.floor(Date.now() / 1000)]),
      () => workersTable(workers, ledgerRows, coldRows));
    renderIfChanged(parts.queue, JSON.stringify(e.queue), () => h('p', {class: 'big'},
      `${e.queue?.inQueue ?? 0} queued · ${e.queue?.inProgress ?? 0} in progress`));
    renderIfChanged(parts.billing, JSON.stringify(e.seconds), () => billing(e.seconds));
    renderIfChanged(parts.cold, JSON.stringify(e.coldStarts), () => coldStartChart(e.coldStarts));
    renderIfChanged(parts.coldList, JSON.stringify(coldRows), () => coldRows.length
      ? h('ol', {class: 'cold-list'}, coldRows.slice(-10).map((c) => h('li', null,
        `${c.cacheHit ? 'hit' : 'miss'}: queue ${fmtMs(c.queueMs)} + download ${fmtMs(c.downloadMs)}` +
        `${initializingParts(c.parts)} + start ${fmtMs(c.startMs)} = ${fmtMs(c.totalMs)}`)))
      : '');
    renderIfChanged(parts.jobs, jobs instanceof Error ? jobs.message : JSON.stringify(jobs.jobs),
      () => (jobs instanceof Error
        ? h('p', {class: 'muted'}, `The job list is not available: ${jobs.message}`)
        : jobsTable(jobs.jobs)));
  }
  return {refresh, destroy: () => aborter.abort()};
}
