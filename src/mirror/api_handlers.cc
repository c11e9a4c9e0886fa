// /api/{type}s/{repo}[/revision/{rev}], /tree/{rev}[/{path}], /paths-info/{rev}
// (hf-hub-protocol.md §3, §8.6).
#include <algorithm>
#include <set>
#include <unordered_set>

#include "mc/net/url.h"
#include "mirror/api_params.h"
#include "mirror/json_views.h"
#include "mirror/mirror_core.h"

namespace mc::mirror {
namespace {

void SetJson(net::HttpResponse& response, const Json& value) {
  response.SetText(200, Dump(value), "application/json; charset=utf-8");
}

uint64_t UsedStorage(const std::vector<cache::SnapshotEntry>& entries) {
  std::unordered_set<std::string> seen;  // blobs shared by several paths count once
  uint64_t total = 0;
  for (const cache::SnapshotEntry& e : entries) {
    if (seen.insert(e.file.string()).second) total += e.size;
  }
  return total;
}

std::string TreeUrl(const std::string& base, const Route& route) {
  const RepoId& repo = *route.repo;
  std::string url = base + "/api/" + std::string(RepoTypePlural(repo.type())) + "/" + repo.id() +
                    "/tree/" + net::PercentEncode(route.revision->str());
  if (route.path) url += "/" + net::PercentEncodePath(route.path->str());
  return url;
}

using EntryIt = std::vector<const TreeEntry*>::const_iterator;

// The entries of one page: after the cursor's path (entries are sorted by path), at most limit.
std::pair<EntryIt, EntryIt> PageBounds(const std::vector<const TreeEntry*>& all,
                                       const TreePage& page) {
  EntryIt begin = all.begin();
  if (page.after) {
    begin = std::upper_bound(all.begin(), all.end(), *page.after,
                             [](const std::string& p, const TreeEntry* e) { return p < e->path; });
  }
  EntryIt end =
      static_cast<size_t>(all.end() - begin) > page.limit ? begin + page.limit : all.end();
  return {begin, end};
}

}  // namespace

std::optional<HubError> MirrorCore::HandleRepoInfo(const RequestInfo& info,
                                                   net::HttpResponse& response) {
  const RepoId& repo = *info.route.repo;
  StatusOr<bool> blobs = BoolParam(info.http, "blobs", false);
  if (!blobs.ok()) return HubError::BadRequest(blobs.status().message());
  HubOr<CommitSha> commit = LookUpCommit(info);
  if (!commit.ok()) return commit.error();
  StatusOr<std::vector<cache::SnapshotEntry>> entries =
      store_->ListSnapshotFiles(repo, commit.value());
  if (!entries.ok()) return HubError::Internal(entries.status());

  RepoInfoInput input;
  input.repo = &repo;
  input.commit = &commit.value();
  input.rule = access_.Find(repo);
  input.last_modified = LastModified(repo, commit.value());
  input.used_storage = UsedStorage(*entries);
  input.expand = ExpandParams(info.http);
  std::unique_ptr<RepoTree> tree;
  if (*blobs) {  // only then are blob ids needed (hashing no-symlink snapshots)
    HubOr<std::unique_ptr<RepoTree>> loaded = LoadTree(repo, commit.value());
    if (!loaded.ok()) return loaded.error();
    tree = std::move(loaded.value());
    input.described = &tree->files();
  } else {
    for (const cache::SnapshotEntry& e : *entries) input.sibling_names.push_back(e.path.str());
  }
  SetJson(response, RepoInfoJson(input));
  return std::nullopt;
}

std::optional<HubError> MirrorCore::HandleTree(const RequestInfo& info,
                                               net::HttpResponse& response) {
  StatusOr<bool> recursive = BoolParam(info.http, "recursive", false);
  StatusOr<bool> expand = BoolParam(info.http, "expand", false);
  StatusOr<TreePage> page =
      TreePageParams(info.http, options_.tree_page_size, options_.max_tree_page_size);
  for (const Status& s : {recursive.status(), expand.status(), page.status()}) {
    if (!s.ok()) return HubError::BadRequest(s.message());
  }
  HubOr<CommitSha> commit = LookUpCommit(info);
  if (!commit.ok()) return commit.error();
  HubOr<std::unique_ptr<RepoTree>> tree = LoadTree(*info.route.repo, commit.value());
  if (!tree.ok()) return tree.error();
  std::string dir = info.route.path ? info.route.path->str() : "";
  StatusOr<std::vector<const TreeEntry*>> listed = tree.value()->List(dir, *recursive);
  if (!listed.ok()) return HubError::EntryNotFound(commit.value());

  std::optional<LastCommit> last_commit;
  if (*expand) {
    last_commit =
        LastCommit{commit.value().str(), "", LastModified(*info.route.repo, commit.value())};
  }
  auto [begin, end] = PageBounds(*listed, *page);
  Json out = Json::array();
  for (auto it = begin; it != end; ++it) out.push_back(TreeEntryJson(**it, last_commit));
  if (end != listed->end()) {
    std::string query = net::BuildQueryString({{"recursive", *recursive ? "true" : "false"},
                                               {"expand", *expand ? "true" : "false"},
                                               {"limit", std::to_string(page->limit)},
                                               {"cursor", EncodeCursor((*(end - 1))->path)}});
    response.headers.Set(
        "Link", "<" + TreeUrl(BaseUrl(info.http), info.route) + "?" + query + ">; rel=\"next\"");
  }
  SetJson(response, out);
  return std::nullopt;
}

std::optional<HubError> MirrorCore::HandlePathsInfo(const RequestInfo& info,
                                                    net::HttpResponse& response) {
  StatusOr<PathsInfoRequest> body = ParsePathsInfoBody(info.http);
  if (!body.ok()) return HubError::BadRequest(body.status().message());
  std::vector<RepoFilePath> paths;
  for (const std::string& p : body->paths) {
    StatusOr<RepoFilePath> path = RepoFilePath::Parse(p);
    if (!path.ok()) return HubError::BadRequest(path.status().message());
    paths.push_back(std::move(*path));
  }
  HubOr<CommitSha> commit = LookUpCommit(info);
  if (!commit.ok()) return commit.error();
  HubOr<std::unique_ptr<RepoTree>> tree = LoadTree(*info.route.repo, commit.value());
  if (!tree.ok()) return tree.error();
  std::optional<LastCommit> last_commit;
  if (body->expand) {
    last_commit =
        LastCommit{commit.value().str(), "", LastModified(*info.route.repo, commit.value())};
  }
  Json out = Json::array();
  std::set<std::string> seen;
  for (const RepoFilePath& path : paths) {
    const TreeEntry* entry = tree.value()->Find(path.str());
    if (entry == nullptr || !seen.insert(path.str()).second) continue;  // missing: skipped
    out.push_back(TreeEntryJson(*entry, last_commit));
  }
  SetJson(response, out);
  return std::nullopt;
}

}  // namespace mc::mirror
