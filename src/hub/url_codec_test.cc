#include "mc/hub/url_codec.h"

#include <gtest/gtest.h>

namespace mc::hub {
namespace {

TEST(PercentDecodeTest, DecodesEscapesInEitherCase) {
  EXPECT_EQ(PercentDecode("refs%2Fpr%2F1").value(), "refs/pr/1");
  EXPECT_EQ(PercentDecode("refs%2fpr%2f1").value(), "refs/pr/1");
  EXPECT_EQ(PercentDecode("a+b%20c").value(), "a+b c");
  EXPECT_EQ(PercentDecode("%C3%BC").value(), "\xC3\xBC");
  EXPECT_EQ(PercentDecode("").value(), "");
}

TEST(PercentDecodeTest, RejectsMalformedEscapes) {
  for (const char* bad : {"%", "%2", "a%zz", "%G0", "x%", "%%41"}) {
    EXPECT_EQ(PercentDecode(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(PercentEncodeTest, MatchesPythonQuote) {
  EXPECT_EQ(PercentEncode("refs/pr/1", false), "refs%2Fpr%2F1");
  EXPECT_EQ(PercentEncode("onnx/my model+v2.onnx", true), "onnx/my%20model%2Bv2.onnx");
  EXPECT_EQ(PercentEncode("\xC3\xBC", true), "%C3%BC");
  EXPECT_EQ(PercentEncode("a-b_c.d~e", false), "a-b_c.d~e");
}

TEST(PercentEncodeTest, DecodeInvertsEncode) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(PercentDecode(PercentEncode(all, false)).value(), all);
  EXPECT_EQ(PercentDecode(PercentEncode(all, true)).value(), all);
}

}  // namespace
}  // namespace mc::hub
