// CacheStore: opening a cache and the reading API. Writing lives in blob_writer.cc and
// snapshot_writer.cc, maintenance in cache_sweep.cc.
#include "mc/cache/cache_store.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <system_error>

#include "cache/fs_util.h"
#include "cache/snapshot_walk.h"

namespace mc::cache {

namespace fs = std::filesystem;

namespace {

bool EnvIsTrue(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return false;
  std::string upper;
  for (const char* p = v; *p; ++p) upper += static_cast<char>(std::toupper(*p));
  return upper == "1" || upper == "ON" || upper == "YES" || upper == "TRUE";
}

// Creates a relative symlink under <root>/.locks (which scanners skip) and removes it again.
// A cache we cannot write to is assumed to support symlinks: it is only read.
bool ProbeSymlinks(const fs::path& root) {
  fs::path dir = root / ".locks";
  if (!internal::MakeDirs(dir).ok()) return true;
  fs::path probe = dir / ("symlink-probe." + internal::RandomHex8() + ".tmp");
  if (::symlink("target", probe.c_str()) != 0) return errno == EACCES || errno == EROFS;
  ::unlink(probe.c_str());
  return true;
}

StatusOr<fs::path> PrepareRoot(const CacheOptions& options) {
  if (options.root.empty()) return InvalidArgumentError("cache root is empty");
  std::error_code ec;
  fs::path root = fs::absolute(options.root, ec).lexically_normal();
  if (ec) return internal::ErrorFromEc(ec, "resolve cache root " + options.root.string());
  if (!root.has_filename() && root.has_parent_path()) root = root.parent_path();  // "x/"
  struct stat st;
  if (internal::Stat(root, &st)) {
    if (!S_ISDIR(st.st_mode)) return FailedPreconditionError("not a directory: " + root.string());
    return root;
  }
  if (!options.create_if_missing) return NotFoundError("no cache dir " + root.string());
  MC_RETURN_IF_ERROR(internal::MakeDirs(root), "create cache dir");
  return root;
}

// Converts a walked entry into the public form; nullopt (logged) if unusable.
// True when `file`, with every symlink resolved, is inside `repo_dir`. A snapshot entry must never
// lead a reader (the mirror serves these files) outside its repo, whatever links were put there.
bool ResolvesInside(const fs::path& file, const fs::path& repo_dir) {
  char* real_file = ::realpath(file.c_str(), nullptr);
  char* real_repo = ::realpath(repo_dir.c_str(), nullptr);
  bool inside = real_file != nullptr && real_repo != nullptr &&
                std::string_view(real_file).starts_with(std::string(real_repo) + "/");
  std::free(real_file);
  std::free(real_repo);
  return inside;
}

std::optional<SnapshotEntry> ToSnapshotEntry(const internal::RawSnapshotEntry& raw,
                                             const fs::path& blobs_dir) {
  auto path = RepoFilePath::Parse(raw.rel);
  if (!path.ok()) {
    spdlog::warn("skipping snapshot entry with invalid name: {}", path.status().message());
    return std::nullopt;
  }
  if (!raw.exists) {
    spdlog::warn("skipping broken snapshot entry {}", raw.path.string());
    return std::nullopt;
  }
  if (!ResolvesInside(raw.path, blobs_dir.parent_path())) {
    spdlog::warn("skipping snapshot entry that leads outside its repo: {}", raw.path.string());
    return std::nullopt;
  }
  SnapshotEntry e{*path, internal::BlobEtagOf(raw, blobs_dir),
                  static_cast<uint64_t>(raw.st.st_size), raw.resolved};
  return e;
}

}  // namespace

StatusOr<std::unique_ptr<CacheStore>> CacheStore::Open(CacheOptions options) {
  MC_ASSIGN_OR_RETURN(fs::path root, PrepareRoot(options), "open cache");
  bool use_symlinks;
  if (options.use_symlinks.has_value()) {
    use_symlinks = *options.use_symlinks;
  } else {
    use_symlinks = !EnvIsTrue("HF_HUB_DISABLE_SYMLINKS") && ProbeSymlinks(root);
  }
  return std::unique_ptr<CacheStore>(new CacheStore(CacheLayout(root), use_symlinks));
}

StatusOr<std::vector<RepoId>> CacheStore::ListRepos() const {
  std::vector<RepoId> repos;
  std::error_code ec;
  fs::directory_iterator it(layout_.root(), ec);
  if (ec) return internal::ErrorFromEc(ec, "list " + layout_.root().string());
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_directory(type_ec)) continue;
    auto repo = RepoId::FromFolderName(it->path().filename().string());
    if (repo.ok()) repos.push_back(*repo);
  }
  if (ec) return internal::ErrorFromEc(ec, "list " + layout_.root().string());
  std::sort(repos.begin(), repos.end());
  return repos;
}

bool CacheStore::RepoExists(const RepoId& repo) const {
  struct stat st;
  return internal::Stat(layout_.RepoDir(repo), &st) && S_ISDIR(st.st_mode);
}

StatusOr<CommitSha> CacheStore::ResolveRevision(const RepoId& repo,
                                                const Revision& revision) const {
  std::string sha = revision.str();
  if (!revision.IsCommitSha()) {
    auto content = internal::ReadSmallFile(layout_.RefPath(repo, revision), 256);
    if (!content.ok()) {
      return NotFoundError("no ref " + QuoteForMessage(revision.str()) + " in " + repo.id());
    }
    sha = *content;
    // Official readers do not strip; we tolerate a trailing newline written by other tools.
    while (!sha.empty() && std::isspace(static_cast<unsigned char>(sha.back()))) sha.pop_back();
  }
  auto commit = CommitSha::Parse(sha);
  if (!commit.ok()) {
    return FailedPreconditionError("ref " + QuoteForMessage(revision.str()) + " of " + repo.id() +
                                   " does not hold a commit sha");
  }
  struct stat st;
  if (!internal::Stat(layout_.SnapshotDir(repo, *commit), &st) || !S_ISDIR(st.st_mode)) {
    return NotFoundError("no snapshot " + commit->str() + " of " + repo.id());
  }
  return *commit;
}

StatusOr<std::vector<std::pair<std::string, CommitSha>>> CacheStore::ListRefs(
    const RepoId& repo) const {
  if (!RepoExists(repo)) return NotFoundError("repo not cached: " + repo.id());
  std::vector<std::pair<std::string, CommitSha>> refs;
  fs::path refs_dir = layout_.RepoDir(repo) / "refs";
  for (const std::string& name : internal::ListFilesRecursive(refs_dir)) {
    auto content = internal::ReadSmallFile(refs_dir / name, 256);
    if (!content.ok()) continue;
    auto commit = CommitSha::Parse(*content);
    if (!commit.ok()) {
      spdlog::warn("ignoring ref {} of {}: not a commit sha", name, repo.id());
      continue;
    }
    refs.emplace_back(name, *commit);
  }
  return refs;
}

StatusOr<std::vector<CommitSha>> CacheStore::ListSnapshots(const RepoId& repo) const {
  if (!RepoExists(repo)) return NotFoundError("repo not cached: " + repo.id());
  std::vector<CommitSha> out;
  std::error_code ec;
  fs::directory_iterator it(layout_.RepoDir(repo) / "snapshots", ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_directory(type_ec)) continue;
    auto commit = CommitSha::Parse(it->path().filename().string());
    if (commit.ok()) out.push_back(*commit);
  }
  std::sort(out.begin(), out.end());
  return out;
}

StatusOr<std::vector<SnapshotEntry>> CacheStore::ListSnapshotFiles(const RepoId& repo,
                                                                   const CommitSha& commit) const {
  MC_ASSIGN_OR_RETURN(auto raw, internal::WalkSnapshot(layout_.SnapshotDir(repo, commit)),
                      repo.id());
  std::vector<SnapshotEntry> out;
  for (const auto& r : raw) {
    if (auto e = ToSnapshotEntry(r, layout_.BlobsDir(repo))) out.push_back(std::move(*e));
  }
  return out;
}

StatusOr<SnapshotEntry> CacheStore::StatSnapshotFile(const RepoId& repo, const CommitSha& commit,
                                                     const RepoFilePath& path) const {
  fs::path file = layout_.SnapshotFile(repo, commit, path);
  struct stat lst;
  if (!internal::LStat(file, &lst)) {
    return NotFoundError(path.str() + " not in snapshot " + commit.str() + " of " + repo.id());
  }
  internal::RawSnapshotEntry raw = internal::DescribeSnapshotEntry(file, path.str());
  if (!raw.exists) {
    return NotFoundError(path.str() + " of snapshot " + commit.str() + " is a broken link");
  }
  if (!ResolvesInside(file, layout_.RepoDir(repo))) {
    return NotFoundError(path.str() + " of snapshot " + commit.str() +
                         " leads outside its repo folder");
  }
  return SnapshotEntry{path, internal::BlobEtagOf(raw, layout_.BlobsDir(repo)),
                       static_cast<uint64_t>(raw.st.st_size), raw.resolved};
}

bool CacheStore::HasBlob(const RepoId& repo, const Etag& etag, std::optional<uint64_t> size) const {
  struct stat st;
  if (!internal::Stat(layout_.BlobPath(repo, etag), &st) || !S_ISREG(st.st_mode)) return false;
  return !size.has_value() || static_cast<uint64_t>(st.st_size) == *size;
}

}  // namespace mc::cache
