// Hostile input: names that try to leave the cache, special files, poisoned cache contents.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "cache/test_util.h"
#include "mc/cache/app_links.h"
#include "mc/cache/cache_scan.h"
#include "mc/cache/importer.h"

namespace mc::cache {
namespace {

using test::C;
using test::P;
using test::R;
using test::Repo;
namespace fs = std::filesystem;

const char kCommit[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

std::set<std::string> Tree(const fs::path& dir) {
  std::set<std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    out.insert(it->path().lexically_relative(dir).string());
  }
  return out;
}

class HostileInputTest : public ::testing::Test {
 protected:
  // Imports src_ after `prepare` populated it; expects InvalidArgument and no write anywhere.
  void ExpectRejectedWithoutWriting(const std::string& what) {
    test::WriteText(src_ / "ok.txt", "fine");
    std::set<std::string> before = Tree(tmp_);
    auto r = ImportFolder(*store_, src_, Repo(), R("main"));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << what;
    EXPECT_EQ(Tree(tmp_), before) << what;
  }

  fs::path tmp_ = test::NewTempDir();
  fs::path src_ = tmp_ / "src";
  std::unique_ptr<CacheStore> store_ = test::OpenStore(tmp_ / "cache");
};

TEST(HostileNamesTest, RepoFilePathRejectsNamesThatLeaveTheSnapshot) {
  for (const std::string& bad : std::vector<std::string>{
           "../x", "a/../../x", "..", "/etc/passwd", "a\\..\\x", "C:/x", "a//b", "a/./b", "",
           std::string("a\0b", 3), std::string(4097, 'a'), std::string(256, 'a') + "/b", "a\nb"}) {
    EXPECT_EQ(RepoFilePath::Parse(bad).status().code(), StatusCode::kInvalidArgument)
        << QuoteForMessage(bad);
  }
}

TEST(HostileNamesTest, OddButValidNamesStayInsideTheSnapshot) {
  auto tmp = test::NewTempDir();
  auto store = test::OpenStore(tmp / "cache");
  RepoId repo = Repo();
  Etag e = test::PutBlob(*store, repo, "x");
  for (const char* name : {"...", "..a", "a..", ".hidden/x", "sp ace", "ü.txt", "a/-b"}) {
    ASSERT_TRUE(store->LinkSnapshotFile(repo, C(kCommit), P(name), e).ok()) << name;
    fs::path f = store->layout().SnapshotFile(repo, C(kCommit), P(name));
    std::string rel = f.lexically_relative(store->layout().SnapshotDir(repo, C(kCommit))).string();
    EXPECT_FALSE(rel.starts_with("..") && rel != name) << name;
    EXPECT_EQ(test::ReadAll(f), "x") << name;
  }
  EXPECT_EQ(Tree(tmp).count("cache"), 1u);
  for (const auto& p : Tree(tmp)) EXPECT_TRUE(p.starts_with("cache")) << p;
}

TEST(HostileNamesTest, RevisionsCannotEscapeRefs) {
  for (const char* bad : {"../x", "refs/../../x", "/main", "a/./b", "x.lock", ".hidden"}) {
    EXPECT_FALSE(Revision::Parse(bad).ok()) << bad;
  }
}

TEST_F(HostileInputTest, ImportRejectsABackslashInAFileName) {
  test::WriteText(src_ / "a\\..\\evil", "x");
  ExpectRejectedWithoutWriting("backslash");
}

TEST_F(HostileInputTest, ImportRejectsAControlCharacterInAFileName) {
  test::WriteText(src_ / "a\nb", "x");
  ExpectRejectedWithoutWriting("newline");
}

TEST_F(HostileInputTest, ImportRejectsANonUtf8FileName) {
  test::WriteText(src_ / "bad\xff", "x");
  ExpectRejectedWithoutWriting("non-utf8");
}

TEST_F(HostileInputTest, ImportRejectsASymlinkToAFileOutside) {
  fs::create_directories(src_);
  fs::create_symlink("/etc/passwd", src_ / "passwd");
  ExpectRejectedWithoutWriting("symlink");
}

TEST_F(HostileInputTest, ImportRejectsASymlinkedDirectory) {
  fs::create_directories(src_);
  fs::create_directory_symlink("/etc", src_ / "etc");
  ExpectRejectedWithoutWriting("dir symlink");
}

TEST_F(HostileInputTest, ImportRejectsAFifo) {
  fs::create_directories(src_);
  ASSERT_EQ(::mkfifo((src_ / "pipe").c_str(), 0600), 0);
  ExpectRejectedWithoutWriting("fifo");
}

TEST_F(HostileInputTest, RefHoldingAPathIsNotFollowed) {
  RepoId repo = Repo();
  test::WriteText(store_->layout().RepoDir(repo) / "refs/main", "../../../../etc");
  fs::create_directories(store_->layout().RepoDir(repo) / "snapshots");
  EXPECT_EQ(store_->ResolveRevision(repo, R("main")).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(ScanCache(*store_)->warnings.size(), 1u);
}

TEST_F(HostileInputTest, RemovingASnapshotNeverDeletesWhatALinkPointsToOutsideBlobs) {
  RepoId repo = Repo();
  test::WriteText(tmp_ / "precious", "keep me");
  fs::path snap = store_->layout().SnapshotDir(repo, C(kCommit));
  fs::create_directories(snap);
  fs::create_symlink(tmp_ / "precious", snap / "evil");
  auto verify = VerifyCache(*store_, repo, std::nullopt);
  ASSERT_TRUE(verify.ok());
  EXPECT_EQ(verify->files.at(0).outcome, VerifyFileResult::Outcome::kUnknownName);
  ASSERT_TRUE(RemoveRevision(*store_, repo, R(kCommit)).ok());
  EXPECT_EQ(test::ReadAll(tmp_ / "precious"), "keep me");
}

TEST_F(HostileInputTest, SnapshotLinksLeadingOutsideTheRepoAreNeverListedOrStatted) {
  RepoId repo = Repo();
  test::WriteText(tmp_ / "secret", "not for the mirror");
  fs::create_directories(tmp_ / "outside_dir");
  test::WriteText(tmp_ / "outside_dir" / "passwd", "root:x:0:0");
  fs::path snap = store_->layout().SnapshotDir(repo, C(kCommit));
  fs::create_directories(snap);
  fs::create_symlink(tmp_ / "secret", snap / "file_link");
  fs::create_symlink(tmp_ / "outside_dir", snap / "dir_link");
  test::WriteText(snap / "inside.txt", "ok");
  auto files = store_->ListSnapshotFiles(repo, C(kCommit));
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ(files->at(0).path.str(), "inside.txt");
  EXPECT_EQ(store_->StatSnapshotFile(repo, C(kCommit), P("file_link")).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->StatSnapshotFile(repo, C(kCommit), P("dir_link/passwd")).status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(store_->StatSnapshotFile(repo, C(kCommit), P("inside.txt")).ok());
}

TEST_F(HostileInputTest, AppLinkNeverReplacesARealDirectory) {
  RepoId repo = Repo();
  Etag e = test::PutBlob(*store_, repo, "x");
  ASSERT_TRUE(store_->LinkSnapshotFile(repo, C(kCommit), P("m.bin"), e).ok());
  fs::create_directories(tmp_ / "app/m.bin/inner");
  auto r = LinkIntoApp(*store_, repo, R(kCommit), std::nullopt, tmp_ / "app");
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(fs::is_directory(tmp_ / "app/m.bin/inner"));
}

}  // namespace
}  // namespace mc::cache
