#include "mc/common/secret_box.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace mc {
namespace {

namespace fs = std::filesystem;

class SecretBoxFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("secret_box_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(SecretBoxTest, ASealedValueOpensToThePlaintext) {
  const SecretBox box = SecretBox::Random();
  const std::string sealed = box.Seal("hf_secret", "endpoint ep-1 hfToken");
  EXPECT_TRUE(SecretBox::IsSealed(sealed));
  EXPECT_EQ(sealed.find("hf_secret"), std::string::npos);
  EXPECT_EQ(box.Open(sealed, "endpoint ep-1 hfToken").value(), "hf_secret");
  EXPECT_EQ(box.Open(box.Seal("", "c"), "c").value(), "");
}

TEST(SecretBoxTest, EachSealUsesAFreshNonce) {
  const SecretBox box = SecretBox::Random();
  EXPECT_NE(box.Seal("same", "c"), box.Seal("same", "c"));
}

TEST(SecretBoxTest, AnotherContextKeyOrAChangedByteDoesNotOpen) {
  const SecretBox box = SecretBox::Random();
  const std::string sealed = box.Seal("hf_secret", "endpoint ep-1 hfToken");
  EXPECT_EQ(box.Open(sealed, "endpoint ep-2 hfToken").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(SecretBox::Random().Open(sealed, "endpoint ep-1 hfToken").status().code(),
            StatusCode::kDataLoss);
  std::string changed = sealed;
  changed[changed.size() - 3] = changed[changed.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(box.Open(changed, "endpoint ep-1 hfToken").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(box.Open("hf_plain", "c").status().code(), StatusCode::kInvalidArgument);
}

TEST(SecretBoxTest, DeriveIsStablePerKeyAndLabelAndIndependentOtherwise) {
  SecretBox::Key key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<unsigned char>(i);
  const SecretBox a(key), same(key);
  const std::string derived = a.Derive("modelcache fleet peer key");
  EXPECT_EQ(derived.size(), 43u);  // 32 bytes, base64url without padding
  EXPECT_EQ(same.Derive("modelcache fleet peer key"), derived);
  EXPECT_NE(a.Derive("another label"), derived);
  EXPECT_NE(SecretBox::Random().Derive("modelcache fleet peer key"), derived);
}

TEST_F(SecretBoxFileTest, AMissingKeyFileIsCreatedOwnerOnlyAndReusedAfterwards) {
  const fs::path key = dir_ / "secret.key";
  auto first = SecretBox::FromKeyFile(key);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string sealed = first->Seal("token", "c");
  auto second = SecretBox::FromKeyFile(key);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->Open(sealed, "c").value(), "token");
}

TEST_F(SecretBoxFileTest, AKeyFileOthersCanReadIsRefused) {
  const fs::path key = dir_ / "secret.key";
  ASSERT_TRUE(SecretBox::FromKeyFile(key).ok());
  fs::permissions(key, fs::perms::group_read, fs::perm_options::add);
  auto box = SecretBox::FromKeyFile(key);
  EXPECT_EQ(box.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(box.status().message().find("chmod 600"), std::string::npos);
}

TEST_F(SecretBoxFileTest, AKeyFileWithoutAKeyIsRefused) {
  const fs::path key = dir_ / "secret.key";
  {
    std::ofstream(key) << "not a key\n";
  }
  fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(SecretBox::FromKeyFile(key).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace mc
