// Unit tests of the fetch engine's parts: resume records, retry timing, Retry-After parsing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "downloader/resume_record.h"
#include "downloader/retry_policy.h"

namespace mc::downloader {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class ResumeRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mc_resume_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fd_ = ::open((dir_ / "data").c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_EQ(::ftruncate(fd_, 10'000), 0);
  }
  void TearDown() override {
    ::close(fd_);
    fs::remove_all(dir_);
  }
  StatusOr<ResumeRecord> Open(bool* resumed, uint64_t size = 10'000, uint64_t cell = 4096) {
    return ResumeRecord::Open(FileSystem::Real(), dir_ / "rec", etag_, size, cell, fd_, resumed);
  }
  fs::path dir_;
  int fd_ = -1;
  Etag etag_ = *Etag::Parse(std::string(64, 'a'));
};

TEST_F(ResumeRecordTest, FreshRecordHasCellsOfTheRightLengths) {
  bool resumed = true;
  auto r = Open(&resumed);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(resumed);
  ASSERT_EQ(r->cells(), 3u);
  EXPECT_EQ(r->CellLength(0), 4096u);
  EXPECT_EQ(r->CellLength(2), 10'000u - 8192u);
  EXPECT_EQ(r->TotalWritten(), 0u);
}

TEST_F(ResumeRecordTest, CountsSurviveAReopen) {
  bool resumed = false;
  {
    auto r = Open(&resumed);
    ASSERT_TRUE(r->SetWritten(0, 4096).ok());
    ASSERT_TRUE(r->SetWritten(2, 100).ok());
  }
  auto again = Open(&resumed);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(resumed);
  EXPECT_TRUE(again->CellFull(0));
  EXPECT_EQ(again->written(1), 0u);
  EXPECT_EQ(again->written(2), 100u);
}

TEST_F(ResumeRecordTest, RecordOfAnotherFileOrShapeIsDiscarded) {
  bool resumed = false;
  { ASSERT_TRUE(Open(&resumed)->SetWritten(0, 10).ok()); }
  // Another cell size: a fresh record.
  EXPECT_FALSE((Open(&resumed, 10'000, 8192), resumed));
  { ASSERT_TRUE(Open(&resumed)->SetWritten(0, 10).ok()); }
  // The temp file was replaced (another inode).
  ::close(fd_);
  fs::remove(dir_ / "data");
  fd_ = ::open((dir_ / "data").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_EQ(::ftruncate(fd_, 10'000), 0);
  auto r = Open(&resumed);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(resumed);
  EXPECT_EQ(r->TotalWritten(), 0u);
}

TEST_F(ResumeRecordTest, CountsAboveTheCellOrGoingBackAreRefused) {
  bool resumed = false;
  auto r = Open(&resumed);
  EXPECT_FALSE(r->SetWritten(0, 5000).ok());
  ASSERT_TRUE(r->SetWritten(1, 50).ok());
  EXPECT_FALSE(r->SetWritten(1, 40).ok());
  EXPECT_FALSE(r->SetWritten(7, 1).ok());
}

TEST_F(ResumeRecordTest, PathsAreSeparatePerCacheAndRepo) {
  const auto repo = *RepoId::Parse("org/m");
  auto a = ResumeRecordPath("/s", "/cache/a", repo, etag_);
  auto b = ResumeRecordPath("/s", "/cache/b", repo, etag_);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.filename(), std::string(64, 'a') + ".resume");
  EXPECT_EQ(a.parent_path().filename(), "models--org--m");
}

TEST(RetryTest, BackoffDoublesWithJitterAndIsCapped) {
  const milliseconds base(250), cap(10'000);
  EXPECT_EQ(BackoffDelay(1, base, cap, 0.0), milliseconds(125));
  EXPECT_EQ(BackoffDelay(1, base, cap, 1.0), milliseconds(250));
  EXPECT_EQ(BackoffDelay(3, base, cap, 0.0), milliseconds(500));
  EXPECT_EQ(BackoffDelay(30, base, cap, 1.0), cap);
  EXPECT_GE(BackoffDelay(30, base, cap, 0.0), cap / 2);
}

TEST(RetryTest, RetryAfterInSecondsOrAsADate) {
  // Wed, 21 Oct 2015 07:28:00 GMT, and a minute before it.
  const auto date = std::chrono::system_clock::from_time_t(1445412480);
  const auto now = date - std::chrono::minutes(1);
  EXPECT_EQ(ParseRetryAfter("7", now), milliseconds(7000));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now), milliseconds(60'000));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", date + std::chrono::hours(1)),
            milliseconds(0));  // past
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("99999999", now), milliseconds(86'400'000));  // capped to a day
}

}  // namespace
}  // namespace mc::downloader
