// A FileSystem for tests: the real one, with faults on writes and on the free-space answer: a
// disk that fills up after so many bytes, writes cut short, a failing device. Thread-safe.
#pragma once

#include <cerrno>
#include <mutex>
#include <optional>

#include "mc/common/file_system.h"

namespace mc::downloader {

class FaultyFileSystem : public FileSystem {
 public:
  // From now on, `bytes` more bytes fit; then writes fail with ENOSPC (a write that crosses the
  // limit is cut short first, as on a real file system). nullopt: no limit.
  void FillAfter(std::optional<uint64_t> bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    room_ = bytes;
  }
  // Every write takes at most `bytes` (0: no limit).
  void CutWritesTo(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    cut_ = bytes;
  }
  // After `bytes` more bytes, every write fails with `error` (EIO: a failing device).
  void FailWritesAfter(uint64_t bytes, int error) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_after_ = bytes;
    fail_with_ = error;
  }
  // What FreeBytes answers (nullopt: the truth).
  void ReportFreeBytes(std::optional<uint64_t> bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    free_ = bytes;
  }
  int failed_writes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_writes_;
  }

  StatusOr<size_t> WriteAt(int fd, const char* data, size_t size, uint64_t offset) override {
    {
      // The bytes are taken from the limits before the write, so that concurrent writers never
      // share the same room; what a write does not use is given back.
      std::lock_guard<std::mutex> lock(mu_);
      if (fail_after_ && *fail_after_ == 0) return Failed(fail_with_);
      if (room_ && *room_ == 0) return Failed(ENOSPC);
      if (cut_ > 0) size = std::min(size, cut_);
      if (room_) size = static_cast<size_t>(std::min<uint64_t>(size, *room_));
      if (fail_after_) size = static_cast<size_t>(std::min<uint64_t>(size, *fail_after_));
      Take(size);
    }
    StatusOr<size_t> n = real_.WriteAt(fd, data, size, offset);
    std::lock_guard<std::mutex> lock(mu_);
    Give(size - (n.ok() ? *n : 0));
    return n;
  }
  StatusOr<uint64_t> FreeBytes(const std::filesystem::path& dir) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (free_) return *free_;
    }
    return real_.FreeBytes(dir);
  }

  // The rest as the real file system does it.
  StatusOr<int> Open(const std::filesystem::path& path, int flags, unsigned mode) override {
    return real_.Open(path, flags, mode);
  }
  void Close(int fd) override { real_.Close(fd); }
  StatusOr<size_t> ReadAt(int fd, char* data, size_t size, uint64_t offset) override {
    return real_.ReadAt(fd, data, size, offset);
  }
  Status Truncate(int fd, uint64_t size) override { return real_.Truncate(fd, size); }
  void StartWriteback(int fd, uint64_t offset, uint64_t size) override {
    real_.StartWriteback(fd, offset, size);
  }
  StatusOr<FileId> Identify(int fd) override { return real_.Identify(fd); }
  StatusOr<uint64_t> FileSize(const std::filesystem::path& path) override {
    return real_.FileSize(path);
  }
  Status Rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    return real_.Rename(from, to);
  }
  Status Remove(const std::filesystem::path& path) override { return real_.Remove(path); }
  Status CreateDirectories(const std::filesystem::path& dir) override {
    return real_.CreateDirectories(dir);
  }

 private:
  void Take(uint64_t bytes) {  // mu_ held
    if (room_) *room_ -= bytes;
    if (fail_after_) *fail_after_ -= bytes;
  }
  void Give(uint64_t bytes) {  // mu_ held
    if (room_) *room_ += bytes;
    if (fail_after_) *fail_after_ += bytes;
  }
  Status Failed(int error) {  // mu_ held
    ++failed_writes_;
    return ErrnoError(error, "write");
  }

  FileSystem& real_ = FileSystem::Real();
  mutable std::mutex mu_;
  std::optional<uint64_t> room_;
  size_t cut_ = 0;
  std::optional<uint64_t> fail_after_;
  int fail_with_ = EIO;
  std::optional<uint64_t> free_;
  int failed_writes_ = 0;
};

}  // namespace mc::downloader
