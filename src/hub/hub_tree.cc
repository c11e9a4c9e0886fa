#include "hub/hub_tree.h"

#include <nlohmann/json.hpp>

namespace mc::hub::internal {
namespace {

using nlohmann::json;

bool IsLowerHex(std::string_view s, size_t length) {
  if (s.size() != length) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::optional<std::string> StringField(const json& entry, const char* name) {
  auto it = entry.find(name);
  if (it == entry.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<uint64_t> SizeField(const json& entry, const char* name) {
  auto it = entry.find(name);
  if (it == entry.end() || !it->is_number_unsigned()) return std::nullopt;
  uint64_t size = it->get<uint64_t>();
  if (size > kMaxFileSize) return std::nullopt;
  return size;
}

// Validates one "file" entry; `label` names it in messages.
StatusOr<TreeFile> ParseFileEntry(const json& entry, const std::string& label) {
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError("tree entry " + label + ": " + why);
  };
  MC_ASSIGN_OR_RETURN(RepoFilePath path, RepoFilePath::Parse(*StringField(entry, "path")),
                      "tree entry " + label);
  std::optional<uint64_t> size = SizeField(entry, "size");
  if (!size) return bad("size missing, negative, not an integer or above 2^50");
  std::optional<std::string> oid = StringField(entry, "oid");
  if (!oid || !IsLowerHex(*oid, 40)) return bad("oid is not 40 lowercase hex characters");
  TreeFile file{std::move(path), *size, *Etag::Parse(*oid), std::nullopt, std::nullopt};
  if (auto lfs = entry.find("lfs"); lfs != entry.end() && !lfs->is_null()) {
    if (!lfs->is_object()) return bad("lfs is not an object");
    std::optional<std::string> lfs_oid = StringField(*lfs, "oid");
    if (!lfs_oid || !IsLowerHex(*lfs_oid, 64)) {
      return bad("lfs.oid is not 64 lowercase hex characters");
    }
    std::optional<uint64_t> lfs_size = SizeField(*lfs, "size");
    if (!lfs_size || *lfs_size != *size) return bad("lfs.size differs from size");
    file.lfs_sha256 = *Etag::Parse(*lfs_oid);
  }
  if (std::optional<std::string> xet = StringField(entry, "xetHash")) {
    if (!IsLowerHex(*xet, 64)) return bad("xetHash is not 64 lowercase hex characters");
    file.xet_hash = *xet;
  }
  return file;
}

}  // namespace

Status TreeCollector::AddPage(std::string_view text) {
  json page = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (page.is_discarded() || !page.is_array()) {
    return InvalidArgumentError("tree page is not a JSON array");
  }
  if (entries_ + page.size() > max_entries_) {
    return InvalidArgumentError("tree has more than " + std::to_string(max_entries_) + " entries");
  }
  entries_ += page.size();
  std::vector<TreeFile> added;
  std::set<std::string> added_paths;
  for (size_t i = 0; i < page.size(); ++i) {
    const json& entry = page[i];
    std::optional<std::string> path = entry.is_object() ? StringField(entry, "path") : std::nullopt;
    std::optional<std::string> type = entry.is_object() ? StringField(entry, "type") : std::nullopt;
    std::string label = path ? QuoteForMessage(*path) : "#" + std::to_string(i);
    if (!path || !type) return InvalidArgumentError("tree entry " + label + ": no path or type");
    if (*type != "file") continue;  // directories (and unknown kinds) carry no bytes
    MC_ASSIGN_OR_RETURN(TreeFile file, ParseFileEntry(entry, label));
    if (paths_.count(file.path.str()) || !added_paths.insert(file.path.str()).second) {
      return InvalidArgumentError("tree entry " + label + ": listed twice");
    }
    added.push_back(std::move(file));
  }
  paths_.merge(added_paths);
  for (TreeFile& f : added) files_.push_back(std::move(f));
  return Status();
}

StatusOr<std::vector<TreeFile>> TreeCollector::Finish() && {
  for (const TreeFile& f : files_) {
    const std::string& p = f.path.str();
    for (size_t slash = p.find('/'); slash != std::string::npos; slash = p.find('/', slash + 1)) {
      if (paths_.count(p.substr(0, slash))) {
        return InvalidArgumentError("tree entry " + QuoteForMessage(p) + ": its parent " +
                                    QuoteForMessage(p.substr(0, slash)) + " is also a file");
      }
    }
  }
  return std::move(files_);
}

std::optional<std::string> NextLink(const net::HeaderMap& headers) {
  for (const std::string& value : headers.GetAll("Link")) {
    size_t pos = 0;
    while ((pos = value.find('<', pos)) != std::string::npos) {
      size_t close = value.find('>', pos);
      if (close == std::string::npos) break;
      std::string url = value.substr(pos + 1, close - pos - 1);
      size_t next_entry = value.find('<', close);
      std::string params = value.substr(
          close + 1, next_entry == std::string::npos ? std::string::npos : next_entry - close - 1);
      if (params.find("rel=\"next\"") != std::string::npos ||
          params.find("rel=next") != std::string::npos) {
        return url;
      }
      pos = close;
    }
  }
  return std::nullopt;
}

}  // namespace mc::hub::internal
