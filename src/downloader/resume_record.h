// ResumeRecord: how many bytes of each cell of a resumable blob temp file are written, kept in
// the state dir so that a later process continues a killed download (pull.h, "Resume").
//
// File format (host byte order; a record is only read back on the host that wrote it):
//   [0, 8)    magic "MCRESUM1"
//   [8, 16)   blob size
//   [16, 24)  cell size
//   [24, 32)  device of the temp file   [32, 40) inode of the temp file
//   [40, 104) etag, NUL-padded          [104, 112) creation time of the temp file (statx btime)
//   [128, 128 + 8 * cells)  bytes written from the start of each cell (contiguous)
// A record is created zeroed under a temp name and renamed into place, then updated in place with
// 8-byte pwrite(2)s, each after the bytes it counts were written to the temp file: after a kill
// the record never claims more than the page cache holds. A record that does not match the temp
// file (another inode or creation time, size, cell size or etag; a count above its cell) is
// discarded.
//
// Every file system call goes through the FileSystem it is opened with (a test's full disk).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "mc/common/file_system.h"
#include "mc/common/ids.h"
#include "mc/common/status.h"

namespace mc::downloader {

class ResumeRecord {
 public:
  // Loads the record at `path` if it matches the temp file open as `data_fd`, else creates a
  // fresh zeroed one (and reports resumed = false). `files` is borrowed and must outlive the record.
  static StatusOr<ResumeRecord> Open(FileSystem& files, const std::filesystem::path& path,
                                     const Etag& etag, uint64_t size, uint64_t cell_size,
                                     int data_fd, bool* resumed);
  ResumeRecord(ResumeRecord&&) noexcept;
  ResumeRecord& operator=(ResumeRecord&&) noexcept;
  ResumeRecord(const ResumeRecord&) = delete;
  ResumeRecord& operator=(const ResumeRecord&) = delete;
  ~ResumeRecord();

  size_t cells() const { return written_.size(); }
  uint64_t cell_size() const { return cell_size_; }
  uint64_t size() const { return size_; }
  uint64_t CellBegin(size_t cell) const { return cell * cell_size_; }
  uint64_t CellLength(size_t cell) const;
  uint64_t written(size_t cell) const { return written_[cell]; }
  bool CellFull(size_t cell) const { return written_[cell] == CellLength(cell); }
  uint64_t TotalWritten() const;
  // Records that cell `cell` now has `bytes` written (must not decrease).
  Status SetWritten(size_t cell, uint64_t bytes);
  // Zeroes every count (the temp file is being restarted).
  Status Reset();
  // Deletes the record file (after publication or when the blob is dropped).
  void Remove();

 private:
  explicit ResumeRecord(FileSystem& files) : fs_(&files) {}
  void Close();
  // Loads the counts at `path` if its header is `header` (then owns its fd); false otherwise.
  bool Load(const std::filesystem::path& path, const std::string& header, uint64_t data_size);
  // Writes a fresh zeroed record under a temp name and renames it to `path`.
  Status Create(const std::filesystem::path& path, const std::string& header);
  FileSystem* fs_;
  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t cell_size_ = 1;
  std::vector<uint64_t> written_;
};

// "<state_dir>/partial/<16 hex of sha256(cache root)>/<repo folder>/<etag>.resume": one namespace
// per cache, so two caches sharing a state dir never mix their records.
std::filesystem::path ResumeRecordPath(const std::filesystem::path& state_dir,
                                       const std::filesystem::path& cache_root, const RepoId& repo,
                                       const Etag& etag);

}  // namespace mc::downloader
