// #/login: asks for the API key, checks it against the controller and keeps it for the session.
import {ApiError, get, setApiKey} from './api.js';
import {h} from './dom.js';

export function loginPage(main, params, ctx) {
  const input = h('input', {
    id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, placeholder: 'mc_…', 'aria-describedby': 'api-key-hint',
  });
  const error = h('p', {class: 'error', role: 'alert', id: 'login-error'});
  const button = h('button', {type: 'submit', class: 'primary'}, 'Log in');
  const message = ctx.loginMessage();
  if (message) error.textContent = message;

  const form = h('form', {class: 'card narrow', id: 'login-form', novalidate: true},
    h('h1', null, 'Log in'),
    h('label', {for: 'api-key'}, 'API key'),
    input,
    h('p', {class: 'hint', id: 'api-key-hint'},
      'The controller\'s API key: with modelcache up it is in <data-dir>/api-key ',
      '(demo-data/up/api-key after ./dev run); otherwise make one with ',
      h('code', null, 'modelcache keys create'),
      '. It is kept in this tab only (session storage) and sent to this controller alone.'),
    error,
    button);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    error.textContent = '';
    if (!key) {
      error.textContent = 'Paste the API key.';
      return;
    }
    button.disabled = true;
    try {
      await get('/v1/endpoints', {key});
      setApiKey(key);
      input.value = '';
      const next = ctx.afterLogin();
      ctx.navigate(next === '#/login' ? '#/endpoints' : next);
    } catch (e) {
      error.textContent = e instanceof ApiError && e.status === 401
        ? 'This key was not accepted by the controller.'
        : `Could not log in: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  });
  main.append(form);
  input.focus();
  return {};
}
