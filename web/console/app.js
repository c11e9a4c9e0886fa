// The console's shell: hash routing, login gate and polling.
//
// Each page module exports a function (main, params, ctx) that builds its DOM in `main` and
// returns {refresh, destroy} (both optional). The visible page's refresh() runs at once and then
// every POLL_MS while the tab is visible; it stops while the tab is hidden and runs again as soon
// as it is shown. A refused API key sends the user to the login page.
import {apiKey, clearApiKey, get, setBadKeyHandler} from './api.js';
import {endpointsPage} from './endpoints.js';
import {editEndpointPage} from './edit_endpoint.js';
import {endpointPage} from './endpoint.js';
import {hostsPage} from './hosts.js';
import {loginPage} from './login.js';
import {newEndpointPage} from './new_endpoint.js';

const POLL_MS = 2000;

// `needs`: what the key's role must allow (GET /v1/whoami): 'write' (member, admin) or 'admin'.
// Pages the key may not use are neither linked nor shown; the API refuses them regardless.
const routes = [
  {re: /^#\/login$/, name: 'login', page: loginPage, public: true},
  {re: /^#\/endpoints$/, name: 'endpoints', page: endpointsPage},
  {re: /^#\/endpoints\/([A-Za-z0-9_-]{1,120})$/, name: 'endpoints', page: endpointPage},
  {re: /^#\/endpoints\/([A-Za-z0-9_-]{1,120})\/edit$/, name: 'endpoints', page: editEndpointPage,
    needs: 'write'},
  {re: /^#\/new$/, name: 'new', page: newEndpointPage, needs: 'write'},
  {re: /^#\/hosts$/, name: 'hosts', page: hostsPage, needs: 'admin'},
];

// The key's role, asked once per key; null until known (or if the controller predates roles).
let role = null;
let roleFor = null;

async function loadRole() {
  const key = apiKey();
  if (!key || roleFor === key) return;
  roleFor = key;
  try {
    role = (await get('/v1/whoami')).role || null;
  } catch {
    role = null;
  }
}

function allowed(needs) {
  if (!needs || role === null) return true;
  if (needs === 'admin') return role === 'admin';
  return role !== 'readonly';
}

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const logout = document.getElementById('logout');
const status = document.getElementById('status');

let current = null;   // {refresh, destroy} of the page shown
let timer = null;
let generation = 0;   // bumps on every navigation: stale refreshes are dropped
let afterLogin = '#/endpoints';
let loginMessage = '';

function setStatus(text, kind) {
  status.textContent = text;
  status.className = `status${kind ? ` status-${kind}` : ''}`;
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// Runs the page's refresh, then schedules the next one. One refresh at a time: a tick asked for
// while one runs (a navigation, the tab shown again) runs right after it.
let busy = false;
let again = false;

async function tick() {
  clearTimeout(timer);
  timer = null;
  if (busy) {
    again = true;
    return;
  }
  const gen = generation;
  const visible = document.visibilityState === 'visible';
  if (visible && current && current.refresh) {
    busy = true;
    try {
      await current.refresh();
      if (gen === generation) setStatus(`updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (gen === generation && e.name !== 'AbortError') {
        setStatus(e.badKey ? 'key refused' : `not updated: ${e.message}`, 'error');
      }
    } finally {
      busy = false;
    }
  }
  if (again) {
    again = false;
    tick();
  } else if (document.visibilityState === 'visible' && current && current.refresh) {
    timer = setTimeout(tick, POLL_MS);
  }
}

async function route() {
  await loadRole();
  generation += 1;
  clearTimeout(timer);
  timer = null;
  if (current && current.destroy) current.destroy();
  current = null;
  const hash = location.hash || '#/endpoints';
  const match = routes.map((r) => ({r, m: r.re.exec(hash)})).find((x) => x.m);
  if (!match) {
    navigate('#/endpoints');
    return;
  }
  const loggedIn = Boolean(apiKey());
  if (!match.r.public && !loggedIn) {
    afterLogin = hash;
    navigate('#/login');
    return;
  }
  if (!allowed(match.r.needs)) {
    navigate('#/endpoints');
    return;
  }
  nav.hidden = !loggedIn;
  logout.hidden = !loggedIn;
  for (const a of nav.querySelectorAll('a')) {
    const target = routes.find((r) => r.name === a.dataset.route && !r.re.source.includes('('));
    a.hidden = Boolean(target && !allowed(target.needs));
    a.classList.toggle('active', a.dataset.route === match.r.name);
    if (a.dataset.route === match.r.name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  setStatus('');
  main.replaceChildren();
  const ctx = {
    navigate,
    role: () => role,  // 'admin', 'member', 'readonly' or null (unknown)
    refreshNow: () => tick(),
    afterLogin: () => afterLogin,
    loginMessage: () => {
      const m = loginMessage;
      loginMessage = '';
      return m;
    },
  };
  current = match.r.page(main, match.m.slice(1), ctx) || {};
  tick();
}

setBadKeyHandler(() => {
  clearApiKey();
  if (location.hash !== '#/login') {
    afterLogin = location.hash || '#/endpoints';
    loginMessage = 'The controller refused the API key: log in again.';
    navigate('#/login');
  }
});

logout.addEventListener('click', () => {
  clearApiKey();
  afterLogin = '#/endpoints';
  navigate('#/login');
});

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') tick();
});

window.addEventListener('hashchange', route);
route();
