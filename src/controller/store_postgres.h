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

  Status PutEndpoint(const EndpointRecord& e) override;
  StatusOr<std::optional<EndpointRecord>> GetEndpoint(const std::string& id) const override;
  StatusOr<std::vector<EndpointRecord>> ListEndpoints() const override;
  Status DeleteEndpoint(const std::string& id) override;

  Status PutJob(const JobRecord& j) override;
  StatusOr<std::optional<JobRecord>> GetJob(const std::string& id) const override;
  StatusOr<std::vector<JobRecord>> ListJobs(
      const std::string& endpoint_id, const std::vector<std::string>& statuses) const override;
  Status DeleteJob(const std::string& id) override;
  Status AppendChunk(const StreamChunk& c) override;
  StatusOr<std::vector<StreamChunk>> ListChunks(const std::string& job_id,
                                                int64_t from_seq) const override;

  StatusOr<int64_t> PutJobWithWebhook(const JobRecord& j, const WebhookDelivery& d) override;
  StatusOr<std::vector<WebhookDelivery>> ListWebhooks() const override;
  Status UpdateWebhook(int64_t id, int tries, int64_t next_attempt_ms) override;
  Status DeleteWebhook(int64_t id) override;

  Status PutWorker(const WorkerRecord& w) override;
  StatusOr<std::optional<WorkerRecord>> GetWorker(const std::string& id) const override;
  StatusOr<std::vector<WorkerRecord>> ListWorkers(const std::string& endpoint_id,
                                                  bool live_only) const override;
  StatusOr<int64_t> AppendLedger(const LedgerRow& row) override;
  Status CloseLedger(int64_t id, int64_t end_ms) override;
  StatusOr<std::vector<LedgerRow>> ListLedger(const std::string& endpoint_id) const override;
  // store_postgres_history.cc
  StatusOr<LedgerSummary> SummarizeLedger() const override;
  StatusOr<PrunedHistory> PruneHistory(int64_t before_ms) override;

  Status AddApiKey(const ApiKeyRecord& k) override;
  StatusOr<std::vector<ApiKeyRecord>> ListApiKeys() const override;
  Status DeleteApiKey(const std::string& id) override;
  StatusOr<bool> HasApiKeySha256(const std::string& sha256_hex) const override;
  StatusOr<std::optional<ApiKeyRecord>> FindApiKeySha256(
      const std::string& sha256_hex) const override;

  Status PutHost(const HostRecord& h) override;
  StatusOr<std::vector<HostRecord>> ListHosts() const override;
  Status PutHostEnrollment(const HostEnrollment& e) override;
  StatusOr<std::optional<HostEnrollment>> GetHostEnrollment(
      const std::string& host_id) const override;
  StatusOr<std::vector<HostEnrollment>> ListHostEnrollments() const override;
  Status DeleteHostEnrollment(const std::string& host_id) override;

  // store_postgres_import.cc
  StatusOr<IdCounters> GetIdCounters() const override;
  StatusOr<bool> IsEmpty() const override;
  Status Import(const StoreContents& c, bool replace) override;

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
