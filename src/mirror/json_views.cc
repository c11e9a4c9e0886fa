#include "mirror/json_views.h"

#include <ctime>

#include "mc/cache/blob_hasher.h"

namespace mc::mirror {

Json TreeEntryJson(const TreeEntry& entry, const std::optional<LastCommit>& last_commit) {
  Json j;
  j["type"] = entry.is_dir ? "directory" : "file";
  j["oid"] = entry.oid;
  j["size"] = entry.is_dir ? 0 : entry.size;
  j["path"] = entry.path;
  if (!entry.is_dir && entry.file != nullptr && entry.file->lfs) {
    j["lfs"] = {{"oid", entry.file->etag},
                {"size", entry.file->size},
                {"pointerSize", entry.file->PointerSize()}};
  }
  if (last_commit) {
    j["lastCommit"] = {
        {"id", last_commit->id}, {"title", last_commit->title}, {"date", last_commit->date}};
  }
  return j;
}

namespace {

Json Siblings(const RepoInfoInput& in) {
  Json siblings = Json::array();
  if (in.described == nullptr) {
    for (const std::string& name : in.sibling_names) siblings.push_back({{"rfilename", name}});
    return siblings;
  }
  for (const RepoFile& f : *in.described) {
    Json s = {{"rfilename", f.path}, {"size", f.size}, {"blobId", f.TreeOid()}};
    if (f.lfs) s["lfs"] = {{"sha256", f.etag}, {"size", f.size}, {"pointerSize", f.PointerSize()}};
    siblings.push_back(std::move(s));
  }
  return siblings;
}

// A stable 24-hex pseudo object id, like the Hub's Mongo ids.
std::string ObjectId(const RepoId& repo) {
  return cache::Sha256Hex(std::string(RepoTypePlural(repo.type())) + "/" + repo.id()).substr(0, 24);
}

}  // namespace

Json RepoInfoJson(const RepoInfoInput& in) {
  const RepoId& repo = *in.repo;
  Json j;
  j["_id"] = ObjectId(repo);
  j["id"] = repo.id();
  if (repo.type() == RepoType::kModel) j["modelId"] = repo.id();
  size_t slash = repo.id().find('/');
  if (slash != std::string::npos) j["author"] = repo.id().substr(0, slash);
  j["sha"] = in.commit->str();
  j["lastModified"] = in.last_modified;
  j["private"] = in.rule != nullptr && in.rule->is_private;
  if (in.rule != nullptr && !in.rule->gated.empty()) {
    j["gated"] = in.rule->gated;
  } else {
    j["gated"] = false;
  }
  j["disabled"] = false;
  j["downloads"] = 0;
  j["likes"] = 0;
  j["tags"] = Json::array();
  j["siblings"] = Siblings(in);
  j["usedStorage"] = in.used_storage;
  if (in.expand.empty()) return j;
  Json restricted = {{"_id", j["_id"]}, {"id", j["id"]}};
  for (const std::string& field : in.expand) {
    if (j.contains(field)) restricted[field] = j[field];
  }
  return restricted;
}

std::string IsoTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buf;
}

std::string Dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace mc::mirror
