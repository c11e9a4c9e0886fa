// The official Hugging Face JS client as a benchmark peer: one `snapshotDownload` of a repo from a
// hub-compatible server into a cache dir, exactly as an application would call it.
//   node bench/js/snapshot_download.mjs HUB_URL REPO CACHE_DIR [REVISION]
// Prints the snapshot folder. Uses the @huggingface/hub pinned by tests/js/package.json (and
// installed there by `npm ci`), so the benchmark and the compatibility tests run the same client.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [hubUrl, repo, cacheDir, revision = "main"] = process.argv.slice(2);
if (!hubUrl || !repo || !cacheDir) {
  console.error("usage: snapshot_download.mjs HUB_URL REPO CACHE_DIR [REVISION]");
  process.exit(2);
}
const testsJs = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "tests", "js");
const require = createRequire(join(testsJs, "package.json"));
const { snapshotDownload } = require("@huggingface/hub");
const snapshot = await snapshotDownload({ repo, cacheDir, hubUrl, revision });
console.log(snapshot);
