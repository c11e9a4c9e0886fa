#include "mc/cache/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include "cache/fs_util.h"

namespace mc::cache {
namespace {

enum class TryResult { kLocked, kBusy, kRetry };

// Opens the lock file and tries flock(LOCK_EX|LOCK_NB) once. kRetry: the file we locked was
// unlinked or replaced by a peer (filelock deletes lock files on release), so lock the new one.
StatusOr<TryResult> TryLockOnce(const std::filesystem::path& path, int* out_fd) {
  internal::ScopedFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0664));
  if (!fd.valid()) return ErrnoError(errno, "open lock " + path.string());
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK || errno == EINTR) return TryResult::kBusy;
    return ErrnoError(errno, "flock " + path.string());
  }
  struct stat held, named;
  if (::fstat(fd.get(), &held) != 0) return ErrnoError(errno, "fstat " + path.string());
  if (held.st_nlink == 0 || ::stat(path.c_str(), &named) != 0 || named.st_ino != held.st_ino ||
      named.st_dev != held.st_dev) {
    return TryResult::kRetry;
  }
  *out_fd = fd.Release();
  return TryResult::kLocked;
}

Status EnsureParent(const std::filesystem::path& path) {
  return internal::MakeDirs(path.parent_path());
}

}  // namespace

StatusOr<FileLock> FileLock::Acquire(const std::filesystem::path& path,
                                     std::chrono::milliseconds timeout) {
  MC_RETURN_IF_ERROR(EnsureParent(path));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto wait = std::chrono::milliseconds(1);
  while (true) {
    int fd = -1;
    MC_ASSIGN_OR_RETURN(TryResult r, TryLockOnce(path, &fd));
    if (r == TryResult::kLocked) return FileLock(fd);
    if (r == TryResult::kRetry) continue;
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceededError("timed out waiting for lock " + path.string());
    }
    // Polling like py-filelock; flock has no timed wait.
    std::this_thread::sleep_for(wait);
    wait = std::min(wait * 2, std::chrono::milliseconds(100));
  }
}

StatusOr<FileLock> FileLock::TryAcquire(const std::filesystem::path& path) {
  MC_RETURN_IF_ERROR(EnsureParent(path));
  while (true) {
    int fd = -1;
    MC_ASSIGN_OR_RETURN(TryResult r, TryLockOnce(path, &fd));
    if (r == TryResult::kLocked) return FileLock(fd);
    if (r == TryResult::kBusy) return UnavailableError("lock is held: " + path.string());
  }
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

}  // namespace mc::cache
