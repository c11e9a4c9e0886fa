// The console's security promises, in headless Chromium against a real `modelcache up --demo`:
// hostile text is shown as text, never run (an endpoint named "<img src=x onerror=...>" created
// through the form; a host whose id, cached model name and pin owner are markup; a model link
// that is markup, echoed in the error; a repo upstream with a file whose name is markup), the
// page is served with its CSP and other headers and is public while its data needs the key;
// polling stops while the tab is hidden. Also: a hosts answer without `pinnedBy` (an older
// controller) still shows the pin count and both Pin and Unpin.
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { describe } from "node:test";

import {
  apiCall, login, makeSteps, openBrowser, openPage, run, screenshot, startUp, suiteLifecycle,
  WORKER_SCRIPT,
} from "./lib/harness.mjs";

const step = makeSteps();
const s = {};
const XSS_NAME = "<img src=x onerror=window.__xss=1>";
const XSS_MODEL = "<img src=x onerror=window.__xss=2>";
const XSS_HOST = "<svg onload=window.__xss=3>";
const XSS_LINK = "<img src=x onerror=window.__xss=4>";
const XSS_FILE = "<img src=x onerror=window.__xss=5>.json";
const XSS_WORKER = "<img src=x onerror=window.__xss=6>";

// The status of GET `path`, sent byte for byte.
function rawStatus(base, path) {
  const { hostname, port } = new URL(base);
  return new Promise((resolvePromise, reject) => {
    const req = request({ hostname, port, path, method: "GET" }, (res) => {
      res.resume();
      resolvePromise(res.statusCode);
    });
    req.on("error", reject);
    req.end();
  });
}

async function assertNoInjection(where) {
  const state = await s.page.evaluate(() => ({
    xss: window.__xss,
    imgs: document.querySelectorAll("main img").length,
    svgOnload: [...document.querySelectorAll("svg")].some((e) => e.hasAttribute("onload")),
  }));
  assert.equal(state.xss, undefined, `${where}: injected script ran`);
  assert.equal(state.imgs, 0, `${where}: an <img> was parsed from data`);
  assert.equal(state.svgOnload, false, `${where}: an <svg onload> was parsed from data`);
}

describe("web console security", { concurrency: false, timeout: 150_000 }, () => {
  suiteLifecycle(s, "modelcache-console-sec-");

  step("up --demo starts with an upstream repo holding a file named like markup", async () => {
    // demo/xss-files: a model folder with a hostile file name, imported into the demo upstream's
    // cache before `up` starts (the demo mirror serves every repo of that cache).
    const src = join(s.root, "xss-src");
    await mkdir(src, { recursive: true });
    await writeFile(join(src, "config.json"), '{"model_type": "llama"}\n');
    await writeFile(join(src, XSS_FILE), "{}\n");
    await run(s.bin, ["import", src, "--repo", "demo/xss-files", "--cache-dir",
      join(s.root, "up-data", "upstream")], process.env);
    s.up = await startUp(s.bin, { root: s.root });
    Object.assign(s, await openBrowser());
  }, { critical: true, timeout: 120_000 });

  step("the page is public and served with its CSP; the data needs the key", async () => {
    const res = await fetch(`${s.up.url}/console/`);
    assert.equal(res.status, 200);
    const csp = res.headers.get("content-security-policy");
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(res.headers.get("referrer-policy"), "no-referrer");
    const root = await fetch(`${s.up.url}/`, { redirect: "manual" });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get("location"), "/console/");
    assert.equal((await fetch(`${s.up.url}/v1/endpoints`)).status, 401);
    // Sent as is (fetch would normalise the dots away): a lookup in the embedded files, never a path.
    for (const path of ["/console/../api-key", "/console/%2e%2e/api-key", "/console/..%2fapi-key"]) {
      assert.equal(await rawStatus(s.up.url, path), 404, path);
    }
  });

  step("an endpoint named like markup, created through the form, is shown as text", async () => {
    await login(s.page, s.up);
    await s.page.click("nav a[data-route=new]");
    await s.page.fill("#ep-name", XSS_NAME);
    await s.page.fill("#ep-model", "demo/tiny-llama");
    await s.page.fill("#ep-command", `python3\n${WORKER_SCRIPT}`);
    await s.page.waitForFunction(() => document.getElementById("model-preview").dataset.state === "ok");
    await s.page.click("#new-endpoint button[type=submit]");
    await s.page.waitForURL(/#\/endpoints\/[A-Za-z0-9_-]+$/);
    await s.page.locator("h1.endpoint-title").filter({ hasText: XSS_NAME }).waitFor();
    assert.equal(await s.page.locator("h1.endpoint-title").textContent(), XSS_NAME);
    await assertNoInjection("endpoint detail");
    await screenshot(s.page, "xss-endpoint");
    await s.page.click("nav a[data-route=endpoints]");
    await s.page.locator("a.endpoint-name").filter({ hasText: XSS_NAME }).waitFor();
    await assertNoInjection("endpoint list");
    await screenshot(s.page, "xss-endpoints");
  });

  step("a model link that is markup is echoed as text in the error", async () => {
    await s.page.click("nav a[data-route=new]");
    await s.page.fill("#ep-model", XSS_LINK);
    await s.page.waitForFunction(() => document.getElementById("model-preview").dataset.state === "error");
    assert.match(await s.page.locator("#model-preview").innerText(), /Not a model link/);
    await assertNoInjection("link preview");
    await screenshot(s.page, "xss-link");
  });

  step("a repo with a file named like markup resolves; the name is never parsed", async () => {
    await s.page.fill("#ep-model", "demo/xss-files");
    await s.page.waitForFunction(() => document.getElementById("model-preview").dataset.state === "ok");
    const preview = await s.page.locator("#model-preview").innerText();
    assert.match(preview, /demo\/xss-files/);
    if (await s.page.locator("#model-preview details.files").count()) {
      await s.page.click("#model-preview details.files summary");
      assert.match(await s.page.locator("#model-preview details.files").innerText(), /<img src=x onerror/);
    }
    await assertNoInjection("file list");
  });

  step("the page polls every 2 s while visible, not at all while hidden, and at once when shown", async () => {
    // A second tab with Playwright's fake clock: time moves only when the test says so.
    const page = await s.context.newPage();
    try {
      await page.clock.install();
      await login(page, s.up);
      await page.click("nav a[data-route=hosts]");
      await page.locator("section.host").first().waitFor();
      const polls = [];
      page.on("request", (r) => {
        if (new URL(r.url()).pathname === "/v1/hosts") polls.push(r.url());
      });
      const next = page.waitForRequest((r) => new URL(r.url()).pathname === "/v1/hosts");
      await page.clock.runFor(2_100);
      await next;
      await page.evaluate(() => {
        Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
        document.dispatchEvent(new Event("visibilitychange"));
      });
      await page.waitForLoadState("networkidle");
      const hiddenFrom = polls.length;
      await page.clock.runFor(20_000);
      await page.waitForLoadState("networkidle");
      assert.equal(polls.length, hiddenFrom, "polled while hidden");
      const shown = page.waitForRequest((r) => new URL(r.url()).pathname === "/v1/hosts");
      await page.evaluate(() => {
        Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
        document.dispatchEvent(new Event("visibilitychange"));
      });
      await shown;
    } finally {
      await page.close();
    }
  });

  step("a host whose id, cached model and pin owner are markup is shown as text on the hosts page", async () => {
    // A host document as an agent sends it, with the credential of its enrollment (the API accepts
    // any text for models and pin owners; host ids are [A-Za-z0-9._-], so the hosts answer is
    // rewritten below to carry a hostile one: the page must still show it as text).
    const enrolled = await apiCall(s.up, "POST", "/v1/hosts/enroll", { hostId: "xss-host" });
    assert.equal(enrolled.status, 200, enrolled.text);
    const doc = {
      host_id: "xss-host", url: "http://127.0.0.1:9", gpu_type: "none", gpus: { total: 0, free: 0 },
      disk: { capacity_bytes: 1 << 30, used_bytes: 1 << 20, reserved_bytes: 0 },
      snapshots: [{ model: XSS_MODEL, commit: "c".repeat(40), size_bytes: 1 << 20, complete: true,
        files: 1, pins: ["operator", `worker:${XSS_WORKER}`] }],
      downloads: [{ model: XSS_MODEL, progress: { bytes_done: 10, bytes_total: 100, bytes_per_second: 5 } }],
    };
    const r = await fetch(`${s.up.url}/v1/hosts/register`, {
      method: "POST",
      headers: { Authorization: `Bearer ${enrolled.json.credential}`, "Content-Type": "application/json" },
      body: JSON.stringify(doc),
    });
    assert.equal(r.status, 200, await r.text());
    await s.page.route("**/v1/hosts", async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      for (const h of body.hosts) if (h.id === "xss-host") h.id = XSS_HOST;
      await route.fulfill({ response: res, json: body });
    });
    await s.page.click("nav a[data-route=hosts]");
    const host = s.page.locator("section.host h2").filter({ hasText: XSS_HOST });
    await host.waitFor();
    assert.equal(await host.textContent(), XSS_HOST);
    await s.page.locator(".model-name").filter({ hasText: XSS_MODEL }).waitFor();
    const row = s.page.locator("section.host")
      .filter({ has: s.page.locator("h2", { hasText: XSS_HOST }) }).locator("tr[data-model]");
    assert.deepEqual(await row.locator(".pin-owner").evaluateAll((os) => os.map((o) => o.textContent)),
      ["operator", `worker ${XSS_WORKER}`]);
    assert.equal(await row.locator(`.pin-owner[data-owner="worker:${XSS_WORKER}"]`).count(), 1);
    assert.deepEqual(await row.locator("button[data-action]").evaluateAll(
      (bs) => bs.map((b) => `${b.dataset.action}${b.disabled ? " (disabled)" : ""}`)), ["unpin", "evict (disabled)"]);
    assert.match(await row.locator('button[data-action="evict"]').getAttribute("title"),
      /^Pinned by operator, worker <img src=x onerror=window.__xss=6>: /);
    await assertNoInjection("hosts");
    await screenshot(s.page, "xss-hosts");
    assert.deepEqual(s.rec.errors, [], "page errors");
  });

  step("a hosts answer without pinnedBy (an older controller): the count, Pin and Unpin both", async () => {
    // The same host, its answer as a controller that does not list pin owners gives it.
    await s.page.unroute("**/v1/hosts");
    await s.page.route("**/v1/hosts", async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      for (const h of body.hosts) {
        if (h.id === "xss-host") h.id = XSS_HOST;
        for (const snap of h.snapshots) delete snap.pinnedBy;
      }
      await route.fulfill({ response: res, json: body });
    });
    try {
      await s.page.goto(`${s.up.url}/console/#/endpoints`);
      await s.page.click("nav a[data-route=hosts]");
      const host = s.page.locator("section.host").filter({ has: s.page.locator("h2", { hasText: XSS_HOST }) });
      const row = host.locator("tr[data-model]");
      await row.waitFor();
      assert.equal((await row.locator(".pins").innerText()).trim(), "2 pins");
      assert.equal(await row.locator(".pin-owner").count(), 0);
      assert.equal(await row.getAttribute("data-operator-pin"), "unknown");
      assert.deepEqual(await row.locator("button[data-action]").evaluateAll(
        (bs) => bs.map((b) => `${b.dataset.action}${b.disabled ? " (disabled)" : ""}`)),
      ["pin", "unpin", "evict (disabled)"]);
      await screenshot(s.page, "hosts-without-pinned-by");
    } finally {
      await s.page.unroute("**/v1/hosts");
    }
    assert.deepEqual(s.rec.errors, [], "page errors");
  });

  step("a readonly key sees its tenant's endpoints but no Hosts, New endpoint, Edit or Delete", async () => {
    const made = await apiCall(s.up, "POST", "/v1/keys", { name: "reader", role: "readonly" });
    assert.equal(made.status, 200, made.text);
    const { context, page, rec } = await openPage(s.browser);
    try {
      await login(page, { url: s.up.url, key: made.json.key });
      await page.locator("a.endpoint-name").filter({ hasText: XSS_NAME }).waitFor();
      assert.equal(await page.locator("nav a[data-route=hosts]").isHidden(), true);
      assert.equal(await page.locator("nav a[data-route=new]").isHidden(), true);
      await page.locator("a.endpoint-name").filter({ hasText: XSS_NAME }).click();
      await page.locator("h1.endpoint-title").filter({ hasText: XSS_NAME }).waitFor();
      assert.equal(await page.locator("#edit-endpoint-link").isHidden(), true);
      assert.equal(await page.locator("button.danger", { hasText: "Delete endpoint" }).isHidden(), true);
      // A page it may not use, asked by its address, sends it back to the endpoints.
      await page.goto(`${s.up.url}/console/#/hosts`);
      await page.waitForURL(/#\/endpoints$/);
      await screenshot(page, "readonly-key");
      assert.deepEqual(rec.errors, [], "page errors");
    } finally {
      await context.close();
    }
  });
});
