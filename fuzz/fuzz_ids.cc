// RepoId, Revision, RepoFilePath, Etag, CommitSha and cache folder names. Invariants: whatever
// parses builds cache paths that stay inside their repo folder (a snapshot file inside its
// snapshot, a ref inside refs/), and a folder name parses back to the same repo.
#include <filesystem>
#include <string>

#include "fuzz_util.h"
#include "mc/cache/cache_layout.h"
#include "mc/common/ids.h"

namespace {

bool Inside(const std::filesystem::path& path, const std::filesystem::path& dir) {
  const std::string p = path.lexically_normal().string();
  const std::string d = dir.lexically_normal().string();
  return p.size() > d.size() && p.compare(0, d.size(), d) == 0 && p[d.size()] == '/';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mc;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto [first, rest] = SplitAtNul(in);
  auto [second, third] = SplitAtNul(rest);
  const cache::CacheLayout layout("/cache");
  for (RepoType type : {RepoType::kModel, RepoType::kDataset, RepoType::kSpace}) {
    StatusOr<RepoId> repo = RepoId::Parse(first, type);
    if (!repo.ok()) continue;
    StatusOr<RepoId> again = RepoId::FromFolderName(repo->FolderName());
    MC_FUZZ_CHECK(again.ok() && *again == *repo);
    const std::filesystem::path repo_dir = layout.RepoDir(*repo);
    MC_FUZZ_CHECK(Inside(repo_dir, "/cache"));
    MC_FUZZ_CHECK(repo_dir.parent_path() == "/cache");
    if (StatusOr<Revision> rev = Revision::Parse(second); rev.ok()) {
      MC_FUZZ_CHECK(Inside(layout.RefPath(*repo, *rev), repo_dir / "refs"));
    }
    const CommitSha commit = *CommitSha::Parse(std::string(40, 'a'));
    if (StatusOr<RepoFilePath> path = RepoFilePath::Parse(third); path.ok()) {
      MC_FUZZ_CHECK(Inside(layout.SnapshotFile(*repo, commit, *path),
                           layout.SnapshotDir(*repo, commit)));
    }
  }
  if (StatusOr<RepoId> folder = RepoId::FromFolderName(first); folder.ok()) {
    MC_FUZZ_CHECK(folder->FolderName() == first);
  }
  if (StatusOr<Etag> etag = Etag::Parse(in); etag.ok()) {
    MC_FUZZ_CHECK(etag->IsSha256() || etag->IsGitSha1());
    MC_FUZZ_CHECK(etag->str().find('/') == std::string::npos);
  }
  if (StatusOr<CommitSha> sha = CommitSha::Parse(in); sha.ok()) {
    MC_FUZZ_CHECK(sha->str().size() == 40);
  }
  return 0;
}
