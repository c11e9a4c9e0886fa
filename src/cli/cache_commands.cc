// ls, path, verify, rm, link: commands that read or change a local cache.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "format.h"
#include "mc/cache/app_links.h"
#include "mc/cache/cache_scan.h"
#include "mc/cache/cache_store.h"
#include "mc/common/byte_count.h"
#include "mc/hub/model_ref.h"

namespace mc::cli {
namespace {

using nlohmann::json;

StatusOr<std::unique_ptr<cache::CacheStore>> OpenCache(const std::string& flag, bool create) {
  MC_ASSIGN_OR_RETURN(std::filesystem::path dir, CacheDirOrDefault(flag));
  std::error_code ec;
  if (!create && !std::filesystem::is_directory(dir, ec)) {
    return NotFoundError("no cache at " + dir.string() +
                         " (set --cache-dir or HF_HUB_CACHE, or fill one with 'modelcache "
                         "import')");
  }
  cache::CacheOptions options;
  options.root = dir;
  options.create_if_missing = create;
  return cache::CacheStore::Open(options);
}

json RevisionJson(const cache::CachedRevision& rev, bool with_files) {
  json j = {{"commit", rev.commit},
            {"refs", rev.refs},
            {"size_on_disk", rev.size_on_disk},
            {"nb_files", rev.files.size()},
            {"last_modified", UnixSeconds(rev.last_modified)}};
  if (with_files) {
    json files = json::array();
    for (const auto& f : rev.files) {
      files.push_back({{"path", f.path}, {"blob", f.blob_name}, {"size", f.size_on_disk}});
    }
    j["files"] = std::move(files);
  }
  return j;
}

json ScanJson(const std::filesystem::path& root, const cache::CacheScan& scan, bool with_files) {
  json repos = json::array();
  for (const auto& r : scan.repos) {
    json revs = json::array();
    std::vector<std::string> refs;
    for (const auto& rev : r.revisions) {
      revs.push_back(RevisionJson(rev, with_files));
      refs.insert(refs.end(), rev.refs.begin(), rev.refs.end());
    }
    repos.push_back({{"repo", r.repo.id()},
                     {"type", std::string(RepoTypeName(r.repo.type()))},
                     {"path", r.dir.string()},
                     {"size_on_disk", r.size_on_disk},
                     {"nb_files", r.nb_files},
                     {"last_accessed", UnixSeconds(r.last_accessed)},
                     {"last_modified", UnixSeconds(r.last_modified)},
                     {"refs", refs},
                     {"revisions", std::move(revs)}});
  }
  json incomplete = json::array();
  for (const auto& p : scan.incomplete_files) incomplete.push_back(p.string());
  return {{"cache_dir", root.string()},
          {"size_on_disk", scan.size_on_disk},
          {"repos", std::move(repos)},
          {"warnings", scan.warnings},
          {"incomplete_files", std::move(incomplete)}};
}

void PrintScanTable(const std::filesystem::path& root, const cache::CacheScan& scan,
                    bool revisions) {
  Table table({"REPO ID", "TYPE", "SIZE", "FILES", "LAST ACCESSED", "LAST MODIFIED", "REFS"});
  if (revisions)
    table = Table({"REPO ID", "TYPE", "REVISION", "SIZE", "FILES", "MODIFIED", "REFS"});
  for (const auto& r : scan.repos) {
    if (!revisions) {
      std::vector<std::string> refs;
      for (const auto& rev : r.revisions) refs.insert(refs.end(), rev.refs.begin(), rev.refs.end());
      table.AddRow({r.repo.id(), std::string(RepoTypeName(r.repo.type())),
                    ByteCount(r.size_on_disk).ToHuman(), std::to_string(r.nb_files),
                    Ago(r.last_accessed), Ago(r.last_modified), Join(refs, ", ")});
      continue;
    }
    for (const auto& rev : r.revisions) {
      table.AddRow({r.repo.id(), std::string(RepoTypeName(r.repo.type())), rev.commit,
                    ByteCount(rev.size_on_disk).ToHuman(), std::to_string(rev.files.size()),
                    Ago(rev.last_modified), Join(rev.refs, ", ")});
    }
  }
  table.Print(std::cout);
  std::cout << "\n"
            << scan.repos.size() << " repo(s), " << ByteCount(scan.size_on_disk).ToHuman()
            << " on disk in " << root.string() << "\n";
  for (const auto& w : scan.warnings) std::cout << "warning: " << w << "\n";
  if (!scan.incomplete_files.empty()) {
    std::cout << scan.incomplete_files.size()
              << " incomplete file(s) from interrupted downloads or imports.\n";
  }
}

Status RunLs(const std::string& cache_dir, bool as_json, bool revisions, bool files) {
  MC_ASSIGN_OR_RETURN(auto store, OpenCache(cache_dir, false));
  MC_ASSIGN_OR_RETURN(cache::CacheScan scan, cache::ScanCache(*store), "scan cache");
  if (as_json) {
    std::cout << ScanJson(store->layout().root(), scan, files).dump(2) << "\n";
  } else {
    PrintScanTable(store->layout().root(), scan, revisions);
  }
  return Status::Ok();
}

Status RunPath(const std::string& cache_dir, const std::string& ref_text,
               const std::string& file_text) {
  MC_ASSIGN_OR_RETURN(hub::ModelRef ref, hub::ParseModelRef(ref_text));
  MC_ASSIGN_OR_RETURN(auto store, OpenCache(cache_dir, false));
  MC_ASSIGN_OR_RETURN(Revision rev, Revision::Parse(ref.revision ? ref.revision->str() : "main"));
  MC_ASSIGN_OR_RETURN(CommitSha commit, store->ResolveRevision(ref.repo, rev),
                      ref.repo.id() + "@" + rev.str() + " is not cached");
  std::optional<RepoFilePath> file = ref.file;
  if (!file_text.empty()) {
    MC_ASSIGN_OR_RETURN(RepoFilePath f, RepoFilePath::Parse(file_text));
    file = f;
  }
  if (!file) {
    std::cout << store->layout().SnapshotDir(ref.repo, commit).string() << "\n";
    return Status::Ok();
  }
  MC_ASSIGN_OR_RETURN(cache::SnapshotEntry entry, store->StatSnapshotFile(ref.repo, commit, *file),
                      file->str() + " is not in " + ref.repo.id() + "@" + rev.str());
  std::cout << store->layout().SnapshotFile(ref.repo, commit, *file).string() << "\n";
  return Status::Ok();
}

const char* OutcomeName(cache::VerifyFileResult::Outcome o) {
  using O = cache::VerifyFileResult::Outcome;
  switch (o) {
    case O::kOk:
      return "ok";
    case O::kMismatch:
      return "mismatch";
    case O::kMissing:
      return "missing";
    case O::kUnknownName:
      return "unknown_name";
  }
  return "unknown";
}

Status RunVerify(const std::string& cache_dir, const std::string& ref_text, bool as_json) {
  std::optional<RepoId> repo;
  std::optional<Revision> revision;
  if (!ref_text.empty()) {
    MC_ASSIGN_OR_RETURN(hub::ModelRef ref, hub::ParseModelRef(ref_text));
    repo = ref.repo;
    revision = ref.revision;
  }
  MC_ASSIGN_OR_RETURN(auto store, OpenCache(cache_dir, false));
  MC_ASSIGN_OR_RETURN(cache::VerifyReport report, cache::VerifyCache(*store, repo, revision));
  if (as_json) {
    json files = json::array();
    for (const auto& f : report.files) {
      files.push_back({{"repo", f.repo},
                       {"commit", f.commit},
                       {"path", f.path},
                       {"expected", f.expected},
                       {"actual", f.actual},
                       {"outcome", OutcomeName(f.outcome)}});
    }
    std::cout << json{{"ok", report.ok},
                      {"failed", report.failed},
                      {"bytes_hashed", report.bytes_hashed},
                      {"files", std::move(files)}}
                     .dump(2)
              << "\n";
  } else {
    for (const auto& f : report.files) {
      if (f.outcome == cache::VerifyFileResult::Outcome::kOk) continue;
      std::cout << OutcomeName(f.outcome) << "  " << f.repo << "@" << f.commit << "  " << f.path
                << "  expected " << f.expected << (f.actual.empty() ? "" : " got " + f.actual)
                << "\n";
    }
    std::cout << report.ok << " file(s) ok, " << report.failed << " failed, "
              << ByteCount(report.bytes_hashed).ToHuman() << " hashed.\n";
  }
  if (report.failed > 0) {
    return DataLossError(std::to_string(report.failed) +
                         " file(s) failed verification; remove them with 'modelcache rm' and "
                         "download again");
  }
  return Status::Ok();
}

Status RunRm(const std::string& cache_dir, const std::string& ref_text, bool as_json) {
  MC_ASSIGN_OR_RETURN(hub::ModelRef ref, hub::ParseModelRef(ref_text));
  MC_ASSIGN_OR_RETURN(auto store, OpenCache(cache_dir, false));
  cache::RemoveReport report;
  if (ref.revision) {
    MC_ASSIGN_OR_RETURN(report, cache::RemoveRevision(*store, ref.repo, *ref.revision));
  } else {
    MC_ASSIGN_OR_RETURN(report, cache::RemoveRepo(*store, ref.repo));
  }
  if (as_json) {
    std::cout << json{{"removed_snapshots", report.removed_snapshots},
                      {"removed_refs", report.removed_refs},
                      {"blobs_freed", report.blobs_freed},
                      {"bytes_freed", report.bytes_freed}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "Removed " << report.removed_snapshots.size() << " revision(s) of "
              << ref.repo.id() << ", freed " << report.blobs_freed << " blob(s), "
              << ByteCount(report.bytes_freed).ToHuman() << ".\n";
  }
  return Status::Ok();
}

Status RunLink(const std::string& cache_dir, const std::string& ref_text,
               const std::string& file_text, const std::string& dest) {
  MC_ASSIGN_OR_RETURN(hub::ModelRef ref, hub::ParseModelRef(ref_text));
  MC_ASSIGN_OR_RETURN(auto store, OpenCache(cache_dir, false));
  std::optional<RepoFilePath> file = ref.file;
  if (!file_text.empty()) {
    MC_ASSIGN_OR_RETURN(RepoFilePath f, RepoFilePath::Parse(file_text));
    file = f;
  }
  MC_ASSIGN_OR_RETURN(Revision rev, Revision::Parse(ref.revision ? ref.revision->str() : "main"));
  MC_ASSIGN_OR_RETURN(auto links, cache::LinkIntoApp(*store, ref.repo, rev, file, dest));
  for (const auto& l : links) std::cout << l.link.string() << " -> " << l.target.string() << "\n";
  return Status::Ok();
}

}  // namespace

void AddLsCommand(CLI::App& app, CommandResult& result) {
  auto* cmd = app.add_subcommand(
      "ls", "List the models in a cache: size, files, last use, refs (like 'hf cache scan')");
  auto cache_dir = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto revisions = std::make_shared<bool>(false);
  auto files = std::make_shared<bool>(false);
  AddCacheDirOption(*cmd, *cache_dir);
  cmd->add_flag("--json", *as_json, "Print JSON (repos, revisions, sizes, warnings)");
  cmd->add_flag("-r,--revisions", *revisions, "One line per cached revision instead of per repo");
  cmd->add_flag("--files", *files, "With --json: list every file of every revision");
  cmd->callback([=, &result] { result.status = RunLs(*cache_dir, *as_json, *revisions, *files); });
}

void AddPathCommand(CLI::App& app, CommandResult& result) {
  auto* cmd = app.add_subcommand(
      "path",
      "Print where a cached model (or one of its files) is on disk, e.g. for MODEL_PATH.\n"
      "Example: modelcache path Qwen/Qwen3-0.6B@main config.json");
  auto cache_dir = std::make_shared<std::string>();
  auto ref = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  AddCacheDirOption(*cmd, *cache_dir);
  cmd->add_option("model", *ref, "Model: org/name[@revision] or a huggingface.co URL")->required();
  cmd->add_option("file", *file, "A file inside the model (prints its path instead of the dir)");
  cmd->callback([=, &result] { result.status = RunPath(*cache_dir, *ref, *file); });
}

void AddVerifyCommand(CLI::App& app, CommandResult& result) {
  auto* cmd = app.add_subcommand(
      "verify",
      "Re-hash cached files and compare with their names (sha256 or git sha1).\n"
      "Without a model, verifies the whole cache. Exit code 6 if anything does not match.");
  auto cache_dir = std::make_shared<std::string>();
  auto ref = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  AddCacheDirOption(*cmd, *cache_dir);
  cmd->add_option("model", *ref, "Only this model: org/name[@revision] or a huggingface.co URL");
  cmd->add_flag("--json", *as_json, "Print a JSON report");
  cmd->callback([=, &result] { result.status = RunVerify(*cache_dir, *ref, *as_json); });
}

void AddRmCommand(CLI::App& app, CommandResult& result) {
  auto* cmd =
      app.add_subcommand("rm",
                         "Remove a model, or one revision of it (org/name@rev), from a cache.\n"
                         "Files shared with another cached revision are kept.");
  auto cache_dir = std::make_shared<std::string>();
  auto ref = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  AddCacheDirOption(*cmd, *cache_dir);
  cmd->add_option("model", *ref, "org/name (whole repo) or org/name@revision")->required();
  cmd->add_flag("--json", *as_json, "Print what was removed as JSON");
  cmd->callback([=, &result] { result.status = RunRm(*cache_dir, *ref, *as_json); });
}

void AddLinkCommand(CLI::App& app, CommandResult& result) {
  auto* cmd = app.add_subcommand(
      "link",
      "Symlink a cached model's files into an application folder (ComfyUI style).\n"
      "Example: modelcache link org/sdxl@main ./ComfyUI/models/checkpoints --file "
      "sdxl.safetensors");
  auto cache_dir = std::make_shared<std::string>();
  auto ref = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  auto dest = std::make_shared<std::string>();
  AddCacheDirOption(*cmd, *cache_dir);
  cmd->add_option("model", *ref, "org/name[@revision] or a huggingface.co URL")->required();
  cmd->add_option("dest", *dest,
                  "Where to link: a directory (all files, or --file into it) or a link path")
      ->required();
  cmd->add_option("--file", *file, "Link only this file of the model");
  cmd->callback([=, &result] { result.status = RunLink(*cache_dir, *ref, *file, *dest); });
}

}  // namespace mc::cli
