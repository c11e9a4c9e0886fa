// Resolve route of MirrorServer over real loopback HTTP: headers, bytes, ranges, errors.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "mc/net/http_client.h"
#include "mirror/mirror_test_env.h"

namespace mc::mirror {
namespace {

using testenv::Get;
using testenv::Send;

std::string Resolve(const std::string& repo_and_rev_and_path) {
  return Get().Url("/" + repo_and_rev_and_path);
}

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

TEST(MirrorResolveTest, HeadOfRegularFileHasHubHeaders) {
  auto& env = Get();
  const auto& f = env.File(env.model, "config.json");
  auto res = Send("HEAD", Resolve("org/model/resolve/main/config.json"));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.headers.Get("X-Repo-Commit"), env.model.commit.str());
  EXPECT_EQ(res.headers.Get("ETag"), Quoted(f.etag));
  EXPECT_EQ(f.etag.size(), 40u);
  EXPECT_FALSE(res.headers.Has("X-Linked-Etag"));
  EXPECT_EQ(res.headers.Get("Content-Length"), std::to_string(f.size));
  EXPECT_EQ(res.headers.Get("Accept-Ranges"), "bytes");
  EXPECT_EQ(res.headers.Get("Content-Type"), "application/json");
  EXPECT_EQ(res.body_bytes, 0u);
}

TEST(MirrorResolveTest, HeadOfLfsFileHasLinkedEtagAndSize) {
  auto& env = Get();
  const auto& f = env.File(env.model, "model.safetensors");
  ASSERT_TRUE(f.lfs);
  auto res = Send("HEAD", Resolve("org/model/resolve/main/model.safetensors"));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.headers.Get("ETag"), Quoted(f.etag));
  EXPECT_EQ(res.headers.Get("X-Linked-Etag"), Quoted(f.etag));
  EXPECT_EQ(res.headers.Get("X-Linked-Size"), std::to_string(f.size));
  EXPECT_EQ(res.headers.Get("Content-Length"), std::to_string(f.size));
  EXPECT_EQ(res.headers.Get("Content-Type"), "application/octet-stream");
}

TEST(MirrorResolveTest, NoXetHeadersAreSent) {
  auto res = Send("HEAD", Resolve("org/model/resolve/main/model.safetensors"));
  for (const auto& [name, value] : res.headers.fields()) {
    EXPECT_EQ(name.find("Xet"), std::string::npos) << name;
    EXPECT_EQ(value.find("xet"), std::string::npos) << value;
  }
}

TEST(MirrorResolveTest, GetReturnsExactBytes) {
  auto& env = Get();
  for (std::string path : {"config.json", "model.safetensors", "original/params.json"}) {
    auto res = Send("GET", Resolve("org/model/resolve/main/" + path));
    EXPECT_EQ(res.status, 200) << path;
    EXPECT_EQ(res.body, env.Source("model", path)) << path;
  }
}

TEST(MirrorResolveTest, DeeplyNestedAndEncodedPathsResolve) {
  auto& env = Get();
  auto deep = Send("GET", Resolve("org/model/resolve/main/a/b/c.txt"));
  EXPECT_EQ(deep.body, "deep\n");
  auto spaced = Send("GET", Resolve("org/model/resolve/main/onnx/my%20model%2Bv2.onnx"));
  EXPECT_EQ(spaced.status, 200);
  EXPECT_EQ(spaced.body, env.Source("model", "onnx/my model+v2.onnx"));
}

TEST(MirrorResolveTest, CommitShaRevisionResolves) {
  auto& env = Get();
  auto res = Send("HEAD", Resolve("org/model/resolve/" + env.model.commit.str() + "/config.json"));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.headers.Get("X-Repo-Commit"), env.model.commit.str());
}

TEST(MirrorResolveTest, PullRequestRefResolvesEncodedAndNot) {
  auto& env = Get();
  for (std::string rev : {"refs%2Fpr%2F1", "refs/pr/1"}) {
    auto res = Send("GET", Resolve("org/model/resolve/" + rev + "/config.json"));
    EXPECT_EQ(res.status, 200) << rev;
    EXPECT_EQ(res.headers.Get("X-Repo-Commit"), env.model_pr.commit.str()) << rev;
    EXPECT_EQ(res.body, "{\"pr\": 1}\n") << rev;
  }
}

TEST(MirrorResolveTest, DatasetRepoResolves) {
  auto& env = Get();
  auto res = Send("GET", Resolve("datasets/org/data/resolve/main/train.csv"));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "a,b\n1,2\n");
  EXPECT_EQ(res.headers.Get("X-Repo-Commit"), env.dataset.commit.str());
}

TEST(MirrorResolveTest, EmptyFileHasZeroContentLength) {
  auto get = Send("GET", Resolve("org/model/resolve/main/empty.txt"));
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.headers.Get("Content-Length"), "0");
  EXPECT_EQ(get.headers.Get("ETag"), "\"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\"");
  auto ranged = Send("GET", Resolve("org/model/resolve/main/empty.txt"), "", "bytes=0-0");
  EXPECT_EQ(ranged.status, 200);
}

TEST(MirrorResolveTest, NoSymlinkSnapshotGetsHashedEtags) {
  auto& env = Get();
  for (std::string path : {"config.json", "model.safetensors"}) {
    const auto& f = env.File(env.copied, path);
    auto res = Send("HEAD", Resolve("org/copied/resolve/main/" + path));
    EXPECT_EQ(res.status, 200) << path;
    EXPECT_EQ(res.headers.Get("ETag"), Quoted(f.etag)) << path;
    EXPECT_EQ(res.headers.Has("X-Linked-Etag"), f.lfs) << path;
  }
}

// ---- Range ----

TEST(MirrorRangeTest, FirstByteIs206WithContentRange) {
  auto& env = Get();
  const auto& f = env.File(env.model, "model.safetensors");
  auto res = Send("GET", Resolve("org/model/resolve/main/model.safetensors"), "", "bytes=0-0");
  EXPECT_EQ(res.status, 206);
  EXPECT_EQ(res.headers.Get("Content-Range"), "bytes 0-0/" + std::to_string(f.size));
  EXPECT_EQ(res.headers.Get("Content-Length"), "1");
  EXPECT_EQ(res.body, env.Source("model", "model.safetensors").substr(0, 1));
}

TEST(MirrorRangeTest, MiddleOpenEndedAndSuffixRangesReturnExactBytes) {
  auto& env = Get();
  const std::string all = env.Source("model", "model.safetensors");
  const std::string url = Resolve("org/model/resolve/main/model.safetensors");
  EXPECT_EQ(Send("GET", url, "", "bytes=1000-1999").body, all.substr(1000, 1000));
  EXPECT_EQ(Send("GET", url, "", "bytes=500000-").body, all.substr(500000));
  EXPECT_EQ(Send("GET", url, "", "bytes=-100").body, all.substr(all.size() - 100));
}

TEST(MirrorRangeTest, EndPastTheFileIsClamped) {
  auto& env = Get();
  const std::string all = env.Source("model", "config.json");
  auto res = Send("GET", Resolve("org/model/resolve/main/config.json"), "",
                  "bytes=10-" + std::to_string(all.size() + 1000));
  EXPECT_EQ(res.status, 206);
  EXPECT_EQ(res.body, all.substr(10));
  EXPECT_EQ(res.headers.Get("Content-Range"),
            "bytes 10-" + std::to_string(all.size() - 1) + "/" + std::to_string(all.size()));
}

TEST(MirrorRangeTest, UnsatisfiableRangesAre416WithStarContentRange) {
  auto& env = Get();
  const auto& f = env.File(env.model, "config.json");
  const std::string url = Resolve("org/model/resolve/main/config.json");
  for (const std::string& range :
       {"bytes=" + std::to_string(f.size) + "-", std::string("bytes=5-2")}) {
    auto res = Send("GET", url, "", range);
    EXPECT_EQ(res.status, 416) << range;
    EXPECT_EQ(res.headers.Get("Content-Range"), "bytes */" + std::to_string(f.size)) << range;
    EXPECT_EQ(res.headers.Get("X-Error-Code"), "RangeNotSatisfiable") << range;
  }
}

TEST(MirrorRangeTest, MalformedRangesAre416WithMessage) {
  const std::string url = Resolve("org/model/resolve/main/config.json");
  for (const char* range : {"bytes=abc", "bytes=-0", "bytes=0-1,5-6", "lines=0-1"}) {
    auto res = Send("GET", url, "", range);
    EXPECT_EQ(res.status, 416) << range;
    EXPECT_NE(res.headers.Get("X-Error-Message").value_or("").find("Range"), std::string::npos)
        << range;
  }
}

// ---- Errors ----

TEST(MirrorErrorTest, MissingFileIsEntryNotFoundWithCommit) {
  auto& env = Get();
  auto res = Send("HEAD", Resolve("org/model/resolve/main/added_tokens.json"));
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.headers.Get("X-Error-Code"), "EntryNotFound");
  EXPECT_EQ(res.headers.Get("X-Repo-Commit"), env.model.commit.str());
}

TEST(MirrorErrorTest, MissingRevisionIsRevisionNotFound) {
  auto res = Send("GET", Resolve("org/model/resolve/v9.9/config.json"));
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.headers.Get("X-Error-Code"), "RevisionNotFound");
  EXPECT_EQ(res.body.find("{\"error\":"), 0u);
}

TEST(MirrorErrorTest, MissingRepoIs401WithoutTokenAnd404WithOne) {
  auto anonymous = Send("HEAD", Resolve("org/nope/resolve/main/config.json"));
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.headers.Get("X-Error-Code"), "RepoNotFound");
  auto with_token = Send("HEAD", Resolve("org/nope/resolve/main/config.json"), "hf_any");
  EXPECT_EQ(with_token.status, 404);
  EXPECT_EQ(with_token.headers.Get("X-Error-Code"), "RepoNotFound");
}

TEST(MirrorErrorTest, HostileIdsAndPathsAreRejectedBeforeLookup) {
  // 400 (not 404) shows that validation failed before the cache was consulted.
  for (const char* target :
       {"/org/model/resolve/main/a/../config.json", "/org/model/resolve/main/%2e%2e/%2e%2e/x",
        "/org/model/resolve/main/config.json%00.txt", "/org/model/resolve/main/a%5Cb",
        "/org/model/resolve/main/%2Fetc%2Fpasswd", "/org/..%2F..%2Fetc/resolve/main/x",
        "/org/model/resolve/..%2F..%2Fx/config.json", "/org/model/resolve/main/a%zzb"}) {
    auto res = Send("GET", Get().Url(target));
    EXPECT_EQ(res.status, 400) << target;
    EXPECT_EQ(res.headers.Get("X-Error-Code"), "BadRequest") << target;
    EXPECT_TRUE(res.headers.Has("X-Error-Message")) << target;
  }
}

TEST(MirrorErrorTest, WrongMethodIs405) {
  auto res = Send("POST", Resolve("org/model/resolve/main/config.json"));
  EXPECT_EQ(res.status, 405);
}

TEST(MirrorErrorTest, UnknownRouteIs404) {
  EXPECT_EQ(Send("GET", Get().Url("/favicon.ico")).status, 404);
}

// ---- Concurrency and stats ----

TEST(MirrorResolveTest, ConcurrentGetsAllReturnExactBytes) {
  auto& env = Get();
  const std::string expected = env.Source("model", "model.safetensors");
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 3; ++i) {
        auto res = Send("GET", Resolve("org/model/resolve/main/model.safetensors"));
        if (res.status == 200 && res.body == expected) ++good;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), 24);
}

TEST(MirrorStatsTest, DataRequestsAndBytesAreCounted) {
  auto& env = Get();
  MirrorStats before = env.server->stats();
  Send("HEAD", Resolve("org/model/resolve/main/config.json"));
  Send("GET", Resolve("org/model/resolve/main/config.json"));
  Send("GET", Resolve("org/model/resolve/main/config.json"), "", "bytes=0-9");
  MirrorStats after = env.server->stats();
  EXPECT_EQ(after.resolve_head - before.resolve_head, 1u);
  EXPECT_EQ(after.resolve_get - before.resolve_get, 2u);
  EXPECT_EQ(after.file_bytes_served - before.file_bytes_served,
            env.File(env.model, "config.json").size + 10);
}

}  // namespace
}  // namespace mc::mirror
