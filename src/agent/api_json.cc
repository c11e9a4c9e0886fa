#include "agent/api_json.h"

#include <cmath>
#include <ctime>

#include "mc/common/byte_count.h"
#include "mc/hub/model_ref.h"

namespace mc::agent {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxModels = 16;

Status CheckKeys(const json& object, std::initializer_list<const char*> allowed,
                 const std::string& what) {
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (const char* a : allowed) known = known || key == a;
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return InvalidArgumentError("unknown field \"" + key.substr(0, 64) + "\" in " + what +
                                  " (known: " + list + ")");
    }
  }
  return Status::Ok();
}

bool Has(const json& b, const char* name) { return b.contains(name) && !b[name].is_null(); }

StatusOr<std::vector<EnsureRequest>> ParseModels(const json& b) {
  std::vector<EnsureRequest> models;
  MC_ASSIGN_OR_RETURN(std::vector<std::string> peers, StringList(b, "peers"));
  MC_ASSIGN_OR_RETURN(std::vector<std::string> swarm, StringList(b, "swarm"));
  MC_ASSIGN_OR_RETURN(std::optional<std::string> token, OptString(b, "token"));
  if (!Has(b, "models")) {
    MC_ASSIGN_OR_RETURN(EnsureRequest m, ParseEnsure(b));
    models.push_back(std::move(m));
    return models;
  }
  for (const char* single : {"model", "revision", "include", "exclude"}) {
    if (Has(b, single)) {
      return InvalidArgumentError(std::string("give either \"models\" or \"") + single +
                                  "\", not both");
    }
  }
  const json& list = b["models"];
  if (!list.is_array() || list.empty() || list.size() > kMaxModels) {
    return InvalidArgumentError("\"models\" must be a list of 1 to 16 models");
  }
  for (const json& entry : list) {
    if (!entry.is_object()) return InvalidArgumentError("each of \"models\" must be an object");
    MC_RETURN_IF_ERROR(CheckKeys(entry, {"model", "revision", "include", "exclude", "token"},
                                 "a model"));
    MC_ASSIGN_OR_RETURN(EnsureRequest m, ParseEnsure(entry));
    m.peers = peers;
    m.swarm = swarm;
    if (!m.token && token && !token->empty()) m.token = hub::Secret(*token);
    models.push_back(std::move(m));
  }
  return models;
}

StatusOr<std::optional<RegistryAuth>> ParseRegistryAuth(const json& b) {
  if (!Has(b, "registryAuth")) return std::optional<RegistryAuth>();
  const json& a = b["registryAuth"];
  if (!a.is_object()) {
    return InvalidArgumentError("registryAuth must be {\"username\": ..., \"password\": ...}");
  }
  MC_RETURN_IF_ERROR(CheckKeys(a, {"username", "password"}, "registryAuth"));
  if (!a.contains("username") || !a["username"].is_string() || a["username"].empty() ||
      !a.contains("password") || !a["password"].is_string()) {
    return InvalidArgumentError("registryAuth needs a non-empty \"username\" and a \"password\"");
  }
  std::string user = a["username"].get<std::string>();
  if (user.size() > 256 || user.find_first_of(":\n\r") != std::string::npos) {
    return InvalidArgumentError("registryAuth username must be at most 256 characters without "
                                "':' or line breaks");
  }
  return std::optional<RegistryAuth>(RegistryAuth{user, hub::Secret(a["password"].get<std::string>())});
}

StatusOr<WorkerLimits> ParseLimits(const json& b) {
  WorkerLimits limits;
  if (!Has(b, "limits")) return limits;
  const json& l = b["limits"];
  if (!l.is_object()) return InvalidArgumentError("limits must be an object");
  MC_RETURN_IF_ERROR(CheckKeys(l, {"memory", "cpus", "pids"}, "limits"));
  if (Has(l, "memory")) {
    if (l["memory"].is_number_unsigned()) {
      limits.memory_bytes = l["memory"].get<uint64_t>();
    } else if (l["memory"].is_string()) {
      MC_ASSIGN_OR_RETURN(ByteCount bytes, ByteCount::Parse(l["memory"].get<std::string>()),
                          "limits.memory");
      limits.memory_bytes = bytes.bytes();
    } else {
      return InvalidArgumentError("limits.memory must be bytes or a size such as \"8GiB\"");
    }
    if (*limits.memory_bytes < (6u << 20)) {
      return InvalidArgumentError("limits.memory must be at least 6MiB");
    }
  }
  if (Has(l, "cpus")) {
    if (!l["cpus"].is_number() || !(l["cpus"].get<double>() > 0) || l["cpus"].get<double>() > 1024) {
      return InvalidArgumentError("limits.cpus must be a number above 0 (at most 1024)");
    }
    limits.cpus = l["cpus"].get<double>();
  }
  if (Has(l, "pids")) {
    if (!l["pids"].is_number_integer() || l["pids"].get<int64_t>() < 1) {
      return InvalidArgumentError("limits.pids must be an integer of at least 1");
    }
    limits.pids = l["pids"].get<int64_t>();
  }
  return limits;
}

StatusOr<std::vector<AppLinkRequest>> ParseLinks(const json& b) {
  std::vector<AppLinkRequest> links;
  if (!Has(b, "links")) return links;
  if (!b["links"].is_array()) return InvalidArgumentError("links must be a list");
  for (const json& l : b["links"]) {
    if (!l.is_object() || !l.contains("dest") || !l["dest"].is_string()) {
      return InvalidArgumentError("each link needs a \"dest\" path");
    }
    MC_RETURN_IF_ERROR(CheckKeys(l, {"dest", "file", "model"}, "a link"));
    AppLinkRequest link{.model = std::nullopt, .file = std::nullopt,
                        .dest = l["dest"].get<std::string>()};
    if (Has(l, "file")) {
      if (!l["file"].is_string()) return InvalidArgumentError("link file must be a string");
      MC_ASSIGN_OR_RETURN(link.file, RepoFilePath::Parse(l["file"].get<std::string>()));
    }
    if (Has(l, "model")) {
      if (!l["model"].is_string()) return InvalidArgumentError("link model must be a string");
      MC_ASSIGN_OR_RETURN(hub::ModelRef ref, hub::ParseModelRef(l["model"].get<std::string>()));
      link.model = ref.repo;
    }
    links.push_back(std::move(link));
  }
  return links;
}

json OptTime(const std::optional<TimePoint>& t) { return t ? json(IsoTime(*t)) : json(nullptr); }

const char* ImagePhase(ImageState::Phase p) {
  switch (p) {
    case ImageState::Phase::kReady: return "ready";
    case ImageState::Phase::kPulling: return "pulling";
    case ImageState::Phase::kFailed: return "failed";
  }
  return "failed";
}

json ImageStateJson(const ImageState& s) {
  json j{{"reference", s.reference},
         {"digest", s.digest.empty() ? json(nullptr) : json(s.digest)},
         {"state", ImagePhase(s.phase)}};
  if (s.phase != ImageState::Phase::kPulling) j["hit"] = s.hit;
  if (s.phase == ImageState::Phase::kReady && s.size > 0) j["size_bytes"] = s.size;
  const bool measured = s.progress.bytes_total || s.progress.bytes_done > 0;
  if (s.phase == ImageState::Phase::kPulling || (!s.hit && measured)) {
    const PullProgress& p = s.progress;
    j["progress"] = json{{"bytes_done", p.bytes_done},
                         {"bytes_total", p.bytes_total ? json(*p.bytes_total) : json(nullptr)},
                         {"layers_done", p.layers_done},
                         {"layers_total", p.layers_total ? json(*p.layers_total) : json(nullptr)},
                         {"started_at", IsoTime(s.started)}};
  }
  if (s.phase == ImageState::Phase::kFailed && !s.error.ok()) {
    j["error"] = s.error.message();
    j["code"] = std::string(StatusCodeName(s.error.code()));
  }
  return j;
}

json ModelViewJson(const WorkerModelView& m) {
  json j{{"model", ModelName(m.repo)},
         {"revision", m.revision},
         {"commit", m.commit.empty() ? json(nullptr) : json(m.commit)},
         {"state", m.state},
         {"path", m.path.empty() ? json(nullptr) : json(m.path)}};
  if (m.hit) j["hit"] = *m.hit;
  if (m.download) j["progress"] = ProgressJson(*m.download);
  return j;
}

}  // namespace

std::string IsoTime(TimePoint t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03lldZ", buf, static_cast<long long>(ms.count() % 1000));
  return out;
}

std::string ModelName(const RepoId& repo) { return std::string(repo.UrlPrefix()) + repo.id(); }

StatusOr<std::optional<std::string>> OptString(const json& body, const char* name) {
  if (!body.contains(name) || body[name].is_null()) return std::optional<std::string>();
  if (!body[name].is_string()) return InvalidArgumentError(std::string(name) + " must be a string");
  return std::optional<std::string>(body[name].get<std::string>());
}

StatusOr<std::vector<std::string>> StringList(const json& body, const char* name) {
  std::vector<std::string> out;
  if (!body.contains(name) || body[name].is_null()) return out;
  if (!body[name].is_array()) return InvalidArgumentError(std::string(name) + " must be a list");
  for (const json& v : body[name]) {
    if (!v.is_string()) return InvalidArgumentError(std::string(name) + " must hold strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

StatusOr<std::pair<RepoId, Revision>> ParseModel(const json& body) {
  MC_ASSIGN_OR_RETURN(std::optional<std::string> model, OptString(body, "model"));
  if (!model) return InvalidArgumentError("\"model\" is required (org/name or a Hub URL)");
  MC_ASSIGN_OR_RETURN(hub::ModelRef ref, hub::ParseModelRef(*model));
  if (ref.file) {
    return InvalidArgumentError("\"model\" names a file; give the repo (use include to select "
                                "files)");
  }
  MC_ASSIGN_OR_RETURN(std::optional<std::string> revision, OptString(body, "revision"));
  if (revision) {
    MC_ASSIGN_OR_RETURN(Revision rev, Revision::Parse(*revision));
    if (ref.revision && ref.revision->str() != rev.str()) {
      return InvalidArgumentError("the model's revision and \"revision\" differ");
    }
    ref.revision = rev;
  }
  return std::pair<RepoId, Revision>(ref.repo, ref.revision.value_or(Revision::Parse("main").value()));
}

StatusOr<EnsureRequest> ParseEnsure(const json& body) {
  EnsureRequest r;
  MC_ASSIGN_OR_RETURN(auto model, ParseModel(body));
  r.repo = model.first;
  r.revision = model.second;
  MC_ASSIGN_OR_RETURN(r.patterns.include, StringList(body, "include"));
  MC_ASSIGN_OR_RETURN(r.patterns.exclude, StringList(body, "exclude"));
  MC_ASSIGN_OR_RETURN(r.peers, StringList(body, "peers"));
  for (const std::string& peer : r.peers) {
    auto endpoint = hub::Endpoint::Parse(peer);
    if (!endpoint.ok()) return InvalidArgumentError("peer: " + endpoint.status().message());
  }
  MC_ASSIGN_OR_RETURN(r.swarm, StringList(body, "swarm"));
  for (const std::string& member : r.swarm) {
    auto endpoint = hub::Endpoint::Parse(member);
    if (!endpoint.ok()) return InvalidArgumentError("swarm: " + endpoint.status().message());
  }
  MC_ASSIGN_OR_RETURN(std::optional<std::string> token, OptString(body, "token"));
  if (token && !token->empty()) r.token = hub::Secret(std::move(*token));
  return r;
}

const std::vector<const char*>& WorkerFields() {
  static const std::vector<const char*> fields{
      "id",    "endpoint", "model",   "revision", "include", "exclude", "peers",
      "swarm", "token", "models",   "image",   "registryAuth", "command", "args", "env",
      "gpus",  "limits",   "links",   "cwd"};
  return fields;
}

StatusOr<WorkerRequest> ParseWorkerRequest(const json& b) {
  WorkerRequest w;
  MC_ASSIGN_OR_RETURN(w.models, ParseModels(b));
  MC_ASSIGN_OR_RETURN(std::optional<std::string> id, OptString(b, "id"));
  w.id = id.value_or("");
  MC_ASSIGN_OR_RETURN(std::optional<std::string> endpoint, OptString(b, "endpoint"));
  w.endpoint = endpoint.value_or("");
  MC_ASSIGN_OR_RETURN(std::optional<std::string> image, OptString(b, "image"));
  if (image) {
    MC_ASSIGN_OR_RETURN(w.image, ImageRef::Parse(*image));
  }
  MC_ASSIGN_OR_RETURN(w.registry_auth, ParseRegistryAuth(b));
  if (w.registry_auth && !w.image) {
    return InvalidArgumentError("registryAuth is for pulling an \"image\"; there is none");
  }
  MC_ASSIGN_OR_RETURN(w.command, StringList(b, "command"));
  MC_ASSIGN_OR_RETURN(w.args, StringList(b, "args"));
  if (Has(b, "env")) {
    if (!b["env"].is_object()) return InvalidArgumentError("env must be an object");
    for (const auto& [k, v] : b["env"].items()) {
      if (!v.is_string()) return InvalidArgumentError("env values must be strings");
      w.env.emplace_back(k, v.get<std::string>());
    }
  }
  if (Has(b, "gpus")) {
    if (!b["gpus"].is_number_integer()) return InvalidArgumentError("gpus must be an integer");
    w.gpus = b["gpus"].get<int>();
  }
  MC_ASSIGN_OR_RETURN(w.limits, ParseLimits(b));
  MC_ASSIGN_OR_RETURN(w.links, ParseLinks(b));
  MC_ASSIGN_OR_RETURN(std::optional<std::string> cwd, OptString(b, "cwd"));
  if (cwd) w.cwd = *cwd;
  return w;
}

json ProgressJson(const EnsureState& s) {
  return json{{"bytes_done", s.bytes_done},
              {"bytes_total", s.bytes_total},
              {"files_done", s.files_done},
              {"files_total", s.files_total},
              {"bytes_per_second", std::llround(s.rate)},
              {"eta_seconds", s.eta_seconds ? json(*s.eta_seconds) : json(nullptr)},
              {"started_at", IsoTime(s.started)}};
}

json WorkerJson(const WorkerView& view) {
  const WorkerRow& w = view.row;
  auto repo = RepoId::FromFolderName(w.repo);
  json models = json::array();
  for (const WorkerModelView& m : view.models) models.push_back(ModelViewJson(m));
  auto ms = [](const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); };
  std::optional<int64_t> initializing;
  if (w.started) {
    initializing =
        std::chrono::duration_cast<std::chrono::milliseconds>(*w.started - w.created).count();
  }
  return json{{"id", w.id},
              {"endpoint", w.endpoint.empty() ? json(nullptr) : json(w.endpoint)},
              {"runtime", w.runtime},
              {"container", w.container.empty() ? json(nullptr) : json(w.container)},
              {"model", repo.ok() ? ModelName(*repo) : w.repo},
              {"commit", w.commit.empty() ? json(nullptr) : json(w.commit)},
              {"models", models},
              {"image", view.image ? ImageStateJson(*view.image) : json(nullptr)},
              {"cold_start",
               {{"image_ms", ms(w.image_ms)},
                {"download_ms", ms(w.download_ms)},
                {"initializing_ms", ms(initializing)}}},
              {"gpus", ParseGpus(w.gpus)},
              {"state", w.state},
              {"pid", w.pid > 0 ? json(w.pid) : json(nullptr)},
              {"exit_code", w.exit_code ? json(*w.exit_code) : json(nullptr)},
              {"signal", w.signal ? json(*w.signal) : json(nullptr)},
              {"message", w.message},
              {"created_at", IsoTime(w.created)},
              {"started_at", OptTime(w.started)},
              {"ended_at", OptTime(w.ended)},
              {"logs", {{"stdout", w.stdout_path}, {"stderr", w.stderr_path}}},
              {"log_tail", view.log_tail.empty() ? json(nullptr) : json(view.log_tail)}};
}

json ImagesJson(const Images& images) {
  json items = json::array();
  uint64_t used = 0;
  for (const ImageView& i : images.List()) {
    used += i.size;
    items.push_back(json{{"reference", i.reference},
                         {"image_id", i.image_id},
                         {"digest", i.digest.empty() ? json(nullptr) : json(i.digest)},
                         {"size_bytes", i.size},
                         {"pulled", i.pulled},
                         {"in_use", i.in_use},
                         {"last_use", IsoTime(i.last_use)}});
  }
  json pulls = json::array();
  for (const ImageState& s : images.Active()) pulls.push_back(ImageStateJson(s));
  return json{{"capacity_bytes", images.capacity() > 0 ? json(images.capacity()) : json(nullptr)},
              {"used_bytes", used},
              {"items", items},
              {"pulls", pulls}};
}

}  // namespace mc::agent
