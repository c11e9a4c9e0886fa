// modelcache: cached Hugging Face models for serverless GPU fleets. See README.md.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "exit_codes.h"
#include "mc/common/logging.h"

namespace {

constexpr const char* kDescription =
    "modelcache: Hugging Face models in the exact HF hub cache layout, verified, shared and "
    "served.\n"
    "\n"
    "Caches are ordinary Hugging Face caches: point HF_HUB_CACHE at one and set HF_HUB_OFFLINE=1,\n"
    "and transformers, vLLM or diffusers load the models without network.\n"
    "\n"
    "Start here:\n"
    "  modelcache pull Qwen/Qwen3-0.6B                    download a model from the Hub, verified\n"
    "  modelcache fixture ./demo-model --size 64MiB       write a small generated model folder\n"
    "  modelcache import ./demo-model --repo demo/tiny    put it into the cache as demo/tiny\n"
    "  modelcache ls                                     see what the cache holds\n"
    "  modelcache serve                                  serve the cache over the Hugging Face "
    "API\n"
    "  modelcache agent --capacity 800GB                  run the host agent (cache, downloads, "
    "workers)\n"
    "\n"
    "Run 'modelcache <command> --help' for the details of a command.";

// The word given where a command belongs when it names none ("" when a command was given or
// nothing is there). CLI11 keeps such a word aside and, with --help beside it, would print the
// top help and exit 0.
std::string UnknownCommand(const CLI::App& app) {
  if (!app.get_subcommands().empty()) return "";
  for (const std::string& arg : app.remaining()) {
    if (!arg.empty() && arg[0] != '-') return arg;
  }
  return "";
}

int UnknownCommandError(CLI::App& app, const std::string& word) {
  std::string names;
  for (const CLI::App* cmd : app.get_subcommands([](CLI::App*) { return true; })) {
    names += (names.empty() ? "" : ", ") + cmd->get_name();
  }
  std::cerr << "modelcache: error: unknown command '" << word << "'. The commands are: " << names
            << ".\nRun 'modelcache --help' for what each does.\n";
  return mc::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(kDescription, "modelcache");
  app.require_subcommand(1);
  app.set_version_flag("--version", "modelcache 0.1.0");
  std::string log_level = "warn";
  app.add_option("--log-level", log_level,
                 "Logging to stderr: trace, debug, info, warn, error or off (default warn)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.footer(
      "Exit codes: 0 ok, 1 internal error, 2 bad arguments, 3 not found, 4 access denied,\n"
      "5 no space, 6 data corrupt (hash mismatch), 7 network/server unavailable, 8 conflict.");

  mc::cli::CommandResult result;
  mc::cli::AddLsCommand(app, result);
  mc::cli::AddPathCommand(app, result);
  mc::cli::AddVerifyCommand(app, result);
  mc::cli::AddRmCommand(app, result);
  mc::cli::AddLinkCommand(app, result);
  mc::cli::AddImportCommand(app, result);
  mc::cli::AddFixtureCommand(app, result);
  mc::cli::AddPullCommand(app, result);
  mc::cli::AddServeCommand(app, result);
  mc::cli::AddAgentCommand(app, result);
  mc::cli::AddPinCommands(app, result);
  mc::cli::AddControllerCommands(app, result);
  mc::cli::AddSimCommand(app, result);
  app.parse_complete_callback([&] { mc::SetUpLogging(log_level); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    const std::string word = UnknownCommand(app);
    return word.empty() ? app.exit(e) : UnknownCommandError(app, word);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (const std::string word = UnknownCommand(app); !word.empty()) {
      return UnknownCommandError(app, word);
    }
    std::cerr << "modelcache: error: " << e.what() << "\n"
              << "Run 'modelcache --help' or 'modelcache <command> --help' for usage.\n";
    return mc::cli::kExitUsage;
  }
  if (!result.status.ok()) {
    std::fflush(stdout);
    std::cerr << "modelcache: error: " << result.status.message() << "\n";
    return mc::cli::ExitCodeFor(result.status);
  }
  return mc::cli::kExitOk;
}
