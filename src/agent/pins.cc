// The public pin functions (mc/agent/pins.h) over the agent's state database.
#include "mc/agent/pins.h"

#include <memory>
#include <system_error>

#include "agent/state_db.h"

namespace mc::agent {
namespace {

namespace fs = std::filesystem;

StatusOr<std::unique_ptr<StateDb>> OpenCreating(const fs::path& state_dir) {
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  if (ec) return ErrnoError(ec.value(), "create state dir " + state_dir.string());
  return StateDb::Open(StateDbPath(state_dir));
}

}  // namespace

fs::path StateDbPath(const fs::path& state_dir) { return state_dir / "state.db"; }

Status AddOperatorPin(const fs::path& state_dir, const RepoId& repo, const CommitSha& commit,
                      Clock::TimePoint at) {
  MC_ASSIGN_OR_RETURN(auto db, OpenCreating(state_dir));
  return db->AddPin({repo.FolderName(), commit.str(), kOperatorPinOwner, at});
}

Status RemoveOperatorPin(const fs::path& state_dir, const RepoId& repo, const CommitSha& commit) {
  std::error_code ec;
  if (!fs::exists(StateDbPath(state_dir), ec)) {
    return NotFoundError("no pins: " + StateDbPath(state_dir).string() + " does not exist");
  }
  MC_ASSIGN_OR_RETURN(auto db, StateDb::Open(StateDbPath(state_dir)));
  return db->RemovePin(repo.FolderName(), commit.str(), kOperatorPinOwner);
}

StatusOr<std::vector<PinInfo>> ListPins(const fs::path& state_dir) {
  std::vector<PinInfo> pins;
  std::error_code ec;
  if (!fs::exists(StateDbPath(state_dir), ec)) return pins;  // listing creates nothing
  MC_ASSIGN_OR_RETURN(auto db, StateDb::Open(StateDbPath(state_dir)));
  MC_ASSIGN_OR_RETURN(std::vector<PinRow> rows, db->ListPins());
  for (PinRow& row : rows) {
    pins.push_back({std::move(row.repo), std::move(row.commit), std::move(row.owner), row.created});
  }
  return pins;
}

}  // namespace mc::agent
