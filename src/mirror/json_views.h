// JSON documents of the Hub API as the mirror answers them (hf-hub-protocol.md §3).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mc/cache/cache_store.h"
#include "mc/common/ids.h"
#include "mirror/access_control.h"
#include "mirror/repo_files.h"

namespace mc::mirror {

// Insertion-ordered, so documents read like the Hub's ("type", "oid", "size", "path").
using Json = nlohmann::ordered_json;

struct LastCommit {
  std::string id;
  std::string title;
  std::string date;  // ISO 8601
};

// {"type":"file","oid","size","path"[,"lfs":{"oid","size","pointerSize"}][,"lastCommit"]} or
// {"type":"directory","oid","size":0,"path"[,"lastCommit"]}.
Json TreeEntryJson(const TreeEntry& entry, const std::optional<LastCommit>& last_commit);

struct RepoInfoInput {
  const RepoId* repo = nullptr;
  const CommitSha* commit = nullptr;
  const RepoAccessRule* rule = nullptr;              // nullptr = public
  std::vector<std::string> sibling_names;            // used unless `described` is set
  const std::vector<RepoFile>* described = nullptr;  // ?blobs=true: size, blobId, lfs
  std::string last_modified;
  uint64_t used_storage = 0;
  std::set<std::string> expand;  // empty = every field; else _id, id + these
};

// The /api/{type}s/{repo}[/revision/{rev}] document.
Json RepoInfoJson(const RepoInfoInput& input);

// "2024-05-01T12:00:00.000Z".
std::string IsoTime(int64_t unix_seconds);

// Serializes without throwing (invalid UTF-8 is replaced).
std::string Dump(const Json& value);

}  // namespace mc::mirror
