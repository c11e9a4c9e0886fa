#include "mc/common/ids.h"

#include <gtest/gtest.h>

namespace mc {
namespace {

TEST(RepoIdTest, AcceptsHubNames) {
  for (const char* id : {"gpt2", "openai-community/gpt2", "Qwen/Qwen3-0.6B", "a_b/c.d-e"}) {
    EXPECT_TRUE(RepoId::Parse(id).ok()) << id;
  }
}

TEST(RepoIdTest, RejectsHostileIds) {
  for (const char* id : {"", "a/../b", "--x", "a--b/c", "a/b/c", "/a", "a/", "../a", "a/..", ".a/b",
                         "a-/b", "a b/c", "a\\b", "a/b\n", "a/.."}) {
    auto r = RepoId::Parse(id);
    EXPECT_FALSE(r.ok()) << id;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }
  }
  EXPECT_FALSE(RepoId::Parse(std::string(97, 'a')).ok());
  EXPECT_FALSE(RepoId::Parse(std::string("a\0b", 3)).ok());
}

TEST(RepoIdTest, FolderNameRoundTrips) {
  auto id = RepoId::Parse("openai-community/gpt2").value();
  EXPECT_EQ(id.FolderName(), "models--openai-community--gpt2");
  auto ds = RepoId::Parse("google/fleurs", RepoType::kDataset).value();
  EXPECT_EQ(ds.FolderName(), "datasets--google--fleurs");
  EXPECT_EQ(ds.UrlPrefix(), "datasets/");
  EXPECT_EQ(ds.ApiPath(), "datasets/google/fleurs");
  auto back = RepoId::FromFolderName("models--openai-community--gpt2").value();
  EXPECT_EQ(back, id);
  EXPECT_EQ(RepoId::FromFolderName("models--gpt2").value().id(), "gpt2");
  EXPECT_FALSE(RepoId::FromFolderName("kernels--a--b").ok());
  EXPECT_FALSE(RepoId::FromFolderName("gpt2").ok());
}

// Found by fuzz/fuzz_ids: "datasets--o/m1" used to parse as the dataset o/m1.
TEST(RepoIdTest, FolderNameMustBeExactlyTheRepoFolderName) {
  EXPECT_FALSE(RepoId::FromFolderName("datasets--o/m1").ok());
  EXPECT_FALSE(RepoId::FromFolderName("models--o/m").ok());
  EXPECT_TRUE(RepoId::FromFolderName("datasets--o--m1").ok());
}

TEST(RevisionTest, AcceptsBranchesTagsAndPrRefs) {
  for (const char* r : {"main", "v1.0", "refs/pr/1", "refs/convert/parquet", "feature/x",
                        "607a30d783dfa663caf39e06633721c8d4cfcd7e"}) {
    EXPECT_TRUE(Revision::Parse(r).ok()) << r;
  }
  EXPECT_TRUE(Revision::Parse("607a30d783dfa663caf39e06633721c8d4cfcd7e")->IsCommitSha());
  EXPECT_FALSE(Revision::Parse("main")->IsCommitSha());
}

TEST(RevisionTest, RejectsNewlinesTraversalAndGitSpecials) {
  for (const char* r : {"", "main\n", "a/../b", "..", "/main", "main/", "a//b", ".hidden", "a b",
                        "x~1", "x^", "a:b", "a?", "a*", "a[", "a\\b", "x.lock", "a@{1}"}) {
    EXPECT_FALSE(Revision::Parse(r).ok()) << r;
  }
  EXPECT_FALSE(Revision::Parse(std::string("ma\0in", 5)).ok());
  EXPECT_FALSE(Revision::Parse(std::string(256, 'a')).ok());
}

TEST(CommitShaTest, RequiresFortyLowercaseHex) {
  EXPECT_TRUE(CommitSha::Parse("607a30d783dfa663caf39e06633721c8d4cfcd7e").ok());
  EXPECT_FALSE(CommitSha::Parse("607a30d").ok());
  EXPECT_FALSE(CommitSha::Parse("607A30D783DFA663CAF39E06633721C8D4CFCD7E").ok());
  EXPECT_FALSE(CommitSha::Parse("g07a30d783dfa663caf39e06633721c8d4cfcd7e").ok());
}

TEST(EtagTest, NormalizesHeaderForms) {
  const std::string sha = "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707";
  EXPECT_EQ(Etag::Parse("\"" + sha + "\"")->str(), sha);
  EXPECT_EQ(Etag::Parse("W/\"" + sha + "\"")->str(), sha);
  EXPECT_TRUE(Etag::Parse(sha)->IsSha256());
  EXPECT_TRUE(Etag::Parse("10c66461e4c109db5a2196bff4bb59be30396ed8")->IsGitSha1());
  EXPECT_FALSE(Etag::Parse("../../etc/passwd").ok());
  EXPECT_FALSE(Etag::Parse("abc").ok());
}

TEST(RepoFilePathTest, AcceptsNestedAndUnicodeNames) {
  for (const char* p : {"config.json", "onnx/model.onnx", "a/b/c.bin", "my model+v2.onnx",
                        "\xC3\xBC.txt", ".gitattributes"}) {
    EXPECT_TRUE(RepoFilePath::Parse(p).ok()) << p;
  }
  EXPECT_EQ(RepoFilePath::Parse("a/b/c.bin")->Depth(), 2);
}

TEST(RepoFilePathTest, RejectsHostileNames) {
  for (const char* p : {"", "../x", "a/../b", "a/..", "/etc/passwd", "a\\b", "..\\x", "a//b",
                        "a/./b", "./a", "a/", "C:/x", "a\nb", "\xC3", "\xC0\xAF"}) {
    EXPECT_FALSE(RepoFilePath::Parse(p).ok()) << p;
  }
  EXPECT_FALSE(RepoFilePath::Parse(std::string("a\0b", 3)).ok());
  EXPECT_FALSE(RepoFilePath::Parse(std::string(256, 'a')).ok());
  EXPECT_FALSE(RepoFilePath::Parse(std::string(5000, 'a')).ok());
}

TEST(QuoteForMessageTest, EscapesControlCharacters) {
  EXPECT_EQ(QuoteForMessage("a\nb"), "'a\\x0ab'");
  EXPECT_EQ(QuoteForMessage(std::string(200, 'x')).size(), 125u);
}

}  // namespace
}  // namespace mc
