#include "mc/common/text_tail.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace mc {
namespace {

namespace fs = std::filesystem;

TEST(LastLinesTest, KeepsTheLastLinesWithoutTheTrailingBreak) {
  EXPECT_EQ(LastLines("one\ntwo\nthree\n", 2, 100), "two\nthree");
  EXPECT_EQ(LastLines("one\ntwo\nthree", 5, 100), "one\ntwo\nthree");
}

TEST(LastLinesTest, KeepsOnlyWholeLinesWithinTheByteCap) {
  // "two\nthree" is 9 bytes: with 8 only "three" fits.
  EXPECT_EQ(LastLines("one\ntwo\nthree\n", 5, 8), "three");
  EXPECT_EQ(LastLines("one\ntwo\nthree\n", 5, 9), "two\nthree");
}

TEST(LastLinesTest, KeepsTheEndOfASingleLineLongerThanTheCap) {
  EXPECT_EQ(LastLines("abcdefghij\n", 3, 4), "ghij");
}

TEST(LastLinesTest, CountsEmptyLinesAsLines) {
  EXPECT_EQ(LastLines("a\n\n\nb\n", 3, 100), "\n\nb");
  EXPECT_EQ(LastLines("", 3, 100), "");
  EXPECT_EQ(LastLines("a\nb", 0, 100), "");
}

TEST(LastLinesTest, ReplacesWhatIsNotUtf8SoThatJsonCanCarryIt) {
  EXPECT_EQ(LastLines("caf\xc3\xa9 \xff\n", 5, 100), "caf\xc3\xa9 ?");
  // A cap that cuts "é" (2 bytes) in half leaves its second byte alone: not UTF-8.
  EXPECT_EQ(LastLines("\xc3\xa9t\xc3\xa9", 1, 4), "?t\xc3\xa9");
}

TEST(ValidUtf8Test, KeepsWellFormedTextAndRefusesOverlongAndSurrogateForms) {
  EXPECT_EQ(ValidUtf8("a\xe2\x82\xac\xf0\x9f\x98\x80"), "a\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_EQ(ValidUtf8("\xc0\xaf"), "??");          // overlong '/'
  EXPECT_EQ(ValidUtf8("\xed\xa0\x80"), "???");    // a UTF-16 surrogate
}

class ReadFileTailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mc_text_tail_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path Write(const std::string& text) {
    const fs::path p = dir_ / "log";
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  fs::path dir_;
};

TEST_F(ReadFileTailTest, ReadsTheLastLinesOfABigFileWithinTheCap) {
  std::string text;
  for (int i = 0; i < 10000; ++i) text += "line " + std::to_string(i) + "\n";
  auto tail = ReadFileTail(Write(text), 3, 4096);
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_EQ(*tail, "line 9997\nline 9998\nline 9999");
}

TEST_F(ReadFileTailTest, DropsTheLineCutByTheByteWindow) {
  // The last 5 bytes (and the one before) of 15 start inside the x line: only "end" is whole.
  auto tail = ReadFileTail(Write("xxxxxxxxxx\nend\n"), 20, 5);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, "end");
}

TEST_F(ReadFileTailTest, MissingFileHasAnEmptyTail) {
  auto tail = ReadFileTail(dir_ / "none", 20, 4096);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, "");
}

}  // namespace
}  // namespace mc
