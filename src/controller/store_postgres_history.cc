// The PostgreSQL store's ledger totals and retention (store.h: SummarizeLedger, PruneHistory).
#include <string>

#include "controller/store_postgres.h"
#include "controller/store_postgres_rows.h"

namespace mc::controller {

using postgres::Params;
using postgres::SelectSql;
using namespace pg_rows;  // NOLINT: the column lists and row codecs

Status PostgresControllerStore::AddToTotalsLocked(const std::string& endpoint_id, bool billed,
                                                  int64_t ms) {
  return db_
      ->Run(
          "INSERT INTO ledger_totals (endpoint_id, billed, closed_ms) VALUES ($1, $2, $3) "
          "ON CONFLICT (endpoint_id, billed) "
          "DO UPDATE SET closed_ms = ledger_totals.closed_ms + excluded.closed_ms",
          "add to the ledger totals of endpoint " + endpoint_id,
          Params().Add(endpoint_id).Add(billed).Add(ms))
      .status();
}

StatusOr<LedgerSummary> PostgresControllerStore::SummarizeLedger() const {
  // "end_ms IS NULL" is the partial index ledger_open's condition: only open rows are read.
  static const std::string open =
      SelectSql("ledger", kLedgerColumns) + " WHERE end_ms IS NULL ORDER BY id";
  std::lock_guard<std::mutex> lock(mu_);
  LedgerSummary s;
  Status columns = Status::Ok();
  MC_RETURN_IF_ERROR(db_->Run("SELECT endpoint_id, billed, closed_ms FROM ledger_totals "
                              "ORDER BY endpoint_id, billed",
                              "read the ledger totals", {},
                              [&](postgres::Cols& c) {
                                LedgerTotal t;
                                t.endpoint_id = c.Bytes();
                                t.billed = c.Bool();
                                t.closed_ms = c.Int();
                                if (columns.ok()) columns = c.status();
                                s.totals.push_back(std::move(t));
                              })
                         .status());
  MC_RETURN_IF_ERROR(columns, db_->Context("read the ledger totals"));
  MC_ASSIGN_OR_RETURN(s.open, Collect(open, "list open ledger rows", {}, &ReadLedger));
  return s;
}

StatusOr<PrunedHistory> PostgresControllerStore::PruneHistory(int64_t before_ms) {
  const std::string op = "prune history before " + std::to_string(before_ms);
  const Params before = Params().Add(before_ms);
  std::lock_guard<std::mutex> lock(mu_);
  PrunedHistory pruned;
  MC_RETURN_IF_ERROR(db_->InTransaction([&]() -> Status {
    MC_ASSIGN_OR_RETURN(pruned.workers, db_->Run("DELETE FROM workers WHERE stopped_ms < $1 "
                                                 "AND phase IN ('stopped'::bytea, 'failed'::bytea)",
                                                 op + ": workers", before));
    MC_ASSIGN_OR_RETURN(pruned.ledger_rows,
                        db_->Run("DELETE FROM ledger WHERE end_ms < $1", op + ": ledger", before));
    return Status::Ok();
  }));
  return pruned;
}

}  // namespace mc::controller
