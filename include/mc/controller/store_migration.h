// Moving the controller's store to another database (modelcache controller migrate-store): every
// endpoint (with its HF token), API key, job (with its stream chunks), worker, ledger row, host
// and webhook delivery, ids included, and the ledger's and outbox's id counters, so that ids keep
// increasing after the move. SQLite to PostgreSQL, and back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "mc/common/status.h"

namespace mc::controller {

struct MigrateStoreOptions {
  std::string from;  // --db strings: sqlite:PATH or postgresql://...
  std::string to;
  // PostgreSQL passwords (read from files by the caller; never in the URIs).
  std::optional<std::string> from_password = std::nullopt;
  std::optional<std::string> to_password = std::nullopt;
  // Delete what the target holds first (in the same transaction as the copy). Without it, a
  // target that is not empty is FailedPrecondition and nothing is written.
  bool replace_target = false;
};

struct MigrateStoreReport {
  int64_t endpoints = 0, api_keys = 0, jobs = 0, chunks = 0, workers = 0, ledger = 0, hosts = 0,
          webhooks = 0, enrollments = 0;
  int64_t ledger_counter = 0, webhook_counter = 0;  // the ids the target hands out are above
};

// Opens both stores (the source's schema is migrated to this build's first, as any open does),
// reads every row of the source, writes them to the target in one transaction, then reads the
// target back and compares every count (DataLoss if one differs). Stop the controllers that use
// the source first: rows written during the move are not copied. The source must exist
// (NotFound for a missing SQLite file: no empty one is created); InvalidArgument if both name
// the same database. Holds the whole store in memory (jobs are bounded by their TTL).
StatusOr<MigrateStoreReport> MigrateStore(const MigrateStoreOptions& options);

}  // namespace mc::controller
