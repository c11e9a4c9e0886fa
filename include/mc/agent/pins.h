// Pins as kept in an agent's state dir, for the tools that work beside an agent (`modelcache pin`,
// `unpin` and `pins`). They take effect whether or not an agent runs: a running agent reads the
// pins at every eviction decision, and they survive restarts. A pinned snapshot is never evicted
// to make room. The operator's pins have the owner kOperatorPinOwner; a running worker holds one
// on its model ("worker:<id>") while it lives, which only the agent adds and removes.
//
// Errors are the state database's (docs/agent.md): Unavailable when another process held its
// write lock too long (retry), ResourceExhausted when the disk is full, NotFound where a function
// says so. Messages name the file. Thread-safe: each call opens the database, and SQLite's locking
// serializes it with the agent's own writes.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "mc/common/clock.h"
#include "mc/common/ids.h"
#include "mc/common/status.h"

namespace mc::agent {

inline constexpr char kOperatorPinOwner[] = "operator";
// The controller's pins: the copies it keeps of the commits its endpoints use (cachedReplicas,
// and the fleet's last copy of a commit). Set and released through POST/DELETE /v1/pins.
inline constexpr char kFleetPinOwner[] = "fleet";

struct PinInfo {
  std::string repo;    // the cache folder name, "models--org--name" (RepoId::FromFolderName)
  std::string commit;  // 40 hex
  std::string owner;   // kOperatorPinOwner, kFleetPinOwner or "worker:<id>"
  Clock::TimePoint created;
};

// The agent's state database in `state_dir` (where the pins are kept).
std::filesystem::path StateDbPath(const std::filesystem::path& state_dir);

// Pins (repo, commit) for the operator; a commit may be pinned before it is downloaded. Creates
// `state_dir` and its database when missing. Idempotent: a pin made before keeps its time.
Status AddOperatorPin(const std::filesystem::path& state_dir, const RepoId& repo,
                      const CommitSha& commit, Clock::TimePoint at);

// Removes the operator's pin of (repo, commit); a worker's pin stays. NotFound if the operator
// held none (also when `state_dir` has no database: nothing is created).
Status RemoveOperatorPin(const std::filesystem::path& state_dir, const RepoId& repo,
                         const CommitSha& commit);

// Every pin, the operator's and the workers', ordered by repo, commit and owner. Creates nothing:
// a state dir without a database has no pins.
StatusOr<std::vector<PinInfo>> ListPins(const std::filesystem::path& state_dir);

}  // namespace mc::agent
