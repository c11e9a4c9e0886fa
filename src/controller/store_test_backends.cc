// The two stores under test (store_test_util.h).
#include <sqlite3.h>
#include <stdlib.h>

#include <functional>

#include "controller/store_test_util.h"
#include "postgres/pg_util.h"
#include "postgres/postgres_for_test.h"

namespace mc::controller::store_test {
namespace {

namespace fs = std::filesystem;
using postgres::PostgresForTest;

class SqliteBackend final : public StoreBackend {
 public:
  SqliteBackend() {
    std::string tmpl = ::testing::TempDir() + "controller_store_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << tmpl;
    dir_ = tmpl;
    path_ = dir_ / "controller.db";
  }
  ~SqliteBackend() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  StatusOr<std::unique_ptr<ControllerStore>> Open() override {
    return ControllerStore::Open(path_);
  }
  std::string Db() const override { return "sqlite:" + path_.string(); }
  std::string Name() const override { return path_.string(); }
  void RefuseWebhookInserts(bool refuse) override {
    RawExec(refuse ? "CREATE TRIGGER refuse BEFORE INSERT ON webhook_outbox BEGIN "
                     "SELECT RAISE(ABORT, 'no'); END"
                   : "DROP TRIGGER refuse");
  }
  void ForgeSchemaVersion(int version) override {
    RawExec("CREATE TABLE future (x); PRAGMA user_version = " + std::to_string(version));
  }
  void ForgeForeignTable() override { RawExec("CREATE TABLE other (x)"); }
  std::string Fingerprint() override {  // short, for a readable failure
    const std::string bytes = ReadAll(path_);
    return std::to_string(bytes.size()) + " bytes, hash " +
           std::to_string(std::hash<std::string>()(bytes));
  }

  void RawExec(const std::string& sql) override {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(raw);
    sqlite3_close(raw);
  }

 private:
  fs::path dir_;
  fs::path path_;
};

class PostgresBackend final : public StoreBackend {
 public:
  PostgresBackend(PostgresForTest& pg, std::string db) : pg_(pg), db_(std::move(db)) {}

  StatusOr<std::unique_ptr<ControllerStore>> Open() override {
    return ControllerStore::OpenPostgres(pg_.Uri(db_));
  }
  std::string Db() const override { return pg_.Uri(db_); }
  std::string Name() const override { return postgres::DescribeUri(pg_.Uri(db_)).value(); }
  void RefuseWebhookInserts(bool refuse) override {
    RawExec(refuse ? "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$BEGIN RAISE EXCEPTION 'no'; END$$; "
                     "CREATE TRIGGER refuse BEFORE INSERT ON webhook_outbox "
                     "FOR EACH ROW EXECUTE FUNCTION refuse()"
                   : "DROP TRIGGER refuse ON webhook_outbox; DROP FUNCTION refuse()");
  }
  void ForgeSchemaVersion(int version) override {
    RawExec(
        "CREATE TABLE modelcache_schema (version bigint NOT NULL); "
        "INSERT INTO modelcache_schema VALUES (" +
        std::to_string(version) + "); CREATE TABLE future (x int)");
  }
  void ForgeForeignTable() override { RawExec("CREATE TABLE other (x int)"); }
  std::string Fingerprint() override {
    auto conn = postgres::Connection::Open(pg_.Uri(db_), std::nullopt, "test", "store_test");
    if (!conn.ok()) return "cannot connect: " + conn.status().ToString();
    std::string out;
    auto read = [&](postgres::Cols& c) { out += c.Bytes() + "\n"; };
    Status s = (*conn)
                   ->Run(
                       "SELECT convert_to(c.relname || ':' || c.relkind, 'UTF8') "
                       "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = 'public' ORDER BY c.relname",
                       "list relations", {}, read)
                   .status();
    if (s.ok() && out.find("modelcache_schema:r") != std::string::npos) {
      s = (*conn)
              ->Run("SELECT convert_to(version::text, 'UTF8') FROM modelcache_schema",
                    "read versions", {}, read)
              .status();
    }
    return s.ok() ? out : s.ToString();
  }

  void RawExec(const std::string& sql) override {
    Status s = pg_.Exec(db_, sql);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }

 private:
  PostgresForTest& pg_;
  const std::string db_;
};

}  // namespace

std::string BackendName(Backend b) { return b == Backend::kSqlite ? "Sqlite" : "Postgres"; }

std::unique_ptr<StoreBackend> MakeBackend(Backend b) {
  if (b == Backend::kSqlite) return std::make_unique<SqliteBackend>();
  StatusOr<PostgresForTest*> pg = PostgresForTest::Shared();
  if (!pg.ok()) {
    ADD_FAILURE() << "no PostgreSQL to test against: " << pg.status().ToString();
    return nullptr;
  }
  StatusOr<std::string> db = (*pg)->CreateDatabase();
  if (!db.ok()) {
    ADD_FAILURE() << db.status().ToString();
    return nullptr;
  }
  return std::make_unique<PostgresBackend>(**pg, *db);
}

}  // namespace mc::controller::store_test
