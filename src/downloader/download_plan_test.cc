#include "mc/downloader/download_plan.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "mc/cache/blob_hasher.h"

namespace mc::downloader {
namespace {

namespace fs = std::filesystem;

const char kCommit[] = "607a30d783dfa663caf39e06633721c8d4cfcd7e";

TEST(PatternTest, StarAlsoMatchesSlashLikePythonFnmatch) {
  EXPECT_TRUE(PatternMatches("*.json", "config.json"));
  EXPECT_TRUE(PatternMatches("*.json", "onnx/config.json"));
  EXPECT_FALSE(PatternMatches("*.json", "model.safetensors"));
}

TEST(PatternTest, TrailingSlashMeansEverythingBelow) {
  EXPECT_TRUE(PatternMatches("onnx/", "onnx/model.onnx"));
  EXPECT_TRUE(PatternMatches("onnx/", "onnx/sub/x.bin"));
  EXPECT_FALSE(PatternMatches("onnx/", "model.onnx"));
}

TEST(PatternTest, BackslashesBecomeSlashesAndAreNotEscapes) {
  EXPECT_TRUE(PatternMatches("onnx\\*.onnx", "onnx/model.onnx"));
}

TEST(PatternTest, SetsQuestionMarksAndCaseSensitivity) {
  EXPECT_TRUE(PatternMatches("model-0000[12]-*", "model-00001-of-00002.safetensors"));
  EXPECT_FALSE(PatternMatches("model-0000[!12]-*", "model-00001-of-00002.safetensors"));
  EXPECT_TRUE(PatternMatches("config.jso?", "config.json"));
  EXPECT_FALSE(PatternMatches("*.JSON", "config.json"));
}

TEST(PatternTest, IncludeThenExclude) {
  FilePatterns p{{"*.safetensors", "*.json"}, {"original/*"}};
  EXPECT_TRUE(IsSelected(p, "model.safetensors"));
  EXPECT_TRUE(IsSelected(p, "config.json"));
  EXPECT_FALSE(IsSelected(p, "original/params.json"));
  EXPECT_FALSE(IsSelected(p, "tokenizer.model"));
  EXPECT_TRUE(IsSelected(FilePatterns{}, "anything/at/all"));
}

class DownloadPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "plan_XXXXXX";
    dir_ = ::mkdtemp(tmpl.data());
    store_ =
        std::move(*cache::CacheStore::Open({.root = dir_ / "hub", .use_symlinks = std::nullopt}));
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Publishes `content` as a blob of repo_ and returns the matching listing entry for `path`.
  RemoteFile Put(const std::string& path, const std::string& content) {
    Etag etag = Etag::Parse(cache::GitBlobSha1(content)).value();
    auto writer = store_->NewBlobWriter(repo_, etag);
    EXPECT_TRUE(writer.ok());
    EXPECT_TRUE(writer->Append(content.data(), content.size()).ok());
    EXPECT_TRUE(store_->PublishBlob(std::move(*writer), content.size(), true).ok());
    return Remote(path, content);
  }
  static RemoteFile Remote(const std::string& path, const std::string& content) {
    return {RepoFilePath::Parse(path).value(), Etag::Parse(cache::GitBlobSha1(content)).value(),
            content.size()};
  }
  StatusOr<DownloadPlan> Plan(const std::vector<RemoteFile>& listing, FilePatterns p = {}) {
    return MakeDownloadPlan(store_.get(), repo_, commit_, Revision::Parse("main").value(), listing,
                            p);
  }

  fs::path dir_;
  std::unique_ptr<cache::CacheStore> store_;
  RepoId repo_ = RepoId::Parse("org/model").value();
  CommitSha commit_ = CommitSha::Parse(kCommit).value();
};

TEST_F(DownloadPlanTest, EverythingIsFetchedIntoAnEmptyCache) {
  auto plan = Plan({Remote("a.json", "{}"), Remote("w/b.bin", "bytes")});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->files.size(), 2u);
  for (const auto& f : plan->files) EXPECT_EQ(f.action, PlannedFile::Action::kFetch);
  EXPECT_EQ(plan->bytes_to_fetch, 7u);
  EXPECT_EQ(plan->files_to_fetch, 2);
  EXPECT_EQ(plan->revision->str(), "main");
}

TEST_F(DownloadPlanTest, PresentBlobNeedsOnlyALinkAndLinkedFileNothing) {
  RemoteFile linked = Put("a.json", "{}");
  RemoteFile blob_only = Put("b.txt", "hello");
  ASSERT_TRUE(store_->LinkSnapshotFile(repo_, commit_, linked.path, linked.etag).ok());
  auto plan = Plan({linked, blob_only, Remote("c.txt", "new")});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->files[0].action, PlannedFile::Action::kDone);
  EXPECT_EQ(plan->files[1].action, PlannedFile::Action::kLink);
  EXPECT_EQ(plan->files[2].action, PlannedFile::Action::kFetch);
  EXPECT_EQ(plan->bytes_to_fetch, 3u);
  EXPECT_EQ(plan->bytes_total, 10u);
}

TEST_F(DownloadPlanTest, ABlobOfTheWrongSizeIsFetchedAgain) {
  RemoteFile f = Put("a.txt", "abc");
  f.size = 4;  // the listing disagrees with what is on disk
  auto plan = Plan({f});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->files[0].action, PlannedFile::Action::kFetch);
}

TEST_F(DownloadPlanTest, TwoPathsWithOneBlobFetchItOnce) {
  auto plan = Plan({Remote("a.txt", "same"), Remote("b/a.txt", "same")});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->files_to_fetch, 1);
  EXPECT_EQ(plan->bytes_to_fetch, 4u);
  EXPECT_EQ(plan->bytes_total, 8u);
}

TEST_F(DownloadPlanTest, PatternsFilterTheListing) {
  auto plan = Plan({Remote("a.json", "{}"), Remote("w.bin", "x")}, {{"*.json"}, {}});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->files.size(), 1u);
  EXPECT_EQ(plan->files[0].file.path.str(), "a.json");
}

TEST_F(DownloadPlanTest, DuplicatePathsAreRejected) {
  auto plan = Plan({Remote("a.json", "{}"), Remote("a.json", "[]")});
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(DownloadPlanTest, ACommitRevisionWritesNoRef) {
  auto plan =
      MakeDownloadPlan(store_.get(), repo_, commit_, Revision::Parse(kCommit).value(), {}, {});
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->revision.has_value());
  EXPECT_TRUE(plan->files.empty());
}

}  // namespace
}  // namespace mc::downloader
