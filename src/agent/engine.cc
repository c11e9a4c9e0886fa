#include "agent/engine.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace mc::agent {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool Contains(const std::string& text, std::initializer_list<const char*> needles) {
  return std::any_of(needles.begin(), needles.end(),
                     [&](const char* n) { return text.find(n) != std::string::npos; });
}

std::optional<LocalImage> ImageFromJson(const json& j) {
  if (!j.is_object()) return std::nullopt;
  LocalImage image;
  image.id = j.value("Id", j.value("ID", ""));
  if (image.id.starts_with("sha256:")) image.id = image.id.substr(7);
  if (image.id.empty()) return std::nullopt;
  if (j.contains("Size") && j["Size"].is_number()) image.size = j["Size"].get<uint64_t>();
  if (j.contains("Digest") && j["Digest"].is_string()) image.digest = j["Digest"].get<std::string>();
  if (image.digest.empty() && j.contains("RepoDigests") && j["RepoDigests"].is_array() &&
      !j["RepoDigests"].empty() && j["RepoDigests"][0].is_string()) {
    std::string rd = j["RepoDigests"][0].get<std::string>();
    if (size_t at = rd.find('@'); at != std::string::npos) image.digest = rd.substr(at + 1);
  }
  for (const char* key : {"Names", "RepoTags"}) {
    if (j.contains(key) && j[key].is_array()) {
      for (const auto& n : j[key]) {
        if (n.is_string()) image.names.push_back(n.get<std::string>());
      }
    }
  }
  return image;
}

}  // namespace

std::string Base64Encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    for (int s : {18, 12, 6}) out += kAlphabet[(v >> s) & 63];
    out += '=';
  }
  return out;
}

fs::path EngineRunRoot(const fs::path& root) {
  fs::path run = root / "run";
  if (run.string().size() <= 50) return run;
  uint64_t h = 1469598103934665603ull;  // FNV-1a: stable across builds
  for (unsigned char c : root.string()) h = (h ^ c) * 1099511628211ull;
  char name[32];
  std::snprintf(name, sizeof name, "mc-%012llx", static_cast<unsigned long long>(h & 0xffffffffffffull));
  return fs::path(::access("/run", W_OK) == 0 ? "/run" : "/tmp") / name;
}

Engine::Engine(EngineOptions options) : options_(std::move(options)) {
  if (options_.program.empty()) options_.program = std::string(name());
}

std::vector<std::string> Engine::Argv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{options_.program};
  if (options_.kind == EngineKind::kPodman) {
    if (!options_.root.empty()) {
      argv.insert(argv.end(), {"--root", (options_.root / "storage").string(), "--runroot",
                               EngineRunRoot(options_.root).string(), "--tmpdir",
                               (options_.root / "tmp").string()});
    }
    if (!options_.oci_runtime.empty()) {
      argv.push_back("--runtime");
      argv.push_back(options_.oci_runtime);
    }
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::vector<std::string> Engine::Env() const {
  std::vector<std::string> env;
  for (const char* name : {"PATH", "HOME", "USER", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME",
                           "XDG_DATA_HOME", "DOCKER_HOST", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE"}) {
    if (const char* v = std::getenv(name)) env.push_back(std::string(name) + "=" + v);
  }
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).starts_with("CONTAINERS_")) env.push_back(*e);
  }
  if (std::getenv("PATH") == nullptr) env.push_back("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
  return env;
}

StatusOr<CommandResult> Engine::Run(const std::vector<std::string>& args,
                                    std::chrono::milliseconds timeout) const {
  CommandOptions c;
  c.argv = Argv(args);
  c.env = Env();
  c.timeout = timeout;
  return RunCommand(c);
}

StatusOr<std::string> Engine::Probe() const {
  MC_ASSIGN_OR_RETURN(CommandResult version, Run({"version", "--format", "{{.Client.Version}}"}),
                      std::string(name()));
  if (!version.ok()) {
    return FailedPreconditionError(std::string(name()) + " version failed: " +
                                   TailForMessage(version.err));
  }
  std::string text = std::string(name()) + " " + TailForMessage(version.out, 64);
  if (options_.kind == EngineKind::kDocker) {
    MC_ASSIGN_OR_RETURN(CommandResult info, Run({"info", "--format", "{{.ServerVersion}}"}));
    if (!info.ok()) {
      return FailedPreconditionError("docker info failed: " + TailForMessage(info.err));
    }
    return text;
  }
  std::vector<std::string> args{"run", "--rm", "--network", "host", "--log-driver", "passthrough"};
  for (const std::string& f : UlimitFlags()) args.push_back(f);
  for (const char* a : {"--rootfs", "/:O", "/bin/true"}) args.push_back(a);
  MC_ASSIGN_OR_RETURN(CommandResult run, Run(args));
  if (!run.ok()) {
    return FailedPreconditionError("podman cannot run a container here: " +
                                   TailForMessage(run.err + run.out));
  }
  if (!options_.oci_runtime.empty()) text += " (--runtime " + options_.oci_runtime + ")";
  return text;
}

std::vector<std::string> Engine::UlimitFlags() {
  // An engine's container init runs under the engine's limits, where RLIMIT_NPROC was seen capped
  // at the kernel's pid_max: asking for more fails in setrlimit.
  uint64_t pid_max = 0;
  if (FILE* f = std::fopen("/proc/sys/kernel/pid_max", "r")) {
    unsigned long long v = 0;
    if (std::fscanf(f, "%llu", &v) == 1) pid_max = v;
    std::fclose(f);
  }
  std::vector<std::string> flags;
  for (auto [name, resource] : {std::pair{"nofile", RLIMIT_NOFILE}, std::pair{"nproc", RLIMIT_NPROC}}) {
    rlimit lim{};
    if (getrlimit(resource, &lim) != 0 || lim.rlim_max == RLIM_INFINITY) continue;
    uint64_t hard = lim.rlim_max;
    uint64_t soft = lim.rlim_cur == RLIM_INFINITY ? hard : lim.rlim_cur;
    if (resource == RLIMIT_NPROC && pid_max > 0) {
      hard = std::min(hard, pid_max);
      soft = std::min(soft, hard);
    }
    flags.push_back("--ulimit");
    flags.push_back(std::string(name) + "=" + std::to_string(soft) + ":" + std::to_string(hard));
  }
  return flags;
}

StatusOr<std::optional<LocalImage>> Engine::InspectImage(const std::string& reference) const {
  std::vector<std::string> args{"image", "inspect"};
  if (options_.kind == EngineKind::kPodman) {
    args.push_back("--format");
    args.push_back("json");
  }
  args.push_back(reference);
  MC_ASSIGN_OR_RETURN(CommandResult r, Run(args));
  if (!r.ok()) {
    const std::string err = Lower(r.err);
    if (Contains(err, {"image not known", "no such image", "failed to find image"})) {
      return std::optional<LocalImage>();
    }
    return UnavailableError("inspect image " + reference + ": " + TailForMessage(r.err));
  }
  json doc = json::parse(r.out, nullptr, false);
  if (!doc.is_array() || doc.empty()) return std::optional<LocalImage>();
  return ImageFromJson(doc[0]);
}

StatusOr<std::vector<LocalImage>> Engine::ListImages() const {
  const bool podman = options_.kind == EngineKind::kPodman;
  MC_ASSIGN_OR_RETURN(CommandResult r, Run(podman ? std::vector<std::string>{"images", "--format", "json"}
                                                  : std::vector<std::string>{"images", "--no-trunc", "--format", "{{json .}}"}));
  if (!r.ok()) return UnavailableError("list images: " + TailForMessage(r.err));
  std::vector<LocalImage> out;
  auto add = [&](const json& j) {
    if (auto image = ImageFromJson(j)) out.push_back(std::move(*image));
  };
  if (podman) {
    json doc = json::parse(r.out, nullptr, false);
    if (doc.is_array()) {
      for (const auto& j : doc) add(j);
    }
    return out;
  }
  size_t start = 0;
  while (start < r.out.size()) {
    size_t nl = r.out.find('\n', start);
    if (nl == std::string::npos) nl = r.out.size();
    add(json::parse(r.out.substr(start, nl - start), nullptr, false));
    start = nl + 1;
  }
  return out;
}

Status Engine::RemoveImage(const std::string& id) const {
  MC_ASSIGN_OR_RETURN(CommandResult r, Run({"rmi", id}));
  if (r.ok()) return Status::Ok();
  const std::string err = Lower(r.err);
  if (Contains(err, {"image not known", "no such image"})) return NotFoundError("image " + id + " is gone");
  return FailedPreconditionError("remove image " + id + ": " + TailForMessage(r.err));
}

bool Engine::IsInsecure(const ImageRef& ref) const {
  const auto& list = options_.insecure_registries;
  return std::find(list.begin(), list.end(), ref.domain()) != list.end();
}

std::string Engine::AuthFile(const ImageRef& ref, const RegistryAuth& auth) {
  const std::string token = Base64Encode(auth.username + ":" + std::string(auth.password.Reveal()));
  json auths = json::object();
  auths[ref.domain()] = json{{"auth", token}};
  if (ref.domain() == "docker.io") auths["https://index.docker.io/v1/"] = json{{"auth", token}};
  return json{{"auths", auths}}.dump();
}

StatusOr<std::vector<ContainerInfo>> Engine::ListContainers(const std::string& label) const {
  const bool podman = options_.kind == EngineKind::kPodman;
  std::vector<std::string> args{"ps", "-a", "--filter", "label=" + label, "--format",
                                podman ? "json" : "{{json .}}"};
  MC_ASSIGN_OR_RETURN(CommandResult r, Run(args));
  if (!r.ok()) return UnavailableError("list containers: " + TailForMessage(r.err));
  std::vector<ContainerInfo> out;
  auto add = [&](const json& j) {
    if (!j.is_object()) return;
    ContainerInfo c;
    if (j.contains("Names") && j["Names"].is_array() && !j["Names"].empty()) {
      c.name = j["Names"][0].get<std::string>();
    } else if (j.contains("Names") && j["Names"].is_string()) {
      c.name = j["Names"].get<std::string>();
    }
    c.running = Lower(j.value("State", "")) == "running";
    std::map<std::string, std::string> labels;
    if (j.contains("Labels") && j["Labels"].is_object()) {
      for (const auto& [k, v] : j["Labels"].items()) {
        if (v.is_string()) labels[k] = v.get<std::string>();
      }
    } else if (j.contains("Labels") && j["Labels"].is_string()) {  // docker: "k=v,k=v"
      std::string text = j["Labels"].get<std::string>();
      size_t s = 0;
      while (s < text.size()) {
        size_t comma = text.find(',', s);
        if (comma == std::string::npos) comma = text.size();
        std::string kv = text.substr(s, comma - s);
        if (size_t eq = kv.find('='); eq != std::string::npos) labels[kv.substr(0, eq)] = kv.substr(eq + 1);
        s = comma + 1;
      }
    }
    c.worker = labels["modelcache.worker"];
    c.instance = labels["modelcache.agent"];
    if (!c.name.empty()) out.push_back(std::move(c));
  };
  if (podman) {
    json doc = json::parse(r.out, nullptr, false);
    if (doc.is_array()) {
      for (const auto& j : doc) add(j);
    }
  } else {
    size_t s = 0;
    while (s < r.out.size()) {
      size_t nl = r.out.find('\n', s);
      if (nl == std::string::npos) nl = r.out.size();
      add(json::parse(r.out.substr(s, nl - s), nullptr, false));
      s = nl + 1;
    }
  }
  return out;
}

// Whether `text` holds the HTTP status `code` as a number of its own: not part of a longer
// number or of an address and port ("127.0.0.1:40181" holds no 401).
static bool HasStatusCode(const std::string& text, const std::string& code) {
  for (size_t at = text.find(code); at != std::string::npos; at = text.find(code, at + 1)) {
    const char before = at == 0 ? ' ' : text[at - 1];
    const size_t end = at + code.size();
    const char after = end >= text.size() ? ' ' : text[end];
    const auto part_of_number = [](char c) {
      return std::isdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
    };
    if (!part_of_number(before) && !part_of_number(after)) return true;
  }
  return false;
}

Status ClassifyPullError(const ImageRef& ref, const std::string& output) {
  const std::string tail = TailForMessage(output, 400);
  const std::string text = Lower(output);
  if (Contains(text, {"unauthorized", "authentication required", "denied",
                      "incorrect username or password", "invalid username/password"}) ||
      HasStatusCode(text, "401") || HasStatusCode(text, "403")) {
    return PermissionDeniedError("the registry " + ref.domain() + " refused access to image " +
                                 ref.str() +
                                 ": give the endpoint a registryAuth (user and password or token) "
                                 "that it accepts (" + tail + ")");
  }
  if (Contains(text, {"manifest unknown", "name unknown", "not found", "no such image",
                      "does not exist"}) ||
      HasStatusCode(text, "404")) {
    return NotFoundError("image " + ref.str() + " was not found in its registry: check the name "
                         "and tag (" + tail + ")");
  }
  return UnavailableError("pull " + ref.str() + ": " + tail);
}

}  // namespace mc::agent
