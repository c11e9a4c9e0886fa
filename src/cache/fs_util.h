// Small POSIX helpers shared by the cache implementation. Internal: not part of the public API.
// Every function returns Status (never throws) and names the path in its error message.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "mc/cache/cache_scan.h"
#include "mc/common/status.h"

namespace mc::cache::internal {

// Owns a file descriptor; closes it on destruction.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() { Reset(); }
  ScopedFd(ScopedFd&& o) noexcept : fd_(o.Release()) {}
  ScopedFd& operator=(ScopedFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = o.Release();
    }
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  bool valid() const { return fd_ >= 0; }
  int get() const { return fd_; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset();

 private:
  int fd_ = -1;
};

// 8 random lowercase hex characters (unique temp-name suffixes).
std::string RandomHex8();

// True if `name` ends in ".<8 hex><suffix>" (our temp names, e.g. suffix ".tmp").
bool HasTempSuffix(std::string_view name, std::string_view suffix);

Status ErrorFromEc(const std::error_code& ec, std::string_view what);

// mkdir -p; each directory it creates is durable (its parent is fsynced) when it returns.
Status MakeDirs(const std::filesystem::path& dir);
// Writes all bytes, retrying short writes and EINTR.
Status WriteAll(int fd, const void* data, size_t size, std::string_view what);
// fsync(2) of a directory: makes the creates, renames and unlinks in it durable. Every rename or
// link that publishes state is followed by one (docs/reliability.md).
Status FsyncDir(const std::filesystem::path& dir);
Status RenamePath(const std::filesystem::path& from, const std::filesystem::path& to);
// Removes a file or an empty dir; a missing path is OK.
Status RemoveIfExists(const std::filesystem::path& path);
// Removes a tree; a missing path is OK.
Status RemoveTree(const std::filesystem::path& path);

// Writes `content` to `temp`, fsyncs, renames it over `dest` (atomic replace) and fsyncs the
// directory of `dest` (durable replace).
Status WriteFileAtomic(const std::filesystem::path& dest, const std::filesystem::path& temp,
                       std::string_view content);
// Whole content of a small file; InvalidArgument if larger than max_bytes.
StatusOr<std::string> ReadSmallFile(const std::filesystem::path& path, size_t max_bytes);

// Creates symlink `temp` -> `target`, renames it over `link` (atomic create-or-replace) and
// fsyncs the directory of `link` (durable).
Status SymlinkAtomic(const std::string& target, const std::filesystem::path& link,
                     const std::filesystem::path& temp);

// lstat/stat wrappers: false when the path does not exist (or cannot be stat'ed).
bool LStat(const std::filesystem::path& path, struct stat* st);
bool Stat(const std::filesystem::path& path, struct stat* st);

FileTime ToFileTime(const struct timespec& ts);

}  // namespace mc::cache::internal
