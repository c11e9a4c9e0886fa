// The SQLite store's ledger totals and retention (store.h: SummarizeLedger, PruneHistory).
#include <string>

#include "controller/store_sqlite.h"
#include "controller/store_sqlite_rows.h"

namespace mc::controller {

using sqlite::SelectSql;
using sqlite::Statement;
using namespace sqlite_rows;  // NOLINT: the column lists and row codecs

Status SqliteControllerStore::AddToTotalsLocked(const std::string& endpoint_id, bool billed,
                                                int64_t ms) {
  return db_->Run(
      "INSERT INTO ledger_totals (endpoint_id, billed, closed_ms) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (endpoint_id, billed) DO UPDATE SET closed_ms = closed_ms + excluded.closed_ms",
      "add to the ledger totals of endpoint " + endpoint_id,
      [&](Statement& st) { st.Bind(endpoint_id).Bind(billed).Bind(ms); });
}

StatusOr<LedgerSummary> SqliteControllerStore::SummarizeLedger() const {
  // "end_ms IS NULL" is the partial index ledger_open's condition: only open rows are read.
  static const std::string open =
      SelectSql("ledger", kLedgerColumns) + " WHERE end_ms IS NULL ORDER BY id";
  std::lock_guard<std::mutex> lock(mu_);
  LedgerSummary s;
  MC_RETURN_IF_ERROR(db_->Run(
      "SELECT endpoint_id, billed, closed_ms FROM ledger_totals ORDER BY endpoint_id, billed",
      "read the ledger totals", nullptr, [&](const Statement& st) {
        s.totals.push_back({st.Text(0), st.Bool(1), st.Int(2)});
      }));
  MC_ASSIGN_OR_RETURN(s.open, Collect(open, "list open ledger rows", nullptr, &ReadLedger));
  return s;
}

StatusOr<PrunedHistory> SqliteControllerStore::PruneHistory(int64_t before_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  PrunedHistory pruned;
  const std::string op = "prune history before " + std::to_string(before_ms);
  auto bind = [&](Statement& st) { st.Bind(before_ms); };
  MC_RETURN_IF_ERROR(db_->InTransaction([&]() -> Status {
    MC_RETURN_IF_ERROR(
        db_->Run("DELETE FROM workers WHERE stopped_ms < ?1 AND phase IN ('stopped', 'failed')",
                 op + ": workers", bind));
    pruned.workers = db_->Changes();
    MC_RETURN_IF_ERROR(db_->Run("DELETE FROM ledger WHERE end_ms < ?1", op + ": ledger", bind));
    pruned.ledger_rows = db_->Changes();
    return Status::Ok();
  }));
  return pruned;
}

}  // namespace mc::controller
