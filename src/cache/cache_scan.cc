// ScanCache: scan_cache_dir semantics (hf-hub-protocol.md §1.12). A corrupted repo becomes a
// warning with the same wording as huggingface_hub's CorruptedCacheException and is left out.
#include "mc/cache/cache_scan.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>
#include <system_error>

#include "cache/fs_util.h"
#include "cache/snapshot_walk.h"

namespace mc::cache {

namespace fs = std::filesystem;

namespace {

const std::set<std::string> kIgnoredNames = {".DS_Store", "Thumbs.db", "desktop.ini"};

using BlobKey = std::pair<dev_t, ino_t>;

std::vector<fs::path> SortedChildren(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) out.push_back(it->path());
  std::sort(out.begin(), out.end());
  return out;
}

Status Corrupted(std::string message) { return FailedPreconditionError(std::move(message)); }

StatusOr<RepoId> CheckRepoFolder(const fs::path& dir) {
  struct stat st;
  if (!internal::Stat(dir, &st) || !S_ISDIR(st.st_mode)) {
    return Corrupted("Scan cache expects a directory but found a file: " + dir.string());
  }
  std::string name = dir.filename().string();
  size_t sep = name.find("--");
  if (sep == std::string::npos) {
    return Corrupted("Repo path is not a valid HuggingFace cache directory: " + dir.string());
  }
  std::string type = name.substr(0, sep);
  if (type != "models" && type != "datasets" && type != "spaces") {
    return Corrupted("Repo type must be `dataset`, `model` or `space`, found `" +
                     type.substr(0, type.empty() ? 0 : type.size() - 1) + "` (" + dir.string() +
                     ").");
  }
  auto repo = RepoId::FromFolderName(name);
  if (!repo.ok()) return Corrupted(repo.status().message() + " (" + dir.string() + ")");
  return *repo;
}

// commit -> ref names, from refs/ walked recursively.
StatusOr<std::map<std::string, std::vector<std::string>>> ReadRefs(const fs::path& repo_dir) {
  std::map<std::string, std::vector<std::string>> refs;
  fs::path refs_dir = repo_dir / "refs";
  struct stat st;
  if (!internal::LStat(refs_dir, &st)) return refs;
  if (!S_ISDIR(st.st_mode))
    return Corrupted("Refs directory cannot be a file: " + refs_dir.string());
  for (const std::string& name : internal::ListFilesRecursive(refs_dir)) {
    auto content = internal::ReadSmallFile(refs_dir / name, 4096);
    refs[content.ok() ? *content : ""].push_back(name);
  }
  return refs;
}

struct BlobStats {
  std::map<BlobKey, struct stat> all;
};

void AddTimes(const struct stat& st, FileTime* accessed, FileTime* modified) {
  *accessed = std::max(*accessed, internal::ToFileTime(st.st_atim));
  *modified = std::max(*modified, internal::ToFileTime(st.st_mtim));
}

StatusOr<CachedRevision> ScanRevision(const fs::path& snap, const fs::path& blobs_dir,
                                      BlobStats& repo_blobs) {
  MC_ASSIGN_OR_RETURN(auto entries, internal::WalkSnapshot(snap));
  CachedRevision rev;
  rev.commit = snap.filename().string();
  std::set<BlobKey> mine;
  for (const auto& e : entries) {
    if (!e.exists) return Corrupted("Blob missing (broken symlink): " + e.resolved.string());
    auto etag = internal::BlobEtagOf(e, blobs_dir);
    rev.files.push_back({e.rel, etag ? etag->str() : "", e.resolved,
                         static_cast<uint64_t>(e.st.st_size), internal::ToFileTime(e.st.st_atim),
                         internal::ToFileTime(e.st.st_mtim)});
    BlobKey key{e.st.st_dev, e.st.st_ino};
    repo_blobs.all.emplace(key, e.st);
    if (mine.insert(key).second) {
      rev.size_on_disk += static_cast<uint64_t>(e.st.st_size);
      FileTime unused;
      AddTimes(e.st, &unused, &rev.last_modified);
    }
  }
  if (entries.empty()) {
    struct stat st;
    if (internal::Stat(snap, &st)) rev.last_modified = internal::ToFileTime(st.st_mtim);
  }
  return rev;
}

std::string FormatMissingRefs(const std::map<std::string, std::vector<std::string>>& refs) {
  std::string out = "{";
  for (const auto& [commit, names] : refs) {
    if (out.size() > 1) out += ", ";
    out += "'" + commit + "': {";
    for (size_t i = 0; i < names.size(); ++i) out += (i ? ", '" : "'") + names[i] + "'";
    out += "}";
  }
  return out + "}";
}

StatusOr<CachedRepo> ScanRepo(const fs::path& dir) {
  MC_ASSIGN_OR_RETURN(RepoId repo, CheckRepoFolder(dir));
  fs::path snapshots = dir / "snapshots";
  struct stat st;
  if (!internal::Stat(snapshots, &st) || !S_ISDIR(st.st_mode)) {
    return Corrupted("Snapshots dir doesn't exist in cached repo: " + snapshots.string());
  }
  MC_ASSIGN_OR_RETURN(auto refs, ReadRefs(dir));
  CachedRepo out{repo, dir, {}, 0, 0, {}, {}};
  BlobStats blobs;
  for (const fs::path& snap : SortedChildren(snapshots)) {
    if (kIgnoredNames.count(snap.filename().string())) continue;
    if (!internal::Stat(snap, &st) || !S_ISDIR(st.st_mode)) {
      return Corrupted("Snapshots folder corrupted. Found a file: " + snap.string());
    }
    MC_ASSIGN_OR_RETURN(CachedRevision rev, ScanRevision(snap, dir / "blobs", blobs));
    auto it = refs.find(rev.commit);
    if (it != refs.end()) {
      rev.refs = std::move(it->second);
      std::sort(rev.refs.begin(), rev.refs.end());
      refs.erase(it);
    }
    out.revisions.push_back(std::move(rev));
  }
  if (!refs.empty()) {
    return Corrupted("Reference(s) refer to missing commit hashes: " + FormatMissingRefs(refs) +
                     " (" + dir.string() + ").");
  }
  for (const auto& [key, bst] : blobs.all) {
    out.size_on_disk += static_cast<uint64_t>(bst.st_size);
    AddTimes(bst, &out.last_accessed, &out.last_modified);
  }
  out.nb_files = blobs.all.size();
  if (blobs.all.empty() && internal::Stat(dir, &st))
    AddTimes(st, &out.last_accessed, &out.last_modified);
  return out;
}

void CollectIncomplete(const fs::path& repo_dir, std::vector<fs::path>& out) {
  for (const fs::path& p : SortedChildren(repo_dir / "blobs")) {
    std::string name = p.filename().string();
    if (name.size() > 11 && name.ends_with(".incomplete")) out.push_back(p);
  }
}

}  // namespace

StatusOr<CacheScan> ScanCache(const CacheStore& store) {
  const fs::path& root = store.layout().root();
  struct stat st;
  if (!internal::Stat(root, &st) || !S_ISDIR(st.st_mode)) {
    return NotFoundError("cache dir not found: " + root.string());
  }
  CacheScan scan;
  for (const fs::path& entry : SortedChildren(root)) {
    std::string name = entry.filename().string();
    if (kIgnoredNames.count(name) || name == ".locks" || name == "CACHEDIR.TAG") continue;
    CollectIncomplete(entry, scan.incomplete_files);
    auto repo = ScanRepo(entry);
    if (!repo.ok()) {
      scan.warnings.push_back(repo.status().message());
      continue;
    }
    scan.size_on_disk += repo->size_on_disk;
    scan.repos.push_back(std::move(*repo));
  }
  std::sort(scan.repos.begin(), scan.repos.end(),
            [](const CachedRepo& a, const CachedRepo& b) { return a.repo < b.repo; });
  return scan;
}

}  // namespace mc::cache
