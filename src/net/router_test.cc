#include "mc/net/router.h"

#include <gtest/gtest.h>

#include "mc/net/json_reply.h"

namespace mc::net {
namespace {

HttpRequest Request(std::string method, std::string path) {
  HttpRequest req;
  req.method = std::move(method);
  req.raw_path = std::move(path);
  return req;
}

// Answers with the route's name and its parameters: "name a=x b=y".
RouteHandler Echo(std::string name, std::vector<std::string> params = {}) {
  return [name, params](const HttpRequest&, const PathParams& p, HttpResponse& res) {
    std::string text = name;
    for (const std::string& key : params) text += " " + key + "=" + p.Get(key);
    res.SetText(200, text);
  };
}

HttpResponse Serve(const Router& router, std::string method, std::string path) {
  HttpResponse res;
  router.Handle(Request(std::move(method), std::move(path)), res);
  return res;
}

TEST(RouterTest, LiteralPatternCallsItsHandler) {
  Router router;
  router.Add("GET", "/v1/inventory", Echo("inventory"));
  HttpResponse res = Serve(router, "GET", "/v1/inventory");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "inventory");
}

TEST(RouterTest, ParameterCapturesOneSegmentStillPercentEncoded) {
  Router router;
  router.Add("GET", "/v2/{endpoint}/status/{job}", Echo("status", {"endpoint", "job"}));
  EXPECT_EQ(Serve(router, "GET", "/v2/ep1/status/a%2Fb").body, "status endpoint=ep1 job=a%2Fb");
  EXPECT_EQ(Serve(router, "GET", "/v2/ep1/status/a/b").status, 404);
}

TEST(RouterTest, ParameterMatchesAnEmptySegment) {
  Router router;
  router.Add("GET", "/api/models/{org}/{name}", Echo("info", {"org", "name"}));
  EXPECT_EQ(Serve(router, "GET", "/api/models//m").body, "info org= name=m");
}

TEST(RouterTest, RestParameterTakesTheRemainderSlashesIncluded) {
  Router router;
  router.Add("GET", "/{repo}/resolve/{rest...}", Echo("resolve", {"repo", "rest"}));
  EXPECT_EQ(Serve(router, "GET", "/gpt2/resolve/refs/pr/1/onnx//x.onnx").body,
            "resolve repo=gpt2 rest=refs/pr/1/onnx//x.onnx");
}

TEST(RouterTest, RestParameterIsEmptyWhenNothingIsLeft) {
  Router router;
  router.Add("GET", "/{repo}/resolve/{rest...}", Echo("resolve", {"rest"}));
  EXPECT_EQ(Serve(router, "GET", "/gpt2/resolve").body, "resolve rest=");
  EXPECT_EQ(Serve(router, "GET", "/gpt2/resolve/").body, "resolve rest=");
}

TEST(RouterTest, UnknownPathIs404WithTheJsonErrorBody) {
  Router router;
  router.Add("GET", "/health", Echo("health"));
  HttpResponse res = Serve(router, "GET", "/healthz");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.headers.Get("Content-Type"), "application/json");
  EXPECT_EQ(res.body, R"({"code":"not_found","error":"no route /healthz"})");
}

TEST(RouterTest, PathNotStartingWithASlashIs404) {
  Router router;
  router.Add("GET", "/{rest...}", Echo("any"));
  EXPECT_EQ(Serve(router, "OPTIONS", "*").status, 404);
  EXPECT_FALSE(router.MatchesPath("*"));
}

TEST(RouterTest, WrongMethodIs405WithAllowListingTheRoutesMethods) {
  Router router;
  router.Add("GET", "/v1/pins", Echo("list"));
  router.Add("POST", "/v1/pins", Echo("add"));
  router.Add("DELETE", "/v1/pins", Echo("remove"));
  HttpResponse res = Serve(router, "PUT", "/v1/pins");
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.headers.Get("Allow"), "GET, HEAD, POST, DELETE");
  EXPECT_EQ(res.body,
            R"({"code":"invalid_argument","error":"method PUT not allowed on /v1/pins"})");
  EXPECT_EQ(Serve(router, "DELETE", "/v1/pins").body, "remove");
}

TEST(RouterTest, HeadIsServedByTheGetHandler) {
  Router router;
  router.Add("GET", "/v1/inventory", Echo("inventory"));
  EXPECT_EQ(Serve(router, "HEAD", "/v1/inventory").body, "inventory");
}

TEST(RouterTest, HeadIsRefusedWhereThereIsNoGet) {
  Router router;
  router.Add("POST", "/v1/ensure", Echo("ensure"));
  HttpResponse res = Serve(router, "HEAD", "/v1/ensure");
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.headers.Get("Allow"), "POST");
}

TEST(RouterTest, FirstAddedPatternWinsOverALaterOneThatAlsoMatches) {
  Router router;
  router.Add("GET", "/{org}/{name}/resolve/{rest...}", Echo("two", {"org", "name", "rest"}));
  router.Add("GET", "/{name}/resolve/{rest...}", Echo("one", {"name", "rest"}));
  EXPECT_EQ(Serve(router, "GET", "/a/resolve/resolve/main/x").body,
            "two org=a name=resolve rest=main/x");
  EXPECT_EQ(Serve(router, "GET", "/gpt2/resolve/main/x").body, "one name=gpt2 rest=main/x");
}

TEST(RouterTest, ThePathPicksTheRouteBeforeTheMethodDoes) {
  // A later pattern with the method does not take over from the first pattern that matches:
  // that one answers 405.
  Router router;
  router.Add("POST", "/api/models/{name}/paths-info/{rev...}", Echo("paths-info"));
  router.Add("GET", "/api/models/{org}/{name}/{rest...}", Echo("other"));
  HttpResponse res = Serve(router, "GET", "/api/models/m/paths-info/main");
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.headers.Get("Allow"), "POST");
}

TEST(RouterTest, MethodAddedLaterKeepsThePatternsPlace) {
  Router router;
  router.Add("GET", "/v1/workers/{id}", Echo("get", {"id"}));
  router.Add("GET", "/v1/{what}/{id}", Echo("generic"));
  router.Add("DELETE", "/v1/workers/{id}", Echo("stop", {"id"}));
  EXPECT_EQ(Serve(router, "DELETE", "/v1/workers/w1").body, "stop id=w1");
}

TEST(RouterTest, SkippingEmptySegmentsIgnoresDoubledAndTrailingSlashes) {
  Router router({.skip_empty_segments = true});
  router.Add("GET", "/v1/endpoints/{id}", Echo("show", {"id"}));
  EXPECT_EQ(Serve(router, "GET", "//v1//endpoints/e1/").body, "show id=e1");
}

TEST(RouterTest, EmptySegmentsCountByDefault) {
  Router router;
  router.Add("GET", "/v1/endpoints/{id}", Echo("show", {"id"}));
  EXPECT_EQ(Serve(router, "GET", "/v1/endpoints/e1/").status, 404);
  EXPECT_EQ(Serve(router, "GET", "/v1//endpoints/e1").status, 404);
}

TEST(RouterTest, ErrorWriterOfTheServerAnswers404And405) {
  std::vector<int> seen;
  Router router({.on_error = [&](int status, const HttpRequest&, HttpResponse& res) {
    seen.push_back(status);
    res.SetText(status, "hub style");
  }});
  router.Add("POST", "/api/x", Echo("x"));
  EXPECT_EQ(Serve(router, "GET", "/nope").body, "hub style");
  HttpResponse res = Serve(router, "GET", "/api/x");
  EXPECT_EQ(res.headers.Get("Allow"), "POST");
  EXPECT_EQ(seen, (std::vector<int>{404, 405}));
}

TEST(RouterTest, MatchesPathWhateverTheMethod) {
  Router router;
  router.Add("POST", "/v2/{ep}/job-done/{worker}/{job}", Echo("done"));
  EXPECT_TRUE(router.MatchesPath("/v2/e/job-done/w/j"));
  EXPECT_FALSE(router.MatchesPath("/v2/e/job-done/w"));
}

TEST(RouterDeathTest, MalformedPatternsAbort) {
  EXPECT_DEATH(Router().Add("GET", "v1/x", Echo("x")), "does not start with");
  EXPECT_DEATH(Router().Add("GET", "/v1/x{id}", Echo("x")), "brace");
  EXPECT_DEATH(Router().Add("GET", "/{rest...}/x", Echo("x")), "not the last");
  EXPECT_DEATH(Router().Add("GET", "/{a}/{a}", Echo("x")), "repeated");
  EXPECT_DEATH(
      {
        Router r;
        r.Add("GET", "/x", Echo("x"));
        r.Add("GET", "/x", Echo("y"));
      },
      "already routed");
}

TEST(RouterDeathTest, AskingForAParameterThePatternLacksAborts) {
  Router router;
  router.Add("GET", "/x/{id}", Echo("x", {"idd"}));
  EXPECT_DEATH(Serve(router, "GET", "/x/1"), "no parameter");
}

TEST(JsonReplyTest, ErrorBodyCarriesMessageAndCodeWithTheMappedStatus) {
  HttpResponse res;
  SetJsonError(res, UnauthenticatedError("missing key"));
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(res.headers.Get("Content-Type"), "application/json");
  EXPECT_EQ(res.body, R"({"code":"unauthenticated","error":"missing key"})");
}

TEST(JsonReplyTest, QuoteEscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\t\x01"), R"("a\"b\\c\n\t\u0001")");
}

TEST(JsonReplyTest, QuoteKeepsUtf8AndReplacesBytesThatAreNot) {
  EXPECT_EQ(JsonQuote("\xC3\xA9t\xC3\xA9"), "\"\xC3\xA9t\xC3\xA9\"");
  // A sequence cut short (an error message that quotes 64 bytes of input), a lone continuation
  // byte, an overlong form and a surrogate.
  EXPECT_EQ(JsonQuote("x\xC3"), "\"x\xEF\xBF\xBD\"");
  EXPECT_EQ(JsonQuote("\x80"), "\"\xEF\xBF\xBD\"");
  EXPECT_EQ(JsonQuote("\xC0\xAF"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
  EXPECT_EQ(JsonQuote("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace mc::net
