#include "mc/cache/importer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "cache/test_util.h"
#include "mc/cache/blob_hasher.h"
#include "mc/cache/git_objects.h"
#include "mc/testing/model_fixture.h"

namespace mc::cache {
namespace {

using test::R;
using test::Repo;
namespace fs = std::filesystem;

// The same folder committed by real git (see git_objects_test.cc):
//   a-b "z\n", a.txt "hello\n", a/b.txt "x\n", a/c/d "w\n", a0 "y\n".
const char kGitCommit[] = "2263e2ff56fc948494aed8b26b942154d17c9ea3";

void WriteGitExample(const fs::path& dir) {
  test::WriteText(dir / "a.txt", "hello\n");
  test::WriteText(dir / "a/b.txt", "x\n");
  test::WriteText(dir / "a0", "y\n");
  test::WriteText(dir / "a-b", "z\n");
  test::WriteText(dir / "a/c/d", "w\n");
}

class ImporterTest : public ::testing::Test {
 protected:
  fs::path tmp_ = test::NewTempDir();
  fs::path root_ = tmp_ / "cache";
  fs::path src_ = tmp_ / "src";
  std::unique_ptr<CacheStore> store_ = test::OpenStore(root_);
  RepoId repo_ = Repo();
};

TEST(IsLfsFileTest, FollowsSizeBinaryAndExtensionRules) {
  EXPECT_TRUE(IsLfsFile("model.safetensors", 10, "{}"));
  EXPECT_TRUE(IsLfsFile("sub/x.gguf", 10, "GGUF"));
  EXPECT_TRUE(IsLfsFile("weights.tar.zst", 10, "x"));
  EXPECT_TRUE(IsLfsFile("big.json", 10 << 20, "{}"));
  EXPECT_TRUE(IsLfsFile("data.raw", 10, std::string_view("ab\0c", 4)));
  EXPECT_TRUE(IsLfsFile("saved_model/variables/x", 10, "x"));
  EXPECT_FALSE(IsLfsFile("config.json", 665, "{\"a\": 1}"));
  EXPECT_FALSE(IsLfsFile("big.json", (10 << 20) - 1, "{}"));
  EXPECT_FALSE(IsLfsFile("model.SAFETENSORS.txt", 10, "x"));
}

TEST_F(ImporterTest, CommitEqualsWhatGitComputesForTheSameFolder) {
  WriteGitExample(src_);
  auto r = ImportFolder(*store_, src_, repo_, R("main"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->commit.str(), kGitCommit);
  EXPECT_EQ(r->files.size(), 5u);
  EXPECT_EQ(r->files[0].path, "a-b");
  EXPECT_EQ(r->files[0].etag, GitBlobSha1("z\n"));
  EXPECT_FALSE(r->files[0].lfs);
}

TEST_F(ImporterTest, ImportsAFixtureAsBlobsLinksAndARef) {
  ASSERT_TRUE(testing::WriteModelFixture(src_, {.shards = 2}).ok());
  auto r = ImportFolder(*store_, src_, repo_, R("main"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(store_->ResolveRevision(repo_, R("main")).value(), r->commit);
  auto files = store_->ListSnapshotFiles(repo_, r->commit);
  ASSERT_EQ(files->size(), r->files.size());
  for (size_t i = 0; i < files->size(); ++i) {
    const auto& f = (*files)[i];
    EXPECT_EQ(f.path.str(), r->files[i].path);
    EXPECT_EQ(f.etag->str(), r->files[i].etag);
    EXPECT_EQ(test::ReadAll(f.file), test::ReadAll(src_ / f.path.str()));
    EXPECT_EQ(r->files[i].lfs, f.path.str().ends_with(".safetensors")) << f.path.str();
    EXPECT_TRUE(VerifyFileAgainstEtag(f.file, *f.etag).ok());
  }
  EXPECT_TRUE(fs::exists(root_ / "CACHEDIR.TAG"));
}

TEST_F(ImporterTest, LfsFilesEnterTheTreeAsTheirPointer) {
  test::WriteText(src_ / "w.bin", "weights");
  auto r = ImportFolder(*store_, src_, repo_, R("main"));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->files[0].lfs);
  EXPECT_EQ(r->files[0].etag, Sha256Hex("weights"));
  std::string pointer_oid = GitBlobSha1(LfsPointer(test::E(r->files[0].etag), 7));
  EXPECT_EQ(r->commit.str(), GitCommitSha(GitTreeSha({{"w.bin", pointer_oid}})));
}

TEST_F(ImporterTest, ImportingTheSameContentTwiceGivesTheSameCommit) {
  ASSERT_TRUE(testing::WriteModelFixture(src_, {}).ok());
  auto a = ImportFolder(*store_, src_, repo_, R("main"));
  auto b = ImportFolder(*store_, src_, Repo("other/name"), R("v1"));
  auto c = ImportFolder(*store_, src_, repo_, R("main"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->commit, b->commit);
  EXPECT_EQ(a->commit, c->commit);
  EXPECT_EQ(store_->SweepTempFiles(std::chrono::seconds(0)).value(), 0);
}

TEST_F(ImporterTest, ChangedContentMovesTheRefToANewCommit) {
  test::WriteText(src_ / "a.txt", "1");
  auto first = ImportFolder(*store_, src_, repo_, R("main"));
  test::WriteText(src_ / "a.txt", "2");
  auto second = ImportFolder(*store_, src_, repo_, R("main"));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->commit, second->commit);
  EXPECT_EQ(store_->ResolveRevision(repo_, R("main")).value(), second->commit);
  EXPECT_EQ(store_->ListSnapshots(repo_).value().size(), 2u);
}

TEST_F(ImporterTest, ConcurrentImportsOfTheSameFolderBothSucceed) {
  ASSERT_TRUE(testing::WriteModelFixture(src_, {.shards = 2}).ok());
  StatusOr<ImportResult> a = InternalError("unset"), b = InternalError("unset");
  std::thread t([&] { a = ImportFolder(*store_, src_, repo_, R("main")); });
  b = ImportFolder(*store_, src_, repo_, R("main"));
  t.join();
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->commit, b->commit);
  EXPECT_EQ(store_->ListSnapshotFiles(repo_, a->commit)->size(), 7u);
  EXPECT_EQ(store_->SweepTempFiles(std::chrono::seconds(0)).value(), 0);
}

TEST_F(ImporterTest, ReportsProgressWithTheRefLast) {
  ASSERT_TRUE(testing::WriteModelFixture(src_, {}).ok());
  std::vector<ImportProgress::Stage> stages;
  ImportOptions opts{.chunk_bytes = 64 << 10,
                     .on_progress = [&](const ImportProgress& p) { stages.push_back(p.stage); }};
  ASSERT_TRUE(ImportFolder(*store_, src_, repo_, R("main"), opts).ok());
  EXPECT_GT(std::count(stages.begin(), stages.end(), ImportProgress::Stage::kCopied), 16);
  EXPECT_EQ(std::count(stages.begin(), stages.end(), ImportProgress::Stage::kLinked), 5);
  EXPECT_EQ(stages.back(), ImportProgress::Stage::kRefWritten);
}

TEST_F(ImporterTest, SkipsATopLevelGitDirectory) {
  test::WriteText(src_ / "a.txt", "a");
  test::WriteText(src_ / ".git/HEAD", "ref: refs/heads/main\n");
  test::WriteText(src_ / "sub/.git/x", "kept");
  auto r = ImportFolder(*store_, src_, repo_, R("main"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->files.size(), 2u);
  EXPECT_EQ(r->files[1].path, "sub/.git/x");
}

TEST_F(ImporterTest, RejectsACommitShaRevision) {
  test::WriteText(src_ / "a.txt", "a");
  auto r = ImportFolder(*store_, src_, repo_, R(std::string(40, 'a')));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ImporterTest, RejectsAnEmptyOrMissingFolder) {
  fs::create_directories(src_);
  EXPECT_EQ(ImportFolder(*store_, src_, repo_, R("main")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ImportFolder(*store_, tmp_ / "nope", repo_, R("main")).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mc::cache
