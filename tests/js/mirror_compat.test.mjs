// Compatibility of modelcache with the official Hugging Face JS client (@huggingface/hub, pinned in
// package.json). It proves two things with the real library, no mocks:
//   1. our cache layout (written by `modelcache import`) is what the client's cache functions read;
//   2. our mirror (`modelcache serve`) answers the client's API calls so that it downloads a repo
//      byte for byte into a layout `modelcache verify` accepts, and enforces gated access.
// Hermetic: temp dirs only, the server on 127.0.0.1 port 0, the Hub environment scrubbed.
// Tokens go to the server in the access-config file and to the client as `accessToken`, never in
// argv. Steps run in order; when a step that later ones need fails, those fail too (no skips).

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { open, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { after, describe } from "node:test";

import {
  HubApiError,
  downloadFileToCacheDir,
  fileDownloadInfo,
  listFiles,
  pathsInfo,
  scanCacheDir,
  snapshotDownload,
} from "@huggingface/hub";

import {
  describeRun,
  hashFile,
  hashTree,
  listDir,
  normalizeEtag,
  snapshotLinks,
  startServer,
} from "./lib/modelcache.mjs";
import { makeSuite } from "./lib/suite.mjs";

const REPO = "org/name";
const GATED = "org/gated";
const GATED_TOKEN = "hf_demo_token"; // the JS client insists on the hf_ prefix
const PRIVATE = "org/private";
const PRIVATE_TOKEN = "hf_private_token";
const MiB = 1024 * 1024;
const HEAVY = { timeout: 300_000 };

const folderOf = (repo) => `models--${repo.replace("/", "--")}`;
const isAuthError = (err) =>
  err instanceof HubApiError && (err.statusCode === 401 || err.statusCode === 403);

// Shared state filled in by the steps, in order.
const { s, step, cli, begin, end } = makeSuite();

async function cliJson(args) {
  const r = await cli(args);
  try {
    return JSON.parse(r.stdout);
  } catch (err) {
    assert.fail(`stdout is not JSON (${err.message}): ${describeRun(args, r)}`);
  }
}

// Files the import reported, as a Map path -> { etag, size, lfs }.
const importedFiles = (imported) => new Map(imported.files.map((f) => [f.path, f]));

// Checks a cache dir against an import report: relative links of the right depth to blobs named
// by etag, blob sizes, refs/main holding the commit with no newline, no leftover temp files.
async function assertHfLayout(cacheDir, repo, imported) {
  const repoDir = join(cacheDir, folderOf(repo));
  assert.equal(await readFile(join(repoDir, "refs", "main"), "utf8"), imported.commit);
  const { links, others } = await snapshotLinks(join(repoDir, "snapshots", imported.commit));
  assert.deepEqual(others, [], "snapshot entries must all be symlinks");
  const expected = new Map();
  for (const f of imported.files) {
    const depth = f.path.split("/").length - 1;
    expected.set(f.path, `${"../".repeat(depth + 2)}blobs/${f.etag}`);
  }
  assert.deepEqual(new Map([...links].sort()), new Map([...expected].sort()));
  const blobs = await listDir(join(repoDir, "blobs"));
  assert.deepEqual(blobs.filter((b) => b.includes(".")), [], "no .incomplete or temp files");
  assert.deepEqual(blobs, [...new Set(imported.files.map((f) => f.etag))].sort());
}

// Checks what the JS scanCacheDir reports for one repo. The client's scan is not recursive (it
// skips sub-directories of a snapshot: hf-hub-protocol.md §1.12), so only top-level files count.
function assertScannedRepo(scan, repo, imported) {
  const found = scan.repos.filter((r) => r.id.type === "model" && r.id.name === repo);
  assert.equal(found.length, 1, `scanCacheDir repos: ${scan.repos.map((r) => r.id.name)}`);
  const [entry] = found;
  assert.equal(entry.revisions.length, 1);
  const [rev] = entry.revisions;
  assert.equal(rev.commitOid, imported.commit);
  assert.deepEqual(rev.refs, ["main"]);
  const topLevel = imported.files.filter((f) => !f.path.includes("/"));
  const seen = new Map(rev.files.map((f) => [basename(f.path), f.blob]));
  assert.deepEqual([...seen.keys()].sort(), topLevel.map((f) => f.path).sort());
  for (const f of topLevel) {
    assert.equal(seen.get(f.path).size, f.size, `size of ${f.path}`);
    assert.equal(basename(seen.get(f.path).path), f.etag, `blob of ${f.path}`);
  }
  const distinct = new Map(topLevel.map((f) => [f.etag, f.size]));
  assert.equal(entry.filesCount, distinct.size);
  assert.equal(entry.size, [...distinct.values()].reduce((a, b) => a + b, 0));
}

// Asserts that a downloaded snapshot holds exactly the fixture's files with the same bytes.
async function assertSameBytes(snapshotDir, fixture) {
  const got = await hashTree(snapshotDir);
  assert.deepEqual([...got.keys()], [...fixture.keys()]);
  for (const [path, want] of fixture) assert.deepEqual(got.get(path), want, path);
}

describe("modelcache with the official @huggingface/hub JS client", { concurrency: false }, () => {
  after(end);

  step("the modelcache binary exists", async () => {
    await begin("modelcache-js-");
    s.importCache = join(s.root, "import-cache");
    s.accessConfig = join(s.root, "access.json");
    await writeFile(
      s.accessConfig,
      JSON.stringify({ repos: {
        [GATED]: { gated: "manual", tokens: [GATED_TOKEN] },
        [PRIVATE]: { private: true, tokens: [PRIVATE_TOKEN] },
      } }),
    );
  }, { critical: true });

  step("fixture writes >= 3 files, one nested, and a >= 64 MiB model.safetensors", async () => {
    s.fixtureDir = join(s.root, "fixture");
    // The fixture picks whole layers and lands below the requested size (64MiB gives 56 MiB).
    await cli(["fixture", s.fixtureDir, "--size", "80MiB", "--seed", "7"]);
    s.fixture = await hashTree(s.fixtureDir);
    const paths = [...s.fixture.keys()];
    assert.ok(paths.length >= 3, `files: ${paths}`);
    assert.ok(paths.some((p) => p.includes("/")), `a nested file: ${paths}`);
    assert.ok(s.fixture.has("original/params.json"), `files: ${paths}`);
    const weights = s.fixture.get("model.safetensors")?.size;
    assert.ok(weights >= 64 * MiB, `model.safetensors is ${weights} bytes, want >= 64 MiB`);

    s.gatedDir = join(s.root, "gated-fixture");
    await cli(["fixture", s.gatedDir, "--size", "2MiB", "--shards", "2", "--seed", "8"]);
    s.gatedFixture = await hashTree(s.gatedDir);
  }, { critical: true, ...HEAVY });

  step("import --json reports every file with its size and content hash", async () => {
    s.imported = await cliJson(["import", s.fixtureDir, "--repo", REPO, "--revision", "main",
      "--cache-dir", s.importCache, "--json"]);
    s.gatedImported = await cliJson(["import", s.gatedDir, "--repo", GATED,
      "--cache-dir", s.importCache, "--json"]);
    s.privateImported = await cliJson(["import", s.gatedDir, "--repo", PRIVATE,
      "--cache-dir", s.importCache, "--json"]);
    for (const [imported, fixture, repo] of [[s.imported, s.fixture, REPO],
      [s.gatedImported, s.gatedFixture, GATED]]) {
      assert.equal(imported.repo, repo);
      assert.match(imported.commit, /^[0-9a-f]{40}$/);
      const files = importedFiles(imported);
      assert.deepEqual([...files.keys()].sort(), [...fixture.keys()]);
      let bytes = 0;
      for (const [path, want] of fixture) {
        const f = files.get(path);
        assert.equal(f.size, want.size, `size of ${path}`);
        assert.equal(f.etag, f.lfs ? want.sha256 : want.gitSha1, `etag of ${path} (lfs=${f.lfs})`);
        bytes += want.size;
      }
      assert.equal(imported.bytes, bytes);
    }
    assert.equal(importedFiles(s.imported).get("model.safetensors").lfs, true);
    assert.equal(importedFiles(s.imported).get("config.json").lfs, false);
  }, { critical: true, ...HEAVY });

  step("the import cache has the exact HF layout", async () => {
    await assertHfLayout(s.importCache, REPO, s.imported);
    await assertHfLayout(s.importCache, GATED, s.gatedImported);
  });

  step("modelcache verify and ls accept the import cache", async () => {
    await cli(["verify", "--cache-dir", s.importCache]);
    await cli(["verify", `${REPO}@main`, "--cache-dir", s.importCache, "--json"]);
    const ls = await cliJson(["ls", "--cache-dir", s.importCache, "--json"]);
    const entry = ls.repos.find((r) => r.repo === REPO);
    assert.ok(entry, `ls repos: ${JSON.stringify(ls.repos.map((r) => r.repo))}`);
    const distinct = new Map(s.imported.files.map((f) => [f.etag, f.size]));
    assert.equal(entry.size_on_disk, [...distinct.values()].reduce((a, b) => a + b, 0));
  }, HEAVY);

  step("JS scanCacheDir reads our import cache without warnings", async () => {
    const scan = await scanCacheDir(s.importCache);
    assert.deepEqual(scan.warnings.map((w) => w.message), []);
    assertScannedRepo(scan, REPO, s.imported);
    assertScannedRepo(scan, GATED, s.gatedImported);
  });

  step("serve announces its URL on stdout", async () => {
    s.server = await startServer(s.bin, ["serve", "--cache-dir", s.importCache,
      "--listen", "127.0.0.1:0", "--access-config", s.accessConfig], { env: s.env });
    s.url = s.server.url;
  }, { critical: true });

  step("JS listFiles (recursive) lists every file with Hub sizes and ids", async () => {
    const entries = [];
    for await (const e of listFiles({ repo: REPO, recursive: true, revision: "main", hubUrl: s.url })) {
      entries.push(e);
    }
    for (const e of entries) assert.ok(e.type === "file" || e.type === "directory", e.type);
    const files = new Map(entries.filter((e) => e.type === "file").map((e) => [e.path, e]));
    assert.deepEqual([...files.keys()].sort(), [...s.fixture.keys()]);
    for (const f of s.imported.files) {
      const e = files.get(f.path);
      assert.equal(e.size, f.size, `size of ${f.path}`);
      if (f.lfs) {
        assert.equal(e.lfs?.oid, f.etag, `lfs.oid of ${f.path}`);
        assert.equal(e.lfs?.size, f.size, `lfs.size of ${f.path}`);
        assert.match(e.oid ?? "", /^[0-9a-f]{40}$/, `oid (pointer sha1) of ${f.path}`);
      } else {
        assert.equal(e.oid, f.etag, `oid of ${f.path}`);
        assert.equal(e.lfs, undefined, `no lfs for ${f.path}`);
      }
      assert.equal(e.xetHash, undefined, "no xetHash: we serve no Xet CAS");
    }
  });

  step("JS listFiles (not recursive) lists top-level files and folders only", async () => {
    const entries = [];
    for await (const e of listFiles({ repo: REPO, revision: "main", hubUrl: s.url })) entries.push(e);
    const byPath = new Map(entries.map((e) => [e.path, e.type]));
    assert.equal(byPath.get("original"), "directory");
    assert.equal(byPath.get("config.json"), "file");
    assert.equal(byPath.has("original/params.json"), false);
  });

  step("JS pathsInfo and fileDownloadInfo describe files like the Hub", async () => {
    const files = importedFiles(s.imported);
    const infos = await pathsInfo({ repo: REPO, paths: ["model.safetensors", "config.json"],
      revision: "main", expand: true, hubUrl: s.url });
    const byPath = new Map(infos.map((i) => [i.path, i]));
    assert.equal(byPath.get("model.safetensors")?.lfs?.oid, files.get("model.safetensors").etag);
    assert.equal(byPath.get("model.safetensors")?.size, files.get("model.safetensors").size);
    assert.equal(byPath.get("config.json")?.oid, files.get("config.json").etag);
    assert.match(byPath.get("config.json")?.lastCommit?.id ?? "", /^[0-9a-f]{40}$/);

    for (const path of ["model.safetensors", "original/params.json"]) {
      const info = await fileDownloadInfo({ repo: REPO, path, revision: "main", hubUrl: s.url });
      assert.ok(info, `fileDownloadInfo(${path}) returned null`);
      assert.equal(info.size, files.get(path).size, `size of ${path}`);
      assert.equal(normalizeEtag(info.etag), files.get(path).etag, `etag of ${path}`);
      assert.equal(info.xet, undefined);
    }
    const missing = await fileDownloadInfo({ repo: REPO, path: "nope.json", hubUrl: s.url });
    assert.equal(missing, null, "a missing file is EntryNotFound (null), not an error");
  });

  step("JS snapshotDownload from our mirror reproduces the fixture byte for byte", async () => {
    s.jsCache = join(s.root, "js-cache");
    const snapshot = await snapshotDownload({ repo: REPO, cacheDir: s.jsCache, hubUrl: s.url });
    assert.equal(snapshot, join(s.jsCache, folderOf(REPO), "snapshots", s.imported.commit));
    await assertSameBytes(snapshot, s.fixture);
  }, { critical: true, ...HEAVY });

  step("the JS-downloaded cache has the same layout as ours", async () => {
    await assertHfLayout(s.jsCache, REPO, s.imported);
  });

  step("modelcache verify accepts the JS-downloaded cache", async () => {
    await cli(["verify", "--cache-dir", s.jsCache]);
    await cli(["verify", REPO, "--cache-dir", s.jsCache]);
  }, HEAVY);

  step("JS scanCacheDir sees the same repo in the JS-downloaded cache", async () => {
    const scan = await scanCacheDir(s.jsCache);
    assert.deepEqual(scan.warnings.map((w) => w.message), []);
    assertScannedRepo(scan, REPO, s.imported);
    assert.equal(scan.repos.length, 1);
  });

  step("gated repo: the mirror refuses the JS client without a token", async () => {
    const cacheDir = join(s.root, "gated-no-token");
    await assert.rejects(snapshotDownload({ repo: GATED, cacheDir, hubUrl: s.url }), isAuthError);
    await assert.rejects(
      downloadFileToCacheDir({ repo: GATED, path: "config.json", cacheDir, hubUrl: s.url }),
      isAuthError);
    await assert.rejects(
      fileDownloadInfo({ repo: GATED, path: "config.json", hubUrl: s.url }), isAuthError);
    assert.deepEqual(await listDir(join(cacheDir, folderOf(GATED), "blobs")), [], "no bytes leaked");
  });

  step("gated repo: metadata stays visible without a token, as on the Hub", async () => {
    const paths = [];
    for await (const e of listFiles({ repo: GATED, recursive: true, hubUrl: s.url })) {
      if (e.type === "file") paths.push(e.path);
    }
    assert.deepEqual(paths.sort(), [...s.gatedFixture.keys()]);
  });

  step("private repo: hidden on every route without its token", async () => {
    const notFound = (err) =>
      err instanceof HubApiError && (err.statusCode === 401 || err.statusCode === 404);
    await assert.rejects(async () => {
      for await (const _ of listFiles({ repo: PRIVATE, hubUrl: s.url }));
    }, notFound);
    await assert.rejects(
      fileDownloadInfo({ repo: PRIVATE, path: "config.json", hubUrl: s.url }), notFound);
    const cacheDir = join(s.root, "private-token");
    const snapshot = await snapshotDownload({ repo: PRIVATE, cacheDir, hubUrl: s.url,
      accessToken: PRIVATE_TOKEN });
    await assertSameBytes(snapshot, s.gatedFixture);
  }, HEAVY);

  step("gated repo: resolve without a token answers X-Error-Code GatedRepo", async () => {
    const res = await fetch(`${s.url}/${GATED}/resolve/main/config.json`);
    await res.arrayBuffer();
    assert.ok(res.status === 401 || res.status === 403, `status ${res.status}`);
    assert.equal(res.headers.get("x-error-code"), "GatedRepo");
  });

  step("gated repo: the mirror refuses a wrong token", async () => {
    const cacheDir = join(s.root, "gated-wrong-token");
    await assert.rejects(snapshotDownload({ repo: GATED, cacheDir, hubUrl: s.url,
      accessToken: "hf_wrong_token" }), isAuthError);
    assert.deepEqual(await listDir(join(cacheDir, folderOf(GATED), "blobs")), []);
  });

  step("gated repo: with the right token the JS client downloads it", async () => {
    const cacheDir = join(s.root, "gated-token");
    const snapshot = await snapshotDownload({ repo: GATED, cacheDir, hubUrl: s.url,
      accessToken: GATED_TOKEN });
    assert.equal(snapshot, join(cacheDir, folderOf(GATED), "snapshots", s.gatedImported.commit));
    await assertSameBytes(snapshot, s.gatedFixture);
    await cli(["verify", "--cache-dir", cacheDir]);
  }, HEAVY);

  step("serve stops on SIGTERM with exit code 0 and never logged the token", async () => {
    const result = await s.server.stop();
    assert.deepEqual(result, { code: 0, signal: null });
    for (const token of [GATED_TOKEN, PRIVATE_TOKEN, "hf_wrong_token"]) {
      assert.equal(s.server.output().includes(token), false, `${token} in the server output`);
    }
  });

  step("JS downloadFileToCacheDir finds files of our cache without any request", async () => {
    let requests = 0;
    const countingFetch = (...args) => {
      requests += 1;
      return fetch(...args);
    };
    for (const path of ["config.json", "original/params.json", "model.safetensors"]) {
      const got = await downloadFileToCacheDir({ repo: REPO, path, revision: s.imported.commit,
        cacheDir: s.importCache, hubUrl: s.url, fetch: countingFetch });
      assert.equal(got, join(s.importCache, folderOf(REPO), "snapshots", s.imported.commit, path));
      assert.deepEqual(await hashFile(got), s.fixture.get(path), path);
    }
    assert.equal(requests, 0, "the server is stopped: no request may be needed");
  }, HEAVY);

  step("modelcache verify fails once a blob is corrupted", async () => {
    const etag = importedFiles(s.imported).get("config.json").etag;
    const blob = join(s.jsCache, folderOf(REPO), "blobs", etag);
    assert.ok(existsSync(blob));
    const fh = await open(blob, "r+");
    try {
      const { buffer } = await fh.read(Buffer.alloc(1), 0, 1, 0);
      await fh.write(Buffer.from([buffer[0] ^ 0xff]), 0, 1, 0);
    } finally {
      await fh.close();
    }
    const r = await cli(["verify", "--cache-dir", s.jsCache], { expectCode: null });
    assert.notEqual(r.code, 0, describeRun(["verify", "--cache-dir", s.jsCache], r));
  });
});
