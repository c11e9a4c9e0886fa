// HubClient against our MirrorServer and hand-made hostile servers, over loopback on port 0.
#include "mc/hub/hub_client.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "mc/cache/importer.h"
#include "mc/mirror/mirror_server.h"
#include "mc/testing/model_fixture.h"

namespace mc::hub {
namespace {

namespace fs = std::filesystem;

constexpr char kToken[] = "hf_gated_reader_secret";
constexpr char kWrongToken[] = "hf_wrong_token_value_42";
const std::string kNested = "dir/my file \xC3\xBC+v2.txt";  // space, unicode, '+'

template <typename T>
T Must(StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "hub client test setup: %s\n", v.status().ToString().c_str());
    std::abort();
  }
  return std::move(*v);
}

void Write(const fs::path& file, const std::string& content) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << content;
}

// A cache with org/model (fixture + nested file), org/gated, org/off, and a mirror with 2 entries
// per tree page. Built once, removed at exit.
struct MirrorEnv {
  fs::path root;
  cache::ImportResult model{*CommitSha::Parse(std::string(40, '0')), {}, 0};
  cache::ImportResult dataset{*CommitSha::Parse(std::string(40, '0')), {}, 0};
  std::unique_ptr<mirror::MirrorServer> server;
  ~MirrorEnv() {
    if (server) server->Stop();
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  const cache::ImportedFile& File(const std::string& path) const {
    const cache::ImportedFile* f = model.Find(path);
    if (f == nullptr) std::abort();
    return *f;
  }
};

std::unique_ptr<MirrorEnv> BuildMirror() {
  auto env = std::make_unique<MirrorEnv>();
  env->root = fs::temp_directory_path() / ("mc_hub_client_test_" + std::to_string(::getpid()));
  fs::remove_all(env->root);
  Must(testing::WriteModelFixture(env->root / "src" / "model", {}));
  Write(env->root / "src" / "model" / kNested, "nested\n");
  Write(env->root / "src" / "small" / "config.json", "{}\n");
  auto store = Must(cache::CacheStore::Open({env->root / "cache", true, true}));
  auto import = [&](const std::string& dir, const std::string& id,
                    RepoType type = RepoType::kModel) {
    return Must(cache::ImportFolder(*store, env->root / "src" / dir, *RepoId::Parse(id, type),
                                    *Revision::Parse("main")));
  };
  env->model = import("model", "org/model");
  import("small", "org/gated");
  import("small", "org/off");
  env->dataset = import("small", "org/data", RepoType::kDataset);
  Write(env->root / "access.json", std::string(R"({"repos": {"org/gated": {"gated": "manual",
      "tokens": [")") + kToken + R"("]}, "org/off": {"disabled": true}}})");
  mirror::MirrorOptions options;
  options.cache_dir = env->root / "cache";
  options.access_config = env->root / "access.json";
  options.tree_page_size = 2;
  env->server = Must(mirror::MirrorServer::Create(options));
  if (!env->server->Start().ok()) std::abort();
  return env;
}

MirrorEnv& Mirror() {
  static std::unique_ptr<MirrorEnv> env = BuildMirror();
  return *env;
}

std::unique_ptr<HubClient> Client(const std::string& base_url,
                                  std::optional<std::string> token = std::nullopt) {
  HubClientOptions options{*Endpoint::Parse(base_url), std::nullopt};
  if (token) options.token = Secret(*token);
  return Must(HubClient::Create(std::move(options)));
}

std::unique_ptr<HubClient> MirrorClient(std::optional<std::string> token = std::nullopt) {
  return Client(Mirror().server->base_url(), std::move(token));
}

RepoId Repo(const std::string& id) { return *RepoId::Parse(id); }
Revision Rev(const std::string& rev) { return *Revision::Parse(rev); }
RepoFilePath Path(const std::string& path) { return *RepoFilePath::Parse(path); }

// ---- against the mirror ----

TEST(HubClientMirrorTest, RepoInfoResolvesBranchToCommitWithSiblings) {
  auto info = MirrorClient()->GetRepoInfo(Repo("org/model"), Rev("main"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->sha, Mirror().model.commit);
  EXPECT_FALSE(info->gated);
  EXPECT_FALSE(info->is_private);
  EXPECT_EQ(info->siblings.size(), Mirror().model.files.size());
}

TEST(HubClientMirrorTest, RepoInfoOfGatedRepoSaysGated) {
  auto info = MirrorClient()->GetRepoInfo(Repo("org/gated"), Rev("main"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->gated);
}

TEST(HubClientMirrorTest, TreeFollowsPagesAndEqualsImportedFiles) {
  auto files = MirrorClient()->ListTree(Repo("org/model"), Mirror().model.commit);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), Mirror().model.files.size());
  std::map<std::string, const TreeFile*> by_path;
  for (const TreeFile& f : *files) by_path[f.path.str()] = &f;
  for (const cache::ImportedFile& imported : Mirror().model.files) {
    ASSERT_TRUE(by_path.count(imported.path)) << imported.path;
    const TreeFile& f = *by_path[imported.path];
    EXPECT_EQ(f.size, imported.size) << imported.path;
    EXPECT_EQ(f.BlobEtag().str(), imported.etag) << imported.path;
    EXPECT_EQ(f.IsLfs(), imported.lfs) << imported.path;
  }
}

TEST(HubClientMirrorTest, MetadataOfRegularFileHasGitSha1AndSize) {
  auto meta = MirrorClient()->GetFileMetadata(Repo("org/model"), Rev("main"), Path("config.json"));
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->commit, Mirror().model.commit);
  EXPECT_EQ(meta->etag.str(), Mirror().File("config.json").etag);
  EXPECT_TRUE(meta->etag.IsGitSha1());
  EXPECT_EQ(meta->size, Mirror().File("config.json").size);
  EXPECT_TRUE(meta->same_host);
  EXPECT_EQ(meta->download_url,
            Mirror().server->base_url() + "/org/model/resolve/main/config.json");
}

TEST(HubClientMirrorTest, MetadataOfLfsFileHasSha256AndSize) {
  auto meta =
      MirrorClient()->GetFileMetadata(Repo("org/model"), Rev("main"), Path("model.safetensors"));
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_TRUE(meta->etag.IsSha256());
  EXPECT_EQ(meta->etag.str(), Mirror().File("model.safetensors").etag);
  EXPECT_EQ(meta->size, Mirror().File("model.safetensors").size);
}

TEST(HubClientMirrorTest, NestedPathWithSpaceAndUnicodeIsEncoded) {
  auto meta = MirrorClient()->GetFileMetadata(Repo("org/model"), Rev("main"), Path(kNested));
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->size, 7u);
  EXPECT_NE(meta->download_url.find("/dir/my%20file%20%C3%BC%2Bv2.txt"), std::string::npos)
      << meta->download_url;
}

TEST(HubClientMirrorTest, DatasetRepoUsesDatasetRoutes) {
  auto client = MirrorClient();
  RepoId data = *RepoId::Parse("org/data", RepoType::kDataset);
  auto info = client->GetRepoInfo(data, Rev("main"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->sha, Mirror().dataset.commit);
  auto files = client->ListTree(data, info->sha);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(files->size(), Mirror().dataset.files.size());
  auto meta = client->GetFileMetadata(data, Rev("main"), Path("config.json"));
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_NE(meta->download_url.find("/datasets/org/data/resolve/main/config.json"),
            std::string::npos);
}

TEST(HubClientMirrorTest, UnknownRepoIsNotFound) {
  auto info = MirrorClient()->GetRepoInfo(Repo("org/nope"), Rev("main"));
  EXPECT_EQ(info.status().code(), StatusCode::kNotFound);
  EXPECT_NE(info.status().message().find("org/nope not found (or private"), std::string::npos)
      << info.status().message();
  auto meta = MirrorClient()->GetFileMetadata(Repo("org/nope"), Rev("main"), Path("a"));
  EXPECT_EQ(meta.status().code(), StatusCode::kNotFound);
}

TEST(HubClientMirrorTest, UnknownRevisionIsNotFound) {
  auto info = MirrorClient()->GetRepoInfo(Repo("org/model"), Rev("nope"));
  EXPECT_EQ(info.status().code(), StatusCode::kNotFound);
  EXPECT_NE(info.status().message().find("revision 'nope'"), std::string::npos)
      << info.status().message();
}

TEST(HubClientMirrorTest, UnknownFileIsNotFoundWithCommit) {
  HubErrorDetail detail;
  auto meta = MirrorClient()->GetFileMetadata(Repo("org/model"), Rev("main"), Path("missing.json"),
                                              &detail);
  EXPECT_EQ(meta.status().code(), StatusCode::kNotFound);
  EXPECT_NE(meta.status().message().find(Mirror().model.commit.str()), std::string::npos);
  ASSERT_TRUE(detail.repo_commit.has_value());
  EXPECT_EQ(*detail.repo_commit, Mirror().model.commit);
}

TEST(HubClientMirrorTest, GatedWithoutTokenAsksForTermsAndToken) {
  auto meta = MirrorClient()->GetFileMetadata(Repo("org/gated"), Rev("main"), Path("config.json"));
  EXPECT_EQ(meta.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(meta.status().message().find("accept its terms"), std::string::npos);
}

TEST(HubClientMirrorTest, GatedWithWrongTokenSaysTokenNotAccepted) {
  auto meta = MirrorClient(kWrongToken)
                  ->GetFileMetadata(Repo("org/gated"), Rev("main"), Path("config.json"));
  EXPECT_EQ(meta.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(meta.status().message().find("not accepted"), std::string::npos);
}

TEST(HubClientMirrorTest, GatedWithRightTokenGivesMetadata) {
  auto meta =
      MirrorClient(kToken)->GetFileMetadata(Repo("org/gated"), Rev("main"), Path("config.json"));
  EXPECT_TRUE(meta.ok()) << meta.status().ToString();
}

TEST(HubClientMirrorTest, DisabledRepoIsPermissionDenied) {
  auto meta = MirrorClient()->GetFileMetadata(Repo("org/off"), Rev("main"), Path("config.json"));
  EXPECT_EQ(meta.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(meta.status().message().find("disabled"), std::string::npos);
}

TEST(HubClientMirrorTest, TokenNeverAppearsInErrorsOrLogs) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  spdlog::set_level(spdlog::level::trace);
  auto client = MirrorClient(kWrongToken);
  std::vector<Status> errors = {
      client->GetFileMetadata(Repo("org/gated"), Rev("main"), Path("config.json")).status(),
      client->GetFileMetadata(Repo("org/model"), Rev("main"), Path("x")).status(),
      client->GetRepoInfo(Repo("org/nope"), Rev("main")).status(),
      client->ListTree(Repo("org/nope"), Mirror().model.commit).status()};
  spdlog::set_default_logger(previous);
  for (const Status& s : errors) {
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.ToString().find(kWrongToken), std::string::npos) << s.ToString();
  }
  EXPECT_EQ(log.str().find(kWrongToken), std::string::npos);
}

TEST(HubClientMirrorTest, ConcurrentCallsFromManyThreadsAllSucceed) {
  auto client = MirrorClient();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        if (client->GetFileMetadata(Repo("org/model"), Rev("main"), Path("config.json")).ok()) {
          ++ok;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 40);
}

TEST(HubClientMirrorTest, TokenThatCannotBeAHeaderIsRejectedWithoutShowingIt) {
  HubClientOptions options{*Endpoint::Parse("http://127.0.0.1:1"), Secret("hf_abc\nxyz_secret")};
  auto client = HubClient::Create(std::move(options));
  EXPECT_EQ(client.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client.status().message().find("xyz_secret"), std::string::npos);
}

}  // namespace
}  // namespace mc::hub
