// EntitlementCache (entitlements.h): what an entitlement check's answer is worth and for how
// long, the upstream reachable and not, on explicit times.
#include "controller/entitlements.h"

#include <gtest/gtest.h>

namespace mc::controller {
namespace {

constexpr int64_t kMin = 60'000;

EntitlementPolicy Policy() {
  return {std::chrono::minutes(10), std::chrono::seconds(30), std::chrono::hours(1)};
}

TEST(EntitlementCacheTest, AnAcceptanceIsKeptForTheTtl) {
  EntitlementCache c(Policy());
  EXPECT_FALSE(c.Cached("ep", 0).has_value());
  EXPECT_TRUE(c.Record("ep", true, Status::Ok(), false, 0).ok());
  ASSERT_TRUE(c.Cached("ep", 9 * kMin).has_value());
  EXPECT_TRUE(c.Cached("ep", 9 * kMin)->ok());
  EXPECT_FALSE(c.Cached("ep", 10 * kMin).has_value());
}

TEST(EntitlementCacheTest, ARefusalIsAskedAgainAfterThirtySecondsNotTenMinutes) {
  EntitlementCache c(Policy());
  Status refused = PermissionDeniedError("403");
  EXPECT_EQ(c.Record("ep", true, refused, false, 0).code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(c.Cached("ep", 29'000).has_value());
  EXPECT_EQ(c.Cached("ep", 29'000)->code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(c.Cached("ep", 30'000).has_value());
  EXPECT_FALSE(c.UpstreamDown());
}

TEST(EntitlementCacheTest, UpstreamDownAGatedRepoPassesWithinTheGraceOnly) {
  EntitlementCache c(Policy());
  const Status down = UnavailableError("connection refused");
  ASSERT_TRUE(c.Record("ep", true, Status::Ok(), /*public_repo=*/false, 0).ok());
  EXPECT_TRUE(c.Record("ep", true, down, false, 59 * kMin).ok());
  EXPECT_TRUE(c.UpstreamDown());
  Status late = c.Record("ep", true, down, false, 61 * kMin);
  EXPECT_EQ(late.code(), StatusCode::kUnavailable);
  EXPECT_NE(late.message().find("grace period"), std::string::npos) << late.message();
  // Never checked since the start: refused, saying so.
  Status never = c.Record("other", true, down, false, 0);
  EXPECT_NE(never.message().find("not been checked"), std::string::npos) << never.message();
  // The upstream answers again.
  EXPECT_TRUE(c.Record("ep", true, Status::Ok(), false, 62 * kMin).ok());
  EXPECT_FALSE(c.UpstreamDown());
}

TEST(EntitlementCacheTest, UpstreamDownAPublicRepoOrAnEndpointWithoutATokenPasses) {
  EntitlementCache c(Policy());
  const Status down = DeadlineExceededError("timed out");
  ASSERT_TRUE(c.Record("pub", true, Status::Ok(), /*public_repo=*/true, 0).ok());
  EXPECT_TRUE(c.Record("pub", true, down, false, 100 * kMin).ok());  // past the grace
  EXPECT_TRUE(c.Record("tokenless", false, down, false, 0).ok());    // never checked
  EXPECT_TRUE(c.UpstreamDown());
}

}  // namespace
}  // namespace mc::controller
