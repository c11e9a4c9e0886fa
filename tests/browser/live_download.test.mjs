// A model download watched live in the console, in headless Chromium against a real
// `modelcache up --demo` whose upstream is capped (--demo-upstream-rate) so that the download
// lasts about 8 s, several of the console's 2 s polls: an endpoint created through the form, a
// test request sent from its page, and while the model downloads the endpoint page lists the
// worker as downloading (initializing, unbilled) and the hosts page, in a second window, shows
// the download with a progress bar, a percentage that grows and an ETA; then the worker runs,
// the request completes and the model is cached on the host with the size the form's preview
// showed. Everything asserted is what the pages show. Screenshots of both pages mid-download and
// after go to $MODELCACHE_TEST_OUT/console.
//
// Setup: `up --demo --agents 1 --gpus 2`. The demo's own test job already downloads
// demo/tiny-llama (at the capped rate too) onto the one host, so the endpoint here serves
// demo/gated-llama (with the demo's token): a model that no host holds, so it comes from the
// capped upstream (a host holding it would be a faster peer).
import assert from "node:assert/strict";
import { describe } from "node:test";

import {
  eventually, login, makeSteps, openBrowser, openPage, screenshot, startUp, suiteLifecycle,
  WORKER_SCRIPT,
} from "./lib/harness.mjs";

const step = makeSteps();
const s = { seen: [] };  // seen: the download rows the hosts page showed, in order
const MODEL = "demo/gated-llama";
// 16.8 MB of weights at 2 MB/s: about 8.4 s a download. (Not smaller: the downloader counts its
// progress a 1 MiB buffer at a time per connection, so a small model would jump 0 → 50 → 100%.)
const UP_ARGS = ["--agents", "1", "--gpus", "2", "--demo-model-size", "16MiB", "--demo-upstream-rate", "2MB"];

// The download row of MODEL on the hosts page, as shown: {pct, text, bar}, or null.
async function downloadRow(page) {
  const row = page.locator(`section.host .downloads li[data-model="${MODEL}"]`);
  if ((await row.count()) === 0) return null;
  const text = (await row.innerText()).replace(/\s+/g, " ").trim();
  if (s.seen.at(-1) !== text) s.seen.push(text);
  const m = /\((\d+)%\)/.exec(text);
  return { pct: m ? Number(m[1]) : null, text, bar: await row.locator(".bar").count() };
}

describe("a download watched live", { concurrency: false, timeout: 150_000 }, () => {
  suiteLifecycle(s, "modelcache-live-");

  step("modelcache up --demo with a capped upstream starts; two windows log in", async () => {
    const started = Date.now();
    s.up = await startUp(s.bin, { root: s.root, extraArgs: UP_ARGS });
    // The demo's test job downloaded demo/tiny-llama through the cap (~8 s) before this line.
    console.log(`# up --demo ${UP_ARGS.join(" ")} ready in ${Date.now() - started} ms`);
    Object.assign(s, await openBrowser());
    s.hosts = await openPage(s.browser);
    await login(s.page, s.up);
    await login(s.hosts.page, s.up);
    await s.hosts.page.click("nav a[data-route=hosts]");
    await s.hosts.page.locator("section.host").first().waitFor();
  }, { critical: true, timeout: 90_000 });

  step("an endpoint for the gated demo model is created through the form", async () => {
    const page = s.page;
    await page.click("nav a[data-route=new]");
    await page.fill("#ep-name", "live-download");
    await page.fill("#ep-model", MODEL);
    await page.fill("#ep-token", s.up.demoToken);
    await page.waitForFunction((v) => document.getElementById("ep-model").value === v &&
      document.getElementById("model-preview").dataset.state === "ok", MODEL, { timeout: 15_000 });
    s.sizeText = await page.locator('#model-preview [data-field="size"]').innerText();
    assert.match(s.sizeText, /MiB$/);
    await page.fill("#ep-command", `python3\n${WORKER_SCRIPT}`);
    await page.fill("#ep-workers-max", "1");
    await page.fill("#ep-idle-timeout", "120");
    await page.click("#new-endpoint button[type=submit]");
    await page.waitForURL(/#\/endpoints\/[A-Za-z0-9_-]+$/);
    await page.locator("h1.endpoint-title", { hasText: "live-download" }).waitFor();
    await page.locator("#workers", { hasText: "No workers yet" }).waitFor();
  }, { critical: true });

  step("while the model downloads: the worker is 'downloading model' (unbilled) and the hosts page shows progress and an ETA", async () => {
    const page = s.page;
    const hosts = s.hosts.page;
    await page.fill("#test-input", '{"prompt": "hello while downloading"}');
    await page.click("#test button[type=submit]");
    // The endpoint page: the worker appears, downloading.
    const worker = page.locator('#workers tr[data-worker-id][data-phase="initializing"]');
    await worker.waitFor({ timeout: 15_000 });
    assert.equal((await worker.locator(".badge").innerText()).trim(), "downloading model");
    await worker.locator(".chip.unbilled", { hasText: "initializing" }).waitFor();
    s.workerId = await worker.getAttribute("data-worker-id");
    // The hosts page: the download, with a bar, a percentage below 100 and an ETA in seconds.
    const first = await eventually(async () => {
      const d = await downloadRow(hosts);
      return d && d.pct !== null && d.pct < 100 && /ETA \d/.test(d.text) ? d : null;
    }, { what: `a download row of ${MODEL} with a percentage and an ETA`, timeoutMs: 15_000, intervalMs: 200 });
    console.log(`# hosts page: ${first.text}`);
    assert.equal(first.bar, 1, first.text);
    assert.match(first.text, /\d+(\.\d+)? \S*B of \d+(\.\d+)? \S*B \(\d+%\) · \d+(\.\d+)? \S*B\/s · ETA \d/, first.text);
    // Both at once, live: the download is still in flight and the worker still downloading.
    assert.equal(await page.locator(`#workers tr[data-worker-id="${s.workerId}"]`).getAttribute("data-phase"),
      "initializing");
    assert.equal(await page.locator('#test-result dl[data-status="COMPLETED"]').count(), 0);
    await screenshot(hosts, "live-download-hosts");
    await screenshot(page, "live-download-endpoint");
    // The next polls show it moving on (a larger percentage, or done and cached).
    const next = await eventually(async () => {
      const d = await downloadRow(hosts);
      if (d && d.pct !== null && d.pct > first.pct) return `${d.pct}%`;
      if (!d && (await hosts.locator(`tr[data-model="${MODEL}"]`).count()) > 0) return "done";
      return null;
    }, { what: "the download progressing", timeoutMs: 15_000, intervalMs: 200 });
    console.log(`# progress: ${first.pct}% then ${next}; the rows seen:\n# ${s.seen.join("\n# ")}`);
  }, { critical: true, timeout: 60_000 });

  step("then the worker runs, the request completes and the model is cached with its size", async () => {
    const page = s.page;
    const hosts = s.hosts.page;
    await page.locator('#test-result dl[data-status="COMPLETED"]').waitFor({ timeout: 60_000 });
    const output = await page.locator("#test-result pre.output").innerText();
    assert.match(output, /"model": "demo\/gated-llama"/, output);
    const phases = await eventually(async () => {
      const p = await page.locator(`#workers tr[data-worker-id="${s.workerId}"]`).getAttribute("data-phases");
      return p && /\b(running|idle)\b/.test(p) ? p : null;
    }, { what: "the worker running", timeoutMs: 15_000 });
    console.log(`# the worker's phases as listed: ${phases}`);
    assert.equal(phases.split(" ")[0], "initializing", phases);
    assert.match(await page.locator(`#workers tr[data-worker-id="${s.workerId}"]`).getAttribute("data-phase"),
      /^(running|idle)$/);
    const billing = await page.locator("#billing").innerText();
    assert.match(billing, /not billed/, billing);
    await screenshot(page, "live-download-endpoint-after");
    const snap = hosts.locator(`section.host tr[data-model="${MODEL}"]`);
    await snap.waitFor({ timeout: 15_000 });
    assert.equal((await snap.locator(".size").innerText()).trim(), s.sizeText);
    await eventually(async () => (await downloadRow(hosts)) === null,
      { what: "the download row gone", timeoutMs: 10_000 });
    await screenshot(hosts, "live-download-hosts-after");
  }, { timeout: 90_000 });

  step("no page error, and the typed token shown nowhere", async () => {
    for (const p of [s.page, s.hosts.page]) {
      assert.ok(!(await p.evaluate(() => document.documentElement.outerHTML)).includes(s.up.demoToken));
    }
    assert.deepEqual([...s.rec.errors, ...s.hosts.rec.errors], [], "page errors");
  });
});
