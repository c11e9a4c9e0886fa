// CheckRegistryAccess against a registry's token flow (OCI distribution / Docker token auth) on
// loopback: the manifest HEAD is challenged with `Bearer realm=...`, the token comes from the
// realm for `repository:<path>:pull`. (Basic, docker-registry with htpasswd, is tested with the
// real registry in container_test.cc.)
#include "agent/registry_access.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <mutex>

#include "mc/net/http_server.h"

namespace mc::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kUser[] = "reader";
constexpr char kPassword[] = "token-flow-password-31f7";

// A registry whose repository org/app only a token got with kUser/kPassword may read; the
// anonymous token does not.
class TokenRegistry {
 public:
  TokenRegistry() {
    net::HttpServerOptions o;
    o.handler = [this](const net::HttpRequest& req, net::HttpResponse& res) { Handle(req, res); };
    server_ = std::move(net::HttpServer::Create(std::move(o)).value());
    EXPECT_TRUE(server_->Start().ok());
  }
  ~TokenRegistry() { server_->Stop(); }
  std::string host() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  std::string token_query() {
    std::lock_guard<std::mutex> lock(mu_);
    return token_query_;
  }

 private:
  void Handle(const net::HttpRequest& req, net::HttpResponse& res) {
    if (req.raw_path == "/token") {
      {
        std::lock_guard<std::mutex> lock(mu_);
        token_query_ = req.raw_query;
      }
      const auto auth = req.headers.Get("Authorization");
      if (!auth) return res.SetText(200, R"({"token": "anonymous-token"})", "application/json");
      if (*auth == "Basic " + Base64Encode(std::string(kUser) + ":" + kPassword)) {
        return res.SetText(200, R"({"access_token": "reader-token"})", "application/json");
      }
      return res.SetText(401, R"({"details": "incorrect username or password"})");
    }
    if (req.raw_path != "/v2/org/app/manifests/1") return res.SetText(404, "{}");
    if (req.headers.Get("Authorization").value_or("") == "Bearer reader-token") {
      return res.SetText(200, "");
    }
    res.headers.Set("WWW-Authenticate", "Bearer realm=\"http://" + host() +
                                            "/token\",service=\"test-registry\","
                                            "scope=\"repository:org/app:pull\"");
    res.SetText(401, R"({"errors": [{"code": "UNAUTHORIZED"}]})");
  }

  std::unique_ptr<net::HttpServer> server_;
  std::mutex mu_;
  std::string token_query_;
};

Status Check(const std::string& host, const RegistryAuth* auth) {
  return CheckRegistryAccess(ImageRef::Parse(host + "/org/app:1").value(), auth,
                             RegistryAccessOptions{.insecure = true});
}

TEST(RegistryAccessTest, BearerChallengeGetsAPullTokenWithTheCredentialsAndReadsTheManifest) {
  TokenRegistry registry;
  const RegistryAuth auth{kUser, hub::Secret(kPassword)};
  EXPECT_TRUE(Check(registry.host(), &auth).ok());
  EXPECT_THAT(registry.token_query(), HasSubstr("service=test-registry"));
  EXPECT_THAT(registry.token_query(), HasSubstr("scope=repository%3Aorg%2Fapp%3Apull"));
}

TEST(RegistryAccessTest, AnonymousTokenThatMayNotReadIsPermissionDeniedSayingWhatToDo) {
  TokenRegistry registry;
  const Status none = Check(registry.host(), nullptr);
  EXPECT_EQ(none.code(), StatusCode::kPermissionDenied) << none.ToString();
  EXPECT_THAT(none.message(), HasSubstr("without credentials"));
  EXPECT_THAT(none.message(), HasSubstr("registryAuth"));
}

TEST(RegistryAccessTest, WrongCredentialsArePermissionDeniedWithoutQuotingThem) {
  TokenRegistry registry;
  const RegistryAuth wrong{kUser, hub::Secret("wrong-password-8e21")};
  const Status s = Check(registry.host(), &wrong);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.ToString();
  EXPECT_THAT(s.ToString(), Not(HasSubstr("wrong-password-8e21")));
}

TEST(RegistryAccessTest, RegistryThatDoesNotAnswerIsUnavailable) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // nobody listens on that port now
  const Status s = Check("127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), nullptr);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("try later"));
}

}  // namespace
}  // namespace mc::agent
