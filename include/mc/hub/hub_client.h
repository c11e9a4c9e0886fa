// HubClient: the metadata half of the Hub protocol, client side (hf-hub-protocol.md §2-§3):
// resolve a revision to a commit, list a commit's files, and HEAD one file for its commit, etag,
// size and download URL. Bytes are fetched by the downloader, not here.
//
// Errors (see hub_errors.h for the HTTP mapping):
//   NotFound / PermissionDenied / Unauthenticated  the Hub said so (repo, revision, file, gated)
//   Unavailable       transport failures, timeouts, 5xx, 429: retry with backoff (not done here,
//                     except one retry of GetRepoInfo/ListTree requests on a transport failure)
//   InvalidArgument   the server sent something we refuse: malformed JSON or headers, a tree
//                     entry with an unsafe path (../x, /abs, backslash, NUL), an oid that is not
//                     hex of the right length, a size that is negative or above 2^50, an lfs.size
//                     different from size, duplicate paths, a file that is also a directory, a
//                     pagination link to another origin, more than kMaxTreeEntries entries or a
//                     body above kMaxJsonBytes, a redirect to a non-http(s) URL. Such answers
//                     are rejected as a whole: nothing of them is returned. The message names
//                     the offending entry (quoted). InvalidArgument rather than DataLoss: no
//                     bytes of ours are wrong, the server is; retrying will not help.
// HubErrorDetail (optional out-parameter, reset on every call) carries the HTTP status, the
// X-Error-Code, Retry-After (429/503) and the EntryNotFound commit (for .no_exist).
//
// Secrets: the token is sent as "Authorization: Bearer" only to the endpoint's own origin (same
// scheme, host and port); never after a redirect to another origin. It never appears in an error
// message or log line, even if a server echoes it back.
//
// Thread-safety: all methods may be called concurrently; each call uses its own curl handle from
// a small pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mc/common/ids.h"
#include "mc/common/status.h"
#include "mc/hub/endpoint.h"
#include "mc/hub/hub_errors.h"
#include "mc/hub/secret.h"

namespace mc::hub {

inline constexpr size_t kMaxTreeEntries = 1'000'000;
inline constexpr uint64_t kMaxJsonBytes = 64ull << 20;  // per response
inline constexpr uint64_t kMaxFileSize = 1ull << 50;

struct HubClientOptions {
  Endpoint endpoint;
  std::optional<Secret> token;
  std::chrono::milliseconds metadata_timeout{10000};  // per request
  std::string user_agent = "modelcache/0.1";
  // HTTPS: the PEM file of the authorities to trust instead of the system's (--ca-file); empty =
  // the system's. Certificates are always verified.
  std::string ca_file;
};

// GET /api/{type}s/{repo}/revision/{rev}.
struct RepoInfo {
  CommitSha sha;
  bool gated = false;  // "auto", "manual" or true
  bool is_private = false;
  std::vector<std::string> siblings;  // rfilename values as sent (not validated as paths)
};

// One file of GET /api/{type}s/{repo}/tree/{sha}?recursive=true.
struct TreeFile {
  RepoFilePath path;
  uint64_t size = 0;
  Etag oid;                             // git blob sha1 (of the LFS pointer for LFS files)
  std::optional<Etag> lfs_sha256;       // lfs.oid: sha256 of the content
  std::optional<std::string> xet_hash;  // xetHash when sent (64 hex), informational

  bool IsLfs() const { return lfs_sha256.has_value(); }
  // The blob name this file has in the cache: lfs.oid for LFS files, else the git sha1.
  const Etag& BlobEtag() const { return lfs_sha256 ? *lfs_sha256 : oid; }
};

// HEAD {endpoint}/{prefix}{repo}/resolve/{rev}/{path}.
struct FileMetadata {
  CommitSha commit;          // X-Repo-Commit
  Etag etag;                 // X-Linked-Etag, else ETag (normalized)
  uint64_t size = 0;         // X-Linked-Size, else Content-Length of a non-3xx answer
  std::string download_url;  // an absolute Location, else the (relative-redirected) resolve URL
  bool same_host = true;     // download_url is on the endpoint's origin: send the token there
};

class HubClient {
 public:
  // InvalidArgument if the user agent contains control characters or the token cannot go into a
  // header (control or non-ASCII characters). Never does I/O.
  static StatusOr<std::unique_ptr<HubClient>> Create(HubClientOptions options);
  virtual ~HubClient() = default;

  // Resolves `revision` to its commit. `sha` is validated with CommitSha::Parse. API redirects
  // are followed (at most 5), the token only to the endpoint's origin.
  virtual StatusOr<RepoInfo> GetRepoInfo(const RepoId& repo, const Revision& revision,
                                         HubErrorDetail* detail = nullptr) = 0;

  // Every file (type "file") of `commit`, in server order, following Link rel="next" pages on
  // the endpoint's origin. Directories are skipped.
  virtual StatusOr<std::vector<TreeFile>> ListTree(const RepoId& repo, const CommitSha& commit,
                                                   HubErrorDetail* detail = nullptr) = 0;

  // HEAD of one file with redirects handled as huggingface_hub does: a relative Location is
  // followed by hand (scheme/host kept, query dropped, at most 5 hops); an absolute one is not:
  // its headers are used and it becomes download_url.
  virtual StatusOr<FileMetadata> GetFileMetadata(const RepoId& repo, const Revision& revision,
                                                 const RepoFilePath& path,
                                                 HubErrorDetail* detail = nullptr) = 0;
};

// Origin comparison used for the Authorization rule: scheme, host (case-insensitive) and port
// (explicit or the scheme's default) must all match. False for anything that is not an absolute
// http(s) URL or that carries user info.
bool SameOrigin(std::string_view url, const Endpoint& endpoint);

}  // namespace mc::hub
