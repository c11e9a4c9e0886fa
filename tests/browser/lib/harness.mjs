// What every browser test file shares: the real `modelcache up --demo` in a temp dir, headless
// Debian Chromium through playwright-core, ordered steps, screenshots, and a recorder of all the
// page showed, logged, stored and received (for the "never shows a token" checks).
// Nothing here talks to anything but 127.0.0.1.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { access, constants, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, it } from "node:test";

import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, "..", "..", "..");
export const CHROMIUM = "/usr/bin/chromium";
export const WORKER_SCRIPT = join(REPO_ROOT, "examples", "runpod_worker.py");
export const OUT_DIR = join(process.env.MODELCACHE_TEST_OUT || join(REPO_ROOT, "build", "test-output"), "console");

// Ordered steps over one state object: a `critical` step's failure fails every later step with
// its reason (nothing is skipped silently).
export function makeSteps() {
  let blocker = null;
  return function step(name, fn, { critical = false, ...opts } = {}) {
    it(name, opts, async () => {
      if (blocker) assert.fail(`not run because an earlier step failed: ${blocker}`);
      try {
        await fn();
      } catch (err) {
        if (critical) blocker = `${name}: ${String(err.message).split("\n")[0]}`;
        throw err;
      }
    });
  };
}

export async function modelcacheBinary() {
  const path = resolve(process.env.MODELCACHE_BIN || join(REPO_ROOT, "build", "src", "cli", "modelcache"));
  try {
    await access(path, constants.X_OK);
  } catch {
    assert.fail(`modelcache binary not found at ${path}: build it (make build) or set MODELCACHE_BIN`);
  }
  return path;
}

// A suite's shared state `s`, set up once: s.bin (the binary) and s.root (a temp dir named
// `prefix`...) before the first step; the browser, `up` and the temp dir closed after the last.
export function suiteLifecycle(s, prefix) {
  before(async () => {
    s.bin = await modelcacheBinary();
    s.root = await tempRoot(prefix);
  });
  after(async () => {
    if (s.browser) await s.browser.close();
    if (s.up) await s.up.stop();
    await removeRoot(s.root);
  });
}

// The environment for modelcache: the caller's minus every Hub setting that could reach a real
// hub or cache.
export function hermeticEnv(root) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(HF_|HUGGING_?FACE|TRANSFORMERS_|MODELCACHE_)/.test(k)) env[k] = v;
  }
  env.HF_HOME = join(root, "hf-home");
  return env;
}

export async function tempRoot(prefix) {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeRoot(root) {
  if (!root) return;
  if (process.env.MODELCACHE_KEEP_TMP) console.log(`kept ${root}`);
  else await rm(root, { recursive: true, force: true });
}

// Runs a modelcache command to completion; rejects on a non-zero exit.
export function run(bin, args, env) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolvePromise(out)
      : reject(new Error(`modelcache ${args.join(" ")}: exit ${code}\n${out}`))));
  });
}

// Starts `modelcache up --demo --listen 127.0.0.1:0 ...` from the repository root and waits for
// its "endpoint <id>" line (after "controller listening on <url>" and the demo job). Resolves
// {url, demoEndpointId, key, demoToken, stop()}; stop() sends SIGTERM (up stops its workers) and
// waits for the exit (SIGKILL after 60 s). `runtime` is up's --runtime: the suites create
// endpoints whose workers are the example script run as a process, so "process" unless a suite
// asks for containers.
export function startUp(bin, { root, extraArgs = [], timeoutMs = 90_000, runtime = "process" }) {
  const data = join(root, "up-data");
  const args = ["up", "--demo", "--data-dir", data, "--listen", "127.0.0.1:0",
    "--worker-script", WORKER_SCRIPT, "--runtime", runtime, ...extraArgs];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { env: hermeticEnv(root), cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let settled = false;
    const exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
    const killOnExit = () => child.kill("SIGKILL");
    process.on("exit", killOnExit);
    let stopping = null;
    const stop = () => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
        const force = setTimeout(() => child.kill("SIGKILL"), 60_000);
        const r = await exited;
        clearTimeout(force);
        process.off("exit", killOnExit);
        return r;
      })();
      return stopping;
    };
    const output = () => `stdout:\n${stdout.slice(-3000)}\nstderr:\n${stderr.slice(-5000)}`;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stop();
      reject(new Error(`modelcache up: ${why}\n${output()}`));
    };
    const timer = setTimeout(() => fail(`no 'endpoint <id>' line within ${timeoutMs} ms`), timeoutMs);
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.stdout.setEncoding("utf8").on("data", async (d) => {
      stdout += d;
      if (settled) return;
      const url = /^controller listening on (http:\/\/127\.0\.0\.1:[1-9][0-9]*)$/m.exec(stdout);
      const ep = /^endpoint (\S+)$/m.exec(stdout);
      if (!url || !ep) return;
      settled = true;
      clearTimeout(timer);
      try {
        const key = (await readFile(join(data, "api-key"), "utf8")).trim();
        const demoToken = (await readFile(join(data, "demo-hf-token"), "utf8")).trim();
        resolvePromise({ url: url[1], demoEndpointId: ep[1], key, demoToken, data, stop, output });
      } catch (err) {
        stop();
        reject(err);
      }
    });
    child.on("error", (err) => fail(`cannot start: ${err.message}`));
    exited.then(({ code, signal }) => fail(`exited early (code ${code}, signal ${signal})`));
  });
}

// The controller's API, for setup and for checking what the page shows against the source.
export async function apiCall(up, method, path, body) {
  const res = await fetch(`${up.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${up.key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, json, text };
}

// Headless Debian Chromium and a page whose console messages, page errors and every response
// body are recorded.
export async function openBrowser({ width = 1280, height = 900 } = {}) {
  try {
    await access(CHROMIUM, constants.X_OK);
  } catch {
    assert.fail(`${CHROMIUM} is missing: tools/setup-debian.sh installs Debian's chromium`);
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu"],
  });
  return { browser, ...(await openPage(browser, { width, height })) };
}

// One more recorded page in a context (a window) of its own: its own session storage (log in
// again) and always visible, so that it keeps polling beside the first.
export async function openPage(browser, { width = 1280, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const rec = { console: [], errors: [], bodies: [], requests: [] };
  page.on("console", (m) => rec.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => rec.errors.push(String(e)));
  page.on("request", (r) => rec.requests.push(`${r.method()} ${r.url()}`));
  page.on("response", async (r) => {
    try {
      rec.bodies.push({ url: r.url(), status: r.status(), body: await r.text() });
    } catch {
      // a redirect or an aborted request has no body
    }
  });
  return { context, page, rec };
}

// A full-page screenshot to OUT_DIR/<name>.png; returns its path.
export async function screenshot(page, name) {
  await mkdir(OUT_DIR, { recursive: true });
  const path = join(OUT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

// Logs in through the login page with `key`.
export async function login(page, up) {
  await page.goto(`${up.url}/`);
  await page.waitForURL(/\/console\/#\/login$/);
  await page.fill("#api-key", up.key);
  await page.click("#login-form button[type=submit]");
  await page.waitForURL(/#\/endpoints$/);
}

// Polls fn() until it returns a truthy value (at most timeoutMs); resolves that value.
export async function eventually(fn, { timeoutMs = 30_000, intervalMs = 100, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`${what} not reached within ${timeoutMs} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
