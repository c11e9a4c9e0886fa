// Sub-command registration. Each Add*Command adds one sub-command to the app; its callback runs the
// command and stores the outcome in *result, which main() turns into the exit code.
#pragma once

#include <signal.h>

#include <filesystem>
#include <string>

#include "mc/common/status.h"

namespace CLI {
class App;
}
namespace mc::agent {
struct RuntimeOptions;
enum class RuntimeKind;  // mc/agent/runtime_options.h
}

namespace mc::cli {

struct CommandResult {
  Status status;
};

void AddLsCommand(CLI::App& app, CommandResult& result);
void AddPathCommand(CLI::App& app, CommandResult& result);
void AddVerifyCommand(CLI::App& app, CommandResult& result);
void AddRmCommand(CLI::App& app, CommandResult& result);
void AddLinkCommand(CLI::App& app, CommandResult& result);
void AddImportCommand(CLI::App& app, CommandResult& result);
void AddFixtureCommand(CLI::App& app, CommandResult& result);
void AddServeCommand(CLI::App& app, CommandResult& result);
void AddPullCommand(CLI::App& app, CommandResult& result);
void AddAgentCommand(CLI::App& app, CommandResult& result);
void AddPinCommands(CLI::App& app, CommandResult& result);         // pin, unpin, pins
void AddControllerCommands(CLI::App& app, CommandResult& result);  // controller, keys, up
void AddSimCommand(CLI::App& app, CommandResult& result);          // sim, sim compare
// `controller migrate-store`, a sub-command of `controller`.
void AddMigrateStoreCommand(CLI::App& controller, CommandResult& result);

// Daemons (serve, agent, controller, up): blocks SIGTERM and SIGINT in this thread and every
// thread started after the call (threads inherit the mask), and ignores SIGPIPE, so that
// WaitForStopSignal() is the only place that sees a stop. Call before starting any server.
sigset_t BlockStopSignals();
// Waits for SIGTERM or SIGINT; afterwards a second one ends the process at once (default action)
// while the clean stop runs.
void WaitForStopSignal(const sigset_t& stop_signals);

// Adds `--cache-dir` to a sub-command, with the help text every command shares.
void AddCacheDirOption(CLI::App& cmd, std::string& value);
// The cache dir to use: the flag if given, else the HF_HUB_CACHE rules (hf-hub-protocol.md §1.1).
StatusOr<std::filesystem::path> CacheDirOrDefault(const std::string& flag);

// A rate option (--demo-upstream-rate, serve --max-rate): bytes per second as "8MB" or "8MB/s"
// (ByteCount units), more than 0.
StatusOr<uint64_t> ParseRate(const std::string& text);

// The kind `--runtime FLAG` names (auto: podman until ResolveWorkerRuntime looks), or
// InvalidArgument quoting the flag.
StatusOr<agent::RuntimeKind> ParseRuntimeKind(const std::string& flag);

// `--runtime FLAG` made concrete for `r` (r.kind already podman, docker or process from FLAG):
// auto is podman when it runs a container here (with runc when podman's default OCI runtime
// cannot), else processes; podman and docker must work (FailedPrecondition saying what to do).
// Says on stderr, as `who`, which it is.
Status ResolveWorkerRuntime(const std::string& flag, agent::RuntimeOptions& r,
                            const std::string& who);

// The agent's state dir (state.db, resume records, worker logs): the flag if given, else the
// sibling of `cache_dir` named "modelcache-state" (~/.cache/huggingface/modelcache-state for the
// default cache). `agent`, `pin`, `unpin` and `pins` share it, so they find the same state.db.
std::filesystem::path AgentStateDirOrDefault(const std::string& flag,
                                             const std::filesystem::path& cache_dir);

// TLS (docs/security.md): --tls-cert and --tls-key (HTTPS on the server's port) for every
// server command, and --ca-file (the authorities to trust when calling out) for those that call
// other modelcache parts (`client_side`).
struct TlsArgs {
  std::string cert, key, ca;
};
void AddTlsOptions(CLI::App& cmd, TlsArgs& args, bool client_side);

}  // namespace mc::cli
