#include "hub/hub_tree.h"

#include <gtest/gtest.h>

namespace mc::hub::internal {
namespace {

const std::string kOid(40, 'a');
const std::string kSha256(64, 'b');

std::string Entry(const std::string& path, const std::string& extra = "") {
  return R"({"type":"file","oid":")" + kOid + R"(","size":5,"path":")" + path + "\"" + extra + "}";
}

Status Page(const std::string& body) {
  TreeCollector c;
  return c.AddPage(body);
}

TEST(HubTreeTest, ParsesRegularAndLfsFilesAndSkipsDirectories) {
  TreeCollector c;
  ASSERT_TRUE(c.AddPage("[" + Entry("a.txt") + "," +
                        Entry("w.bin", R"(,"lfs":{"oid":")" + kSha256 + R"(","size":5})") +
                        R"(,{"type":"directory","oid":")" + kOid + R"(","size":0,"path":"d"}])")
                  .ok());
  auto files = std::move(c).Finish();
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].BlobEtag().str(), kOid);
  EXPECT_FALSE((*files)[0].IsLfs());
  EXPECT_EQ((*files)[1].BlobEtag().str(), kSha256);
  EXPECT_EQ((*files)[1].oid.str(), kOid);
}

TEST(HubTreeTest, RejectsParentTraversal) {
  Status s = Page("[" + Entry("../x") + "]");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'../x'"), std::string::npos) << s.message();
}

TEST(HubTreeTest, RejectsAbsolutePath) {
  EXPECT_EQ(Page("[" + Entry("/etc/passwd") + "]").code(), StatusCode::kInvalidArgument);
}

TEST(HubTreeTest, RejectsBackslashAndNul) {
  EXPECT_EQ(Page("[" + Entry("a\\\\b") + "]").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Page("[" + Entry("a\\u0000b") + "]").code(), StatusCode::kInvalidArgument);
}

TEST(HubTreeTest, RejectsBadOids) {
  std::string short_oid = R"([{"type":"file","oid":"abc","size":1,"path":"a"}])";
  EXPECT_EQ(Page(short_oid).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Page("[" + Entry("a", R"(,"lfs":{"oid":"xyz","size":5})") + "]").code(),
            StatusCode::kInvalidArgument);
}

TEST(HubTreeTest, RejectsNegativeHugeAndMismatchedSizes) {
  auto with_size = [](const std::string& size) {
    return R"([{"type":"file","oid":")" + kOid + R"(","size":)" + size + R"(,"path":"a"}])";
  };
  EXPECT_EQ(Page(with_size("-1")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Page(with_size("1125899906842625")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Page(with_size("1.5")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Page("[" + Entry("a", R"(,"lfs":{"oid":")" + kSha256 + R"(","size":6})") + "]").code(),
            StatusCode::kInvalidArgument);
}

TEST(HubTreeTest, RejectsDuplicatesAcrossPages) {
  TreeCollector c;
  ASSERT_TRUE(c.AddPage("[" + Entry("a") + "]").ok());
  EXPECT_EQ(c.AddPage("[" + Entry("a") + "]").code(), StatusCode::kInvalidArgument);
}

TEST(HubTreeTest, RejectsFileThatIsAlsoADirectory) {
  TreeCollector c;
  ASSERT_TRUE(c.AddPage("[" + Entry("a") + "," + Entry("a/b") + "]").ok());
  EXPECT_EQ(std::move(c).Finish().status().code(), StatusCode::kInvalidArgument);
}

TEST(HubTreeTest, RejectsNonArrayAndMalformedJson) {
  EXPECT_EQ(Page("{}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Page("[").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Page("[1]").code(), StatusCode::kInvalidArgument);
}

TEST(HubTreeTest, RejectsMoreEntriesThanTheCapAcrossPages) {
  TreeCollector c(/*max_entries=*/2);
  ASSERT_TRUE(c.AddPage("[" + Entry("a") + "]").ok());
  ASSERT_TRUE(c.AddPage("[" + Entry("b") + "]").ok());
  EXPECT_EQ(c.AddPage("[" + Entry("c") + "]").code(), StatusCode::kInvalidArgument);
}

TEST(HubTreeTest, NextLinkFindsRelNextAmongOthers) {
  net::HeaderMap h;
  h.Add("Link", R"(<http://a/x?c=1,2>; rel="prev", <http://a/y?cursor=z>; rel="next")");
  EXPECT_EQ(NextLink(h), "http://a/y?cursor=z");
  EXPECT_FALSE(NextLink(net::HeaderMap()).has_value());
}

}  // namespace
}  // namespace mc::hub::internal
