// #/new: the new endpoint form. The model link is checked as it is typed (and again when the
// access token changes) with POST /v1/models/resolve, the rules the API applies on create; the
// preview shows the resolved repo, revision, commit, file count and size.
//
// The access token is a password field. It is sent in request bodies only (resolve, create), is
// never put in the page, the URL, storage or a log, and the field is emptied once the endpoint is
// created (the API keeps it write-only: reads say only hasHfToken).
import {ApiError, get, post} from './api.js';
import {badge, fmtBytes, h, shortSha} from './dom.js';

const DEBOUNCE_MS = 300;

function field(label, control, hint) {
  const id = control.id;
  return h('div', {class: 'field'},
    h('label', {for: id}, label),
    control,
    hint ? h('p', {class: 'hint', id: `${id}-hint`}, hint) : null);
}

function input(id, props = {}) {
  return h('input', {id, name: id, autocomplete: 'off', spellcheck: 'false', ...props});
}

// "one argument per line" → ["python3", "worker.py"]; blank lines dropped.
function lines(text) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean);
}

function parseEnv(text) {
  const env = {};
  for (const line of lines(text)) {
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`environment line "${line.slice(0, 40)}" is not NAME=value`);
    env[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return env;
}

// What a resolve error means for the person typing the link.
export function explainResolveError(e, hadToken) {
  if (!(e instanceof ApiError)) return {kind: 'error', text: `Could not check the link: ${e.message}`};
  if (e.status === 404 && /^no route/.test(e.message)) {
    return {kind: 'muted', text: 'This controller cannot check links ahead; the link is checked on create.'};
  }
  if (e.code === 'invalid_argument' || e.status === 400) {
    return {kind: 'error', title: 'Not a model link', text: e.message,
      hint: 'Use org/name, org/name@revision or a https://huggingface.co/org/name link.'};
  }
  if (e.code === 'not_found' || e.status === 404) {
    return {kind: 'error', title: 'Unknown repo or revision', text: e.message};
  }
  if (e.status === 401 || e.status === 403 || e.code === 'unauthenticated' ||
      e.code === 'permission_denied') {
    return hadToken
      ? {kind: 'error', title: 'The access token was not accepted for this repo', text: e.message,
        hint: 'Check that the token is valid and that its account was granted access to the repo.'}
      : {kind: 'error', title: 'This repo is gated or private: an access token is needed',
        text: e.message, hint: 'Paste a Hugging Face token with access to it in Access token.'};
  }
  return {kind: 'error', title: 'Could not check the link', text: e.message};
}

function previewOf(r) {
  const badges = [];
  if (r.gated) badges.push(badge(`gated${typeof r.gated === 'string' ? ` (${r.gated})` : ''}`, 'busy'));
  if (r.private) badges.push(badge('private', 'busy'));
  if (r.gated || r.private) badges.push(badge('token accepted', 'ok'));
  const fileCount = Array.isArray(r.files) ? r.files.length : r.files;
  const facts = h('dl', {class: 'facts compact'},
    h('dt', null, 'Repo'), h('dd', {class: 'mono', 'data-field': 'repo'}, r.repo),
    h('dt', null, 'Revision'), h('dd', {class: 'mono', 'data-field': 'revision'}, r.revision),
    h('dt', null, 'Commit'), h('dd', {class: 'mono', title: r.commit, 'data-field': 'commit'}, shortSha(r.commit)),
    h('dt', null, 'Files'), h('dd', {'data-field': 'files'}, String(fileCount ?? '–')),
    h('dt', null, 'Size'), h('dd', {'data-field': 'size'}, fmtBytes(r.sizeBytes)));
  const list = Array.isArray(r.files) && r.files.length
    ? h('details', {class: 'files'}, h('summary', null, 'File names'),
      h('ul', null, r.files.map((f) => h('li', {class: 'mono'},
        typeof f === 'string' ? f : `${f.path} (${fmtBytes(f.size)})`))))
    : null;
  return [h('p', {class: 'ok-text'}, '✓ Found upstream ', badges), facts, list];
}

function readForm(els) {
  const num = (el) => (el.value.trim() === '' ? undefined : Number(el.value));
  const body = {name: els.name.value.trim(), model: els.model.value.trim()};
  if (els.token.value) body.hfToken = els.token.value;
  const command = lines(els.command.value);
  if (command.length) body.command = command;
  const env = parseEnv(els.env.value);
  if (Object.keys(env).length) body.env = env;
  if (els.gpuType.value.trim()) body.gpuType = els.gpuType.value.trim();
  for (const [k, el] of [['gpuCount', els.gpuCount], ['workersMin', els.workersMin],
    ['workersMax', els.workersMax], ['idleTimeout', els.idleTimeout], ['scalerValue', els.scalerValue]]) {
    const v = num(el);
    if (v !== undefined) body[k] = v;
  }
  body.scalerType = els.scalerType.value;
  const exec = num(els.execTimeout);
  if (exec !== undefined) body.executionTimeoutMs = Math.round(exec * 1000);
  return body;
}

export function newEndpointPage(main, params, ctx) {
  const els = {
    name: input('ep-name', {required: true, maxlength: 200, placeholder: 'my-llm'}),
    model: input('ep-model', {required: true, placeholder: 'https://huggingface.co/org/name',
      'aria-describedby': 'model-preview'}),
    token: input('ep-token', {type: 'password', autocomplete: 'new-password',
      placeholder: 'hf_… (only for gated or private repos)'}),
    command: h('textarea', {id: 'ep-command', rows: 3, spellcheck: 'false',
      placeholder: 'python3\n/path/to/worker.py'}),
    env: h('textarea', {id: 'ep-env', rows: 2, spellcheck: 'false', placeholder: 'NAME=value'}),
    gpuType: input('ep-gpu-type', {placeholder: 'any'}),
    gpuCount: input('ep-gpu-count', {type: 'number', min: 0, max: 64, value: '1'}),
    workersMin: input('ep-workers-min', {type: 'number', min: 0, max: 1000, value: '0'}),
    workersMax: input('ep-workers-max', {type: 'number', min: 0, max: 1000, value: '3'}),
    idleTimeout: input('ep-idle-timeout', {type: 'number', min: 1, max: 3600, value: '5'}),
    scalerType: h('select', {id: 'ep-scaler-type'},
      h('option', {value: 'QUEUE_DELAY'}, 'QUEUE_DELAY (seconds a job waits)'),
      h('option', {value: 'REQUEST_COUNT'}, 'REQUEST_COUNT (jobs per worker)')),
    scalerValue: input('ep-scaler-value', {type: 'number', min: 0.1, step: 'any', value: '4'}),
    execTimeout: input('ep-exec-timeout', {type: 'number', min: 5, step: 'any', value: '600'}),
  };
  const copyFrom = h('select', {id: 'ep-copy'}, h('option', {value: ''}, '—'));
  const preview = h('div', {id: 'model-preview', class: 'preview', 'aria-live': 'polite'},
    h('p', {class: 'muted'}, 'Paste a model link: it is checked against the upstream as you type.'));
  const error = h('div', {id: 'form-error', class: 'error', role: 'alert'});
  const submit = h('button', {type: 'submit', class: 'primary'}, 'Create endpoint');
  const aborter = new AbortController();
  const endpoints = new Map();

  const form = h('form', {id: 'new-endpoint', class: 'card form', novalidate: true},
    h('h1', null, 'New endpoint'),
    h('fieldset', null, h('legend', null, 'Model'),
      field('Name', els.name),
      field('Model link', els.model, 'org/name, org/name@revision or a huggingface.co link (Runpod\'s …:main form too).'),
      preview,
      field('Access token', els.token, 'For gated or private repos. Stored write-only by the ' +
        'controller: never shown again, here or by the API.')),
    h('fieldset', null, h('legend', null, 'Worker'),
      field('Copy worker settings from', copyFrom, 'Optional: fills the fields below from an existing endpoint.'),
      field('Command (one argument per line)', els.command),
      field('Environment (NAME=value per line)', els.env),
      h('div', {class: 'row'}, field('GPU type', els.gpuType), field('GPUs per worker', els.gpuCount)),
      h('div', {class: 'row'}, field('Min workers', els.workersMin), field('Max workers', els.workersMax),
        field('Idle timeout (s)', els.idleTimeout)),
      h('div', {class: 'row'}, field('Scaler', els.scalerType), field('Scaler value', els.scalerValue),
        field('Execution timeout (s)', els.execTimeout))),
    error, submit);
  main.append(form);

  // ---- the link, checked as it is typed ----
  let timer = null;
  let seq = 0;
  let inFlight = null;
  async function check() {
    const model = els.model.value.trim();
    const token = els.token.value;
    seq += 1;
    const mine = seq;
    if (inFlight) inFlight.abort();
    if (!model) {
      preview.replaceChildren(h('p', {class: 'muted'}, 'Paste a model link.'));
      preview.dataset.state = 'empty';
      return;
    }
    preview.dataset.state = 'checking';
    preview.replaceChildren(h('p', {class: 'muted'}, 'Checking the link…'));
    inFlight = new AbortController();
    const body = {model};
    if (token) body.hfToken = token;
    try {
      const r = await post('/v1/models/resolve', body, {signal: inFlight.signal});
      if (mine !== seq) return;
      preview.dataset.state = 'ok';
      preview.replaceChildren(...previewOf(r).filter(Boolean));
    } catch (e) {
      if (e.name === 'AbortError' || mine !== seq) return;
      const x = explainResolveError(e, Boolean(token));
      preview.dataset.state = x.kind === 'error' ? 'error' : 'unknown';
      preview.replaceChildren(h('div', {class: x.kind === 'error' ? 'error' : 'muted'},
        x.title ? h('strong', null, `${x.title}. `) : null, x.text,
        x.hint ? h('p', {class: 'hint'}, x.hint) : null));
    }
  }
  function schedule() {
    clearTimeout(timer);
    // The last verdict is for other text now: say so at once, check after a pause in typing.
    preview.dataset.state = 'pending';
    timer = setTimeout(check, DEBOUNCE_MS);
  }
  els.model.addEventListener('input', schedule);
  els.token.addEventListener('input', () => {
    if (els.model.value.trim()) schedule();
  });

  // ---- copy the worker settings of an endpoint ----
  get('/v1/endpoints', {signal: aborter.signal}).then(({endpoints: list}) => {
    for (const e of list) {
      endpoints.set(e.id, e);
      copyFrom.append(h('option', {value: e.id}, `${e.name} (${e.id})`));
    }
  }).catch(() => {});
  copyFrom.addEventListener('change', () => {
    const e = endpoints.get(copyFrom.value);
    if (!e) return;
    els.command.value = (e.command || []).join('\n');
    els.env.value = Object.entries(e.env || {}).map(([k, v]) => `${k}=${v}`).join('\n');
    els.gpuType.value = e.gpuType || '';
    els.gpuCount.value = String(e.gpuCount);
    els.workersMin.value = String(e.workersMin);
    els.workersMax.value = String(e.workersMax);
    els.idleTimeout.value = String(e.idleTimeout);
    els.scalerType.value = e.scalerType;
    els.scalerValue.value = String(e.scalerValue);
    els.execTimeout.value = String(e.executionTimeoutMs / 1000);
  });

  // ---- create ----
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.replaceChildren();
    let body;
    try {
      body = readForm(els);
    } catch (e) {
      error.textContent = e.message;
      return;
    }
    if (!body.name) error.textContent = 'Give the endpoint a name.';
    else if (!body.model) error.textContent = 'Give the model link.';
    else if (!body.command) error.textContent = 'Give the worker command (the program a worker runs).';
    if (error.textContent) return;
    submit.disabled = true;
    try {
      const created = await post('/v1/endpoints', body, {signal: aborter.signal});
      els.token.value = '';
      ctx.navigate(`#/endpoints/${created.id}`);
    } catch (e) {
      if (e.name === 'AbortError') return;
      const x = e instanceof ApiError && e.status !== 400 ? explainResolveError(e, Boolean(body.hfToken))
        : {title: 'Not created', text: e.message};
      error.replaceChildren(x.title ? h('strong', null, `${x.title}. `) : '', x.text);
    } finally {
      submit.disabled = false;
    }
  });
  els.name.focus();
  return {
    destroy() {
      clearTimeout(timer);
      if (inFlight) inFlight.abort();
      aborter.abort();
      els.token.value = '';
    },
  };
}
