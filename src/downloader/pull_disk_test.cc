// Puller on a disk that misbehaves (FaultyFileSystem through PullOptions::file_system): it fills
// up mid-pull, cuts writes short, fails with EIO, or has too little room for the plan. A failed
// pull must say what to do, leave nothing unverified reachable, and the next pull must resume.
#include <gtest/gtest.h>

#include "downloader/faulty_file_system.h"
#include "downloader/pull_fixture.h"

namespace mc::downloader {
namespace {

namespace fs = std::filesystem;

bool Says(const Status& s, std::string_view text) {
  return s.message().find(text) != std::string::npos;
}

TEST_F(PullTest, ADiskThatFillsUpFailsThePullClearlyAndTheNextPullResumes) {
  auto server = Serve(Up().cache_dir);
  FaultyFileSystem disk;
  disk.FillAfter(5'000'000);
  PullOptions o = Options(*server);
  o.file_system = &disk;
  auto full = Pull(o);
  ASSERT_EQ(full.status().code(), StatusCode::kResourceExhausted) << full.status().ToString();
  // It says what happened, where, and what to do.
  EXPECT_TRUE(Says(full.status(), "disk full while writing the download (" + dir_.string()))
      << full.status().message();
  EXPECT_TRUE(Says(full.status(), "No space left on device")) << full.status().message();
  EXPECT_TRUE(Says(full.status(), "free space, then run the pull again")) << full.status().message();
  EXPECT_GE(disk.failed_writes(), 1);
  ExpectNothingUnverified(dir_ / "cache");
  const fs::path repo = dir_ / "cache" / "models--org--model";
  EXPECT_FALSE(fs::exists(repo / "blobs" / Up().File(kWeights).etag));
  EXPECT_FALSE(fs::exists(repo / "snapshots" / Up().model.commit.str() / kWeights));

  // Space returns: the same pull finishes, without fetching what was written before again.
  disk.FillAfter(std::nullopt);
  auto r = Pull(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectComplete(*r, dir_ / "cache");
  EXPECT_GT(r->bytes_resumed, 0u);
  EXPECT_LT(r->bytes_fetched, Up().model.bytes);
}

TEST_F(PullTest, WritesCutShortStillGiveAVerifiedSnapshot) {
  auto server = Serve(Up().cache_dir);
  FaultyFileSystem disk;
  disk.CutWritesTo(1000);
  PullOptions o = Options(*server);
  o.file_system = &disk;
  auto r = Pull(std::move(o));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectComplete(*r, dir_ / "cache");
}

TEST_F(PullTest, AFailingDeviceFailsThePullAndLeavesNothingUnverified) {
  auto server = Serve(Up().cache_dir);
  FaultyFileSystem disk;
  disk.FailWritesAfter(2'000'000, EIO);
  PullOptions o = Options(*server);
  o.file_system = &disk;
  auto r = Pull(std::move(o));
  ASSERT_EQ(r.status().code(), StatusCode::kInternal) << r.status().ToString();
  EXPECT_TRUE(Says(r.status(), "Input/output error")) << r.status().message();
  EXPECT_TRUE(Says(r.status(), "write the download: " + dir_.string())) << r.status().message();
  ExpectNothingUnverified(dir_ / "cache");
}

TEST_F(PullTest, TooLittleFreeSpaceFailsBeforeAnyByteIsFetched) {
  auto server = Serve(Up().cache_dir);
  FaultyFileSystem disk;
  disk.ReportFreeBytes(1 << 20);
  PullOptions o = Options(*server);
  o.file_system = &disk;
  auto r = Pull(std::move(o));
  ASSERT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  EXPECT_TRUE(Says(r.status(), "not enough disk space")) << r.status().message();
  EXPECT_TRUE(Says(r.status(), "1.0 MiB are free")) << r.status().message();
  EXPECT_EQ(server->stats().resolve_get, 0u);
}

}  // namespace
}  // namespace mc::downloader
