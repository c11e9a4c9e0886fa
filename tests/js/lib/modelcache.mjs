// Helpers for driving the modelcache binary and inspecting Hugging Face caches from node:test.
// Nothing here talks to the network except through the servers the tests start on 127.0.0.1.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { access, constants, lstat, readdir, readlink, stat } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, "..", "..", "..");

// The binary under test: $MODELCACHE_BIN, else <repo>/build/src/cli/modelcache. Returns
// { path, error }: error is a message saying how to fix a missing binary (never a silent skip).
export async function resolveBinary() {
  const fromEnv = process.env.MODELCACHE_BIN;
  const path = resolve(fromEnv || join(REPO_ROOT, "build", "src", "cli", "modelcache"));
  try {
    await access(path, constants.X_OK);
    return { path, error: null };
  } catch {
    return {
      path,
      error:
        `modelcache binary not found or not executable at ${path}` +
        (fromEnv ? " (from MODELCACHE_BIN)" : "") +
        ". Build it (cmake --build build --target modelcache) or set MODELCACHE_BIN.",
    };
  }
}

// The environment for child processes: the caller's, minus every Hub setting that could make a
// test depend on the machine (tokens, endpoint, cache location, offline mode), plus HF_HOME in the
// test's own temp dir.
export function hermeticEnv(hfHome) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(HF_|HUGGING_?FACE|TRANSFORMERS_|MODELCACHE_)/.test(key)) continue;
    env[key] = value;
  }
  env.HF_HOME = hfHome;
  return env;
}

// Runs `bin args...` to completion. Resolves { code, signal, stdout, stderr }; never rejects on a
// non-zero exit (the test decides), rejects if the process cannot start or exceeds timeoutMs.
export function runCli(bin, args, { env, timeoutMs = 120_000 } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`modelcache ${args[0]} did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

// Formats a CLI result for an assertion message.
export function describeRun(args, r) {
  return `modelcache ${args.join(" ")} -> exit ${r.code}${r.signal ? ` (${r.signal})` : ""}\n` +
    `stdout:\n${r.stdout.slice(0, 4000)}\nstderr:\n${r.stderr.slice(0, 4000)}`;
}

// Starts `modelcache serve ...` and waits for its one line "listening on http://127.0.0.1:PORT".
// Resolves { url, child, output(), stop() }. stop() sends SIGTERM, waits up to 10 s (then
// SIGKILL) and resolves { code, signal }.
export function startServer(bin, args, { env, timeoutMs = 30_000 } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let ready = false;
    const exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
    const killOnExit = () => child.kill("SIGKILL");
    process.on("exit", killOnExit);
    const fail = (why) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`modelcache serve: ${why}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`no 'listening on' line within ${timeoutMs} ms`), timeoutMs);
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.stdout.setEncoding("utf8").on("data", (d) => {
      stdout += d;
      if (ready || !stdout.includes("\n")) return;
      ready = true;
      const first = stdout.slice(0, stdout.indexOf("\n"));
      const m = /^listening on (http:\/\/127\.0\.0\.1:([0-9]+))$/.exec(first);
      if (!m || Number(m[2]) === 0) return fail(`unexpected first line ${JSON.stringify(first)}`);
      clearTimeout(timer);
      let stopped = null;
      resolvePromise({
        url: m[1],
        child,
        output: () => stdout + stderr,
        stop: () => {
          if (stopped) return stopped;
          stopped = (async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
            const force = setTimeout(() => child.kill("SIGKILL"), 10_000);
            const result = await exited;
            clearTimeout(force);
            process.off("exit", killOnExit);
            return result;
          })();
          return stopped;
        },
      });
    });
    child.on("error", (err) => fail(`cannot start: ${err.message}`));
    exited.then(({ code, signal }) => {
      if (!ready) fail(`exited before listening (code ${code}, signal ${signal})`);
    });
  });
}

// sha256 and git blob sha1 (the two blob names of the HF cache) of a file, following symlinks.
export async function hashFile(path) {
  const { size } = await stat(path);
  const sha256 = createHash("sha256");
  const gitSha1 = createHash("sha1").update(`blob ${size}\0`);
  for await (const chunk of createReadStream(path)) {
    sha256.update(chunk);
    gitSha1.update(chunk);
  }
  return { size, sha256: sha256.digest("hex"), gitSha1: gitSha1.digest("hex") };
}

// Every file under `root` (recursively, symlinks followed) as a Map of '/'-separated relative
// path -> { size, sha256, gitSha1 }, sorted by path.
export async function hashTree(root) {
  const out = new Map();
  async function walk(dir) {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      const s = await stat(full);
      if (s.isDirectory()) await walk(full);
      else if (s.isFile()) out.set(relative(root, full).split(sep).join("/"), await hashFile(full));
    }
  }
  await walk(root);
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// Symlinks under a snapshot directory: Map of relative path -> link target, plus any entry that
// is neither a directory nor a symlink under `others`.
export async function snapshotLinks(snapshotDir) {
  const links = new Map();
  const others = [];
  async function walk(dir) {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      const rel = relative(snapshotDir, full).split(sep).join("/");
      const s = await lstat(full);
      if (s.isDirectory()) await walk(full);
      else if (s.isSymbolicLink()) links.set(rel, await readlink(full));
      else others.push(rel);
    }
  }
  await walk(snapshotDir);
  return { links, others };
}

// Names in a directory, [] when it does not exist.
export async function listDir(dir) {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if (err.code === "ENOENT") return [];
    throw err;
  }
}

// The etag a Hub response header carries, normalised like huggingface_hub: W/ and quotes removed.
export function normalizeEtag(value) {
  return String(value ?? "").replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}
