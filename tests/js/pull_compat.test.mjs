// A cache written by `modelcache pull` is a cache the official Hugging Face JS client
// (@huggingface/hub, pinned in package.json) reads as its own: its scan reports the repo, the
// revision and every file with its size, without warnings; its cache lookup finds pulled files
// without downloading them (with the server stopped, when asked by commit); and the pulled bytes
// are the upstream's.
// Setup: a generated model imported into an upstream cache, served by `modelcache serve` on
// 127.0.0.1 port 0, pulled with `modelcache pull --endpoint` into a fresh cache. Hermetic: temp dirs
// only, the Hub environment scrubbed. Steps run in order; when a step that later ones need fails,
// those fail too (no skips).

import assert from "node:assert/strict";
import { readFile, readdir, realpath } from "node:fs/promises";
import { basename, join } from "node:path";
import { after, describe } from "node:test";

import { downloadFileToCacheDir, scanCacheDir, snapshotDownload } from "@huggingface/hub";

import {
  hashFile,
  hashTree,
  listDir,
  snapshotLinks,
  startServer,
} from "./lib/modelcache.mjs";
import { makeSuite } from "./lib/suite.mjs";

const REPO = "org/pulled";
const HEAVY = { timeout: 300_000 };
const folderOf = (repo) => `models--${repo.replace("/", "--")}`;

const { s, step, cli, begin, end } = makeSuite();

// A fetch for the JS client that records every URL it is asked for.
function recordingFetch() {
  const urls = [];
  const fn = (input, init) => {
    urls.push(String(input instanceof Request ? input.url : input));
    return fetch(input, init);
  };
  return { fn, urls };
}

describe("a cache written by modelcache pull, read by the official JS client", { concurrency: false }, () => {
  after(end);

  step("the modelcache binary exists", async () => {
    await begin("modelcache-js-pull-");
  }, { critical: true });

  step("an upstream cache holds a generated model (sharded, with a nested file)", async () => {
    s.fixtureDir = join(s.root, "fixture");
    await cli(["fixture", s.fixtureDir, "--size", "24MiB", "--shards", "3", "--seed", "21"]);
    s.fixture = await hashTree(s.fixtureDir);
    assert.ok(s.fixture.has("model.safetensors.index.json"), `files: ${[...s.fixture.keys()]}`);
    assert.ok(s.fixture.has("original/params.json"), `files: ${[...s.fixture.keys()]}`);
    s.upstream = join(s.root, "upstream");
    const r = await cli(["import", s.fixtureDir, "--repo", REPO, "--cache-dir", s.upstream, "--json"]);
    s.imported = JSON.parse(r.stdout);
    assert.match(s.imported.commit, /^[0-9a-f]{40}$/);
    s.files = new Map(s.imported.files.map((f) => [f.path, f]));
    assert.deepEqual([...s.files.keys()].sort(), [...s.fixture.keys()]);
  }, { critical: true, ...HEAVY });

  step("serve announces its URL", async () => {
    s.server = await startServer(s.bin, ["serve", "--cache-dir", s.upstream, "--listen", "127.0.0.1:0"],
      { env: s.env });
    s.url = s.server.url;
  }, { critical: true });

  step("modelcache pull fetches the repo into a fresh cache and prints the snapshot path", async () => {
    s.cache = join(s.root, "pulled-cache");
    s.snapshot = join(s.cache, folderOf(REPO), "snapshots", s.imported.commit);
    const r = await cli(["pull", REPO, "--endpoint", s.url, "--cache-dir", s.cache,
      "--state-dir", join(s.root, "pull-state")], { timeoutMs: 240_000 });
    const lines = r.stdout.split("\n").filter((l) => l.trim() !== "");
    assert.equal(lines.at(-1), s.snapshot, `stdout must end with the snapshot path\n${r.stdout}`);
  }, { critical: true, ...HEAVY });

  step("the pulled cache has the HF layout: refs/main, relative links to blobs named by etag", async () => {
    const repoDir = join(s.cache, folderOf(REPO));
    assert.equal(await readFile(join(repoDir, "refs", "main"), "utf8"), s.imported.commit);
    const { links, others } = await snapshotLinks(s.snapshot);
    assert.deepEqual(others, [], "snapshot entries must all be symlinks");
    const want = new Map();
    for (const f of s.imported.files) {
      want.set(f.path, `${"../".repeat(f.path.split("/").length + 1)}blobs/${f.etag}`);
    }
    assert.deepEqual(new Map([...links].sort()), new Map([...want].sort()));
    const blobs = await listDir(join(repoDir, "blobs"));
    assert.deepEqual(blobs, [...new Set(s.imported.files.map((f) => f.etag))].sort(),
      "blobs/ holds exactly the etags: no .incomplete or temp files");
    assert.deepEqual((await readdir(repoDir)).sort(), ["blobs", "refs", "snapshots"]);
  });

  step("modelcache verify accepts the pulled cache", async () => {
    await cli(["verify", "--cache-dir", s.cache]);
  }, HEAVY);

  step("(c) every pulled file has the upstream's bytes", async () => {
    const got = await hashTree(s.snapshot);
    assert.deepEqual([...got.keys()], [...s.fixture.keys()]);
    for (const [path, want] of s.fixture) assert.deepEqual(got.get(path), want, path);
  }, HEAVY);

  step("(a) JS scanCacheDir reports the repo, the revision, its files and sizes, no warnings", async () => {
    const scan = await scanCacheDir(s.cache);
    assert.deepEqual(scan.warnings.map((w) => w.message), []);
    assert.equal(scan.repos.length, 1, `repos: ${scan.repos.map((r) => r.id.name)}`);
    const [repo] = scan.repos;
    assert.deepEqual(repo.id, { name: REPO, type: "model" });
    assert.equal(repo.path, join(s.cache, folderOf(REPO)));
    assert.equal(repo.revisions.length, 1);
    const [rev] = repo.revisions;
    assert.equal(rev.commitOid, s.imported.commit);
    assert.deepEqual(rev.refs, ["main"]);
    assert.equal(rev.path, s.snapshot);
    // The 2.17.5 scan does not descend into snapshot sub-folders (original/params.json is not
    // listed): only top-level files are compared.
    const topLevel = s.imported.files.filter((f) => !f.path.includes("/"));
    const seen = new Map(rev.files.map((f) => [basename(f.path), f]));
    const blobsDir = await realpath(join(s.cache, folderOf(REPO), "blobs")); // the scan resolves links
    assert.deepEqual([...seen.keys()].sort(), topLevel.map((f) => f.path).sort());
    for (const f of topLevel) {
      const entry = seen.get(f.path);
      assert.equal(entry.path, join(s.snapshot, f.path));
      assert.equal(entry.blob.size, f.size, `size of ${f.path}`);
      assert.equal(entry.blob.path, join(blobsDir, f.etag), `blob of ${f.path}`);
    }
    assert.equal(rev.size, topLevel.reduce((a, f) => a + f.size, 0)); // per file, as the scan sums
    const distinct = new Map(topLevel.map((f) => [f.etag, f.size]));
    assert.equal(repo.filesCount, distinct.size);
    assert.equal(repo.size, [...distinct.values()].reduce((a, b) => a + b, 0)); // per blob
  });

  step("(b) JS downloadFileToCacheDir by branch: one paths-info request, no download", async () => {
    const rec = recordingFetch();
    const got = await downloadFileToCacheDir({ repo: REPO, path: "model-00002-of-00003.safetensors",
      revision: "main", cacheDir: s.cache, hubUrl: s.url, fetch: rec.fn });
    assert.equal(got, join(s.snapshot, "model-00002-of-00003.safetensors"));
    assert.equal(rec.urls.length, 1, `requests: ${rec.urls}`);
    assert.match(rec.urls[0], /\/api\/models\/org\/pulled\/paths-info\/main$/);
  });

  step("(b) JS snapshotDownload over the pulled cache lists the repo but downloads no file", async () => {
    const rec = recordingFetch();
    const got = await snapshotDownload({ repo: REPO, cacheDir: s.cache, hubUrl: s.url, fetch: rec.fn });
    assert.equal(got, s.snapshot);
    assert.deepEqual(rec.urls.filter((u) => u.includes("/resolve/")), [], `requests: ${rec.urls}`);
    assert.deepEqual(await listDir(join(s.cache, folderOf(REPO), "blobs")),
      [...new Set(s.imported.files.map((f) => f.etag))].sort());
  });

  step("(b) with the mirror stopped, JS downloadFileToCacheDir by commit finds every pulled file", async () => {
    const stopped = await s.server.stop();
    assert.deepEqual(stopped, { code: 0, signal: null });
    const rec = recordingFetch();
    for (const f of s.imported.files) {
      const got = await downloadFileToCacheDir({ repo: REPO, path: f.path, revision: s.imported.commit,
        cacheDir: s.cache, hubUrl: s.url, fetch: rec.fn });
      assert.equal(got, join(s.snapshot, f.path));
      assert.deepEqual(await hashFile(got), s.fixture.get(f.path), f.path);
    }
    assert.deepEqual(rec.urls, [], "the mirror is stopped: no request may be needed");
  }, HEAVY);
});
