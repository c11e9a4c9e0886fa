// Engine::InspectRemote and Engine::Pull: an image pull with progress.
//
// The engine's CLI prints no byte counts when its output is not a terminal, so progress is
// measured: podman (containers/image) writes each layer blob to a temp file under $TMPDIR while it
// downloads, so the pull gets a TMPDIR of its own and the sum of those files' sizes is the bytes
// received; a layer is done when a temp file reaches one of the manifest's layer sizes. Docker
// pulls in its daemon: its "<id>: Pull complete" lines give the layers. The manifest (sizes and
// layer count, for the totals) is read with skopeo when it is installed.
#include <sys/utsname.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/engine.h"

namespace mc::agent {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string GoArch() {
  utsname u{};
  uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  return m;
}

StatusOr<json> RawManifest(const Engine& engine, const std::string& source,
                           const ImageRef& ref, const RegistryAuth* auth,
                           const std::atomic<bool>* cancel) {
  CommandOptions c;
  c.argv = {engine.options().skopeo, "inspect", "--raw"};
  if (engine.IsInsecure(ref)) c.argv.push_back("--tls-verify=false");
  if (auth != nullptr) {
    c.argv.push_back("--authfile");
    c.argv.push_back("/dev/stdin");
    c.stdin_data = Engine::AuthFile(ref, *auth);
  }
  c.argv.push_back("docker://" + source);
  c.env = engine.Env();
  c.timeout = std::chrono::seconds(60);
  c.cancel = cancel;
  MC_ASSIGN_OR_RETURN(CommandResult r, RunCommand(c));
  if (!r.ok()) return ClassifyPullError(ref, r.err);
  json doc = json::parse(r.out, nullptr, false);
  if (!doc.is_object()) return UnavailableError("the manifest of " + ref.str() + " is not JSON");
  return doc;
}

// Bytes and layers of a temp dir that a podman pull fills: each file's largest size, and the
// layers whose size a file has reached.
struct TempDirProgress {
  std::map<std::string, uint64_t> sizes;
  std::set<std::string> done_files;

  void Measure(const fs::path& dir, const RemoteImage* plan, std::multiset<uint64_t>& left,
               PullProgress& p) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code sec;
      if (!it->is_regular_file(sec)) continue;
      const uint64_t size = it->file_size(sec);
      if (sec) continue;
      const std::string key = it->path().string();
      sizes[key] = std::max(sizes[key], size);
      auto match = left.find(size);
      if (plan != nullptr && match != left.end() && done_files.insert(key).second) {
        left.erase(match);
        ++p.layers_done;
      }
    }
    uint64_t total = 0;
    for (const auto& [path, size] : sizes) total += size;
    p.bytes_done = std::max(p.bytes_done, total);
    if (p.bytes_total) p.bytes_done = std::min(p.bytes_done, *p.bytes_total);
  }
};

}  // namespace

StatusOr<RemoteImage> Engine::InspectRemote(const ImageRef& ref, const RegistryAuth* auth,
                                            const std::atomic<bool>* cancel) const {
  if (options_.skopeo.empty()) return UnimplementedError("no skopeo configured");
  MC_ASSIGN_OR_RETURN(json doc, RawManifest(*this, ref.str(), ref, auth, cancel));
  if (doc.contains("manifests") && doc["manifests"].is_array()) {  // an index: pick our platform
    std::string digest;
    for (const auto& m : doc["manifests"]) {
      if (!m.is_object() || !m.contains("platform") || !m["platform"].is_object()) continue;
      const auto& p = m["platform"];
      if (p.value("os", "") == "linux" && p.value("architecture", "") == GoArch()) {
        digest = m.value("digest", "");
        break;
      }
    }
    if (digest.empty()) {
      return NotFoundError("image " + ref.str() + " has no linux/" + GoArch() + " variant");
    }
    MC_ASSIGN_OR_RETURN(doc, RawManifest(*this, ref.name() + "@" + digest, ref, auth, cancel));
  }
  if (!doc.contains("layers") || !doc["layers"].is_array()) {
    return UnimplementedError("the manifest of " + ref.str() + " lists no layer sizes");
  }
  RemoteImage image;
  for (const auto& layer : doc["layers"]) {
    if (!layer.is_object() || !layer.contains("size") || !layer["size"].is_number_unsigned()) {
      continue;
    }
    const uint64_t size = layer["size"].get<uint64_t>();
    image.layers.emplace_back(layer.value("digest", ""), size);
    image.bytes += size;
  }
  return image;
}

// Long: one engine pull from its temp dir to its digest: the child's environment, the progress
// poller over the temp dir and the outcome read from the child's output share the pull's local
// state, and they read best in the order they happen.
StatusOr<std::string> Engine::Pull(const ImageRef& ref, const RegistryAuth* auth,
                                   const PlanSource& plan_source,
                                   const std::function<void(const PullProgress&)>& progress,
                                   const std::atomic<bool>* cancel) const {
  const bool podman = options_.kind == EngineKind::kPodman;
  std::error_code ec;
  fs::create_directories(options_.work_dir, ec);
  static std::atomic<uint64_t> pulls{0};
  const fs::path tmp =
      options_.work_dir / ("pull-" + std::to_string(::getpid()) + "-" + std::to_string(++pulls));
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  fs::permissions(tmp, fs::perms::owner_all, ec);
  std::string docker_config;  // docker reads credentials from a config dir, not stdin
  CommandOptions c;
  std::vector<std::string> args{"pull"};
  if (podman && IsInsecure(ref)) args.push_back("--tls-verify=false");
  if (auth != nullptr && podman) {
    args.push_back("--authfile");
    args.push_back("/dev/stdin");
    c.stdin_data = AuthFile(ref, *auth);
  }
  args.push_back(ref.str());
  c.argv = Argv(args);
  if (auth != nullptr && !podman) {
    const fs::path config = tmp / "docker-config";
    fs::create_directories(config, ec);
    fs::permissions(config, fs::perms::owner_all, ec);
    FILE* f = std::fopen((config / "config.json").c_str(), "w");
    if (f == nullptr) return ErrnoError(errno, "write the registry auth for docker");
    const std::string text = AuthFile(ref, *auth);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    c.argv.insert(c.argv.begin() + 1, {"--config", config.string()});
  }
  c.env = Env();
  c.env.push_back("TMPDIR=" + tmp.string());
  c.timeout = std::chrono::hours(24);  // a pull is cancelled, not timed out
  c.cancel = cancel;

  PullProgress p;
  std::optional<RemoteImage> plan;
  std::multiset<uint64_t> left;
  std::map<std::string, uint64_t> short_ids;  // docker prints the first 12 hex of a layer digest
  auto take_plan = [&] {
    if (plan || !plan_source) return;
    plan = plan_source();
    if (!plan) return;
    p.bytes_total = plan->bytes;
    p.layers_total = static_cast<int>(plan->layers.size());
    for (const auto& [digest, size] : plan->layers) {
      left.insert(size);
      if (digest.size() >= 19) short_ids[digest.substr(7, 12)] = size;
    }
  };
  TempDirProgress dir;
  c.on_tick = [&] {
    take_plan();
    if (podman) dir.Measure(tmp, plan ? &*plan : nullptr, left, p);
    if (progress) progress(p);
  };
  c.on_stderr_line = [&](std::string_view line) {
    if (podman) return;
    if (line.find("Pull complete") != line.npos || line.find("Already exists") != line.npos) {
      ++p.layers_done;
      auto it = short_ids.find(std::string(line.substr(0, line.find(':'))));
      if (it != short_ids.end()) p.bytes_done += it->second;
    }
  };
  auto result = RunCommand(c);
  fs::remove_all(tmp, ec);
  if (!result.ok()) return result.status().WithContext("pull " + ref.str());
  if (result->cancelled) return CancelledError("pull of " + ref.str() + " cancelled");
  if (!result->ok()) return ClassifyPullError(ref, result->err + "\n" + result->out);
  take_plan();
  if (p.bytes_total) p.bytes_done = *p.bytes_total;
  if (p.layers_total) p.layers_done = *p.layers_total;
  if (progress) progress(p);
  // podman prints the image id last.
  std::string id = TailForMessage(result->out, 80);
  if (size_t space = id.rfind(' '); space != std::string::npos) id = id.substr(space + 1);
  const bool hex = id.size() == 64 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
  return podman && hex ? id : std::string();
}

}  // namespace mc::agent
