// The endpoint form's worker-image fields (issue 14), in headless Chromium against a real
// `modelcache up --demo`: a malformed image reference is refused with the API's reason and
// nothing is created; an endpoint with an image, arguments, environment and registry credentials
// is created (the request carries them), its page shows the image and the credentials only as
// "set"; the edit form keeps the credentials write-only (empty fields keep them, "Remove the
// registry credentials" sends registryAuth: null) and changing the image sends only the image;
// the typed registry password is nowhere afterwards: page text, console, storage, responses, URLs.
//
// The form is what is tested, not a container run: `up` runs its hosts as processes here (the
// harness default), so the image endpoint is never placed. Container workers through the
// controller are tested by controller_image_e2e_test with real podman and registries.
import assert from "node:assert/strict";
import { describe } from "node:test";

import { apiCall, login, makeSteps, openBrowser, screenshot, startUp, suiteLifecycle } from "./lib/harness.mjs";

const step = makeSteps();
const s = {};
const PASSWORD = "registry-pass-for-the-browser-test-4d1e";
const pagesText = [];

async function remember(name) {
  pagesText.push({ name, text: await s.page.evaluate(() => document.body.innerText) });
  return screenshot(s.page, name);
}

// Clicks submit and resolves the request the form sent (`method`).
async function submitted(form, method) {
  const [req] = await Promise.all([
    s.page.waitForRequest((r) => r.method() === method && r.url().includes("/v1/endpoints")),
    s.page.click(`${form} button[type=submit]`),
  ]);
  return req.postDataJSON();
}

describe("web console: worker images", { concurrency: false, timeout: 180_000 }, () => {
  suiteLifecycle(s, "modelcache-console-images-");

  step("modelcache up --demo starts and Chromium logs in", async () => {
    s.up = await startUp(s.bin, { root: s.root, extraArgs: ["--agents", "1"] });
    Object.assign(s, await openBrowser());
    await login(s.page, s.up);
  }, { critical: true, timeout: 120_000 });

  step("a malformed image reference is refused with the API's reason and nothing is created", async () => {
    await s.page.click("nav a[data-route=new]");
    await s.page.waitForURL(/#\/new$/);
    await s.page.fill("#ep-name", "image-e2e");
    await s.page.fill("#ep-model", "demo/tiny-llama");
    await s.page.fill("#ep-image", "Registry.Example/Org/Worker:1");
    const body = await submitted("#new-endpoint", "POST");
    assert.equal(body.image, "Registry.Example/Org/Worker:1");
    await s.page.locator("#form-error", { hasText: "image reference" }).waitFor();
    const error = await s.page.locator("#form-error").innerText();
    assert.match(error, /lowercase/, error);
    await remember("images-new-malformed");
    const listed = await apiCall(s.up, "GET", "/v1/endpoints");
    assert.deepEqual(listed.json.endpoints.map((e) => e.name), ["demo"]);
  });

  step("an image endpoint is created with arguments, env and registry credentials, shown only as set", async () => {
    await s.page.fill("#ep-image", "127.0.0.1:5999/org/worker:1");
    await s.page.fill("#ep-args", "--port\n8000");
    await s.page.fill("#ep-env", "MODE=test");
    await s.page.fill("#ep-registry-user", "robot");
    await s.page.fill("#ep-registry-password", PASSWORD);
    const body = await submitted("#new-endpoint", "POST");
    assert.equal(body.image, "127.0.0.1:5999/org/worker:1");
    assert.deepEqual(body.args, ["--port", "8000"]);
    assert.equal(body.command, undefined);  // the image's own entrypoint
    assert.deepEqual(body.env, { MODE: "test" });
    assert.deepEqual(body.registryAuth, { username: "robot", password: PASSWORD });
    await s.page.waitForURL(/#\/endpoints\/[A-Za-z0-9_-]+$/);
    s.id = s.page.url().split("/").pop();
    await s.page.locator("#settings [data-field=image]", { hasText: "127.0.0.1:5999/org/worker:1" }).waitFor();
    const settings = await s.page.locator("#settings").innerText();
    assert.match(settings, /Registry credentials\s+set \(write-only/, settings);
    assert.match(settings, /--port 8000/, settings);
    assert.match(settings, /the image's entrypoint/, settings);
    await remember("images-endpoint");
    const shown = await apiCall(s.up, "GET", `/v1/endpoints/${s.id}`);
    assert.equal(shown.json.hasRegistryAuth, true);
    assert.equal(shown.json.image, "127.0.0.1:5999/org/worker:1");
  });

  step("edit: empty credential fields keep them; a new image is the only field sent", async () => {
    await s.page.goto(`${s.up.url}/console/#/endpoints/${s.id}/edit`);
    await s.page.locator("#ep-registry-state", { hasText: "Registry credentials are set." }).waitFor();
    assert.equal(await s.page.inputValue("#ep-registry-user"), "");
    assert.equal(await s.page.inputValue("#ep-registry-password"), "");
    assert.equal(await s.page.inputValue("#ep-image"), "127.0.0.1:5999/org/worker:1");
    await remember("images-edit");
    await s.page.fill("#ep-image", "127.0.0.1:5999/org/worker:2");
    const body = await submitted("#edit-endpoint", "PATCH");
    assert.deepEqual(body, { image: "127.0.0.1:5999/org/worker:2" });
    await s.page.waitForURL(new RegExp(`#/endpoints/${s.id}$`));
    await s.page.locator("#settings [data-field=image]", { hasText: "worker:2" }).waitFor();
    assert.equal((await apiCall(s.up, "GET", `/v1/endpoints/${s.id}`)).json.hasRegistryAuth, true);
  });

  step("edit: a malformed image is refused and changes nothing; removing the credentials sends null", async () => {
    await s.page.goto(`${s.up.url}/console/#/endpoints/${s.id}/edit`);
    await s.page.locator("#ep-registry-state", { hasText: "are set" }).waitFor();
    await s.page.fill("#ep-image", "not a reference");
    await submitted("#edit-endpoint", "PATCH");
    await s.page.locator("#form-error", { hasText: "image reference" }).waitFor();
    assert.equal((await apiCall(s.up, "GET", `/v1/endpoints/${s.id}`)).json.image, "127.0.0.1:5999/org/worker:2");
    await s.page.fill("#ep-image", "127.0.0.1:5999/org/worker:2");
    await s.page.check("#ep-registry-remove");
    assert.equal(await s.page.isDisabled("#ep-registry-password"), true);
    const body = await submitted("#edit-endpoint", "PATCH");
    assert.deepEqual(body, { registryAuth: null });
    await s.page.waitForURL(new RegExp(`#/endpoints/${s.id}$`));
    await s.page.waitForFunction(() => /Registry credentials\s+none/.test(
      document.getElementById("settings")?.innerText || ""), null, { timeout: 15_000 });
    assert.equal((await apiCall(s.up, "GET", `/v1/endpoints/${s.id}`)).json.hasRegistryAuth, false);
    await remember("images-credentials-removed");
  });

  step("the registry password typed in the form is nowhere: page text, console, storage, responses", async () => {
    for (const { name, text } of pagesText) assert.ok(!text.includes(PASSWORD), `page ${name} shows the password`);
    assert.ok(!(await s.page.evaluate(() => document.documentElement.outerHTML)).includes(PASSWORD));
    for (const line of s.rec.console) assert.ok(!line.includes(PASSWORD), `console: ${line}`);
    const storage = await s.page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));
    assert.ok(!storage.includes(PASSWORD), "storage holds the password");
    assert.ok(s.rec.bodies.length > 5, `only ${s.rec.bodies.length} responses recorded`);
    for (const r of s.rec.bodies) assert.ok(!r.body.includes(PASSWORD), `response of ${r.url} holds the password`);
    for (const r of s.rec.requests) assert.ok(!r.includes(PASSWORD), `a URL holds the password: ${r}`);
    assert.deepEqual(s.rec.errors, [], "page errors");
  });
});
