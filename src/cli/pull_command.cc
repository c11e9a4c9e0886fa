// pull: put one commit of a Hugging Face repo into the cache, verified and resumable
// (mc::downloader::Puller). This file turns flags and the environment into PullOptions, shows
// progress (PullProgress) and turns Ctrl-C into Puller::Cancel().
#include <pthread.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "commands.h"
#include "mc/downloader/pull.h"
#include "mc/hub/hub_config.h"
#include "mc/hub/model_ref.h"
#include "pull_progress.h"

namespace mc::cli {
namespace {

namespace fs = std::filesystem;

struct PullArgs {
  std::string model, revision, cache_dir, state_dir, token_file, endpoint, peer_key_file;
  std::vector<std::string> include, exclude, peers;
  int connections = 0;      // 0 = not given: start at 8 and scale up to max_connections
  int max_connections = 0;  // 0 = not given: `connections` if that was given, else 32
  bool dry_run = false, as_json = false;
};

// What the error hints need to know about the attempt.
struct PullContext {
  std::optional<std::string> token_source;  // where the token came from; nullopt = no token
  std::string endpoint;
  fs::path cache_dir;
};

// $MODELCACHE_STATE_DIR, else ${XDG_STATE_HOME:-$HOME/.local/state}/modelcache.
StatusOr<fs::path> StateDirOrDefault(const std::string& flag, const hub::Env& env) {
  if (!flag.empty()) return fs::path(flag);
  auto non_empty = [&](std::string_view name) -> std::optional<std::string> {
    std::optional<std::string> v = env.get(name);
    if (v && v->empty()) return std::nullopt;
    return v;
  };
  if (auto dir = non_empty("MODELCACHE_STATE_DIR")) return fs::path(*dir);
  if (auto xdg = non_empty("XDG_STATE_HOME")) return fs::path(*xdg) / "modelcache";
  if (auto home = non_empty("HOME")) return fs::path(*home) / ".local" / "state" / "modelcache";
  return FailedPreconditionError(
      "no home directory to keep resume records in: pass --state-dir or set "
      "MODELCACHE_STATE_DIR");
}

// The token from --token-file or the environment (hub_config.h rules), spaces trimmed.
StatusOr<std::optional<hub::HubToken>> ResolvePullToken(const std::string& token_file,
                                                        const hub::Env& env) {
  std::optional<fs::path> file;
  if (!token_file.empty()) file = fs::path(token_file);
  MC_ASSIGN_OR_RETURN(std::optional<hub::HubToken> token, hub::ResolveToken(env, file));
  if (token) {
    std::string_view value = token->secret.Reveal();
    size_t begin = value.find_first_not_of(' ');
    size_t end = value.find_last_not_of(' ');
    token->secret = begin == std::string_view::npos
                        ? hub::Secret("")
                        : hub::Secret(std::string(value.substr(begin, end - begin + 1)));
    if (token->secret.empty()) token.reset();
  }
  if (file && !token) {
    return InvalidArgumentError("--token-file " + QuoteForMessage(token_file) + " holds no token");
  }
  return token;
}

struct Selection {
  hub::ModelRef ref;
  Revision revision;
  downloader::FilePatterns patterns;
  std::vector<RepoFilePath> files;  // exactly these (a /blob/ or /resolve/ URL)
};

StatusOr<Selection> ParseSelection(const PullArgs& args) {
  MC_ASSIGN_OR_RETURN(hub::ModelRef ref, hub::ParseModelRef(args.model));
  std::optional<Revision> flag;
  if (!args.revision.empty()) {
    MC_ASSIGN_OR_RETURN(flag, Revision::Parse(args.revision), "--revision");
  }
  if (flag && ref.revision && *flag != *ref.revision) {
    return InvalidArgumentError("the model reference names revision " +
                                QuoteForMessage(ref.revision->str()) + " but --revision says " +
                                QuoteForMessage(flag->str()) + ": give only one");
  }
  std::optional<Revision> revision = flag ? flag : ref.revision;
  if (!revision) revision = *Revision::Parse("main");
  std::vector<RepoFilePath> files;
  if (ref.file) {
    if (!args.include.empty() || !args.exclude.empty()) {
      return InvalidArgumentError(
          "a /blob/ or /resolve/ URL names one file; drop --include/--exclude, or give the repo "
          "(org/name) with patterns");
    }
    files.push_back(*ref.file);
  }
  return Selection{ref, *revision, {args.include, args.exclude}, std::move(files)};
}

StatusOr<hub::Endpoint> EndpointOrDefault(const std::string& flag, const hub::Env& env) {
  if (flag.empty()) return hub::ResolveEndpoint(env);
  MC_ASSIGN_OR_RETURN(hub::Endpoint endpoint, hub::Endpoint::Parse(flag), "--endpoint");
  return endpoint;
}

StatusOr<downloader::PullOptions> MakeOptions(const PullArgs& args, const Selection& selection,
                                              const hub::Env& env, PullContext& context) {
  if (hub::IsOffline(env)) {
    return FailedPreconditionError(
        "HF_HUB_OFFLINE is set, and pull needs the network: unset HF_HUB_OFFLINE (and "
        "TRANSFORMERS_OFFLINE) to download; 'modelcache path' shows what is already cached");
  }
  MC_ASSIGN_OR_RETURN(fs::path cache_dir, CacheDirOrDefault(args.cache_dir));
  MC_ASSIGN_OR_RETURN(fs::path state_dir, StateDirOrDefault(args.state_dir, env));
  MC_ASSIGN_OR_RETURN(hub::Endpoint endpoint, EndpointOrDefault(args.endpoint, env));
  std::vector<std::string> peers;
  for (const std::string& peer : args.peers) {
    MC_ASSIGN_OR_RETURN(hub::Endpoint parsed, hub::Endpoint::Parse(peer), "--peer");
    peers.push_back(parsed.url());
  }
  std::optional<hub::Secret> peer_key;
  if (!args.peer_key_file.empty()) {  // the fleet's key, for agents' mirror routes
    std::ifstream in(args.peer_key_file);
    std::string key((std::istreambuf_iterator<char>(in)), {});
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    if (!in.good() && !in.eof()) key.clear();
    if (key.empty()) {
      return InvalidArgumentError("--peer-key-file " + QuoteForMessage(args.peer_key_file) +
                                  ": cannot read a key from it");
    }
    peer_key = hub::Secret(std::move(key));
  }
  MC_ASSIGN_OR_RETURN(std::optional<hub::HubToken> token, ResolvePullToken(args.token_file, env));
  std::optional<hub::Secret> secret;
  if (token) {
    context.token_source = token->source;
    secret = std::move(token->secret);
  }
  context.endpoint = endpoint.url();
  context.cache_dir = cache_dir;
  downloader::FetchTuning tuning;
  // An explicit --connections is the count; scaling only with --max-connections, or by default.
  if (args.connections > 0) tuning.connections = args.connections;
  tuning.max_connections = args.max_connections > 0 ? args.max_connections
                           : args.connections > 0   ? args.connections
                                                    : tuning.max_connections;
  if (tuning.max_connections < tuning.connections) {
    return InvalidArgumentError("--max-connections " + std::to_string(tuning.max_connections) +
                                " is less than --connections " +
                                std::to_string(tuning.connections));
  }
  return downloader::PullOptions{.cache_dir = cache_dir,
                                 .state_dir = state_dir,
                                 .endpoint = endpoint,
                                 .token = std::move(secret),
                                 .repo = selection.ref.repo,
                                 .revision = selection.revision,
                                 .patterns = selection.patterns,
                                 .files = selection.files,
                                 .peers = std::move(peers),
                                 .peer_key = std::move(peer_key),
                                 .dry_run = args.dry_run,
                                 .tuning = tuning,
                                 .sleep = {},  // the engine's real sleep
                                 .reserve = {}};
}

// Adds what to do next to an error from the engine, where its message does not say it already.
Status WithHint(const Status& status, const PullContext& context) {
  const std::string& message = status.message();
  std::string hint;
  switch (status.code()) {
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnauthenticated:
      if (context.token_source) {
        hint = "(the token came from " + *context.token_source + ")";
      } else if (message.find("HF_TOKEN") == std::string::npos) {
        hint = "if the repo is gated or private, pass a token with HF_TOKEN or --token-file";
      }
      break;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
      hint = "check the network and " + context.endpoint +
             ", then run the same command again: finished files and partial downloads are kept";
      break;
    case StatusCode::kResourceExhausted:
      hint = "free space under " + context.cache_dir.string() +
             " (or use another --cache-dir), then run again: finished files are kept";
      break;
    case StatusCode::kDataLoss:
      hint =
          "the bad bytes were removed; run again to fetch them again (if it repeats, the "
          "server sends corrupt data)";
      break;
    case StatusCode::kCancelled:
      return CancelledError(
          "interrupted; partial downloads are kept: run the same command again to resume");
    default:
      break;
  }
  if (hint.empty()) return status;
  return Status(status.code(), message + (hint[0] == '(' ? " " : "; ") + hint);
}

// Turns SIGINT/SIGTERM into a callback on a thread of its own (so the engine's threads never see
// them): the first one cancels, a second one exits at once. Start() blocks the signals in the
// calling thread, so call it before any other thread starts (they inherit the mask).
class StopSignals {
 public:
  ~StopSignals() { Stop(); }

  void Start(std::function<void()> on_first) {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    thread_ = std::thread([this, on_first = std::move(on_first)] {
      for (int received = 0;;) {
        int sig = 0;
        if (sigwait(&signals_, &sig) != 0) continue;
        if (stopping_.load()) return;
        if (received++ == 0) {
          on_first();
        } else {
          _exit(130);  // a second Ctrl-C: the user does not want to wait for a clean stop
        }
      }
    });
  }

  // Joins the thread (wakes it with a signal of its own). Idempotent.
  void Stop() {
    if (!thread_.joinable()) return;
    stopping_.store(true);
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

 private:
  sigset_t signals_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

int TerminalWidth() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

Status Pull(const PullArgs& args, PullProgress& progress, PullContext& context) {
  MC_ASSIGN_OR_RETURN(Selection selection, ParseSelection(args));
  progress.SetTitle(hub::FormatModelRef({selection.ref.repo, selection.revision, std::nullopt}));
  hub::Env env = hub::Env::Real();
  MC_ASSIGN_OR_RETURN(downloader::PullOptions options, MakeOptions(args, selection, env, context));
  const bool tty = !args.as_json && isatty(STDERR_FILENO);

  downloader::Puller puller(std::move(options));
  StopSignals signals;
  signals.Start([&puller] { puller.Cancel(); });
  StatusOr<downloader::PullResult> result = puller.Run([&](const downloader::PullEvent& event) {
    if (tty) progress.SetWidth(TerminalWidth());
    progress.OnEvent(event, std::chrono::steady_clock::now());
  });
  signals.Stop();
  if (!result.ok()) return WithHint(result.status(), context);
  if (args.dry_run) {
    progress.PrintPlan(*result);
  } else {
    progress.Finish(*result);
  }
  return Status::Ok();
}

Status RunPull(const PullArgs& args) {
  std::signal(SIGPIPE, SIG_IGN);
  PullProgressOptions options;
  options.mode = args.as_json                 ? PullProgressOptions::Mode::kJson
                 : isatty(STDERR_FILENO) != 0 ? PullProgressOptions::Mode::kTty
                                              : PullProgressOptions::Mode::kPlain;
  options.width = TerminalWidth();
  options.dry_run = args.dry_run;
  PullProgress progress(options, std::cout, std::cerr);
  PullContext context;
  Status status = Pull(args, progress, context);
  if (!status.ok()) progress.Fail(status);
  return status;
}

constexpr const char* kPullDescription =
    "Download one revision of a Hugging Face repo into the cache, every file verified against\n"
    "its hash; an interrupted pull resumes when run again. Prints the snapshot folder.\n"
    "Example: modelcache pull Qwen/Qwen3-0.6B --include '*.safetensors' --include '*.json'";

constexpr const char* kPullFooter =
    "Files go into the Hugging Face hub cache (--cache-dir) in the layout the official clients\n"
    "use, so transformers, vLLM, diffusers and 'hf' find them without a download. Files already\n"
    "in the cache are only linked; a file becomes visible only after its hash matched. An\n"
    "interrupted pull (Ctrl-C, crash, kill, lost network) continues where it stopped when run\n"
    "again. On success the snapshot folder is the only line on stdout:\n"
    "  MODEL_DIR=$(modelcache pull Qwen/Qwen3-0.6B)\n"
    "\n"
    "Examples:\n"
    "  modelcache pull Qwen/Qwen3-0.6B\n"
    "  modelcache pull org/name@v1.0 --include '*.safetensors' --include '*.json'\n"
    "  modelcache pull org/name --exclude 'original/*' --dry-run      show the plan only\n"
    "  modelcache pull https://huggingface.co/org/name/blob/main/config.json      one file\n"
    "  HF_TOKEN=hf_... modelcache pull meta-llama/Llama-3.2-1B       a gated repo\n"
    "  modelcache pull org/name --endpoint http://mirror:8765 --peer http://host2:8765\n"
    "\n"
    "Environment:\n"
    "  HF_TOKEN              token for gated and private repos (else HUGGING_FACE_HUB_TOKEN,\n"
    "                        else the file $HF_HOME/token that 'hf auth login' writes). There\n"
    "                        is no --token flag on purpose: argv is visible to every user.\n"
    "  HF_ENDPOINT           the Hub to download from (default https://huggingface.co)\n"
    "  HF_HUB_CACHE          the cache dir (else $HF_HOME/hub); HF_HOME defaults to\n"
    "                        ~/.cache/huggingface\n"
    "  HF_HUB_OFFLINE=1      pull refuses to run: it needs the network\n"
    "  MODELCACHE_STATE_DIR  where resume records are kept (see --state-dir)\n"
    "\n"
    "Output: progress on stderr (a redrawn bar on a terminal, plain lines otherwise), then a\n"
    "summary on stderr and the snapshot path on stdout. --json: one JSON event per line on\n"
    "stdout instead (plan, file_started, progress, file_verified, file_linked, retry, done, or\n"
    "error with code and message).\n"
    "\n"
    "Exit codes: 0 ok, 1 internal error, 2 bad arguments, 3 repo, revision or file not found,\n"
    "4 gated or private (no token, or the token is not accepted), 5 not enough disk space,\n"
    "6 data corrupt (hash mismatch; the bad bytes are removed), 7 network or server trouble\n"
    "(run again to resume), 8 cannot run now (HF_HUB_OFFLINE), 130 interrupted (run again to\n"
    "resume).";

}  // namespace

void AddPullCommand(CLI::App& app, CommandResult& result) {
  auto* cmd = app.add_subcommand("pull", kPullDescription);
  cmd->footer(kPullFooter);
  auto args = std::make_shared<PullArgs>();
  cmd->add_option("model", args->model,
                  "What to download: org/name, org/name@revision, or a huggingface.co URL (a\n"
                  "/blob/ or /resolve/ URL downloads just that file)")
      ->required();
  cmd->add_option("--revision", args->revision,
                  "Branch, tag, refs/pr/N or commit sha (default main)");
  cmd->add_option("--include", args->include,
                  "Only files matching this glob (repeatable), e.g. '*.safetensors'; '*' also\n"
                  "matches '/', as in huggingface_hub's allow_patterns")
      ->allow_extra_args(false);
  cmd->add_option("--exclude", args->exclude,
                  "Skip files matching this glob (repeatable), e.g. 'original/*'")
      ->allow_extra_args(false);
  AddCacheDirOption(*cmd, args->cache_dir);
  cmd->add_option("--state-dir", args->state_dir,
                  "Where resume records of unfinished downloads are kept, outside the cache\n"
                  "(default: $MODELCACHE_STATE_DIR, else ${XDG_STATE_HOME:-~/.local/state}/\n"
                  "modelcache). Small files; safe to delete when no pull is running (an\n"
                  "interrupted download then starts its unfinished files over)");
  cmd->add_option("--token-file", args->token_file,
                  "Read the token from this file instead of HF_TOKEN (surrounding whitespace\n"
                  "is ignored). The token is never printed");
  cmd->add_option("--endpoint", args->endpoint,
                  "The Hub to download from (default: $HF_ENDPOINT, else "
                  "https://huggingface.co),\n"
                  "e.g. a 'modelcache serve' mirror: http://mirror:8765");
  cmd->add_option("--peer", args->peers,
                  "A 'modelcache serve' on another host tried before the endpoint for every file\n"
                  "(repeatable); a peer that lacks a file or is slow is skipped. The token is\n"
                  "never sent to a peer")
      ->allow_extra_args(false);
  cmd->add_option("--peer-key-file", args->peer_key_file,
                  "File holding the fleet's peer key, sent to every --peer (agents' mirror routes\n"
                  "require it; a 'modelcache serve' ignores it)")
      ->type_name("FILE");
  cmd->add_option("--connections", args->connections,
                  "Parallel HTTP connections, 1 to 64; big files are split across them. Default:\n"
                  "start with 8 and double them while each step raises the download rate by\n"
                  "10% or more (a link where one connection is slower than several), up to 32.\n"
                  "Given, it is the exact count unless --max-connections is given too")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--max-connections", args->max_connections,
                  "The most connections scaling may reach, 1 to 64 (default 32)")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--dry-run", args->dry_run,
                "Show what would be fetched, linked or is already present; write nothing");
  cmd->add_flag("--json", args->as_json,
                "One JSON event per line on stdout instead of the progress display");
  cmd->callback([args, &result] { result.status = RunPull(*args); });
}

}  // namespace mc::cli
