#include "agent/inventory.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <unordered_map>

#include "mc/cache/cache_scan.h"
#include "mc/common/byte_count.h"
#include "mc/scheduler/eviction.h"

namespace mc::agent {
namespace {

std::string SnapshotId(const std::string& folder, const std::string& commit) {
  return folder + "@" + commit;
}

}  // namespace

Inventory::Inventory(cache::CacheStore& store, StateDb& db, BudgetOptions budget, Clock& clock)
    : store_(store), db_(db), budget_(budget), clock_(clock) {}

StatusOr<Inventory::Snapshot> Inventory::ReadSnapshot(const RepoId& repo,
                                                      const CommitSha& commit) const {
  MC_ASSIGN_OR_RETURN(std::vector<cache::SnapshotEntry> entries,
                      store_.ListSnapshotFiles(repo, commit));
  Snapshot snap{.repo = repo, .commit = commit.str(), .blobs = {}, .size = 0, .files = 0,
                .last_use = {}, .created = {}, .completions = {}};
  std::set<std::string> seen;
  for (const cache::SnapshotEntry& e : entries) {
    ++snap.files;
    // A regular file (no-symlink mode) has no blob name: it is its own blob.
    std::string name = e.etag ? e.etag->str() : "file:" + e.path.str();
    if (seen.insert(name).second) {
      snap.blobs.push_back({name, e.size});
      snap.size += e.size;
    }
  }
  return snap;
}

Status Inventory::Reconcile() {
  MC_ASSIGN_OR_RETURN(cache::CacheScan scan, cache::ScanCache(store_), "scan the cache");
  for (const std::string& w : scan.warnings) spdlog::warn("agent: cache: {}", w);
  MC_ASSIGN_OR_RETURN(std::vector<SnapshotRow> rows, db_.ListSnapshots());
  MC_ASSIGN_OR_RETURN(std::vector<CompletionRow> completions, db_.ListCompletions());
  std::map<Key, SnapshotRow> known;
  for (SnapshotRow& r : rows) known.emplace(Key{r.repo, r.commit}, std::move(r));

  std::map<Key, Snapshot> found;
  std::vector<SnapshotRow> fresh_rows;
  for (const cache::CachedRepo& repo : scan.repos) {
    for (const cache::CachedRevision& rev : repo.revisions) {
      auto commit = CommitSha::Parse(rev.commit);
      if (!commit.ok()) continue;
      auto snap = ReadSnapshot(repo.repo, *commit);
      if (!snap.ok()) {
        spdlog::warn("agent: skipping {}@{}: {}", repo.repo.id(), rev.commit,
                     snap.status().ToString());
        continue;
      }
      Key key{repo.repo.FolderName(), rev.commit};
      auto row = known.find(key);
      snap->last_use = row != known.end() ? row->second.last_use : rev.last_modified;
      snap->created = row != known.end() ? row->second.created : rev.last_modified;
      fresh_rows.push_back({key.first, key.second, snap->size, snap->files, snap->last_use,
                            snap->created});
      found.emplace(std::move(key), std::move(*snap));
    }
  }
  for (const CompletionRow& c : completions) {
    auto it = found.find(Key{c.repo, c.commit});
    if (it != found.end()) it->second.completions.insert(c.filter);
  }
  MC_RETURN_IF_ERROR(db_.ReplaceSnapshots(fresh_rows), "record the cache scan");
  std::lock_guard<std::mutex> lock(mu_);
  snapshots_ = std::move(found);
  // The scan's temp files include those of downloads in flight: their reservations cover them.
  const auto fetching = FetchingLocked();
  uint64_t partial = 0;
  for (const auto& path : scan.incomplete_files) {
    const std::string folder = path.parent_path().parent_path().filename().string();
    const std::string name = path.filename().string();
    if (fetching.contains({folder, name.substr(0, name.find('.'))})) continue;
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) partial += static_cast<uint64_t>(st.st_size);
  }
  partial_bytes_ = partial;
  spdlog::debug("agent: inventory: {} snapshots, {} in blobs, {} in partial downloads",
               snapshots_.size(), ByteCount(UsedLocked() - partial).ToHuman(),
               ByteCount(partial).ToHuman());
  return Status::Ok();
}

bool Inventory::IsComplete(const RepoId& repo, const CommitSha& commit,
                           const std::string& filter) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = snapshots_.find(Key{repo.FolderName(), commit.str()});
    if (it == snapshots_.end()) return false;
    const auto& done = it->second.completions;
    if (!done.contains("") && !done.contains(filter)) return false;
  }
  // Someone may have removed it by hand (`modelcache rm`) behind our back.
  struct stat st;
  return ::stat(store_.layout().SnapshotDir(repo, commit).c_str(), &st) == 0;
}

void Inventory::Touch(const RepoId& repo, const CommitSha& commit) {
  const TimePoint now = clock_.Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = snapshots_.find(Key{repo.FolderName(), commit.str()});
    if (it == snapshots_.end()) return;
    const uint32_t cap = budget_.policy == scheduler::EvictionPolicy::kS3Fifo ? 4 : 1u << 30;
    it->second.hits = std::min(it->second.hits + 1, cap);
    if (now <= it->second.last_use) return;
    it->second.last_use = now;
  }
  Status s = db_.TouchSnapshot(repo.FolderName(), commit.str(), now);
  if (!s.ok()) spdlog::warn("agent: record last use of {}: {}", repo.id(), s.ToString());
}

uint64_t Inventory::UsedLocked() const {
  std::set<std::pair<std::string, std::string>> blobs;
  uint64_t used = partial_bytes_;
  for (const auto& [key, snap] : snapshots_) {
    for (const BlobUse& b : snap.blobs) {
      if (blobs.emplace(key.first, b.etag).second) used += b.size;
    }
  }
  return used;
}

std::set<std::pair<std::string, std::string>> Inventory::SnapshotBlobsLocked() const {
  std::set<std::pair<std::string, std::string>> blobs;
  for (const auto& [key, snap] : snapshots_) {
    for (const BlobUse& b : snap.blobs) blobs.emplace(key.first, b.etag);
  }
  return blobs;
}

std::set<std::pair<std::string, std::string>> Inventory::FetchingLocked() const {
  std::set<std::pair<std::string, std::string>> owned;
  for (const auto& [k, r] : reservations_) {
    for (const BlobUse& b : r.blobs) {
      if (b.fetch) owned.emplace(r.repo_folder, b.etag);
    }
  }
  return owned;
}

void Inventory::RefreshPartialLocked() {
  const auto owned = FetchingLocked();
  uint64_t partial = 0;
  std::error_code ec;
  for (const auto& repo : std::filesystem::directory_iterator(store_.layout().root(), ec)) {
    const std::string folder = repo.path().filename().string();
    if (!RepoId::FromFolderName(folder).ok()) continue;
    std::error_code ec2;
    for (const auto& f : std::filesystem::directory_iterator(repo.path() / "blobs", ec2)) {
      const std::string name = f.path().filename().string();
      if (!name.ends_with(".incomplete")) continue;
      if (owned.contains({folder, name.substr(0, name.find('.'))})) continue;
      struct stat st;
      if (::stat(f.path().c_str(), &st) == 0) partial += static_cast<uint64_t>(st.st_size);
    }
  }
  partial_bytes_ = partial;
}

uint64_t Inventory::ReservedLocked() const {
  // A fetched blob that a scan already found linked in a snapshot is in UsedLocked(); counting it
  // here too made a maintenance tick evict snapshots that fit (issue 17).
  const auto linked = SnapshotBlobsLocked();
  uint64_t reserved = 0;
  for (const auto& [key, r] : reservations_) {
    uint64_t landed = 0;
    for (const BlobUse& b : r.blobs) {
      if (b.fetch && linked.contains({r.repo_folder, b.etag})) landed += b.size;
    }
    reserved += r.bytes > landed ? r.bytes - landed : 0;
  }
  return reserved;
}

Status Inventory::EvictLocked(uint64_t need_bytes) {
  // Build the policy's input: blobs interned per repo folder, every snapshot, and every download
  // in flight as a partial snapshot holding the blobs its plan links.
  std::unordered_map<std::string, uint32_t> index;
  scheduler::Disk disk{.capacity = budget_.capacity,
                       .used_bytes = UsedLocked(),
                       .reserved_bytes = ReservedLocked(),
                       .high_watermark = budget_.high_watermark,
                       .low_watermark = budget_.low_watermark,
                       .blobs = {},
                       .policy = budget_.policy,
                       .gdsf_inflation = gdsf_inflation_};
  auto intern = [&](const std::string& folder, const BlobUse& b) {
    auto [it, added] = index.emplace(folder + "/" + b.etag, static_cast<uint32_t>(disk.blobs.size()));
    if (added) disk.blobs.push_back(b.size);
    return it->second;
  };
  MC_ASSIGN_OR_RETURN(std::vector<PinRow> pins, db_.ListPins(), "read pins");
  std::set<Key> pinned;
  for (const PinRow& p : pins) pinned.emplace(p.repo, p.commit);
  std::set<Key> downloading;
  for (const auto& [k, r] : reservations_) downloading.emplace(r.repo_folder, r.commit);

  std::vector<scheduler::SnapshotState> states;
  states.reserve(snapshots_.size() + reservations_.size());
  for (const auto& [key, snap] : snapshots_) {
    scheduler::SnapshotState s{.id = SnapshotId(key.first, key.second),
                               .blobs = {},
                               .last_use = snap.last_use,
                               .pinned = pinned.contains(key),
                               .partial = downloading.contains(key),
                               .hits = snap.hits,
                               .main_queue = snap.main_queue,
                               .queue_seq = snap.queue_seq};
    for (const BlobUse& b : snap.blobs) s.blobs.push_back(intern(key.first, b));
    states.push_back(std::move(s));
  }
  for (const auto& [k, r] : reservations_) {
    scheduler::SnapshotState s{.id = "download:" + k, .blobs = {}, .last_use = {},
                               .pinned = false, .partial = true};
    for (const BlobUse& b : r.blobs) s.blobs.push_back(intern(r.repo_folder, b));
    states.push_back(std::move(s));
  }
  MC_ASSIGN_OR_RETURN(scheduler::EvictionPlan plan,
                      scheduler::PlanEviction(states, disk, need_bytes));
  std::map<std::string, Key> by_id;
  for (const auto& [key, snap] : snapshots_) by_id.emplace(SnapshotId(key.first, key.second), key);
  gdsf_inflation_ = plan.gdsf_inflation;
  for (const scheduler::Requeue& q : plan.requeue) {  // S3-FIFO moves to the main queue
    auto it = by_id.find(q.id);
    if (it == by_id.end()) continue;
    Snapshot& snap = snapshots_.at(it->second);
    snap.main_queue = true;
    snap.hits = q.hits;
    snap.queue_seq = next_queue_seq_++;
  }
  for (const std::string& id : plan.evict) {
    auto it = by_id.find(id);
    if (it == by_id.end()) continue;  // a download entry: never named, but be safe
    MC_RETURN_IF_ERROR(RemoveLocked(it->second), "evict " + id);
  }
  return Status::Ok();
}

Status Inventory::RemoveLocked(const Key& key) {
  auto it = snapshots_.find(key);
  if (it == snapshots_.end()) return NotFoundError("no snapshot " + key.first + "@" + key.second);
  MC_ASSIGN_OR_RETURN(Revision rev, Revision::Parse(key.second));
  const RepoId repo = it->second.repo;
  auto removed = cache::RemoveRevision(store_, repo, rev);
  if (!removed.ok() && removed.status().code() != StatusCode::kNotFound) return removed.status();
  const uint64_t freed = removed.ok() ? removed->bytes_freed : 0;
  spdlog::info("agent: evicted {}@{} ({} freed)", repo.id(), key.second,
               ByteCount(freed).ToHuman());
  MC_RETURN_IF_ERROR(db_.DeleteSnapshot(key.first, key.second));
  snapshots_.erase(it);
  ++evictions_;
  evicted_bytes_ += freed;
  return Status::Ok();
}

Status Inventory::Reserve(const std::string& key, const RepoId& repo, const CommitSha& commit,
                          uint64_t bytes, std::vector<BlobUse> blobs) {
  std::lock_guard<std::mutex> lock(mu_);
  reservations_.erase(key);
  MC_RETURN_IF_ERROR(EvictLocked(bytes), "reserve " + ByteCount(bytes).ToHuman() + " for " +
                                             repo.id() + "@" + commit.str());
  reservations_[key] = Reservation{repo.FolderName(), commit.str(), bytes, std::move(blobs)};
  return Status::Ok();
}

void Inventory::Release(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  reservations_.erase(key);
  RefreshPartialLocked();
}

Status Inventory::RecordComplete(const std::string& key, const RepoId& repo,
                                 const CommitSha& commit, const std::string& filter) {
  MC_ASSIGN_OR_RETURN(Snapshot snap, ReadSnapshot(repo, commit), "read the new snapshot");
  const TimePoint now = clock_.Now();
  const Key k{repo.FolderName(), commit.str()};
  std::lock_guard<std::mutex> lock(mu_);
  reservations_.erase(key);
  auto old = snapshots_.find(k);
  snap.created = old != snapshots_.end() ? old->second.created : now;
  if (old != snapshots_.end()) {
    snap.completions = old->second.completions;
    snap.hits = old->second.hits;
    snap.main_queue = old->second.main_queue;
    snap.queue_seq = old->second.queue_seq;
  } else {
    snap.queue_seq = next_queue_seq_++;
  }
  snap.completions.insert(filter);
  snap.last_use = now;
  MC_RETURN_IF_ERROR(
      db_.UpsertSnapshot({k.first, k.second, snap.size, snap.files, snap.last_use, snap.created}));
  MC_RETURN_IF_ERROR(db_.AddCompletion({k.first, k.second, filter, now}));
  snapshots_.insert_or_assign(k, std::move(snap));
  RefreshPartialLocked();
  return Status::Ok();
}

Status Inventory::EnforceWatermarks() {
  std::lock_guard<std::mutex> lock(mu_);
  RefreshPartialLocked();
  return EvictLocked(0);
}

Status Inventory::Evict(const RepoId& repo, const CommitSha& commit) {
  const Key key{repo.FolderName(), commit.str()};
  MC_ASSIGN_OR_RETURN(std::vector<PinRow> pins, db_.ListPins());
  for (const PinRow& p : pins) {
    if (p.repo == key.first && p.commit == key.second) {
      return FailedPreconditionError(repo.id() + "@" + commit.str() + " is pinned by " + p.owner +
                                     "; unpin it first");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [k, r] : reservations_) {
    if (r.repo_folder == key.first && r.commit == key.second) {
      return FailedPreconditionError(repo.id() + "@" + commit.str() + " is downloading");
    }
  }
  return RemoveLocked(key);
}

std::vector<SnapshotView> Inventory::Snapshots() const {
  auto pins = db_.ListPins();
  std::map<Key, std::vector<std::string>> owners;
  if (pins.ok()) {
    for (const PinRow& p : *pins) owners[{p.repo, p.commit}].push_back(p.owner);
  }
  std::vector<SnapshotView> out;
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, std::vector<std::pair<std::string, CommitSha>>> refs;  // by repo folder
  for (const auto& [key, snap] : snapshots_) {
    if (refs.contains(key.first)) continue;
    auto listed = store_.ListRefs(snap.repo);
    refs[key.first] = listed.ok() ? std::move(*listed) : decltype(refs)::mapped_type{};
  }
  for (const auto& [key, snap] : snapshots_) {
    SnapshotView v{.repo = snap.repo,
                   .commit = snap.commit,
                   .refs = {},
                   .size = snap.size,
                   .files = snap.files,
                   .complete = !snap.completions.empty(),
                   .completions = {snap.completions.begin(), snap.completions.end()},
                   .pins = owners[key],
                   .last_use = snap.last_use};
    for (const auto& [name, commit] : refs[key.first]) {
      if (commit.str() == snap.commit) v.refs.push_back(name);
    }
    out.push_back(std::move(v));
  }
  return out;
}

BudgetView Inventory::Budget() const {
  std::lock_guard<std::mutex> lock(mu_);
  return BudgetView{.capacity = budget_.capacity,
                    .used = UsedLocked(),
                    .partial = partial_bytes_,
                    .reserved = ReservedLocked(),
                    .high_watermark = budget_.high_watermark,
                    .low_watermark = budget_.low_watermark,
                    .evictions = evictions_,
                    .evicted_bytes = evicted_bytes_};
}

std::filesystem::path Inventory::SnapshotDir(const RepoId& repo, const CommitSha& commit) const {
  return store_.layout().SnapshotDir(repo, commit);
}

}  // namespace mc::agent
