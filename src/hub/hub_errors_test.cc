#include "mc/hub/hub_errors.h"

#include <gtest/gtest.h>

namespace mc::hub {
namespace {

constexpr char kSha[] = "0123456789abcdef0123456789abcdef01234567";

HubRequestSubject Subject(bool sent_token = false) {
  return HubRequestSubject{*RepoId::Parse("org/name"), "main", *RepoFilePath::Parse("a/b.bin"),
                           sent_token};
}

net::HeaderMap Headers(std::string code, std::string message = "") {
  net::HeaderMap h;
  if (!code.empty()) h.Add("X-Error-Code", std::move(code));
  if (!message.empty()) h.Add("X-Error-Message", std::move(message));
  return h;
}

TEST(HubErrorsTest, SuccessAndRedirectStatusesAreOk) {
  EXPECT_TRUE(HubErrorFromResponse(200, {}, Subject()).ok());
  EXPECT_TRUE(HubErrorFromResponse(302, {}, Subject()).ok());
}

TEST(HubErrorsTest, RepoNotFoundIsNotFoundMentioningToken) {
  Status s = HubErrorFromResponse(401, Headers("RepoNotFound"), Subject());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("model org/name not found (or private: check your token"),
            std::string::npos)
      << s.message();
}

TEST(HubErrorsTest, RevisionNotFoundNamesTheRevision) {
  Status s = HubErrorFromResponse(404, Headers("RevisionNotFound"), Subject());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("revision 'main'"), std::string::npos) << s.message();
}

TEST(HubErrorsTest, EntryNotFoundNamesFileAndCommitAndExposesCommit) {
  net::HeaderMap h = Headers("EntryNotFound");
  h.Add("X-Repo-Commit", kSha);
  HubErrorDetail detail;
  Status s = HubErrorFromResponse(404, h, Subject(), &detail);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("a/b.bin"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(kSha), std::string::npos) << s.message();
  ASSERT_TRUE(detail.repo_commit.has_value());
  EXPECT_EQ(detail.repo_commit->str(), kSha);
  EXPECT_EQ(detail.error_code, "EntryNotFound");
  EXPECT_EQ(detail.http_status, 404);
}

TEST(HubErrorsTest, GatedWithoutTokenSaysToAcceptTermsAndProvideToken) {
  Status s = HubErrorFromResponse(401, Headers("GatedRepo"), Subject(false));
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("is gated: accept its terms on the Hub and provide a token "
                             "(HF_TOKEN or --token-file)"),
            std::string::npos)
      << s.message();
}

TEST(HubErrorsTest, GatedWithTokenSaysTokenNotAccepted) {
  Status s = HubErrorFromResponse(403, Headers("GatedRepo"), Subject(true));
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("token was not accepted"), std::string::npos) << s.message();
}

TEST(HubErrorsTest, DisabledMessageIsPermissionDeniedWhateverTheCode) {
  Status s = HubErrorFromResponse(
      403, Headers("DisabledRepo", "Access to this resource is disabled."), Subject());
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("disabled"), std::string::npos);
}

TEST(HubErrorsTest, Unauthorized401WithoutCodeIsUnauthenticated) {
  EXPECT_EQ(HubErrorFromResponse(401, {}, Subject()).code(), StatusCode::kUnauthenticated);
}

TEST(HubErrorsTest, RateLimitIsUnavailableWithRetryAfter) {
  net::HeaderMap h;
  h.Add("Retry-After", "17");
  HubErrorDetail detail;
  Status s = HubErrorFromResponse(429, h, Subject(), &detail);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  ASSERT_TRUE(detail.retry_after.has_value());
  EXPECT_EQ(detail.retry_after->count(), 17);
  EXPECT_NE(s.message().find("17 s"), std::string::npos) << s.message();
}

TEST(HubErrorsTest, RateLimitWithDateRetryAfterHasNoSeconds) {
  net::HeaderMap h;
  h.Add("Retry-After", "Wed, 21 Oct 2026 07:28:00 GMT");
  HubErrorDetail detail;
  EXPECT_EQ(HubErrorFromResponse(429, h, Subject(), &detail).code(), StatusCode::kUnavailable);
  EXPECT_FALSE(detail.retry_after.has_value());
}

TEST(HubErrorsTest, ServerErrorsAndTimeoutsAreUnavailable) {
  for (int code : {408, 500, 502, 503, 504}) {
    EXPECT_EQ(HubErrorFromResponse(code, {}, Subject()).code(), StatusCode::kUnavailable) << code;
  }
}

TEST(HubErrorsTest, OtherClientErrorsAreInvalidArgumentOrFailedPrecondition) {
  EXPECT_EQ(HubErrorFromResponse(400, {}, Subject()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HubErrorFromResponse(409, {}, Subject()).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(HubErrorFromResponse(403, {}, Subject()).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(HubErrorFromResponse(404, {}, Subject()).code(), StatusCode::kNotFound);
}

TEST(HubErrorsTest, ServerTextIsQuoted) {
  Status s = HubErrorFromResponse(400, Headers("", "bad\x01thing"), Subject());
  EXPECT_EQ(s.message().find('\x01'), std::string::npos) << s.message();
}

}  // namespace
}  // namespace mc::hub
