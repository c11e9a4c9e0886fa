#include "mirror/access_control.h"

#include <gtest/gtest.h>

#include "mc/cache/blob_hasher.h"

namespace mc::mirror {
namespace {

RepoId Model(std::string_view id) { return *RepoId::Parse(id); }

AccessConfig Config(const std::string& json) {
  StatusOr<AccessConfig> c = AccessConfig::Parse(json);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : AccessConfig();
}

TEST(AccessControlTest, ReposWithoutRulesArePublic) {
  AccessConfig c = Config(R"({"repos": {}})");
  EXPECT_EQ(c.Decide(Model("org/m"), RouteKind::kResolve, std::nullopt), AccessDecision::kAllow);
}

TEST(AccessControlTest, GatedRepoShowsMetadataButNotFilesWithoutToken) {
  AccessConfig c = Config(R"({"repos": {"org/g": {"gated": "manual", "tokens": ["hf_ok"]}}})");
  EXPECT_EQ(c.Decide(Model("org/g"), RouteKind::kRepoInfo, std::nullopt), AccessDecision::kAllow);
  EXPECT_EQ(c.Decide(Model("org/g"), RouteKind::kTree, std::nullopt), AccessDecision::kAllow);
  EXPECT_EQ(c.Decide(Model("org/g"), RouteKind::kResolve, std::nullopt), AccessDecision::kGated);
  EXPECT_EQ(c.Decide(Model("org/g"), RouteKind::kResolve, "hf_bad"), AccessDecision::kGated);
  EXPECT_EQ(c.Decide(Model("org/g"), RouteKind::kResolve, "hf_ok"), AccessDecision::kAllow);
}

TEST(AccessControlTest, PrivateRepoIsHiddenWithoutAcceptedToken) {
  AccessConfig c = Config(R"({"repos": {"datasets/org/p": {"private": true, "tokens": ["t1"]}}})");
  RepoId p = *RepoId::Parse("org/p", RepoType::kDataset);
  EXPECT_EQ(c.Decide(p, RouteKind::kRepoInfo, std::nullopt), AccessDecision::kRepoNotFound);
  EXPECT_EQ(c.Decide(p, RouteKind::kTree, "t2"), AccessDecision::kRepoNotFound);
  EXPECT_EQ(c.Decide(p, RouteKind::kResolve, "t1"), AccessDecision::kAllow);
  EXPECT_EQ(c.Decide(Model("org/p"), RouteKind::kResolve, std::nullopt), AccessDecision::kAllow);
}

TEST(AccessControlTest, DisabledRepoIsDisabledEvenWithToken) {
  AccessConfig c = Config(R"({"repos": {"org/off": {"disabled": true, "tokens": ["t"]}}})");
  EXPECT_EQ(c.Decide(Model("org/off"), RouteKind::kRepoInfo, "t"), AccessDecision::kDisabled);
}

TEST(AccessControlTest, HashedTokenEntriesAreAccepted) {
  std::string digest = cache::Sha256Hex("hf_secret");
  AccessConfig c =
      Config(R"({"repos": {"org/g": {"gated": "auto", "tokens": ["sha256:)" + digest + R"("]}}})");
  EXPECT_EQ(c.Decide(Model("org/g"), RouteKind::kResolve, "hf_secret"), AccessDecision::kAllow);
  EXPECT_EQ(c.Decide(Model("org/g"), RouteKind::kResolve, digest), AccessDecision::kGated);
}

TEST(AccessControlTest, MalformedConfigsAreRejected) {
  for (const char* json :
       {"", "[]", R"({"repos": []})", R"({"repo": {}})", R"({"repos": {"a/../b": {}}})",
        R"({"repos": {"org/m": {"gate": "x"}}})", R"({"repos": {"org/m": {"gated": "yes"}}})",
        R"({"repos": {"org/m": {"private": "true"}}})", R"({"repos": {"org/m": {"tokens": "t"}}})",
        R"({"repos": {"org/m": {"tokens": ["sha256:abc"]}}})"}) {
    EXPECT_EQ(AccessConfig::Parse(json).status().code(), StatusCode::kInvalidArgument) << json;
  }
}

TEST(AccessControlTest, ConfigErrorsNeverEchoTokens) {
  auto s = AccessConfig::Parse(R"({"repos": {"org/m": {"tokens": ["sha256:hf_secret_value"]}}})");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message().find("hf_secret_value"), std::string::npos);
}

TEST(AccessControlTest, MissingConfigFileIsNotFound) {
  EXPECT_EQ(AccessConfig::Load("/nonexistent/access.json").status().code(), StatusCode::kNotFound);
}

TEST(AccessControlTest, BearerTokenIsTakenFromAuthorization) {
  EXPECT_EQ(BearerToken("Bearer hf_abc"), "hf_abc");
  EXPECT_EQ(BearerToken("bearer  hf_abc "), "hf_abc");
  EXPECT_FALSE(BearerToken("Basic dXNlcjpwYXNz").has_value());
  EXPECT_FALSE(BearerToken("Bearer ").has_value());
  EXPECT_FALSE(BearerToken(std::nullopt).has_value());
}

}  // namespace
}  // namespace mc::mirror
