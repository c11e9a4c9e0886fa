// ControllerStore over PostgreSQL (libpq through postgres/pg_util.h): one connection behind a
// mutex, prepared statements cached per session, binary parameters and results. The contract is
// store.h's; the schema and its migrations are in store_postgres_schema.cc, the rows' column
// lists in store_postgres_rows.h. Internal to store_postgres*.cc.
//
// What several controllers on one database will need (issue 16's second part) and where it fits:
// job claims with SELECT ... FOR UPDATE SKIP LOCKED are one more method here; LISTEN/NOTIFY wants
// a second connection of its own (a listener must not share the mutex with queries), which
// pg_util's Connection can be; fencing is a column (epoch) on workers and ledger rows, added by
// migration 1 -> 2; and a pool of connections instead of the one mutex when one controller's
// writes queue behind each other.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "controller/store.h"
#include "postgres/pg_util.h"

namespace mc::controller {

// Creates or migrates the schema in one transaction (store.h, PostgreSQL). FailedPrecondition
// naming the database for a newer version or someone else's tables; nothing written then.
Status MigratePostgresSchema(postgres::Connection& db);

class PostgresControllerStore final : public ControllerStore {
 public:
  explicit PostgresControllerStore(std::unique_ptr<postgres::Connection> db) : db_(std::move(db)) {}

  // Every ControllerStore method (store.h documents them), declared once for both stores.
#include "controller/store_overrides.inc"

 private:
  // Runs a query and collects every row with `read`. Caller holds mu_.
  template <typename T>
  StatusOr<std::vector<T>> Collect(const std::string& sql, std::string_view op,
                                   const postgres::Params& params,
                                   T (*read)(postgres::Cols&)) const {
    std::vector<T> rows;
    MC_RETURN_IF_ERROR(
        db_->Run(sql, op, params, [&](postgres::Cols& c) { rows.push_back(read(c)); }));
    return rows;
  }
  // The row `select` + " WHERE id = $1" finds, or nullopt. Caller holds mu_.
  template <typename T>
  StatusOr<std::optional<T>> GetById(const std::string& select, const std::string& id,
                                     std::string_view op, T (*read)(postgres::Cols&)) const {
    std::optional<T> row;
    MC_RETURN_IF_ERROR(db_->Run(select + " WHERE id = $1", op, postgres::Params().Add(id),
                                [&](postgres::Cols& c) { row = read(c); }));
    return row;
  }
  // Import's steps, inside its transaction. Caller holds mu_.
  StatusOr<bool> IsEmptyLocked() const;
  StatusOr<IdCounters> GetIdCountersLocked() const;
  Status DeleteEverything();
  Status WriteRows(const StoreContents& c);
  Status RaiseCounters(const IdCounters& at_least);
  // Adds `ms` to the endpoint's total (store_postgres_history.cc). Caller holds mu_, in a
  // transaction.
  Status AddToTotalsLocked(const std::string& endpoint_id, bool billed, int64_t ms);

  mutable std::mutex mu_;
  const std::unique_ptr<postgres::Connection> db_;  // used under mu_ only
};

}  // namespace mc::controller
