// ControllerStore over PostgreSQL: the methods of store.h, one statement or one transaction each.
// See store_postgres.h.
#include "controller/store_postgres.h"

#include <string_view>
#include <utility>

#include "controller/store_postgres_rows.h"

namespace mc::controller {
namespace {

using postgres::Params;
using postgres::SelectSql;
using postgres::UpsertSql;
using namespace pg_rows;  // NOLINT: the column lists and row codecs

// The key (column 0) of a webhook delivery and a ledger row is assigned by the database.
std::string InsertWithoutIdSql(const char* table, const char* const* columns, size_t n) {
  std::string names;
  for (size_t i = 1; i < n; ++i) names += std::string(i > 1 ? ", \"" : "\"") + columns[i] + '"';
  return std::string("INSERT INTO ") + table + " (" + names + ") VALUES (" +
         postgres::Placeholders(n - 1) + ") RETURNING id";
}

}  // namespace

// ---- endpoints ----

Status PostgresControllerStore::PutEndpoint(const EndpointRecord& e) {
  static const std::string sql = UpsertSql("endpoints", kEndpointColumns);
  Params p;
  AddEndpoint(p, e);
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Run(sql, "put endpoint " + e.id, p).status();
}

StatusOr<std::optional<EndpointRecord>> PostgresControllerStore::GetEndpoint(
    const std::string& id) const {
  static const std::string select = SelectSql("endpoints", kEndpointColumns);
  std::lock_guard<std::mutex> lock(mu_);
  return GetById(select, id, "get endpoint " + id, &ReadEndpoint);
}

StatusOr<std::vector<EndpointRecord>> PostgresControllerStore::ListEndpoints() const {
  static const std::string sql =
      SelectSql("endpoints", kEndpointColumns) + " ORDER BY created_ms, id";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list endpoints", {}, &ReadEndpoint);
}

Status PostgresControllerStore::DeleteEndpoint(const std::string& id) {
  const std::string op = "delete endpoint " + id;
  const Params p = Params().Add(id);
  std::lock_guard<std::mutex> lock(mu_);
  return db_->InTransaction([&]() -> Status {
    // The jobs' chunks go with them through ON DELETE CASCADE.
    MC_RETURN_IF_ERROR(db_->Run("DELETE FROM jobs WHERE endpoint_id = $1", op + ": jobs", p));
    return db_->Run("DELETE FROM endpoints WHERE id = $1", op, p).status();
  });
}

// ---- jobs and chunks ----

Status PostgresControllerStore::PutJob(const JobRecord& j) {
  static const std::string sql = UpsertSql("jobs", kJobColumns);
  Params p;
  AddJob(p, j);
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Run(sql, "put job " + j.id, p).status();
}

StatusOr<std::optional<JobRecord>> PostgresControllerStore::GetJob(const std::string& id) const {
  static const std::string select = SelectSql("jobs", kJobColumns);
  std::lock_guard<std::mutex> lock(mu_);
  return GetById(select, id, "get job " + id, &ReadJob);
}

StatusOr<std::vector<JobRecord>> PostgresControllerStore::ListJobs(
    const std::string& endpoint_id, const std::vector<std::string>& statuses) const {
  // One prepared statement per shape (endpoint or not, number of statuses): few in practice.
  std::string sql = SelectSql("jobs", kJobColumns) + " WHERE TRUE";
  Params p;
  if (!endpoint_id.empty()) {
    p.Add(endpoint_id);
    sql += " AND endpoint_id = $1";
  }
  if (!statuses.empty()) {
    sql += " AND status IN (" + postgres::Placeholders(statuses.size(), p.size() + 1) + ")";
    for (const std::string& s : statuses) p.Add(s);
  }
  sql += " ORDER BY created_ms, insertion";  // insertion: the order of first puts among equals
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list jobs", p, &ReadJob);
}

Status PostgresControllerStore::DeleteJob(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  // Its chunks go with it through ON DELETE CASCADE, in the same statement.
  return db_->Run("DELETE FROM jobs WHERE id = $1", "delete job " + id, Params().Add(id)).status();
}

Status PostgresControllerStore::AppendChunk(const StreamChunk& c) {
  const std::string op = "append chunk " + std::to_string(c.seq) + " to job " + c.job_id;
  const Params job = Params().Add(c.job_id);
  Params chunk;
  AddChunk(chunk, c);
  std::lock_guard<std::mutex> lock(mu_);
  return db_->InTransaction([&]() -> Status {
    // The job's row lock orders appends to one job, also from other connections.
    MC_ASSIGN_OR_RETURN(int64_t jobs,
                        db_->Run("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", op, job));
    if (jobs == 0) return NotFoundError(db_->Context(op + ": no such job"));
    // Seqs are 0..n-1: the next is max + 1, one step down the primary key's index (count(*)
    // would walk every earlier chunk of the job).
    MC_ASSIGN_OR_RETURN(
        std::optional<int64_t> next,
        db_->QueryInt("SELECT coalesce(max(seq) + 1, 0) FROM stream_chunks WHERE job_id = $1", op,
                      job));
    if (c.seq != next.value_or(0)) {
      return InvalidArgumentError(
          db_->Context(op + ": out of order, the next seq is " + std::to_string(next.value_or(0))));
    }
    return db_
        ->Run("INSERT INTO stream_chunks (job_id, seq, output_json) VALUES ($1, $2, $3)", op, chunk)
        .status();
  });
}

StatusOr<std::vector<StreamChunk>> PostgresControllerStore::ListChunks(const std::string& job_id,
                                                                       int64_t from_seq) const {
  static const std::string sql =
      SelectSql("stream_chunks", kChunkColumns) + " WHERE job_id = $1 AND seq >= $2 ORDER BY seq";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list chunks of job " + job_id, Params().Add(job_id).Add(from_seq),
                 &ReadChunk);
}

// ---- webhook outbox ----

StatusOr<int64_t> PostgresControllerStore::PutJobWithWebhook(const JobRecord& j,
                                                             const WebhookDelivery& d) {
  static const std::string put_job = UpsertSql("jobs", kJobColumns);
  static const std::string insert =
      InsertWithoutIdSql("webhook_outbox", kWebhookColumns, std::size(kWebhookColumns));
  // The op names the job, never the URL (it may carry a secret).
  const std::string op = "put job " + j.id + " and its webhook delivery";
  Params job;
  AddJob(job, j);
  const Params delivery =
      Params().Add(d.job_id).Add(d.url).Add(d.body_json).Add(d.tries).Add(d.next_attempt_ms);
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<int64_t> id;
  MC_RETURN_IF_ERROR(db_->InTransaction([&]() -> Status {
    MC_RETURN_IF_ERROR(db_->Run(put_job, op, job));
    MC_ASSIGN_OR_RETURN(id, db_->QueryInt(insert, op, delivery));
    return Status::Ok();
  }));
  if (!id) return InternalError(db_->Context(op + ": no id returned"));
  return *id;
}

StatusOr<std::vector<WebhookDelivery>> PostgresControllerStore::ListWebhooks() const {
  static const std::string sql = SelectSql("webhook_outbox", kWebhookColumns) + " ORDER BY id";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list webhook deliveries", {}, &ReadWebhook);
}

Status PostgresControllerStore::UpdateWebhook(int64_t id, int tries, int64_t next_attempt_ms) {
  const std::string op = "update webhook delivery " + std::to_string(id);
  std::lock_guard<std::mutex> lock(mu_);
  MC_ASSIGN_OR_RETURN(
      int64_t changed,
      db_->Run("UPDATE webhook_outbox SET tries = $2, next_attempt_ms = $3 WHERE id = $1", op,
               Params().Add(id).Add(tries).Add(next_attempt_ms)));
  if (changed == 0) return NotFoundError(db_->Context(op + ": no such delivery"));
  return Status::Ok();
}

Status PostgresControllerStore::DeleteWebhook(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  return db_
      ->Run("DELETE FROM webhook_outbox WHERE id = $1",
            "delete webhook delivery " + std::to_string(id), Params().Add(id))
      .status();
}

// ---- workers and ledger ----

Status PostgresControllerStore::PutWorker(const WorkerRecord& w) {
  // Fencing: a row a newer leader wrote is not overwritten by an older one (a deposed leader's
  // late write); the upsert then changes no row.
  static const std::string sql =
      UpsertSql("workers", kWorkerColumns) + " WHERE workers.epoch <= EXCLUDED.epoch";
  Params p;
  AddWorker(p, w);
  std::lock_guard<std::mutex> lock(mu_);
  MC_ASSIGN_OR_RETURN(int64_t rows, db_->Run(sql, "put worker " + w.id, p));
  if (rows == 0) {
    return FailedPreconditionError(db_->Context(
        "put worker " + w.id + ": fenced: a leader of a newer epoch than " +
        std::to_string(w.epoch) + " wrote it (this controller is no longer the leader)"));
  }
  return Status::Ok();
}

StatusOr<std::optional<WorkerRecord>> PostgresControllerStore::GetWorker(
    const std::string& id) const {
  static const std::string select = SelectSql("workers", kWorkerColumns);
  std::lock_guard<std::mutex> lock(mu_);
  return GetById(select, id, "get worker " + id, &ReadWorker);
}

StatusOr<std::vector<WorkerRecord>> PostgresControllerStore::ListWorkers(
    const std::string& endpoint_id, bool live_only) const {
  std::string sql = SelectSql("workers", kWorkerColumns) + " WHERE TRUE";
  Params p;
  if (!endpoint_id.empty()) {
    p.Add(endpoint_id);
    sql += " AND endpoint_id = $1";
  }
  if (live_only) sql += " AND phase NOT IN ('stopped'::bytea, 'failed'::bytea)";
  sql += " ORDER BY created_ms, id";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list workers", p, &ReadWorker);
}

StatusOr<int64_t> PostgresControllerStore::AppendLedger(const LedgerRow& row) {
  static const std::string sql =
      InsertWithoutIdSql("ledger", kLedgerColumns, std::size(kLedgerColumns));
  const Params p = Params()
                       .Add(row.worker_id)
                       .Add(row.endpoint_id)
                       .Add(row.phase)
                       .Add(row.start_ms)
                       .Add(row.end_ms)
                       .Add(row.billed)
                       .Add(row.tenant);
  const std::string op = "append ledger row for worker " + row.worker_id;
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<int64_t> id;
  MC_RETURN_IF_ERROR(db_->InTransaction([&]() -> Status {
    MC_ASSIGN_OR_RETURN(id, db_->QueryInt(sql, op, p));
    if (!row.end_ms) return Status::Ok();
    return AddToTotalsLocked(row.endpoint_id, row.billed, *row.end_ms - row.start_ms);
  }));
  if (!id) return InternalError(db_->Context(op + ": no id returned"));
  return *id;
}

Status PostgresControllerStore::CloseLedger(int64_t id, int64_t end_ms) {
  static const std::string select =
      SelectSql("ledger", kLedgerColumns) + " WHERE id = $1 FOR UPDATE";
  const std::string op = "close ledger row " + std::to_string(id);
  std::lock_guard<std::mutex> lock(mu_);
  return db_->InTransaction([&]() -> Status {
    MC_ASSIGN_OR_RETURN(std::vector<LedgerRow> rows,
                        Collect(select, op, Params().Add(id), &ReadLedger));
    if (rows.empty()) return NotFoundError(db_->Context(op + ": no such row"));
    const LedgerRow& row = rows.front();
    MC_RETURN_IF_ERROR(
        db_->Run("UPDATE ledger SET end_ms = $2 WHERE id = $1", op, Params().Add(id).Add(end_ms))
            .status());
    // Closing again replaces the row's earlier time in the totals.
    const int64_t before = row.end_ms ? *row.end_ms - row.start_ms : 0;
    return AddToTotalsLocked(row.endpoint_id, row.billed, end_ms - row.start_ms - before);
  });
}

StatusOr<std::vector<LedgerRow>> PostgresControllerStore::ListLedger(
    const std::string& endpoint_id) const {
  static const std::string all = SelectSql("ledger", kLedgerColumns) + " ORDER BY id";
  static const std::string of_endpoint =
      SelectSql("ledger", kLedgerColumns) + " WHERE endpoint_id = $1 ORDER BY id";
  std::lock_guard<std::mutex> lock(mu_);
  if (endpoint_id.empty()) return Collect(all, "list ledger", {}, &ReadLedger);
  return Collect(of_endpoint, "list ledger of endpoint " + endpoint_id, Params().Add(endpoint_id),
                 &ReadLedger);
}

// ---- API keys ----

Status PostgresControllerStore::AddApiKey(const ApiKeyRecord& k) {
  static const std::string sql = "INSERT INTO api_keys (" + postgres::ColumnList(kApiKeyColumns) +
                                 ") VALUES (" + postgres::Placeholders(std::size(kApiKeyColumns)) +
                                 ")";
  Params p;
  pg_rows::AddApiKey(p, k);
  std::lock_guard<std::mutex> lock(mu_);
  // A taken id or hash fails the PRIMARY KEY / UNIQUE constraint (23505): AlreadyExists.
  return db_->Run(sql, "add api key " + k.id, p).status();
}

StatusOr<std::vector<ApiKeyRecord>> PostgresControllerStore::ListApiKeys() const {
  static const std::string sql = SelectSql("api_keys", kApiKeyColumns) + " ORDER BY created_ms, id";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list api keys", {}, &ReadApiKey);
}

Status PostgresControllerStore::DeleteApiKey(const std::string& id) {
  const std::string op = "delete api key " + id;
  std::lock_guard<std::mutex> lock(mu_);
  MC_ASSIGN_OR_RETURN(int64_t changed,
                      db_->Run("DELETE FROM api_keys WHERE id = $1", op, Params().Add(id)));
  if (changed == 0) return NotFoundError(db_->Context(op + ": no such key"));
  return Status::Ok();
}

StatusOr<bool> PostgresControllerStore::HasApiKeySha256(const std::string& sha256_hex) const {
  std::lock_guard<std::mutex> lock(mu_);
  MC_ASSIGN_OR_RETURN(int64_t found, db_->Run("SELECT 1 FROM api_keys WHERE sha256 = $1",
                                              "look up api key", Params().Add(sha256_hex)));
  return found != 0;
}

StatusOr<std::optional<ApiKeyRecord>> PostgresControllerStore::FindApiKeySha256(
    const std::string& sha256_hex) const {
  static const std::string sql = SelectSql("api_keys", kApiKeyColumns) + " WHERE sha256 = $1";
  std::lock_guard<std::mutex> lock(mu_);
  MC_ASSIGN_OR_RETURN(std::vector<ApiKeyRecord> found,
                      Collect(sql, "look up api key", Params().Add(sha256_hex), &ReadApiKey));
  if (found.empty()) return std::optional<ApiKeyRecord>();
  return std::optional<ApiKeyRecord>(std::move(found.front()));
}

// ---- hosts ----

Status PostgresControllerStore::PutHost(const HostRecord& h) {
  static const std::string sql = UpsertSql("hosts", kHostColumns);
  Params p;
  pg_rows::AddHost(p, h);
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Run(sql, "put host " + h.id, p).status();
}

StatusOr<std::vector<HostRecord>> PostgresControllerStore::ListHosts() const {
  static const std::string sql = SelectSql("hosts", kHostColumns) + " ORDER BY id";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list hosts", {}, &ReadHost);
}

Status PostgresControllerStore::PutHostEnrollment(const HostEnrollment& e) {
  static const std::string sql = UpsertSql("host_enrollments", kEnrollmentColumns);
  Params p;
  AddEnrollment(p, e);
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Run(sql, "put host enrollment " + e.host_id, p).status();
}

StatusOr<std::optional<HostEnrollment>> PostgresControllerStore::GetHostEnrollment(
    const std::string& host_id) const {
  static const std::string sql =
      SelectSql("host_enrollments", kEnrollmentColumns) + " WHERE host_id = $1";
  std::lock_guard<std::mutex> lock(mu_);
  MC_ASSIGN_OR_RETURN(
      std::vector<HostEnrollment> found,
      Collect(sql, "get host enrollment " + host_id, Params().Add(host_id), &ReadEnrollment));
  if (found.empty()) return std::optional<HostEnrollment>();
  return std::optional<HostEnrollment>(std::move(found.front()));
}

StatusOr<std::vector<HostEnrollment>> PostgresControllerStore::ListHostEnrollments() const {
  static const std::string sql =
      SelectSql("host_enrollments", kEnrollmentColumns) + " ORDER BY host_id";
  std::lock_guard<std::mutex> lock(mu_);
  return Collect(sql, "list host enrollments", {}, &ReadEnrollment);
}

Status PostgresControllerStore::DeleteHostEnrollment(const std::string& host_id) {
  const std::string op = "delete host enrollment " + host_id;
  std::lock_guard<std::mutex> lock(mu_);
  MC_ASSIGN_OR_RETURN(int64_t changed, db_->Run("DELETE FROM host_enrollments WHERE host_id = $1",
                                                op, Params().Add(host_id)));
  if (changed == 0) return NotFoundError(db_->Context(op + ": no such host"));
  return Status::Ok();
}

}  // namespace mc::controller
