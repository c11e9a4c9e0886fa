// ProcessSupervisor: starts worker processes, watches them exit, stops them, and caps their logs.
//
// Start() uses posix_spawn (no fork of the agent's memory): the process gets exactly the given
// environment, stdin from /dev/null (or an in-memory file with ProcessSpec::stdin_data), stdout and stderr appended to log files, its own session and
// process group (so a stop reaches whatever it forks), default signal dispositions and an empty
// signal mask, and no fd of ours: every fd above 2 is closed in the child (closefrom), so even an
// fd some library opened without O_CLOEXEC does not leak. argv[0] without a '/' is looked up in
// the PATH of the given environment (execvp's "/bin:/usr/bin" if it has none), not the agent's;
// relative paths are taken from the child's cwd.
//
// One watcher thread waits on a pidfd per process (epoll). For our own children it reaps them with
// waitid(P_PIDFD) and reports the exit code or signal. A process started by an earlier agent run
// is re-adopted with Adopt() (it is identified by pid plus its start time in /proc/<pid>/stat, so a
// reused pid is never mistaken for it); its exit is seen through the pidfd too, but its status
// belongs to init, so the exit is reported with unknown = true. (An own child reaped by someone
// else, e.g. because the agent set SIGCHLD to SIG_IGN, is reported with unknown = true too.)
//
// Stop(): SIGTERM to the process group at once, SIGKILL to the group after the grace period unless
// it has exited; the caller never waits. When a stopped process exits, whatever is left of its
// group is SIGKILLed at once (before the leader is reaped, while its group id cannot have been
// reused): a stop leaves nothing behind. Nothing is signalled once the process is gone. The
// destructor stops the watcher thread but leaves the processes running: workers outlive an agent
// restart and are re-adopted (docs/agent.md).
//
// Deadlines (SIGKILL, log checks) run on the monotonic clock; Options::clock only stamps
// ProcessExit::at.
//
// Logs: every log_check_interval the watcher checks each live process's log files; one larger
// than log_cap_bytes is copied to "<path>.1" (replacing it) and truncated to 0 (copytruncate: the
// process keeps its O_APPEND fd and writes on at the new end). At most about 2 × cap per file.
//
// Thread-safety: all methods may be called from any thread. The exit callback runs on the watcher
// thread, once per process, never while a supervisor lock is held; it may call Start, Stop and the
// queries (the id is no longer live when it runs), but must not destroy the supervisor.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mc/common/clock.h"
#include "mc/common/status.h"

namespace mc::agent {

struct ProcessSpec {
  std::vector<std::string> argv;      // at least one element
  std::vector<std::string> env;       // "KEY=value": the whole environment of the process
  std::filesystem::path cwd;          // empty = the agent's working directory
  std::filesystem::path stdout_path;  // appended to (created 0640 if missing); empty = /dev/null
  std::filesystem::path stderr_path;  // may equal stdout_path (one fd then)
  // stdin: these bytes in an in-memory file (memfd, never on disk: a container engine reads the
  // worker's environment from it); nullopt = /dev/null.
  std::optional<std::string> stdin_data;
};

// Identity of a process that survives pid reuse: the pid and its start time in clock ticks since
// boot (field 22 of /proc/<pid>/stat).
struct ProcessRecord {
  pid_t pid = 0;
  uint64_t start_ticks = 0;
};

struct ProcessExit {
  std::optional<int> exit_code;  // exited normally
  std::optional<int> signal;     // killed by this signal
  bool unknown = false;          // adopted process: exit status not ours to read
  Clock::TimePoint at;           // when the watcher saw it
};

class ProcessSupervisor {
 public:
  struct Options {
    uint64_t log_cap_bytes = 64ull << 20;
    std::chrono::milliseconds log_check_interval{1000};
    Clock* clock = &Clock::Real();
  };
  using ExitCallback = std::function<void(const std::string& id, const ProcessExit& exit)>;

  ProcessSupervisor(Options options, ExitCallback on_exit);
  ~ProcessSupervisor();
  ProcessSupervisor(const ProcessSupervisor&) = delete;
  ProcessSupervisor& operator=(const ProcessSupervisor&) = delete;

  // Spawns the process under `id` (unique among live processes: AlreadyExists otherwise).
  // InvalidArgument for an empty argv or a malformed env entry; NotFound if argv[0] is not found
  // or not executable (the message names it) or cwd is missing; other failures (opening a log,
  // spawning) carry the code ErrnoError gives their errno (EAGAIN -> Unavailable, ...).
  StatusOr<ProcessRecord> Start(const std::string& id, const ProcessSpec& spec);
  // Watches a process started by an earlier agent run. NotFound if it is gone or the pid now
  // belongs to another process (start ticks differ). `logs` are capped like those of Start().
  Status Adopt(const std::string& id, const ProcessRecord& record,
               std::vector<std::filesystem::path> logs);
  // SIGTERM to the group now, SIGKILL after `grace`. NotFound if `id` is not live. Returns at once.
  Status Stop(const std::string& id, std::chrono::milliseconds grace);
  // Blocks until `id` has exited (returns its exit) or `timeout` passes (nullopt). It returns only
  // after the exit callback for that exit has returned. For an id that already exited, returns the
  // recorded exit (the last one per id) at once; nullopt at once for an id never started here.
  std::optional<ProcessExit> WaitForExit(const std::string& id, std::chrono::milliseconds timeout);
  bool IsLive(const std::string& id) const;
  size_t LiveCount() const;

  // The start ticks of `pid` from /proc, or NotFound.
  static StatusOr<uint64_t> ReadStartTicks(pid_t pid);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mc::agent
