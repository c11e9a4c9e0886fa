// ControllerStore over SQLite: the schema (versioned with PRAGMA user_version; kMigrations[v]
// takes version v to v + 1), opening a file, and the methods of store.h. See store_sqlite.h.
#include "controller/store_sqlite.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "controller/store_sqlite_rows.h"

namespace mc::controller {

namespace fs = std::filesystem;
using sqlite::Cols;
using sqlite::ColumnList;
using sqlite::Connection;
using sqlite::SelectSql;
using sqlite::Statement;
using sqlite::UpsertSql;
using namespace sqlite_rows;  // NOLINT: the column lists and row codecs

namespace {

constexpr int64_t kSchemaVersion = 6;
constexpr int kBusyTimeoutMs = 5000;

constexpr const char* kMigrations[kSchemaVersion] = {
    // 0 -> 1. Jobs have no foreign key to endpoints: DeleteEndpoint deletes them explicitly (an
    // upsert of the endpoint must never cascade). Chunks belong to their job.
    R"sql(
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
)sql",
    // 1 -> 2. The webhook outbox. No foreign key to jobs: a delivery keeps its own body and
    // outlives its job's row (retention, endpoint deletion). AUTOINCREMENT: ids are the order jobs
    // ended and are never reused, across restarts too.
    R"sql(
CREATE TABLE webhook_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, url TEXT NOT NULL,
  body_json TEXT NOT NULL, tries INTEGER NOT NULL, next_attempt_ms INTEGER NOT NULL) STRICT;
)sql",
    // 2 -> 3. Container workers: the endpoint's image, CMD, registry credentials (a secret, like
    // hf_token), models and links; the worker's image and download parts of its cold start.
    R"sql(
ALTER TABLE endpoints ADD COLUMN image TEXT NOT NULL DEFAULT '';
ALTER TABLE endpoints ADD COLUMN args_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE endpoints ADD COLUMN registry_auth TEXT;
ALTER TABLE endpoints ADD COLUMN models_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE endpoints ADD COLUMN links_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE workers ADD COLUMN image_ms INTEGER;
ALTER TABLE workers ADD COLUMN download_ms INTEGER;
)sql",
    // 3 -> 4. Retention and /metrics without reading the ledger: the closed rows' time summed
    // per endpoint and billing (kept when old rows are pruned; filled from the rows there are),
    // an index on the open rows, and the times retention deletes by.
    R"sql(
CREATE TABLE ledger_totals (
  endpoint_id TEXT NOT NULL, billed INTEGER NOT NULL CHECK (billed IN (0, 1)),
  closed_ms INTEGER NOT NULL, PRIMARY KEY (endpoint_id, billed)) STRICT, WITHOUT ROWID;
INSERT INTO ledger_totals (endpoint_id, billed, closed_ms)
  SELECT endpoint_id, billed, sum(end_ms - start_ms) FROM ledger WHERE end_ms IS NOT NULL
  GROUP BY endpoint_id, billed;
CREATE INDEX ledger_open ON ledger (id) WHERE end_ms IS NULL;
CREATE INDEX ledger_by_end ON ledger (end_ms) WHERE end_ms IS NOT NULL;
CREATE INDEX workers_by_stopped ON workers (stopped_ms) WHERE stopped_ms IS NOT NULL;
)sql",
    // 4 -> 5. Tenants and roles (rows written before belong to the default tenant; keys made
    // before roles existed could do everything, so they stay admin), an endpoint's sealed
    // secret env, and the hosts an operator enrolled (credential sealed) with their scheduling
    // state (cordoned, draining).
    R"sql(
ALTER TABLE endpoints ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE endpoints ADD COLUMN secret_env TEXT;
ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE workers ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE ledger ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE api_keys ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
CREATE TABLE host_enrollments (
  host_id TEXT NOT NULL PRIMARY KEY, credential TEXT NOT NULL, schedule TEXT NOT NULL,
  created_ms INTEGER NOT NULL) STRICT;
)sql",
    // 5 -> 6. An endpoint's cached replicas: hosts that keep its commit at zero workers.
    R"sql(
ALTER TABLE endpoints ADD COLUMN cached_replicas INTEGER NOT NULL DEFAULT 0;
)sql",
};

// ---- opening ----

// Brings the schema to kSchemaVersion, re-reading the version under the write lock.
Status Migrate(Connection& db) {
  return db.InTransaction([&]() -> Status {
    MC_ASSIGN_OR_RETURN(int64_t version, db.QueryInt("PRAGMA user_version", "read schema version"));
    if (version > kSchemaVersion) {
      return FailedPreconditionError(db.Context("schema version " + std::to_string(version) +
                                                " is newer than this build's " +
                                                std::to_string(kSchemaVersion)));
    }
    if (version == 0) {
      MC_ASSIGN_OR_RETURN(int64_t objects,
                          db.QueryInt("SELECT count(*) FROM sqlite_schema", "read schema"));
      if (objects > 0) {
        return FailedPreconditionError(
            db.Context("tables but no schema version: not a controller db"));
      }
    }
    for (int64_t v = version; v < kSchemaVersion; ++v) {
      MC_RETURN_IF_ERROR(db.Exec(kMigrations[v], "migrate schema to " + std::to_string(v + 1)));
    }
    return db.Exec("PRAGMA user_version=" + std::to_string(kSchemaVersion), "set schema version");
  });
}

// Checks the file, then sets it up. Nothing is written to a file that is not a database, is
// corrupt or has a newer schema: the checks come before the switch to WAL (which rewrites the
// header of a rollback-journal file) and before any migration.
Status SetUp(Connection& db) {
  // The first statement that reads the header fails with SQLITE_NOTADB on a file that is not a
  // database; sqlite::CodeFor maps that to kFailedPrecondition.
  MC_ASSIGN_OR_RETURN(int64_t version, db.QueryInt("PRAGMA user_version", "read schema version"));
  if (version > kSchemaVersion) {
    return FailedPreconditionError(db.Context("schema version " + std::to_string(version) +
                                              " is newer than this build's " +
                                              std::to_string(kSchemaVersion)));
  }
  if (version == 0) {  // before the switch to WAL, which would write to someone else's file
    MC_ASSIGN_OR_RETURN(int64_t objects,
                        db.QueryInt("SELECT count(*) FROM sqlite_schema", "read schema"));
    if (objects > 0) {
      return FailedPreconditionError(
          db.Context("tables but no schema version: not a controller db"));
    }
  }
  // Reads every page once per start; the job and chunk tables are bounded by the jobs' TTL.
  std::string check;
  MC_RETURN_IF_ERROR(db.Run("PRAGMA quick_check", "quick check", nullptr, [&](const Statement& st) {
    if (check.empty()) check = st.Text(0);
  }));
  if (check != "ok") return FailedPreconditionError(db.Context("quick check: " + check));

  std::string mode;
  MC_RETURN_IF_ERROR(db.Run("PRAGMA journal_mode=WAL", "set WAL journal", nullptr,
                            [&](const Statement& st) { mode = st.Text(0); }));
  if (mode != "wal") {
    spdlog::warn("{}: journal mode is {}, not wal (the file system may not support it)",
                 db.Context(""), mode);
  }
  // synchronous=NORMAL in WAL mode: a commit is durable once the OS has the WAL write, not the
  // disk. A power loss or kernel crash may lose the last transactions, but never corrupts the
  // file; a crash of the controller process loses nothing committed, and process crashes are
  // what the controller's crash-safety story covers.
  // secure_delete: deleted and overwritten content is zeroed in the file, so that a value
  // replaced by its sealed form (and a deleted row) leaves no copy in free pages.
  MC_RETURN_IF_ERROR(db.Exec(
      "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON", "pragmas"));
  // No checkpoint in a commit (it would fsync in the middle of a /run): a second connection
  // checkpoints in the background (SqliteControllerStore::Checkpoints).
  MC_RETURN_IF_ERROR(db.Exec("PRAGMA wal_autocheckpoint=0", "pragmas"));
  return Migrate(db);
}

}  // namespace

// ---- endpoints ----

Status SqliteControllerStore::PutEndpoint(const EndpointRecord& e) {
  static const std::string sql = UpsertSql("endpoints", kEndpointColumns);
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Run(sql, "put endpoint " + e.id, [&](Statement& st) { BindEndpoint(st, e); });
}

StatusOr<std::optional<EndpointRecord>> SqliteControllerStore::GetEndpoint(
    const std::string& id) const {
  static const std::string select = SelectSql("endpoints", kEndpointColumns);
  std::lock_guard<std::mutex> lock(mu_);
  return GetById(select, id, "get endpoint " + id, &ReadEndpoint);
}

StatusOr<std::vector<EndpointRecord>> SqliteControllerStore::ListEndpoints() const {
  static const std::string sql =
      SelectSql("endpoints", kEndpointColumns) + " ORDER BY created_ms, id";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list endpoints", nullptr, &ReadEndpoint);
}

Status SqliteControllerStore::DeleteEndpoint(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string op = "delete endpoint " + id;
  auto bind = [&](Statement& st) { st.Bind(id); };
  return db_->InTransaction([&]() -> Status {
    // The jobs' chunks go with them through ON DELETE CASCADE.
    MC_RETURN_IF_ERROR(db_->Run("DELETE FROM jobs WHERE endpoint_id = ?1", op + ": jobs", bind));
    return db_->Run("DELETE FROM endpoints WHERE id = ?1", op, bind);
  });
}

// ---- jobs and chunks ----

Status SqliteControllerStore::PutJob(const JobRecord& j) {
  static const std::string sql = UpsertSql("jobs", kJobColumns);
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Run(sql, "put job " + j.id, [&](Statement& st) { BindJob(st, j); });
}

StatusOr<std::optional<JobRecord>> SqliteControllerStore::GetJob(const std::string& id) const {
  static const std::string select = SelectSql("jobs", kJobColumns);
  std::lock_guard<std::mutex> lock(mu_);
  return GetById(select, id, "get job " + id, &ReadJob);
}

StatusOr<std::vector<JobRecord>> SqliteControllerStore::ListJobs(
    const std::string& endpoint_id, const std::vector<std::string>& statuses) const {
  // One cached statement per shape (endpoint or not, number of statuses): few in practice.
  // Plain `endpoint_id = ?` (not a "match all if empty" trick) so the index serves it.
  std::string sql = SelectSql("jobs", kJobColumns) + " WHERE 1";
  if (!endpoint_id.empty()) sql += " AND endpoint_id = ?";
  if (!statuses.empty()) {
    sql += " AND status IN (";
    for (size_t i = 0; i < statuses.size(); ++i) sql += i > 0 ? ", ?" : "?";
    sql += ")";
  }
  sql += " ORDER BY created_ms, rowid";  // rowid: insertion order among equal times
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(
      sql, "list jobs",
      [&](Statement& st) {
        if (!endpoint_id.empty()) st.Bind(endpoint_id);
        for (const std::string& s : statuses) st.Bind(s);
      },
      &ReadJob);
}

Status SqliteControllerStore::DeleteJob(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  // Its chunks go with it through ON DELETE CASCADE, in the same statement.
  return db_->Run("DELETE FROM jobs WHERE id = ?1", "delete job " + id,
                  [&](Statement& st) { st.Bind(id); });
}

Status SqliteControllerStore::AppendChunk(const StreamChunk& c) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string op = "append chunk " + std::to_string(c.seq) + " to job " + c.job_id;
  auto bind_job = [&](Statement& st) { st.Bind(c.job_id); };
  return db_->InTransaction([&]() -> Status {
    MC_ASSIGN_OR_RETURN(
        int64_t job_exists,
        db_->QueryInt("SELECT EXISTS (SELECT 1 FROM jobs WHERE id = ?1)", op, bind_job));
    if (!job_exists) return NotFoundError(db_->Context(op + ": no such job"));
    // Seqs are 0..n-1: the next is max + 1, one step down the primary key (count(*) would walk
    // every earlier chunk of the job).
    MC_ASSIGN_OR_RETURN(int64_t next,
                        db_->QueryInt("SELECT coalesce(max(seq) + 1, 0) FROM stream_chunks "
                                      "WHERE job_id = ?1",
                                      op, bind_job));
    if (c.seq != next) {
      return InvalidArgumentError(
          db_->Context(op + ": out of order, the next seq is " + std::to_string(next)));
    }
    return db_->Run("INSERT INTO stream_chunks (job_id, seq, output_json) VALUES (?1, ?2, ?3)", op,
                    [&](Statement& st) { st.Bind(c.job_id).Bind(c.seq).Bind(c.output_json); });
  });
}

StatusOr<std::vector<StreamChunk>> SqliteControllerStore::ListChunks(const std::string& job_id,
                                                                     int64_t from_seq) const {
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(
      "SELECT job_id, seq, output_json FROM stream_chunks WHERE job_id = ?1 AND seq >= ?2 "
      "ORDER BY seq",
      "list chunks of job " + job_id, [&](Statement& st) { st.Bind(job_id).Bind(from_seq); },
      +[](const Statement& st) {
        return StreamChunk{.job_id = st.Text(0), .seq = st.Int(1), .output_json = st.Text(2)};
      });
}

// ---- webhook outbox ----

StatusOr<int64_t> SqliteControllerStore::PutJobWithWebhook(const JobRecord& j,
                                                           const WebhookDelivery& d) {
  static const std::string put_job = UpsertSql("jobs", kJobColumns);
  // The op names the job, never the URL (it may carry a secret).
  const std::string op = "put job " + j.id + " and its webhook delivery";
  std::lock_guard<std::mutex> lock(mu_);
  int64_t id = 0;
  MC_RETURN_IF_ERROR(db_->InTransaction([&]() -> Status {
    MC_RETURN_IF_ERROR(db_->Run(put_job, op, [&](Statement& st) { BindJob(st, j); }));
    MC_RETURN_IF_ERROR(db_->Run(
        "INSERT INTO webhook_outbox (job_id, url, body_json, tries, next_attempt_ms) "
        "VALUES (?1, ?2, ?3, ?4, ?5)",
        op, [&](Statement& st) {
          st.Bind(d.job_id).Bind(d.url).Bind(d.body_json).Bind(d.tries).Bind(d.next_attempt_ms);
        }));
    id = db_->LastInsertRowid();  // still ours: the mutex is held
    return Status::Ok();
  }));
  return id;
}

StatusOr<std::vector<WebhookDelivery>> SqliteControllerStore::ListWebhooks() const {
  static const std::string sql = SelectSql("webhook_outbox", kWebhookColumns) + " ORDER BY id";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list webhook deliveries", nullptr, &ReadWebhook);
}

Status SqliteControllerStore::UpdateWebhook(int64_t id, int tries, int64_t next_attempt_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string op = "update webhook delivery " + std::to_string(id);
  MC_RETURN_IF_ERROR(
      db_->Run("UPDATE webhook_outbox SET tries = ?2, next_attempt_ms = ?3 WHERE id = ?1", op,
               [&](Statement& st) { st.Bind(id).Bind(tries).Bind(next_attempt_ms); }));
  if (db_->Changes() == 0) return NotFoundError(db_->Context(op + ": no such delivery"));
  return Status::Ok();
}

Status SqliteControllerStore::DeleteWebhook(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Run("DELETE FROM webhook_outbox WHERE id = ?1",
                  "delete webhook delivery " + std::to_string(id),
                  [&](Statement& st) { st.Bind(id); });
}

// ---- workers and ledger ----

Status SqliteControllerStore::PutWorker(const WorkerRecord& w) {
  static const std::string sql = UpsertSql("workers", kWorkerColumns);
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Run(sql, "put worker " + w.id, [&](Statement& st) { BindWorker(st, w); });
}

StatusOr<std::optional<WorkerRecord>> SqliteControllerStore::GetWorker(
    const std::string& id) const {
  static const std::string select = SelectSql("workers", kWorkerColumns);
  std::lock_guard<std::mutex> lock(mu_);
  return GetById(select, id, "get worker " + id, &ReadWorker);
}

StatusOr<std::vector<WorkerRecord>> SqliteControllerStore::ListWorkers(
    const std::string& endpoint_id, bool live_only) const {
  std::string sql = SelectSql("workers", kWorkerColumns) + " WHERE 1";
  if (!endpoint_id.empty()) sql += " AND endpoint_id = ?";
  if (live_only) sql += " AND phase NOT IN ('stopped', 'failed')";
  sql += " ORDER BY created_ms, id";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(
      sql, "list workers",
      [&](Statement& st) {
        if (!endpoint_id.empty()) st.Bind(endpoint_id);
      },
      &ReadWorker);
}

StatusOr<int64_t> SqliteControllerStore::AppendLedger(const LedgerRow& row) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t id = 0;
  MC_RETURN_IF_ERROR(db_->InTransaction([&]() -> Status {
    MC_RETURN_IF_ERROR(
        db_->Run("INSERT INTO ledger (worker_id, endpoint_id, phase, start_ms, end_ms, billed, "
                 "tenant) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                 "append ledger row for worker " + row.worker_id, [&](Statement& st) {
                   st.Bind(row.worker_id).Bind(row.endpoint_id).Bind(row.phase);
                   st.Bind(row.start_ms).Bind(row.end_ms).Bind(row.billed).Bind(row.tenant);
                 }));
    id = db_->LastInsertRowid();  // still ours: the mutex is held
    if (!row.end_ms) return Status::Ok();
    return AddToTotalsLocked(row.endpoint_id, row.billed, *row.end_ms - row.start_ms);
  }));
  return id;
}

Status SqliteControllerStore::CloseLedger(int64_t id, int64_t end_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string op = "close ledger row " + std::to_string(id);
  return db_->InTransaction([&]() -> Status {
    std::optional<LedgerRow> row;
    MC_RETURN_IF_ERROR(db_->Run(
        SelectSql("ledger", kLedgerColumns) + " WHERE id = ?1", op,
        [&](Statement& st) { st.Bind(id); }, [&](const Statement& st) { row = ReadLedger(st); }));
    if (!row) return NotFoundError(db_->Context(op + ": no such row"));
    MC_RETURN_IF_ERROR(db_->Run("UPDATE ledger SET end_ms = ?2 WHERE id = ?1", op,
                                [&](Statement& st) { st.Bind(id).Bind(end_ms); }));
    // Closing again replaces the row's earlier time in the totals.
    const int64_t before = row->end_ms ? *row->end_ms - row->start_ms : 0;
    return AddToTotalsLocked(row->endpoint_id, row->billed, end_ms - row->start_ms - before);
  });
}

StatusOr<std::vector<LedgerRow>> SqliteControllerStore::ListLedger(
    const std::string& endpoint_id) const {
  static const std::string all = SelectSql("ledger", kLedgerColumns) + " ORDER BY id";
  static const std::string of_endpoint =
      SelectSql("ledger", kLedgerColumns) + " WHERE endpoint_id = ?1 ORDER BY id";
  std::lock_guard<std::mutex> lock(mu_);
  if (endpoint_id.empty()) return Collect(all, "list ledger", nullptr, &ReadLedger);
  return Collect(
      of_endpoint, "list ledger of endpoint " + endpoint_id,
      [&](Statement& st) { st.Bind(endpoint_id); }, &ReadLedger);
}

// ---- API keys ----

Status SqliteControllerStore::AddApiKey(const ApiKeyRecord& k) {
  static const std::string sql =
      "INSERT INTO api_keys (" + ColumnList(kApiKeyColumns) + ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
  std::lock_guard<std::mutex> lock(mu_);
  // A taken id or hash fails the PRIMARY KEY / UNIQUE constraint: AlreadyExists.
  return db_->Run(sql, "add api key " + k.id, [&](Statement& st) {
    st.Bind(k.id).Bind(k.name).Bind(k.sha256).Bind(k.created_ms).Bind(k.tenant).Bind(k.role);
  });
}

StatusOr<std::vector<ApiKeyRecord>> SqliteControllerStore::ListApiKeys() const {
  static const std::string sql = SelectSql("api_keys", kApiKeyColumns) + " ORDER BY created_ms, id";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list api keys", nullptr, &ReadApiKey);
}

Status SqliteControllerStore::DeleteApiKey(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string op = "delete api key " + id;
  MC_RETURN_IF_ERROR(
      db_->Run("DELETE FROM api_keys WHERE id = ?1", op, [&](Statement& st) { st.Bind(id); }));
  if (db_->Changes() == 0) return NotFoundError(db_->Context(op + ": no such key"));
  return Status::Ok();
}

StatusOr<bool> SqliteControllerStore::HasApiKeySha256(const std::string& sha256_hex) const {
  std::lock_guard<std::mutex> lock(mu_);
  MC_ASSIGN_OR_RETURN(
      int64_t found, db_->QueryInt("SELECT EXISTS (SELECT 1 FROM api_keys WHERE sha256 = ?1)",
                                   "look up api key", [&](Statement& st) { st.Bind(sha256_hex); }));
  return found != 0;
}

StatusOr<std::optional<ApiKeyRecord>> SqliteControllerStore::FindApiKeySha256(
    const std::string& sha256_hex) const {
  static const std::string sql = SelectSql("api_keys", kApiKeyColumns) + " WHERE sha256 = ?1";
  std::lock_guard<std::mutex> lock(mu_);
  MC_ASSIGN_OR_RETURN(
      std::vector<ApiKeyRecord> found,
      Collect(sql, "look up api key", [&](Statement& st) { st.Bind(sha256_hex); }, &ReadApiKey));
  if (found.empty()) return std::optional<ApiKeyRecord>();
  return std::optional<ApiKeyRecord>(std::move(found.front()));
}

// ---- hosts ----

Status SqliteControllerStore::PutHost(const HostRecord& h) {
  static const std::string sql = UpsertSql("hosts", kHostColumns);
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Run(sql, "put host " + h.id,
                  [&](Statement& st) { st.Bind(h.id).Bind(h.document_json).Bind(h.last_seen_ms); });
}

StatusOr<std::vector<HostRecord>> SqliteControllerStore::ListHosts() const {
  static const std::string sql = SelectSql("hosts", kHostColumns) + " ORDER BY id";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list hosts", nullptr, &ReadHost);
}

Status SqliteControllerStore::PutHostEnrollment(const HostEnrollment& e) {
  static const std::string sql = UpsertSql("host_enrollments", kEnrollmentColumns);
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Run(sql, "put host enrollment " + e.host_id, [&](Statement& st) {
    st.Bind(e.host_id).Bind(e.credential).Bind(e.schedule).Bind(e.created_ms);
  });
}

StatusOr<std::optional<HostEnrollment>> SqliteControllerStore::GetHostEnrollment(
    const std::string& host_id) const {
  static const std::string sql =
      SelectSql("host_enrollments", kEnrollmentColumns) + " WHERE host_id = ?1";
  std::lock_guard<std::mutex> lock(mu_);
  MC_ASSIGN_OR_RETURN(std::vector<HostEnrollment> found,
                      Collect(
                          sql, "get host enrollment " + host_id,
                          [&](Statement& st) { st.Bind(host_id); }, &ReadEnrollment));
  if (found.empty()) return std::optional<HostEnrollment>();
  return std::optional<HostEnrollment>(std::move(found.front()));
}

StatusOr<std::vector<HostEnrollment>> SqliteControllerStore::ListHostEnrollments() const {
  static const std::string sql =
      SelectSql("host_enrollments", kEnrollmentColumns) + " ORDER BY host_id";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list host enrollments", nullptr, &ReadEnrollment);
}

Status SqliteControllerStore::DeleteHostEnrollment(const std::string& host_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string op = "delete host enrollment " + host_id;
  MC_RETURN_IF_ERROR(db_->Run("DELETE FROM host_enrollments WHERE host_id = ?1", op,
                              [&](Statement& st) { st.Bind(host_id); }));
  if (db_->Changes() == 0) return NotFoundError(db_->Context(op + ": no such host"));
  return Status::Ok();
}

// The database file is the owner's only (0600), created so before SQLite opens it (its WAL and
// shared-memory files take the database file's mode); an existing file, WAL or shm is narrowed
// to 0600 too. Only the mode changes: not a byte of a file that is not ours is written.
static Status RestrictFileModes(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, "controller db " + path.string());
  ::close(fd);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const fs::path file = path.string() + suffix;
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || (st.st_mode & 077) == 0) continue;
    if (::chmod(file.c_str(), st.st_mode & 0700) != 0) {
      spdlog::warn("controller db {}: cannot make it owner-only (chmod 600): {}", file.string(),
                   std::strerror(errno));
    }
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<ControllerStore>> ControllerStore::Open(const fs::path& path) {
  MC_RETURN_IF_ERROR(RestrictFileModes(path));
  MC_ASSIGN_OR_RETURN(std::unique_ptr<Connection> db,
                      Connection::Open(path, "controller db", kBusyTimeoutMs));
  Status s = SetUp(*db);
  if (s.code() == StatusCode::kFailedPrecondition) {
    // Never moved aside or recreated: this file is the only copy of jobs and endpoints.
    return FailedPreconditionError(s.message() +
                                   " (left untouched: restore it from a backup or move it away)");
  }
  MC_RETURN_IF_ERROR(s);
  MC_ASSIGN_OR_RETURN(std::unique_ptr<Connection> checkpointer,
                      Connection::Open(path, "controller db", kBusyTimeoutMs));
  return std::unique_ptr<ControllerStore>(
      new SqliteControllerStore(std::move(db), std::move(checkpointer)));
}

}  // namespace mc::controller
