#include "agent/state_db.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace mc::agent {

// Found by argument-dependent lookup, so in the rows' namespace (not the unnamed one).
bool operator==(const SnapshotRow& a, const SnapshotRow& b) {
  return a.repo == b.repo && a.commit == b.commit && a.size == b.size && a.files == b.files &&
         a.last_use == b.last_use && a.created == b.created;
}
bool operator==(const PinRow& a, const PinRow& b) {
  return a.repo == b.repo && a.commit == b.commit && a.owner == b.owner && a.created == b.created;
}
bool operator==(const DownloadRow& a, const DownloadRow& b) {
  return a.repo == b.repo && a.commit == b.commit && a.revision == b.revision &&
         a.filter == b.filter && a.selection == b.selection && a.needs_token == b.needs_token &&
         a.started == b.started;
}
bool operator==(const WorkerRow& a, const WorkerRow& b) {
  return a.id == b.id && a.repo == b.repo && a.commit == b.commit && a.gpus == b.gpus &&
         a.state == b.state && a.pid == b.pid && a.start_ticks == b.start_ticks &&
         a.exit_code == b.exit_code && a.signal == b.signal && a.message == b.message &&
         a.stdout_path == b.stdout_path && a.stderr_path == b.stderr_path &&
         a.created == b.created && a.started == b.started && a.ended == b.ended &&
         a.endpoint == b.endpoint && a.runtime == b.runtime && a.container == b.container &&
         a.image == b.image && a.image_digest == b.image_digest &&
         a.extra_models == b.extra_models && a.image_ms == b.image_ms &&
         a.download_ms == b.download_ms;
}
bool operator==(const ImageRow& a, const ImageRow& b) {
  return a.reference == b.reference && a.image_id == b.image_id && a.digest == b.digest &&
         a.size == b.size && a.pulled == b.pulled && a.last_use == b.last_use;
}

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kRepo[] = "models--org--name";
constexpr char kCommit[] = "0123456789abcdef0123456789abcdef01234567";
constexpr char kCommit2[] = "89abcdef0123456789abcdef0123456789abcdef";

TimePoint At(int64_t ms) { return TimePoint(milliseconds(ms)); }

SnapshotRow Snapshot(const std::string& repo, const std::string& commit, int64_t last_use_ms) {
  return {.repo = repo,
          .commit = commit,
          .size = 1234,
          .files = 3,
          .last_use = At(last_use_ms),
          .created = At(1000)};
}

PinRow Pin(const std::string& repo, const std::string& commit, const std::string& owner) {
  return {.repo = repo, .commit = commit, .owner = owner, .created = At(5000)};
}

class StateDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "state_db_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "state.db";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<StateDb> OpenDb() {
    auto db = StateDb::Open(path_);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    return db.ok() ? std::move(*db) : nullptr;
  }

  // Files in dir_ whose name starts with "state.db.bad-".
  std::vector<fs::path> MovedAside() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename().string().rfind("state.db.bad-", 0) == 0) out.push_back(e.path());
    }
    return out;
  }

  fs::path dir_;
  fs::path path_;
};

TEST_F(StateDbTest, CreatesAFreshDatabase) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(db->fresh());
  EXPECT_EQ(db->path(), path_);
  EXPECT_TRUE(fs::exists(path_));
}

TEST_F(StateDbTest, ReopenIsNotFreshAndKeepsRows) {
  {
    auto db = OpenDb();
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->UpsertSnapshot(Snapshot(kRepo, kCommit, 2000)).ok());
    ASSERT_TRUE(db->AddPin(Pin(kRepo, kCommit, "operator")).ok());
  }
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  EXPECT_FALSE(db->fresh());
  EXPECT_THAT(*db->ListSnapshots(), ElementsAre(Snapshot(kRepo, kCommit, 2000)));
  EXPECT_THAT(*db->ListPins(), ElementsAre(Pin(kRepo, kCommit, "operator")));
  EXPECT_TRUE(MovedAside().empty());
}

TEST_F(StateDbTest, OpenInAMissingDirectoryFailsWithoutMovingAnything) {
  auto db = StateDb::Open(dir_ / "missing" / "state.db");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kNotFound) << db.status().ToString();
  EXPECT_THAT(db.status().message(), ::testing::HasSubstr("missing/state.db"));
  EXPECT_TRUE(MovedAside().empty());
}

TEST_F(StateDbTest, UpsertGetAndListSnapshots) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->UpsertSnapshot(Snapshot(kRepo, kCommit2, 2000)).ok());
  ASSERT_TRUE(db->UpsertSnapshot(Snapshot(kRepo, kCommit, 2000)).ok());
  SnapshotRow changed = Snapshot(kRepo, kCommit, 1500);
  changed.size = uint64_t{1} << 40;
  changed.files = 7;
  ASSERT_TRUE(db->UpsertSnapshot(changed).ok());

  EXPECT_THAT(*db->GetSnapshot(kRepo, kCommit), ::testing::Optional(changed));
  EXPECT_EQ(*db->GetSnapshot(kRepo, "ffff"), std::nullopt);
  EXPECT_THAT(*db->ListSnapshots(), ElementsAre(changed, Snapshot(kRepo, kCommit2, 2000)));
}

TEST_F(StateDbTest, TouchSnapshotKeepsTheLatestTime) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->UpsertSnapshot(Snapshot(kRepo, kCommit, 2000)).ok());
  ASSERT_TRUE(db->TouchSnapshot(kRepo, kCommit, At(3000)).ok());
  ASSERT_TRUE(db->TouchSnapshot(kRepo, kCommit, At(2500)).ok());  // older: ignored
  EXPECT_EQ((*db->GetSnapshot(kRepo, kCommit))->last_use, At(3000));
}

TEST_F(StateDbTest, TouchUnknownSnapshotIsNotFound) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->TouchSnapshot(kRepo, kCommit, At(3000)).code(), StatusCode::kNotFound);
}

TEST_F(StateDbTest, DeleteSnapshotRemovesItsCompletionsButNotItsPins) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->UpsertSnapshot(Snapshot(kRepo, kCommit, 2000)).ok());
  ASSERT_TRUE(db->UpsertSnapshot(Snapshot(kRepo, kCommit2, 2000)).ok());
  ASSERT_TRUE(db->AddCompletion({kRepo, kCommit, "", At(2000)}).ok());
  ASSERT_TRUE(db->AddCompletion({kRepo, kCommit2, "", At(2000)}).ok());
  ASSERT_TRUE(db->AddPin(Pin(kRepo, kCommit, "operator")).ok());

  ASSERT_TRUE(db->DeleteSnapshot(kRepo, kCommit).ok());

  EXPECT_EQ(*db->GetSnapshot(kRepo, kCommit), std::nullopt);
  auto completions = *db->ListCompletions();
  ASSERT_THAT(completions, SizeIs(1));
  EXPECT_EQ(completions[0].commit, kCommit2);
  EXPECT_THAT(*db->ListPins(), ElementsAre(Pin(kRepo, kCommit, "operator")));
}

TEST_F(StateDbTest, AddCompletionIsIdempotentAndUpdatesTheTime) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->UpsertSnapshot(Snapshot(kRepo, kCommit, 2000)).ok());
  ASSERT_TRUE(db->AddCompletion({kRepo, kCommit, "*.json", At(2000)}).ok());
  ASSERT_TRUE(db->AddCompletion({kRepo, kCommit, "*.json", At(4000)}).ok());
  auto completions = *db->ListCompletions();
  ASSERT_THAT(completions, SizeIs(1));
  EXPECT_EQ(completions[0].filter, "*.json");
  EXPECT_EQ(completions[0].at, At(4000));
}

TEST_F(StateDbTest, AddCompletionOfASnapshotWithoutRowIsNotFound) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->AddCompletion({kRepo, kCommit, "", At(2000)}).code(), StatusCode::kNotFound);
  EXPECT_THAT(*db->ListCompletions(), IsEmpty());
}

TEST_F(StateDbTest, ReplaceSnapshotsDropsCompletionsOfSnapshotsNoLongerListed) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->UpsertSnapshot(Snapshot(kRepo, kCommit, 2000)).ok());
  ASSERT_TRUE(db->UpsertSnapshot(Snapshot(kRepo, kCommit2, 2000)).ok());
  ASSERT_TRUE(db->AddCompletion({kRepo, kCommit, "", At(2000)}).ok());
  ASSERT_TRUE(db->AddCompletion({kRepo, kCommit2, "", At(2000)}).ok());

  SnapshotRow kept = Snapshot(kRepo, kCommit2, 9000);
  SnapshotRow added = Snapshot("models--org--other", kCommit, 9000);
  ASSERT_TRUE(db->ReplaceSnapshots({kept, added}).ok());

  EXPECT_THAT(*db->ListSnapshots(), ElementsAre(kept, added));
  auto completions = *db->ListCompletions();
  ASSERT_THAT(completions, SizeIs(1));
  EXPECT_EQ(completions[0].commit, kCommit2);  // a listed snapshot keeps its completions
}

TEST_F(StateDbTest, AddPinIsIdempotent) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->AddPin(Pin(kRepo, kCommit, "operator")).ok());
  PinRow again = Pin(kRepo, kCommit, "operator");
  again.created = At(9000);
  ASSERT_TRUE(db->AddPin(again).ok());
  ASSERT_TRUE(db->AddPin(Pin(kRepo, kCommit, "worker:w1")).ok());
  // The first pin's creation time stays.
  EXPECT_THAT(*db->ListPins(),
              ElementsAre(Pin(kRepo, kCommit, "operator"), Pin(kRepo, kCommit, "worker:w1")));
}

TEST_F(StateDbTest, RemovePinRemovesOnlyThatOwnersPin) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->AddPin(Pin(kRepo, kCommit, "operator")).ok());
  ASSERT_TRUE(db->AddPin(Pin(kRepo, kCommit, "worker:w1")).ok());
  ASSERT_TRUE(db->RemovePin(kRepo, kCommit, "operator").ok());
  EXPECT_THAT(*db->ListPins(), ElementsAre(Pin(kRepo, kCommit, "worker:w1")));
}

TEST_F(StateDbTest, RemoveUnknownPinIsNotFound) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->AddPin(Pin(kRepo, kCommit, "operator")).ok());
  EXPECT_EQ(db->RemovePin(kRepo, kCommit, "worker:w1").code(), StatusCode::kNotFound);
}

TEST_F(StateDbTest, DownloadsArePutReplacedAndDeleted) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  DownloadRow all{.repo = kRepo,
                  .commit = kCommit,
                  .revision = "main",
                  .filter = "",
                  .selection = R"({"patterns":[]})",
                  .needs_token = false,
                  .started = At(1000)};
  DownloadRow json = all;
  json.filter = "*.json";
  ASSERT_TRUE(db->PutDownload(all).ok());
  ASSERT_TRUE(db->PutDownload(json).ok());
  all.needs_token = true;
  all.started = At(2000);
  ASSERT_TRUE(db->PutDownload(all).ok());
  EXPECT_THAT(*db->ListDownloads(), ElementsAre(all, json));

  ASSERT_TRUE(db->DeleteDownload(kRepo, kCommit, "").ok());
  EXPECT_THAT(*db->ListDownloads(), ElementsAre(json));
}

WorkerRow Worker(const std::string& id, int64_t created_ms) {
  return {.id = id,
          .repo = kRepo,
          .commit = kCommit,
          .gpus = "0,1",
          .state = "running",
          .pid = 4242,
          .start_ticks = uint64_t{1} << 40,
          .exit_code = std::nullopt,
          .signal = std::nullopt,
          .message = "",
          .stdout_path = "/state/workers/" + id + "/stdout",
          .stderr_path = "/state/workers/" + id + "/stderr",
          .created = At(created_ms),
          .started = std::nullopt,
          .ended = std::nullopt,
          .endpoint = "",
          .runtime = "process",
          .container = "",
          .image = "",
          .image_digest = "",
          .extra_models = "",
          .image_ms = std::nullopt,
          .download_ms = std::nullopt};
}

TEST_F(StateDbTest, WorkersRoundTripWithOptionalFields) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  WorkerRow running = Worker("w1", 1000);  // every optional unset
  WorkerRow exited = Worker("w2", 2000);   // set to zero: must not read back as unset
  exited.state = "exited";
  exited.exit_code = 0;
  exited.signal = 0;
  exited.started = At(0);
  exited.ended = At(3000);
  exited.message = "exited with code 0";
  exited.endpoint = "ep-1";
  exited.runtime = "podman";
  exited.container = "mc-0123abcd-w2";
  exited.image = "127.0.0.1:5000/org/worker:1";
  exited.image_digest = "sha256:" + std::string(64, 'e');
  exited.extra_models = "models--org--lora@" + std::string(40, 'b') + "\n";
  exited.image_ms = 0;
  exited.download_ms = 1234;
  ASSERT_TRUE(db->PutWorker(running).ok());
  ASSERT_TRUE(db->PutWorker(exited).ok());

  EXPECT_THAT(*db->GetWorker("w1"), ::testing::Optional(running));
  EXPECT_THAT(*db->GetWorker("w2"), ::testing::Optional(exited));
  EXPECT_EQ(*db->GetWorker("w3"), std::nullopt);
  EXPECT_THAT(*db->ListWorkers(), ElementsAre(running, exited));

  running.state = "stopping";  // put replaces by id
  ASSERT_TRUE(db->PutWorker(running).ok());
  EXPECT_EQ((*db->GetWorker("w1"))->state, "stopping");
}

TEST_F(StateDbTest, PruneWorkersDeletesOnlyWorkersThatEndedBefore) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  WorkerRow old_one = Worker("old", 1000);
  old_one.ended = At(2000);
  WorkerRow recent = Worker("recent", 1000);
  recent.ended = At(6000);
  WorkerRow running = Worker("running", 1000);
  for (const WorkerRow& w : {old_one, recent, running}) ASSERT_TRUE(db->PutWorker(w).ok());

  ASSERT_TRUE(db->PruneWorkers(At(5000)).ok());

  auto workers = db->ListWorkers();
  ASSERT_TRUE(workers.ok()) << workers.status().ToString();
  std::vector<std::string> ids;
  for (const WorkerRow& w : *workers) ids.push_back(w.id);
  EXPECT_THAT(ids, ElementsAre("recent", "running"));
}

TEST_F(StateDbTest, AFileThatIsNotADatabaseIsMovedAsideAndReplaced) {
  std::ofstream(path_) << "this is not a database, just some text that is long enough\n";
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(db->fresh());
  ASSERT_THAT(MovedAside(), SizeIs(1));
  std::ifstream aside(MovedAside()[0]);
  std::string first_line;
  std::getline(aside, first_line);
  EXPECT_EQ(first_line, "this is not a database, just some text that is long enough");
  EXPECT_TRUE(db->AddPin(Pin(kRepo, kCommit, "operator")).ok());
}

TEST_F(StateDbTest, ACorruptDatabaseIsMovedAsideAndReplaced) {
  {
    auto db = OpenDb();
    ASSERT_NE(db, nullptr);
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(db->AddPin(Pin(kRepo, kCommit, "worker:" + std::to_string(i))).ok());
    }
  }  // the last connection checkpoints the WAL into the file
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);  // page 2 onwards: the tables' b-trees, the header stays valid
    std::string junk(4 * 4096, '\xa5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(db->fresh());
  EXPECT_THAT(MovedAside(), SizeIs(1));
  EXPECT_THAT(*db->ListPins(), IsEmpty());
}

TEST_F(StateDbTest, ADatabaseWithANewerSchemaVersionIsMovedAside) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "CREATE TABLE future (x); PRAGMA user_version = 99", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(raw);

  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(db->fresh());
  ASSERT_THAT(MovedAside(), SizeIs(1));
  EXPECT_THAT(*db->ListPins(), IsEmpty());

  // The old file is kept whole for a newer build (or a human) to look at.
  ASSERT_EQ(sqlite3_open(MovedAside()[0].c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 99);
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

TEST_F(StateDbTest, ImagesArePutReplacedAndDeleted) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  ImageRow a{"127.0.0.1:5000/org/a:1", std::string(64, 'a'), "sha256:" + std::string(64, '1'),
             uint64_t{5} << 30, true, At(1000)};
  ImageRow b{"localhost/b:latest", std::string(64, 'b'), "", 42, false, At(2000)};
  ASSERT_TRUE(db->PutImage(a).ok());
  ASSERT_TRUE(db->PutImage(b).ok());
  EXPECT_THAT(*db->ListImages(), ElementsAre(a, b));
  a.last_use = At(3000);  // put replaces by reference
  ASSERT_TRUE(db->PutImage(a).ok());
  ASSERT_TRUE(db->DeleteImage(b.reference).ok());
  ASSERT_TRUE(db->DeleteImage("never/was:there").ok());
  EXPECT_THAT(*db->ListImages(), ElementsAre(a));
}

TEST_F(StateDbTest, AVersionOneDatabaseIsUpgradedAndKeepsItsWorkers) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, R"sql(
CREATE TABLE workers (
  id TEXT NOT NULL PRIMARY KEY, repo TEXT NOT NULL, "commit" TEXT NOT NULL, gpus TEXT NOT NULL,
  state TEXT NOT NULL, pid INTEGER NOT NULL, start_ticks INTEGER NOT NULL, exit_code INTEGER,
  signal INTEGER, message TEXT NOT NULL, stdout_path TEXT NOT NULL, stderr_path TEXT NOT NULL,
  created_ms INTEGER NOT NULL, started_ms INTEGER, ended_ms INTEGER) STRICT;
INSERT INTO workers VALUES ('old', 'models--org--m', 'c', '0', 'running', 7, 8, NULL, NULL, '',
                            '/o', '/e', 1000, 1000, NULL);
PRAGMA user_version = 1;)sql",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);

  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  EXPECT_FALSE(db->fresh());
  EXPECT_THAT(MovedAside(), IsEmpty());
  auto old = *db->GetWorker("old");
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->pid, 7);
  EXPECT_EQ(old->runtime, "process");  // what every worker of version 1 was
  EXPECT_EQ(old->image, "");
  EXPECT_EQ(old->image_ms, std::nullopt);
  EXPECT_TRUE(db->PutImage({"r/i:1", "id", "", 1, true, At(1)}).ok());
}

TEST_F(StateDbTest, TwoOpenersOfTheSameFileSeeEachOthersWrites) {
  auto agent = OpenDb();
  auto pin_command = OpenDb();
  ASSERT_NE(agent, nullptr);
  ASSERT_NE(pin_command, nullptr);
  EXPECT_TRUE(agent->fresh());
  EXPECT_FALSE(pin_command->fresh());

  ASSERT_TRUE(pin_command->AddPin(Pin(kRepo, kCommit, "operator")).ok());
  EXPECT_THAT(*agent->ListPins(), ElementsAre(Pin(kRepo, kCommit, "operator")));
  ASSERT_TRUE(agent->UpsertSnapshot(Snapshot(kRepo, kCommit, 2000)).ok());
  EXPECT_THAT(*pin_command->ListSnapshots(), ElementsAre(Snapshot(kRepo, kCommit, 2000)));
}

TEST_F(StateDbTest, ConcurrentWritesFromEightThreadsSucceed) {
  // Half the threads share one StateDb (its mutex), the other half another one on the same
  // file (SQLite's locks and the busy timeout), as the agent and `modelcache pin` would.
  auto a = OpenDb();
  auto b = OpenDb();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  constexpr int kThreads = 8;
  constexpr int kWrites = 50;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      StateDb& db = t % 2 == 0 ? *a : *b;
      for (int i = 0; i < kWrites; ++i) {
        std::string owner = "worker:" + std::to_string(t) + "-" + std::to_string(i);
        if (!db.AddPin(Pin(kRepo, kCommit, owner)).ok()) ++failures[t];
        if (!db.ReplaceSnapshots({Snapshot(kRepo, kCommit, i)}).ok()) ++failures[t];
        if (!db.ListPins().ok()) ++failures[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(failures, ::testing::Each(0));
  EXPECT_THAT(*a->ListPins(), SizeIs(kThreads * kWrites));
}

TEST_F(StateDbTest, HostileStringsRoundTripAsData) {
  auto db = OpenDb();
  ASSERT_NE(db, nullptr);
  const std::string hostile = "'; DROP TABLE pins; --";
  const std::string quotes = "o'brien \"quoted\" \\ back`tick` ?1 :name @x $y %";
  const std::string unicode = "модель-模型-🚀-é\u200b\n\ttab";
  PinRow pin = Pin(quotes, unicode, hostile);
  ASSERT_TRUE(db->AddPin(pin).ok());
  WorkerRow worker = Worker(hostile, 1000);
  worker.message = unicode + hostile;
  worker.gpus = quotes;
  ASSERT_TRUE(db->PutWorker(worker).ok());

  EXPECT_THAT(*db->ListPins(), ElementsAre(pin));
  EXPECT_THAT(*db->GetWorker(hostile), ::testing::Optional(worker));
  ASSERT_TRUE(db->RemovePin(quotes, unicode, hostile).ok());
  EXPECT_THAT(*db->ListPins(), IsEmpty());
}

}  // namespace
}  // namespace mc::agent
