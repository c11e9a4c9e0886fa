// FileSystem: the file system calls of code that must survive a full disk or a failing device,
// behind one small interface (in the spirit of leveldb's Env), so that tests inject ENOSPC, short
// writes and EIO without root. FileSystem::Real() is the operating system; options take a
// `FileSystem*` that defaults to it.
//
// Errors are ErrnoError(errno, "<call> <path>"): ENOSPC and EDQUOT are ResourceExhausted, ENOENT
// NotFound, EIO Internal (status.h). EINTR is retried inside. A short read or write is not an
// error (the Real() one is rare, a test's may be on purpose): ReadAllAt/WriteAllAt loop.
//
// Thread-safety: every method may be called from any thread (Real() is stateless).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "mc/common/status.h"

namespace mc {

class FileSystem {
 public:
  // What tells one file from another that replaced it under the same name.
  struct FileId {
    uint64_t device = 0;
    uint64_t inode = 0;
    uint64_t size = 0;
    uint64_t birth_ns = 0;  // creation time (statx), 0 where the file system keeps none
  };

  virtual ~FileSystem() = default;

  // open(2) with `flags` (O_CLOEXEC is added); the caller owns the fd and gives it to Close.
  virtual StatusOr<int> Open(const std::filesystem::path& path, int flags, unsigned mode) = 0;
  virtual void Close(int fd) = 0;
  // One pread(2): the bytes read, 0 at the end of the file.
  virtual StatusOr<size_t> ReadAt(int fd, char* data, size_t size, uint64_t offset) = 0;
  // One pwrite(2): the bytes written, maybe fewer than `size`.
  virtual StatusOr<size_t> WriteAt(int fd, const char* data, size_t size, uint64_t offset) = 0;
  // ftruncate(2).
  virtual Status Truncate(int fd, uint64_t size) = 0;
  // Starts writeback of a finished range (sync_file_range(2), SYNC_FILE_RANGE_WRITE): advisory,
  // so that a later fsync is short; no durability promise, no error.
  virtual void StartWriteback(int fd, uint64_t offset, uint64_t size) = 0;
  virtual StatusOr<FileId> Identify(int fd) = 0;
  // The size of the file at `path` (following symlinks); NotFound if there is none.
  virtual StatusOr<uint64_t> FileSize(const std::filesystem::path& path) = 0;
  virtual Status Rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  // unlink(2); OK if the file is already gone.
  virtual Status Remove(const std::filesystem::path& path) = 0;
  virtual Status CreateDirectories(const std::filesystem::path& dir) = 0;
  // Bytes an unprivileged writer may still use on the file system holding `dir` (statvfs(2)).
  virtual StatusOr<uint64_t> FreeBytes(const std::filesystem::path& dir) = 0;

  // The operating system.
  static FileSystem& Real();
};

// Writes all of [data, data + size) at `offset`, continuing after short writes.
Status WriteAllAt(FileSystem& files, int fd, const char* data, size_t size, uint64_t offset);
// Reads exactly `size` bytes at `offset`; DataLoss if the file ends first.
Status ReadAllAt(FileSystem& files, int fd, char* data, size_t size, uint64_t offset);

}  // namespace mc
