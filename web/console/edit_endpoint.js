// #/endpoints/<id>/edit: the endpoint's settings in the new endpoint form's fields, prefilled from
// GET /v1/endpoints/{id}; Save sends only the fields that changed with PATCH /v1/endpoints/{id}
// (a changed model or token makes the API resolve the model again) and returns to the endpoint.
// A refused edit leaves the endpoint as it was and shows the API's message next to the form.
//
// The access token is write-only: the field starts empty, meaning "keep the current token"; a
// token typed there replaces it, and "Remove the token" sends hfToken: null. The typed token is
// sent in the PATCH body only, never put in the page, the URL, storage or a log, and the field is
// emptied when the page goes. Registry credentials work the same way ("Remove the registry
// credentials" sends registryAuth: null).
import {get, patch, q} from './api.js';
import {h} from './dom.js';
import {
  endpointControls, field, fillWorker, input, readChecked, readFields, readRegistryAuth,
  showSaveError, workerFieldset,
} from './endpoint_form.js';

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

export function editEndpointPage(main, [id], ctx) {
  const aborter = new AbortController();
  const back = `#/endpoints/${id}`;
  const els = endpointControls();
  els.token.placeholder = 'leave empty to keep the current token';
  const removeToken = input('ep-token-remove', {type: 'checkbox'});
  const tokenState = h('p', {class: 'hint', id: 'ep-token-state'}, '');
  els.registryUser.placeholder = 'leave empty to keep the current credentials';
  const removeRegistry = input('ep-registry-remove', {type: 'checkbox'});
  const registryState = h('p', {class: 'hint', id: 'ep-registry-state'}, '');
  const error = h('div', {id: 'form-error', class: 'error', role: 'alert'});
  const submit = h('button', {type: 'submit', class: 'primary', disabled: true}, 'Save changes');
  const cancel = h('a', {href: back, class: 'button'}, 'Cancel');
  const title = h('h1', null, 'Edit endpoint');
  const form = h('form', {id: 'edit-endpoint', class: 'card form', novalidate: true},
    title,
    h('fieldset', null, h('legend', null, 'Model'),
      field('Name', els.name),
      field('Model link', els.model, 'Changing it (or the token) makes the controller resolve the ' +
        'model again; the change is refused if the repo cannot be reached with the token.'),
      field('Access token', els.token, 'Empty keeps the current token. Write-only: never shown.'),
      tokenState,
      h('div', {class: 'field check'}, removeToken,
        h('label', {for: 'ep-token-remove'}, 'Remove the token'))),
    workerFieldset(els, null, [registryState, h('div', {class: 'field check'}, removeRegistry,
      h('label', {for: 'ep-registry-remove'}, 'Remove the registry credentials'))]),
    error, h('p', {class: 'form-actions'}, submit, cancel));
  main.append(h('p', {class: 'crumbs'}, h('a', {href: back}, '← Endpoint')), form);
  removeToken.addEventListener('change', () => {
    els.token.disabled = removeToken.checked;
    if (removeToken.checked) els.token.value = '';
  });
  removeRegistry.addEventListener('change', () => {
    els.registryUser.disabled = els.registryPassword.disabled = removeRegistry.checked;
    if (removeRegistry.checked) els.registryUser.value = els.registryPassword.value = '';
  });

  let before = null;  // the fields as the endpoint had them
  get(`/v1/endpoints/${q(id)}`, {signal: aborter.signal}).then((e) => {
    document.title = `Edit ${e.name} · modelcache`;
    title.textContent = `Edit ${e.name}`;
    els.name.value = e.name;
    els.model.value = e.model;
    fillWorker(els, e);
    tokenState.textContent = e.hasHfToken ? 'A token is set.' : 'No token is set.';
    removeToken.disabled = !e.hasHfToken;
    registryState.textContent = e.hasRegistryAuth ? 'Registry credentials are set.'
      : 'No registry credentials are set.';
    removeRegistry.disabled = !e.hasRegistryAuth;
    before = readFields(els);
    submit.disabled = false;
  }).catch((e) => {
    if (e.name !== 'AbortError') error.textContent = `Could not load the endpoint: ${e.message}`;
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!before) return;
    error.replaceChildren();
    const now = readChecked(els, error);
    if (!now) return;
    const body = {};
    for (const [k, v] of Object.entries(now)) {
      if (v !== undefined && !same(v, before[k])) body[k] = v;
    }
    if (removeToken.checked) body.hfToken = null;
    else if (els.token.value) body.hfToken = els.token.value;
    const auth = readRegistryAuth(els);
    if (removeRegistry.checked) body.registryAuth = null;
    else if (auth) body.registryAuth = auth;
    if (!Object.keys(body).length) {
      ctx.navigate(back);
      return;
    }
    submit.disabled = true;
    try {
      await patch(`/v1/endpoints/${q(id)}`, body, {signal: aborter.signal});
      els.token.value = '';
      els.registryPassword.value = '';
      ctx.navigate(back);
    } catch (e) {
      if (e.name === 'AbortError') return;
      showSaveError(error, e, typeof body.hfToken === 'string', 'Not saved');
    } finally {
      submit.disabled = false;
    }
  });
  return {
    destroy() {
      aborter.abort();
      els.token.value = '';
      els.registryPassword.value = '';
    },
  };
}
