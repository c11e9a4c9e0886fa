#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>

#include "commands.h"
#include "mc/common/byte_count.h"
#include "mc/hub/hub_config.h"

namespace mc::cli {

sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return set;
}

void WaitForStopSignal(const sigset_t& stop_signals) {
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
}

void AddCacheDirOption(CLI::App& cmd, std::string& value) {
  cmd.add_option("--cache-dir", value,
                 "The Hugging Face cache dir (default: $HF_HUB_CACHE, else $HF_HOME/hub, else\n"
                 "~/.cache/huggingface/hub, exactly as the official clients choose it)");
}

StatusOr<uint64_t> ParseRate(const std::string& text) {
  std::string_view bytes = text;
  if (bytes.ends_with("/s")) bytes.remove_suffix(2);
  MC_ASSIGN_OR_RETURN(ByteCount rate, ByteCount::Parse(bytes));
  if (rate.bytes() == 0) return InvalidArgumentError("the rate must be more than 0 bytes a second");
  return rate.bytes();
}

StatusOr<std::filesystem::path> CacheDirOrDefault(const std::string& flag) {
  if (!flag.empty()) return std::filesystem::path(flag);
  return hub::ResolveHubCacheDir(hub::Env::Real());
}

std::filesystem::path AgentStateDirOrDefault(const std::string& flag,
                                             const std::filesystem::path& cache_dir) {
  if (!flag.empty()) return std::filesystem::path(flag);
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::absolute(cache_dir, ec).lexically_normal();
  if (ec) dir = cache_dir.lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();  // "hub/" → "hub"
  return dir.parent_path() / "modelcache-state";
}

void AddTlsOptions(CLI::App& cmd, TlsArgs& args, bool client_side) {
  cmd.add_option("--tls-cert", args.cert,
                 "PEM certificate (chain) to serve HTTPS with; needs --tls-key (default: plain\n"
                 "HTTP, for a trusted network or behind a TLS proxy)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--tls-key", args.key, "PEM private key of --tls-cert (keep it 0600)")
      ->check(CLI::ExistingFile);
  if (client_side) {
    cmd.add_option("--ca-file", args.ca,
                   "PEM file of the certificate authorities to trust when this process calls\n"
                   "the controller, agents, peers or the upstream Hub over https:// (default:\n"
                   "the system's)")
        ->check(CLI::ExistingFile);
  }
}

}  // namespace mc::cli
