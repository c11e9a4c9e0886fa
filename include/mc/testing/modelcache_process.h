// For the tests that run the real modelcache binary (the CLI's tests, controller_restart_test):
// where it is, and starting and waiting for it. In mc_test_support (tests only; they record
// GoogleTest failures).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace mc::testing {

// The binary under test, in the build tree.
const std::string& McBinary();

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

// Everything left to read from `fd`.
std::string ReadAll(int fd);

// Starts modelcache with `args`; its stdout and stderr go to the given fds (-1: inherited).
// `env` is the child's whole environment; nullptr passes this process's own. Returns the pid, or
// -1 if it could not be started.
pid_t SpawnMc(const std::vector<std::string>& args, const std::vector<std::string>* env, int out_fd,
              int err_fd);

// Waits for `pid` to exit, at most `timeout` (then kills it and records a test failure). Returns
// the exit code, or 128 + the signal.
int WaitExit(pid_t pid, std::chrono::milliseconds timeout);

// A loopback TCP port nobody listens on now (bound and released), for a child process that must
// listen on a port known before it starts (a controller restarted on the same URL). Another
// process may take it in between: tests use it only where port 0 cannot do.
int FreeLoopbackPort();

}  // namespace mc::testing
