#include "mirror/route.h"

#include <gtest/gtest.h>

namespace mc::mirror {
namespace {

Route Parsed(std::string_view path) {
  StatusOr<Route> r = ParseRoute(path);
  EXPECT_TRUE(r.ok()) << path << ": " << r.status().ToString();
  return r.ok() ? *r : Route();
}

StatusCode CodeOf(std::string_view path) { return ParseRoute(path).status().code(); }

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

TEST(RouteTest, MethodsPerRoute) {
  EXPECT_TRUE(MethodAllowed(RouteKind::kResolve, "HEAD"));
  EXPECT_FALSE(MethodAllowed(RouteKind::kResolve, "POST"));
  EXPECT_TRUE(MethodAllowed(RouteKind::kPathsInfo, "POST"));
  EXPECT_FALSE(MethodAllowed(RouteKind::kPathsInfo, "GET"));
}

}  // namespace
}  // namespace mc::mirror
