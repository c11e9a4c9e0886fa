#include "mc/cache/app_links.h"

#include <gtest/gtest.h>

#include "cache/test_util.h"

namespace mc::cache {
namespace {

using test::C;
using test::P;
using test::R;
using test::Repo;
namespace fs = std::filesystem;

const char kCommit[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

class AppLinksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Etag w = test::PutBlob(*store_, repo_, "weights", true);
    Etag c = test::PutBlob(*store_, repo_, "{}");
    ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kCommit), P("x.safetensors"), w).ok());
    ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kCommit), P("sub/config.json"), c).ok());
    ASSERT_TRUE(store_->WriteRef(repo_, R("main"), C(kCommit)).ok());
  }
  fs::path tmp_ = test::NewTempDir();
  std::unique_ptr<CacheStore> store_ = test::OpenStore(tmp_ / "cache");
  RepoId repo_ = Repo();
  fs::path app_ = tmp_ / "ComfyUI/models/checkpoints";
};

TEST_F(AppLinksTest, LinksOneFileIntoAnExistingDirectoryWithAnAbsoluteTarget) {
  fs::create_directories(app_);
  auto links = LinkIntoApp(*store_, repo_, R("main"), P("x.safetensors"), app_);
  ASSERT_TRUE(links.ok()) << links.status().ToString();
  ASSERT_EQ(links->size(), 1u);
  fs::path link = app_ / "x.safetensors";
  EXPECT_EQ((*links)[0].link, link);
  EXPECT_TRUE(fs::read_symlink(link).is_absolute());
  EXPECT_EQ(fs::read_symlink(link),
            store_->layout().SnapshotFile(repo_, C(kCommit), P("x.safetensors")));
  EXPECT_EQ(test::ReadAll(link), "weights");
}

TEST_F(AppLinksTest, LinksOneFileUnderAChosenName) {
  auto links = LinkIntoApp(*store_, repo_, R("main"), P("x.safetensors"), app_ / "my.safetensors");
  ASSERT_TRUE(links.ok());
  EXPECT_EQ(test::ReadAll(app_ / "my.safetensors"), "weights");
}

TEST_F(AppLinksTest, LinksAWholeSnapshotRecreatingNestedPaths) {
  auto links = LinkIntoApp(*store_, repo_, R("main"), std::nullopt, app_);
  ASSERT_TRUE(links.ok());
  EXPECT_EQ(links->size(), 2u);
  EXPECT_EQ(test::ReadAll(app_ / "sub/config.json"), "{}");
}

TEST_F(AppLinksTest, NeverOverwritesARealFileAndChangesNothingOnConflict) {
  test::WriteText(app_ / "x.safetensors", "user data");
  auto links = LinkIntoApp(*store_, repo_, R("main"), std::nullopt, app_);
  EXPECT_EQ(links.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(test::ReadAll(app_ / "x.safetensors"), "user data");
  EXPECT_FALSE(fs::exists(app_ / "sub"));
}

TEST_F(AppLinksTest, ReplacesAnExistingSymlinkAtomically) {
  fs::create_directories(app_);
  fs::create_symlink("/nonexistent", app_ / "x.safetensors");
  ASSERT_TRUE(LinkIntoApp(*store_, repo_, R("main"), P("x.safetensors"), app_).ok());
  EXPECT_EQ(test::ReadAll(app_ / "x.safetensors"), "weights");
  EXPECT_EQ(std::distance(fs::directory_iterator(app_), fs::directory_iterator()), 1);
}

TEST_F(AppLinksTest, UnknownFileOrRevisionIsNotFound) {
  EXPECT_EQ(LinkIntoApp(*store_, repo_, R("main"), P("nope"), app_).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(LinkIntoApp(*store_, repo_, R("dev"), std::nullopt, app_).status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace mc::cache
