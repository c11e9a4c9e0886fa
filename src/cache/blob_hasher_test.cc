#include "mc/cache/blob_hasher.h"

#include <gtest/gtest.h>

#include "cache/test_util.h"

namespace mc::cache {
namespace {

using test::E;

TEST(BlobHasherTest, GitSha1MatchesGitHashObject) {
  EXPECT_EQ(GitBlobSha1("Hello, World!"), "b45ef6fec89518d314f546fd6c3025367b721684");
  EXPECT_EQ(GitBlobSha1(""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
}

TEST(BlobHasherTest, Sha256MatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("Hello, World!"),
            "dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f");
}

TEST(BlobHasherTest, StreamingInPiecesEqualsOneShot) {
  auto h = BlobHasher::Create(HashKind::kGitSha1, 13);
  h->Update("Hello", 5);
  h->Update(", ", 2);
  h->Update("World!", 6);
  EXPECT_EQ(h->Finish(), "b45ef6fec89518d314f546fd6c3025367b721684");
}

TEST(BlobHasherTest, HashKindFollowsEtagLength) {
  EXPECT_EQ(HashKindOf(E(std::string(64, 'a'))), HashKind::kSha256);
  EXPECT_EQ(HashKindOf(E(std::string(40, 'a'))), HashKind::kGitSha1);
}

TEST(BlobHasherTest, HashFileHashesLargeFilesLikeInMemory) {
  auto dir = test::NewTempDir();
  std::string content(9 << 20, '\0');  // spans several read chunks
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 131 + (i >> 12));
  test::WriteText(dir / "f", content);
  EXPECT_EQ(HashFile(dir / "f", HashKind::kSha256).value(), Sha256Hex(content));
  EXPECT_EQ(HashFile(dir / "f", HashKind::kGitSha1).value(), GitBlobSha1(content));
}

TEST(BlobHasherTest, HashFileOfMissingFileIsNotFound) {
  EXPECT_EQ(HashFile(test::NewTempDir() / "nope", HashKind::kSha256).status().code(),
            StatusCode::kNotFound);
}

TEST(BlobHasherTest, VerifyReportsExpectedAndActualAsDataLoss) {
  auto dir = test::NewTempDir();
  test::WriteText(dir / "f", "Hello, World!");
  EXPECT_TRUE(VerifyFileAgainstEtag(dir / "f", E("b45ef6fec89518d314f546fd6c3025367b721684")).ok());
  Status s = VerifyFileAgainstEtag(dir / "f", E(std::string(40, '0')));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("b45ef6fec89518d314f546fd6c3025367b721684"), std::string::npos);
  EXPECT_NE(s.message().find(std::string(40, '0')), std::string::npos);
}

TEST(BlobHasherTest, LfsPointerOfGpt2WeightsHasTheTreeOidTheHubShows) {
  std::string pointer =
      LfsPointer(E("248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707"), 548105171);
  EXPECT_EQ(pointer,
            "version https://git-lfs.github.com/spec/v1\n"
            "oid sha256:248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707\n"
            "size 548105171\n");
  EXPECT_EQ(pointer.size(), 134u);
  EXPECT_EQ(GitBlobSha1(pointer), "44b36d6e32d13c8fb28b0feab0ac8bfefa7efeda");
}

}  // namespace
}  // namespace mc::cache
