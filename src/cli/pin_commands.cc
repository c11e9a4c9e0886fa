// pin, unpin, pins: operator pins in the agent's state dir, through the agent's public pin
// interface (mc/agent/pins.h). They work whether or not an agent runs: a running agent reads the
// pins at each eviction decision, and they survive restarts.
#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "format.h"
#include "mc/agent/pins.h"
#include "mc/cache/cache_store.h"
#include "mc/common/clock.h"
#include "mc/common/ids.h"
#include "mc/hub/model_ref.h"

namespace mc::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct PinArgs {
  std::string model, revision, cache_dir, state_dir;
  bool as_json = false;
};

// "org/name" for models, "datasets/org/name" otherwise: what the model-ref parser reads back.
std::string ModelName(const RepoId& repo) { return std::string(repo.UrlPrefix()) + repo.id(); }

std::string IsoTime(Clock::TimePoint t) {
  const std::time_t secs = static_cast<std::time_t>(ToUnixSeconds(t));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct Target {
  RepoId repo;
  CommitSha commit;
};

// The model-ref and --revision → the commit to pin. A 40-hex revision is taken as is (a pin may
// name a commit before it is downloaded); anything else is resolved through the cache's refs.
StatusOr<Target> ResolveTarget(const PinArgs& args) {
  MC_ASSIGN_OR_RETURN(hub::ModelRef ref, hub::ParseModelRef(args.model));
  if (ref.file) {
    return InvalidArgumentError("pins name a whole repo revision, not a file: give org/name[@rev]");
  }
  std::optional<Revision> revision = ref.revision;
  if (!args.revision.empty()) {
    MC_ASSIGN_OR_RETURN(Revision flag, Revision::Parse(args.revision), "--revision");
    if (revision && *revision != flag) {
      return InvalidArgumentError("the model reference names revision " +
                                  QuoteForMessage(revision->str()) + " but --revision says " +
                                  QuoteForMessage(flag.str()) + ": give only one");
    }
    revision = flag;
  }
  if (!revision) revision = *Revision::Parse("main");
  if (CommitSha::IsValid(revision->str())) {
    return Target{ref.repo, *CommitSha::Parse(revision->str())};
  }
  MC_ASSIGN_OR_RETURN(fs::path cache_dir, CacheDirOrDefault(args.cache_dir));
  const std::string name = ModelName(ref.repo) + "@" + revision->str();
  auto not_cached = [&] {
    return NotFoundError(name +
                         " is not in the cache; pin a commit sha or ensure the model first "
                         "(cache: " +
                         cache_dir.string() + ")");
  };
  std::error_code ec;
  if (!fs::is_directory(cache_dir, ec)) return not_cached();
  MC_ASSIGN_OR_RETURN(
      auto store, cache::CacheStore::Open({cache_dir, std::nullopt, /*create_if_missing=*/false}));
  auto commit = store->ResolveRevision(ref.repo, *revision);
  if (commit.status().code() == StatusCode::kNotFound) return not_cached();
  if (!commit.ok()) return commit.status();
  return Target{ref.repo, *commit};
}

StatusOr<fs::path> StateDir(const PinArgs& args) {
  MC_ASSIGN_OR_RETURN(fs::path cache_dir, CacheDirOrDefault(args.cache_dir));
  return AgentStateDirOrDefault(args.state_dir, cache_dir);
}

Status RunPin(const PinArgs& args, bool add) {
  MC_ASSIGN_OR_RETURN(Target target, ResolveTarget(args));
  MC_ASSIGN_OR_RETURN(fs::path state_dir, StateDir(args));
  const std::string name = ModelName(target.repo) + "@" + target.commit.str();
  if (add) {
    MC_RETURN_IF_ERROR(
        agent::AddOperatorPin(state_dir, target.repo, target.commit, Clock::Real().Now()),
        "pin " + name);
    std::cout << "pinned " << name << std::endl;
    return Status::Ok();
  }
  Status removed = agent::RemoveOperatorPin(state_dir, target.repo, target.commit);
  if (removed.code() == StatusCode::kNotFound) {
    return NotFoundError(name + " has no operator pin in " +
                         agent::StateDbPath(state_dir).string() +
                         " ('modelcache pins' lists them)");
  }
  MC_RETURN_IF_ERROR(removed, "unpin " + name);
  std::cout << "unpinned " << name << std::endl;
  return Status::Ok();
}

Status RunPins(const PinArgs& args) {
  MC_ASSIGN_OR_RETURN(fs::path state_dir, StateDir(args));
  MC_ASSIGN_OR_RETURN(std::vector<agent::PinInfo> pins, agent::ListPins(state_dir));
  auto model = [](const agent::PinInfo& pin) {
    auto repo = RepoId::FromFolderName(pin.repo);
    return repo.ok() ? ModelName(*repo) : pin.repo;
  };
  if (args.as_json) {
    json list = json::array();
    for (const auto& pin : pins) {
      list.push_back({{"model", model(pin)},
                      {"commit", pin.commit},
                      {"owner", pin.owner},
                      {"created_at", IsoTime(pin.created)}});
    }
    std::cout << json{{"pins", list}}.dump() << std::endl;
    return Status::Ok();
  }
  if (pins.empty()) {
    std::cerr << "No pins in " << agent::StateDbPath(state_dir).string() << ".\n";
    return Status::Ok();
  }
  Table table({"MODEL", "COMMIT", "OWNER", "PINNED"});
  for (const auto& pin : pins) table.AddRow({model(pin), pin.commit, pin.owner, Ago(pin.created)});
  table.Print(std::cout);
  return Status::Ok();
}

void AddStateDirOption(CLI::App& cmd, std::string& value) {
  cmd.add_option("--state-dir", value,
                 "The agent's state dir holding state.db (default: next to the cache dir, named\n"
                 "modelcache-state, as 'modelcache agent' chooses it)");
}

constexpr const char* kPinFooter =
    "Pins are kept in <state-dir>/state.db, the agent's database, with owner \"operator\": they\n"
    "take effect at once whether or not an agent runs (a running agent reads them at every\n"
    "eviction decision) and survive restarts. A pinned snapshot is never evicted to make room;\n"
    "'modelcache rm' still removes it. A revision that is not a commit sha (main, a tag) is\n"
    "resolved through the local cache, so the model must be cached; a commit sha can be pinned\n"
    "before it is downloaded.\n"
    "\n"
    "Examples:\n"
    "  modelcache pin Qwen/Qwen3-0.6B                 the commit main points to in the cache\n"
    "  modelcache pin org/name@0123456789abcdef0123456789abcdef01234567\n"
    "  modelcache unpin Qwen/Qwen3-0.6B\n"
    "  modelcache pins --json";

void AddPinOrUnpin(CLI::App& app, CommandResult& result, bool add) {
  auto* cmd =
      app.add_subcommand(add ? "pin" : "unpin",
                         add ? "Pin a cached model revision so that the host agent never evicts it"
                             : "Remove an operator pin (the snapshot can be evicted again)");
  cmd->footer(kPinFooter);
  auto args = std::make_shared<PinArgs>();
  cmd->add_option("model", args->model,
                  "org/name, org/name@revision or a huggingface.co URL (default revision main)")
      ->required();
  cmd->add_option("--revision", args->revision, "Branch, tag or commit sha (default main)");
  AddCacheDirOption(*cmd, args->cache_dir);
  AddStateDirOption(*cmd, args->state_dir);
  cmd->callback([args, add, &result] { result.status = RunPin(*args, add); });
}

}  // namespace

void AddPinCommands(CLI::App& app, CommandResult& result) {
  AddPinOrUnpin(app, result, true);
  AddPinOrUnpin(app, result, false);
  auto* cmd = app.add_subcommand(
      "pins",
      "List the pins in the agent's state database: operator pins ('modelcache pin')\n"
      "and the pins running workers hold on their model");
  auto args = std::make_shared<PinArgs>();
  AddCacheDirOption(*cmd, args->cache_dir);
  AddStateDirOption(*cmd, args->state_dir);
  cmd->add_flag("--json", args->as_json,
                "Print {\"pins\": [{model, commit, owner, created_at}]} as GET /v1/pins does");
  cmd->callback([args, &result] { result.status = RunPins(*args); });
}

}  // namespace mc::cli
