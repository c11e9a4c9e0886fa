#include "downloader/resume_record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>

#include "mc/cache/blob_hasher.h"

namespace mc::downloader {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'M', 'C', 'R', 'E', 'S', 'U', 'M', '1'};
constexpr size_t kEtagOffset = 40;
constexpr size_t kEtagBytes = 64;
constexpr size_t kHeaderBytes = 128;

struct Header {
  uint64_t size = 0;
  uint64_t cell_size = 0;
  uint64_t dev = 0;
  uint64_t ino = 0;
  std::string etag;
  uint64_t birth = 0;  // creation time of the temp file (ns), 0 where statx has none
};

// Creation time of the file: tells a recreated temp file from the one a record was made for,
// even when the filesystem hands out the same inode number again.
uint64_t BirthNanos(int fd) {
  struct statx stx;
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &stx) != 0 || !(stx.stx_mask & STATX_BTIME)) {
    return 0;
  }
  return static_cast<uint64_t>(stx.stx_btime.tv_sec) * 1'000'000'000ull + stx.stx_btime.tv_nsec;
}

std::string EncodeHeader(const Header& h) {
  std::string out(kHeaderBytes, '\0');
  std::memcpy(out.data(), kMagic, sizeof kMagic);
  std::memcpy(out.data() + 8, &h.size, 8);
  std::memcpy(out.data() + 16, &h.cell_size, 8);
  std::memcpy(out.data() + 24, &h.dev, 8);
  std::memcpy(out.data() + 32, &h.ino, 8);
  std::memcpy(out.data() + kEtagOffset, h.etag.data(), std::min(h.etag.size(), kEtagBytes));
  std::memcpy(out.data() + kEtagOffset + kEtagBytes, &h.birth, 8);
  return out;
}

bool ReadExact(int fd, void* buf, size_t n, off_t offset) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, offset);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
    offset += r;
  }
  return true;
}

Status WriteExact(int fd, const void* buf, size_t n, off_t offset, const fs::path& path) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t r = ::pwrite(fd, p, n, offset);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError(errno, "write " + path.string());
    p += r;
    n -= static_cast<size_t>(r);
    offset += r;
  }
  return Status::Ok();
}

std::string RandomSuffix() {
  std::random_device rd;
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
  return buf;
}

}  // namespace

uint64_t ResumeRecord::CellLength(size_t cell) const {
  const uint64_t begin = CellBegin(cell);
  return std::min(cell_size_, size_ - begin);
}

uint64_t ResumeRecord::TotalWritten() const {
  uint64_t total = 0;
  for (uint64_t w : written_) total += w;
  return total;
}

StatusOr<ResumeRecord> ResumeRecord::Open(const fs::path& path, const Etag& etag, uint64_t size,
                                          uint64_t cell_size, int data_fd, bool* resumed) {
  *resumed = false;
  if (cell_size == 0) return InvalidArgumentError("resume record: cell size 0");
  struct stat data_st;
  if (::fstat(data_fd, &data_st) != 0) return ErrnoError(errno, "stat blob temp file");
  Header want{size,
              cell_size,
              static_cast<uint64_t>(data_st.st_dev),
              static_cast<uint64_t>(data_st.st_ino),
              etag.str(),
              BirthNanos(data_fd)};
  const size_t cells = size == 0 ? 0 : static_cast<size_t>((size + cell_size - 1) / cell_size);

  ResumeRecord record;
  record.path_ = path;
  record.size_ = size;
  record.cell_size_ = cell_size;
  record.written_.assign(cells, 0);

  // Try the existing record.
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) {
    std::string header(kHeaderBytes, '\0');
    bool ok = ReadExact(fd, header.data(), kHeaderBytes, 0) && header == EncodeHeader(want) &&
              static_cast<uint64_t>(data_st.st_size) == size;
    if (ok && cells > 0) {
      ok = ReadExact(fd, record.written_.data(), cells * 8, kHeaderBytes);
      for (size_t i = 0; ok && i < cells; ++i) ok = record.written_[i] <= record.CellLength(i);
    }
    if (ok) {
      record.fd_ = fd;
      *resumed = record.TotalWritten() > 0;
      return record;
    }
    ::close(fd);
    record.written_.assign(cells, 0);
  }

  // A fresh record: written under a temp name, renamed into place.
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return ErrnoError(ec.value(), "create " + path.parent_path().string());
  const fs::path temp = path.string() + "." + RandomSuffix() + ".tmp";
  fd = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoError(errno, "create " + temp.string());
  std::string bytes = EncodeHeader(want);
  bytes.resize(kHeaderBytes + cells * 8, '\0');
  Status st = WriteExact(fd, bytes.data(), bytes.size(), 0, temp);
  if (st.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    st = ErrnoError(errno, "rename " + temp.string());
  }
  if (!st.ok()) {
    ::close(fd);
    ::unlink(temp.c_str());
    return st;
  }
  record.fd_ = fd;
  return record;
}

ResumeRecord::ResumeRecord(ResumeRecord&& o) noexcept
    : path_(std::move(o.path_)),
      fd_(o.fd_),
      size_(o.size_),
      cell_size_(o.cell_size_),
      written_(std::move(o.written_)) {
  o.fd_ = -1;
}

ResumeRecord& ResumeRecord::operator=(ResumeRecord&& o) noexcept {
  if (this != &o) {
    Close();
    path_ = std::move(o.path_);
    fd_ = o.fd_;
    size_ = o.size_;
    cell_size_ = o.cell_size_;
    written_ = std::move(o.written_);
    o.fd_ = -1;
  }
  return *this;
}

ResumeRecord::~ResumeRecord() { Close(); }

void ResumeRecord::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status ResumeRecord::SetWritten(size_t cell, uint64_t bytes) {
  if (cell >= written_.size() || bytes > CellLength(cell) || bytes < written_[cell]) {
    return InternalError("resume record: bad update of cell " + std::to_string(cell));
  }
  written_[cell] = bytes;
  return WriteExact(fd_, &bytes, 8, static_cast<off_t>(kHeaderBytes + cell * 8), path_);
}

Status ResumeRecord::Reset() {
  std::fill(written_.begin(), written_.end(), 0);
  std::string zeros(written_.size() * 8, '\0');
  return WriteExact(fd_, zeros.data(), zeros.size(), kHeaderBytes, path_);
}

void ResumeRecord::Remove() {
  Close();
  if (!path_.empty()) ::unlink(path_.c_str());
}

fs::path ResumeRecordPath(const fs::path& state_dir, const fs::path& cache_root, const RepoId& repo,
                          const Etag& etag) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(cache_root, ec);
  if (ec) canonical = cache_root;
  const std::string ns = cache::Sha256Hex(canonical.string()).substr(0, 16);
  return state_dir / "partial" / ns / repo.FolderName() / (etag.str() + ".resume");
}

}  // namespace mc::downloader
