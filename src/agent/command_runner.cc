#include "agent/command_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace mc::agent {
namespace {

using Steady = std::chrono::steady_clock;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// An in-memory file holding `data`, positioned at its start.
StatusOr<Fd> MemoryFile(const std::string& data) {
  Fd fd(memfd_create("mc-stdin", MFD_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(errno, "memfd_create");
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "write memfd");
    done += static_cast<size_t>(n);
  }
  if (lseek(fd.get(), 0, SEEK_SET) != 0) return ErrnoError(errno, "lseek memfd");
  return fd;
}

struct Pipe {
  Fd read, write;
};

StatusOr<Pipe> MakePipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe2");
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

// Spawns argv with stdin/stdout/stderr as given, in a new process group, nothing else open.
StatusOr<pid_t> Spawn(const CommandOptions& o, int in, int out, int err) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&actions, in, 0);
  posix_spawn_file_actions_adddup2(&actions, out, 1);
  posix_spawn_file_actions_adddup2(&actions, err, 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv, envp;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : o.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  int rc = o.argv[0].find('/') != std::string::npos
               ? posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data())
               : posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc == ENOENT || rc == EACCES) {
    return NotFoundError("program " + o.argv[0] + " not found or not executable");
  }
  if (rc != 0) return ErrnoError(rc, "spawn " + o.argv[0]);
  return pid;
}

// Reads what is available from `fd` into `sink` (up to `max`); false at EOF or error.
bool Drain(int fd, std::string& sink, size_t max, std::string* lines,
           const std::function<void(std::string_view)>& on_line) {
  char buf[16384];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  std::string_view chunk(buf, static_cast<size_t>(n));
  if (sink.size() < max) sink.append(chunk.substr(0, max - sink.size()));
  if (lines != nullptr && on_line) {
    lines->append(chunk);
    size_t nl;
    while ((nl = lines->find_first_of("\r\n")) != std::string::npos) {
      if (nl > 0) on_line(std::string_view(*lines).substr(0, nl));
      lines->erase(0, nl + 1);
    }
    if (lines->size() > 65536) lines->clear();  // a runaway line is not worth keeping
  }
  return true;
}

}  // namespace

StatusOr<CommandResult> RunCommand(const CommandOptions& o) {
  if (o.argv.empty() || o.argv[0].empty()) return InvalidArgumentError("empty command");
  Fd in;
  if (o.stdin_data) {
    MC_ASSIGN_OR_RETURN(in, MemoryFile(*o.stdin_data));
  } else {
    in = Fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (in.get() < 0) return ErrnoError(errno, "open /dev/null");
  }
  MC_ASSIGN_OR_RETURN(Pipe out, MakePipe());
  MC_ASSIGN_OR_RETURN(Pipe err, MakePipe());
  MC_ASSIGN_OR_RETURN(pid_t pid, Spawn(o, in.get(), out.write.get(), err.write.get()));
  in.reset();
  out.write.reset();
  err.write.reset();

  CommandResult result;
  std::string partial_line;
  const Steady::time_point deadline = Steady::now() + o.timeout;
  Steady::time_point next_tick = Steady::now() + o.tick;
  bool out_open = true, err_open = true, killed = false;
  while (out_open || err_open) {
    pollfd fds[2] = {{out_open ? out.read.get() : -1, POLLIN, 0},
                     {err_open ? err.read.get() : -1, POLLIN, 0}};
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - Steady::now());
    int n = poll(fds, 2, static_cast<int>(std::max<int64_t>(0, wait.count())));
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && out_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      out_open = Drain(out.read.get(), result.out, o.max_output, nullptr, nullptr);
    }
    if (n > 0 && err_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      err_open = Drain(err.read.get(), result.err, o.max_output, &partial_line, o.on_stderr_line);
    }
    if (Steady::now() >= next_tick) {
      next_tick = Steady::now() + o.tick;
      if (o.on_tick) o.on_tick();
      const bool cancel = o.cancel != nullptr && o.cancel->load();
      if (!killed && (cancel || Steady::now() >= deadline)) {
        kill(-pid, SIGKILL);
        killed = true;
        result.cancelled = cancel;
        result.timed_out = !cancel;
      }
    }
  }
  if (!partial_line.empty() && o.on_stderr_line) o.on_stderr_line(partial_line);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

std::string TailForMessage(std::string_view text, size_t max) {
  size_t end = text.find_last_not_of(" \t\r\n");
  if (end == std::string_view::npos) return "";
  text = text.substr(0, end + 1);
  if (text.size() > max) {
    text = text.substr(text.size() - max);
    size_t nl = text.find('\n');
    if (nl != std::string_view::npos && nl + 1 < text.size()) text = text.substr(nl + 1);
  }
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

}  // namespace mc::agent
