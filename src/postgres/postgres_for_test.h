// PostgresForTest: a throwaway PostgreSQL cluster for tests (a real server, never a mock).
//
// Start() makes a cluster in a new temp dir and runs the server as a child process listening only
// on a Unix socket in that dir (no TCP port): Debian's postgresql-15 binaries (initdb, postgres;
// $MC_POSTGRES_BINDIR, else the newest /usr/lib/postgresql/*/bin). PostgreSQL refuses to run as
// root, and CI runs as root: then the server runs as an unprivileged user ($MC_TEST_POSTGRES_USER,
// else "modelcache-test", which tools/setup-debian.sh creates, else Debian's "postgres"): the
// child drops its groups, gid and uid before exec. Otherwise it runs as the current user.
//
// initdb costs about 1.5 s, so it runs once per machine, user and PostgreSQL major version into a
// template cluster under $TMPDIR (or /tmp), created under a lock; each Start() copies the
// template (cp -a, as the server's user) and starts the copy: about 0.3 s. The settings suit tests
// and nothing else: fsync, synchronous_commit and full_page_writes off.
//
// Authentication: the superuser `kSuperuser` logs in without a password (trust); every other role
// must give its password (scram-sha-256), so a test can check a password file.
//
// A test process killed outright (SIGKILL) leaves its temp dir: the next Start() removes dirs of
// servers that are gone, once they are 10 minutes old.
//
// Stop() (and the destructor) sends SIGINT (fast shutdown) to the server's pid, the pid that the
// cluster's postmaster.pid names, waits for it to exit (SIGKILL after 30 s), and removes the temp
// dir. If the test process dies first, the kernel sends the server SIGQUIT (PR_SET_PDEATHSIG):
// no server outlives its test. That signal follows the thread that called Start(): call it from
// a thread that lives as long as the cluster (the test's main thread; Shared() does).
//
// Thread-safety: CreateDatabase and Exec may be called from any thread; Start/Stop from one.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "mc/common/status.h"

namespace mc::postgres {

class PostgresForTest {
 public:
  static constexpr const char* kSuperuser = "mc";

  // FailedPrecondition naming what is missing (the binaries, or an unprivileged user when root)
  // and how to get it; Internal with the server's log if it does not start.
  static StatusOr<std::unique_ptr<PostgresForTest>> Start();
  // One cluster for the whole test process: started by the first call (from the main thread),
  // stopped when the process exits normally.
  static StatusOr<PostgresForTest*> Shared();
  ~PostgresForTest();
  PostgresForTest(const PostgresForTest&) = delete;
  PostgresForTest& operator=(const PostgresForTest&) = delete;

  // Idempotent. Internal if the server had to be killed or its exit status was not 0.
  Status Stop();

  // A new empty database (owned by `owner`, default the superuser); returns its name.
  StatusOr<std::string> CreateDatabase(const std::string& owner = kSuperuser);
  // The libpq URI of database `db` as `user`, over the Unix socket:
  // "postgresql:///DB?host=SOCKET_DIR&port=PORT&user=USER".
  std::string Uri(const std::string& db, const std::string& user = kSuperuser) const;
  // Runs `sql` (one or more statements) in database `db` as the superuser.
  Status Exec(const std::string& db, const std::string& sql) const;

  pid_t pid() const { return pid_; }
  const std::filesystem::path& dir() const { return dir_; }
  // The server's log (stderr) so far, its last 64 KiB.
  std::string Log() const;

 private:
  PostgresForTest() = default;
  Status Launch(const std::filesystem::path& bindir, uid_t uid, gid_t gid);
  Status WaitReady();
  void ReadLog(int fd);

  std::filesystem::path dir_;  // the temp dir: data/ and the socket
  pid_t pid_ = -1;
  int port_ = 5432;  // only names the socket file: no TCP
  std::atomic<int> next_db_{0};
  std::thread log_reader_;
  mutable std::mutex log_mu_;
  std::condition_variable log_cv_;
  std::string log_;       // guarded by log_mu_
  bool log_eof_ = false;  // guarded by log_mu_
};

}  // namespace mc::postgres
