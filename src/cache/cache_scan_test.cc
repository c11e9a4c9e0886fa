#include "mc/cache/cache_scan.h"

#include <gtest/gtest.h>

#include "cache/test_util.h"
#include "mc/cache/blob_hasher.h"

namespace mc::cache {
namespace {

using test::C;
using test::P;
using test::R;
using test::Repo;
namespace fs = std::filesystem;

const char kA[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const char kB[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

class CacheScanTest : public ::testing::Test {
 protected:
  // Two revisions sharing one blob: A = {shared(4 B), a.txt(1 B)}, B = {shared, d/b.txt(2 B)}.
  void SetUp() override {
    shared_ = test::PutBlob(*store_, repo_, "ssss", true);
    Etag a = test::PutBlob(*store_, repo_, "a");
    Etag b = test::PutBlob(*store_, repo_, "bb");
    ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kA), P("w.bin"), shared_).ok());
    ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kA), P("a.txt"), a).ok());
    ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kB), P("w.bin"), shared_).ok());
    ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kB), P("d/b.txt"), b).ok());
    ASSERT_TRUE(store_->WriteRef(repo_, R("main"), C(kB)).ok());
    ASSERT_TRUE(store_->WriteRef(repo_, R("refs/pr/1"), C(kB)).ok());
    ASSERT_TRUE(store_->WriteRef(repo_, R("v1"), C(kA)).ok());
    ASSERT_TRUE(store_->EnsureCacheDirTag().ok());
  }
  CacheScan Scan() {
    auto scan = ScanCache(*store_);
    EXPECT_TRUE(scan.ok()) << scan.status().ToString();
    return scan.ok() ? *scan : CacheScan{};
  }

  fs::path root_ = test::NewTempDir();
  std::unique_ptr<CacheStore> store_ = test::OpenStore(root_);
  RepoId repo_ = Repo();
  Etag shared_ = test::E(std::string(40, '0'));
};

TEST_F(CacheScanTest, CountsDistinctBlobsOncePerRepoAndPerRevision) {
  CacheScan scan = Scan();
  EXPECT_TRUE(scan.warnings.empty());
  ASSERT_EQ(scan.repos.size(), 1u);
  const CachedRepo& r = scan.repos[0];
  EXPECT_EQ(r.repo.id(), "org/model");
  EXPECT_EQ(r.nb_files, 3u);
  EXPECT_EQ(r.size_on_disk, 7u);
  EXPECT_EQ(scan.size_on_disk, 7u);
  ASSERT_EQ(r.revisions.size(), 2u);
  EXPECT_EQ(r.revisions[0].commit, kA);
  EXPECT_EQ(r.revisions[0].size_on_disk, 5u);
  EXPECT_EQ(r.revisions[1].size_on_disk, 6u);
  EXPECT_EQ(r.revisions[1].refs, (std::vector<std::string>{"main", "refs/pr/1"}));
  EXPECT_EQ(r.revisions[1].files[0].path, "d/b.txt");
  EXPECT_EQ(r.revisions[1].files[1].blob_name, shared_.str());
}

TEST_F(CacheScanTest, SkipsLocksTagAndOsJunkButFlagsOtherEntries) {
  test::WriteText(root_ / ".DS_Store", "");
  test::WriteText(root_ / "stray.txt", "");
  fs::create_directories(root_ / "nodashes");
  fs::create_directories(root_ / "kernels--org--k/snapshots");
  fs::create_directories(root_ / "models--org--nosnap");
  CacheScan scan = Scan();
  EXPECT_EQ(scan.repos.size(), 1u);
  ASSERT_EQ(scan.warnings.size(), 4u);
  EXPECT_NE(
      scan.warnings[0].find("Repo type must be `dataset`, `model` or `space`, found `kernel`"),
      std::string::npos);
  EXPECT_NE(scan.warnings[1].find("Snapshots dir doesn't exist"), std::string::npos);
  EXPECT_NE(scan.warnings[2].find("not a valid HuggingFace cache directory"), std::string::npos);
  EXPECT_NE(scan.warnings[3].find("expects a directory but found a file"), std::string::npos);
}

TEST_F(CacheScanTest, BrokenLinkDropsTheRepoWithBlobMissing) {
  fs::remove(store_->layout().BlobPath(repo_, shared_));
  CacheScan scan = Scan();
  EXPECT_TRUE(scan.repos.empty());
  ASSERT_EQ(scan.warnings.size(), 1u);
  EXPECT_NE(scan.warnings[0].find("Blob missing (broken symlink)"), std::string::npos);
}

TEST_F(CacheScanTest, RefToAMissingSnapshotIsAWarning) {
  ASSERT_TRUE(store_->WriteRef(repo_, R("dev"), C(std::string(40, 'c'))).ok());
  CacheScan scan = Scan();
  ASSERT_EQ(scan.warnings.size(), 1u);
  EXPECT_NE(scan.warnings[0].find("Reference(s) refer to missing commit hashes"),
            std::string::npos);
  EXPECT_NE(scan.warnings[0].find("'dev'"), std::string::npos);
}

TEST_F(CacheScanTest, FileDirectlyUnderSnapshotsIsAWarning) {
  test::WriteText(store_->layout().RepoDir(repo_) / "snapshots/stray", "");
  EXPECT_NE(Scan().warnings.at(0).find("Snapshots folder corrupted. Found a file"),
            std::string::npos);
}

TEST_F(CacheScanTest, ListsIncompleteBlobs) {
  auto writer = store_->NewBlobWriter(repo_, test::E(std::string(64, 'e')));
  CacheScan scan = Scan();
  ASSERT_EQ(scan.incomplete_files.size(), 1u);
  EXPECT_EQ(scan.incomplete_files[0], writer->temp_path());
}

TEST_F(CacheScanTest, VerifyHashesEachSharedBlobOnceAndPasses) {
  auto report = VerifyCache(*store_, std::nullopt, std::nullopt);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->files.size(), 4u);
  EXPECT_EQ(report->ok, 4);
  EXPECT_EQ(report->failed, 0);
  EXPECT_EQ(report->bytes_hashed, 7u);
}

TEST_F(CacheScanTest, VerifyReportsMismatchWithExpectedAndActual) {
  fs::path blob = store_->layout().BlobPath(repo_, shared_);
  fs::remove(blob);
  test::WriteText(blob, "evil");
  auto report = VerifyCache(*store_, repo_, R("v1"));
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->failed, 1);
  EXPECT_EQ(report->ok, 1);
  for (const auto& f : report->files) {
    if (f.path != "w.bin") continue;
    EXPECT_EQ(f.outcome, VerifyFileResult::Outcome::kMismatch);
    EXPECT_EQ(f.expected, shared_.str());
    EXPECT_EQ(f.actual, Sha256Hex("evil"));
    EXPECT_EQ(f.commit, kA);
  }
}

TEST_F(CacheScanTest, VerifyReportsMissingBlobs) {
  fs::remove(store_->layout().BlobPath(repo_, shared_));
  auto report = VerifyCache(*store_, repo_, std::nullopt);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->failed, 2);
  EXPECT_EQ(report->files[0].outcome, VerifyFileResult::Outcome::kOk);
  EXPECT_EQ(report->files[1].outcome, VerifyFileResult::Outcome::kMissing);
  EXPECT_EQ(report->files[1].actual, "");
}

TEST_F(CacheScanTest, VerifyOfAnUnknownRepoIsNotFound) {
  EXPECT_EQ(VerifyCache(*store_, Repo("x/y"), std::nullopt).status().code(), StatusCode::kNotFound);
}

TEST_F(CacheScanTest, RemovingARevisionKeepsBlobsAnotherRevisionUses) {
  ASSERT_TRUE(store_->MarkNoExist(repo_, C(kA), P("x.json")).ok());
  auto report = RemoveRevision(*store_, repo_, R("v1"));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->removed_snapshots, std::vector<std::string>{kA});
  EXPECT_EQ(report->removed_refs, std::vector<std::string>{"v1"});
  EXPECT_EQ(report->blobs_freed, 1);
  EXPECT_EQ(report->bytes_freed, 1u);
  EXPECT_TRUE(store_->HasBlob(repo_, shared_, 4));
  EXPECT_FALSE(fs::exists(store_->layout().RepoDir(repo_) / ".no_exist" / kA));
  CacheScan scan = Scan();
  EXPECT_TRUE(scan.warnings.empty());
  EXPECT_EQ(scan.repos.at(0).revisions.size(), 1u);
  EXPECT_TRUE(VerifyCache(*store_, std::nullopt, std::nullopt)->failed == 0);
}

TEST_F(CacheScanTest, RemovingByCommitAlsoRemovesEveryRefToIt) {
  auto report = RemoveRevision(*store_, repo_, R(kB));
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->removed_refs, (std::vector<std::string>{"main", "refs/pr/1"}));
  EXPECT_FALSE(fs::exists(store_->layout().RepoDir(repo_) / "refs/refs"));
  EXPECT_TRUE(Scan().warnings.empty());
}

TEST_F(CacheScanTest, RemovingTheLastRevisionRemovesTheRepo) {
  ASSERT_TRUE(RemoveRevision(*store_, repo_, R("v1")).ok());
  auto report = RemoveRevision(*store_, repo_, R("main"));
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->bytes_freed, 6u);
  EXPECT_FALSE(fs::exists(store_->layout().RepoDir(repo_)));
  EXPECT_TRUE(Scan().repos.empty());
}

TEST_F(CacheScanTest, RemovingAnUnknownRevisionIsNotFound) {
  EXPECT_EQ(RemoveRevision(*store_, repo_, R("nope")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(RemoveRevision(*store_, repo_, R(std::string(40, 'c'))).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(RemoveRevision(*store_, Repo("x/y"), R("main")).status().code(), StatusCode::kNotFound);
}

TEST_F(CacheScanTest, RemoveRepoDeletesItsFolderAndLocks) {
  { auto lock = store_->LockBlob(repo_, shared_); }
  auto report = RemoveRepo(*store_, repo_);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->blobs_freed, 3);
  EXPECT_EQ(report->bytes_freed, 7u);
  EXPECT_EQ(report->removed_refs.size(), 3u);
  EXPECT_FALSE(fs::exists(store_->layout().RepoDir(repo_)));
  EXPECT_TRUE(fs::is_empty(root_ / ".locks"));
}

}  // namespace
}  // namespace mc::cache
