#include "mc/common/constant_time.h"

#include <gtest/gtest.h>

namespace mc {
namespace {

TEST(ConstantTimeEqualsTest, EqualTextsAreEqual) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("hf_abc", "hf_abc"));
}

TEST(ConstantTimeEqualsTest, ADifferenceAnywhereMakesThemUnequal) {
  EXPECT_FALSE(ConstantTimeEquals("hf_abc", "xf_abc"));
  EXPECT_FALSE(ConstantTimeEquals("hf_abc", "hf_abd"));
}

TEST(ConstantTimeEqualsTest, APrefixIsNotEqual) {
  EXPECT_FALSE(ConstantTimeEquals("hf_abc", "hf_ab"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  // The shorter one padded with NUL bytes must not match either.
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("ab\0", 3), "ab"));
}

}  // namespace
}  // namespace mc
