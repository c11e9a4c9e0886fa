// What the new endpoint form (new_endpoint.js) and the edit form (edit_endpoint.js) share: the
// fields and their layout, reading them into the API's create/PATCH fields, filling them from an
// endpoint, and what a refused model link or token means.
import {ApiError} from './api.js';
import {h} from './dom.js';

export function field(label, control, hint) {
  const id = control.id;
  return h('div', {class: 'field'},
    h('label', {for: id}, label),
    control,
    hint ? h('p', {class: 'hint', id: `${id}-hint`}, hint) : null);
}

export function input(id, props = {}) {
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

// The form's controls, ids prefixed "ep-" (the tests and the labels rely on them).
export function endpointControls() {
  return {
    name: input('ep-name', {required: true, maxlength: 200, placeholder: 'my-llm'}),
    model: input('ep-model', {required: true, placeholder: 'https://huggingface.co/org/name',
      'aria-describedby': 'model-preview'}),
    token: input('ep-token', {type: 'password', autocomplete: 'new-password',
      placeholder: 'hf_… (only for gated or private repos)'}),
    image: input('ep-image', {placeholder: 'registry.example:5000/org/worker:1'}),
    command: h('textarea', {id: 'ep-command', rows: 3, spellcheck: 'false',
      placeholder: 'python3\n/path/to/worker.py'}),
    args: h('textarea', {id: 'ep-args', rows: 2, spellcheck: 'false', placeholder: '--port\n8000'}),
    registryUser: input('ep-registry-user', {placeholder: 'only for a private registry'}),
    registryPassword: input('ep-registry-password', {type: 'password', autocomplete: 'new-password',
      placeholder: 'password or access token'}),
    env: h('textarea', {id: 'ep-env', rows: 2, spellcheck: 'false', placeholder: 'NAME=value'}),
    gpuType: input('ep-gpu-type', {placeholder: 'any'}),
    gpuCount: input('ep-gpu-count', {type: 'number', min: 0, max: 64, value: '1'}),
    workersMin: input('ep-workers-min', {type: 'number', min: 0, max: 1000, value: '0'}),
    workersMax: input('ep-workers-max', {type: 'number', min: 0, max: 1000, value: '3'}),
    idleTimeout: input('ep-idle-timeout', {type: 'number', min: 1, max: 3600, value: '5'}),
    cachedReplicas: input('ep-cached-replicas', {type: 'number', min: 0, max: 64, value: '0'}),
    scalerType: h('select', {id: 'ep-scaler-type'},
      h('option', {value: 'QUEUE_DELAY'}, 'QUEUE_DELAY (seconds a job waits)'),
      h('option', {value: 'REQUEST_COUNT'}, 'REQUEST_COUNT (jobs per worker)')),
    scalerValue: input('ep-scaler-value', {type: 'number', min: 0.1, step: 'any', value: '4'}),
    execTimeout: input('ep-exec-timeout', {type: 'number', min: 5, step: 'any', value: '600'}),
  };
}

// The "Worker" fieldset; `first` goes before the fields (the new form's "copy from").
// `registry` goes after the registry fields (the edit form's "remove" box).
export function workerFieldset(els, first = null, registry = null) {
  return h('fieldset', null, h('legend', null, 'Worker'),
    first,
    field('Image', els.image, 'The worker\'s OCI image (tag or @sha256 digest), run as a ' +
      'container with only the endpoint\'s models mounted. Empty: the command runs as a process ' +
      '(hosts in development mode).'),
    field('Command (one argument per line)', els.command, 'With an image: replaces its ' +
      'ENTRYPOINT (empty keeps it). Without: the program a worker runs.'),
    field('Arguments (one per line)', els.args, 'With an image: replace its CMD (Runpod\'s ' +
      'container start command). Empty keeps it.'),
    h('div', {class: 'row'}, field('Registry username', els.registryUser),
      field('Registry password', els.registryPassword)),
    h('p', {class: 'hint'}, 'Registry credentials are only for a private image. Stored ' +
      'write-only by the controller: never shown again, here or by the API.'),
    registry,
    field('Environment (NAME=value per line)', els.env),
    h('div', {class: 'row'}, field('GPU type', els.gpuType), field('GPUs per worker', els.gpuCount)),
    h('div', {class: 'row'}, field('Min workers', els.workersMin), field('Max workers', els.workersMax),
      field('Idle timeout (s)', els.idleTimeout)),
    field('Cached replicas', els.cachedReplicas, 'Hosts of the GPU type that keep the model ' +
      'downloaded even with no worker, so a scale-up from zero is a cache hit. 0: only the ' +
      'fleet\'s last copy is kept.'),
    h('div', {class: 'row'}, field('Scaler', els.scalerType), field('Scaler value', els.scalerValue),
      field('Execution timeout (s)', els.execTimeout)));
}

// Fills the worker fields from an endpoint as the API shows it.
export function fillWorker(els, e) {
  els.image.value = e.image || '';
  els.command.value = (e.command || []).join('\n');
  els.args.value = (e.args || []).join('\n');
  els.env.value = Object.entries(e.env || {}).map(([k, v]) => `${k}=${v}`).join('\n');
  els.gpuType.value = e.gpuType || '';
  els.gpuCount.value = String(e.gpuCount);
  els.workersMin.value = String(e.workersMin);
  els.workersMax.value = String(e.workersMax);
  els.idleTimeout.value = String(e.idleTimeout);
  els.cachedReplicas.value = String(e.cachedReplicas ?? 0);
  els.scalerType.value = e.scalerType;
  els.scalerValue.value = String(e.scalerValue);
  els.execTimeout.value = String(e.executionTimeoutMs / 1000);
}

// Every field but the secrets, as the API names them: command [] / args [] / env {} / image and
// gpuType '' when empty,
// a number undefined when its field is. Throws on an environment line that is not NAME=value.
export function readFields(els) {
  const num = (el) => (el.value.trim() === '' ? undefined : Number(el.value));
  const exec = num(els.execTimeout);
  return {
    name: els.name.value.trim(),
    model: els.model.value.trim(),
    image: els.image.value.trim(),
    command: lines(els.command.value),
    args: lines(els.args.value),
    env: parseEnv(els.env.value),
    gpuType: els.gpuType.value.trim(),
    gpuCount: num(els.gpuCount),
    workersMin: num(els.workersMin),
    workersMax: num(els.workersMax),
    idleTimeout: num(els.idleTimeout),
    cachedReplicas: num(els.cachedReplicas),
    scalerType: els.scalerType.value,
    scalerValue: num(els.scalerValue),
    executionTimeoutMs: exec === undefined ? undefined : Math.round(exec * 1000),
  };
}

// What both forms refuse before asking the API; '' when nothing.
function missingField(body) {
  if (!body.name) return 'Give the endpoint a name.';
  if (!body.model) return 'Give the model link.';
  if (!body.image && (!body.command || !body.command.length)) {
    return 'Give the worker image (or, for hosts that run processes, the worker command).';
  }
  if (!body.image && body.args && body.args.length) {
    return 'Arguments replace the image\'s CMD: give an image, or put the whole argv in Command.';
  }
  return '';
}

// Reads a form with `read` (readFields, or the new form's body) and checks what both forms refuse:
// the fields, or null with the reason shown in `error`.
export function readChecked(els, error, read = readFields) {
  let fields;
  try {
    fields = read(els);
  } catch (e) {
    error.textContent = e.message;
    return null;
  }
  error.textContent = missingField(fields);
  return error.textContent ? null : fields;
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

// The registryAuth typed in the form, or undefined when the username field is empty. The
// password is read from its field only here and never kept.
export function readRegistryAuth(els) {
  const username = els.registryUser.value.trim();
  if (!username) return undefined;
  return {username, password: els.registryPassword.value};
}

// A refused create or edit, in `error`: a 400 says what is wrong with a value as the API put it;
// a refused token or an unknown repo is explained as for the link check.
export function showSaveError(error, e, hadToken, verb) {
  const x = e instanceof ApiError && e.status !== 400 ? explainResolveError(e, hadToken)
    : {title: verb, text: e.message};
  error.replaceChildren(x.title ? h('strong', null, `${x.title}. `) : '', x.text);
}
