// BlobWriter and blob publication: temp file in blobs/, hash while appending, fsync, chmod,
// atomic rename to blobs/<etag>.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "cache/fs_util.h"
#include "mc/cache/cache_store.h"

namespace mc::cache {

namespace fs = std::filesystem;

BlobWriter::~BlobWriter() { Discard(); }

BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : fd_(o.fd_),
      temp_path_(std::move(o.temp_path_)),
      etag_(std::move(o.etag_)),
      repo_(std::move(o.repo_)),
      mode_(o.mode_),
      hasher_(std::move(o.hasher_)),
      content_size_(o.content_size_),
      appended_(o.appended_),
      digest_(std::move(o.digest_)) {
  o.fd_ = -1;
  o.temp_path_.clear();
}

BlobWriter& BlobWriter::operator=(BlobWriter&& o) noexcept {
  if (this != &o) {
    Discard();
    fd_ = o.fd_;
    temp_path_ = std::move(o.temp_path_);
    etag_ = std::move(o.etag_);
    repo_ = std::move(o.repo_);
    mode_ = o.mode_;
    hasher_ = std::move(o.hasher_);
    content_size_ = o.content_size_;
    appended_ = o.appended_;
    digest_ = std::move(o.digest_);
    o.fd_ = -1;
    o.temp_path_.clear();
  }
  return *this;
}

const Etag& BlobWriter::etag() const {
  if (!etag_.has_value()) std::abort();  // precondition violated: content hash not finished
  return *etag_;
}

void BlobWriter::Discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  temp_path_.clear();
}

Status BlobWriter::Append(const void* data, size_t size) {
  if (fd_ < 0) return FailedPreconditionError("blob writer is closed");
  MC_RETURN_IF_ERROR(internal::WriteAll(fd_, data, size, temp_path_.string()));
  // Start writeback of each full window now, asynchronously, so that the fsync before publication
  // finds little left to write (it otherwise waits for the whole blob). A hint only: durability
  // still comes from that fsync.
  constexpr uint64_t kWritebackWindow = 8 << 20;
  const uint64_t window = (appended_ + size) / kWritebackWindow * kWritebackWindow;
  const uint64_t started = appended_ / kWritebackWindow * kWritebackWindow;
  if (window > started) {
    ::sync_file_range(fd_, static_cast<off_t>(started), static_cast<off_t>(window - started),
                      SYNC_FILE_RANGE_WRITE);
  }
  if (hasher_) hasher_->Update(data, size);
  appended_ += size;
  return Status::Ok();
}

StatusOr<Etag> BlobWriter::FinishContentHash() {
  if (etag_.has_value()) return *etag_;
  if (!hasher_) return FailedPreconditionError("not a content blob writer");
  if (appended_ != content_size_) {
    return InvalidArgumentError("content blob: appended " + std::to_string(appended_) +
                                " bytes, declared " + std::to_string(content_size_));
  }
  digest_ = hasher_->Finish();
  hasher_.reset();
  MC_ASSIGN_OR_RETURN(Etag etag, Etag::Parse(*digest_));
  etag_ = etag;
  return etag;
}

namespace {

// Opens a fresh temp file in blobs/ and reports the mode it was created with (umask + ACL).
StatusOr<int> OpenTemp(const fs::path& temp, unsigned* mode) {
  MC_RETURN_IF_ERROR(internal::MakeDirs(temp.parent_path()));
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd < 0) return ErrnoError(errno, "create " + temp.string());
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return ErrnoError(err, "stat " + temp.string());
  }
  *mode = st.st_mode & 07777;
  return fd;
}

}  // namespace

StatusOr<BlobWriter> CacheStore::NewBlobWriter(const RepoId& repo, const Etag& etag) {
  fs::path temp =
      layout_.BlobsDir(repo) / (etag.str() + "." + internal::RandomHex8() + ".incomplete");
  unsigned mode = 0;
  MC_RETURN_IF_ERROR(EnsureRepoDir(repo), "new blob " + etag.str());
  MC_ASSIGN_OR_RETURN(int fd, OpenTemp(temp, &mode), "new blob " + etag.str());
  // sha256 can be hashed on the way; git sha1 needs the length first, so it is checked at publish.
  std::unique_ptr<BlobHasher> hasher;
  if (etag.IsSha256()) hasher = BlobHasher::Create(HashKind::kSha256, 0);
  return BlobWriter(fd, std::move(temp), etag, repo, mode, std::move(hasher), 0);
}

StatusOr<BlobWriter> CacheStore::NewContentBlobWriter(const RepoId& repo, HashKind kind,
                                                      uint64_t size) {
  fs::path temp = layout_.BlobsDir(repo) / ("import." + internal::RandomHex8() + ".incomplete");
  unsigned mode = 0;
  MC_RETURN_IF_ERROR(EnsureRepoDir(repo), "new blob");
  MC_ASSIGN_OR_RETURN(int fd, OpenTemp(temp, &mode), "new blob");
  return BlobWriter(fd, std::move(temp), std::nullopt, repo, mode, BlobHasher::Create(kind, size),
                    size);
}

namespace {

// The content hash of a writer: from the streaming hasher if every byte went through Append,
// else by re-reading the temp file.
StatusOr<std::string> ActualHash(BlobWriter& writer, std::unique_ptr<BlobHasher>& hasher,
                                 std::optional<std::string>& digest, uint64_t appended,
                                 uint64_t file_size) {
  if (digest.has_value() && appended == file_size) return *digest;
  if (hasher && appended == file_size) {
    digest = hasher->Finish();
    hasher.reset();
    return *digest;
  }
  return HashFile(writer.temp_path(), HashKindOf(writer.etag()));
}

}  // namespace

Status CacheStore::PublishBlob(BlobWriter&& w, uint64_t expected_size, bool verify_hash) {
  BlobWriter writer = std::move(w);  // discarded (temp removed) on every early return
  if (writer.fd_ < 0 || !writer.etag_.has_value()) {
    return FailedPreconditionError("publish: writer is closed or its hash is not finished");
  }
  const std::string name = writer.etag_->str();
  struct stat st;
  if (::fstat(writer.fd_, &st) != 0) return ErrnoError(errno, "stat " + writer.temp_path_.string());
  if (static_cast<uint64_t>(st.st_size) != expected_size) {
    return DataLossError("blob " + name + ": wrote " + std::to_string(st.st_size) +
                         " bytes, expected " + std::to_string(expected_size));
  }
  if (verify_hash) {
    MC_ASSIGN_OR_RETURN(std::string actual,
                        ActualHash(writer, writer.hasher_, writer.digest_, writer.appended_,
                                   static_cast<uint64_t>(st.st_size)),
                        "verify blob " + name);
    if (actual != name) {
      return DataLossError("blob hash mismatch: expected " + name + ", got " + actual);
    }
  }
  if (::fsync(writer.fd_) != 0) return ErrnoError(errno, "fsync " + writer.temp_path_.string());
  if (::fchmod(writer.fd_, writer.mode_) != 0) {
    return ErrnoError(errno, "chmod " + writer.temp_path_.string());
  }
  ::close(writer.fd_);
  writer.fd_ = -1;
  fs::path final_path = layout_.BlobPath(writer.repo_, *writer.etag_);
  if (HasBlob(writer.repo_, *writer.etag_, expected_size)) return Status::Ok();  // temp dropped
  MC_RETURN_IF_ERROR(internal::RenamePath(writer.temp_path_, final_path), "publish blob");
  writer.temp_path_.clear();
  return internal::FsyncDir(final_path.parent_path());
}

}  // namespace mc::cache

namespace mc::cache {

std::filesystem::path CacheStore::ResumableBlobPath(const RepoId& repo, const Etag& etag) const {
  return layout_.BlobsDir(repo) / (etag.str() + ".resume.incomplete");
}

StatusOr<int> CacheStore::OpenResumableBlob(const RepoId& repo, const Etag& etag) {
  const fs::path path = ResumableBlobPath(repo, etag);
  MC_RETURN_IF_ERROR(EnsureRepoDir(repo), "resumable blob " + etag.str());
  MC_RETURN_IF_ERROR(internal::MakeDirs(path.parent_path()));
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd < 0) return ErrnoError(errno, "open " + path.string());
  return fd;
}

Status CacheStore::PublishResumableBlob(const RepoId& repo, const Etag& etag, int fd,
                                        uint64_t size) {
  const fs::path temp = ResumableBlobPath(repo, etag);
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoError(errno, "stat " + temp.string());
  if (static_cast<uint64_t>(st.st_size) != size) {
    return DataLossError("blob " + etag.str() + ": temp file has " + std::to_string(st.st_size) +
                         " bytes, expected " + std::to_string(size));
  }
  if (::fsync(fd) != 0) return ErrnoError(errno, "fsync " + temp.string());
  const fs::path final_path = layout_.BlobPath(repo, etag);
  if (HasBlob(repo, etag, size)) return internal::RemoveIfExists(temp);
  MC_RETURN_IF_ERROR(internal::RenamePath(temp, final_path), "publish blob");
  return internal::FsyncDir(final_path.parent_path());
}

}  // namespace mc::cache
