// Blob hashing with OpenSSL EVP: sha256 for LFS blobs (64-hex etag), git blob sha1 for regular
// files (40-hex etag: sha1("blob <len>\0" + content)). Streaming: feed bytes in order.
// Not thread-safe; one hasher per stream.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "mc/common/ids.h"
#include "mc/common/status.h"

namespace mc::cache {

enum class HashKind { kSha256, kGitSha1 };

// The kind of hash an etag names: 64 hex -> kSha256, 40 hex -> kGitSha1.
HashKind HashKindOf(const Etag& etag);

class BlobHasher {
 public:
  // For kGitSha1 the total content length must be known up front (it is part of the header).
  static std::unique_ptr<BlobHasher> Create(HashKind kind, uint64_t total_size);
  virtual ~BlobHasher() = default;
  virtual void Update(const void* data, size_t size) = 0;
  // Lowercase hex digest. Call once.
  virtual std::string Finish() = 0;
};

// Hashes a whole file of the given kind. NotFound / Internal on I/O errors.
StatusOr<std::string> HashFile(const std::filesystem::path& file, HashKind kind);

// Checks that `file` hashes to `etag` (kind chosen from the etag). DataLoss names the file, the
// expected and the actual hash on mismatch.
Status VerifyFileAgainstEtag(const std::filesystem::path& file, const Etag& etag);

// Canonical git-lfs pointer text for a sha256 blob of `size` bytes:
// "version https://git-lfs.github.com/spec/v1\noid sha256:<sha>\nsize <size>\n".
std::string LfsPointer(const Etag& sha256, uint64_t size);

// git blob sha1 of an in-memory buffer (e.g. an LFS pointer: the tree "oid" of an LFS file).
std::string GitBlobSha1(std::string_view content);
std::string Sha256Hex(std::string_view content);
std::string Sha1Hex(std::string_view content);

}  // namespace mc::cache
