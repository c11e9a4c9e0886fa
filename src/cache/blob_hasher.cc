#include "mc/cache/blob_hasher.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "cache/fs_util.h"

namespace mc::cache {
namespace {

constexpr size_t kReadChunk = 4 << 20;

std::string ToHex(const unsigned char* data, size_t size) {
  static const char kHex[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 15];
  }
  return out;
}

class EvpHasher : public BlobHasher {
 public:
  explicit EvpHasher(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
    // Allocation failure of a digest context is not a condition we can continue from.
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, md, nullptr) != 1) std::abort();
  }
  ~EvpHasher() override { EVP_MD_CTX_free(ctx_); }
  EvpHasher(const EvpHasher&) = delete;
  EvpHasher& operator=(const EvpHasher&) = delete;

  void Update(const void* data, size_t size) override {
    if (size > 0) EVP_DigestUpdate(ctx_, data, size);
  }
  std::string Finish() override {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, digest, &len);
    return ToHex(digest, len);
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::unique_ptr<BlobHasher> NewGitSha1(uint64_t total_size) {
  auto hasher = std::make_unique<EvpHasher>(EVP_sha1());
  std::string header = "blob " + std::to_string(total_size);
  hasher->Update(header.data(), header.size() + 1);  // includes the terminating NUL
  return hasher;
}

}  // namespace

HashKind HashKindOf(const Etag& etag) {
  return etag.IsSha256() ? HashKind::kSha256 : HashKind::kGitSha1;
}

std::unique_ptr<BlobHasher> BlobHasher::Create(HashKind kind, uint64_t total_size) {
  if (kind == HashKind::kGitSha1) return NewGitSha1(total_size);
  return std::make_unique<EvpHasher>(EVP_sha256());
}

StatusOr<std::string> HashFile(const std::filesystem::path& file, HashKind kind) {
  internal::ScopedFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open " + file.string());
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "stat " + file.string());
  if (!S_ISREG(st.st_mode)) return FailedPreconditionError("not a regular file: " + file.string());
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  auto hasher = BlobHasher::Create(kind, static_cast<uint64_t>(st.st_size));
  std::vector<char> buf(kReadChunk);
  uint64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "read " + file.string());
    if (n == 0) break;
    hasher->Update(buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  if (total != static_cast<uint64_t>(st.st_size)) {
    return UnavailableError("file changed while hashing: " + file.string());
  }
  return hasher->Finish();
}

Status VerifyFileAgainstEtag(const std::filesystem::path& file, const Etag& etag) {
  MC_ASSIGN_OR_RETURN(std::string actual, HashFile(file, HashKindOf(etag)));
  if (actual != etag.str()) {
    return DataLossError("hash mismatch for " + file.string() + ": expected " + etag.str() +
                         ", got " + actual);
  }
  return Status::Ok();
}

std::string LfsPointer(const Etag& sha256, uint64_t size) {
  return "version https://git-lfs.github.com/spec/v1\noid sha256:" + sha256.str() + "\nsize " +
         std::to_string(size) + "\n";
}

std::string GitBlobSha1(std::string_view content) {
  auto hasher = NewGitSha1(content.size());
  hasher->Update(content.data(), content.size());
  return hasher->Finish();
}

std::string Sha256Hex(std::string_view content) {
  EvpHasher hasher(EVP_sha256());
  hasher.Update(content.data(), content.size());
  return hasher.Finish();
}

std::string Sha1Hex(std::string_view content) {
  EvpHasher hasher(EVP_sha1());
  hasher.Update(content.data(), content.size());
  return hasher.Finish();
}

}  // namespace mc::cache
