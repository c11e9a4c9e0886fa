// API routes of MirrorServer (revision, tree, paths-info) and access control, over loopback.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "mc/cache/blob_hasher.h"
#include "mirror/mirror_test_env.h"

namespace mc::mirror {
namespace {

using nlohmann::json;
using testenv::Get;
using testenv::Send;

json Json(const net::HttpClientResponse& res) {
  json j = json::parse(res.body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << res.body;
  return j;
}

std::set<std::string> Paths(const json& entries) {
  std::set<std::string> out;
  for (const auto& e : entries) out.insert(e["path"].get<std::string>());
  return out;
}

net::HttpClientResponse Post(const std::string& url, const std::string& body,
                             const std::string& type) {
  auto client = net::HttpClient::Create();
  auto res = client->Post(url, body, type);
  EXPECT_TRUE(res.ok());
  return res.ok() ? *res : net::HttpClientResponse();
}

// ---- revision ----

TEST(MirrorRevisionTest, RevisionInfoHasIdShaAndSiblings) {
  auto& env = Get();
  auto res = Send("GET", env.Url("/api/models/org/model/revision/main"));
  ASSERT_EQ(res.status, 200);
  json j = Json(res);
  EXPECT_EQ(j["id"], "org/model");
  EXPECT_EQ(j["sha"], env.model.commit.str());
  EXPECT_EQ(j["private"], false);
  EXPECT_EQ(j["gated"], false);
  EXPECT_EQ(j["disabled"], false);
  EXPECT_TRUE(j.contains("_id") && j.contains("lastModified") && j["tags"].is_array());
  std::set<std::string> names;
  for (const auto& s : j["siblings"]) names.insert(s["rfilename"].get<std::string>());
  std::set<std::string> expected;
  for (const auto& f : env.model.files) expected.insert(f.path);
  EXPECT_EQ(names, expected);
}

TEST(MirrorRevisionTest, RepoInfoWithoutRevisionAndWithHeadUsesMain) {
  auto& env = Get();
  EXPECT_EQ(Json(Send("GET", env.Url("/api/models/org/model")))["sha"], env.model.commit.str());
  EXPECT_EQ(Json(Send("GET", env.Url("/api/models/org/model/revision/HEAD")))["sha"],
            env.model.commit.str());
}

TEST(MirrorRevisionTest, EncodedPullRequestRevisionResolves) {
  auto& env = Get();
  auto res = Send("GET", env.Url("/api/models/org/model/revision/refs%2Fpr%2F1"));
  EXPECT_EQ(Json(res)["sha"], env.model_pr.commit.str());
}

TEST(MirrorRevisionTest, BlobsTrueAddsSizesAndLfs) {
  auto& env = Get();
  json j = Json(Send("GET", env.Url("/api/models/org/model/revision/main?blobs=true")));
  const auto& lfs = env.File(env.model, "model.safetensors");
  bool found = false;
  for (const auto& s : j["siblings"]) {
    if (s["rfilename"] != "model.safetensors") continue;
    found = true;
    EXPECT_EQ(s["size"], lfs.size);
    EXPECT_EQ(s["lfs"]["sha256"], lfs.etag);
    EXPECT_EQ(s["blobId"], cache::GitBlobSha1(cache::LfsPointer(*Etag::Parse(lfs.etag), lfs.size)));
  }
  EXPECT_TRUE(found);
}

TEST(MirrorRevisionTest, ExpandRestrictsFields) {
  json j = Json(Send("GET", Get().Url("/api/models/org/model?expand=sha")));
  EXPECT_TRUE(j.contains("sha") && j.contains("id"));
  EXPECT_FALSE(j.contains("siblings"));
}

TEST(MirrorRevisionTest, DatasetRevisionInfo) {
  auto& env = Get();
  auto res = Send("GET", env.Url("/api/datasets/org/data/revision/main"));
  EXPECT_EQ(Json(res)["sha"], env.dataset.commit.str());
}

TEST(MirrorRevisionTest, UnknownRevisionIsRevisionNotFound) {
  auto res = Send("GET", Get().Url("/api/models/org/model/revision/nope"));
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.headers.Get("X-Error-Code"), "RevisionNotFound");
}

// ---- tree ----

TEST(MirrorTreeTest, RecursiveTreeListsFilesAndDirectories) {
  auto& env = Get();
  auto res = Send("GET", env.Url("/api/models/org/model/tree/main?recursive=true&expand=false"));
  ASSERT_EQ(res.status, 200);
  json j = Json(res);
  std::set<std::string> files, dirs;
  for (const auto& e : j) (e["type"] == "file" ? files : dirs).insert(e["path"]);
  std::set<std::string> expected;
  for (const auto& f : env.model.files) expected.insert(f.path);
  EXPECT_EQ(files, expected);
  EXPECT_EQ(dirs, (std::set<std::string>{"a", "a/b", "onnx", "original"}));
  EXPECT_FALSE(res.headers.Has("Link"));
}

TEST(MirrorTreeTest, FileEntriesCarryOidSizeAndLfs) {
  auto& env = Get();
  json j = Json(Send("GET", env.Url("/api/models/org/model/tree/main?recursive=True")));
  const auto& cfg = env.File(env.model, "config.json");
  const auto& lfs = env.File(env.model, "model.safetensors");
  for (const auto& e : j) {
    if (e["path"] == "config.json") {
      EXPECT_EQ(e["oid"], cfg.etag);
      EXPECT_EQ(e["size"], cfg.size);
      EXPECT_FALSE(e.contains("lfs"));
    } else if (e["path"] == "model.safetensors") {
      std::string pointer = cache::LfsPointer(*Etag::Parse(lfs.etag), lfs.size);
      EXPECT_EQ(e["oid"], cache::GitBlobSha1(pointer));
      EXPECT_EQ(e["lfs"]["oid"], lfs.etag);
      EXPECT_EQ(e["lfs"]["size"], lfs.size);
      EXPECT_EQ(e["lfs"]["pointerSize"], pointer.size());
    } else if (e["type"] == "directory") {
      EXPECT_EQ(e["size"], 0);
      EXPECT_EQ(e["oid"].get<std::string>().size(), 40u);
    }
  }
}

TEST(MirrorTreeTest, NonRecursiveTreeListsImmediateChildren) {
  json j = Json(Send("GET", Get().Url("/api/models/org/model/tree/main")));
  std::set<std::string> paths = Paths(j);
  EXPECT_TRUE(paths.count("onnx") && paths.count("a") && paths.count("config.json"));
  EXPECT_FALSE(paths.count("a/b/c.txt") || paths.count("a/b"));
}

TEST(MirrorTreeTest, SubPathListsThatFolder) {
  json j = Json(Send("GET", Get().Url("/api/models/org/model/tree/main/a")));
  EXPECT_EQ(Paths(j), (std::set<std::string>{"a/b"}));
  json r = Json(Send("GET", Get().Url("/api/models/org/model/tree/main/a?recursive=true")));
  EXPECT_EQ(Paths(r), (std::set<std::string>{"a/b", "a/b/c.txt"}));
}

TEST(MirrorTreeTest, MissingSubPathIsEntryNotFound) {
  auto& env = Get();
  auto res = Send("GET", env.Url("/api/models/org/model/tree/main/nope"));
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.headers.Get("X-Error-Code"), "EntryNotFound");
  EXPECT_EQ(res.headers.Get("X-Repo-Commit"), env.model.commit.str());
}

TEST(MirrorTreeTest, PaginationFollowsAbsoluteNextLinks) {
  auto& env = Get();
  std::string url = env.Url("/api/models/org/many/tree/main?recursive=true&limit=7");
  std::set<std::string> seen;
  int pages = 0;
  while (!url.empty() && pages < 20) {
    auto res = Send("GET", url);
    ASSERT_EQ(res.status, 200) << url;
    for (const auto& p : Paths(Json(res))) EXPECT_TRUE(seen.insert(p).second) << p;
    ++pages;
    url.clear();
    if (auto link = res.headers.Get("Link")) {
      ASSERT_TRUE(link->starts_with("<http://")) << *link;
      ASSERT_NE(link->find(">; rel=\"next\""), std::string::npos) << *link;
      url = link->substr(1, link->find('>') - 1);
    }
  }
  EXPECT_EQ(seen.size(), 33u);  // 30 files + 3 directories
  EXPECT_EQ(pages, 5);
}

TEST(MirrorTreeTest, BadCursorOrLimitIsBadRequest) {
  EXPECT_EQ(Send("GET", Get().Url("/api/models/org/many/tree/main?cursor=zz")).status, 400);
  EXPECT_EQ(Send("GET", Get().Url("/api/models/org/many/tree/main?limit=0")).status, 400);
  EXPECT_EQ(Send("GET", Get().Url("/api/models/org/many/tree/main?recursive=maybe")).status, 400);
}

TEST(MirrorTreeTest, ExpandAddsLastCommit) {
  auto& env = Get();
  json j = Json(Send("GET", env.Url("/api/models/org/model/tree/main?expand=true")));
  ASSERT_FALSE(j.empty());
  EXPECT_EQ(j[0]["lastCommit"]["id"], env.model.commit.str());
}

// ---- paths-info ----

TEST(MirrorPathsInfoTest, JsonBodyReturnsExistingPathsOnly) {
  auto& env = Get();
  auto res = Post(env.Url("/api/models/org/model/paths-info/main"),
                  R"({"paths": ["config.json", "onnx", "missing.bin"], "expand": true})",
                  "application/json");
  ASSERT_EQ(res.status, 200);
  json j = Json(res);
  EXPECT_EQ(Paths(j), (std::set<std::string>{"config.json", "onnx"}));
  EXPECT_EQ(j[0]["lastCommit"]["id"], env.model.commit.str());
}

TEST(MirrorPathsInfoTest, FormBodyIsAccepted) {
  auto res = Post(Get().Url("/api/models/org/model/paths-info/refs%2Fpr%2F1"),
                  "paths=config.json&paths=model.safetensors&expand=False",
                  "application/x-www-form-urlencoded");
  ASSERT_EQ(res.status, 200);
  json j = Json(res);
  EXPECT_EQ(Paths(j), (std::set<std::string>{"config.json", "model.safetensors"}));
  EXPECT_FALSE(j[0].contains("lastCommit"));
}

TEST(MirrorPathsInfoTest, HostilePathIsBadRequest) {
  auto res = Post(Get().Url("/api/models/org/model/paths-info/main"),
                  R"({"paths": ["../etc/passwd"]})", "application/json");
  EXPECT_EQ(res.status, 400);
}

TEST(MirrorPathsInfoTest, MalformedBodyIsBadRequest) {
  auto res =
      Post(Get().Url("/api/models/org/model/paths-info/main"), "{not json", "application/json");
  EXPECT_EQ(res.status, 400);
}

// ---- access control ----

TEST(MirrorAccessTest, GatedRepoMetadataIsPublic) {
  auto res = Send("GET", Get().Url("/api/models/org/gated/revision/main"));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(Json(res)["gated"], "manual");
  EXPECT_EQ(Send("GET", Get().Url("/api/models/org/gated/tree/main")).status, 200);
}

TEST(MirrorAccessTest, GatedRepoFilesNeedAnAcceptedToken) {
  std::string url = Get().Url("/org/gated/resolve/main/config.json");
  auto anonymous = Send("HEAD", url);
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.headers.Get("X-Error-Code"), "GatedRepo");
  auto wrong = Send("HEAD", url, "hf_wrong");
  EXPECT_EQ(wrong.status, 403);
  EXPECT_EQ(wrong.headers.Get("X-Error-Code"), "GatedRepo");
  EXPECT_EQ(Send("HEAD", url, testenv::kGatedToken).status, 200);
}

TEST(MirrorAccessTest, PrivateRepoLooksMissingWithoutAcceptedToken) {
  std::string info = Get().Url("/api/datasets/org/secret/revision/main");
  auto anonymous = Send("GET", info);
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.headers.Get("X-Error-Code"), "RepoNotFound");
  auto wrong = Send("GET", info, "hf_wrong");
  EXPECT_EQ(wrong.status, 404);
  EXPECT_EQ(wrong.headers.Get("X-Error-Code"), "RepoNotFound");
  EXPECT_EQ(Send("GET", info, testenv::kPrivateToken).status, 200);
  auto file = Send("GET", Get().Url("/datasets/org/secret/resolve/main/config.json"),
                   testenv::kPrivateToken);
  EXPECT_EQ(file.status, 200);
  EXPECT_EQ(file.body, "{\"small\": true}\n");
}

TEST(MirrorAccessTest, DisabledRepoSaysSo) {
  auto res = Send("HEAD", Get().Url("/org/off/resolve/main/config.json"));
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(res.headers.Get("X-Error-Message"), "Access to this resource is disabled.");
  EXPECT_EQ(Send("GET", Get().Url("/api/models/org/off")).status, 403);
}

TEST(MirrorAccessTest, TokensNeverAppearInErrors) {
  auto res = Send("HEAD", Get().Url("/org/gated/resolve/main/config.json"), "hf_leak_me");
  EXPECT_EQ(res.body.find("hf_leak_me"), std::string::npos);
  for (const auto& [name, value] : res.headers.fields()) {
    EXPECT_EQ(value.find("hf_leak_me"), std::string::npos);
  }
}

TEST(MirrorCreateTest, BadAccessConfigFailsAtCreate) {
  auto& env = Get();
  std::filesystem::path bad = env.root / "bad_access.json";
  std::ofstream(bad) << R"({"repos": {"org/m": {"gated": "sometimes"}}})";
  MirrorOptions options;
  options.cache_dir = env.cache_dir;
  options.access_config = bad;
  auto server = MirrorServer::Create(options);
  EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(server.status().message().find("bad_access.json"), std::string::npos);
}

TEST(MirrorCreateTest, MissingCacheDirFailsAtCreate) {
  MirrorOptions options;
  options.cache_dir = "/nonexistent/cache";
  EXPECT_EQ(MirrorServer::Create(options).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace mc::mirror
