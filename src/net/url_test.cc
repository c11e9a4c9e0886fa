#include "mc/net/url.h"

#include <gtest/gtest.h>

namespace mc::net {
namespace {

TEST(PercentEncodeTest, EncodesSlashWhenNotSafe) {
  EXPECT_EQ(PercentEncode("refs/pr/1"), "refs%2Fpr%2F1");
}

TEST(PercentEncodeTest, PathKeepsSlashAndEncodesSpaceAndPlus) {
  EXPECT_EQ(PercentEncodePath("onnx/my model+v2.onnx"), "onnx/my%20model%2Bv2.onnx");
}

TEST(PercentEncodeTest, EncodesUtf8BytesUppercase) {
  EXPECT_EQ(PercentEncode("\xC3\xBC"), "%C3%BC");
}

TEST(PercentDecodeTest, InvertsEncodeForEveryByteButNul) {
  std::string all;
  for (int c = 1; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(PercentDecode(PercentEncode(all)).value(), all);
  EXPECT_EQ(PercentDecode(PercentEncodePath(all)).value(), all);
}

TEST(PercentDecodeTest, DecodesMixedCaseEscapes) {
  EXPECT_EQ(*PercentDecode("refs%2fpr%2F1"), "refs/pr/1");
}

TEST(PercentDecodeTest, KeepsPlusOutsideQueries) {
  EXPECT_EQ(*PercentDecode("a+b"), "a+b");
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
}

TEST(PercentDecodeTest, RejectsEscapedNul) {
  EXPECT_EQ(PercentDecode("a%00b").status().code(), StatusCode::kInvalidArgument);
}

TEST(PercentDecodeTest, RejectsRawNul) {
  EXPECT_FALSE(PercentDecode(std::string_view("a\0b", 3)).ok());
}

TEST(PercentDecodeTest, RejectsTruncatedAndNonHexEscapes) {
  EXPECT_FALSE(PercentDecode("abc%").ok());
  EXPECT_FALSE(PercentDecode("abc%2").ok());
  EXPECT_FALSE(PercentDecode("abc%zz").ok());
}

TEST(ParseQueryStringTest, DecodesRepeatedKeysAndFlags) {
  QueryParams q = *ParseQueryString("a=1&b=x%20y&flag&a=2&&c=p+q");
  EXPECT_EQ(q.count("a"), 2u);
  EXPECT_EQ(q.find("b")->second, "x y");
  EXPECT_EQ(q.find("flag")->second, "");
  EXPECT_EQ(q.find("c")->second, "p q");
}

TEST(ParseQueryStringTest, RejectsBadEscape) { EXPECT_FALSE(ParseQueryString("a=%g1").ok()); }

TEST(BuildQueryStringTest, EncodesKeysAndValuesInOrder) {
  EXPECT_EQ(BuildQueryString({{"cursor", "a/b c"}, {"limit", "5"}}), "cursor=a%2Fb%20c&limit=5");
}

}  // namespace
}  // namespace mc::net
