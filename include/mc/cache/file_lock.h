// FileLock: an exclusive flock(2) on a lock file, as huggingface_hub's filelock does
// (hf-hub-protocol.md §7): the file is opened O_RDWR|O_CREAT|O_NOFOLLOW, mode 0664; after the lock
// is taken we check the path still names the locked inode (a peer may have unlinked it) and retry.
// The lock is released (and the file left in place) by the destructor. Not copyable; movable.
#pragma once

#include <chrono>
#include <filesystem>

#include "mc/common/status.h"

namespace mc::cache {

class FileLock {
 public:
  // Blocks until the lock is held or `timeout` passed (DeadlineExceeded). Creates parent dirs.
  static StatusOr<FileLock> Acquire(const std::filesystem::path& path,
                                    std::chrono::milliseconds timeout = std::chrono::hours(24));
  // Returns Unavailable at once if another holder has it.
  static StatusOr<FileLock> TryAcquire(const std::filesystem::path& path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace mc::cache
