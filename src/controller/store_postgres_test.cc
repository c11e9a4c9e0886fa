// What only the PostgreSQL store has: a server to log in to (passwords from the caller, never
// the URI), a connection that can be lost, controllers that start together, a schema that others
// can change, and the SQLSTATE map. The contract both stores share is store_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "controller/store.h"
#include "controller/store_test_util.h"
#include "postgres/pg_util.h"
#include "postgres/postgres_for_test.h"

namespace mc::controller::store_test {
namespace {

using postgres::PostgresForTest;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = PostgresForTest::Shared();
    ASSERT_TRUE(pg.ok()) << pg.status().ToString();
    pg_ = *pg;
    auto db = pg_->CreateDatabase();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = *db;
  }

  std::unique_ptr<ControllerStore> OpenStore() {
    auto store = ControllerStore::OpenPostgres(pg_->Uri(db_));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  void Exec(const std::string& db, const std::string& sql) {
    Status s = pg_->Exec(db, sql);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  PostgresForTest* pg_ = nullptr;
  std::string db_;
};

TEST_F(PostgresStoreTest, ControllersOpeningAnEmptyDatabaseAtOnceAllSucceed) {
  // Without the migration lock, all but one would fail to create tables the first made.
  constexpr int kStores = 4;
  std::vector<StatusOr<std::unique_ptr<ControllerStore>>> stores;
  for (int i = 0; i < kStores; ++i) stores.emplace_back(Status(StatusCode::kInternal, "not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kStores; ++i) {
    threads.emplace_back([&, i] { stores[i] = ControllerStore::OpenPostgres(pg_->Uri(db_)); });
  }
  for (auto& t : threads) t.join();
  for (auto& s : stores) ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE((*stores[0])->PutHost({.id = "h", .document_json = "{}", .last_seen_ms = 1}).ok());
  EXPECT_THAT(*(*stores[kStores - 1])->ListHosts(), SizeIs(1));  // one database, one schema
}

TEST_F(PostgresStoreTest, AUriThatCarriesAPasswordIsRefusedWithoutQuotingIt) {
  const std::string secret = "s3cr3t-in-argv";
  for (const std::string& uri :
       {"postgresql://mc:" + secret + "@localhost/" + db_, pg_->Uri(db_) + "&password=" + secret}) {
    auto store = ControllerStore::OpenDb(uri);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(store.status().message(), HasSubstr("--db-password-file"));
    EXPECT_THAT(store.status().message(), Not(HasSubstr(secret)));
  }
}

TEST_F(PostgresStoreTest, APasswordFromTheCallerLogsInAndAWrongOrMissingOneIsPermissionDenied) {
  const std::string password = "pw-from-a-file";
  Exec("postgres", "CREATE ROLE app LOGIN PASSWORD '" + password + "'");
  auto db = pg_->CreateDatabase("app");  // owned by app, so it may create the tables
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  const std::string uri = pg_->Uri(*db, "app");

  auto store = ControllerStore::OpenDb(uri, password);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE((*store)->PutHost({.id = "h", .document_json = "{}", .last_seen_ms = 1}).ok());

  auto wrong = ControllerStore::OpenDb(uri, std::string("not-the-password"));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kPermissionDenied) << wrong.status().ToString();
  EXPECT_THAT(wrong.status().message(), Not(HasSubstr("not-the-password")));
  auto none = ControllerStore::OpenDb(uri);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kPermissionDenied) << none.status().ToString();
  EXPECT_THAT(none.status().message(), HasSubstr("--db-password-file"));
}

TEST_F(PostgresStoreTest, AnUnreachableServerIsUnavailableNamingTheDatabase) {
  const std::string uri = "postgresql:///" + db_ + "?host=/nonexistent-socket-dir&user=mc";
  auto store = ControllerStore::OpenPostgres(uri);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable) << store.status().ToString();
  EXPECT_THAT(store.status().message(), HasSubstr("/nonexistent-socket-dir"));
  EXPECT_THAT(store.status().message(), HasSubstr(db_));
}

TEST_F(PostgresStoreTest, ALostConnectionIsUnavailableAndTheNextCallReconnects) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutHost({.id = "h", .document_json = "{}", .last_seen_ms = 1}).ok());
  // What a server restart or a failover does to the store's session.
  Exec("postgres",
       "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
       "WHERE application_name = 'modelcache-controller' AND datname = '" +
           db_ + "'");

  auto lost = store->ListHosts();
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), StatusCode::kUnavailable) << lost.status().ToString();
  auto again = store->ListHosts();  // a new session: the prepared statements are made again
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_THAT(*again, SizeIs(1));
}

// Schema version 1 as a build of that version created it (store_postgres_schema.cc,
// kMigrations[0]), with its version row.
constexpr char kSchemaVersion1[] = R"sql(
CREATE TABLE modelcache_schema (version bigint NOT NULL);
CREATE TABLE endpoints (
  id bytea PRIMARY KEY, name bytea NOT NULL, model bytea NOT NULL, repo bytea NOT NULL,
  revision bytea NOT NULL, "commit" bytea NOT NULL, hf_token bytea, command_json bytea NOT NULL,
  env_json bytea NOT NULL, gpu_type bytea NOT NULL, gpu_count bigint NOT NULL,
  workers_min bigint NOT NULL, workers_max bigint NOT NULL, idle_timeout_s bigint NOT NULL,
  scaler_type bytea NOT NULL, scaler_value double precision NOT NULL,
  execution_timeout_ms bigint NOT NULL, ttl_ms bigint NOT NULL, created_ms bigint NOT NULL,
  updated_ms bigint NOT NULL);
CREATE TABLE jobs (
  id bytea PRIMARY KEY, endpoint_id bytea NOT NULL, status bytea NOT NULL,
  input_json bytea NOT NULL, output_json bytea, error bytea, extra_json bytea NOT NULL,
  webhook bytea NOT NULL, low_priority boolean NOT NULL, execution_timeout_ms bigint NOT NULL,
  ttl_ms bigint NOT NULL, created_ms bigint NOT NULL, started_ms bigint, completed_ms bigint,
  worker_id bytea NOT NULL, retries bigint NOT NULL, stream_delivered bigint NOT NULL,
  insertion bigint GENERATED ALWAYS AS IDENTITY);
CREATE INDEX jobs_by_endpoint_status ON jobs (endpoint_id, status, created_ms);
CREATE TABLE stream_chunks (
  job_id bytea NOT NULL REFERENCES jobs (id) ON DELETE CASCADE, seq bigint NOT NULL,
  output_json bytea NOT NULL, PRIMARY KEY (job_id, seq));
CREATE TABLE workers (
  id bytea PRIMARY KEY, endpoint_id bytea NOT NULL, host_id bytea NOT NULL,
  "commit" bytea NOT NULL, phase bytea NOT NULL, key_sha256 bytea NOT NULL,
  message bytea NOT NULL, created_ms bigint NOT NULL, ready_ms bigint, started_ms bigint,
  first_take_ms bigint, last_ping_ms bigint, idle_since_ms bigint, stopped_ms bigint,
  cache_hit boolean NOT NULL, queue_ms bigint NOT NULL);
CREATE INDEX workers_by_endpoint ON workers (endpoint_id);
CREATE TABLE ledger (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, worker_id bytea NOT NULL,
  endpoint_id bytea NOT NULL, phase bytea NOT NULL, start_ms bigint NOT NULL, end_ms bigint,
  billed boolean NOT NULL);
CREATE INDEX ledger_by_endpoint ON ledger (endpoint_id);
CREATE TABLE api_keys (
  id bytea PRIMARY KEY, name bytea NOT NULL, sha256 bytea NOT NULL UNIQUE,
  created_ms bigint NOT NULL);
CREATE TABLE hosts (
  id bytea PRIMARY KEY, document_json bytea NOT NULL, last_seen_ms bigint NOT NULL);
CREATE TABLE webhook_outbox (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, job_id bytea NOT NULL,
  url bytea NOT NULL, body_json bytea NOT NULL, tries bigint NOT NULL,
  next_attempt_ms bigint NOT NULL);
INSERT INTO modelcache_schema VALUES (1);
)sql";

TEST_F(PostgresStoreTest, AVersion1DatabaseGainsLedgerTotalsFromItsClosedRows) {
  Exec(db_, kSchemaVersion1);
  Exec(db_,
       "INSERT INTO ledger (worker_id, endpoint_id, phase, start_ms, end_ms, billed) VALUES "
       "('w-1'::bytea, 'ep-a'::bytea, 'running'::bytea, 1000, 4000, true), "
       "('w-1'::bytea, 'ep-a'::bytea, 'idle'::bytea, 4000, 4500, true), "
       "('w-2'::bytea, 'ep-a'::bytea, 'initializing'::bytea, 0, 700, false), "
       "('w-1'::bytea, 'ep-a'::bytea, 'running'::bytea, 4500, NULL, true)");

  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto summary = store->SummarizeLedger();
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  ASSERT_THAT(summary->totals, SizeIs(2));
  EXPECT_EQ(summary->totals[0].endpoint_id, "ep-a");
  EXPECT_EQ(summary->totals[0].billed, false);
  EXPECT_EQ(summary->totals[0].closed_ms, 700);
  EXPECT_EQ(summary->totals[1].billed, true);
  EXPECT_EQ(summary->totals[1].closed_ms, 3500);
  ASSERT_THAT(summary->open, SizeIs(1));
  EXPECT_EQ(summary->open[0].start_ms, 4500);
  // New rows go on from the old ids.
  auto id = store->AppendLedger(Ledger("w-3", "ep-a", 5000));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, 5);
}

TEST_F(PostgresStoreTest, AMigrationThatFailsHalfwayWritesNothing) {
  // A version table without its row reads as version 0: migration 0 -> 1 then fails at its
  // first statement, after nothing, or at a later one: either way the transaction rolls back.
  Exec(db_, "CREATE TABLE modelcache_schema (version bigint NOT NULL)");
  auto backend_free_fingerprint = [&] {
    auto conn = postgres::Connection::Open(pg_->Uri(db_), std::nullopt, "test", "test");
    std::string out;
    EXPECT_TRUE(conn.ok());
    if (!conn.ok()) return out;
    EXPECT_TRUE((*conn)
                    ->Run("SELECT convert_to(relname, 'UTF8') FROM pg_class c JOIN pg_namespace n "
                          "ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY relname",
                          "list", {}, [&](postgres::Cols& c) { out += c.Bytes() + ","; })
                    .ok());
    return out;
  };
  const std::string before = backend_free_fingerprint();
  auto store = ControllerStore::OpenPostgres(pg_->Uri(db_));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(backend_free_fingerprint(), before);
  EXPECT_THAT(before, Not(HasSubstr("endpoints")));
}

TEST_F(PostgresStoreTest, AColumnChangedToAnotherTypeIsFailedPrecondition) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutHost({.id = "h", .document_json = "{}", .last_seen_ms = 1}).ok());
  Exec(db_, "ALTER TABLE hosts ALTER COLUMN last_seen_ms TYPE integer");
  store = OpenStore();  // a new session, whose statements see the new type
  ASSERT_NE(store, nullptr);
  auto hosts = store->ListHosts();
  ASSERT_FALSE(hosts.ok());
  EXPECT_EQ(hosts.status().code(), StatusCode::kFailedPrecondition) << hosts.status().ToString();
}

TEST(PostgresSqlStateTest, SqlStatesMapToWhatTheCallerShouldDo) {
  using postgres::CodeForSqlState;
  EXPECT_EQ(CodeForSqlState("40001"), StatusCode::kUnavailable);        // serialization failure
  EXPECT_EQ(CodeForSqlState("40P01"), StatusCode::kUnavailable);        // deadlock
  EXPECT_EQ(CodeForSqlState("55P03"), StatusCode::kUnavailable);        // lock timeout
  EXPECT_EQ(CodeForSqlState("08006"), StatusCode::kUnavailable);        // connection failure
  EXPECT_EQ(CodeForSqlState("57P01"), StatusCode::kUnavailable);        // admin shutdown
  EXPECT_EQ(CodeForSqlState("53300"), StatusCode::kUnavailable);        // too many connections
  EXPECT_EQ(CodeForSqlState("53100"), StatusCode::kResourceExhausted);  // disk full
  EXPECT_EQ(CodeForSqlState("23505"), StatusCode::kAlreadyExists);
  EXPECT_EQ(CodeForSqlState("23503"), StatusCode::kNotFound);
  EXPECT_EQ(CodeForSqlState("XX001"), StatusCode::kFailedPrecondition);  // data corrupted
  EXPECT_EQ(CodeForSqlState("42P01"), StatusCode::kFailedPrecondition);  // table missing
  EXPECT_EQ(CodeForSqlState("28P01"), StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeForSqlState("25006"), StatusCode::kPermissionDenied);  // read-only
  EXPECT_EQ(CodeForSqlState("42601"), StatusCode::kInternal);          // our syntax error
  EXPECT_EQ(CodeForSqlState(""), StatusCode::kInternal);
}

}  // namespace
}  // namespace mc::controller::store_test
