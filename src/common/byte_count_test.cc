#include "mc/common/byte_count.h"

#include <gtest/gtest.h>

namespace mc {
namespace {

TEST(ByteCountTest, ParsesDecimalAndBinaryUnits) {
  EXPECT_EQ(ByteCount::Parse("0")->bytes(), 0u);
  EXPECT_EQ(ByteCount::Parse("1234")->bytes(), 1234u);
  EXPECT_EQ(ByteCount::Parse("500GB")->bytes(), 500'000'000'000u);
  EXPECT_EQ(ByteCount::Parse("500 gb")->bytes(), 500'000'000'000u);
  EXPECT_EQ(ByteCount::Parse("1.5GiB")->bytes(), 1'610'612'736u);
  EXPECT_EQ(ByteCount::Parse("10M")->bytes(), 10'000'000u);
  EXPECT_EQ(ByteCount::Parse("64MiB")->bytes(), 67'108'864u);
  EXPECT_EQ(ByteCount::Parse("2TB")->bytes(), 2'000'000'000'000u);
}

TEST(ByteCountTest, RejectsBadInput) {
  for (const char* s : {"", "-1", "GB", "1.2.3GB", "12XB", "1e30", "99999999999999PB"}) {
    EXPECT_FALSE(ByteCount::Parse(s).ok()) << s;
  }
}

TEST(ByteCountTest, PrintsHumanSizes) {
  EXPECT_EQ(ByteCount(0).ToHuman(), "0 B");
  EXPECT_EQ(ByteCount(999).ToHuman(), "999 B");
  EXPECT_EQ(ByteCount(548105171).ToHuman(), "548.1 MB");
  EXPECT_EQ(ByteCount(1'610'612'736).ToHumanBinary(), "1.5 GiB");
}

}  // namespace
}  // namespace mc
