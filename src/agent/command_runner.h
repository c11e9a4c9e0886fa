// RunCommand: runs a short-lived helper program (the container engine's CLI) to completion and
// captures its output.
//
// The child gets exactly `env`, its own process group, no fd of ours, and stdin from `stdin_data`
// (an in-memory file: secrets such as a registry auth file reach the engine this way, never
// through argv or the disk) or /dev/null. stdout and stderr are captured up to `max_output` bytes
// each (the rest is read and dropped); stderr is also handed line by line to `on_stderr_line`.
// `on_tick` runs every `tick` while the child runs (progress polls). Past `timeout`, or once
// `*cancel` is true, the whole group is SIGKILLed and the result says so.
//
// Thread-safety: reentrant; callbacks run on the calling thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mc/common/status.h"

namespace mc::agent {

struct CommandOptions {
  std::vector<std::string> argv;  // argv[0] is an absolute path or found in env's PATH
  std::vector<std::string> env;   // "KEY=value": the whole environment
  std::optional<std::string> stdin_data;
  std::chrono::milliseconds timeout{120'000};
  std::chrono::milliseconds tick{250};
  std::function<void(std::string_view line)> on_stderr_line;
  std::function<void()> on_tick;
  const std::atomic<bool>* cancel = nullptr;
  size_t max_output = 4u << 20;
};

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  bool cancelled = false;
  std::string out;
  std::string err;
  bool ok() const { return exit_code == 0; }
};

// NotFound if argv[0] cannot be executed; other errors from the system calls. A program that runs
// and fails is an OK StatusOr whose result has the exit code.
StatusOr<CommandResult> RunCommand(const CommandOptions& options);

// The last `max` bytes of `text` cut at a line start, trimmed: the part of an error output worth
// putting in a message.
std::string TailForMessage(std::string_view text, size_t max = 600);

}  // namespace mc::agent
