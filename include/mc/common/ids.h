// Validated identifiers. Every path on disk and every URL is built from these types, never from raw
// request or user text. Each type is created only through Parse(), which rejects anything unsafe
// with kInvalidArgument and a message that names the offending input and the rule it broke.
#pragma once

#include <compare>
#include <string>
#include <string_view>

#include "mc/common/status.h"

namespace mc {

enum class RepoType { kModel, kDataset, kSpace };

// "model" / "dataset" / "space".
std::string_view RepoTypeName(RepoType type);
// "models" / "datasets" / "spaces": the cache folder and /api/{...} prefix.
std::string_view RepoTypePlural(RepoType type);
// Accepts singular or plural names ("model", "models", ...).
StatusOr<RepoType> ParseRepoType(std::string_view text);

// A Hub repository id: "name" or "namespace/name" plus its type. Hub naming rules: each part is
// made of [A-Za-z0-9._-], does not start or end with '-' or '.', contains neither "--" nor "..";
// at most 96 characters in all. Case is preserved.
class RepoId {
 public:
  static StatusOr<RepoId> Parse(std::string_view id, RepoType type = RepoType::kModel);
  // Parses a cache folder name such as "models--org--name".
  static StatusOr<RepoId> FromFolderName(std::string_view folder);

  RepoType type() const { return type_; }
  const std::string& id() const { return id_; }  // "org/name"
  // "models--org--name" (hf-hub-protocol.md §1.2).
  std::string FolderName() const;
  // "" for models, "datasets/" or "spaces/": the prefix of /{repo}/resolve/... URLs.
  std::string_view UrlPrefix() const;
  // "models/org/name" etc.: the path after /api/.
  std::string ApiPath() const;

  auto operator<=>(const RepoId&) const = default;

 private:
  RepoId(RepoType type, std::string id) : type_(type), id_(std::move(id)) {}
  RepoType type_ = RepoType::kModel;
  std::string id_;
};

// A full 40-character lowercase hexadecimal git commit id.
class CommitSha {
 public:
  static StatusOr<CommitSha> Parse(std::string_view text);
  static bool IsValid(std::string_view text);
  const std::string& str() const { return sha_; }
  auto operator<=>(const CommitSha&) const = default;

 private:
  explicit CommitSha(std::string sha) : sha_(std::move(sha)) {}
  std::string sha_;
};

// A revision as a user or client names it: branch, tag, "refs/pr/1", or a commit sha. Follows git
// ref-name rules that matter for safety: no "..", no empty or dot-leading segment, no leading or
// trailing '/', no control characters, spaces, '~^:?*[\' or NUL; at most 255 bytes.
class Revision {
 public:
  static StatusOr<Revision> Parse(std::string_view text);
  const std::string& str() const { return rev_; }
  // True when this is a full 40-hex commit sha (then no ref file is written for it).
  bool IsCommitSha() const { return CommitSha::IsValid(rev_); }
  auto operator<=>(const Revision&) const = default;

 private:
  explicit Revision(std::string rev) : rev_(std::move(rev)) {}
  std::string rev_;
};

// A blob id: the normalized etag of a file. 64 hex chars = sha256 of the content (LFS files),
// 40 hex chars = git blob sha1 (regular files). Stored lowercase.
class Etag {
 public:
  // Accepts a bare value or an HTTP header value: strips a leading W/ and surrounding quotes.
  static StatusOr<Etag> Parse(std::string_view text);
  const std::string& str() const { return etag_; }
  bool IsSha256() const { return etag_.size() == 64; }
  bool IsGitSha1() const { return etag_.size() == 40; }
  auto operator<=>(const Etag&) const = default;

 private:
  explicit Etag(std::string etag) : etag_(std::move(etag)) {}
  std::string etag_;
};

// A file path inside a repository ("onnx/model.onnx"). Relative, '/'-separated, no empty, "." or
// ".." segment, no backslash, no NUL or control character, no leading '/', segments at most 255
// bytes, at most 4096 bytes in all, valid UTF-8.
class RepoFilePath {
 public:
  static StatusOr<RepoFilePath> Parse(std::string_view text);
  const std::string& str() const { return path_; }
  // Number of '/' in the path (the depth of the symlink's "../" prefix minus one).
  int Depth() const;
  auto operator<=>(const RepoFilePath&) const = default;

 private:
  explicit RepoFilePath(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Quotes a user-provided string for an error message: printable ASCII kept, the rest escaped,
// long input shortened. Never use raw input in messages.
std::string QuoteForMessage(std::string_view text);

}  // namespace mc
