// HubClient against hand-made servers: hostile trees, redirects, rate limits, echoed tokens.
#include <gtest/gtest.h>

#include <mutex>

#include "mc/hub/hub_client.h"
#include "mc/net/http_server.h"

namespace mc::hub {
namespace {

constexpr char kToken[] = "hf_hostile_test_token";
const std::string kSha = "0123456789abcdef0123456789abcdef01234567";
const std::string kOid(40, 'a');
const std::string kSha256(64, 'b');

// A test-only server whose answers the test writes; records every request.
class FakeHub {
 public:
  explicit FakeHub(net::HttpHandler respond) : respond_(std::move(respond)) {
    net::HttpServerOptions options;
    options.handler = [this](const net::HttpRequest& req, net::HttpResponse& res) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
      }
      respond_(req, res);
    };
    auto server = net::HttpServer::Create(std::move(options));
    if (!server.ok() || !(*server)->Start().ok()) std::abort();
    server_ = std::move(*server);
  }
  ~FakeHub() { server_->Stop(); }
  std::string url() const { return server_->base_url(); }
  std::vector<net::HttpRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  net::HttpHandler respond_;
  std::unique_ptr<net::HttpServer> server_;
  std::mutex mu_;
  std::vector<net::HttpRequest> requests_;
};

std::unique_ptr<HubClient> Client(const std::string& base_url, bool with_token = true) {
  HubClientOptions options{*Endpoint::Parse(base_url), std::nullopt};
  if (with_token) options.token = Secret(kToken);
  return std::move(*HubClient::Create(std::move(options)));
}

RepoId Repo() { return *RepoId::Parse("org/model"); }
Revision Main() { return *Revision::Parse("main"); }
RepoFilePath File() { return *RepoFilePath::Parse("w.bin"); }
CommitSha Commit() { return *CommitSha::Parse(kSha); }

bool HasAuth(const net::HttpRequest& r) { return r.headers.Has("Authorization"); }

// Serves `page` as the one tree page and returns what ListTree made of it.
Status TreeWith(const std::string& page) {
  FakeHub hub([&](const net::HttpRequest&, net::HttpResponse& res) {
    res.SetText(200, page, "application/json");
  });
  return Client(hub.url())->ListTree(Repo(), Commit()).status();
}

std::string Entry(const std::string& path, const std::string& size = "5",
                  const std::string& extra = "") {
  return R"({"type":"file","oid":")" + kOid + R"(","size":)" + size + R"(,"path":")" + path + "\"" +
         extra + "}";
}

TEST(HubClientHostileTest, TreeWithTraversalPathIsRejectedNamingTheEntry) {
  Status s = TreeWith("[" + Entry("ok.txt") + "," + Entry("../x") + "]");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'../x'"), std::string::npos) << s.message();
}

TEST(HubClientHostileTest, TreeWithAbsolutePathIsRejected) {
  EXPECT_EQ(TreeWith("[" + Entry("/etc/passwd") + "]").code(), StatusCode::kInvalidArgument);
}

TEST(HubClientHostileTest, TreeWithBackslashPathIsRejected) {
  EXPECT_EQ(TreeWith("[" + Entry("a\\\\b") + "]").code(), StatusCode::kInvalidArgument);
}

TEST(HubClientHostileTest, TreeWithBadOidIsRejected) {
  EXPECT_EQ(TreeWith(R"([{"type":"file","oid":"zz","size":1,"path":"a"}])").code(),
            StatusCode::kInvalidArgument);
}

TEST(HubClientHostileTest, TreeWithLfsSizeMismatchIsRejected) {
  std::string lfs = R"(,"lfs":{"oid":")" + kSha256 + R"(","size":999})";
  EXPECT_EQ(TreeWith("[" + Entry("w.bin", "5", lfs) + "]").code(), StatusCode::kInvalidArgument);
}

TEST(HubClientHostileTest, TreeWithHugeOrNegativeSizeIsRejected) {
  EXPECT_EQ(TreeWith("[" + Entry("a", "1125899906842625") + "]").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TreeWith("[" + Entry("a", "-5") + "]").code(), StatusCode::kInvalidArgument);
}

TEST(HubClientHostileTest, TreePageAboveTheJsonCapIsRejected) {
  std::string huge = "[" + std::string(kMaxJsonBytes, ' ') + "]";
  Status s = TreeWith(huge);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("larger than"), std::string::npos) << s.message();
}

TEST(HubClientHostileTest, NextLinkToAnotherHostIsNotFollowed) {
  FakeHub other([](const net::HttpRequest&, net::HttpResponse& res) { res.SetText(200, "[]"); });
  std::string other_url = other.url();
  FakeHub hub([&](const net::HttpRequest&, net::HttpResponse& res) {
    res.SetText(200, "[" + Entry("a") + "]", "application/json");
    res.headers.Set("Link",
                    "<" + other_url + "/api/models/org/model/tree/x?cursor=1>; rel=\"next\"");
  });
  Status s = Client(hub.url())->ListTree(Repo(), Commit()).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("origin"), std::string::npos) << s.message();
  EXPECT_TRUE(other.requests().empty());
}

TEST(HubClientHostileTest, SameHostPaginationIsFollowedWithToken) {
  FakeHub hub([&](const net::HttpRequest& req, net::HttpResponse& res) {
    if (req.QueryParam("cursor")) {
      res.SetText(200, "[" + Entry("b") + "]", "application/json");
      return;
    }
    res.SetText(200, "[" + Entry("a") + "]", "application/json");
    std::string host = *req.headers.Get("Host");
    res.headers.Set("Link", "<http://" + host + req.raw_path + "?cursor=2>; rel=\"next\"");
  });
  auto files = Client(hub.url())->ListTree(Repo(), Commit());
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(files->size(), 2u);
  ASSERT_EQ(hub.requests().size(), 2u);
  EXPECT_EQ(hub.requests()[0].query.find("recursive")->second, "true");
  EXPECT_TRUE(HasAuth(hub.requests()[1]));
}

TEST(HubClientHostileTest, RelativeRedirectIsFollowedWithoutQueryKeepingToken) {
  FakeHub hub([](const net::HttpRequest& req, net::HttpResponse& res) {
    if (req.raw_path.starts_with("/api/resolve-cache/")) {
      res.SetText(200, "12345");
      res.headers.Set("ETag", "\"" + kOid + "\"");
      res.headers.Set("X-Repo-Commit", kSha);
      return;
    }
    res.SetText(307, "");
    res.headers.Set("Location", "/api/resolve-cache/models/org/model/" + kSha +
                                    "/w.bin?x=http://evil.example/");
    res.headers.Set("X-Repo-Commit", kSha);
  });
  auto meta = Client(hub.url())->GetFileMetadata(Repo(), Main(), File());
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->size, 5u);
  EXPECT_EQ(meta->etag.str(), kOid);
  EXPECT_TRUE(meta->same_host);
  auto requests = hub.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].raw_query, "");
  EXPECT_TRUE(HasAuth(requests[0]) && HasAuth(requests[1]));
  EXPECT_EQ(requests[0].headers.Get("Accept-Encoding"), "identity");
  EXPECT_EQ(requests[0].headers.Get("User-Agent"), "modelcache/0.1");
}

TEST(HubClientHostileTest, AbsoluteRedirectIsNotFollowedAndUsesLinkedHeaders) {
  FakeHub cdn([](const net::HttpRequest&, net::HttpResponse& res) { res.SetText(200, ""); });
  std::string location = cdn.url() + "/blob?sig=1";
  FakeHub hub([&](const net::HttpRequest&, net::HttpResponse& res) {
    res.SetText(302, std::string(1000, 'r'));  // Content-Length of the redirect, not the file
    res.headers.Set("Location", location);
    res.headers.Set("X-Repo-Commit", kSha);
    res.headers.Set("X-Linked-Etag", "\"" + kSha256 + "\"");
    res.headers.Set("X-Linked-Size", "123456");
  });
  auto meta = Client(hub.url())->GetFileMetadata(Repo(), Main(), File());
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->download_url, location);
  EXPECT_FALSE(meta->same_host);
  EXPECT_EQ(meta->size, 123456u);
  EXPECT_EQ(meta->etag.str(), kSha256);
  EXPECT_TRUE(cdn.requests().empty());
}

TEST(HubClientHostileTest, RedirectWithoutLinkedSizeDoesNotTakeRedirectLength) {
  FakeHub hub([&](const net::HttpRequest&, net::HttpResponse& res) {
    res.SetText(302, std::string(1000, 'r'));
    res.headers.Set("Location", "http://cdn.invalid/x");
    res.headers.Set("X-Repo-Commit", kSha);
    res.headers.Set("X-Linked-Etag", kSha256);
  });
  auto meta = Client(hub.url())->GetFileMetadata(Repo(), Main(), File());
  EXPECT_EQ(meta.status().code(), StatusCode::kInvalidArgument);
}

TEST(HubClientHostileTest, RedirectToNonHttpUrlIsRefused) {
  FakeHub hub([](const net::HttpRequest&, net::HttpResponse& res) {
    res.SetText(302, "");
    res.headers.Set("Location", "file:///etc/passwd");
    res.headers.Set("X-Repo-Commit", kSha);
    res.headers.Set("X-Linked-Etag", kSha256);
    res.headers.Set("X-Linked-Size", "5");
  });
  auto client = Client(hub.url());
  EXPECT_EQ(client->GetFileMetadata(Repo(), Main(), File()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(client->GetRepoInfo(Repo(), Main()).status().code(), StatusCode::kInvalidArgument);
}

TEST(HubClientHostileTest, ApiRedirectToAnotherOriginDropsToken) {
  FakeHub other([](const net::HttpRequest&, net::HttpResponse& res) {
    res.SetText(200, R"({"id":"org/model","sha":")" + kSha + "\"}", "application/json");
  });
  std::string other_url = other.url();
  FakeHub hub([&](const net::HttpRequest& req, net::HttpResponse& res) {
    res.SetText(307, "");
    res.headers.Set("Location", other_url + req.raw_path);
  });
  auto info = Client(hub.url())->GetRepoInfo(Repo(), Main());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->sha, Commit());
  ASSERT_EQ(hub.requests().size(), 1u);
  EXPECT_TRUE(HasAuth(hub.requests()[0]));
  ASSERT_EQ(other.requests().size(), 1u);
  EXPECT_FALSE(HasAuth(other.requests()[0]));
}

TEST(HubClientHostileTest, RevisionIsEncodedWithoutSafeCharacters) {
  FakeHub hub([](const net::HttpRequest&, net::HttpResponse& res) {
    res.SetText(200, R"({"id":"org/model","sha":")" + kSha + "\"}", "application/json");
  });
  ASSERT_TRUE(Client(hub.url())->GetRepoInfo(Repo(), *Revision::Parse("refs/pr/1")).ok());
  EXPECT_EQ(hub.requests()[0].raw_path, "/api/models/org/model/revision/refs%2Fpr%2F1");
}

TEST(HubClientHostileTest, InvalidShaInRepoInfoIsRejected) {
  FakeHub hub([](const net::HttpRequest&, net::HttpResponse& res) {
    res.SetText(200, R"({"id":"org/model","sha":"../../etc"})", "application/json");
  });
  EXPECT_EQ(Client(hub.url())->GetRepoInfo(Repo(), Main()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(HubClientHostileTest, RateLimitGivesRetryAfterToTheCaller) {
  FakeHub hub([](const net::HttpRequest&, net::HttpResponse& res) {
    res.SetText(429, "slow down");
    res.headers.Set("Retry-After", "55");
  });
  HubErrorDetail detail;
  Status s = Client(hub.url())->GetFileMetadata(Repo(), Main(), File(), &detail).status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  ASSERT_TRUE(detail.retry_after.has_value());
  EXPECT_EQ(detail.retry_after->count(), 55);
}

TEST(HubClientHostileTest, ServerErrorIsUnavailable) {
  FakeHub hub([](const net::HttpRequest&, net::HttpResponse& res) { res.SetText(503, "down"); });
  EXPECT_EQ(Client(hub.url())->GetRepoInfo(Repo(), Main()).status().code(),
            StatusCode::kUnavailable);
}

TEST(HubClientHostileTest, TokenEchoedByServerIsRedactedFromErrors) {
  FakeHub hub([](const net::HttpRequest& req, net::HttpResponse& res) {
    res.SetText(400, "bad");
    res.headers.Set("X-Error-Message", "you sent " + req.headers.Get("Authorization").value_or(""));
  });
  Status s = Client(hub.url())->GetRepoInfo(Repo(), Main()).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.ToString().find(kToken), std::string::npos) << s.ToString();
}

TEST(HubClientHostileTest, ConnectionRefusedIsUnavailable) {
  std::string url;
  {
    FakeHub gone([](const net::HttpRequest&, net::HttpResponse&) {});
    url = gone.url();
  }
  EXPECT_EQ(Client(url)->GetRepoInfo(Repo(), Main()).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mc::hub
