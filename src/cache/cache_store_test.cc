#include "mc/cache/cache_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>
#include <set>

#include "cache/test_util.h"
#include "mc/cache/blob_hasher.h"

namespace mc::cache {
namespace {

using test::C;
using test::E;
using test::P;
using test::R;
using test::Repo;
namespace fs = std::filesystem;

const char kCommit[] = "607a30d783dfa663caf39e06633721c8d4cfcd7e";
const char kCommit2[] = "1111111111111111111111111111111111111111";

std::set<std::string> Names(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

class CacheStoreTest : public ::testing::Test {
 protected:
  fs::path root_ = test::NewTempDir();
  std::unique_ptr<CacheStore> store_ = test::OpenStore(root_);
  RepoId repo_ = Repo();
};

TEST_F(CacheStoreTest, PublishedBlobIsNamedByItsEtagAndNoTempIsLeft) {
  Etag etag = test::PutBlob(*store_, repo_, "Hello, World!");
  EXPECT_EQ(etag.str(), "b45ef6fec89518d314f546fd6c3025367b721684");
  EXPECT_EQ(test::ReadAll(store_->layout().BlobPath(repo_, etag)), "Hello, World!");
  EXPECT_EQ(Names(store_->layout().BlobsDir(repo_)), std::set<std::string>{etag.str()});
}

TEST_F(CacheStoreTest, TempBlobIsNamedEtagDotEightHexDotIncomplete) {
  Etag etag = E(Sha256Hex("x"));
  auto writer = store_->NewBlobWriter(repo_, etag);
  ASSERT_TRUE(writer.ok());
  std::string name = writer->temp_path().filename().string();
  EXPECT_TRUE(std::regex_match(name, std::regex(etag.str() + "\\.[0-9a-f]{8}\\.incomplete")))
      << name;
  EXPECT_EQ(writer->temp_path().parent_path(), store_->layout().BlobsDir(repo_));
}

TEST_F(CacheStoreTest, DestroyedWriterRemovesItsTempFile) {
  fs::path temp;
  {
    auto writer = store_->NewBlobWriter(repo_, E(Sha256Hex("x")));
    ASSERT_TRUE(writer.ok());
    temp = writer->temp_path();
    EXPECT_TRUE(fs::exists(temp));
  }
  EXPECT_FALSE(fs::exists(temp));
}

TEST_F(CacheStoreTest, PublishRejectsWrongContentAsDataLossAndRemovesTheTemp) {
  for (const std::string& etag : {Sha256Hex("right"), GitBlobSha1("right")}) {
    auto writer = store_->NewBlobWriter(repo_, E(etag));
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->Append("wrong", 5).ok());
    Status s = store_->PublishBlob(std::move(*writer), 5, true);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << etag;
    EXPECT_FALSE(store_->HasBlob(repo_, E(etag), std::nullopt));
  }
  EXPECT_TRUE(Names(store_->layout().BlobsDir(repo_)).empty());
}

TEST_F(CacheStoreTest, PublishRejectsWrongSizeAsDataLoss) {
  auto writer = store_->NewBlobWriter(repo_, E(Sha256Hex("abc")));
  ASSERT_TRUE(writer->Append("abc", 3).ok());
  EXPECT_EQ(store_->PublishBlob(std::move(*writer), 4, false).code(), StatusCode::kDataLoss);
}

TEST_F(CacheStoreTest, PublishVerifiesBytesWrittenThroughTheFdByRereading) {
  auto writer = store_->NewBlobWriter(repo_, E(Sha256Hex("abc")));
  ASSERT_EQ(::pwrite(writer->fd(), "abc", 3, 0), 3);
  EXPECT_TRUE(store_->PublishBlob(std::move(*writer), 3, true).ok());
  EXPECT_TRUE(store_->HasBlob(repo_, E(Sha256Hex("abc")), 3));
}

TEST_F(CacheStoreTest, PublishedBlobGetsTheUmaskDefaultMode) {
  mode_t old = ::umask(022);
  Etag etag = test::PutBlob(*store_, repo_, "mode");
  ::umask(old);
  struct stat st;
  ASSERT_EQ(::stat(store_->layout().BlobPath(repo_, etag).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(CacheStoreTest, PublishingAnExistingBlobKeepsItAndDropsTheTemp) {
  Etag etag = test::PutBlob(*store_, repo_, "same");
  test::PutBlob(*store_, repo_, "same");
  EXPECT_EQ(Names(store_->layout().BlobsDir(repo_)), std::set<std::string>{etag.str()});
}

TEST_F(CacheStoreTest, SnapshotLinksAreRelativeWithTheRightDepth) {
  Etag etag = test::PutBlob(*store_, repo_, "w", true);
  ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kCommit), P("a/b/c.bin"), etag).ok());
  ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kCommit), P("top.bin"), etag).ok());
  fs::path snap = store_->layout().SnapshotDir(repo_, C(kCommit));
  EXPECT_EQ(fs::read_symlink(snap / "a/b/c.bin").string(), "../../../../blobs/" + etag.str());
  EXPECT_EQ(fs::read_symlink(snap / "top.bin").string(), "../../blobs/" + etag.str());
  EXPECT_EQ(test::ReadAll(snap / "a/b/c.bin"), "w");
}

TEST_F(CacheStoreTest, LinkingToAMissingBlobIsAFailedPrecondition) {
  Status s = store_->LinkSnapshotFile(repo_, C(kCommit), P("x"), E(Sha256Hex("none")));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(store_->layout().SnapshotDir(repo_, C(kCommit)) / "x"));
}

TEST_F(CacheStoreTest, RelinkingReplacesTheLinkAndLeavesNoTemp) {
  Etag a = test::PutBlob(*store_, repo_, "a");
  Etag b = test::PutBlob(*store_, repo_, "b");
  ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kCommit), P("f"), a).ok());
  ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kCommit), P("f"), b).ok());
  EXPECT_EQ(test::ReadAll(store_->layout().SnapshotFile(repo_, C(kCommit), P("f"))), "b");
  EXPECT_EQ(Names(store_->layout().RepoDir(repo_)), (std::set<std::string>{"blobs", "snapshots"}));
}

TEST_F(CacheStoreTest, RefHoldsFortyHexBytesWithoutNewline) {
  ASSERT_TRUE(store_->WriteRef(repo_, R("main"), C(kCommit)).ok());
  EXPECT_EQ(test::ReadAll(store_->layout().RepoDir(repo_) / "refs/main"), kCommit);
}

TEST_F(CacheStoreTest, PullRequestRefIsWrittenUnderRefsRefs) {
  ASSERT_TRUE(store_->WriteRef(repo_, R("refs/pr/1"), C(kCommit)).ok());
  EXPECT_EQ(test::ReadAll(store_->layout().RepoDir(repo_) / "refs/refs/pr/1"), kCommit);
}

TEST_F(CacheStoreTest, UnchangedRefIsNotRewritten) {
  ASSERT_TRUE(store_->WriteRef(repo_, R("main"), C(kCommit)).ok());
  fs::path ref = store_->layout().RefPath(repo_, R("main"));
  struct stat before, after;
  ASSERT_EQ(::stat(ref.c_str(), &before), 0);
  ASSERT_TRUE(store_->WriteRef(repo_, R("main"), C(kCommit)).ok());
  ASSERT_EQ(::stat(ref.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  ASSERT_TRUE(store_->WriteRef(repo_, R("main"), C(kCommit2)).ok());
  EXPECT_EQ(test::ReadAll(ref), kCommit2);
}

TEST_F(CacheStoreTest, CommitShaRevisionWritesNoRef) {
  ASSERT_TRUE(store_->WriteRef(repo_, R(kCommit), C(kCommit)).ok());
  EXPECT_FALSE(fs::exists(store_->layout().RepoDir(repo_) / "refs"));
}

TEST_F(CacheStoreTest, ResolveRevisionFollowsRefsAndRequiresTheSnapshot) {
  ASSERT_TRUE(store_->WriteRef(repo_, R("main"), C(kCommit)).ok());
  EXPECT_EQ(store_->ResolveRevision(repo_, R("main")).status().code(), StatusCode::kNotFound);
  Etag e = test::PutBlob(*store_, repo_, "x");
  ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kCommit), P("x"), e).ok());
  EXPECT_EQ(store_->ResolveRevision(repo_, R("main")).value().str(), kCommit);
  EXPECT_EQ(store_->ResolveRevision(repo_, R(kCommit)).value().str(), kCommit);
  EXPECT_EQ(store_->ResolveRevision(repo_, R(kCommit2)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ResolveRevision(repo_, R("dev")).status().code(), StatusCode::kNotFound);
}

TEST_F(CacheStoreTest, ListRefsWalksNestedRefsSorted) {
  ASSERT_TRUE(store_->WriteRef(repo_, R("main"), C(kCommit)).ok());
  ASSERT_TRUE(store_->WriteRef(repo_, R("refs/pr/1"), C(kCommit2)).ok());
  auto refs = store_->ListRefs(repo_);
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->size(), 2u);
  EXPECT_EQ((*refs)[0].first, "main");
  EXPECT_EQ((*refs)[1].first, "refs/pr/1");
  EXPECT_EQ((*refs)[1].second.str(), kCommit2);
}

TEST_F(CacheStoreTest, ListSnapshotFilesReportsEtagAndSizeAndSkipsBrokenLinks) {
  Etag a = test::PutBlob(*store_, repo_, "aaaa", true);
  Etag b = test::PutBlob(*store_, repo_, "bb");
  ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kCommit), P("z/a.bin"), a).ok());
  ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kCommit), P("b.txt"), b).ok());
  fs::path snap = store_->layout().SnapshotDir(repo_, C(kCommit));
  fs::create_symlink("../../blobs/" + std::string(40, 'f'), snap / "broken");
  auto files = store_->ListSnapshotFiles(repo_, C(kCommit));
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path.str(), "b.txt");
  EXPECT_EQ((*files)[0].etag->str(), b.str());
  EXPECT_EQ((*files)[0].size, 2u);
  EXPECT_EQ((*files)[1].path.str(), "z/a.bin");
  EXPECT_EQ((*files)[1].file, store_->layout().BlobPath(repo_, a));
  EXPECT_EQ(store_->ListSnapshots(repo_).value().size(), 1u);
}

TEST_F(CacheStoreTest, StatSnapshotFileFindsOneFileOrSaysNotFound) {
  Etag a = test::PutBlob(*store_, repo_, "aaaa");
  ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kCommit), P("d/a"), a).ok());
  auto e = store_->StatSnapshotFile(repo_, C(kCommit), P("d/a"));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->size, 4u);
  EXPECT_EQ(e->etag->str(), a.str());
  EXPECT_EQ(store_->StatSnapshotFile(repo_, C(kCommit), P("d/b")).status().code(),
            StatusCode::kNotFound);
}

TEST_F(CacheStoreTest, NoExistMarkerIsAnEmptyFile) {
  ASSERT_TRUE(store_->MarkNoExist(repo_, C(kCommit), P("added_tokens.json")).ok());
  fs::path marker = store_->layout().NoExistFile(repo_, C(kCommit), P("added_tokens.json"));
  EXPECT_TRUE(fs::is_regular_file(marker));
  EXPECT_EQ(fs::file_size(marker), 0u);
}

TEST_F(CacheStoreTest, CacheRootHoldsOnlyEntriesHuggingfaceHubCreates) {
  ASSERT_TRUE(store_->EnsureCacheDirTag().ok());
  Etag a = test::PutBlob(*store_, repo_, "a");
  {
    auto lock = store_->LockBlob(repo_, a);
    ASSERT_TRUE(lock.ok());
  }
  ASSERT_TRUE(store_->LinkSnapshotFile(repo_, C(kCommit), P("a"), a).ok());
  ASSERT_TRUE(store_->WriteRef(repo_, R("main"), C(kCommit)).ok());
  ASSERT_TRUE(store_->MarkNoExist(repo_, C(kCommit), P("b")).ok());
  EXPECT_EQ(Names(root_), (std::set<std::string>{".locks", "CACHEDIR.TAG", "models--org--model"}));
  EXPECT_EQ(Names(store_->layout().RepoDir(repo_)),
            (std::set<std::string>{".no_exist", "blobs", "refs", "snapshots"}));
  EXPECT_EQ(Names(root_ / ".locks"), std::set<std::string>{"models--org--model"});
  EXPECT_EQ(test::ReadAll(root_ / "CACHEDIR.TAG"), kCacheDirTagContent);
}

TEST_F(CacheStoreTest, ListReposIgnoresFoldersThatAreNotRepos) {
  test::PutBlob(*store_, Repo("b"), "x");
  test::PutBlob(*store_, Repo("a/z"), "x");
  fs::create_directories(root_ / "not-a-repo");
  fs::create_directories(root_ / "kernels--x--y");
  auto repos = store_->ListRepos();
  ASSERT_TRUE(repos.ok());
  ASSERT_EQ(repos->size(), 2u);
  EXPECT_EQ((*repos)[0].id(), "a/z");
  EXPECT_EQ((*repos)[1].id(), "b");
}

TEST(CacheStoreOpenTest, MissingRootWithoutCreateIsNotFound) {
  auto store = CacheStore::Open(
      {.root = test::NewTempDir() / "nope", .use_symlinks = true, .create_if_missing = false});
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound);
}

TEST(CacheStoreOpenTest, ProbeFindsSymlinksAndLeavesNothingBehind) {
  fs::path root = test::NewTempDir();
  ::unsetenv("HF_HUB_DISABLE_SYMLINKS");
  auto store = test::OpenStore(root, std::nullopt);
  EXPECT_TRUE(store->use_symlinks());
  EXPECT_TRUE(Names(root / ".locks").empty());
}

TEST(CacheStoreOpenTest, DisableSymlinksEnvAcceptsHubTrueValues) {
  for (const char* v : {"1", "ON", "yes", "True"}) {
    ::setenv("HF_HUB_DISABLE_SYMLINKS", v, 1);
    EXPECT_FALSE(test::OpenStore(test::NewTempDir(), std::nullopt)->use_symlinks()) << v;
  }
  ::setenv("HF_HUB_DISABLE_SYMLINKS", "0", 1);
  EXPECT_TRUE(test::OpenStore(test::NewTempDir(), std::nullopt)->use_symlinks());
  ::unsetenv("HF_HUB_DISABLE_SYMLINKS");
}

TEST(CacheStoreOpenTest, NoSymlinkModeCopiesTheBlobIntoTheSnapshot) {
  auto store = test::OpenStore(test::NewTempDir(), false);
  RepoId repo = Repo();
  Etag a = test::PutBlob(*store, repo, "content");
  ASSERT_TRUE(store->LinkSnapshotFile(repo, C(kCommit), P("d/f.txt"), a).ok());
  fs::path f = store->layout().SnapshotFile(repo, C(kCommit), P("d/f.txt"));
  EXPECT_FALSE(fs::is_symlink(f));
  EXPECT_EQ(test::ReadAll(f), "content");
  auto entry = store->StatSnapshotFile(repo, C(kCommit), P("d/f.txt"));
  ASSERT_TRUE(entry.ok());
  EXPECT_FALSE(entry->etag.has_value());
  EXPECT_EQ(Names(store->layout().RepoDir(repo)), (std::set<std::string>{"blobs", "snapshots"}));
}

TEST_F(CacheStoreTest, SweepRemovesStaleTempsButNotOnesWhoseBlobIsLocked) {
  Etag busy = E(Sha256Hex("busy"));
  auto kept = store_->NewBlobWriter(repo_, busy);
  auto lock = store_->LockBlob(repo_, busy);
  ASSERT_TRUE(kept.ok() && lock.ok());
  fs::path stale =
      store_->layout().BlobsDir(repo_) / (std::string(64, 'a') + ".0123abcd.incomplete");
  test::WriteText(stale, "partial");
  test::WriteText(store_->layout().RepoDir(repo_) / "link.89abcdef.tmp", "");
  test::WriteText(root_ / ".locks" / "CACHEDIR.TAG.00000000.tmp", "");
  test::WriteText(store_->layout().BlobsDir(repo_) / "notours.incomplete", "");
  auto removed = store_->SweepTempFiles(std::chrono::seconds(0));
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 3);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(kept->temp_path()));
  EXPECT_TRUE(fs::exists(store_->layout().BlobsDir(repo_) / "notours.incomplete"));
}

TEST_F(CacheStoreTest, SweepKeepsTempsYoungerThanMinAge) {
  test::WriteText(
      store_->layout().BlobsDir(repo_) / (std::string(64, 'a') + ".0123abcd.incomplete"),
      "partial");
  EXPECT_EQ(store_->SweepTempFiles(std::chrono::hours(1)).value(), 0);
}

}  // namespace
}  // namespace mc::cache
