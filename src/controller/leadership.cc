// Leadership: SoleLeadership for SQLite, and the PostgreSQL campaign (leadership.h).
#include "controller/leadership.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "postgres/pg_util.h"

namespace mc::controller {
namespace {

class Sole final : public Leadership {
 public:
  Status Start(Elected elected, Deposed) override { return elected(0); }
  void Stop() override {}
  LeaderInfo Info() const override {
    LeaderInfo i;
    i.leader = true;
    i.sole = true;
    return i;
  }
};

// The advisory lock's two int4 keys (any numbers, not the migration lock's): pg_locks shows
// them as classid and objid, with objsubid 2 for the two-key form.
constexpr const char* kTryLock = "SELECT pg_try_advisory_lock(1836213093, 16)::int::int8";
constexpr const char* kUnlock = "SELECT pg_advisory_unlock(1836213093, 16)::int::int8";
constexpr const char* kHeld =
    "SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND "
    "classid = 1836213093 AND objid = 16 AND objsubid = 2 AND granted AND "
    "pid = pg_backend_pid()";
constexpr const char* kBump =
    "UPDATE leadership SET epoch = epoch + 1, leader_url = $1, elected_ms = $2 WHERE id = 1 "
    "RETURNING epoch";
constexpr const char* kRead = "SELECT epoch, leader_url FROM leadership WHERE id = 1";
// The server's side of the session: it notices a vanished peer within about 5 s and ends the
// session, which releases the lock (no-ops on a Unix socket, where a dead peer is seen at once).
constexpr const char* kKeepalives =
    "SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 2";

class PgLeadership final : public Leadership {
 public:
  PgLeadership(PostgresLeadershipOptions o, std::unique_ptr<postgres::Connection> db)
      : o_(std::move(o)), db_(std::move(db)) {}
  ~PgLeadership() override { Stop(); }

  Status Start(Elected elected, Deposed deposed) override {
    elected_ = std::move(elected);
    deposed_ = std::move(deposed);
    // The first try before returning: a controller started alone is the leader when Start()
    // returns, and a follower knows whom to forward to.
    Try();
    thread_ = std::thread([this] { Campaign(); });
    return Status::Ok();
  }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    db_.reset();  // the session ends: PostgreSQL releases the lock
    std::lock_guard<std::mutex> lock(mu_);
    info_.leader = false;
  }

  LeaderInfo Info() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return info_;
  }

 private:
  void Campaign() {
    std::unique_lock<std::mutex> lock(mu_);
    o_.clock->WaitFor(cv_, lock, o_.retry, [&] { return stopping_; });  // Start() tried once
    while (!stopping_) {
      const bool leading = info_.leader;
      lock.unlock();
      if (leading) {
        Check();
      } else {
        Try();
      }
      lock.lock();
      o_.clock->WaitFor(cv_, lock, o_.retry, [&] { return stopping_; });
    }
  }

  int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               o_.clock->Now().time_since_epoch())
        .count();
  }

  // A follower's turn: take the lock and a new epoch, or learn who leads.
  void Try() {
    Status s = db_->Exec(kKeepalives, "set keepalives");
    bool locked = false;
    int64_t epoch = 0;
    if (s.ok()) {
      s = db_->InTransaction([&]() -> Status {
        MC_ASSIGN_OR_RETURN(std::optional<int64_t> got, db_->QueryInt(kTryLock, "try the lock"));
        locked = got.value_or(0) == 1;
        if (!locked) return Status::Ok();
        MC_ASSIGN_OR_RETURN(
            std::optional<int64_t> e,
            db_->QueryInt(kBump, "bump the epoch",
                          postgres::Params().Add(o_.advertise_url).Add(NowMs())));
        if (!e) return FailedPreconditionError(db_->Context("no leadership row"));
        epoch = *e;
        return Status::Ok();
      });
    }
    if (!s.ok()) {
      // A session lock outlives a rolled-back transaction: give it back.
      if (locked) db_->QueryInt(kUnlock, "release the lock").status().IgnoreError();
      Warn("campaign: " + s.ToString());
      return;
    }
    if (locked) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        info_.leader = true;
        info_.epoch = epoch;
        info_.leader_url = o_.advertise_url;
      }
      spdlog::info("controller: elected leader, epoch {}", epoch);
      Status built = elected_(epoch);
      if (!built.ok()) {
        db_->QueryInt(kUnlock, "release the lock").status().IgnoreError();
        std::lock_guard<std::mutex> lock(mu_);
        info_.leader = false;
        spdlog::error("controller: elected (epoch {}) but could not lead: {}", epoch,
                      built.ToString());
      }
      return;
    }
    int64_t current = 0;
    std::string url;
    auto read = db_->Run(kRead, "read the leader", {}, [&](postgres::Cols& c) {
      current = c.Int();
      url = c.Bytes();
    });
    if (!read.ok()) return Warn("campaign: " + read.status().ToString());
    std::lock_guard<std::mutex> lock(mu_);
    info_.leader = false;
    info_.epoch = current;
    info_.leader_url = url;
  }

  // The leader's turn: still holding the lock, and still the newest epoch?
  void Check() {
    const int64_t mine = Info().epoch;
    std::string why;
    auto held = db_->QueryInt(kHeld, "check the lock");
    std::optional<int64_t> current;
    if (held.ok() && held->value_or(0) == 1) {
      auto row = db_->QueryInt("SELECT epoch FROM leadership WHERE id = 1", "check the epoch");
      if (!row.ok()) {
        why = row.status().ToString();
      } else if (row->value_or(0) != mine) {
        why = "another controller was elected (epoch " + std::to_string(row->value_or(0)) + ")";
      }
    } else {
      why = held.ok() ? "the leadership session lost its lock (its connection dropped)"
                      : held.status().ToString();
    }
    if (why.empty()) return;
    // Whatever happened, do not keep a lock this process no longer acts on.
    db_->QueryInt(kUnlock, "release the lock").status().IgnoreError();
    {
      std::lock_guard<std::mutex> lock(mu_);
      info_.leader = false;
    }
    spdlog::error("controller: deposed as leader (epoch {}): {}", mine, why);
    deposed_(why);
  }

  void Warn(const std::string& what) {
    // Once per distinct message: a database that stays down does not flood the log.
    if (what == last_warning_) return;
    last_warning_ = what;
    spdlog::warn("controller: leadership {}", what);
  }

  const PostgresLeadershipOptions o_;
  std::unique_ptr<postgres::Connection> db_;  // the campaign thread's only
  Elected elected_;
  Deposed deposed_;
  std::thread thread_;
  std::string last_warning_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  LeaderInfo info_;
};

}  // namespace

std::unique_ptr<Leadership> SoleLeadership() { return std::make_unique<Sole>(); }

StatusOr<std::unique_ptr<Leadership>> PostgresLeadership(PostgresLeadershipOptions options) {
  MC_ASSIGN_OR_RETURN(auto db,
                      postgres::Connection::Open(options.uri, options.password,
                                                 "controller leadership",
                                                 "modelcache-controller-leadership"));
  return std::unique_ptr<Leadership>(new PgLeadership(std::move(options), std::move(db)));
}

}  // namespace mc::controller
