#include "mc/cache/file_lock.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/test_util.h"

namespace mc::cache {
namespace {

TEST(FileLockTest, SecondHolderIsRefusedWhileTheFirstHoldsIt) {
  auto path = test::NewTempDir() / ".locks" / "repo" / "x.lock";
  auto first = FileLock::Acquire(path);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(FileLock::TryAcquire(path).status().code(), StatusCode::kUnavailable);
}

TEST(FileLockTest, LockIsFreeAgainAfterTheHolderIsDestroyed) {
  auto path = test::NewTempDir() / "x.lock";
  {
    auto first = FileLock::Acquire(path);
    ASSERT_TRUE(first.ok());
  }
  EXPECT_TRUE(FileLock::TryAcquire(path).ok());
  EXPECT_TRUE(std::filesystem::exists(path));  // left in place, like huggingface_hub
}

TEST(FileLockTest, AcquireTimesOutWithDeadlineExceeded) {
  auto path = test::NewTempDir() / "x.lock";
  auto first = FileLock::Acquire(path);
  ASSERT_TRUE(first.ok());
  auto second = FileLock::Acquire(path, std::chrono::milliseconds(0));
  EXPECT_EQ(second.status().code(), StatusCode::kDeadlineExceeded);
}

TEST(FileLockTest, ExcludesAnotherProcess) {
  auto path = test::NewTempDir() / "x.lock";
  auto held = FileLock::Acquire(path);
  ASSERT_TRUE(held.ok());
  pid_t pid = ::fork();
  if (pid == 0) _exit(FileLock::TryAcquire(path).ok() ? 1 : 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(FileLockTest, UnlinkedLockFileIsNotTrusted) {
  // A peer that deletes the lock file on release leaves our fd locking an orphan inode: a new
  // holder must lock the file now at the path, and so must we.
  auto path = test::NewTempDir() / "x.lock";
  auto orphan = FileLock::Acquire(path);
  ASSERT_TRUE(orphan.ok());
  ::unlink(path.c_str());
  auto fresh = FileLock::TryAcquire(path);
  EXPECT_TRUE(fresh.ok());
  EXPECT_EQ(FileLock::TryAcquire(path).status().code(), StatusCode::kUnavailable);
}

TEST(FileLockTest, LockFileIsCreatedWithMode0664MinusUmask) {
  auto path = test::NewTempDir() / "x.lock";
  mode_t old = ::umask(002);
  auto held = FileLock::Acquire(path);
  ::umask(old);
  ASSERT_TRUE(held.ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0664u);
}

TEST(FileLockTest, RefusesToFollowASymlinkedLockPath) {
  auto dir = test::NewTempDir();
  ::symlink((dir / "elsewhere").c_str(), (dir / "x.lock").c_str());
  EXPECT_FALSE(FileLock::TryAcquire(dir / "x.lock").ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "elsewhere"));
}

}  // namespace
}  // namespace mc::cache
