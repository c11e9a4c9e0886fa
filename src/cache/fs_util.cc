#include "cache/fs_util.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <vector>

namespace mc::cache::internal {

namespace fs = std::filesystem;

void ScopedFd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string RandomHex8() {
  uint32_t value = 0;
  if (::getrandom(&value, sizeof(value), GRND_NONBLOCK) != sizeof(value)) {
    // Without entropy, pid + time + counter is still unique enough for temp names.
    static std::atomic<uint32_t> counter{0};
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    value = static_cast<uint32_t>(now) ^ (static_cast<uint32_t>(::getpid()) << 16) ^ ++counter;
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i) {
    out[i] = kHex[value & 15];
    value >>= 4;
  }
  return out;
}

bool HasTempSuffix(std::string_view name, std::string_view suffix) {
  if (name.size() < suffix.size() + 9) return false;
  if (name.substr(name.size() - suffix.size()) != suffix) return false;
  std::string_view hex = name.substr(name.size() - suffix.size() - 8, 8);
  if (name[name.size() - suffix.size() - 9] != '.') return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status ErrorFromEc(const std::error_code& ec, std::string_view what) {
  return ErrnoError(ec.value(), what);
}

Status MakeDirs(const fs::path& dir) {
  // Find the deepest ancestor that exists, then create downwards, fsyncing each parent after the
  // mkdir: a directory that a power cut can take away again would take every link inside with it.
  std::vector<fs::path> missing;
  struct stat st;
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return ErrnoError(ENOTDIR, "mkdir " + dir.string());
      break;
    }
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0777) != 0) {
      if (errno == EEXIST && ::stat(it->c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
      return ErrnoError(errno, "mkdir " + it->string());
    }
    if (it->has_parent_path()) MC_RETURN_IF_ERROR(FsyncDir(it->parent_path()));
  }
  return Status::Ok();
}

Status WriteAll(int fd, const void* data, size_t size, std::string_view what) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, std::string("write ") + std::string(what));
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FsyncDir(const fs::path& dir) {
  ScopedFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open dir " + dir.string());
  if (::fsync(fd.get()) != 0 && errno != EINVAL) return ErrnoError(errno, "fsync " + dir.string());
  return Status::Ok();
}

Status RenamePath(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoError(errno, "rename " + from.string() + " -> " + to.string());
  }
  return Status::Ok();
}

Status RemoveIfExists(const fs::path& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return ErrorFromEc(ec, "remove " + path.string());
  }
  return Status::Ok();
}

Status RemoveTree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return ErrorFromEc(ec, "remove " + path.string());
  }
  return Status::Ok();
}

Status WriteFileAtomic(const fs::path& dest, const fs::path& temp, std::string_view content) {
  ScopedFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (!fd.valid()) return ErrnoError(errno, "create " + temp.string());
  Status s = WriteAll(fd.get(), content.data(), content.size(), temp.string());
  if (s.ok() && ::fsync(fd.get()) != 0) s = ErrnoError(errno, "fsync " + temp.string());
  fd.Reset();
  if (s.ok()) s = RenamePath(temp, dest);
  if (!s.ok()) {
    ::unlink(temp.c_str());
    return s;
  }
  return FsyncDir(dest.parent_path());  // the rename itself survives a power cut only after this
}

StatusOr<std::string> ReadSmallFile(const fs::path& path, size_t max_bytes) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open " + path.string());
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "read " + path.string());
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) return InvalidArgumentError("file too large: " + path.string());
  }
  return out;
}

Status SymlinkAtomic(const std::string& target, const fs::path& link, const fs::path& temp) {
  if (::symlink(target.c_str(), temp.c_str()) != 0) {
    return ErrnoError(errno, "symlink " + temp.string());
  }
  Status s = RenamePath(temp, link);
  if (!s.ok()) {
    ::unlink(temp.c_str());
    return s;
  }
  return FsyncDir(link.parent_path());
}

bool LStat(const fs::path& path, struct stat* st) { return ::lstat(path.c_str(), st) == 0; }

bool Stat(const fs::path& path, struct stat* st) { return ::stat(path.c_str(), st) == 0; }

FileTime ToFileTime(const struct timespec& ts) {
  auto d = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  return FileTime(std::chrono::duration_cast<FileTime::duration>(d));
}

}  // namespace mc::cache::internal
