// #/new: the new endpoint form. The model link is checked as it is typed (and again when the
// access token changes) with POST /v1/models/resolve, the rules the API applies on create; the
// preview shows the resolved repo, revision, commit, file count and size.
//
// The access token is a password field. It is sent in request bodies only (resolve, create), is
// never put in the page, the URL, storage or a log, and the field is emptied once the endpoint is
// created (the API keeps it write-only: reads say only hasHfToken). The registry password is
// handled the same way (reads say only hasRegistryAuth).
import {get, post} from './api.js';
import {badge, fmtBytes, h, shortSha} from './dom.js';
import {
  endpointControls, explainResolveError, field, fillWorker, readChecked, readFields,
  readRegistryAuth, showSaveError, workerFieldset,
} from './endpoint_form.js';

const DEBOUNCE_MS = 300;

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

// The create body: the fields given (empty ones left to the API's defaults) and the token if any.
function readForm(els) {
  const body = {};
  for (const [k, v] of Object.entries(readFields(els))) {
    if (v === undefined || v === '' || (typeof v === 'object' && !Object.keys(v).length)) continue;
    body[k] = v;
  }
  if (els.token.value) body.hfToken = els.token.value;
  const auth = readRegistryAuth(els);
  if (auth) body.registryAuth = auth;
  return body;
}

export function newEndpointPage(main, params, ctx) {
  const els = endpointControls();
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
    workerFieldset(els, field('Copy worker settings from', copyFrom,
      'Optional: fills the fields below from an existing endpoint.')),
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
    fillWorker(els, e);
  });

  // ---- create ----
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.replaceChildren();
    const body = readChecked(els, error, readForm);
    if (!body) return;
    submit.disabled = true;
    try {
      const created = await post('/v1/endpoints', body, {signal: aborter.signal});
      els.token.value = '';
      els.registryPassword.value = '';
      ctx.navigate(`#/endpoints/${created.id}`);
    } catch (e) {
      if (e.name === 'AbortError') return;
      showSaveError(error, e, Boolean(body.hfToken), 'Not created');
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
      els.registryPassword.value = '';
    },
  };
}
