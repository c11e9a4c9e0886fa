// Clients written for Runpod Serverless work against `modelcache up` unchanged: the official Runpod
// JS client (runpod-sdk, pinned in package.json), pointed at our controller with its `baseUrl`
// option, submits jobs (run + status, runSync with and without its status-sync fallback), reads a
// stream, cancels queued and running jobs, purges the queue, reads health, and reports a wrong API
// key the way it reports a Runpod 401.
// Setup: the real `modelcache up --demo` (controller, two agents, the demo upstream and the demo
// endpoint running examples/runpod_worker.py), started from the repository root on 127.0.0.1
// port 0 with its data in a temp dir; the test waits for its `endpoint <id>` line and reads the
// API key from <data>/api-key. Every call below goes through runpod-sdk only; a recording fetch
// checks the routes it sends. At the end SIGTERM must stop `up` (exit 0) and leave no worker.
// Steps run in order; when a step that later ones need fails, those fail too.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { after, describe } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import runpodSdk from "runpod-sdk";

import { REPO_ROOT } from "./lib/modelcache.mjs";
import { makeSuite } from "./lib/suite.mjs";

const DEMO_MODEL = "demo/tiny-llama";
const SDK_VERSION = "1.1.2";
const FINAL = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];

const { s, step, begin, end } = makeSuite();

// Every request the SDK makes (it calls the global fetch through xior at request time).
const requests = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init = {}) => {
  const headers = init.headers ?? {};
  requests.push({
    method: init.method ?? "GET",
    url: String(input instanceof Request ? input.url : input),
    auth: headers.Authorization ?? headers.authorization,
    userAgent: headers["User-Agent"],
  });
  return realFetch(input, init);
};
// The requests made by fn(), as "METHOD path?query" relative to the endpoint's base.
async function recorded(fn) {
  const from = requests.length;
  const value = await fn();
  const base = `${s.url}/v2/${s.endpointId}`;
  const sent = requests.slice(from);
  return { value, sent, routes: sent.map((r) => `${r.method} ${r.url.startsWith(base) ? r.url.slice(base.length) : r.url}`) };
}

// Starts `modelcache up ...` from the repository root and waits for its `endpoint <id>` line
// (after `controller listening on <url>` and the demo job). Resolves { url, endpointId, child,
// output(), stop() }; stop() sends SIGTERM, waits up to 90 s (then SIGKILL) for { code, signal }.
function startUp(bin, args, { env, timeoutMs }) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { env, cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let url = null;
    let settled = false;
    const exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
    const killOnExit = () => child.kill("SIGKILL");
    process.on("exit", killOnExit);
    const output = () => `stdout:\n${stdout.slice(-4000)}\nstderr:\n${stderr.slice(-6000)}`;
    let stopped = null;
    const stop = () => {
      if (stopped) return stopped;
      stopped = (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
        const force = setTimeout(() => child.kill("SIGKILL"), 90_000);
        const result = await exited;
        clearTimeout(force);
        process.off("exit", killOnExit);
        return result;
      })();
      return stopped;
    };
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stop(); // SIGTERM: `up` stops the workers it started before it exits
      reject(new Error(`modelcache up: ${why}\n${output()}`));
    };
    const timer = setTimeout(() => fail(`no 'endpoint <id>' line within ${timeoutMs} ms`), timeoutMs);
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.stdout.setEncoding("utf8").on("data", (d) => {
      stdout += d;
      if (settled) return;
      const lines = stdout.split("\n").slice(0, -1);
      if (lines.length === 0) return;
      if (url === null) {
        const m = /^controller listening on (http:\/\/127\.0\.0\.1:([0-9]+))$/.exec(lines[0]);
        if (!m || Number(m[2]) === 0) return fail(`unexpected first line ${JSON.stringify(lines[0])}`);
        url = m[1];
      }
      const ep = lines.map((l) => /^endpoint (\S+)$/.exec(l)).find(Boolean);
      if (!ep) return;
      if (!lines.some((l) => l.startsWith("demo job COMPLETED"))) return fail("no 'demo job COMPLETED' line");
      settled = true;
      clearTimeout(timer);
      resolvePromise({ url, endpointId: ep[1], child, output, stop });
    });
    child.on("error", (err) => fail(`cannot start: ${err.message}`));
    exited.then(({ code, signal }) => fail(`exited early (code ${code}, signal ${signal})`));
  });
}

// Polls status through the SDK until the job is final (or `until` matches), at most timeoutMs.
async function pollStatus(endpoint, id, { until = (st) => FINAL.includes(st.status), timeoutMs = 60_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  const seen = [];
  for (;;) {
    const st = await endpoint.status(id);
    if (seen.at(-1) !== st.status) seen.push(st.status);
    if (until(st)) return { st, seen };
    if (Date.now() > deadline) assert.fail(`job ${id} still ${st.status} after ${timeoutMs} ms (seen ${seen})`);
    await sleep(200);
  }
}

// The error the SDK throws for an HTTP error status (xior's: message, response.status, .data).
async function sdkError(promise) {
  try {
    const value = await promise;
    return { resolved: value };
  } catch (err) {
    return { err };
  }
}

// The demo worker's answer for `input`.
function assertDemoOutput(output, input) {
  assert.equal(output?.model, DEMO_MODEL, JSON.stringify(output)?.slice(0, 500));
  assert.match(output.revision, /^[0-9a-f]{40}$/);
  assert.equal(typeof output.tensors, "object");
  assert.ok(Object.keys(output.tensors).length > 0, "the worker saw the model's tensors");
  for (const shape of Object.values(output.tensors)) assert.ok(Array.isArray(shape));
  assert.deepEqual(output.echo, input);
}

// Processes (other than this one) whose command line, working directory or environment mention
// `dir`: the workers `up` started have its data dir in their environment (HF_HUB_CACHE, ...).
async function processesMentioning(dir) {
  const found = [];
  for (const pid of await readdir("/proc")) {
    if (!/^[0-9]+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).replaceAll("\0", " ");
      let where = cmdline.includes(dir) ? "cmdline" : null;
      if (!where && (await readlink(`/proc/${pid}/cwd`)).startsWith(dir)) where = "cwd";
      if (!where && (await readFile(`/proc/${pid}/environ`, "utf8")).includes(dir)) where = "environ";
      if (where) found.push(`${pid} (${where}): ${cmdline.trim()}`);
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

describe("modelcache up, driven by the official Runpod JS client (runpod-sdk)", { concurrency: false }, () => {
  after(async () => {
    if (s.up) s.server = { stop: s.up.stop }; // end() stops it (SIGTERM) before removing the dir
    await end();
  });

  step("the modelcache binary exists and runpod-sdk is the pinned version", async () => {
    await begin("modelcache-js-runpod-");
    const pkg = JSON.parse(await readFile(new URL("./node_modules/runpod-sdk/package.json", import.meta.url)));
    assert.equal(pkg.version, SDK_VERSION);
  }, { critical: true });

  step("modelcache up --demo starts, completes its demo job and prints the endpoint", async () => {
    s.data = join(s.root, "up-data");
    s.up = await startUp(s.bin, ["up", "--demo", "--data-dir", s.data, "--listen", "127.0.0.1:0"],
      { env: s.env, timeoutMs: 120_000 });
    s.url = s.up.url;
    s.endpointId = s.up.endpointId;
    s.key = (await readFile(join(s.data, "api-key"), "utf8")).trim();
    assert.ok(s.key.length > 0);
    // The SDK's own option for a custom base: runpodSdk(apiKey, { baseUrl }) + /{endpoint}/{op}.
    s.sdk = runpodSdk(s.key, { baseUrl: `${s.url}/v2` });
    s.endpoint = s.sdk.endpoint(s.endpointId);
  }, { critical: true, timeout: 150_000 });

  step("run then status: IN_QUEUE, then COMPLETED with the demo worker's output", async () => {
    const input = { prompt: "hello from runpod-sdk", n: 1 };
    const { value: ran, sent, routes } = await recorded(() => s.endpoint.run({ input }));
    assert.deepEqual(routes, ["POST /run"]);
    assert.equal(sent[0].auth, `Bearer ${s.key}`);
    assert.match(sent[0].userAgent, /^RunPod-JS-SDK\/1\.1\.2 /);
    assert.equal(typeof ran.id, "string", JSON.stringify(ran));
    assert.ok(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"].includes(ran.status), JSON.stringify(ran));

    const { value: polled, routes: statusRoutes } = await recorded(() => pollStatus(s.endpoint, ran.id));
    assert.ok(statusRoutes.every((r) => r === `GET /status/${ran.id}`), statusRoutes.join(", "));
    const st = polled.st;
    assert.equal(st.status, "COMPLETED", JSON.stringify(st).slice(0, 500));
    assert.equal(st.id, ran.id);
    // handleErrorsStatus adds these on a 200 answer
    assert.equal(st.started, true);
    assert.equal(st.completed, true);
    assert.equal(st.succeeded, true);
    assert.equal(typeof st.delayTime, "number");
    assert.equal(typeof st.executionTime, "number");
    assertDemoOutput(st.output, input);
  }, { timeout: 90_000 });

  step("runSync: one POST /runsync?wait=90000 answers COMPLETED with the output", async () => {
    const input = { prompt: "sync" };
    const { value: r, routes } = await recorded(() => s.endpoint.runSync({ input }));
    assert.deepEqual(routes, ["POST /runsync?wait=90000"]);
    assert.equal(r.status, "COMPLETED", JSON.stringify(r).slice(0, 500));
    assert.equal(typeof r.id, "string");
    assert.equal(r.completed, true);
    assert.equal(r.succeeded, true);
    assertDemoOutput(r.output, input);
  }, { timeout: 120_000 });

  step("runSync of a job longer than its wait: runsync answers unfinished, status-sync gets the result", async () => {
    // timeout 3000 -> /runsync?wait=3000 returns {id, status} before the 4 s job ends; the SDK then
    // long-polls /status-sync/{id}?wait=1000 for up to another 3 s.
    const input = { sleep: 4 };
    const { value: r, routes } = await recorded(() => s.endpoint.runSync({ input }, 3000));
    assert.equal(routes[0], "POST /runsync?wait=3000");
    assert.ok(routes.length >= 2, `runsync answered a final status at once: ${routes}`);
    assert.match(routes[1], new RegExp(`^GET /status-sync/${r.id}\\?wait=[0-9]+$`));
    assert.equal(r.status, "COMPLETED", JSON.stringify(r).slice(0, 500));
    assert.equal(r.completed, true);
    assertDemoOutput(r.output, input);
  }, { timeout: 60_000 });

  step("stream: a {stream: 3} job yields {output: {i: 0}}, {i: 1}, {i: 2} in order, each once", async () => {
    const ran = await s.endpoint.run({ input: { stream: 3 } });
    assert.equal(typeof ran.id, "string", JSON.stringify(ran));
    const chunks = [];
    // The SDK polls GET /stream/{id} back to back until the status is final; 60 s is its own cap.
    const { routes } = await recorded(async () => {
      for await (const chunk of s.endpoint.stream(ran.id, 60_000)) chunks.push(chunk);
    });
    assert.ok(routes.every((r) => r === `GET /stream/${ran.id}`), routes.slice(0, 5).join(", "));
    // Runpod's stream entries are {output: chunk}; the SDK yields them as they are.
    assert.deepEqual(chunks, [{ output: { i: 0 } }, { output: { i: 1 } }, { output: { i: 2 } }]);
    const st = await s.endpoint.status(ran.id);
    assert.equal(st.status, "COMPLETED", JSON.stringify(st));
    // Consume-on-read: a second read of the finished job yields nothing.
    const again = [];
    for await (const chunk of s.endpoint.stream(ran.id, 10_000)) again.push(chunk);
    assert.deepEqual(again, []);
  }, { timeout: 90_000 });

  step("health: the SDK's jobs and workers counters, all integers", async () => {
    const { value: h, routes } = await recorded(() => s.endpoint.health());
    assert.deepEqual(routes, ["GET /health"]);
    for (const k of ["completed", "failed", "inProgress", "inQueue", "retried"]) {
      assert.ok(Number.isInteger(h.jobs?.[k]), `jobs.${k} in ${JSON.stringify(h)}`);
    }
    for (const k of ["idle", "initializing", "ready", "running", "throttled"]) {
      assert.ok(Number.isInteger(h.workers?.[k]), `workers.${k} in ${JSON.stringify(h)}`);
    }
    // the demo job, run, two runSyncs and the stream job
    assert.ok(h.jobs.completed >= 5, JSON.stringify(h));
    assert.equal(h.jobs.failed, 0, JSON.stringify(h));
    assert.equal(h.jobs.inProgress, 0, JSON.stringify(h));
    assert.equal(h.jobs.inQueue, 0, JSON.stringify(h));
    s.completedBefore = h.jobs.completed;
  });

  step("a long job runs while low-priority jobs wait in the queue (health counts them)", async () => {
    const long = await s.endpoint.run({ input: { sleep: 30 } });
    s.longId = long.id;
    const { st: running } = await pollStatus(s.endpoint, s.longId,
      { until: (st) => st.status !== "IN_QUEUE", timeoutMs: 60_000 });
    assert.equal(running.status, "IN_PROGRESS", JSON.stringify(running));
    s.longWorker = running.workerId;
    // lowPriority: these never start a worker, and the only worker is busy with the long job.
    s.queued = [];
    for (let i = 0; i < 3; i++) {
      const r = await s.endpoint.run({ input: { sleep: 30, queued: i }, policy: { lowPriority: true } });
      s.queued.push(r.id);
    }
    for (const id of s.queued) {
      const st = await s.endpoint.status(id);
      assert.equal(st.status, "IN_QUEUE", JSON.stringify(st));
    }
    const h = await s.endpoint.health();
    assert.equal(h.jobs.inProgress, 1, JSON.stringify(h));
    assert.equal(h.jobs.inQueue, 3, JSON.stringify(h));
    assert.ok(h.workers.running >= 1, JSON.stringify(h));
  }, { critical: true, timeout: 90_000 });

  step("cancel of a queued job: POST /cancel/{id} answers CANCELLED, status stays CANCELLED", async () => {
    const id = s.queued.shift();
    const { value: c, routes } = await recorded(() => s.endpoint.cancel(id));
    assert.deepEqual(routes, [`POST /cancel/${id}`]);
    assert.equal(c.id, id);
    assert.equal(c.status, "CANCELLED", JSON.stringify(c));
    const st = await s.endpoint.status(id);
    assert.equal(st.status, "CANCELLED", JSON.stringify(st));
    assert.equal(st.completed, true);
    assert.equal(st.succeeded, false);
  });

  step("purgeQueue removes the queued jobs only; the running job goes on", async () => {
    const { value: p, routes } = await recorded(() => s.endpoint.purgeQueue());
    assert.deepEqual(routes, ["POST /purge-queue"]);
    assert.deepEqual(p, { removed: s.queued.length, status: "completed" });
    for (const id of s.queued) {
      // A purged job is gone: our status answers 404, which the SDK throws like any error status.
      const r = await sdkError(s.endpoint.status(id));
      if (r.err) assert.equal(r.err.response?.status, 404, r.err.message);
      else assert.ok(FINAL.includes(r.resolved.status), JSON.stringify(r.resolved));
    }
    const st = await s.endpoint.status(s.longId);
    assert.equal(st.status, "IN_PROGRESS", JSON.stringify(st));
    const h = await s.endpoint.health();
    assert.equal(h.jobs.inQueue, 0, JSON.stringify(h));
    assert.equal(h.jobs.inProgress, 1, JSON.stringify(h));
  });

  step("cancel of a running job ({sleep: 30}): CANCELLED at once, the worker is free again", async () => {
    const c = await s.endpoint.cancel(s.longId);
    assert.deepEqual({ id: c.id, status: c.status }, { id: s.longId, status: "CANCELLED" });
    const st = await s.endpoint.status(s.longId);
    assert.equal(st.status, "CANCELLED", JSON.stringify(st));
    assert.equal(st.output, undefined, "a cancelled job has no output");
    // The stopped worker takes the next job well before the 30 s sleep would have ended.
    const started = Date.now();
    const r = await s.endpoint.runSync({ input: { after: "cancel" } }, 20_000);
    assert.equal(r.status, "COMPLETED", JSON.stringify(r).slice(0, 500));
    assert.ok(Date.now() - started < 20_000);
    // ...the same worker: its job-stop channel ended the sleep (lowPriority jobs started no other)
    assert.equal(r.workerId, s.longWorker, JSON.stringify({ ...r, output: undefined }));
    const h = await s.endpoint.health();
    assert.equal(h.jobs.completed, s.completedBefore + 1, JSON.stringify(h));
    assert.equal(h.jobs.inProgress + h.jobs.inQueue, 0, JSON.stringify(h));
  }, { timeout: 60_000 });

  step("a wrong API key: every SDK call rejects with 'Request failed with status code 401'", async () => {
    const bad = runpodSdk("mc_not-a-key", { baseUrl: `${s.url}/v2` }).endpoint(s.endpointId);
    const calls = {
      run: () => bad.run({ input: { never: "runs" } }),
      runSync: () => bad.runSync({ input: { never: "runs" } }),
      status: () => bad.status("no-such-job"),
      cancel: () => bad.cancel("no-such-job"),
      health: () => bad.health(),
      purgeQueue: () => bad.purgeQueue(),
      stream: async () => {
        for await (const chunk of bad.stream("no-such-job", 5_000)) assert.fail(`chunk ${JSON.stringify(chunk)}`);
      },
    };
    for (const [name, call] of Object.entries(calls)) {
      const r = await sdkError(call());
      assert.ok(r.err, `${name} resolved ${JSON.stringify(r.resolved)}`);
      assert.equal(r.err.message, "Request failed with status code 401", `${name}: ${r.err.stack}`);
      assert.equal(r.err.response?.status, 401, name);
      assert.equal(typeof r.err.response?.data?.error, "string", `${name}: ${JSON.stringify(r.err.response?.data)}`);
    }
    const h = await s.endpoint.health();
    assert.equal(h.jobs.inQueue + h.jobs.inProgress, 0, `no job was created: ${JSON.stringify(h)}`);
  }, { timeout: 60_000 });

  step("SIGTERM stops up: exit 0, and no worker or other process of its data dir is left", async () => {
    const stopped = await s.up.stop();
    assert.deepEqual(stopped, { code: 0, signal: null }, s.up.output());
    let left = await processesMentioning(s.root);
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await sleep(250);
      left = await processesMentioning(s.root);
    }
    assert.deepEqual(left, [], "processes left behind");
  }, { timeout: 120_000 });
});
