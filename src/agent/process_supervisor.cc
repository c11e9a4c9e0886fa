#include "agent/process_supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

namespace mc::agent {
namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

// waitid(P_PIDFD) is Linux 5.4; older glibc headers lack the enumerator.
constexpr idtype_t kIdPidfd = static_cast<idtype_t>(3);
// glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37), so the system calls directly.
int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}
// epoll data of the wake eventfd; processes are numbered from 1.
constexpr uint64_t kWakeKey = 0;

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

Status ValidateSpec(const ProcessSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) return InvalidArgumentError("empty argv");
  for (const auto& arg : spec.argv) {
    if (arg.find('\0') != std::string::npos) return InvalidArgumentError("NUL in an argument");
  }
  for (const auto& entry : spec.env) {
    size_t eq = entry.find('=');
    if (eq == 0 || eq == std::string::npos || entry.find('\0') != std::string::npos) {
      return InvalidArgumentError("malformed environment entry (want KEY=value)");
    }
  }
  return Status::Ok();
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// The file the child, once in `cwd`, would execute for `program`: a name without '/' is looked
// up in the PATH of `env` (execvp's default when unset), relative entries from `cwd`.
StatusOr<std::string> ResolveProgram(const std::string& program,
                                     const std::vector<std::string>& env, const fs::path& cwd) {
  auto from_cwd = [&](const std::string& p) {
    return cwd.empty() || p.starts_with('/') ? p : (cwd / p).string();
  };
  if (program.find('/') != std::string::npos) {
    std::string path = from_cwd(program);
    if (IsExecutableFile(path)) return path;
    return NotFoundError("program " + program + " not found or not executable");
  }
  std::string search = "/bin:/usr/bin";
  for (const auto& entry : env) {
    if (entry.starts_with("PATH=")) {
      search = entry.substr(5);
      break;
    }
  }
  std::string_view rest = search;
  while (true) {
    size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    std::string path = from_cwd((dir.empty() ? "." : dir) + "/" + program);
    if (IsExecutableFile(path)) return path;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return NotFoundError("program " + program + " not found in PATH=" + search);
}

// Opens a log for appending, at fd 3 or above so that the child's dup2 onto 0-2 cannot clobber it.
StatusOr<Fd> OpenLog(const fs::path& path) {
  std::string name = path.empty() ? "/dev/null" : path.string();
  Fd fd(open(name.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (fd.get() < 0) return ErrnoError(errno, "open log " + name);
  if (fd.get() < 3) {
    Fd high(fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
    if (high.get() < 0) return ErrnoError(errno, "dup log fd " + name);
    return high;
  }
  return fd;
}

// An in-memory file holding `data`, positioned at its start, at fd 3 or above.
StatusOr<Fd> MemoryFile(const std::string& data) {
  Fd fd(memfd_create("mc-stdin", MFD_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(errno, "memfd_create");
  for (size_t done = 0; done < data.size();) {
    ssize_t n = write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "write memfd");
    done += static_cast<size_t>(n);
  }
  if (lseek(fd.get(), 0, SEEK_SET) != 0) return ErrnoError(errno, "lseek memfd");
  if (fd.get() < 3) {
    Fd high(fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
    if (high.get() < 0) return ErrnoError(errno, "dup memfd");
    return high;
  }
  return fd;
}

// posix_spawn's file actions and attributes; the first failing call's error is kept.
class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions_);
    posix_spawnattr_init(&attr_);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions_);
    posix_spawnattr_destroy(&attr_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // stdin from /dev/null, stdout and stderr to the logs, nothing else open, own session,
  // no blocked or ignored signals inherited from the agent.
  int Prepare(int in_fd, int out_fd, int err_fd, const fs::path& cwd) {
    if (in_fd >= 0) {
      Keep(posix_spawn_file_actions_adddup2(&actions_, in_fd, 0));
    } else {
      Keep(posix_spawn_file_actions_addopen(&actions_, 0, "/dev/null", O_RDONLY, 0));
    }
    Keep(posix_spawn_file_actions_adddup2(&actions_, out_fd, 1));
    Keep(posix_spawn_file_actions_adddup2(&actions_, err_fd, 2));
    Keep(posix_spawn_file_actions_addclosefrom_np(&actions_, 3));
    if (!cwd.empty()) Keep(posix_spawn_file_actions_addchdir_np(&actions_, cwd.c_str()));
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    Keep(posix_spawnattr_setsigmask(&attr_, &none));
    Keep(posix_spawnattr_setsigdefault(&attr_, &all));
    Keep(posix_spawnattr_setflags(
        &attr_, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
    return error_;
  }
  const posix_spawn_file_actions_t* actions() const { return &actions_; }
  const posix_spawnattr_t* attr() const { return &attr_; }

 private:
  void Keep(int rc) {
    if (error_ == 0) error_ = rc;
  }
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
  int error_ = 0;
};

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

struct Spawned {
  pid_t pid = 0;
  Fd pidfd;
  uint64_t start_ticks = 0;
};

// Kills and reaps a child we cannot watch.
void Abandon(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

StatusOr<Spawned> Spawn(const ProcessSpec& spec) {
  MC_ASSIGN_OR_RETURN(std::string program, ResolveProgram(spec.argv[0], spec.env, spec.cwd));
  std::error_code ec;
  if (!spec.cwd.empty() && !fs::is_directory(spec.cwd, ec)) {
    return NotFoundError("working directory " + spec.cwd.string() + " not found");
  }
  MC_ASSIGN_OR_RETURN(Fd out, OpenLog(spec.stdout_path));
  Fd err_own;
  if (spec.stderr_path != spec.stdout_path) {
    MC_ASSIGN_OR_RETURN(err_own, OpenLog(spec.stderr_path));
  }
  Fd in;
  if (spec.stdin_data) {
    MC_ASSIGN_OR_RETURN(in, MemoryFile(*spec.stdin_data));
  }
  SpawnSetup setup;
  int rc = setup.Prepare(in.get(), out.get(), err_own.get() >= 0 ? err_own.get() : out.get(),
                         spec.cwd);
  if (rc != 0) return ErrnoError(rc, "prepare spawn of " + program);
  std::vector<char*> argv = CStrings(spec.argv);
  std::vector<char*> envp = CStrings(spec.env);
  Spawned spawned;
  rc = posix_spawn(&spawned.pid, program.c_str(), setup.actions(), setup.attr(), argv.data(),
                   envp.data());
  if (rc == ENOENT || rc == EACCES) return NotFoundError("program " + program + " not executable");
  if (rc != 0) return ErrnoError(rc, "spawn " + program);
  spawned.pidfd = Fd(PidfdOpen(spawned.pid));
  if (spawned.pidfd.get() < 0) {
    Status status = ErrnoError(errno, "pidfd_open of " + program);
    Abandon(spawned.pid);
    return status;
  }
  // Our unreaped child: its /proc entry exists even if it has already exited.
  StatusOr<uint64_t> ticks = ProcessSupervisor::ReadStartTicks(spawned.pid);
  if (!ticks.ok()) {
    Abandon(spawned.pid);
    return InternalError("start time of " + program + ": " + ticks.status().message());
  }
  spawned.start_ticks = *ticks;
  return spawned;
}

// Keeps at most about 2 x cap: copy to "<path>.1", then truncate (the writer's O_APPEND fd then
// writes at the new end). Bytes written between the copy and the truncate are lost.
void CapLog(const fs::path& path, uint64_t cap) {
  std::error_code ec;
  uint64_t size = fs::file_size(path, ec);
  if (ec || size <= cap) return;
  fs::path rotated = path;
  rotated += ".1";
  fs::path tmp = path;
  tmp += ".1.tmp";
  fs::copy_file(path, tmp, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(tmp, rotated, ec);
  if (ec) {
    spdlog::warn("log cap: cannot copy {} to {}: {}", path.string(), rotated.string(),
                 ec.message());
    fs::remove(tmp, ec);
    return;
  }
  if (truncate(path.c_str(), 0) != 0) {
    spdlog::warn("log cap: cannot truncate {}: {}", path.string(), std::strerror(errno));
  }
}

}  // namespace

struct ProcessSupervisor::Impl {
  struct Proc {
    std::string id;
    pid_t pid = 0;
    int pidfd = -1;
    bool own = false;           // our child: we reap it and read its status
    bool group_leader = false;  // its pgid is its pid, so kill(-pid) reaches what it forked
    std::vector<fs::path> logs;
    bool stopping = false;
    std::optional<Steady::time_point> kill_at;
  };
  struct Finished {
    ProcessExit exit;
    uint64_t key = 0;
    bool reported = false;  // the callback has returned
  };

  Options options;
  ExitCallback on_exit;
  Fd epoll_fd, wake_fd;
  Status init_error;
  std::thread watcher;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, Proc> live;             // by epoll key; guarded by mu
  std::set<std::string> starting;            // ids reserved while spawning; guarded by mu
  std::map<std::string, Finished> finished;  // last exit per id; guarded by mu
  uint64_t next_key = 1;                     // guarded by mu
  bool shutting_down = false;                // guarded by mu

  const Proc* FindLive(const std::string& id) const {
    for (const auto& [key, proc] : live) {
      if (proc.id == id) return &proc;
    }
    return nullptr;
  }
  Proc* FindLive(const std::string& id) {
    return const_cast<Proc*>(std::as_const(*this).FindLive(id));
  }

  void Wake() {
    uint64_t one = 1;
    if (write(wake_fd.get(), &one, sizeof(one)) < 0 && errno != EAGAIN) {
      spdlog::error("process supervisor: wake: {}", std::strerror(errno));
    }
  }

  Status Reserve(const std::string& id) {
    std::lock_guard lock(mu);
    if (!init_error.ok()) return init_error;
    if (FindLive(id) != nullptr || starting.count(id) != 0) {
      return AlreadyExistsError("process " + id + " is already live");
    }
    starting.insert(id);
    return Status::Ok();
  }

  void Unreserve(const std::string& id) {
    std::lock_guard lock(mu);
    starting.erase(id);
    cv.notify_all();
  }

  // Starts watching `proc`; on success the supervisor owns its pidfd.
  Status Register(Proc proc) {
    std::lock_guard lock(mu);
    starting.erase(proc.id);
    cv.notify_all();
    uint64_t key = next_key++;
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = key;
    if (epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, proc.pidfd, &event) != 0) {
      return ErrnoError(errno, "watch process " + proc.id);
    }
    finished.erase(proc.id);
    live.emplace(key, std::move(proc));
    return Status::Ok();
  }

  // Signals the process and, if it leads its own group, the whole group. Nothing is sent once the
  // process is gone: its pid (and so its group id) may belong to someone else by then.
  static void SignalGroup(const Proc& proc, int sig) {
    if (PidfdSendSignal(proc.pidfd, 0) != 0) return;
    if (proc.group_leader && kill(-proc.pid, sig) == 0) return;
    PidfdSendSignal(proc.pidfd, sig);
  }

  ProcessExit Collect(const Proc& proc) {
    ProcessExit exit;
    siginfo_t info{};
    // The pidfd is readable, so the child is a zombie and this does not block. ECHILD means
    // someone else reaped it (SIGCHLD ignored, a waitpid(-1) elsewhere): status unknown.
    if (proc.own && waitid(kIdPidfd, static_cast<id_t>(proc.pidfd), &info, WEXITED) == 0 &&
        info.si_pid != 0) {
      if (info.si_code == CLD_EXITED) {
        exit.exit_code = info.si_status;
      } else {
        exit.signal = info.si_status;
      }
    } else {
      exit.unknown = true;
    }
    exit.at = options.clock->Now();
    return exit;
  }

  void ReapAndReport(uint64_t key) {
    std::string id;
    ProcessExit exit;
    {
      std::lock_guard lock(mu);
      auto it = live.find(key);
      if (it == live.end()) return;
      Proc& proc = it->second;
      // A stop leaves nothing behind: what is left of the group dies with its leader. Done before
      // reaping, while the zombie leader still holds the group id.
      if (proc.stopping && proc.group_leader) kill(-proc.pid, SIGKILL);
      exit = Collect(proc);
      epoll_ctl(epoll_fd.get(), EPOLL_CTL_DEL, proc.pidfd, nullptr);
      close(proc.pidfd);
      id = proc.id;
      live.erase(it);
      finished[id] = Finished{exit, key, false};
    }
    if (on_exit) on_exit(id, exit);
    std::lock_guard lock(mu);
    auto it = finished.find(id);
    if (it != finished.end() && it->second.key == key) it->second.reported = true;
    cv.notify_all();
  }

  void SendDueKills() {
    std::lock_guard lock(mu);
    Steady::time_point now = Steady::now();
    for (auto& [key, proc] : live) {
      if (proc.kill_at && *proc.kill_at <= now) {
        SignalGroup(proc, SIGKILL);
        proc.kill_at.reset();
      }
    }
  }

  void CapLogs() {
    std::set<fs::path> logs;
    {
      std::lock_guard lock(mu);
      for (const auto& [key, proc] : live) logs.insert(proc.logs.begin(), proc.logs.end());
    }
    for (const auto& log : logs) {
      if (!log.empty()) CapLog(log, options.log_cap_bytes);
    }
  }

  int MillisUntilNextDeadline(Steady::time_point next_log_check) {
    Steady::time_point next = next_log_check;
    {
      std::lock_guard lock(mu);
      for (const auto& [key, proc] : live) {
        if (proc.kill_at) next = std::min(next, *proc.kill_at);
      }
    }
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - Steady::now());
    return static_cast<int>(std::max<int64_t>(0, wait.count()));
  }

  void Run() {
    auto interval = std::max(options.log_check_interval, std::chrono::milliseconds(1));
    Steady::time_point next_log_check = Steady::now() + interval;
    epoll_event events[16];
    while (true) {
      int n = epoll_wait(epoll_fd.get(), events, 16, MillisUntilNextDeadline(next_log_check));
      if (n < 0 && errno != EINTR) {
        spdlog::critical("process supervisor: epoll_wait: {}", std::strerror(errno));
        std::abort();
      }
      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == kWakeKey) {
          uint64_t count;
          while (read(wake_fd.get(), &count, sizeof(count)) > 0) {
          }
        } else {
          ReapAndReport(events[i].data.u64);
        }
      }
      {
        std::lock_guard lock(mu);
        if (shutting_down) return;
      }
      SendDueKills();
      if (Steady::now() >= next_log_check) {
        CapLogs();
        next_log_check = Steady::now() + interval;
      }
    }
  }

  Status Init() {
    epoll_fd = Fd(epoll_create1(EPOLL_CLOEXEC));
    if (epoll_fd.get() < 0) return ErrnoError(errno, "epoll_create1");
    wake_fd = Fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (wake_fd.get() < 0) return ErrnoError(errno, "eventfd");
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = kWakeKey;
    if (epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, wake_fd.get(), &event) != 0) {
      return ErrnoError(errno, "epoll_ctl");
    }
    return Status::Ok();
  }
};

ProcessSupervisor::ProcessSupervisor(Options options, ExitCallback on_exit)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->on_exit = std::move(on_exit);
  impl_->init_error = impl_->Init().WithContext("process supervisor");
  if (impl_->init_error.ok()) {
    impl_->watcher = std::thread([impl = impl_.get()] { impl->Run(); });
  } else {
    spdlog::error("{}", impl_->init_error.ToString());
  }
}

ProcessSupervisor::~ProcessSupervisor() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->shutting_down = true;
  }
  if (impl_->watcher.joinable()) {
    impl_->Wake();
    impl_->watcher.join();
  }
  // The processes keep running: closing a pidfd does not signal anything.
  for (auto& [key, proc] : impl_->live) close(proc.pidfd);
}

StatusOr<ProcessRecord> ProcessSupervisor::Start(const std::string& id, const ProcessSpec& spec) {
  MC_RETURN_IF_ERROR(ValidateSpec(spec), "start " + id);
  MC_RETURN_IF_ERROR(impl_->Reserve(id), "start " + id);
  StatusOr<Spawned> spawned = Spawn(spec);
  if (!spawned.ok()) {
    impl_->Unreserve(id);
    return spawned.status().WithContext("start " + id);
  }
  Impl::Proc proc;
  proc.id = id;
  proc.pid = spawned->pid;
  proc.pidfd = spawned->pidfd.get();
  proc.own = true;
  proc.group_leader = true;  // POSIX_SPAWN_SETSID
  for (const auto& log : {spec.stdout_path, spec.stderr_path}) proc.logs.push_back(log);
  Status registered = impl_->Register(std::move(proc));
  if (!registered.ok()) {
    impl_->Unreserve(id);
    Abandon(spawned->pid);
    return registered.WithContext("start " + id);
  }
  spawned->pidfd.release();
  return ProcessRecord{spawned->pid, spawned->start_ticks};
}

Status ProcessSupervisor::Adopt(const std::string& id, const ProcessRecord& record,
                                std::vector<fs::path> logs) {
  MC_RETURN_IF_ERROR(impl_->Reserve(id), "adopt " + id);
  std::string what = "adopt " + id + " (pid " + std::to_string(record.pid) + ")";
  // The pidfd first, then the start time: if the times match, the pidfd is the right process.
  Fd pidfd(record.pid > 0 ? PidfdOpen(record.pid) : -1);
  if (pidfd.get() < 0) {
    int err = record.pid > 0 ? errno : ESRCH;
    impl_->Unreserve(id);
    if (err == ESRCH) return NotFoundError(what + ": no such process");
    return ErrnoError(err, what);
  }
  StatusOr<uint64_t> ticks = ReadStartTicks(record.pid);
  if (!ticks.ok() || *ticks != record.start_ticks) {
    impl_->Unreserve(id);
    return NotFoundError(what + ": gone, the pid now belongs to another process");
  }
  Impl::Proc proc;
  proc.id = id;
  proc.pid = record.pid;
  proc.pidfd = pidfd.get();
  proc.group_leader = getpgid(record.pid) == record.pid;
  proc.logs = std::move(logs);
  Status registered = impl_->Register(std::move(proc));
  if (!registered.ok()) {
    impl_->Unreserve(id);
    return registered.WithContext(what);
  }
  pidfd.release();
  return Status::Ok();
}

Status ProcessSupervisor::Stop(const std::string& id, std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(impl_->mu);
    Impl::Proc* proc = impl_->FindLive(id);
    if (proc == nullptr) return NotFoundError("stop " + id + ": no such live process");
    Impl::SignalGroup(*proc, SIGTERM);
    proc->stopping = true;
    Steady::time_point kill_at = Steady::now() + grace;
    if (!proc->kill_at || kill_at < *proc->kill_at) proc->kill_at = kill_at;
  }
  impl_->Wake();
  return Status::Ok();
}

std::optional<ProcessExit> ProcessSupervisor::WaitForExit(const std::string& id,
                                                          std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu);
  std::optional<ProcessExit> result;
  impl_->cv.wait_for(lock, timeout, [&] {
    if (impl_->FindLive(id) != nullptr || impl_->starting.count(id) != 0) return false;
    auto it = impl_->finished.find(id);
    if (it == impl_->finished.end()) return true;  // never seen: nothing to wait for
    if (!it->second.reported) return false;
    result = it->second.exit;
    return true;
  });
  return result;
}

bool ProcessSupervisor::IsLive(const std::string& id) const {
  std::lock_guard lock(impl_->mu);
  return impl_->FindLive(id) != nullptr;
}

size_t ProcessSupervisor::LiveCount() const {
  std::lock_guard lock(impl_->mu);
  return impl_->live.size();
}

StatusOr<uint64_t> ProcessSupervisor::ReadStartTicks(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  Fd fd(pid > 0 ? open(path.c_str(), O_RDONLY | O_CLOEXEC) : -1);
  char buf[4096];
  ssize_t n = fd.get() >= 0 ? read(fd.get(), buf, sizeof(buf)) : -1;
  if (n <= 0) return NotFoundError("process " + std::to_string(pid) + " not found");
  // "pid (comm) state ppid ...": comm may hold spaces and ')', so fields count from the last ')'.
  std::string_view text(buf, static_cast<size_t>(n));
  size_t paren = text.rfind(')');
  if (paren == std::string_view::npos) return InternalError("unparsable " + path);
  text.remove_prefix(paren + 1);
  for (int field = 3; field <= 22; ++field) {
    size_t start = text.find_first_not_of(' ');
    if (start == std::string_view::npos) return InternalError("short " + path);
    text.remove_prefix(start);
    size_t end = std::min(text.find(' '), text.size());
    if (field == 22) {
      uint64_t ticks = 0;
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, ticks);
      if (ec != std::errc() || ptr != text.data() + end) return InternalError("bad " + path);
      return ticks;
    }
    text.remove_prefix(end);
  }
  return InternalError("unreachable");
}

}  // namespace mc::agent
