// The PostgreSQL store's side of moving a store (migrate-store): id counters, emptiness, Import.
#include <algorithm>
#include <iterator>
#include <string>

#include "controller/store_postgres.h"
#include "controller/store_postgres_rows.h"

namespace mc::controller {
namespace {

using postgres::Params;
using namespace pg_rows;  // NOLINT: the column lists and row codecs

// Children first: stream_chunks references jobs.
constexpr const char* kTables[] = {"stream_chunks", "jobs",           "endpoints",
                                   "api_keys",      "workers",        "ledger",
                                   "hosts",         "webhook_outbox", "ledger_totals",
                                   "host_enrollments"};

// AUTOINCREMENT's position: the identity sequence's last value (NULL before its first use).
std::string CounterSql(const char* table) {
  return std::string("SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('") + table +
         "', 'id')::regclass), 0)";
}

template <size_t N>
std::string InsertSql(const char* table, const char* const (&columns)[N]) {
  return std::string("INSERT INTO ") + table + " (" + postgres::ColumnList(columns) + ") VALUES (" +
         postgres::Placeholders(N) + ")";
}

// Inserts each row of `rows` with `add` (all its columns, key included).
template <typename T, size_t N>
Status InsertAll(postgres::Connection& db, const char* table, const char* const (&columns)[N],
                 const std::vector<T>& rows, void (*add)(Params&, const T&)) {
  const std::string sql = InsertSql(table, columns);
  for (const T& row : rows) {
    Params p;
    add(p, row);
    MC_RETURN_IF_ERROR(db.Run(sql, std::string("import ") + table, p));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<IdCounters> PostgresControllerStore::GetIdCountersLocked() const {
  IdCounters c;
  MC_ASSIGN_OR_RETURN(std::optional<int64_t> ledger,
                      db_->QueryInt(CounterSql("ledger"), "read the ledger's id counter"));
  MC_ASSIGN_OR_RETURN(std::optional<int64_t> outbox,
                      db_->QueryInt(CounterSql("webhook_outbox"), "read the outbox's id counter"));
  c.ledger = ledger.value_or(0);
  c.webhook_outbox = outbox.value_or(0);
  return c;
}

StatusOr<IdCounters> PostgresControllerStore::GetIdCounters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return GetIdCountersLocked();
}

StatusOr<bool> PostgresControllerStore::IsEmptyLocked() const {
  std::string sql = "SELECT (";
  for (const char* table : kTables) {
    sql += std::string(sql.size() > 8 ? " OR " : "") + "EXISTS (SELECT 1 FROM " + table + ")";
  }
  sql += ")::int::int8";
  MC_ASSIGN_OR_RETURN(std::optional<int64_t> any, db_->QueryInt(sql, "count rows"));
  return any.value_or(0) == 0;
}

StatusOr<bool> PostgresControllerStore::IsEmpty() const {
  std::lock_guard<std::mutex> lock(mu_);
  return IsEmptyLocked();
}

Status PostgresControllerStore::DeleteEverything() {
  for (const char* table : kTables) {
    MC_RETURN_IF_ERROR(db_->Run(std::string("DELETE FROM ") + table,
                                std::string("empty ") + table + " before the import"));
  }
  return Status::Ok();
}

Status PostgresControllerStore::WriteRows(const StoreContents& c) {
  MC_RETURN_IF_ERROR(InsertAll(*db_, "endpoints", kEndpointColumns, c.endpoints, &AddEndpoint));
  MC_RETURN_IF_ERROR(InsertAll(*db_, "api_keys", kApiKeyColumns, c.api_keys, &pg_rows::AddApiKey));
  // In c.jobs' order: the identity column `insertion` keeps it among equal created_ms.
  MC_RETURN_IF_ERROR(InsertAll(*db_, "jobs", kJobColumns, c.jobs, &AddJob));
  MC_RETURN_IF_ERROR(InsertAll(*db_, "stream_chunks", kChunkColumns, c.chunks, &AddChunk));
  MC_RETURN_IF_ERROR(InsertAll(*db_, "workers", kWorkerColumns, c.workers, &AddWorker));
  MC_RETURN_IF_ERROR(InsertAll(*db_, "ledger", kLedgerColumns, c.ledger, &AddLedger));
  constexpr const char* kTotalColumns[] = {"endpoint_id", "billed", "closed_ms"};
  MC_RETURN_IF_ERROR(InsertAll(
      *db_, "ledger_totals", kTotalColumns, c.ledger_totals, +[](Params& p, const LedgerTotal& t) {
        p.Add(t.endpoint_id).Add(t.billed).Add(t.closed_ms);
      }));
  MC_RETURN_IF_ERROR(InsertAll(*db_, "hosts", kHostColumns, c.hosts, &pg_rows::AddHost));
  MC_RETURN_IF_ERROR(
      InsertAll(*db_, "host_enrollments", kEnrollmentColumns, c.enrollments, &AddEnrollment));
  return InsertAll(*db_, "webhook_outbox", kWebhookColumns, c.webhooks, &AddWebhook);
}

// Sequences are not transactional: a raised counter stays raised even if the import then rolls
// back, which costs only unused ids.
Status PostgresControllerStore::RaiseCounters(const IdCounters& at_least) {
  MC_ASSIGN_OR_RETURN(IdCounters now, GetIdCountersLocked());
  const std::pair<const char*, int64_t> targets[] = {
      {"ledger", std::max(now.ledger, at_least.ledger)},
      {"webhook_outbox", std::max(now.webhook_outbox, at_least.webhook_outbox)}};
  for (const auto& [table, target] : targets) {
    // Explicit ids written by the import do not move the sequence: move it above them too.
    const std::string sql = std::string("SELECT setval(pg_get_serial_sequence('") + table +
                            "', 'id'), greatest($1, (SELECT max(id) FROM " + table + ")))";
    if (target == 0) {
      MC_ASSIGN_OR_RETURN(std::optional<int64_t> max_id,
                          db_->QueryInt(std::string("SELECT max(id) FROM ") + table,
                                        std::string("read the highest id of ") + table));
      if (!max_id) continue;  // setval cannot go below 1: an unused sequence stays unused
    }
    MC_RETURN_IF_ERROR(db_->Run(sql, std::string("set the id counter of ") + table,
                                Params().Add(std::max<int64_t>(target, 1))));
  }
  return Status::Ok();
}

Status PostgresControllerStore::Import(const StoreContents& c, bool replace) {
  std::lock_guard<std::mutex> lock(mu_);
  return db_->InTransaction([&]() -> Status {
    if (replace) {
      MC_RETURN_IF_ERROR(DeleteEverything());
    } else {
      MC_ASSIGN_OR_RETURN(bool empty, IsEmptyLocked());
      if (!empty) {
        return FailedPreconditionError(
            db_->Context("import: the database already holds rows (nothing was written)"));
      }
    }
    MC_RETURN_IF_ERROR(WriteRows(c));
    return RaiseCounters(c.counters);
  });
}

}  // namespace mc::controller
