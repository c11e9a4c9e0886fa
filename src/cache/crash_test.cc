// Crash tests: a child process writes into the cache and is SIGKILLed part-way; the parent then
// checks that the cache is consistent, that a re-import succeeds and that the sweep cleans up.
// Kill points are driven by progress marks the child sends through a pipe, never by sleeping.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <vector>

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

// SIGKILL leaves the page cache intact, so these tests check atomicity and ordering (what a
// killed writer leaves behind), not durability: that is tests/crash (power cuts, fsync by fsync).

// Kills a child `fraction` of a period after its `marks`-th progress mark, so that the kill lands
// wherever the child is by then: inside a write, an fsync, a rename, between two of them. The
// period is the time between its last two marks when `period` is zero (marks >= 2).
void KillAfter(pid_t pid, int progress_fd, int marks, double fraction,
               std::chrono::nanoseconds period = {}) {
  auto last = std::chrono::steady_clock::now();
  for (int i = 0; i < marks && ReadMark(progress_fd); ++i) {
    auto now = std::chrono::steady_clock::now();
    if (period.count() == 0 && i == marks - 1) period = now - last;
    last = now;
  }
  auto until = last + std::chrono::nanoseconds(static_cast<int64_t>(period.count() * fraction));
  while (std::chrono::steady_clock::now() < until) {
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

// Generation i of the published model: commit C(i) with files d/f0..d/f2, each with its own bytes.
constexpr int kFilesPerCommit = 3;
CommitSha CommitOf(uint64_t i) { return test::C(GitBlobSha1("commit " + std::to_string(i))); }
std::string ContentOf(uint64_t i, int file) {
  return std::string((16 << 10) + 977 * file + i, static_cast<char>('a' + (i + file) % 26));
}

// The child publishes generation after generation as the importer does: every blob (written in
// 4 KiB appends), then every link, then the ref. One mark per finished generation.
void PublishForever(const fs::path& root, int progress_fd) {
  auto store = CacheStore::Open({.root = root, .use_symlinks = true});
  if (!store.ok()) ::_exit(1);
  RepoId repo = Repo();
  for (uint64_t i = 0;; ++i) {
    std::vector<Etag> etags;
    for (int f = 0; f < kFilesPerCommit; ++f) {
      const std::string content = ContentOf(i, f);
      Etag etag = test::E(f % 2 ? Sha256Hex(content) : GitBlobSha1(content));
      auto writer = (*store)->NewBlobWriter(repo, etag);
      for (size_t off = 0; writer.ok() && off < content.size(); off += 4096) {
        if (!writer->Append(content.data() + off, std::min<size_t>(4096, content.size() - off))
                 .ok())
          ::_exit(1);
      }
      auto lock = (*store)->LockBlob(repo, etag);
      if (!writer.ok() || !lock.ok()) ::_exit(1);
      if (!(*store)->PublishBlob(std::move(*writer), content.size(), true).ok()) ::_exit(1);
      etags.push_back(etag);
    }
    for (int f = 0; f < kFilesPerCommit; ++f) {
      if (!(*store)->LinkSnapshotFile(repo, CommitOf(i), P("d/f" + std::to_string(f)), etags[f])
               .ok())
        ::_exit(1);
    }
    if (!(*store)->WriteRef(repo, R("main"), CommitOf(i)).ok()) ::_exit(1);
    SendMark(progress_fd);
  }
}

// main names a generation whose snapshot is complete: every file there, with its bytes.
void ExpectMainComplete(const fs::path& root, uint64_t max_generation) {
  auto store = test::OpenStore(root);
  auto main = store->ResolveRevision(Repo(), R("main"));
  if (!main.ok()) {  // killed before the first ref: nothing published yet, not a torn ref
    EXPECT_FALSE(fs::exists(store->layout().RefPath(Repo(), R("main")))) << main.status().ToString();
    return;
  }
  std::optional<uint64_t> gen;
  for (uint64_t i = 0; i <= max_generation && !gen; ++i) {
    if (CommitOf(i) == *main) gen = i;
  }
  ASSERT_TRUE(gen.has_value()) << "main names an unknown commit " << main->str();
  const fs::path snap = store->layout().SnapshotDir(Repo(), *main);
  for (int f = 0; f < kFilesPerCommit; ++f) {
    const fs::path file = snap / "d" / ("f" + std::to_string(f));
    EXPECT_TRUE(fs::exists(file)) << "main -> generation " << *gen << ": " << file << " missing";
    EXPECT_EQ(test::ReadAll(file), ContentOf(*gen, f)) << file;
  }
}

TEST(CrashLoopTest, PublisherKilledAtArbitraryMomentsLeavesMainOnACompleteSnapshot) {
  int run = 0;
  for (int k : {2, 3, 5}) {
    for (int tenth = 0; tenth < 10; ++tenth) {
      SCOPED_TRACE("killed " + std::to_string(tenth) + "/10 of a generation after " +
                   std::to_string(k) + " generations");
      fs::path root = test::NewTempDir();
      Pipe progress;
      pid_t pid = ::fork();
      if (pid == 0) {
        ::close(progress.r());
        PublishForever(root, progress.w());
      }
      KillAfter(pid, progress.r(), k, tenth / 10.0);
      ExpectConsistent(root, 0);
      ExpectMainComplete(root, k + 1000);
      auto store = test::OpenStore(root);
      ASSERT_TRUE(store->SweepTempFiles(std::chrono::seconds(0)).ok());
      ExpectNoTemps(root);
      ExpectConsistent(root, 0);
      ++run;
      if (HasFailure()) return;
    }
  }
  EXPECT_EQ(run, 30);
}

// An import running freely (no pause at progress marks) killed after a varying delay: main stays
// on the old import or moves to the new one, complete either way, and importing again repairs.
TEST_F(CrashTest, ImportKilledAtArbitraryMomentsLeavesTheOldOrTheNewCompleteSnapshot) {
  const fs::path src_new = test::NewTempDir() / "src-new";
  ASSERT_TRUE(testing::WriteModelFixture(
                  src_new, {.total_weight_bytes = 384 << 10, .shards = 2, .seed = 7})
                  .ok());
  auto [marks, old_commit] = ReferenceImport();
  // How long the import takes here: the kills are spread over that.
  std::chrono::nanoseconds duration;
  {
    fs::path root = test::NewTempDir();
    auto store = test::OpenStore(root);
    ASSERT_TRUE(ImportFolder(*store, *src_, Repo(), R("main")).ok());
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(ImportFolder(*store, src_new, Repo(), R("main")).ok());
    duration = std::chrono::steady_clock::now() - start;
  }
  for (int twelfth = 0; twelfth <= 12; ++twelfth) {
    SCOPED_TRACE("killed " + std::to_string(twelfth) + "/12 into the import");
    fs::path root = test::NewTempDir();
    {
      auto store = test::OpenStore(root);
      ASSERT_TRUE(ImportFolder(*store, *src_, Repo(), R("main")).ok());
    }
    Pipe started;
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(started.r());
      auto store = CacheStore::Open({.root = root, .use_symlinks = true});
      SendMark(started.w());
      bool ok = store.ok() && ImportFolder(**store, src_new, Repo(), R("main")).ok();
      ::_exit(ok ? 0 : 1);
    }
    KillAfter(pid, started.r(), 1, twelfth / 12.0, duration);
    ExpectConsistent(root, 7);
    auto store = test::OpenStore(root);
    auto main = store->ResolveRevision(Repo(), R("main"));
    ASSERT_TRUE(main.ok()) << "main lost";
    auto again = ImportFolder(*store, src_new, Repo(), R("main"));
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_TRUE(*main == old_commit || *main == again->commit) << main->str();
    ASSERT_TRUE(store->SweepTempFiles(std::chrono::seconds(0)).ok());
    ExpectNoTemps(root);
    ExpectConsistent(root, 7);
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace mc::cache
