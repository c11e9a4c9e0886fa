// What only the SQLite store has: a file (garbage, corrupt, in a missing directory) and the
// schema versions of earlier builds. The contract both stores share is store_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "controller/store.h"
#include "controller/store_test_util.h"

namespace mc::controller::store_test {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "controller_store_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "controller.db";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<ControllerStore> OpenStore() {
    auto store = ControllerStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // Runs `sql` on the file with a plain connection (to forge what a test needs).
  void RawExec(const std::string& sql) {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(raw);
    sqlite3_close(raw);
  }

  fs::path dir_;
  fs::path path_;
};

// Schema version 1 as a build of that version created it (store_sqlite.cc, kMigrations[0]),
// frozen here: migrations must take such a file forward whatever the current schema is.
constexpr char kSchemaVersion1[] = R"sql(
CREATE TABLE endpoints (
  id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL, model TEXT NOT NULL, repo TEXT NOT NULL,
  revision TEXT NOT NULL, "commit" TEXT NOT NULL, hf_token TEXT, command_json TEXT NOT NULL,
  env_json TEXT NOT NULL, gpu_type TEXT NOT NULL, gpu_count INTEGER NOT NULL,
  workers_min INTEGER NOT NULL, workers_max INTEGER NOT NULL, idle_timeout_s INTEGER NOT NULL,
  scaler_type TEXT NOT NULL, scaler_value REAL NOT NULL, execution_timeout_ms INTEGER NOT NULL,
  ttl_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL) STRICT;
CREATE TABLE jobs (
  id TEXT NOT NULL PRIMARY KEY, endpoint_id TEXT NOT NULL, status TEXT NOT NULL,
  input_json TEXT NOT NULL, output_json TEXT, error TEXT, extra_json TEXT NOT NULL,
  webhook TEXT NOT NULL, low_priority INTEGER NOT NULL CHECK (low_priority IN (0, 1)),
  execution_timeout_ms INTEGER NOT NULL, ttl_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  started_ms INTEGER, completed_ms INTEGER, worker_id TEXT NOT NULL, retries INTEGER NOT NULL,
  stream_delivered INTEGER NOT NULL) STRICT;
CREATE INDEX jobs_by_endpoint_status ON jobs (endpoint_id, status, created_ms);
CREATE TABLE stream_chunks (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE, seq INTEGER NOT NULL,
  output_json TEXT NOT NULL,
  PRIMARY KEY (job_id, seq)) STRICT, WITHOUT ROWID;
CREATE TABLE workers (
  id TEXT NOT NULL PRIMARY KEY, endpoint_id TEXT NOT NULL, host_id TEXT NOT NULL,
  "commit" TEXT NOT NULL, phase TEXT NOT NULL, key_sha256 TEXT NOT NULL, message TEXT NOT NULL,
  created_ms INTEGER NOT NULL, ready_ms INTEGER, started_ms INTEGER, first_take_ms INTEGER,
  last_ping_ms INTEGER, idle_since_ms INTEGER, stopped_ms INTEGER,
  cache_hit INTEGER NOT NULL CHECK (cache_hit IN (0, 1)), queue_ms INTEGER NOT NULL) STRICT;
CREATE INDEX workers_by_endpoint ON workers (endpoint_id);
CREATE TABLE ledger (
  id INTEGER PRIMARY KEY AUTOINCREMENT, worker_id TEXT NOT NULL, endpoint_id TEXT NOT NULL,
  phase TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER,
  billed INTEGER NOT NULL CHECK (billed IN (0, 1))) STRICT;
CREATE INDEX ledger_by_endpoint ON ledger (endpoint_id);
CREATE TABLE api_keys (
  id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL) STRICT;
CREATE TABLE hosts (
  id TEXT NOT NULL PRIMARY KEY, document_json TEXT NOT NULL, last_seen_ms INTEGER NOT NULL) STRICT;
PRAGMA user_version = 1;
)sql";

TEST_F(SqliteStoreTest, AVersion1DatabaseGainsTheOutboxAndKeepsItsRows) {
  RawExec(kSchemaVersion1);
  RawExec(
      "INSERT INTO jobs VALUES ('j-old', 'ep-a', 'COMPLETED', 'null', '1', NULL, '{}', "
      "'https://receiver.example/hook', 0, 600000, 86400000, 1000, 1100, 1200, 'w-1', 0, 0);"
      "INSERT INTO endpoints VALUES ('ep-old', 'old', 'org/m', 'org/m', 'main', 'c', NULL, "
      "'[\"python3\"]', '{}', '', 1, 0, 3, 5, 'QUEUE_DELAY', 4, 600000, 86400000, 1, 2);"
      "INSERT INTO api_keys VALUES ('key-aaaaaaaa', 'a', '" +
      std::string(64, '1') + "', 5)");

  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const auto old = store->GetJob("j-old");
  ASSERT_TRUE(old.ok() && old->has_value()) << old.status().ToString();
  EXPECT_EQ((*old)->status, "COMPLETED");
  EXPECT_EQ((*old)->webhook, "https://receiver.example/hook");
  EXPECT_THAT(*store->ListApiKeys(), SizeIs(1));
  // Rows from before tenants belong to the default one; keys from before roles stay admin.
  EXPECT_EQ((*old)->tenant, "default");
  EXPECT_EQ(store->ListApiKeys()->front().tenant, "default");
  EXPECT_EQ(store->ListApiKeys()->front().role, "admin");
  EXPECT_THAT(*store->ListWebhooks(), IsEmpty());  // version 1 recorded no deliveries
  // An endpoint from before images: a process worker, one whole model, no links.
  const auto ep = store->GetEndpoint("ep-old");
  ASSERT_TRUE(ep.ok() && ep->has_value()) << ep.status().ToString();
  EXPECT_EQ((*ep)->image, "");
  EXPECT_EQ((*ep)->args_json, "[]");
  EXPECT_EQ((*ep)->registry_auth, std::nullopt);
  EXPECT_EQ((*ep)->models_json, "[]");
  EXPECT_EQ((*ep)->links_json, "[]");
  EXPECT_EQ((*ep)->cached_replicas, 0);  // version 6: none kept
  const JobRecord j = Job("j-new", "ep-a", "COMPLETED", 2000);
  auto id = store->PutJobWithWebhook(j, Delivery(j, 2000));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_THAT(*store->ListWebhooks(), SizeIs(1));
  store.reset();

  // The file is at the current version now, and opens again as it is.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), 6);
  sqlite3_finalize(st);
  sqlite3_close(raw);
  store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(*store->ListWebhooks(), SizeIs(1));
}

TEST_F(SqliteStoreTest, AnOlderDatabaseGainsLedgerTotalsFromItsClosedRows) {
  RawExec(kSchemaVersion1);
  RawExec(
      "INSERT INTO ledger VALUES (1, 'w-1', 'ep-a', 'running', 1000, 4000, 1);"
      "INSERT INTO ledger VALUES (2, 'w-1', 'ep-a', 'idle', 4000, 4500, 1);"
      "INSERT INTO ledger VALUES (3, 'w-2', 'ep-a', 'initializing', 0, 700, 0);"
      "INSERT INTO ledger VALUES (4, 'w-1', 'ep-a', 'running', 4500, NULL, 1)");

  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto summary = store->SummarizeLedger();
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  ASSERT_THAT(summary->totals, SizeIs(2));
  EXPECT_EQ(summary->totals[0].billed, false);
  EXPECT_EQ(summary->totals[0].closed_ms, 700);
  EXPECT_EQ(summary->totals[1].billed, true);
  EXPECT_EQ(summary->totals[1].closed_ms, 3500);
  ASSERT_THAT(summary->open, SizeIs(1));
  EXPECT_EQ(summary->open[0].id, 4);
}

TEST_F(SqliteStoreTest, AGarbageFileIsFailedPreconditionNamingItAndLeftUntouched) {
  const std::string garbage = "this is not a database, just some text that is long enough\n";
  std::ofstream(path_) << garbage;

  auto store = ControllerStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(path_.string()));
  EXPECT_EQ(ReadAll(path_), garbage);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir_)) files.push_back(entry.path());
  EXPECT_THAT(files, ElementsAre(path_));  // nothing moved aside, no -wal or -shm
}

TEST_F(SqliteStoreTest, ACorruptDatabaseIsFailedPreconditionAndLeftUntouched) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(store->PutJob(Job("j-" + std::to_string(i), "ep-a", "IN_QUEUE", i)).ok());
    }
  }  // the last connection checkpoints the WAL into the file
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);  // page 2 onwards: the tables' b-trees, the header stays valid
    std::string junk(4 * 4096, '\xa5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  const std::string before = ReadAll(path_);

  auto store = ControllerStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status().ToString();
  EXPECT_THAT(store.status().message(), HasSubstr(path_.string()));
  EXPECT_EQ(ReadAll(path_), before);
}

TEST_F(SqliteStoreTest, TheFileIsOwnerOnlyAndSoAreTheDirectoriesMadeForIt) {
  auto mode = [](const fs::path& p) { return fs::status(p).permissions() & fs::perms::all; };
  const fs::path made = dir_ / "made" / "deeper";
  {
    auto store = ControllerStore::OpenDb("sqlite:" + (made / "controller.db").string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->PutJob(Job("j-1", "ep-a", "IN_QUEUE", 1)).ok());
    EXPECT_EQ(mode(made / "controller.db-wal"), fs::perms::owner_read | fs::perms::owner_write);
  }
  EXPECT_EQ(mode(made / "controller.db"), fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(mode(dir_ / "made"), fs::perms::owner_all);
  EXPECT_EQ(mode(made), fs::perms::owner_all);
  // A file an older build left readable by others is narrowed when opened.
  fs::permissions(made / "controller.db", fs::perms::group_read | fs::perms::others_read,
                  fs::perm_options::add);
  ASSERT_TRUE(ControllerStore::Open(made / "controller.db").ok());
  EXPECT_EQ(mode(made / "controller.db"), fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(SqliteStoreTest, AMissingDirectoryIsNotFound) {
  auto store = ControllerStore::Open(dir_ / "no-such-dir" / "controller.db");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound) << store.status().ToString();
}

}  // namespace
}  // namespace mc::controller::store_test
