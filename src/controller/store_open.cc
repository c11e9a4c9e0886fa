// ControllerStore::OpenDb (the --db string → a store) and ExportStore.
#include <string>
#include <system_error>
#include <vector>

#include "controller/store.h"

namespace mc::controller {

namespace fs = std::filesystem;

StatusOr<std::unique_ptr<ControllerStore>> ControllerStore::OpenDb(
    const std::string& db, const std::optional<std::string>& password) {
  if (db.starts_with("postgresql://") || db.starts_with("postgres://")) {
    return OpenPostgres(db, password);
  }
  const size_t colon = db.find(':');
  const bool has_scheme = colon != std::string::npos && colon > 1 && db.find('/') > colon;
  if (has_scheme && !db.starts_with("sqlite:")) {
    return InvalidArgumentError("--db " + db.substr(0, colon) +
                                ": not a store this build knows; use sqlite:PATH or "
                                "postgresql://[USER@]HOST[:PORT]/DBNAME");
  }
  std::string path = db.starts_with("sqlite:") ? db.substr(7) : db;
  if (path.starts_with("//")) path = path.substr(2);  // sqlite://path
  if (path.empty()) {
    return InvalidArgumentError("--db needs a file: sqlite:PATH, or postgresql://HOST/DBNAME");
  }
  const fs::path p = fs::absolute(path);
  std::error_code ec;
  // Directories made here are the owner's only (0700): the database holds sealed secrets and
  // the jobs' inputs and outputs.
  fs::path missing = p.parent_path();
  std::vector<fs::path> made;
  while (!missing.empty() && !fs::exists(missing, ec)) {
    made.push_back(missing);
    missing = missing.parent_path();
  }
  fs::create_directories(p.parent_path(), ec);
  if (ec) return ErrnoError(ec.value(), "create " + p.parent_path().string());
  for (const fs::path& dir : made) {
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  }
  return Open(p);
}

std::optional<fs::path> SqlitePathOf(const std::string& db) {
  if (db.starts_with("postgresql://") || db.starts_with("postgres://")) return std::nullopt;
  const size_t colon = db.find(':');
  const bool has_scheme = colon != std::string::npos && colon > 1 && db.find('/') > colon;
  if (has_scheme && !db.starts_with("sqlite:")) return std::nullopt;
  std::string path = db.starts_with("sqlite:") ? db.substr(7) : db;
  if (path.starts_with("//")) path = path.substr(2);
  if (path.empty()) return std::nullopt;
  return fs::absolute(path);
}

StatusOr<StoreContents> ExportStore(const ControllerStore& store) {
  StoreContents c;
  // The counters first: rows appended while this runs (it should not happen: the controllers
  // are stopped) then have ids above them rather than below.
  MC_ASSIGN_OR_RETURN(c.counters, store.GetIdCounters());
  MC_ASSIGN_OR_RETURN(c.endpoints, store.ListEndpoints());
  MC_ASSIGN_OR_RETURN(c.api_keys, store.ListApiKeys());
  MC_ASSIGN_OR_RETURN(c.jobs, store.ListJobs("", {}));
  for (const JobRecord& j : c.jobs) {
    MC_ASSIGN_OR_RETURN(std::vector<StreamChunk> chunks, store.ListChunks(j.id, 0));
    c.chunks.insert(c.chunks.end(), chunks.begin(), chunks.end());
  }
  MC_ASSIGN_OR_RETURN(c.workers, store.ListWorkers("", false));
  MC_ASSIGN_OR_RETURN(c.ledger, store.ListLedger(""));
  MC_ASSIGN_OR_RETURN(LedgerSummary summary, store.SummarizeLedger());
  c.ledger_totals = std::move(summary.totals);
  MC_ASSIGN_OR_RETURN(c.hosts, store.ListHosts());
  MC_ASSIGN_OR_RETURN(c.enrollments, store.ListHostEnrollments());
  MC_ASSIGN_OR_RETURN(c.webhooks, store.ListWebhooks());
  return c;
}

}  // namespace mc::controller
