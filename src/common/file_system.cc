#include "mc/common/file_system.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace mc {
namespace {

namespace fs = std::filesystem;

class RealFileSystem : public FileSystem {
 public:
  StatusOr<int> Open(const fs::path& path, int flags, unsigned mode) override {
    while (true) {
      const int fd = ::open(path.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode));
      if (fd >= 0) return fd;
      if (errno != EINTR) return ErrnoError(errno, "open " + path.string());
    }
  }

  void Close(int fd) override { ::close(fd); }

  StatusOr<size_t> ReadAt(int fd, char* data, size_t size, uint64_t offset) override {
    while (true) {
      const ssize_t n = ::pread(fd, data, size, static_cast<off_t>(offset));
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoError(errno, "read");
    }
  }

  StatusOr<size_t> WriteAt(int fd, const char* data, size_t size, uint64_t offset) override {
    while (true) {
      const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoError(errno, "write");
    }
  }

  Status Truncate(int fd, uint64_t size) override {
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return ErrnoError(errno, "truncate");
    return Status::Ok();
  }

  void StartWriteback(int fd, uint64_t offset, uint64_t size) override {
    ::sync_file_range(fd, static_cast<off_t>(offset), static_cast<off_t>(size),
                      SYNC_FILE_RANGE_WRITE);
  }

  StatusOr<FileId> Identify(int fd) override {
    struct stat st;
    if (::fstat(fd, &st) != 0) return ErrnoError(errno, "stat");
    FileId id{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
              static_cast<uint64_t>(st.st_size), 0};
    struct statx stx;
    if (::statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &stx) == 0 && (stx.stx_mask & STATX_BTIME)) {
      id.birth_ns =
          static_cast<uint64_t>(stx.stx_btime.tv_sec) * 1'000'000'000ull + stx.stx_btime.tv_nsec;
    }
    return id;
  }

  StatusOr<uint64_t> FileSize(const fs::path& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoError(errno, "stat " + path.string());
    return static_cast<uint64_t>(st.st_size);
  }

  Status Rename(const fs::path& from, const fs::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoError(errno, "rename " + from.string() + " to " + to.string());
    }
    return Status::Ok();
  }

  Status Remove(const fs::path& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoError(errno, "remove " + path.string());
    }
    return Status::Ok();
  }

  Status CreateDirectories(const fs::path& dir) override {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return ErrnoError(ec.value(), "create " + dir.string());
    return Status::Ok();
  }

  StatusOr<uint64_t> FreeBytes(const fs::path& dir) override {
    struct statvfs vfs;
    if (::statvfs(dir.c_str(), &vfs) != 0) return ErrnoError(errno, "statvfs " + dir.string());
    return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  }
};

}  // namespace

FileSystem& FileSystem::Real() {
  static RealFileSystem real;
  return real;
}

Status WriteAllAt(FileSystem& files, int fd, const char* data, size_t size, uint64_t offset) {
  while (size > 0) {
    StatusOr<size_t> n = files.WriteAt(fd, data, size, offset);
    if (!n.ok()) return n.status();
    if (*n == 0) return InternalError("write: no progress");
    data += *n;
    size -= *n;
    offset += *n;
  }
  return Status::Ok();
}

Status ReadAllAt(FileSystem& files, int fd, char* data, size_t size, uint64_t offset) {
  while (size > 0) {
    StatusOr<size_t> n = files.ReadAt(fd, data, size, offset);
    if (!n.ok()) return n.status();
    if (*n == 0) return DataLossError("read: the file ends before byte " + std::to_string(offset));
    data += *n;
    size -= *n;
    offset += *n;
  }
  return Status::Ok();
}

}  // namespace mc
