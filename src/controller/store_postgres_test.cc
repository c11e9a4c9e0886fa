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
