// Access rules of the mirror, loaded from a JSON file:
//   {"repos": {
//      "org/name":        {"gated": "manual", "tokens": ["hf_x", "sha256:<64 hex>"]},
//      "datasets/org/d":  {"private": true, "tokens": ["..."]},
//      "org/off":         {"disabled": true}}}
// Keys are repo ids with an optional "models/", "datasets/" or "spaces/" prefix (models by
// default). "gated" is false, "auto" or "manual" (true means "manual"). A token entry is the
// token itself or "sha256:" + the hex sha256 of it. Unknown fields are errors, so typos do not
// silently open a repo.
//
// Decisions (hf-hub-protocol.md §8.4, mirroring the Hub):
//   disabled                      every route: DisabledRepo
//   private, token not accepted   every route: RepoNotFound (as if the repo did not exist)
//   gated, token not accepted     metadata routes allowed; resolve: GatedRepo
// Thread-safe after Load (immutable).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mc/common/ids.h"
#include "mc/common/status.h"
#include "mc/mirror/mirror_server.h"

namespace mc::mirror {

struct RepoAccessRule {
  bool disabled = false;
  bool is_private = false;
  std::string gated;                      // "", "auto" or "manual"
  std::vector<std::string> token_sha256;  // lowercase hex digests of accepted tokens
};

enum class AccessDecision { kAllow, kRepoNotFound, kGated, kDisabled };

class AccessConfig {
 public:
  // An empty config: every repo public.
  AccessConfig() = default;
  // NotFound if the file is missing; InvalidArgument (naming the file and the field) if malformed.
  static StatusOr<AccessConfig> Load(const std::filesystem::path& file);
  static StatusOr<AccessConfig> Parse(std::string_view json);

  // The rule of `repo`, or nullptr (public).
  const RepoAccessRule* Find(const RepoId& repo) const;
  // `token` is the bearer token of the request, if any.
  AccessDecision Decide(const RepoId& repo, RouteKind kind,
                        const std::optional<std::string>& token) const;

 private:
  std::map<RepoId, RepoAccessRule> rules_;
};

// True if `token` matches one of the digests; compares in constant time over all entries.
bool TokenAccepted(const RepoAccessRule& rule, const std::optional<std::string>& token);

// The token of "Authorization: Bearer <token>", or nullopt.
std::optional<std::string> BearerToken(const std::optional<std::string>& authorization);

}  // namespace mc::mirror
