#include "mc/common/image_ref.h"

#include <gtest/gtest.h>

namespace mc {
namespace {

std::string Normal(std::string_view text) {
  auto ref = ImageRef::Parse(text);
  return ref.ok() ? ref->str() : "ERROR " + ref.status().message();
}

TEST(ImageRefTest, ShortNamesAreDockerHubWithLatest) {
  EXPECT_EQ(Normal("ubuntu"), "docker.io/library/ubuntu:latest");
  EXPECT_EQ(Normal("runpod/worker-vllm:stable"), "docker.io/runpod/worker-vllm:stable");
}

TEST(ImageRefTest, RegistryWithPortTagAndDigestAreKept) {
  const std::string digest = "sha256:" + std::string(64, 'a');
  EXPECT_EQ(Normal("127.0.0.1:5000/org/w:1.2"), "127.0.0.1:5000/org/w:1.2");
  EXPECT_EQ(Normal("localhost/x"), "localhost/x:latest");
  EXPECT_EQ(Normal("ghcr.io/a/b@" + digest), "ghcr.io/a/b@" + digest);
  EXPECT_EQ(Normal("r.example:443/a/b:t@" + digest), "r.example:443/a/b:t@" + digest);
  EXPECT_EQ(Normal("[::1]:5000/a"), "[::1]:5000/a:latest");
  auto ref = ImageRef::Parse("127.0.0.1:5000/org/w:1.2");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->domain(), "127.0.0.1:5000");
  EXPECT_EQ(ref->path(), "org/w");
  EXPECT_EQ(ref->tag(), "1.2");
}

TEST(ImageRefTest, SeparatorsFollowTheGrammar) {
  EXPECT_EQ(Normal("a/b__c.d-e---f_g"), "docker.io/a/b__c.d-e---f_g:latest");
  for (const char* bad : {"a/b___c", "a/.b", "a/b.", "a/b..c", "a//b", "a/-b", "a/b_"}) {
    EXPECT_FALSE(ImageRef::Parse(bad).ok()) << bad;
  }
}

TEST(ImageRefTest, MalformedReferencesAreRefusedWithTheReason) {
  auto upper = ImageRef::Parse("docker.io/Org/App");
  ASSERT_FALSE(upper.ok());
  EXPECT_EQ(upper.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(upper.status().message().find("lowercase"), std::string::npos);
  auto short_digest = ImageRef::Parse("a/b@sha256:abc");
  ASSERT_FALSE(short_digest.ok());
  EXPECT_NE(short_digest.status().message().find("64 hex digits"), std::string::npos);
  auto tag = ImageRef::Parse("a/b:-x");
  ASSERT_FALSE(tag.ok());
  EXPECT_NE(tag.status().message().find("tag"), std::string::npos);
  for (const char* bad : {"", "a b", "a/b:", ":tag", "a/b@", "host:port/a", "x:99999999/a",
                          "-bad.host/a", "a/b:" "\n", "r:5000/", "a/b@md5:zz"}) {
    EXPECT_FALSE(ImageRef::Parse(bad).ok()) << bad;
  }
  EXPECT_FALSE(ImageRef::Parse("a/" + std::string(300, 'b')).ok());
  EXPECT_FALSE(ImageRef::Parse("a:" + std::string(129, 't')).ok());
}

}  // namespace
}  // namespace mc
