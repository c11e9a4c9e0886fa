#include "mc/cache/cache_layout.h"

#include <gtest/gtest.h>

#include <string>

#include "cache/test_util.h"

namespace mc::cache {
namespace {

using test::C;
using test::E;
using test::P;
using test::R;
using test::Repo;

const char kSha256[] = "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707";
const char kCommit[] = "607a30d783dfa663caf39e06633721c8d4cfcd7e";

TEST(CacheLayoutTest, BuildsTheHubPathsOfAWorkedExample) {
  CacheLayout layout("/c");
  RepoId gpt2 = Repo("openai-community/gpt2");
  EXPECT_EQ(layout.RepoDir(gpt2), "/c/models--openai-community--gpt2");
  EXPECT_EQ(layout.BlobPath(gpt2, E(kSha256)),
            std::string("/c/models--openai-community--gpt2/blobs/") + kSha256);
  EXPECT_EQ(
      layout.SnapshotFile(gpt2, C(kCommit), P("onnx/model.onnx")),
      std::string("/c/models--openai-community--gpt2/snapshots/") + kCommit + "/onnx/model.onnx");
  EXPECT_EQ(
      layout.NoExistFile(gpt2, C(kCommit), P("added_tokens.json")),
      std::string("/c/models--openai-community--gpt2/.no_exist/") + kCommit + "/added_tokens.json");
  EXPECT_EQ(layout.LockFile(gpt2, E(kSha256)),
            std::string("/c/.locks/models--openai-community--gpt2/") + kSha256 + ".lock");
  EXPECT_EQ(layout.CacheDirTag(), "/c/CACHEDIR.TAG");
}

TEST(CacheLayoutTest, PullRequestRefsAreNestedUnderRefsRefs) {
  CacheLayout layout("/c");
  EXPECT_EQ(layout.RefPath(Repo("gpt2"), R("main")), "/c/models--gpt2/refs/main");
  EXPECT_EQ(layout.RefPath(Repo("gpt2"), R("refs/pr/1")), "/c/models--gpt2/refs/refs/pr/1");
}

TEST(CacheLayoutTest, DatasetReposUseTheDatasetsPrefix) {
  CacheLayout layout("/c");
  EXPECT_EQ(layout.RepoDir(RepoId::Parse("google/fleurs", RepoType::kDataset).value()),
            "/c/datasets--google--fleurs");
}

TEST(CacheLayoutTest, SymlinkTargetHasOneDotDotPerPathLevel) {
  Etag e = E(kSha256);
  EXPECT_EQ(CacheLayout::SymlinkTarget(e, P("config.json")), std::string("../../blobs/") + kSha256);
  EXPECT_EQ(CacheLayout::SymlinkTarget(e, P("onnx/model.onnx")),
            std::string("../../../blobs/") + kSha256);
  EXPECT_EQ(CacheLayout::SymlinkTarget(e, P("a/b/c.bin")),
            std::string("../../../../blobs/") + kSha256);
}

TEST(CacheLayoutTest, CacheDirTagStartsWithTheStandardSignature) {
  std::string tag = kCacheDirTagContent;
  EXPECT_EQ(tag.rfind("Signature: 8a477f597d28d172789f06886806bc55\n", 0), 0u);
  EXPECT_NE(tag.find("\n# "), std::string::npos);
}

}  // namespace
}  // namespace mc::cache
