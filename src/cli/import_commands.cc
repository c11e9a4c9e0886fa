// import, fixture: commands that make cached repos from local folders.
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mc/cache/cache_store.h"
#include "mc/cache/importer.h"
#include "mc/common/byte_count.h"
#include "mc/testing/model_fixture.h"

namespace mc::cli {
namespace {

using nlohmann::json;

constexpr std::chrono::seconds kSweepGrace = std::chrono::minutes(15);

struct ImportArgs {
  std::string cache_dir, dir, repo, repo_type = "model", revision = "main";
  bool as_json = false;
};

Status RunImport(const ImportArgs& args) {
  MC_ASSIGN_OR_RETURN(RepoType type, ParseRepoType(args.repo_type));
  MC_ASSIGN_OR_RETURN(RepoId repo, RepoId::Parse(args.repo, type));
  MC_ASSIGN_OR_RETURN(Revision revision, Revision::Parse(args.revision));
  MC_ASSIGN_OR_RETURN(std::filesystem::path root, CacheDirOrDefault(args.cache_dir));
  cache::CacheOptions options;
  options.root = root;
  MC_ASSIGN_OR_RETURN(auto store, cache::CacheStore::Open(options));
  // Temp files of writers that crashed: untouched for this long, nobody is still writing them.
  MC_RETURN_IF_ERROR(store->SweepTempFiles(kSweepGrace).status(), "sweep temp files");
  MC_ASSIGN_OR_RETURN(cache::ImportResult imported,
                      cache::ImportFolder(*store, args.dir, repo, revision), "import " + args.dir);
  if (args.as_json) {
    json files = json::array();
    for (const auto& f : imported.files) {
      files.push_back({{"path", f.path}, {"etag", f.etag}, {"size", f.size}, {"lfs", f.lfs}});
    }
    std::cout << json{{"repo", repo.id()},          {"type", std::string(RepoTypeName(type))},
                      {"revision", revision.str()}, {"commit", imported.commit.str()},
                      {"cache_dir", root.string()}, {"files", std::move(files)},
                      {"bytes", imported.bytes}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "Imported " << imported.files.size() << " file(s), "
              << ByteCount(imported.bytes).ToHuman() << ", as " << repo.id() << "@"
              << revision.str() << " = commit " << imported.commit.str() << "\n"
              << "Snapshot: " << store->layout().SnapshotDir(repo, imported.commit).string()
              << "\n";
  }
  return Status::Ok();
}

struct FixtureArgs {
  std::string dir, size = "64MiB";
  int shards = 1;
  uint64_t seed = 1;
};

Status RunFixture(const FixtureArgs& args) {
  MC_ASSIGN_OR_RETURN(ByteCount size, ByteCount::Parse(args.size));
  if (args.shards < 1 || args.shards > 999) {
    return InvalidArgumentError("--shards must be between 1 and 999");
  }
  testing::ModelFixtureOptions options;
  options.total_weight_bytes = size.bytes();
  options.shards = args.shards;
  options.seed = args.seed;
  MC_ASSIGN_OR_RETURN(auto files, testing::WriteModelFixture(args.dir, options));
  std::cout << "Wrote " << files.size() << " file(s) to " << args.dir << ":\n";
  for (const auto& f : files) std::cout << "  " << f << "\n";
  return Status::Ok();
}

}  // namespace

void AddImportCommand(CLI::App& app, CommandResult& result) {
  auto* cmd = app.add_subcommand(
      "import",
      "Turn a plain model folder into a cached Hugging Face repo, as if it had been downloaded.\n"
      "Large and binary files become sha256 (LFS) blobs, small text files git-sha1 blobs; the\n"
      "commit id is computed from the content, so the same folder always gives the same commit.\n"
      "Example: modelcache import ./my-model --repo my-org/my-model --revision main");
  auto args = std::make_shared<ImportArgs>();
  AddCacheDirOption(*cmd, args->cache_dir);
  cmd->add_option("dir", args->dir, "The folder to import (regular files only)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--repo", args->repo, "Repo id to store it as, e.g. my-org/my-model")->required();
  cmd->add_option("--repo-type", args->repo_type, "model (default), dataset or space");
  cmd->add_option("--revision", args->revision, "Branch or tag name to point at it (default main)");
  cmd->add_flag("--json", args->as_json, "Print the result (commit, files, etags) as JSON");
  cmd->callback([args, &result] { result.status = RunImport(*args); });
}

void AddFixtureCommand(CLI::App& app, CommandResult& result) {
  auto* cmd = app.add_subcommand(
      "fixture",
      "Write a generated model folder for tests and demos: config.json, tokenizer.json,\n"
      "generation_config.json, original/params.json and safetensors weights with a valid header\n"
      "and random tensors. Same --seed, same bytes.\n"
      "Example: modelcache fixture ./demo-model --size 64MiB --shards 2");
  auto args = std::make_shared<FixtureArgs>();
  cmd->add_option("dir", args->dir, "Folder to create (must not exist, or be empty)")->required();
  cmd->add_option("--size", args->size,
                  "Total size of the weights, e.g. 64MiB, 2GiB (default 64MiB)");
  cmd->add_option("--shards", args->shards,
                  "Number of safetensors shards (1 = model.safetensors; more adds the index)");
  cmd->add_option("--seed", args->seed, "Random seed for the tensor bytes (default 1)");
  cmd->callback([args, &result] { result.status = RunFixture(*args); });
}

}  // namespace mc::cli
