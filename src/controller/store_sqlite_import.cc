// The SQLite store's side of moving a store (migrate-store): id counters, emptiness, Import.
#include <string>
#include <utility>

#include "controller/store_sqlite.h"
#include "controller/store_sqlite_rows.h"

namespace mc::controller {

using sqlite::ColumnList;
using sqlite::Connection;
using sqlite::Statement;
using namespace sqlite_rows;  // NOLINT: the column lists and row codecs

namespace {

// Children first: stream_chunks references jobs.
constexpr const char* kTables[] = {"stream_chunks", "jobs",           "endpoints",
                                   "api_keys",      "workers",        "ledger",
                                   "hosts",         "webhook_outbox", "ledger_totals",
                                   "host_enrollments"};

// Inserts each row of `rows` with `bind` (all of `columns`, key included).
template <typename T, size_t N>
Status InsertAll(Connection& db, const char* table, const char* const (&columns)[N],
                 const std::vector<T>& rows, void (*bind)(Statement&, const T&)) {
  std::string sql = std::string("INSERT INTO ") + table + " (" + ColumnList(columns) + ") VALUES (";
  for (size_t i = 0; i < N; ++i) sql += i > 0 ? ", ?" : "?";
  sql += ")";
  for (const T& row : rows) {
    MC_RETURN_IF_ERROR(
        db.Run(sql, std::string("import ") + table, [&](Statement& st) { bind(st, row); }));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<IdCounters> SqliteControllerStore::GetIdCountersLocked() const {
  // sqlite_sequence holds AUTOINCREMENT's position of each table that has used it.
  constexpr const char* kSql = "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = ?1";
  IdCounters c;
  MC_ASSIGN_OR_RETURN(c.ledger, db_->QueryInt(kSql, "read the ledger's id counter",
                                              [](Statement& st) { st.Bind("ledger"); }));
  MC_ASSIGN_OR_RETURN(c.webhook_outbox,
                      db_->QueryInt(kSql, "read the outbox's id counter",
                                    [](Statement& st) { st.Bind("webhook_outbox"); }));
  return c;
}

StatusOr<IdCounters> SqliteControllerStore::GetIdCounters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return GetIdCountersLocked();
}

StatusOr<bool> SqliteControllerStore::IsEmptyLocked() const {
  std::string sql = "SELECT ";
  for (const char* table : kTables) {
    sql += std::string(sql.size() > 7 ? " OR " : "") + "EXISTS (SELECT 1 FROM " + table + ")";
  }
  MC_ASSIGN_OR_RETURN(int64_t any, db_->QueryInt(sql, "count rows"));
  return any == 0;
}

StatusOr<bool> SqliteControllerStore::IsEmpty() const {
  std::lock_guard<std::mutex> lock(mu_);
  return IsEmptyLocked();
}

Status SqliteControllerStore::WriteRows(const StoreContents& c) {
  constexpr const char* kChunkColumns[] = {"job_id", "seq", "output_json"};
  MC_RETURN_IF_ERROR(InsertAll(*db_, "endpoints", kEndpointColumns, c.endpoints, &BindEndpoint));
  MC_RETURN_IF_ERROR(InsertAll(
      *db_, "api_keys", kApiKeyColumns, c.api_keys, +[](Statement& st, const ApiKeyRecord& k) {
        st.Bind(k.id).Bind(k.name).Bind(k.sha256).Bind(k.created_ms).Bind(k.tenant);
        st.Bind(k.role);
      }));
  // In c.jobs' order: the rowid keeps it among equal created_ms.
  MC_RETURN_IF_ERROR(InsertAll(*db_, "jobs", kJobColumns, c.jobs, &BindJob));
  MC_RETURN_IF_ERROR(InsertAll(
      *db_, "stream_chunks", kChunkColumns, c.chunks, +[](Statement& st, const StreamChunk& s) {
        st.Bind(s.job_id).Bind(s.seq).Bind(s.output_json);
      }));
  MC_RETURN_IF_ERROR(InsertAll(*db_, "workers", kWorkerColumns, c.workers, &BindWorker));
  MC_RETURN_IF_ERROR(InsertAll(
      *db_, "ledger", kLedgerColumns, c.ledger, +[](Statement& st, const LedgerRow& r) {
        st.Bind(r.id).Bind(r.worker_id).Bind(r.endpoint_id).Bind(r.phase);
        st.Bind(r.start_ms).Bind(r.end_ms).Bind(r.billed).Bind(r.tenant);
      }));
  constexpr const char* kTotalColumns[] = {"endpoint_id", "billed", "closed_ms"};
  MC_RETURN_IF_ERROR(InsertAll(
      *db_, "ledger_totals", kTotalColumns, c.ledger_totals,
      +[](Statement& st, const LedgerTotal& t) {
        st.Bind(t.endpoint_id).Bind(t.billed).Bind(t.closed_ms);
      }));
  MC_RETURN_IF_ERROR(InsertAll(
      *db_, "hosts", kHostColumns, c.hosts, +[](Statement& st, const HostRecord& h) {
        st.Bind(h.id).Bind(h.document_json).Bind(h.last_seen_ms);
      }));
  MC_RETURN_IF_ERROR(InsertAll(
      *db_, "host_enrollments", kEnrollmentColumns, c.enrollments,
      +[](Statement& st, const HostEnrollment& e) {
        st.Bind(e.host_id).Bind(e.credential).Bind(e.schedule).Bind(e.created_ms);
      }));
  return InsertAll(
      *db_, "webhook_outbox", kWebhookColumns, c.webhooks,
      +[](Statement& st, const WebhookDelivery& d) {
        st.Bind(d.id).Bind(d.job_id).Bind(d.url).Bind(d.body_json).Bind(d.tries);
        st.Bind(d.next_attempt_ms);
      });
}

// Explicit ids already moved sqlite_sequence up to the highest one written; this moves it to
// at_least too (and never down).
Status SqliteControllerStore::RaiseCounters(const IdCounters& at_least) {
  for (const auto& [table, target] : {std::pair<const char*, int64_t>{"ledger", at_least.ledger},
                                      {"webhook_outbox", at_least.webhook_outbox}}) {
    if (target == 0) continue;
    const std::string op = std::string("set the id counter of ") + table;
    auto bind = [&](Statement& st) { st.Bind(table).Bind(target); };
    MC_RETURN_IF_ERROR(
        db_->Run("INSERT INTO sqlite_sequence (name, seq) SELECT ?1, ?2 "
                 "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1)",
                 op, bind));
    MC_RETURN_IF_ERROR(
        db_->Run("UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1", op, bind));
  }
  return Status::Ok();
}

Status SqliteControllerStore::Import(const StoreContents& c, bool replace) {
  std::lock_guard<std::mutex> lock(mu_);
  return db_->InTransaction([&]() -> Status {
    if (replace) {
      for (const char* table : kTables) {
        MC_RETURN_IF_ERROR(db_->Exec(std::string("DELETE FROM ") + table,
                                     "empty " + std::string(table) + " before the import"));
      }
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
