#include "mc/common/file_system.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <string>

namespace mc {
namespace {

namespace fs = std::filesystem;

// The real file system, with every write cut to `cut` bytes.
class ShortWrites : public FileSystem {
 public:
  explicit ShortWrites(size_t cut) : cut_(cut) {}
  StatusOr<int> Open(const fs::path& p, int flags, unsigned mode) override {
    return real_.Open(p, flags, mode);
  }
  void Close(int fd) override { real_.Close(fd); }
  StatusOr<size_t> ReadAt(int fd, char* d, size_t n, uint64_t o) override {
    return real_.ReadAt(fd, d, std::min(n, cut_), o);
  }
  StatusOr<size_t> WriteAt(int fd, const char* d, size_t n, uint64_t o) override {
    ++writes;
    return real_.WriteAt(fd, d, std::min(n, cut_), o);
  }
  Status Truncate(int fd, uint64_t n) override { return real_.Truncate(fd, n); }
  void StartWriteback(int fd, uint64_t o, uint64_t n) override { real_.StartWriteback(fd, o, n); }
  StatusOr<FileId> Identify(int fd) override { return real_.Identify(fd); }
  StatusOr<uint64_t> FileSize(const fs::path& p) override { return real_.FileSize(p); }
  Status Rename(const fs::path& a, const fs::path& b) override { return real_.Rename(a, b); }
  Status Remove(const fs::path& p) override { return real_.Remove(p); }
  Status CreateDirectories(const fs::path& d) override { return real_.CreateDirectories(d); }
  StatusOr<uint64_t> FreeBytes(const fs::path& d) override { return real_.FreeBytes(d); }
  int writes = 0;

 private:
  FileSystem& real_ = FileSystem::Real();
  size_t cut_;
};

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mc_fs_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    ASSERT_TRUE(FileSystem::Real().CreateDirectories(dir_ / "a" / "b").ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FileSystemTest, WriteAllAtAndReadAllAtCarryOnAfterShortTransfers) {
  ShortWrites files(3);
  StatusOr<int> fd = files.Open(dir_ / "f", O_RDWR | O_CREAT, 0600);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  ASSERT_TRUE(WriteAllAt(files, *fd, "hello world", 11, 2).ok());
  EXPECT_EQ(files.writes, 4);
  std::string back(11, '\0');
  ASSERT_TRUE(ReadAllAt(files, *fd, back.data(), 11, 2).ok());
  EXPECT_EQ(back, "hello world");
  EXPECT_EQ(*files.FileSize(dir_ / "f"), 13u);
  files.Close(*fd);
}

TEST_F(FileSystemTest, ReadingPastTheEndIsDataLoss) {
  FileSystem& files = FileSystem::Real();
  StatusOr<int> fd = files.Open(dir_ / "f", O_RDWR | O_CREAT, 0600);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(WriteAllAt(files, *fd, "abc", 3, 0).ok());
  char buf[8];
  EXPECT_EQ(ReadAllAt(files, *fd, buf, 8, 0).code(), StatusCode::kDataLoss);
  files.Close(*fd);
}

TEST_F(FileSystemTest, ErrorsAreErrnoStatusesThatNameThePath) {
  FileSystem& files = FileSystem::Real();
  StatusOr<int> missing = files.Open(dir_ / "nope", O_RDONLY, 0);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find((dir_ / "nope").string()), std::string::npos);
  EXPECT_EQ(files.FileSize(dir_ / "nope").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(files.Remove(dir_ / "nope").ok());  // already gone is fine
  EXPECT_GT(*files.FreeBytes(dir_), 0u);
}

TEST_F(FileSystemTest, RenameMovesAndIdentifyTellsFilesApart) {
  FileSystem& files = FileSystem::Real();
  StatusOr<int> a = files.Open(dir_ / "a.tmp", O_RDWR | O_CREAT, 0600);
  StatusOr<int> b = files.Open(dir_ / "b", O_RDWR | O_CREAT, 0600);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(files.Identify(*a)->inode, files.Identify(*b)->inode);
  ASSERT_TRUE(files.Rename(dir_ / "a.tmp", dir_ / "c").ok());
  EXPECT_TRUE(files.FileSize(dir_ / "c").ok());
  EXPECT_FALSE(files.FileSize(dir_ / "a.tmp").ok());
  files.Close(*a);
  files.Close(*b);
}

}  // namespace
}  // namespace mc
