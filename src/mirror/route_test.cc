#include "mirror/route.h"

#include <gtest/gtest.h>

namespace mc::mirror {
namespace {

// What the mirror's routes make of `method path`: the route, the error its ids gave, or the
// router's NotFound (no route) / FailedPrecondition (wrong method; Allow in `allow`).
struct Routed {
  StatusOr<Route> route = InternalError("not routed");
  std::string allow;
};

Routed RouteOf(std::string_view path, std::string method = "") {
  Routed out;
  net::Router router({.on_error = [&](int status, const net::HttpRequest&,
                                      net::HttpResponse& res) {
    out.route = status == 405 ? FailedPreconditionError("405") : NotFoundError("404");
    out.allow = res.headers.Get("Allow").value_or("");
  }});
  AddMirrorRoutes(router, [&](const StatusOr<Route>& r, const net::HttpRequest&,
                              net::HttpResponse&) { out.route = r; });
  net::HttpRequest req;
  req.method = method.empty() ? (path.find("/paths-info/") != path.npos ? "POST" : "GET") : method;
  req.raw_path = std::string(path);
  net::HttpResponse res;
  router.Handle(req, res);
  return out;
}

Route Parsed(std::string_view path) {
  StatusOr<Route> r = RouteOf(path).route;
  EXPECT_TRUE(r.ok()) << path << ": " << r.status().ToString();
  return r.ok() ? *r : Route();
}

StatusCode CodeOf(std::string_view path) { return RouteOf(path).route.status().code(); }

TEST(RouteTest, ResolveWithOrgAndNestedPath) {
  Route r = Parsed("/org/model/resolve/main/onnx/model.onnx");
  EXPECT_EQ(r.kind, RouteKind::kResolve);
  EXPECT_EQ(r.repo->id(), "org/model");
  EXPECT_EQ(r.repo->type(), RepoType::kModel);
  EXPECT_EQ(r.revision->str(), "main");
  EXPECT_EQ(r.path->str(), "onnx/model.onnx");
}

TEST(RouteTest, ResolveWithSingleSegmentRepo) {
  Route r = Parsed("/gpt2/resolve/main/config.json");
  EXPECT_EQ(r.repo->id(), "gpt2");
  EXPECT_EQ(r.path->str(), "config.json");
}

TEST(RouteTest, ResolveOfDatasetsAndSpaces) {
  EXPECT_EQ(Parsed("/datasets/org/d/resolve/main/a.csv").repo->type(), RepoType::kDataset);
  EXPECT_EQ(Parsed("/spaces/org/s/resolve/main/app.py").repo->type(), RepoType::kSpace);
}

TEST(RouteTest, EncodedRevisionIsDecoded) {
  Route r = Parsed("/org/m/resolve/refs%2Fpr%2F1/config.json");
  EXPECT_EQ(r.revision->str(), "refs/pr/1");
  EXPECT_EQ(r.path->str(), "config.json");
}

TEST(RouteTest, UnencodedPullRequestAndConvertRefsAreRecognised) {
  EXPECT_EQ(Parsed("/org/m/resolve/refs/pr/1/config.json").revision->str(), "refs/pr/1");
  Route r = Parsed("/org/m/resolve/refs/convert/parquet/a/b.parquet");
  EXPECT_EQ(r.revision->str(), "refs/convert/parquet");
  EXPECT_EQ(r.path->str(), "a/b.parquet");
}

TEST(RouteTest, EncodedFilePathIsDecoded) {
  EXPECT_EQ(Parsed("/org/m/resolve/main/onnx/my%20model%2Bv2.onnx").path->str(),
            "onnx/my model+v2.onnx");
}

TEST(RouteTest, HostileInputIsInvalidArgument) {
  for (const char* p :
       {"/org/m/resolve/main/a/../b", "/org/m/resolve/main/%2e%2e/x", "/org/m/resolve/main/a%00b",
        "/org/m/resolve/main/a%5Cb", "/org/m/resolve/main/a\\b", "/org/m/resolve/main//etc/passwd",
        "/org/m/resolve/main/%2Fetc%2Fpasswd", "/org/m/resolve/..%2F..%2Fx/a",
        "/%2e%2e/m/resolve/main/a", "/org/m/resolve/main/a%zz", "/org/m/resolve/main/",
        "/api/models/a%2F..%2Fb/revision/main"}) {
    EXPECT_EQ(CodeOf(p), StatusCode::kInvalidArgument) << p;
  }
}

TEST(RouteTest, UnknownRoutesAreNotFound) {
  for (const char* p : {"/", "/favicon.ico", "/org/m/blob/main/x", "/api/whoami-v2",
                        "/api/models/a/b/c/d", "/api/model/a/revision/main"}) {
    EXPECT_EQ(CodeOf(p), StatusCode::kNotFound) << p;
  }
}

TEST(RouteTest, RepoInfoWithAndWithoutRevision) {
  Route a = Parsed("/api/models/org/m");
  EXPECT_EQ(a.kind, RouteKind::kRepoInfo);
  EXPECT_FALSE(a.revision.has_value());
  Route b = Parsed("/api/datasets/org/d/revision/refs%2Fpr%2F2");
  EXPECT_EQ(b.repo->type(), RepoType::kDataset);
  EXPECT_EQ(b.revision->str(), "refs/pr/2");
  EXPECT_EQ(Parsed("/api/models/gpt2/revision/refs/pr/3").revision->str(), "refs/pr/3");
}

TEST(RouteTest, TreeWithAndWithoutSubPath) {
  Route a = Parsed("/api/models/org/m/tree/main");
  EXPECT_EQ(a.kind, RouteKind::kTree);
  EXPECT_FALSE(a.path.has_value());
  Route b = Parsed("/api/models/gpt2/tree/main/onnx/sub");
  EXPECT_EQ(b.repo->id(), "gpt2");
  EXPECT_EQ(b.path->str(), "onnx/sub");
  EXPECT_FALSE(Parsed("/api/models/org/m/tree/main/").path.has_value());
}

TEST(RouteTest, PathsInfoTakesTheWholeRevision) {
  Route r = Parsed("/api/models/org/m/paths-info/refs%2Fpr%2F1");
  EXPECT_EQ(r.kind, RouteKind::kPathsInfo);
  EXPECT_EQ(r.revision->str(), "refs/pr/1");
}

TEST(RouteTest, WrongMethodIs405WithTheRoutesMethodsInAllow) {
  EXPECT_TRUE(RouteOf("/org/m/resolve/main/a", "HEAD").route.ok());
  Routed post = RouteOf("/org/m/resolve/main/a", "POST");
  EXPECT_EQ(post.route.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(post.allow, "GET, HEAD");
  Routed get = RouteOf("/api/models/org/m/paths-info/main", "GET");
  EXPECT_EQ(get.route.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(get.allow, "POST");
}

TEST(RouteTest, ARepoOfTwoPartsIsTriedFirst) {
  Route r = Parsed("/a/resolve/resolve/main/x");
  EXPECT_EQ(r.repo->id(), "a/resolve");
  EXPECT_EQ(r.path->str(), "x");
  EXPECT_EQ(Parsed("/api/models/a/tree/tree/main").repo->id(), "a/tree");
}

TEST(RouteTest, PathsUnderApiDatasetsAndSpacesAreNeverModels) {
  for (const char* p : {"/api/x/resolve/main/f", "/api/resolve/main/f", "/datasets/resolve/main/f",
                        "/spaces/resolve/main/f", "/api/models/x/resolve/main/f"}) {
    EXPECT_EQ(CodeOf(p), StatusCode::kNotFound) << p;
  }
}

TEST(RouteTest, MissingRevisionIsInvalidArgument) {
  for (const char* p : {"/org/m/resolve", "/org/m/resolve/", "/api/models/org/m/tree",
                        "/api/models/m/revision", "/api/models/org/m/revision/"}) {
    EXPECT_EQ(CodeOf(p), StatusCode::kInvalidArgument) << p;
  }
}

}  // namespace
}  // namespace mc::mirror
