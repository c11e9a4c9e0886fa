// The web console end to end, in headless Chromium against a real `modelcache up --demo`: the
// login page without the navigation and Log out, log in (a wrong key is refused), the new endpoint form's link checks (a bad link, an unknown repo, a
// gated repo without a token, the same with its token), create a gated endpoint with a token and
// the demo/tiny-llama endpoint with the demo's worker command, send a test request, watch the
// worker go from downloading the model (initializing) to running, see the model on a host with
// its size and its pins by owner (its worker's), edit the endpoint (max workers and idle timeout;
// min > max refused with the API's message), pin and unpin it (Pin or Unpin as the operator's
// pin is there or not, Evict disabled while pinned), the hosts tables' Actions header and each
// button's accessible name (action, model, commit, host), the pages at 380 px, delete the endpoint and
// evict the model it leaves, an endpoint whose worker command fails at once (the notice with the exit
// code, the log tail and the next try), and that the typed token never shows up in the page, its console, its storage or any
// response it received. Screenshots of every page go to
// $MODELCACHE_TEST_OUT/console (default build/test-output/console).
//
// Setup: `up --demo --agents 2 --gpus 1`. The demo endpoint's worker holds the one GPU slot of
// the host it ran on (the test sets its workersMin to 1 so it stays), so the endpoint the test
// creates must start its worker on the other host, which downloads the model first: a cache miss
// with a real initializing phase.
import assert from "node:assert/strict";
import { describe } from "node:test";

import {
  apiCall, eventually, login, makeSteps, openBrowser, screenshot, startUp, suiteLifecycle,
  WORKER_SCRIPT,
} from "./lib/harness.mjs";

const step = makeSteps();
const s = {};
const pagesText = [];  // innerText of every page the test looked at

async function remember(name) {
  pagesText.push({ name, text: await s.page.evaluate(() => document.body.innerText) });
  return screenshot(s.page, name);
}

async function typeModel(value) {
  await s.page.fill("#ep-model", value);
  // The preview settles on a verdict (ok / error / unknown) for this exact text.
  await s.page.waitForFunction((v) => {
    const p = document.getElementById("model-preview");
    return document.getElementById("ep-model").value === v && p && ["ok", "error", "unknown"].includes(p.dataset.state);
  }, value, { timeout: 15_000 });
  return s.page.locator("#model-preview").innerText();
}

describe("web console", { concurrency: false, timeout: 180_000 }, () => {
  suiteLifecycle(s, "modelcache-console-");

  step("modelcache up --demo starts and Chromium opens the console", async () => {
    s.up = await startUp(s.bin, { root: s.root, extraArgs: ["--agents", "2", "--gpus", "1"] });
    // Keep the demo worker (and the GPU slot it holds) for the whole test.
    const patched = await apiCall(s.up, "PATCH", `/v1/endpoints/${s.up.demoEndpointId}`, { workersMin: 1 });
    assert.equal(patched.status, 200, patched.text);
    Object.assign(s, await openBrowser());
  }, { critical: true, timeout: 120_000 });

  step("the login page shows neither the navigation nor Log out before anyone logs in", async () => {
    await s.page.goto(`${s.up.url}/`);
    await s.page.waitForURL(/\/console\/#\/login$/);
    await s.page.locator("#login-form").waitFor();
    for (const selector of ["#nav", "#logout"]) {
      assert.equal(await s.page.locator(selector).isVisible(), false, `${selector} is shown before login`);
    }
    assert.equal(await s.page.getByRole("navigation").count(), 0);
    assert.equal(await s.page.getByRole("button", { name: "Log out" }).count(), 0);
    await remember("login");
  });

  step("/ sends to the login page; a wrong key is refused, the right one logs in", async () => {
    await s.page.goto(`${s.up.url}/`);
    await s.page.waitForURL(/\/console\/#\/login$/);
    await s.page.fill("#api-key", "mc_not-a-key");
    await s.page.click("#login-form button[type=submit]");
    await s.page.locator("#login-error", { hasText: "not accepted" }).waitFor();
    await remember("login-refused");
    await login(s.page, s.up);
    await s.page.locator("a.endpoint-name", { hasText: "demo" }).waitFor();
    await remember("endpoints");
  }, { critical: true });

  step("the link is checked as it is typed: bad link, unknown repo, gated without token", async () => {
    await s.page.click("nav a[data-route=new]");
    await s.page.waitForURL(/#\/new$/);
    const bad = await typeModel("not a model link!");
    assert.match(bad, /Not a model link/, bad);
    await remember("new-bad-link");
    const unknown = await typeModel("demo/no-such-model");
    assert.match(unknown, /Unknown repo or revision/, unknown);
    const gated = await typeModel("demo/gated-llama");
    assert.match(gated, /gated or private: an access token is needed/, gated);
    await remember("new-gated-without-token");
    // Creating it anyway is refused with the same explanation.
    await s.page.fill("#ep-name", "gated-no-token");
    await s.page.fill("#ep-command", `python3\n${WORKER_SCRIPT}`);
    await s.page.click("#new-endpoint button[type=submit]");
    await s.page.locator("#form-error", { hasText: "token" }).waitFor();
  });

  step("with its token the gated repo resolves; the endpoint is created and shows only 'token set'", async () => {
    await s.page.fill("#ep-token", s.up.demoToken);
    await s.page.waitForFunction(() => document.getElementById("model-preview").dataset.state === "ok",
      null, { timeout: 15_000 });
    const preview = await s.page.locator("#model-preview").innerText();
    assert.match(preview, /gated/, preview);
    assert.match(preview, /demo\/gated-llama/, preview);
    await remember("new-gated-with-token");
    await s.page.fill("#ep-name", "gated-e2e");
    await s.page.click("#new-endpoint button[type=submit]");
    await s.page.waitForURL(/#\/endpoints\/[A-Za-z0-9_-]+$/);
    await s.page.locator("#settings dd", { hasText: "set (write-only" }).waitFor();
    await remember("endpoint-gated");
    s.gatedId = s.page.url().split("/").pop();
  });

  step("Edit of the gated endpoint: removing its token is refused (gated); a token typed again is sent, never shown", async () => {
    await s.page.goto(`${s.up.url}/console/#/endpoints/${s.gatedId}/edit`);
    await s.page.locator("#ep-token-state", { hasText: "A token is set." }).waitFor();
    await s.page.check("#ep-token-remove");
    assert.equal(await s.page.isDisabled("#ep-token"), true);
    const [removing] = await Promise.all([
      s.page.waitForRequest((r) => r.method() === "PATCH"),
      s.page.click("#edit-endpoint button[type=submit]"),
    ]);
    assert.deepEqual(removing.postDataJSON(), { hfToken: null });
    await s.page.locator("#form-error", { hasText: "an access token is needed" }).waitFor();
    assert.equal((await apiCall(s.up, "GET", `/v1/endpoints/${s.gatedId}`)).json.hasHfToken, true);
    await s.page.uncheck("#ep-token-remove");
    await s.page.fill("#ep-token", s.up.demoToken);
    const [setting] = await Promise.all([
      s.page.waitForRequest((r) => r.method() === "PATCH"),
      s.page.click("#edit-endpoint button[type=submit]"),
    ]);
    assert.deepEqual(Object.keys(setting.postDataJSON()), ["hfToken"]);
    await s.page.waitForURL(new RegExp(`#/endpoints/${s.gatedId}$`));
    await s.page.locator("#settings dd", { hasText: "set (write-only" }).waitFor();
    await remember("endpoint-gated-edited");
  });

  step("a demo/tiny-llama endpoint is created through the form; the preview shows files and size", async () => {
    await s.page.click("nav a[data-route=new]");
    await s.page.fill("#ep-name", "console-e2e");
    const preview = await typeModel("https://huggingface.co/demo/tiny-llama:main");
    assert.match(preview, /demo\/tiny-llama/, preview);
    s.fileCount = Number(await s.page.locator('#model-preview [data-field="files"]').innerText());
    assert.ok(s.fileCount > 0, preview);
    s.sizeText = await s.page.locator('#model-preview [data-field="size"]').innerText();
    assert.match(s.sizeText, /MiB$/);
    await s.page.fill("#ep-command", `python3\n${WORKER_SCRIPT}`);
    await s.page.fill("#ep-workers-max", "1");
    await s.page.fill("#ep-idle-timeout", "120");
    await s.page.selectOption("#ep-scaler-type", "REQUEST_COUNT");
    await s.page.fill("#ep-scaler-value", "1");
    await remember("new");
    await s.page.click("#new-endpoint button[type=submit]");
    await s.page.waitForURL(/#\/endpoints\/[A-Za-z0-9_-]+$/);
    s.endpointId = s.page.url().split("/").pop();
    await s.page.locator("h1.endpoint-title", { hasText: "console-e2e" }).waitFor();
    const e = await apiCall(s.up, "GET", `/v1/endpoints/${s.endpointId}`);
    assert.equal(e.json.repo, "demo/tiny-llama");
    assert.deepEqual(e.json.command, ["python3", WORKER_SCRIPT]);
    assert.equal(e.json.scalerType, "REQUEST_COUNT");
  }, { critical: true });

  step("a test request completes; the worker goes initializing → starting → running, a cache miss", async () => {
    // Live updates: the worker appears on the page by polling, with no reload (the marker stays).
    await s.page.locator("#workers", { hasText: "No workers yet" }).waitFor();
    await s.page.evaluate(() => { window.__noReload = true; });
    await s.page.fill("#test-input", '{"prompt": "hello from the console"}');
    await s.page.click("#test button[type=submit]");
    await s.page.locator('#test-result dl[data-status="COMPLETED"]').waitFor({ timeout: 90_000 });
    const output = await s.page.locator("#test-result pre.output").innerText();
    assert.match(output, /"model": "demo\/tiny-llama"/, output);
    assert.match(output, /"prompt": "hello from the console"/, output);
    // The worker's phases as the page lists them (from the ledger), in order.
    const phases = await eventually(async () => {
      const p = await s.page.evaluate(() => document.querySelector("#workers tr[data-worker-id]")?.dataset.phases);
      return p && /\b(running|idle)\b/.test(p) ? p : null;
    }, { what: "a worker that ran", timeoutMs: 15_000 });
    assert.equal(await s.page.evaluate(() => window.__noReload), true, "the page was reloaded");
    console.log(`# the worker's phases as listed: ${phases}`);
    const order = phases.split(" ");
    const at = (p) => order.indexOf(p);
    assert.equal(order[0], "initializing", phases);
    assert.ok(at("starting") > at("initializing"), phases);
    assert.ok(at("running") > at("starting"), phases);
    s.workerId = await s.page.locator("#workers tr[data-worker-id]").first().getAttribute("data-worker-id");
    const workers = await apiCall(s.up, "GET", `/v1/workers?endpoint=${s.endpointId}`);
    s.hostId = workers.json.workers.find((w) => w.id === s.workerId).hostId;
    const demoWorkers = await apiCall(s.up, "GET", `/v1/workers?endpoint=${s.up.demoEndpointId}`);
    assert.ok(demoWorkers.json.workers.every((w) => w.hostId !== s.hostId), "placed beside the demo worker");
    // The download is listed unbilled, and the cold start is a miss.
    await s.page.locator("#workers .chip.unbilled", { hasText: "initializing" }).first().waitFor();
    await s.page.locator("#coldstarts .cold-list li", { hasText: "miss" }).first().waitFor();
    await s.page.locator("#coldstarts svg.chart rect.bar-miss").first().waitFor();
    await s.page.locator("#jobs tr[data-job-id] .badge", { hasText: "COMPLETED" }).first().waitFor();
    const billing = await s.page.locator("#billing").innerText();
    assert.match(billing, /not billed/, billing);
    await remember("endpoint");
  }, { critical: true, timeout: 120_000 });

  step("the endpoint list shows its state and workers", async () => {
    await s.page.click("nav a[data-route=endpoints]");
    const row = s.page.locator(`tr[data-endpoint-id="${s.endpointId}"]`);
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /console-e2e/);
    assert.match(text, /demo\/tiny-llama@main/);
    assert.match(text, /1 (running|idle)/, text);
    await remember("endpoints-after");
  });

  step("Edit: max workers and idle timeout change (only they are sent); min > max is refused, nothing changes", async () => {
    await s.page.goto(`${s.up.url}/console/#/endpoints/${s.endpointId}`);
    const settings = s.page.locator("#settings");
    await settings.locator("dd", { hasText: "0 min, 1 max, idle timeout 120 s" }).waitFor();
    await s.page.click("#edit-endpoint-link");
    await s.page.waitForURL(new RegExp(`#/endpoints/${s.endpointId}/edit$`));
    // Prefilled from the endpoint; the token field empty (keep the current one).
    await s.page.waitForFunction(() => (document.getElementById("ep-name")?.value ?? "") !== "");
    assert.equal(await s.page.inputValue("#ep-name"), "console-e2e");
    assert.equal(await s.page.inputValue("#ep-workers-max"), "1");
    assert.equal(await s.page.inputValue("#ep-idle-timeout"), "120");
    assert.equal(await s.page.inputValue("#ep-scaler-type"), "REQUEST_COUNT");
    assert.equal(await s.page.inputValue("#ep-token"), "");
    await s.page.fill("#ep-workers-max", "2");
    await s.page.fill("#ep-idle-timeout", "300");
    const [req] = await Promise.all([
      s.page.waitForRequest((r) => r.method() === "PATCH"),
      s.page.click("#edit-endpoint button[type=submit]"),
    ]);
    assert.deepEqual(req.postDataJSON(), { workersMax: 2, idleTimeout: 300 });
    await s.page.waitForURL(new RegExp(`#/endpoints/${s.endpointId}$`));
    await settings.locator("dd", { hasText: "0 min, 2 max, idle timeout 300 s" }).waitFor();
    const after = (await apiCall(s.up, "GET", `/v1/endpoints/${s.endpointId}`)).json;
    assert.equal(after.workersMax, 2);
    assert.equal(after.idleTimeout, 300);
    // Min workers above max: the API refuses it, its message is shown by the form, nothing changes.
    await s.page.click("#edit-endpoint-link");
    await s.page.waitForFunction(() => document.getElementById("ep-workers-max")?.value === "2");
    await s.page.fill("#ep-workers-min", "5");
    await s.page.click("#edit-endpoint button[type=submit]");
    await s.page.locator("#form-error", { hasText: "workersMin must not exceed workersMax" }).waitFor();
    assert.match(s.page.url(), /\/edit$/);
    await remember("endpoint-edit");
    const unchanged = (await apiCall(s.up, "GET", `/v1/endpoints/${s.endpointId}`)).json;
    assert.deepEqual(unchanged, { ...after, workers: unchanged.workers, queue: unchanged.queue,
      seconds: unchanged.seconds, coldStarts: unchanged.coldStarts });
    await s.page.click("#edit-endpoint a.button");  // Cancel
    await s.page.waitForURL(new RegExp(`#/endpoints/${s.endpointId}$`));
    await settings.locator("dd", { hasText: "0 min, 2 max, idle timeout 300 s" }).waitFor();
  });

  step("the model is on the worker's host with its size and the worker's pin; pin and unpin from the page", async () => {
    await s.page.click("nav a[data-route=hosts]");
    const host = s.page.locator(`section.host[data-host-id="${s.hostId}"]`);
    const snap = host.locator('tr[data-model="demo/tiny-llama"]');
    await snap.waitFor();
    assert.equal((await snap.locator(".size").innerText()).trim(), s.sizeText);
    assert.match(await host.locator(".gpus").innerText(), /1 of 1 used/);
    assert.match(await host.locator(".disk").innerText(), /used of/);
    await remember("hosts");
    // The worker using it holds a pin already (listed by owner): no operator pin, so Pin and no
    // Unpin, and Evict disabled saying why. The operator's pin comes on top and goes again.
    const pinsCell = snap.locator(".pins");
    const owners = async () => (await pinsCell.locator(".pin-owner").evaluateAll(
      (os) => os.map((o) => `${o.dataset.owner} = ${o.textContent}`))).sort();
    const actions = async () => snap.locator("button[data-action]").evaluateAll(
      (bs) => bs.map((b) => `${b.dataset.action}${b.disabled ? " (disabled)" : ""}`));
    await pinsCell.locator(".pin-owner", { hasText: `worker ${s.workerId}` }).waitFor();
    assert.equal(await snap.getAttribute("data-pins"), "1");
    assert.deepEqual(await owners(), [`worker:${s.workerId} = worker ${s.workerId}`]);
    assert.equal((await pinsCell.innerText()).trim(), `worker ${s.workerId}`);
    assert.deepEqual(await actions(), ["pin", "evict (disabled)"]);
    assert.match(await snap.locator('button[data-action="evict"]').getAttribute("title"),
      new RegExp(`^Pinned by worker ${s.workerId}: `));
    await snap.locator('button[data-action="pin"]').click();
    await host.locator("p[role=status]", { hasText: "Pinned demo/tiny-llama" }).waitFor();
    await snap.locator('.pins .pin-owner[data-owner="operator"]').waitFor({ timeout: 10_000 });
    assert.equal(await snap.getAttribute("data-pins"), "2");
    assert.deepEqual(await owners(), ["operator = operator", `worker:${s.workerId} = worker ${s.workerId}`]);
    assert.match((await pinsCell.innerText()).trim(), /^(operator, worker \S+|worker \S+, operator)$/);
    assert.deepEqual(await actions(), ["unpin", "evict (disabled)"]);
    assert.match(await snap.locator('button[data-action="evict"]').getAttribute("title"), /operator.*unpin it first/);
    await remember("hosts-pinned");
    await snap.locator('button[data-action="unpin"]').click();
    await host.locator("p[role=status]", { hasText: "Unpinned demo/tiny-llama" }).waitFor();
    await snap.locator('button[data-action="pin"]').waitFor({ timeout: 10_000 });
    assert.equal(await snap.getAttribute("data-pins"), "1");
    assert.deepEqual(await owners(), [`worker:${s.workerId} = worker ${s.workerId}`]);
    assert.deepEqual(await actions(), ["pin", "evict (disabled)"]);
  });

  step("every column of the hosts tables has a header, the last one Actions", async () => {
    await s.page.goto(`${s.up.url}/console/#/hosts`);
    await s.page.locator('section.host tr[data-model="demo/tiny-llama"]').first().waitFor();
    for (const host of await s.page.locator("section.host").all()) {
      const headers = (await host.locator("table.snapshots thead th").allInnerTexts()).map((t) => t.trim());
      assert.deepEqual(headers.filter((t) => t === ""), [], `a column without a header: ${headers}`);
      assert.equal(headers.at(-1), "Actions");
    }
  });

  step("each Pin, Unpin and Evict button's accessible name says its action, model, commit and host", async () => {
    await s.page.goto(`${s.up.url}/console/#/hosts`);
    await s.page.locator('section.host tr[data-model="demo/tiny-llama"]').first().waitFor();
    const names = [];
    for (const host of await s.page.locator("section.host").all()) {
      const hostId = await host.getAttribute("data-host-id");
      for (const row of await host.locator("tr[data-model]").all()) {
        const model = await row.getAttribute("data-model");
        const commit = await row.getAttribute("data-commit");
        // The names as assistive technology gets them (the accessibility tree), in button order.
        const tree = await row.locator(".actions").ariaSnapshot();
        const rowNames = [...tree.matchAll(/button "([^"]*)"/g)].map((m) => m[1]);
        const labels = await row.locator("button[data-action]").allInnerTexts();
        assert.equal(rowNames.length, labels.length, tree);
        rowNames.forEach((name, i) => assert.equal(name,
          `${labels[i].trim()} ${model} at commit ${commit.slice(0, 10)} on ${hostId}`, tree));
        names.push(...rowNames);
      }
    }
    assert.ok(names.length >= 4, `only ${names.length} buttons`);
    assert.equal(new Set(names).size, names.length, `two buttons share a name: ${names}`);
  });

  step("every page works at 380 px wide (no sideways scrolling)", async () => {
    await s.page.setViewportSize({ width: 380, height: 800 });
    for (const [name, hash, ready] of [
      ["endpoints-narrow", "#/endpoints", `tr[data-endpoint-id="${s.endpointId}"]`],
      ["endpoint-narrow", `#/endpoints/${s.endpointId}`, "#workers tr[data-worker-id]"],
      ["new-narrow", "#/new", "#ep-model"],
      ["endpoint-edit-narrow", `#/endpoints/${s.endpointId}/edit`, "#ep-workers-max"],
      ["hosts-narrow", "#/hosts", "section.host"],
    ]) {
      await s.page.goto(`${s.up.url}/console/${hash}`);
      await s.page.locator(ready).first().waitFor();
      const width = await s.page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 380, `${name}: the page is ${width}px wide`);
      await remember(name);
    }
    await s.page.setViewportSize({ width: 1280, height: 900 });
  });

  step("deleting the endpoint stops its worker; the model, unpinned, is evicted from the page", async () => {
    s.page.on("dialog", (d) => d.accept());  // the confirm() of Delete and Evict
    await s.page.goto(`${s.up.url}/console/#/endpoints/${s.endpointId}`);
    await s.page.locator("#settings button.danger").click();
    await s.page.waitForURL(/#\/endpoints$/);
    await s.page.locator("a.endpoint-name", { hasText: "demo" }).first().waitFor();
    assert.equal(await s.page.locator(`tr[data-endpoint-id="${s.endpointId}"]`).count(), 0);
    await s.page.click("nav a[data-route=hosts]");
    const host = s.page.locator(`section.host[data-host-id="${s.hostId}"]`);
    const row = host.locator('tr[data-model="demo/tiny-llama"][data-pins="0"]');
    await row.waitFor({ timeout: 30_000 });  // the worker's pin goes with it
    assert.equal((await row.locator(".pins").innerText()).trim(), "–");
    assert.deepEqual(await row.locator("button[data-action]").evaluateAll(
      (bs) => bs.map((b) => `${b.dataset.action}${b.disabled ? " (disabled)" : ""}`)), ["pin", "evict"]);
    await row.locator('button[data-action="evict"]').click();
    await host.locator("p[role=status]", { hasText: "Evicted demo/tiny-llama" }).waitFor();
    await host.locator("p", { hasText: "No models cached." }).waitFor({ timeout: 10_000 });
    await remember("hosts-evicted");
  }, { timeout: 60_000 });

  step("an endpoint whose worker fails at start says why (exit code, log tail, next try)", async () => {
    const created = await apiCall(s.up, "POST", "/v1/endpoints", {
      name: "broken", model: "https://huggingface.co/demo/tiny-llama:main",
      command: ["python3", "/nonexistent/worker.py"], workersMin: 1, workersMax: 1,
    });
    assert.equal(created.status, 200, created.text);
    const id = created.json.id;
    await s.page.goto(`${s.up.url}/console/#/endpoints/${id}`);
    const notice = s.page.locator("#placement-backoff .notice[role=alert]");
    await notice.waitFor({ timeout: 60_000 });
    const text = await notice.innerText();
    assert.match(text, /Workers fail before they are ready/, text);
    assert.match(text, /exit code 2/, text);
    assert.match(text, /next try/, text);
    assert.match(await notice.locator("pre.log-tail").innerText(), /\/nonexistent\/worker\.py/);
    await s.page.locator("#endpoint-state", { hasText: "failing to start" }).waitFor();
    await s.page.locator("#workers tr[data-phase=stopped] .ended-note", { hasText: "exited with code 2" })
      .first().waitFor();
    await remember("endpoint-failing");
    assert.equal((await apiCall(s.up, "DELETE", `/v1/endpoints/${id}`)).status, 200);
  }, { timeout: 90_000 });

  step("the token typed in the form is nowhere: page text, console, storage, responses", async () => {
    const token = s.up.demoToken;
    assert.ok(token.length >= 8);
    for (const { name, text } of pagesText) assert.ok(!text.includes(token), `page ${name} shows the token`);
    assert.ok(!(await s.page.evaluate(() => document.documentElement.outerHTML)).includes(token));
    for (const line of s.rec.console) assert.ok(!line.includes(token), `console: ${line}`);
    const storage = await s.page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));
    assert.ok(!storage.includes(token), "storage holds the token");
    assert.ok(s.rec.bodies.length > 20, `only ${s.rec.bodies.length} responses recorded`);
    for (const r of s.rec.bodies) assert.ok(!r.body.includes(token), `response of ${r.url} holds the token`);
    for (const r of s.rec.requests) assert.ok(!r.includes(token), `a URL holds the token: ${r}`);
    assert.deepEqual(s.rec.errors, [], "page errors");
  });
});
