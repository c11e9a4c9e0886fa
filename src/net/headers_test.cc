#include "mc/net/headers.h"

#include <gtest/gtest.h>

namespace mc::net {
namespace {

TEST(HeaderMapTest, LooksUpNamesIgnoringCase) {
  HeaderMap h;
  h.Add("Content-Type", "application/json");
  EXPECT_EQ(h.Get("content-type"), "application/json");
  EXPECT_EQ(h.Get("CONTENT-TYPE"), "application/json");
  EXPECT_FALSE(h.Get("content-length").has_value());
}

TEST(HeaderMapTest, KeepsRepeatedFieldsInOrder) {
  HeaderMap h;
  h.Add("Link", "a");
  h.Add("link", "b");
  EXPECT_EQ(h.GetAll("LINK"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(h.Get("Link"), "a");
}

TEST(HeaderMapTest, SetReplacesEveryFieldOfThatName) {
  HeaderMap h;
  h.Add("X-A", "1");
  h.Add("x-a", "2");
  h.Set("X-a", "3");
  EXPECT_EQ(h.GetAll("x-a"), (std::vector<std::string>{"3"}));
}

TEST(HeaderMapTest, AuthorizationIsASecretHeader) {
  EXPECT_TRUE(IsSecretHeader("authorization"));
  EXPECT_TRUE(IsSecretHeader("Proxy-Authorization"));
  EXPECT_FALSE(IsSecretHeader("Accept"));
}

}  // namespace
}  // namespace mc::net

namespace mc::net {
namespace {

TEST(RawHeaderLineTest, StatusLineStartsANewResponseAndFieldsAreTrimmed) {
  HeaderMap h;
  AddRawHeaderLine("HTTP/1.1 302 Found\r\n", h);
  AddRawHeaderLine("Location:  /next \r\n", h);
  EXPECT_EQ(h.Get("location"), "/next");
  AddRawHeaderLine("HTTP/1.1 206 Partial Content\r\n", h);
  EXPECT_FALSE(h.Has("Location"));
  AddRawHeaderLine("Content-Range:\tbytes 0-9/10\r\n", h);
  AddRawHeaderLine("\r\n", h);
  EXPECT_EQ(h.Get("Content-Range"), "bytes 0-9/10");
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(TrimHeaderWhitespace(" \t x y \r\n"), "x y");
}

}  // namespace
}  // namespace mc::net
