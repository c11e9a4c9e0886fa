// Leadership: which controller of several sharing one database runs the scheduling loop
// (docs/controller.md, "Several controllers").
//
// On PostgreSQL every controller campaigns: each `retry` (1 s, on the injected clock) a follower
// tries pg_try_advisory_lock on a session of its own (a dedicated connection, never the store's),
// and the one that gets it increments the leadership epoch (the one row of table `leadership`,
// with the leader's URL and the time) in the same transaction. The epoch is the fencing token:
// the leader sends it with every start and stop to an agent (which refuses an older one) and
// writes it on worker rows (the store refuses to overwrite a row of a newer epoch). The leader
// checks every `retry` that its session still holds the lock and that the row still carries its
// epoch; if not (the connection dropped and libpq reconnected, an operator terminated the
// backend, the database is unreachable), it is deposed at once. When a leader dies its session
// ends and PostgreSQL releases the lock: the next follower's try, within `retry`, takes over.
// The leadership session asks the server for TCP keepalives of 2 s idle, 1 s apart, 2 probes, so
// that the server releases the lock of a leader whose machine vanished within about 5 s.
//
// On SQLite (one controller) the controller is always the leader, with epoch 0: nothing is
// fenced (agents accept requests without an epoch, as from controllers before fencing).
//
// Thread-safety: all methods may be called from any thread; the callbacks run on the campaign
// thread, one at a time (elected, then deposed, then perhaps elected again).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "mc/common/clock.h"
#include "mc/common/status.h"

namespace mc::controller {

struct LeaderInfo {
  bool leader = false;     // this controller leads
  int64_t epoch = 0;       // the current leader's epoch (this one's while it leads); 0 unknown
  std::string leader_url;  // the current leader's URL as it advertised it ("" unknown)
  bool sole = false;       // SQLite: the one controller, always leading
};

class Leadership {
 public:
  // Builds what the leader runs; an error gives the lock back (PostgreSQL: the next try, or
  // another controller, takes it).
  using Elected = std::function<Status(int64_t epoch)>;
  using Deposed = std::function<void(const std::string& why)>;
  virtual ~Leadership() = default;
  // Starts campaigning (PostgreSQL: a thread) and calls `elected` when this controller becomes
  // the leader, `deposed` when it stops being one. SoleLeadership calls `elected(0)` before it
  // returns, and returns its error.
  virtual Status Start(Elected elected, Deposed deposed) = 0;
  // Stops campaigning and releases the lock (closes the session); no callback after it returns.
  virtual void Stop() = 0;
  virtual LeaderInfo Info() const = 0;
  // The epoch while this controller leads, else 0 (what goes on requests to agents).
  int64_t Epoch() const {
    LeaderInfo i = Info();
    return i.leader ? i.epoch : 0;
  }
};

// SQLite: always the leader, epoch 0.
std::unique_ptr<Leadership> SoleLeadership();

struct PostgresLeadershipOptions {
  std::string uri;                    // the store's --db URI
  std::optional<std::string> password;
  std::string advertise_url;          // how other controllers reach this one
  std::chrono::milliseconds retry{1000};
  Clock* clock = &Clock::Real();
};

// Connects the leadership session (the schema must exist: open the store first).
StatusOr<std::unique_ptr<Leadership>> PostgresLeadership(PostgresLeadershipOptions options);

}  // namespace mc::controller
