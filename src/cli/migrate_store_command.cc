// controller migrate-store: copies a controller's store to another database (SQLite to
// PostgreSQL, or back).
#include <CLI/CLI.hpp>
#include <cctype>
#include <fstream>
#include <iostream>

#include "commands.h"
#include "mc/common/logging.h"
#include "mc/controller/store_migration.h"

namespace mc::cli {
namespace {

struct MigrateArgs {
  std::string from, to, from_password_file, to_password_file;
  bool replace_target = false;
};

// The password in `file` (trailing whitespace and newline ignored), or none if `file` is empty.
StatusOr<std::optional<std::string>> ReadPasswordFile(const std::string& file) {
  if (file.empty()) return std::optional<std::string>();
  std::ifstream in(file);
  if (!in) return NotFoundError("cannot read " + file);
  std::string password((std::istreambuf_iterator<char>(in)), {});
  while (!password.empty() && std::isspace(static_cast<unsigned char>(password.back()))) {
    password.pop_back();
  }
  if (password.empty()) return InvalidArgumentError(file + " is empty");
  return std::optional<std::string>(std::move(password));
}

Status RunMigrateStore(const MigrateArgs& args) {
  controller::MigrateStoreOptions o;
  o.from = args.from;
  o.to = args.to;
  o.replace_target = args.replace_target;
  MC_ASSIGN_OR_RETURN(o.from_password, ReadPasswordFile(args.from_password_file),
                      "--from-password-file");
  MC_ASSIGN_OR_RETURN(o.to_password, ReadPasswordFile(args.to_password_file), "--to-password-file");
  MC_ASSIGN_OR_RETURN(controller::MigrateStoreReport r, controller::MigrateStore(o));
  std::cout << "copied " << r.endpoints << " endpoints, " << r.api_keys << " API keys, " << r.jobs
            << " jobs with " << r.chunks << " stream chunks, " << r.workers << " workers, "
            << r.ledger << " ledger rows, " << r.hosts << " hosts and " << r.webhooks
            << " webhook deliveries; the target has them all (counts compared)" << std::endl;
  std::cout << "new ledger ids start above " << r.ledger_counter << ", new webhook delivery ids "
            << "above " << r.webhook_counter << std::endl;
  std::cerr << "Next: start the controller with --db on the target (the same --db and password "
            << "file you gave --to); keep the source until it runs." << std::endl;
  return Status::Ok();
}

}  // namespace

void AddMigrateStoreCommand(CLI::App& controller, CommandResult& result) {
  auto* cmd = controller.add_subcommand(
      "migrate-store",
      "Copy a controller's whole store to another database (SQLite to PostgreSQL, or back)");
  cmd->footer(
      "Copies everything a controller keeps: endpoints (with their HF tokens), API keys, jobs\n"
      "(with their stream chunks), workers, the billing ledger, hosts and webhook deliveries,\n"
      "with their ids. The ledger's and the outbox's id counters move too, so ids keep\n"
      "increasing after the move. The copy is one transaction on the target: all of it or\n"
      "nothing. Afterwards the target is read back and every count compared.\n"
      "\n"
      "Before: stop every controller that uses the source (rows written during the copy are\n"
      "not copied), and create the target PostgreSQL database, owned by the role the\n"
      "controller logs in as (createdb -O modelcache modelcache): migrate-store creates the\n"
      "tables. The target must hold no controller rows, unless --replace-target.\n"
      "After: start the controller with --db set to the target.\n"
      "\n"
      "Example:\n"
      "  modelcache controller migrate-store --from sqlite:/var/lib/modelcache/controller.db \\\n"
      "      --to postgresql://modelcache@db.internal/modelcache \\\n"
      "      --to-password-file /etc/modelcache/db-password");
  auto args = std::make_shared<MigrateArgs>();
  cmd->add_option("--from", args->from,
                  "The store to copy: sqlite:PATH or postgresql://... (as --db takes it)")
      ->type_name("STORE")
      ->required();
  cmd->add_option("--to", args->to,
                  "The store to copy into: postgresql://[USER@]HOST[:PORT]/DBNAME, or\n"
                  "sqlite:PATH (a new file, to move back). No password in it: use the files")
      ->type_name("STORE")
      ->required();
  cmd->add_option("--from-password-file", args->from_password_file,
                  "File holding the source's PostgreSQL password")
      ->type_name("FILE");
  cmd->add_option("--to-password-file", args->to_password_file,
                  "File holding the target's PostgreSQL password (or use ~/.pgpass\n"
                  "or $PGPASSFILE)")
      ->type_name("FILE");
  cmd->add_flag("--replace-target", args->replace_target,
                "Delete the rows the target holds first (in the same transaction)");
  cmd->callback([args, &result] {
    SetUpLogging("warn");
    result.status = RunMigrateStore(*args);
  });
}

}  // namespace mc::cli
