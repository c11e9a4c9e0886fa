#include "mc/common/status.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace mc {
namespace {

Status Fails() { return NotFoundError("refs/main"); }
Status Propagates() {
  MC_RETURN_IF_ERROR(Fails(), "resolve main");
  return Status::Ok();
}
StatusOr<int> Number(bool ok) {
  if (!ok) return InvalidArgumentError("no number");
  return 42;
}
StatusOr<int> Doubled(bool ok) {
  MC_ASSIGN_OR_RETURN(int n, Number(ok), "double");
  return 2 * n;
}

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, ReturnIfErrorAddsContext) {
  Status s = Propagates();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "resolve main: refs/main");
  EXPECT_EQ(s.ToString(), "not_found: resolve main: refs/main");
}

TEST(StatusTest, AssignOrReturnPassesValueAndError) {
  EXPECT_EQ(*Doubled(true), 84);
  auto bad = Doubled(false);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "double: no number");
}

TEST(StatusTest, ErrnoMapsDiskFullToResourceExhausted) {
  EXPECT_EQ(ErrnoError(ENOSPC, "write blob").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoError(ENOENT, "open").code(), StatusCode::kNotFound);
}

TEST(StatusTest, HttpStatusMapping) {
  EXPECT_EQ(ToHttpStatus(Status::Ok()), 200);
  EXPECT_EQ(ToHttpStatus(NotFoundError("x")), 404);
  EXPECT_EQ(ToHttpStatus(PermissionDeniedError("x")), 403);
  EXPECT_EQ(ToHttpStatus(UnauthenticatedError("x")), 401);
  EXPECT_EQ(ToHttpStatus(InvalidArgumentError("x")), 400);
}

TEST(StatusDeathTest, StatusOrFromOkStatusAborts) {
  EXPECT_DEATH({ StatusOr<int> s(Status::Ok()); }, "OK Status");
}

}  // namespace
}  // namespace mc
