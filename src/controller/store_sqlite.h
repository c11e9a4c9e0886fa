// ControllerStore over SQLite (raw C API through sqlite/sqlite_util.h): one connection behind a
// mutex, a cache of prepared statements, and a second connection that checkpoints the WAL. The
// contract is store.h's; the schema is kMigrations in store_sqlite.cc, the rows' column lists in
// store_sqlite_rows.h, moving a store (Import) in store_sqlite_import.cc. Internal to
// store_sqlite*.cc.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "controller/store.h"
#include "sqlite/sqlite_util.h"

namespace mc::controller {

class SqliteControllerStore final : public ControllerStore {
 public:
  SqliteControllerStore(std::unique_ptr<sqlite::Connection> db,
                        std::unique_ptr<sqlite::Connection> checkpointer)
      : db_(std::move(db)), checkpointer_(std::move(checkpointer)) {
    checkpoints_ = std::thread([this] { Checkpoints(); });
  }
  ~SqliteControllerStore() override {
    {
      std::lock_guard<std::mutex> lock(checkpoint_mu_);
      stopping_ = true;
    }
    checkpoint_cv_.notify_all();
    checkpoints_.join();
  }

  // Every ControllerStore method (store.h documents them), declared once for both stores.
#include "controller/store_overrides.inc"

 private:
  StatusOr<IdCounters> GetIdCountersLocked() const;
  StatusOr<bool> IsEmptyLocked() const;
  Status WriteRows(const StoreContents& c);
  Status RaiseCounters(const IdCounters& at_least);
  // Adds `ms` to the endpoint's total (store_sqlite_history.cc). Caller holds mu_, in a
  // transaction.
  Status AddToTotalsLocked(const std::string& endpoint_id, bool billed, int64_t ms);

  // Runs a query and collects every row with `read`. Caller holds mu_.
  template <typename T>
  StatusOr<std::vector<T>> Collect(const std::string& sql, std::string_view op,
                                   const sqlite::Binder& bind,
                                   T (*read)(const sqlite::Statement&)) const {
    std::vector<T> rows;
    MC_RETURN_IF_ERROR(
        db_->Run(sql, op, bind, [&](const sqlite::Statement& st) { rows.push_back(read(st)); }));
    return rows;
  }
  // The row with `id`, or nullopt. Caller holds mu_.
  template <typename T>
  StatusOr<std::optional<T>> GetById(const std::string& select, const std::string& id,
                                     std::string_view op,
                                     T (*read)(const sqlite::Statement&)) const {
    std::optional<T> row;
    MC_RETURN_IF_ERROR(db_->Run(
        select + " WHERE id = ?1", op, [&](sqlite::Statement& st) { st.Bind(id); },
        [&](const sqlite::Statement& st) { row = read(st); }));
    return row;
  }

  // A PASSIVE checkpoint every second from its own connection: in WAL mode it runs beside the
  // writer (it never blocks a commit, and a commit never waits for it), so the WAL stays small
  // without a commit ever paying for copying it back into the database.
  void Checkpoints() {
    std::unique_lock<std::mutex> lock(checkpoint_mu_);
    while (!checkpoint_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; })) {
      Status s = checkpointer_->Exec("PRAGMA wal_checkpoint(PASSIVE)", "checkpoint");
      if (!s.ok()) spdlog::warn("{}", s.ToString());
    }
  }

  mutable std::mutex mu_;
  const std::unique_ptr<sqlite::Connection> db_;            // used under mu_ only
  const std::unique_ptr<sqlite::Connection> checkpointer_;  // used by the checkpoint thread only
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool stopping_ = false;  // guarded by checkpoint_mu_
  std::thread checkpoints_;
};

}  // namespace mc::controller
