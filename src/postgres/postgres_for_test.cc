#include "postgres/postgres_for_test.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>

#include "postgres/pg_util.h"

namespace mc::postgres {
namespace {

namespace fs = std::filesystem;

constexpr size_t kLogKeep = 64 * 1024;
constexpr const char* kReadyLine = "database system is ready to accept connections";
constexpr const char* kTemplateVersion = "v2";  // bump when the template's initdb changes
constexpr auto kStaleAfter = std::chrono::minutes(10);

// Who the server runs as.
struct ServerUser {
  uid_t uid;
  gid_t gid;
  bool switch_user;  // we are root: drop to uid/gid in the child
};

fs::path TempRoot() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? fs::path(tmp) : fs::path("/tmp");
}

// $MC_POSTGRES_BINDIR, else the newest /usr/lib/postgresql/<major>/bin with initdb in it.
StatusOr<fs::path> FindBindir() {
  if (const char* env = std::getenv("MC_POSTGRES_BINDIR"); env != nullptr && *env != '\0') {
    return fs::path(env);
  }
  fs::path best;
  int best_major = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const int major = std::atoi(entry.path().filename().c_str());
    if (major > best_major && fs::exists(entry.path() / "bin" / "initdb")) {
      best = entry.path() / "bin";
      best_major = major;
    }
  }
  if (best_major < 0) {
    return FailedPreconditionError(
        "PostgreSQL's server binaries (initdb, postgres) are not in /usr/lib/postgresql/*/bin: "
        "run tools/setup-debian.sh (it installs postgresql-15), or set MC_POSTGRES_BINDIR");
  }
  return best;
}

StatusOr<ServerUser> FindUser() {
  if (::geteuid() != 0) return ServerUser{::geteuid(), ::getegid(), false};
  std::vector<std::string> names;
  if (const char* env = std::getenv("MC_TEST_POSTGRES_USER"); env != nullptr && *env != '\0') {
    names.push_back(env);
  } else {
    names = {"modelcache-test", "postgres"};
  }
  for (const std::string& name : names) {
    if (const passwd* pw = ::getpwnam(name.c_str()); pw != nullptr && pw->pw_uid != 0) {
      return ServerUser{pw->pw_uid, pw->pw_gid, true};
    }
  }
  return FailedPreconditionError(
      "running as root, and PostgreSQL refuses to: no unprivileged user to run it as "
      "(run tools/setup-debian.sh, which creates modelcache-test, or set MC_TEST_POSTGRES_USER)");
}

// A new dir (mode 0700) under `parent` owned by the server's user.
StatusOr<fs::path> MakeDir(const fs::path& parent, const std::string& prefix, const ServerUser& u) {
  std::string tmpl = (parent / (prefix + "XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoError(errno, "mkdtemp " + tmpl);
  if (::chown(tmpl.c_str(), u.uid, u.gid) != 0) return ErrnoError(errno, "chown " + tmpl);
  return fs::path(tmpl);
}

// Forks and execs argv[0] as the server's user, in `cwd`, stdout and stderr to `out_fd`, with a
// small fixed environment. Only async-signal-safe calls between fork and exec.
StatusOr<pid_t> Spawn(const ServerUser& u, const std::vector<std::string>& argv, int out_fd,
                      const fs::path& cwd, bool die_with_parent) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  static const char* const kEnv[] = {"LC_ALL=C", "LANG=C", "TZ=UTC", "PATH=/usr/bin:/bin", nullptr};
  const std::string dir = cwd.string();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoError(errno, "fork");
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, 0);
    ::dup2(out_fd >= 0 ? out_fd : null_fd, 1);
    ::dup2(out_fd >= 0 ? out_fd : null_fd, 2);
    ::close_range(3, ~0U, 0);
    if (u.switch_user &&
        (::setgroups(0, nullptr) != 0 || ::setgid(u.gid) != 0 || ::setuid(u.uid) != 0)) {
      ::_exit(126);
    }
    // After setuid, which clears it. If the parent is already gone, it was never sent.
    if (die_with_parent && (::prctl(PR_SET_PDEATHSIG, SIGQUIT) != 0 || ::getppid() != parent)) {
      ::_exit(125);
    }
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    ::execve(args[0], args.data(), const_cast<char* const*>(kEnv));
    ::_exit(127);
  }
  return pid;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs argv to its end as the server's user; Internal with its output if it fails.
Status RunToEnd(const ServerUser& u, const std::vector<std::string>& argv, const fs::path& cwd) {
  const fs::path out = cwd / ("." + fs::path(argv[0]).filename().string() + ".out");
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, "create " + out.string());
  StatusOr<pid_t> pid = Spawn(u, argv, fd, cwd, /*die_with_parent=*/true);
  ::close(fd);
  MC_RETURN_IF_ERROR(pid.status());
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string output = ReadFile(out);
  fs::remove(out);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  return InternalError(argv[0] + " failed (status " + std::to_string(status) + "): " + output);
}

// The template cluster (initdb's output), made once per machine, user and major version.
StatusOr<fs::path> EnsureTemplate(const fs::path& bindir, const ServerUser& u) {
  const fs::path root = TempRoot();
  const std::string name = "modelcache-pg-template-" + bindir.parent_path().filename().string() +
                           "-r" + std::to_string(::geteuid()) + "-u" + std::to_string(u.uid) + "-" +
                           kTemplateVersion;
  const fs::path tmpl = root / name;
  const std::string lock_path = (root / (name + ".lock")).string();
  const int lock = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (lock < 0) return ErrnoError(errno, "open " + lock_path);
  ::flock(lock, LOCK_EX);  // released by close, also if we die
  Status made = Status::Ok();
  if (!fs::exists(tmpl / "data" / "PG_VERSION")) {
    made = [&]() -> Status {
      MC_ASSIGN_OR_RETURN(fs::path work, MakeDir(root, name + "-new-", u));
      MC_RETURN_IF_ERROR(RunToEnd(u,
                                  {(bindir / "initdb").string(), "-D", (work / "data").string(),
                                   "-U", PostgresForTest::kSuperuser, "-A", "trust", "-E", "UTF8",
                                   "--locale=C", "--no-sync", "--no-instructions",
                                   "--wal-segsize=1"},  // 1 MiB WAL files: less to copy
                                  work));
      std::error_code ec;
      fs::remove_all(tmpl, ec);  // an incomplete one
      fs::rename(work, tmpl, ec);
      if (ec) return ErrnoError(ec.value(), "rename " + work.string());
      return Status::Ok();
    }();
  }
  ::close(lock);
  MC_RETURN_IF_ERROR(made, "make the template cluster");
  return tmpl;
}

// Removes the clusters of test processes that died (SIGKILL, abort) without removing theirs:
// dirs whose server is gone, untouched for kStaleAfter (a cluster being set up has no pid yet).
void SweepStaleClusters() {
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (const auto& entry : fs::directory_iterator(TempRoot(), ec)) {
    if (!entry.path().filename().string().starts_with("mc-pg-")) continue;
    const auto mtime = fs::last_write_time(entry.path(), ec);
    if (ec || now - mtime < kStaleAfter) continue;
    std::ifstream pidfile(entry.path() / "data" / "postmaster.pid");
    pid_t pid = -1;
    if (pidfile >> pid && pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM)) continue;
    fs::remove_all(entry.path(), ec);
  }
}

}  // namespace

StatusOr<std::unique_ptr<PostgresForTest>> PostgresForTest::Start() {
  MC_ASSIGN_OR_RETURN(fs::path bindir, FindBindir());
  MC_ASSIGN_OR_RETURN(ServerUser user, FindUser());
  SweepStaleClusters();
  MC_ASSIGN_OR_RETURN(fs::path tmpl, EnsureTemplate(bindir, user));
  std::unique_ptr<PostgresForTest> pg(new PostgresForTest());
  MC_ASSIGN_OR_RETURN(pg->dir_, MakeDir(TempRoot(), "mc-pg-", user));
  const fs::path data = pg->dir_ / "data";
  MC_RETURN_IF_ERROR(
      RunToEnd(user, {"/bin/cp", "-a", (tmpl / "data").string(), data.string()}, pg->dir_),
      "copy the template cluster");
  const fs::path hba = data / "pg_hba.conf";
  std::ofstream(hba, std::ios::trunc) << "local all " << kSuperuser << " trust\n"
                                      << "local all all scram-sha-256\n";
  if (::chown(hba.c_str(), user.uid, user.gid) != 0)
    return ErrnoError(errno, "chown " + hba.string());
  MC_RETURN_IF_ERROR(pg->Launch(bindir, user.uid, user.gid));
  MC_RETURN_IF_ERROR(pg->WaitReady());
  return pg;
}

Status PostgresForTest::Launch(const fs::path& bindir, uid_t uid, gid_t gid) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  const std::vector<std::string> argv = {(bindir / "postgres").string(),
                                         "-D",
                                         (dir_ / "data").string(),
                                         "-k",
                                         dir_.string(),
                                         "-p",
                                         std::to_string(port_),
                                         "-c",
                                         "listen_addresses=",
                                         "-c",
                                         "fsync=off",
                                         "-c",
                                         "synchronous_commit=off",
                                         "-c",
                                         "full_page_writes=off",
                                         "-c",
                                         "max_connections=50",
                                         "-c",
                                         "shared_buffers=16MB",
                                         "-c",
                                         "lc_messages=C",
                                         "-c",
                                         "logging_collector=off"};
  StatusOr<pid_t> pid =
      Spawn(ServerUser{uid, gid, ::geteuid() == 0}, argv, fds[1], dir_, /*die_with_parent=*/true);
  ::close(fds[1]);
  if (!pid.ok()) {
    ::close(fds[0]);
    return pid.status();
  }
  pid_ = *pid;
  log_reader_ = std::thread([this, fd = fds[0]] { ReadLog(fd); });
  return Status::Ok();
}

// Until every server process has closed its end (they all inherit stderr).
void PostgresForTest::ReadLog(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard<std::mutex> lock(log_mu_);
    if (n <= 0) {
      log_eof_ = true;
      log_cv_.notify_all();
      break;
    }
    log_.append(buf, static_cast<size_t>(n));
    if (log_.size() > 2 * kLogKeep) log_.erase(0, log_.size() - kLogKeep);
    log_cv_.notify_all();
  }
  ::close(fd);
}

Status PostgresForTest::WaitReady() {
  {
    std::unique_lock<std::mutex> lock(log_mu_);
    // A bound for a server that hangs, not a timing assumption: it is ready in well under 1 s.
    const bool done = log_cv_.wait_for(lock, std::chrono::seconds(60), [&] {
      return log_eof_ || log_.find(kReadyLine) != std::string::npos;
    });
    if (!done || log_.find(kReadyLine) == std::string::npos) {
      const std::string log = log_;
      lock.unlock();
      Stop().IgnoreError();
      return InternalError("the test PostgreSQL server did not start; its log:\n" + log);
    }
  }
  // The pid the cluster's lock file names is the one Stop() signals: they must be the same.
  std::ifstream pidfile(dir_ / "data" / "postmaster.pid");
  pid_t named = -1;
  pidfile >> named;
  if (named != pid_) {
    Stop().IgnoreError();
    return InternalError("postmaster.pid names pid " + std::to_string(named) + ", not the server " +
                         std::to_string(pid_));
  }
  return Status::Ok();
}

Status PostgresForTest::Stop() {
  Status result = Status::Ok();
  if (pid_ > 0) {
    ::kill(pid_, SIGINT);  // fast shutdown: ends sessions, writes a checkpoint, exits
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    bool exited = true;
    if (pidfd >= 0) {
      pollfd p{.fd = pidfd, .events = POLLIN, .revents = 0};
      exited = ::poll(&p, 1, 30'000) > 0;
      ::close(pidfd);
    }
    if (!exited) {
      ::kill(pid_, SIGKILL);
      result = InternalError("the test PostgreSQL server ignored SIGINT for 30 s: killed");
    }
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    if (result.ok() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      result = InternalError("the test PostgreSQL server exited with status " +
                             std::to_string(status) + "; its log:\n" + Log());
    }
    pid_ = -1;
  }
  if (log_reader_.joinable()) log_reader_.join();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    dir_.clear();
  }
  return result;
}

PostgresForTest::~PostgresForTest() { Stop().IgnoreError(); }

StatusOr<PostgresForTest*> PostgresForTest::Shared() {
  static std::mutex mu;
  static std::unique_ptr<PostgresForTest> shared;  // stopped by its destructor at exit
  static Status failed = Status::Ok();
  std::lock_guard<std::mutex> lock(mu);
  if (shared) return shared.get();
  if (!failed.ok()) return failed;
  StatusOr<std::unique_ptr<PostgresForTest>> started = Start();
  if (!started.ok()) {
    failed = started.status();
    return failed;
  }
  shared = std::move(started).value();
  return shared.get();
}

std::string PostgresForTest::Uri(const std::string& db, const std::string& user) const {
  return "postgresql:///" + db + "?host=" + dir_.string() + "&port=" + std::to_string(port_) +
         "&user=" + user;
}

Status PostgresForTest::Exec(const std::string& db, const std::string& sql) const {
  MC_ASSIGN_OR_RETURN(auto conn,
                      Connection::Open(Uri(db), std::nullopt, "test cluster", "postgres_for_test"));
  return conn->Exec(sql, "exec");
}

StatusOr<std::string> PostgresForTest::CreateDatabase(const std::string& owner) {
  const std::string name = "t" + std::to_string(next_db_++);
  MC_RETURN_IF_ERROR(Exec("postgres", "CREATE DATABASE " + name + " OWNER \"" + owner + "\""));
  return name;
}

std::string PostgresForTest::Log() const {
  std::lock_guard<std::mutex> lock(log_mu_);
  return log_.size() > kLogKeep ? log_.substr(log_.size() - kLogKeep) : log_;
}

}  // namespace mc::postgres
