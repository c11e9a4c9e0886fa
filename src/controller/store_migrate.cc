// MigrateStore: ExportStore from one store, Import into the other, then compare.
#include <filesystem>
#include <string>

#include "controller/store.h"
#include "mc/controller/store_migration.h"

namespace mc::controller {
namespace {

MigrateStoreReport Count(const StoreContents& c) {
  MigrateStoreReport r;
  r.endpoints = static_cast<int64_t>(c.endpoints.size());
  r.api_keys = static_cast<int64_t>(c.api_keys.size());
  r.jobs = static_cast<int64_t>(c.jobs.size());
  r.chunks = static_cast<int64_t>(c.chunks.size());
  r.workers = static_cast<int64_t>(c.workers.size());
  r.ledger = static_cast<int64_t>(c.ledger.size());
  r.hosts = static_cast<int64_t>(c.hosts.size());
  r.webhooks = static_cast<int64_t>(c.webhooks.size());
  r.enrollments = static_cast<int64_t>(c.enrollments.size());
  r.ledger_counter = c.counters.ledger;
  r.webhook_counter = c.counters.webhook_outbox;
  return r;
}

// The first count that differs, or "" if none does (counters may only be higher in the target).
std::string Difference(const MigrateStoreReport& from, const MigrateStoreReport& to) {
  const std::pair<const char*, std::pair<int64_t, int64_t>> counts[] = {
      {"endpoints", {from.endpoints, to.endpoints}},
      {"api keys", {from.api_keys, to.api_keys}},
      {"jobs", {from.jobs, to.jobs}},
      {"stream chunks", {from.chunks, to.chunks}},
      {"workers", {from.workers, to.workers}},
      {"ledger rows", {from.ledger, to.ledger}},
      {"hosts", {from.hosts, to.hosts}},
      {"webhook deliveries", {from.webhooks, to.webhooks}},
      {"host enrollments", {from.enrollments, to.enrollments}}};
  for (const auto& [what, n] : counts) {
    if (n.first != n.second) {
      return std::string(what) + ": " + std::to_string(n.first) + " in the source, " +
             std::to_string(n.second) + " in the target";
    }
  }
  if (to.ledger_counter < from.ledger_counter || to.webhook_counter < from.webhook_counter) {
    return "an id counter is lower in the target";
  }
  return "";
}

}  // namespace

StatusOr<MigrateStoreReport> MigrateStore(const MigrateStoreOptions& o) {
  if (o.from == o.to) return InvalidArgumentError("--from and --to name the same store");
  if (!o.from.starts_with("postgres")) {
    std::string path = o.from.starts_with("sqlite:") ? o.from.substr(7) : o.from;
    if (path.starts_with("//")) path = path.substr(2);
    if (!path.empty() && !std::filesystem::exists(path)) {
      return NotFoundError("--from: no such file " + path);
    }
  }
  MC_ASSIGN_OR_RETURN(auto from, ControllerStore::OpenDb(o.from, o.from_password), "--from");
  MC_ASSIGN_OR_RETURN(auto to, ControllerStore::OpenDb(o.to, o.to_password), "--to");
  if (!o.replace_target) {
    MC_ASSIGN_OR_RETURN(bool empty, to->IsEmpty(), "--to");
    if (!empty) {
      return FailedPreconditionError(
          "--to already holds a controller's rows, and a copy would mix two stores: pass "
          "--replace-target to delete them first (nothing was written)");
    }
  }
  MC_ASSIGN_OR_RETURN(StoreContents contents, ExportStore(*from), "read --from");
  MC_RETURN_IF_ERROR(to->Import(contents, o.replace_target), "write --to");
  const MigrateStoreReport copied = Count(contents);
  contents = StoreContents();  // one copy in memory at a time
  MC_ASSIGN_OR_RETURN(StoreContents written, ExportStore(*to), "read --to back");
  const std::string difference = Difference(copied, Count(written));
  if (!difference.empty()) {
    return DataLossError("the copy in --to differs from --from: " + difference);
  }
  return Count(written);
}

}  // namespace mc::controller
