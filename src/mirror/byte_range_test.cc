#include "mirror/byte_range.h"

#include <gtest/gtest.h>

namespace mc::mirror {
namespace {

TEST(ByteRangeTest, NoHeaderMeansFullBody) {
  EXPECT_EQ(ParseRangeHeader(std::nullopt, 100).outcome, RangeOutcome::kFull);
}

TEST(ByteRangeTest, OpenEndedRangeRunsToTheEnd) {
  RangeRequest r = ParseRangeHeader("bytes=10-", 100);
  ASSERT_EQ(r.outcome, RangeOutcome::kPartial);
  EXPECT_EQ(r.first, 10u);
  EXPECT_EQ(r.last, 99u);
  EXPECT_EQ(ContentRange(r, 100), "bytes 10-99/100");
}

TEST(ByteRangeTest, ClosedRangeIsInclusive) {
  RangeRequest r = ParseRangeHeader("bytes=0-0", 100);
  ASSERT_EQ(r.outcome, RangeOutcome::kPartial);
  EXPECT_EQ(r.length(), 1u);
  EXPECT_EQ(ContentRange(r, 100), "bytes 0-0/100");
}

TEST(ByteRangeTest, LastBytePastTheEndIsClamped) {
  RangeRequest r = ParseRangeHeader("bytes=90-1000", 100);
  ASSERT_EQ(r.outcome, RangeOutcome::kPartial);
  EXPECT_EQ(r.last, 99u);
}

TEST(ByteRangeTest, SuffixRangeTakesTheLastBytes) {
  RangeRequest r = ParseRangeHeader("bytes=-10", 100);
  ASSERT_EQ(r.outcome, RangeOutcome::kPartial);
  EXPECT_EQ(r.first, 90u);
  EXPECT_EQ(r.last, 99u);
}

TEST(ByteRangeTest, SuffixLongerThanTheFileTakesItAll) {
  RangeRequest r = ParseRangeHeader("bytes=-500", 100);
  ASSERT_EQ(r.outcome, RangeOutcome::kPartial);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 99u);
}

TEST(ByteRangeTest, StartAtOrPastTheEndIsUnsatisfiable) {
  EXPECT_EQ(ParseRangeHeader("bytes=100-", 100).outcome, RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(ParseRangeHeader("bytes=150-200", 100).outcome, RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(ContentRange(ParseRangeHeader("bytes=100-", 100), 100), "bytes */100");
}

TEST(ByteRangeTest, EndBeforeStartIsUnsatisfiable) {
  EXPECT_EQ(ParseRangeHeader("bytes=5-2", 100).outcome, RangeOutcome::kUnsatisfiable);
}

TEST(ByteRangeTest, MalformedSpecsAreRejected) {
  for (const char* h :
       {"bytes=abc", "bytes=-0", "bytes=0-1,5-6", "items=0-1", "bytes=", "bytes=-", "bytes=+1-2",
        "bytes=1-2x", "bytes=99999999999999999999999-", "bytes 0-1"}) {
    EXPECT_EQ(ParseRangeHeader(h, 100).outcome, RangeOutcome::kMalformed) << h;
  }
}

TEST(ByteRangeTest, MalformedMessagesSayWhy) {
  EXPECT_NE(ParseRangeHeader("bytes=0-1,5-6", 100).message.find("multiple"), std::string::npos);
  EXPECT_NE(ParseRangeHeader("items=0-1", 100).message.find("bytes"), std::string::npos);
}

TEST(ByteRangeTest, UnitIsCaseInsensitiveAndSpacesAreIgnored) {
  EXPECT_EQ(ParseRangeHeader(" Bytes= 1-2 ", 100).outcome, RangeOutcome::kPartial);
}

TEST(ByteRangeTest, EmptyFileIgnoresTheRange) {
  EXPECT_EQ(ParseRangeHeader("bytes=0-0", 0).outcome, RangeOutcome::kFull);
}

}  // namespace
}  // namespace mc::mirror
