#include "controller/console.h"

#include <gtest/gtest.h>

#include "controller/console_files.h"
#include "mc/net/http_server.h"

namespace mc::controller {
namespace {

net::HttpRequest Get(std::string path, std::string method = "GET") {
  net::HttpRequest req;
  req.method = std::move(method);
  req.raw_path = std::move(path);
  return req;
}

void ExpectSecurityHeaders(const net::HttpResponse& res) {
  const std::string csp = res.headers.Get("Content-Security-Policy").value_or("");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(res.headers.Get("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(res.headers.Get("Referrer-Policy"), "no-referrer");
  EXPECT_EQ(res.headers.Get("Cache-Control"), "no-cache");
}

TEST(ConsoleTest, ServesIndexAtConsoleRootWithSecurityHeaders) {
  net::HttpResponse res;
  ASSERT_TRUE(ServeConsole(Get("/console/"), res));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.headers.Get("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(res.body.find("app.js"), std::string::npos);
  ExpectSecurityHeaders(res);
}

TEST(ConsoleTest, RedirectsSlashAndBareConsoleToConsoleRoot) {
  for (const char* path : {"/", "/console"}) {
    net::HttpResponse res;
    ASSERT_TRUE(ServeConsole(Get(path), res)) << path;
    EXPECT_EQ(res.status, 302) << path;
    EXPECT_EQ(res.headers.Get("Location"), "/console/") << path;
  }
}

TEST(ConsoleTest, ServesEveryEmbeddedFileWithItsContentType) {
  ASSERT_FALSE(ConsoleFiles().empty());
  for (const EmbeddedFile& f : ConsoleFiles()) {
    net::HttpResponse res;
    ASSERT_TRUE(ServeConsole(Get("/console/" + std::string(f.path)), res)) << f.path;
    EXPECT_EQ(res.status, 200) << f.path;
    EXPECT_EQ(res.body, f.bytes) << f.path;
    EXPECT_NE(res.headers.Get("Content-Type"), "application/octet-stream") << f.path;
    ExpectSecurityHeaders(res);
  }
}

TEST(ConsoleTest, ServesJavaScriptAsJavaScript) {
  net::HttpResponse res;
  ASSERT_TRUE(ServeConsole(Get("/console/app.js"), res));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.headers.Get("Content-Type"), "text/javascript; charset=utf-8");
}

TEST(ConsoleTest, HeadGetsTheSameHeadersAsGet) {
  net::HttpResponse get, head;
  ASSERT_TRUE(ServeConsole(Get("/console/style.css"), get));
  ASSERT_TRUE(ServeConsole(Get("/console/style.css", "HEAD"), head));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.BodyLength(), get.BodyLength());
  EXPECT_EQ(head.headers.Get("Content-Type"), get.headers.Get("Content-Type"));
}

TEST(ConsoleTest, UnknownOrTraversingFileIs404NeverARead) {
  for (const char* path : {"/console/nope.js", "/console/../api-key", "/console/%2e%2e/api-key",
                           "/console//etc/passwd"}) {
    net::HttpResponse res;
    ASSERT_TRUE(ServeConsole(Get(path), res)) << path;
    EXPECT_EQ(res.status, 404) << path;
    ExpectSecurityHeaders(res);
  }
}

TEST(ConsoleTest, LeavesApiPathsAndOtherMethodsToTheApi) {
  for (const char* path : {"/v1/endpoints", "/health", "/consolex", "/v2/ep/runsync"}) {
    net::HttpResponse res;
    EXPECT_FALSE(ServeConsole(Get(path), res)) << path;
    EXPECT_TRUE(res.headers.empty()) << path;
  }
  net::HttpResponse res;
  EXPECT_FALSE(ServeConsole(Get("/", "POST"), res));
  EXPECT_FALSE(ServeConsole(Get("/console/", "DELETE"), res));
}

}  // namespace
}  // namespace mc::controller
