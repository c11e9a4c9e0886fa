// The scaffolding every compatibility test file shares: ordered steps over one state object, the
// CLI run with the suite's hermetic environment, and setup / teardown of the temp dir.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";

import { describeRun, hermeticEnv, resolveBinary, runCli } from "./modelcache.mjs";

export function makeSuite() {
  const s = {};
  let blocker = null; // name and reason of the failed step later steps depend on

  // A test. A `critical` step's failure makes every later step fail with its reason (no skips).
  function step(name, fn, { critical = false, ...opts } = {}) {
    it(name, opts, async () => {
      if (blocker) assert.fail(`not run because an earlier step failed: ${blocker}`);
      try {
        await fn();
      } catch (err) {
        if (critical) blocker = `${name}: ${err.message.split("\n")[0]}`;
        throw err;
      }
    });
  }

  // Runs modelcache with the suite's environment; checks the exit code unless expectCode is null.
  async function cli(args, { expectCode = 0, timeoutMs } = {}) {
    const r = await runCli(s.bin, args, { env: s.env, timeoutMs });
    if (expectCode !== null) assert.equal(r.code, expectCode, describeRun(args, r));
    return r;
  }

  // Finds the binary, makes the temp root `s.root` and the hermetic environment `s.env`, and
  // scrubs the Hub variables from this process (the JS client reads them too).
  async function begin(prefix) {
    const bin = await resolveBinary();
    if (bin.error) assert.fail(bin.error);
    s.bin = bin.path;
    s.root = await mkdtemp(join(tmpdir(), prefix));
    s.env = hermeticEnv(join(s.root, "hf-home"));
    process.env.HF_HOME = s.env.HF_HOME; // the client's defaults, should anything fall back to them
    for (const key of ["HF_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT"]) {
      delete process.env[key];
    }
  }

  // Stops `s.server` if one runs and removes the temp root (kept with MODELCACHE_KEEP_TMP=1).
  async function end() {
    if (s.server) await s.server.stop();
    if (s.root && !process.env.MODELCACHE_KEEP_TMP) await rm(s.root, { recursive: true, force: true });
    else if (s.root) console.log(`kept ${s.root}`);
  }

  return { s, step, cli, begin, end };
}
