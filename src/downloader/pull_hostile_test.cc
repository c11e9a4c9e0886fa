// Puller against a hostile hub: a proxy in front of a real MirrorServer rewrites its answers
// (tree paths and sizes, redirects to another host or scheme) and a second server plays the CDN.
// Nothing may be written outside the cache and the token must never leave the endpoint's origin.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "mc/cache/cache_store.h"
#include "mc/cache/importer.h"
#include "mc/downloader/pull.h"
#include "mc/mirror/mirror_server.h"
#include "mc/net/http_client.h"
#include "mc/net/http_server.h"
#include "mc/testing/model_fixture.h"

namespace mc::downloader {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr char kToken[] = "hf_hostile_pull_token_123";

// A server that forwards to `target` after letting the test rewrite requests and answers.
class Proxy {
 public:
  using Rewrite = std::function<bool(const net::HttpRequest&, net::HttpResponse&)>;
  Proxy(std::string target, Rewrite rewrite) : target_(std::move(target)), rewrite_(rewrite) {
    net::HttpServerOptions options;
    options.handler = [this](const net::HttpRequest& req, net::HttpResponse& res) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
      }
      if (rewrite_ && rewrite_(req, res)) return;
      Forward(req, res);
    };
    server_ = std::move(*net::HttpServer::Create(std::move(options)));
    if (!server_->Start().ok()) std::abort();
  }
  ~Proxy() { server_->Stop(); }
  std::string url() const { return server_->base_url(); }
  std::vector<net::HttpRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  void Forward(const net::HttpRequest& req, net::HttpResponse& res) {
    net::HttpClientRequest out;
    out.method = req.method;
    out.url = target_ + req.raw_path + (req.raw_query.empty() ? "" : "?" + req.raw_query);
    if (auto range = req.headers.Get("Range")) out.range = *range;
    if (!req.body.empty()) {
      out.body = req.body;
      out.headers.Set("Content-Type", req.headers.Get("Content-Type").value_or(""));
    }
    if (auto auth = req.headers.Get("Authorization")) out.headers.Set("Authorization", *auth);
    auto answer = net::HttpClient::Create()->Send(out);
    if (!answer.ok()) {
      res.SetText(502, "upstream failed");
      return;
    }
    res.status = answer->status;
    for (const auto& [name, value] : answer->headers.fields()) {
      if (!net::HeaderNameEquals(name, "Content-Length") &&
          !net::HeaderNameEquals(name, "Transfer-Encoding") &&
          !net::HeaderNameEquals(name, "Connection")) {
        res.headers.Add(name, value);
      }
    }
    res.body = std::move(answer->body);
  }

 private:
  std::string target_;
  Rewrite rewrite_;
  std::unique_ptr<net::HttpServer> server_;
  std::mutex mu_;
  std::vector<net::HttpRequest> requests_;
};

class PullHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("mc_pull_hostile_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    const fs::path src = root_ / "src";
    testing::ModelFixtureOptions fixture;
    fixture.total_weight_bytes = 1 << 20;
    ASSERT_TRUE(testing::WriteModelFixture(src, fixture).ok());
    auto store = cache::CacheStore::Open({root_ / "upstream", std::nullopt, true});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(
        cache::ImportFolder(**store, src, *RepoId::Parse("org/model"), *Revision::Parse("main"))
            .ok());
    mirror::MirrorOptions options;
    options.cache_dir = root_ / "upstream";
    mirror_ = std::move(*mirror::MirrorServer::Create(std::move(options)));
    ASSERT_TRUE(mirror_->Start().ok());
  }
  void TearDown() override {
    mirror_->Stop();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  StatusOr<PullResult> Pull(const std::string& endpoint) {
    PullOptions o;
    o.cache_dir = root_ / "cache";
    o.state_dir = root_ / "state";
    o.endpoint = *hub::Endpoint::Parse(endpoint);
    o.token = hub::Secret(kToken);
    o.repo = *RepoId::Parse("org/model");
    o.tuning.max_attempts = 2;
    o.sleep = [](std::chrono::milliseconds) {};
    return Puller(std::move(o)).Run(nullptr);
  }

  // Rewrites the tree JSON of the mirror with `edit`.
  Proxy::Rewrite EditTree(std::function<void(json&)> edit) {
    return [this, edit](const net::HttpRequest& req, net::HttpResponse& res) {
      if (req.raw_path.find("/tree/") == std::string::npos) return false;
      proxy_->Forward(req, res);
      json tree = json::parse(res.body);
      edit(tree);
      res.headers.Remove("Link");
      res.SetText(200, tree.dump(), "application/json");
      return true;
    };
  }

  // Nothing but the cache and the state dir was created under root_.
  void ExpectNothingOutside() {
    for (const auto& e : fs::directory_iterator(root_)) {
      const std::string name = e.path().filename().string();
      EXPECT_TRUE(name == "src" || name == "upstream" || name == "cache" || name == "state")
          << name;
    }
    EXPECT_FALSE(fs::exists(root_ / "cache" / "evil.txt"));
  }

  fs::path root_;
  std::unique_ptr<mirror::MirrorServer> mirror_;
  std::unique_ptr<Proxy> proxy_;
};

TEST_F(PullHostileTest, RedirectToAnotherHostNeverCarriesTheToken) {
  Proxy cdn(mirror_->base_url(), nullptr);
  proxy_ = std::make_unique<Proxy>(
      mirror_->base_url(), [&](const net::HttpRequest& req, net::HttpResponse& res) {
        if (req.raw_path.find("/resolve/") == std::string::npos) return false;
        res.status = 302;
        res.headers.Set("Location", cdn.url() + req.raw_path + "?X-Signature=abc");
        return true;
      });
  auto r = Pull(proxy_->url());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_FALSE(cdn.requests().empty());
  for (const auto& req : cdn.requests()) EXPECT_FALSE(req.headers.Has("Authorization"));
  bool endpoint_saw_token = false;
  for (const auto& req : proxy_->requests()) {
    endpoint_saw_token |= req.headers.Get("Authorization") == "Bearer " + std::string(kToken);
  }
  EXPECT_TRUE(endpoint_saw_token);
}

TEST_F(PullHostileTest, RedirectToAnotherSchemeIsRefused) {
  proxy_ = std::make_unique<Proxy>(mirror_->base_url(),
                                   [&](const net::HttpRequest& req, net::HttpResponse& res) {
                                     if (req.raw_path.find("/resolve/") == std::string::npos)
                                       return false;
                                     res.status = 302;
                                     res.headers.Set("Location", "file:///etc/passwd");
                                     return true;
                                   });
  auto r = Pull(proxy_->url());
  ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find("only http(s)"), std::string::npos);
  EXPECT_EQ(r.status().ToString().find(kToken), std::string::npos);
}

TEST_F(PullHostileTest, TraversalPathInTheTreeIsRefusedBeforeAnyWrite) {
  proxy_ = std::make_unique<Proxy>(
      mirror_->base_url(), EditTree([](json& tree) { tree[0]["path"] = "../../evil.txt"; }));
  auto r = Pull(proxy_->url());
  ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  ExpectNothingOutside();
  EXPECT_FALSE(fs::exists(root_ / "cache" / "models--org--model"));
}

TEST_F(PullHostileTest, AbsolutePathInTheTreeIsRefused) {
  proxy_ = std::make_unique<Proxy>(mirror_->base_url(),
                                   EditTree([](json& tree) { tree[0]["path"] = "/tmp/evil.txt"; }));
  EXPECT_EQ(Pull(proxy_->url()).status().code(), StatusCode::kInvalidArgument);
  ExpectNothingOutside();
}

TEST_F(PullHostileTest, HugeSizeInTheTreeFailsOnFreeSpaceBeforeAnyWrite) {
  proxy_ = std::make_unique<Proxy>(mirror_->base_url(), EditTree([](json& tree) {
                                     for (auto& e : tree) {
                                       if (!e.contains("lfs")) continue;
                                       e["size"] = 1ull << 49;
                                       e["lfs"]["size"] = 1ull << 49;
                                     }
                                   }));
  auto r = Pull(proxy_->url());
  ASSERT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  EXPECT_NE(r.status().message().find("free"), std::string::npos);
  EXPECT_FALSE(fs::exists(root_ / "cache" / "models--org--model" / "blobs"));
}

TEST_F(PullHostileTest, SizeLargerThanTheFileIsRefusedAndNothingIsPublished) {
  proxy_ = std::make_unique<Proxy>(mirror_->base_url(), EditTree([](json& tree) {
                                     for (auto& e : tree) {
                                       if (!e.contains("lfs")) continue;
                                       e["size"] = e["size"].get<uint64_t>() + 4096;
                                       e["lfs"]["size"] = e["size"];
                                     }
                                   }));
  auto r = Pull(proxy_->url());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_FALSE(fs::exists(root_ / "cache" / "models--org--model" / "refs" / "main"));
  const fs::path snapshots = root_ / "cache" / "models--org--model" / "snapshots";
  if (fs::exists(snapshots)) {
    for (const auto& e : fs::recursive_directory_iterator(snapshots)) {
      EXPECT_NE(e.path().filename(), "model.safetensors");
    }
  }
}

}  // namespace
}  // namespace mc::downloader
