#include "downloader/resume_record.h"

#include <fcntl.h>

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

StatusOr<ResumeRecord> ResumeRecord::Open(FileSystem& files, const fs::path& path, const Etag& etag,
                                          uint64_t size, uint64_t cell_size, int data_fd,
                                          bool* resumed) {
  *resumed = false;
  if (cell_size == 0) return InvalidArgumentError("resume record: cell size 0");
  MC_ASSIGN_OR_RETURN(FileSystem::FileId data, files.Identify(data_fd), "stat blob temp file");
  const std::string header =
      EncodeHeader(Header{size, cell_size, data.device, data.inode, etag.str(), data.birth_ns});
  ResumeRecord record(files);
  record.path_ = path;
  record.size_ = size;
  record.cell_size_ = cell_size;
  const size_t cells = size == 0 ? 0 : static_cast<size_t>((size + cell_size - 1) / cell_size);
  record.written_.assign(cells, 0);
  if (record.Load(path, header, data.size)) {
    *resumed = record.TotalWritten() > 0;
    return record;
  }
  record.written_.assign(cells, 0);
  MC_RETURN_IF_ERROR(record.Create(path, header));
  return record;
}

bool ResumeRecord::Load(const fs::path& path, const std::string& header, uint64_t data_size) {
  StatusOr<int> fd = fs_->Open(path, O_RDWR | O_NOFOLLOW, 0);
  if (!fd.ok()) return false;
  std::string found(kHeaderBytes, '\0');
  bool ok = ReadAllAt(*fs_, *fd, found.data(), kHeaderBytes, 0).ok() && found == header &&
            data_size == size_;
  if (ok && !written_.empty()) {
    ok = ReadAllAt(*fs_, *fd, reinterpret_cast<char*>(written_.data()), written_.size() * 8,
                   kHeaderBytes)
             .ok();
    for (size_t i = 0; ok && i < written_.size(); ++i) ok = written_[i] <= CellLength(i);
  }
  if (!ok) {
    fs_->Close(*fd);
    return false;
  }
  fd_ = *fd;
  return true;
}

Status ResumeRecord::Create(const fs::path& path, const std::string& header) {
  MC_RETURN_IF_ERROR(fs_->CreateDirectories(path.parent_path()));
  const fs::path temp = path.string() + "." + RandomSuffix() + ".tmp";
  MC_ASSIGN_OR_RETURN(int fd, fs_->Open(temp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
  std::string bytes = header;
  bytes.resize(kHeaderBytes + written_.size() * 8, '\0');
  Status st = WriteAllAt(*fs_, fd, bytes.data(), bytes.size(), 0);
  if (!st.ok()) st = st.WithContext(temp.string());
  if (st.ok()) st = fs_->Rename(temp, path);
  if (!st.ok()) {
    fs_->Close(fd);
    fs_->Remove(temp).IgnoreError();
    return st;
  }
  fd_ = fd;
  return Status::Ok();
}

ResumeRecord::ResumeRecord(ResumeRecord&& o) noexcept
    : fs_(o.fs_),
      path_(std::move(o.path_)),
      fd_(o.fd_),
      size_(o.size_),
      cell_size_(o.cell_size_),
      written_(std::move(o.written_)) {
  o.fd_ = -1;
}

ResumeRecord& ResumeRecord::operator=(ResumeRecord&& o) noexcept {
  if (this != &o) {
    Close();
    fs_ = o.fs_;
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
  if (fd_ >= 0) fs_->Close(fd_);
  fd_ = -1;
}

Status ResumeRecord::SetWritten(size_t cell, uint64_t bytes) {
  if (cell >= written_.size() || bytes > CellLength(cell) || bytes < written_[cell]) {
    return InternalError("resume record: bad update of cell " + std::to_string(cell));
  }
  written_[cell] = bytes;
  return WriteAllAt(*fs_, fd_, reinterpret_cast<const char*>(&bytes), 8, kHeaderBytes + cell * 8)
      .WithContext(path_.string());
}

Status ResumeRecord::Reset() {
  std::fill(written_.begin(), written_.end(), 0);
  std::string zeros(written_.size() * 8, '\0');
  return WriteAllAt(*fs_, fd_, zeros.data(), zeros.size(), kHeaderBytes).WithContext(path_.string());
}

void ResumeRecord::Remove() {
  Close();
  if (!path_.empty()) fs_->Remove(path_).IgnoreError();
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
