#include "agent/process_supervisor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace mc::agent {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr milliseconds kLongWait{20000};  // only ever reached when a test is failing

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A named pipe the test reads lines from: a child says "ready" (or a pid) through it, so the test
// waits on the child without sleeping.
class Fifo {
 public:
  explicit Fifo(fs::path path) : path_(std::move(path)) {
    EXPECT_EQ(mkfifo(path_.c_str(), 0600), 0);
    fd_ = open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    EXPECT_GE(fd_, 0);
  }
  ~Fifo() { close(fd_); }
  const fs::path& path() const { return path_; }

  // The next line written into the pipe, without its newline; "" after `timeout`.
  std::string ReadLine(milliseconds timeout = kLongWait) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buffer_.find('\n') == std::string::npos) {
      auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return "";
      char chunk[256];
      ssize_t n = read(fd_, chunk, sizeof(chunk));
      if (n == 0 && (p.revents & POLLHUP) != 0 && buffer_.empty()) return "";
      if (n > 0) buffer_.append(chunk, static_cast<size_t>(n));
    }
    size_t newline = buffer_.find('\n');
    std::string line = buffer_.substr(0, newline);
    buffer_.erase(0, newline + 1);
    return line;
  }

 private:
  fs::path path_;
  int fd_ = -1;
  std::string buffer_;
};

// True once `pid` has exited (it may be a zombie nobody reaps), waiting at most `timeout`.
bool ExitsWithin(pid_t pid, milliseconds timeout) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  bool exited = poll(&p, 1, static_cast<int>(timeout.count())) == 1;
  close(fd);
  return exited;
}

class ProcessSupervisorTest : public ::testing::Test {
 protected:
  ProcessSupervisorTest() {
    std::string pattern = (fs::temp_directory_path() / "mc-supervisor-XXXXXX").string();
    dir_ = mkdtemp(pattern.data());
    log_ = dir_ / "worker.log";
  }
  ~ProcessSupervisorTest() override {
    if (supervisor_ != nullptr) {
      for (const auto& id : ids_) {
        if (supervisor_->Stop(id, milliseconds(0)).ok()) supervisor_->WaitForExit(id, kLongWait);
      }
      supervisor_.reset();
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  ProcessSupervisor& Supervisor(ProcessSupervisor::Options options = {}) {
    if (supervisor_ == nullptr) {
      supervisor_ = std::make_unique<ProcessSupervisor>(
          options, [this](const std::string& id, const ProcessExit& exit) {
            std::lock_guard lock(mu_);
            exits_.emplace_back(id, exit);
          });
    }
    return *supervisor_;
  }

  // `/bin/sh -c script sh args...` with a minimal environment, both streams to log_.
  ProcessSpec Shell(const std::string& script, const std::vector<std::string>& args = {}) {
    ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", script, "sh"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = {"PATH=/usr/bin:/bin"};
    spec.stdout_path = log_;
    spec.stderr_path = log_;
    return spec;
  }

  ProcessRecord StartOk(const std::string& id, const ProcessSpec& spec) {
    ids_.push_back(id);
    StatusOr<ProcessRecord> record = Supervisor().Start(id, spec);
    EXPECT_TRUE(record.ok()) << record.status().ToString();
    return record.value_or(ProcessRecord{});
  }

  ProcessExit WaitExit(const std::string& id) {
    std::optional<ProcessExit> exit = Supervisor().WaitForExit(id, kLongWait);
    EXPECT_TRUE(exit.has_value()) << id << " did not exit";
    return exit.value_or(ProcessExit{});
  }

  std::vector<std::pair<std::string, ProcessExit>> Exits() {
    std::lock_guard lock(mu_);
    return exits_;
  }

  fs::path dir_;
  fs::path log_;

 private:
  std::unique_ptr<ProcessSupervisor> supervisor_;
  std::vector<std::string> ids_;
  std::mutex mu_;
  std::vector<std::pair<std::string, ProcessExit>> exits_;
};

TEST_F(ProcessSupervisorTest, ChildSeesExactlyTheGivenEnvironment) {
  ASSERT_EQ(setenv("MC_SUPERVISOR_TEST_AGENT_ONLY", "leak", 1), 0);
  ProcessSpec spec = Shell("");
  spec.argv = {"/usr/bin/env"};
  spec.env = {"MC_A=1", "PATH=/usr/bin:/bin"};
  StartOk("env", spec);
  WaitExit("env");
  unsetenv("MC_SUPERVISOR_TEST_AGENT_ONLY");
  EXPECT_EQ(ReadFile(log_), "MC_A=1\nPATH=/usr/bin:/bin\n");
}

TEST_F(ProcessSupervisorTest, ProgramIsLookedUpInThePathOfTheGivenEnvironment) {
  fs::create_directory(dir_ / "bin");
  fs::path program = dir_ / "bin" / "mc-test-prog";
  WriteFile(program, "#!/bin/sh\necho found-via-path\n");
  fs::permissions(program, fs::perms::owner_all);
  ProcessSpec spec = Shell("");
  spec.argv = {"mc-test-prog"};
  spec.env = {"PATH=/nonexistent:" + (dir_ / "bin").string()};
  StartOk("prog", spec);
  EXPECT_EQ(WaitExit("prog").exit_code, 0);
  EXPECT_EQ(ReadFile(log_), "found-via-path\n");
}

TEST_F(ProcessSupervisorTest, ProgramOnlyInTheAgentsPathIsNotFound) {
  ProcessSpec spec = Shell("");
  spec.argv = {"sh", "-c", "true"};
  spec.env = {"PATH=" + dir_.string()};
  StatusOr<ProcessRecord> record = Supervisor().Start("sh", spec);
  EXPECT_EQ(record.status().code(), StatusCode::kNotFound);
}

TEST_F(ProcessSupervisorTest, UnknownProgramIsNotFoundAndNamed) {
  ProcessSpec spec = Shell("");
  spec.argv = {"mc-no-such-program"};
  StatusOr<ProcessRecord> record = Supervisor().Start("x", spec);
  EXPECT_EQ(record.status().code(), StatusCode::kNotFound);
  EXPECT_NE(record.status().message().find("mc-no-such-program"), std::string::npos);
  EXPECT_EQ(Supervisor().LiveCount(), 0u);
}

TEST_F(ProcessSupervisorTest, EmptyArgvIsInvalid) {
  ProcessSpec spec = Shell("");
  spec.argv.clear();
  EXPECT_EQ(Supervisor().Start("x", spec).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ProcessSupervisorTest, StdoutAndStderrAreAppendedToTheirLogs) {
  fs::path err_log = dir_ / "err.log";
  WriteFile(log_, "old out\n");
  WriteFile(err_log, "old err\n");
  ProcessSpec spec = Shell("echo out; echo err >&2");
  spec.stderr_path = err_log;
  StartOk("logs", spec);
  WaitExit("logs");
  EXPECT_EQ(ReadFile(log_), "old out\nout\n");
  EXPECT_EQ(ReadFile(err_log), "old err\nerr\n");
}

TEST_F(ProcessSupervisorTest, StdoutAndStderrMayShareOneLog) {
  WriteFile(log_, "old\n");
  StartOk("logs", Shell("echo out; echo err >&2; echo out2"));
  WaitExit("logs");
  EXPECT_EQ(ReadFile(log_), "old\nout\nerr\nout2\n");
}

TEST_F(ProcessSupervisorTest, ExitCodeIsReportedToCallbackAndWaiter) {
  StartOk("job", Shell("exit 7"));
  ProcessExit exit = WaitExit("job");
  EXPECT_EQ(exit.exit_code, 7);
  EXPECT_FALSE(exit.signal.has_value());
  EXPECT_FALSE(exit.unknown);
  // WaitForExit returns only after the callback has returned.
  auto exits = Exits();
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].first, "job");
  EXPECT_EQ(exits[0].second.exit_code, 7);
  EXPECT_FALSE(Supervisor().IsLive("job"));
}

TEST_F(ProcessSupervisorTest, DeathBySignalIsReported) {
  StartOk("job", Shell("kill -KILL $$"));
  ProcessExit exit = WaitExit("job");
  EXPECT_EQ(exit.signal, SIGKILL);
  EXPECT_FALSE(exit.exit_code.has_value());
}

TEST_F(ProcessSupervisorTest, StopSendsTermThatTheProcessMayHandle) {
  Fifo fifo(dir_ / "fifo");
  StartOk("job", Shell("trap 'exit 0' TERM; echo ready > \"$1\"; sleep 1000 & wait",
                       {fifo.path().string()}));
  ASSERT_EQ(fifo.ReadLine(), "ready");
  ASSERT_TRUE(Supervisor().Stop("job", milliseconds(60000)).ok());
  ProcessExit exit = WaitExit("job");
  EXPECT_EQ(exit.exit_code, 0);
  EXPECT_FALSE(exit.signal.has_value());
}

TEST_F(ProcessSupervisorTest, StopKillsAProcessThatIgnoresTermAfterTheGrace) {
  Fifo fifo(dir_ / "fifo");
  StartOk("job",
          Shell("trap '' TERM; echo ready > \"$1\"; exec sleep 1000", {fifo.path().string()}));
  ASSERT_EQ(fifo.ReadLine(), "ready");
  ASSERT_TRUE(Supervisor().Stop("job", milliseconds(100)).ok());
  EXPECT_EQ(WaitExit("job").signal, SIGKILL);
}

TEST_F(ProcessSupervisorTest, StopReachesGrandchildren) {
  Fifo fifo(dir_ / "fifo");
  StartOk("job", Shell("sleep 1000 & echo $! > \"$1\"; wait", {fifo.path().string()}));
  pid_t grandchild = std::atoi(fifo.ReadLine().c_str());
  ASSERT_GT(grandchild, 0);
  ASSERT_TRUE(Supervisor().Stop("job", milliseconds(60000)).ok());
  EXPECT_EQ(WaitExit("job").signal, SIGTERM);
  EXPECT_TRUE(ExitsWithin(grandchild, kLongWait));
}

TEST_F(ProcessSupervisorTest, StopKillsGroupMembersThatOutliveTheLeader) {
  Fifo fifo(dir_ / "fifo");
  StartOk("job", Shell("(trap '' TERM; exec sleep 1000) & echo $! > \"$1\"; wait",
                       {fifo.path().string()}));
  pid_t grandchild = std::atoi(fifo.ReadLine().c_str());
  ASSERT_GT(grandchild, 0);
  // The grace is long: the grandchild dies with the leader, not when the grace ends.
  ASSERT_TRUE(Supervisor().Stop("job", milliseconds(600000)).ok());
  EXPECT_EQ(WaitExit("job").signal, SIGTERM);
  EXPECT_TRUE(ExitsWithin(grandchild, kLongWait));
}

TEST_F(ProcessSupervisorTest, StopOfUnknownIdIsNotFound) {
  EXPECT_EQ(Supervisor().Stop("nobody", milliseconds(0)).code(), StatusCode::kNotFound);
}

TEST_F(ProcessSupervisorTest, WaitForExitOfUnknownIdReturnsAtOnce) {
  EXPECT_FALSE(Supervisor().WaitForExit("nobody", milliseconds(600000)).has_value());
}

TEST_F(ProcessSupervisorTest, WorkingDirectoryIsHonoured) {
  ProcessSpec spec = Shell("");
  spec.argv = {"/bin/pwd", "-P"};
  spec.cwd = dir_;
  StartOk("pwd", spec);
  WaitExit("pwd");
  EXPECT_EQ(ReadFile(log_), fs::canonical(dir_).string() + "\n");
}

TEST_F(ProcessSupervisorTest, NoFdOfTheAgentLeaksIntoTheChild) {
  int inheritable = open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
  int pipe_fds[2];
  ASSERT_GE(inheritable, 0);
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  // `ls` lists the shell's fds (not its own); the shell opens none of its own for -c.
  StartOk("fds", Shell("ls /proc/$$/fd; exit 0"));
  WaitExit("fds");
  close(inheritable);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  EXPECT_EQ(ReadFile(log_), "0\n1\n2\n");
}

TEST_F(ProcessSupervisorTest, AdoptedProcessExitIsReportedAsUnknownAndNotReaped) {
  // A child of the test, not of the supervisor: as for a worker of an earlier agent run, its
  // status is not the supervisor's to read.
  char sleep_path[] = "/bin/sleep";
  char seconds[] = "1000";
  char* argv[] = {sleep_path, seconds, nullptr};
  char* envp[] = {nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, sleep_path, nullptr, nullptr, argv, envp), 0);
  StatusOr<uint64_t> ticks = ProcessSupervisor::ReadStartTicks(pid);
  ASSERT_TRUE(ticks.ok()) << ticks.status().ToString();
  ASSERT_TRUE(Supervisor().Adopt("adopted", ProcessRecord{pid, *ticks}, {}).ok());
  EXPECT_TRUE(Supervisor().IsLive("adopted"));
  kill(pid, SIGKILL);
  ProcessExit exit = WaitExit("adopted");
  EXPECT_TRUE(exit.unknown);
  EXPECT_FALSE(exit.exit_code.has_value());
  EXPECT_FALSE(exit.signal.has_value());
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);  // still ours to reap
  EXPECT_TRUE(WIFSIGNALED(status));
}

TEST_F(ProcessSupervisorTest, AdoptWithOtherStartTicksIsNotFound) {
  StatusOr<uint64_t> ticks = ProcessSupervisor::ReadStartTicks(getpid());
  ASSERT_TRUE(ticks.ok());
  Status status = Supervisor().Adopt("reused", ProcessRecord{getpid(), *ticks + 1}, {});
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(Supervisor().LiveCount(), 0u);
}

TEST_F(ProcessSupervisorTest, StartTicksAreReadPastACommandNameWithParentheses) {
  fs::path odd = dir_ / "x) 1 2 (y";
  fs::copy_file("/bin/sleep", odd);
  ProcessSpec spec = Shell("");
  spec.argv = {odd.string(), "1000"};
  ProcessRecord record = StartOk("odd", spec);
  StatusOr<uint64_t> ours = ProcessSupervisor::ReadStartTicks(getpid());
  ASSERT_TRUE(ours.ok());
  EXPECT_GE(record.start_ticks, *ours);  // a misparse would read a small field such as ppid's
  EXPECT_EQ(ProcessSupervisor::ReadStartTicks(record.pid).value_or(0), record.start_ticks);
}

TEST_F(ProcessSupervisorTest, LogOverTheCapIsCopiedAsideAndTruncated) {
  ProcessSupervisor::Options options;
  options.log_cap_bytes = 1000;
  options.log_check_interval = milliseconds(5);
  Supervisor(options);
  // Writes 3000 bytes, then waits (bounded) for the watcher's copy before writing on.
  StartOk("chatty", Shell("head -c 3000 /dev/zero; n=0; "
                          "while [ ! -e \"$1.1\" ] && [ $n -lt 2000 ]; do sleep 0.01; n=$((n+1)); "
                          "done; echo after",
                          {log_.string()}));
  WaitExit("chatty");
  fs::path rotated = log_;
  rotated += ".1";
  ASSERT_TRUE(fs::exists(rotated));
  EXPECT_GT(fs::file_size(rotated), 1000u);
  EXPECT_LT(fs::file_size(log_), 2000u);
  EXPECT_NE(ReadFile(log_).find("after\n"), std::string::npos);
}

TEST_F(ProcessSupervisorTest, DuplicateLiveIdIsAlreadyExists) {
  StartOk("dup", Shell("exec sleep 1000"));
  StatusOr<ProcessRecord> again = Supervisor().Start("dup", Shell("exec sleep 1000"));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Supervisor().LiveCount(), 1u);
}

TEST_F(ProcessSupervisorTest, DestructorLeavesProcessesRunning) {
  pid_t pid = 0;
  {
    ProcessSupervisor supervisor({}, nullptr);
    StatusOr<ProcessRecord> record = supervisor.Start("worker", Shell("exec sleep 1000"));
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    pid = record->pid;
  }
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0);  // neither killed nor reaped: still running
  kill(pid, SIGKILL);
  EXPECT_EQ(waitpid(pid, nullptr, 0), pid);
}

}  // namespace
}  // namespace mc::agent
