// The controller's public API, as any client sees it: /v1 management and the /v2 job API, with
// the API key as "Authorization: Bearer <key>". The console has no private route.
//
// The key lives in sessionStorage (this tab only, gone when it closes), never in localStorage or
// a cookie. Request bodies (which may carry an endpoint's HF token) and response bodies are never
// logged.

const KEY_NAME = 'modelcache.apiKey';

export function apiKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function setApiKey(key) {
  sessionStorage.setItem(KEY_NAME, key);
}

export function clearApiKey() {
  sessionStorage.removeItem(KEY_NAME);
}

// An error answer of the API: `status` (0 when the controller could not be reached), `code`
// ("invalid_argument", "not_found", "unauthenticated", ...) and the server's message.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
  // True when the answer is about the API key itself (not, say, a gated model's token).
  get badKey() {
    return this.status === 401 && /API key/.test(this.message);
  }
}

let onBadKey = () => {};

// Called when a request is refused for its API key (expired session, deleted key).
export function setBadKeyHandler(fn) {
  onBadKey = fn;
}

// Sends `method path` with an optional JSON body; resolves to the parsed answer, rejects with an
// ApiError. options.key: send this key instead of the session's (login); options.signal: abort.
export async function api(method, path, body, options = {}) {
  const key = options.key ?? apiKey() ?? '';
  const init = {
    method,
    headers: {Authorization: `Bearer ${key}`},
    cache: 'no-store',
    credentials: 'omit',
    signal: options.signal,
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'unavailable', 'cannot reach the controller');
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, (data && data.code) || 'unknown',
      (data && typeof data.error === 'string' && data.error) || `HTTP ${res.status}`);
    if (err.badKey && options.key === undefined) onBadKey();
    throw err;
  }
  return data;
}

export const get = (path, options) => api('GET', path, undefined, options);
export const post = (path, body, options) => api('POST', path, body, options);
export const patch = (path, body, options) => api('PATCH', path, body, options);
export const del = (path, body, options) => api('DELETE', path, body, options);

export function q(value) {
  return encodeURIComponent(value);
}
