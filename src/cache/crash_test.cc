// Crash tests: a child process writes into the cache and is SIGKILLed part-way; the parent then
// checks that the cache is consistent, that a re-import succeeds and that the sweep cleans up.
// Kill points are driven by progress marks the child sends through a pipe, never by sleeping.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/fs_util.h"
#include "cache/test_util.h"
#include "mc/cache/blob_hasher.h"
#include "mc/cache/cache_scan.h"
#include "mc/cache/importer.h"
#include "mc/testing/model_fixture.h"

namespace mc::cache {
namespace {

using test::P;
using test::R;
using test::Repo;
namespace fs = std::filesystem;

constexpr size_t kChunk = 32 << 10;

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { EXPECT_EQ(::pipe(fds), 0); }
  ~Pipe() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
  int r() const { return fds[0]; }
  int w() const { return fds[1]; }
};

void SendMark(int fd) {
  char c = 'x';
  while (::write(fd, &c, 1) < 0 && errno == EINTR) {
  }
}

bool ReadMark(int fd) {
  char c;
  ssize_t n;
  while ((n = ::read(fd, &c, 1)) < 0 && errno == EINTR) {
  }
  return n == 1;
}

// Every blob file is named by its content, every snapshot link resolves, every ref names an
// existing snapshot; a snapshot that a ref points to is complete (the ref is written last).
void ExpectConsistent(const fs::path& root, size_t files_per_snapshot) {
  auto store = test::OpenStore(root);
  auto scan = ScanCache(*store);
  ASSERT_TRUE(scan.ok());
  EXPECT_TRUE(scan->warnings.empty()) << scan->warnings.front();
  auto report = VerifyCache(*store, std::nullopt, std::nullopt);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->failed, 0);
  std::vector<RepoId> repos = store->ListRepos().value();
  for (const RepoId& repo : repos) {
    for (const auto& e : fs::directory_iterator(store->layout().BlobsDir(repo))) {
      auto etag = Etag::Parse(e.path().filename().string());
      if (!etag.ok()) continue;
      EXPECT_TRUE(VerifyFileAgainstEtag(e.path(), *etag).ok()) << e.path();
    }
    auto refs = store->ListRefs(repo).value();
    for (const auto& [name, commit] : refs) {
      auto files = store->ListSnapshotFiles(repo, commit);
      ASSERT_TRUE(files.ok());
      if (files_per_snapshot > 0) {
        EXPECT_EQ(files->size(), files_per_snapshot) << name;
      }
    }
  }
}

// No temp files remain anywhere in the cache.
void ExpectNoTemps(const fs::path& root) {
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    std::string name = it->path().filename().string();
    EXPECT_FALSE(name.ends_with(".incomplete")) << it->path();
    EXPECT_FALSE(internal::HasTempSuffix(name, ".tmp")) << it->path();
  }
}

class CrashTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    src_ = new fs::path(test::NewTempDir() / "src");
    ASSERT_TRUE(
        testing::WriteModelFixture(*src_, {.total_weight_bytes = 256 << 10, .shards = 2}).ok());
  }
  static void TearDownTestSuite() { delete src_; }

  // Number of progress marks of a full import, and its commit.
  static std::pair<int, CommitSha> ReferenceImport() {
    auto store = test::OpenStore(test::NewTempDir());
    int marks = 0;
    ImportOptions opts{.chunk_bytes = kChunk,
                       .on_progress = [&](const ImportProgress&) { ++marks; }};
    auto r = ImportFolder(*store, *src_, Repo(), R("main"), opts);
    EXPECT_TRUE(r.ok());
    return {marks, r->commit};
  }

  // Runs an import in a child that waits for an ack after each mark, and kills it at mark `k`.
  static void ImportAndKillAtMark(const fs::path& root, int k) {
    Pipe progress, ack;
    pid_t pid = ::fork();
    if (pid == 0) {
      auto store = CacheStore::Open({.root = root, .use_symlinks = true});
      ImportOptions opts{.chunk_bytes = kChunk, .on_progress = [&](const ImportProgress&) {
                           SendMark(progress.w());
                           ReadMark(ack.r());
                         }};
      bool ok = store.ok() && ImportFolder(**store, *src_, Repo(), R("main"), opts).ok();
      ::_exit(ok ? 0 : 1);
    }
    for (int i = 1; ReadMark(progress.r()); ++i) {
      if (i == k) {
        ::kill(pid, SIGKILL);
        break;
      }
      SendMark(ack.w());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
  }

  static fs::path* src_;
};

fs::path* CrashTest::src_ = nullptr;

TEST_F(CrashTest, ImportKilledAtAnyProgressMarkLeavesAConsistentCacheThatReimportRepairs) {
  auto [marks, commit] = ReferenceImport();
  ASSERT_GT(marks, 10);
  for (int k = 1; k <= marks; ++k) {
    SCOPED_TRACE("killed at mark " + std::to_string(k) + " of " + std::to_string(marks));
    fs::path root = test::NewTempDir();
    ImportAndKillAtMark(root, k);
    ExpectConsistent(root, 7);
    auto store = test::OpenStore(root);
    auto again = ImportFolder(*store, *src_, Repo(), R("main"));
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->commit, commit);
    ASSERT_TRUE(store->SweepTempFiles(std::chrono::seconds(0)).ok());
    ExpectNoTemps(root);
    ExpectConsistent(root, 7);
    EXPECT_EQ(store->ResolveRevision(Repo(), R("main")).value(), commit);
    if (HasFailure()) break;
  }
}

// The child publishes blobs, links and refs in a loop and is killed wherever it happens to be
// after k iterations were reported: inside a write, an fsync, a rename, anywhere.
void PublishForever(const fs::path& root, int progress_fd) {
  auto store = CacheStore::Open({.root = root, .use_symlinks = true});
  if (!store.ok()) ::_exit(1);
  RepoId repo = Repo();
  for (uint64_t i = 0;; ++i) {
    std::string content((64 << 10) + i, static_cast<char>('a' + i % 26));
    Etag etag = test::E(i % 2 ? Sha256Hex(content) : GitBlobSha1(content));
    CommitSha commit = test::C(GitBlobSha1(std::to_string(i % 5)));
    auto writer = (*store)->NewBlobWriter(repo, etag);
    for (size_t off = 0; writer.ok() && off < content.size(); off += 4096) {
      if (!writer->Append(content.data() + off, std::min<size_t>(4096, content.size() - off)).ok())
        ::_exit(1);
    }
    auto lock = (*store)->LockBlob(repo, etag);
    if (!writer.ok() || !lock.ok()) ::_exit(1);
    if (!(*store)->PublishBlob(std::move(*writer), content.size(), true).ok()) ::_exit(1);
    if (!(*store)->LinkSnapshotFile(repo, commit, P("d/f" + std::to_string(i % 7)), etag).ok())
      ::_exit(1);
    if (!(*store)->WriteRef(repo, R("main"), commit).ok()) ::_exit(1);
    SendMark(progress_fd);
  }
}

TEST(CrashLoopTest, PublisherKilledAtArbitraryMomentsNeverExposesAPartialBlob) {
  for (int k : {1, 2, 3, 5, 8, 13, 21, 34}) {
    SCOPED_TRACE("killed after " + std::to_string(k) + " iterations");
    fs::path root = test::NewTempDir();
    Pipe progress;
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(progress.r());
      PublishForever(root, progress.w());
    }
    for (int i = 0; i < k && ReadMark(progress.r()); ++i) {
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status));
    ExpectConsistent(root, 0);
    auto store = test::OpenStore(root);
    ASSERT_TRUE(store->SweepTempFiles(std::chrono::seconds(0)).ok());
    ExpectNoTemps(root);
    ExpectConsistent(root, 0);
  }
}

}  // namespace
}  // namespace mc::cache
