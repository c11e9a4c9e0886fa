#include "agent/agent_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "agent/api_json.h"
#include "mc/hub/model_ref.h"

namespace mc::agent {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::chrono::milliseconds kMaxWait{300'000};

void SendJson(net::HttpResponse& res, int code, const json& body) {
  res.SetText(code, body.dump(), "application/json");
}

void SendError(net::HttpResponse& res, const Status& status) {
  SendJson(res, ToHttpStatus(status),
           json{{"error", status.message()}, {"code", std::string(StatusCodeName(status.code()))}});
}

// ---- request parsing: every field checked, unknown fields refused ----

StatusOr<json> ParseBody(const net::HttpRequest& req, const std::vector<const char*>& allowed) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) return InvalidArgumentError("the request body is not valid JSON");
  if (!body.is_object()) return InvalidArgumentError("the request body must be a JSON object");
  for (const auto& [key, value] : body.items()) {
    if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }) ==
        allowed.end()) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return InvalidArgumentError("unknown field \"" + key.substr(0, 64) + "\" (known: " + list +
                                  ")");
    }
  }
  return body;
}

StatusOr<std::chrono::milliseconds> WaitParam(const net::HttpRequest& req, const char* name) {
  auto text = req.QueryParam(name);
  if (!text || text->empty()) return std::chrono::milliseconds(0);
  char* end = nullptr;
  const double seconds = std::strtod(text->c_str(), &end);
  if (end != text->c_str() + text->size() || !std::isfinite(seconds) || seconds < 0) {
    return InvalidArgumentError(std::string(name) + " must be a number of seconds");
  }
  // Capped before the conversion: a huge number must not overflow the integer.
  const double capped = std::min(seconds, static_cast<double>(kMaxWait.count()) / 1000.0);
  return std::chrono::milliseconds(static_cast<int64_t>(capped * 1000));
}

// ---- JSON views ----

const char* PhaseName(EnsureState::Phase p) {
  switch (p) {
    case EnsureState::Phase::kReady: return "ready";
    case EnsureState::Phase::kDownloading: return "downloading";
    case EnsureState::Phase::kFailed: return "failed";
  }
  return "failed";
}

json EnsureJson(const EnsureState& s) {
  json j{{"state", PhaseName(s.phase)},
         {"model", ModelName(s.repo)},
         {"revision", s.revision},
         {"commit", s.commit.empty() ? json(nullptr) : json(s.commit)}};
  if (s.phase == EnsureState::Phase::kReady) {
    j["snapshot_path"] = s.snapshot_dir.string();
    j["hit"] = s.hit;
  }
  if (s.phase != EnsureState::Phase::kReady || !s.hit) {
    j["progress"] = json{{"bytes_done", s.bytes_done},
                         {"bytes_total", s.bytes_total},
                         {"files_done", s.files_done},
                         {"files_total", s.files_total},
                         {"bytes_per_second", std::llround(s.rate)},
                         {"eta_seconds", s.eta_seconds ? json(*s.eta_seconds) : json(nullptr)},
                         {"started_at", IsoTime(s.started)}};
  }
  if (!s.bytes_by_source.empty()) j["bytes_by_source"] = s.bytes_by_source;
  if (s.phase == EnsureState::Phase::kFailed) {
    j["error"] = s.error.message();
    j["code"] = std::string(StatusCodeName(s.error.code()));
  }
  return j;
}


// The commit a pin or evict body names: a sha, or a ref the cache has.
StatusOr<std::pair<RepoId, CommitSha>> LocalCommit(const json& body,
                                                   const cache::CacheStore& store) {
  MC_ASSIGN_OR_RETURN(auto model, ParseModel(body));
  auto commit = store.ResolveRevision(model.first, model.second);
  if (!commit.ok() && commit.status().code() != StatusCode::kNotFound) return commit.status();
  if (!commit.ok()) {
    if (CommitSha::IsValid(model.second.str())) {
      return std::pair<RepoId, CommitSha>(model.first, CommitSha::Parse(model.second.str()).value());
    }
    return NotFoundError(model.first.id() + "@" + model.second.str() +
                         " is not in this cache; name a commit, or ensure it first");
  }
  return std::pair<RepoId, CommitSha>(model.first, *commit);
}

}  // namespace

std::string AgentApi::HostDocument() const {
  const BudgetView b = p_.inventory.Budget();
  json snapshots = json::array();
  for (const SnapshotView& s : p_.inventory.Snapshots()) {
    snapshots.push_back(json{{"model", ModelName(s.repo)},
                             {"repo_folder", s.repo.FolderName()},
                             {"commit", s.commit},
                             {"refs", s.refs},
                             {"size_bytes", s.size},
                             {"files", s.files},
                             {"complete", s.complete},
                             {"selections", s.completions},
                             {"pins", s.pins},
                             {"last_use", IsoTime(s.last_use)}});
  }
  json downloads = json::array();
  for (const EnsureState& d : p_.downloads.Active()) downloads.push_back(EnsureJson(d));
  json workers = json::array();
  for (const WorkerView& w : p_.workers.Views()) workers.push_back(WorkerJson(w));
  std::string url;
  {
    std::lock_guard<std::mutex> lock(mu_);
    url = public_url_;
  }
  const uint64_t usage = b.used + b.reserved;
  return json{{"host_id", p_.options.host_id},
              {"url", url},
              {"gpu_type", p_.options.gpu_type},
              {"gpus", {{"total", p_.workers.gpu_count()}, {"free", p_.workers.FreeGpus()}}},
              {"disk",
               {{"capacity_bytes", b.capacity},
                {"used_bytes", b.used},
                {"partial_bytes", b.partial},
                {"reserved_bytes", b.reserved},
                {"free_bytes", usage >= b.capacity ? 0 : b.capacity - usage},
                {"high_watermark", b.high_watermark},
                {"low_watermark", b.low_watermark}}},
              {"snapshots", snapshots},
              {"downloads", downloads},
              {"runtime",
               {{"kind", p_.workers.runtime().name()},
                {"containers", p_.workers.runtime().runs_containers()},
                {"limits", p_.workers.runtime().enforces_limits()}}},
              {"images", p_.images ? ImagesJson(*p_.images) : json(nullptr)},
              {"workers", workers}}
      .dump();
}

void AgentApi::Handle(const net::HttpRequest& req, net::HttpResponse& res) {
  const std::string& path = req.raw_path;
  const bool api = path.starts_with("/v1/") || path == "/v1";
  if (api && p_.options.api_key) {
    std::string given = req.headers.Get("Authorization").value_or("");
    if (given.starts_with("Bearer ")) given = given.substr(7);
    if (!p_.options.api_key->Matches(given)) {
      SendError(res, UnauthenticatedError("missing or wrong API key (Authorization: Bearer ...)"));
      return;
    }
  }
  if (api || path == "/health" || path == "/metrics") {
    Route(req, res);
    return;
  }
  const bool paths_info = req.method == "POST" && path.find("/paths-info/") != std::string::npos;
  if (req.method != "GET" && req.method != "HEAD" && !paths_info) {
    SendError(res, InvalidArgumentError("the agent's mirror routes are read-only"));
    return;
  }
  p_.mirror.Handle(req, res);
}

void AgentApi::Route(const net::HttpRequest& req, net::HttpResponse& res) {
  const std::string& path = req.raw_path;
  const std::string& m = req.method;
  auto method_not_allowed = [&] {
    SendJson(res, 405, json{{"error", "method " + m + " not allowed on " + path},
                            {"code", "invalid_argument"}});
  };
  if (path == "/health") {
    if (m != "GET" && m != "HEAD") return method_not_allowed();
    return SendJson(res, 200, json{{"status", "ok"}, {"host_id", p_.options.host_id}});
  }
  if (path == "/metrics") {
    if (m != "GET" && m != "HEAD") return method_not_allowed();
    return Metrics(res);
  }
  if (path == "/v1/inventory") {
    if (m != "GET" && m != "HEAD") return method_not_allowed();
    return res.SetText(200, HostDocument(), "application/json");
  }
  if (path == "/v1/ensure") {
    if (m != "POST") return method_not_allowed();
    return Ensure(req, res);
  }
  if (path == "/v1/downloads") {
    if (m != "GET" && m != "HEAD") return method_not_allowed();
    json list = json::array();
    for (const EnsureState& d : p_.downloads.Active()) list.push_back(EnsureJson(d));
    return SendJson(res, 200, json{{"downloads", list}});
  }
  if (path == "/v1/pins") {
    if (m == "GET") {
      auto pins = p_.db.ListPins();
      if (!pins.ok()) return SendError(res, pins.status());
      json list = json::array();
      for (const PinRow& pin : *pins) {
        auto repo = RepoId::FromFolderName(pin.repo);
        list.push_back(json{{"model", repo.ok() ? ModelName(*repo) : pin.repo},
                            {"commit", pin.commit},
                            {"owner", pin.owner},
                            {"created_at", IsoTime(pin.created)}});
      }
      return SendJson(res, 200, json{{"pins", list}});
    }
    if (m == "POST" || m == "DELETE") return Pin(req, res, m == "POST");
    return method_not_allowed();
  }
  if (path == "/v1/evict") {
    if (m != "POST") return method_not_allowed();
    return Evict(req, res);
  }
  if (path == "/v1/workers") {
    if (m == "POST") return StartWorker(req, res);
    if (m != "GET" && m != "HEAD") return method_not_allowed();
    json list = json::array();
    for (const WorkerView& w : p_.workers.Views()) list.push_back(WorkerJson(w));
    return SendJson(res, 200, json{{"workers", list}});
  }
  if (path.starts_with("/v1/workers/")) {
    const std::string id = path.substr(std::string("/v1/workers/").size());
    if (m == "GET" || m == "HEAD") return GetWorker(req, res, id);
    if (m != "DELETE") return method_not_allowed();
    auto grace = WaitParam(req, "grace");
    if (!grace.ok()) return SendError(res, grace.status());
    const auto g = req.QueryParam("grace") ? *grace : p_.options.stop_grace;
    Status s = p_.workers.Stop(id, g);
    if (!s.ok()) return SendError(res, s);
    auto view = p_.workers.View(id);
    return SendJson(res, 202, view ? WorkerJson(*view) : json::object());
  }
  SendError(res, NotFoundError("no route " + path.substr(0, 200)));
}

void AgentApi::Ensure(const net::HttpRequest& req, net::HttpResponse& res) {
  auto body = ParseBody(req, {"model", "revision", "include", "exclude", "peers", "token"});
  if (!body.ok()) return SendError(res, body.status());
  auto request = ParseEnsure(*body);
  if (!request.ok()) return SendError(res, request.status());
  auto wait = WaitParam(req, "wait");
  if (!wait.ok()) return SendError(res, wait.status());
  EnsureState s = p_.downloads.Ensure(*request, *wait);
  if (s.phase == EnsureState::Phase::kFailed) {
    return SendJson(res, ToHttpStatus(s.error), EnsureJson(s));
  }
  SendJson(res, s.phase == EnsureState::Phase::kReady ? 200 : 202, EnsureJson(s));
}

void AgentApi::Pin(const net::HttpRequest& req, net::HttpResponse& res, bool add) {
  auto body = ParseBody(req, {"model", "revision"});
  if (!body.ok()) return SendError(res, body.status());
  auto target = LocalCommit(*body, p_.store);
  if (!target.ok()) return SendError(res, target.status());
  const auto& [repo, commit] = *target;
  Status s = add ? p_.db.AddPin({repo.FolderName(), commit.str(), "operator",
                                 p_.options.clock->Now()})
                 : p_.db.RemovePin(repo.FolderName(), commit.str(), "operator");
  if (!s.ok()) return SendError(res, s);
  SendJson(res, 200, json{{"model", ModelName(repo)}, {"commit", commit.str()}, {"pinned", add}});
}

void AgentApi::Evict(const net::HttpRequest& req, net::HttpResponse& res) {
  auto body = ParseBody(req, {"model", "revision"});
  if (!body.ok()) return SendError(res, body.status());
  auto target = LocalCommit(*body, p_.store);
  if (!target.ok()) return SendError(res, target.status());
  Status s = p_.inventory.Evict(target->first, target->second);
  if (!s.ok()) return SendError(res, s);
  SendJson(res, 200, json{{"model", ModelName(target->first)}, {"commit", target->second.str()},
                          {"evicted", true}});
}

void AgentApi::StartWorker(const net::HttpRequest& req, net::HttpResponse& res) {
  auto body = ParseBody(req, WorkerFields());
  if (!body.ok()) return SendError(res, body.status());
  auto w = ParseWorkerRequest(*body);
  if (!w.ok()) return SendError(res, w.status());
  auto row = p_.workers.Start(std::move(*w));
  if (!row.ok()) return SendError(res, row.status());
  auto view = p_.workers.View(row->id);
  SendJson(res, 202, view ? WorkerJson(*view) : json::object());
}

void AgentApi::GetWorker(const net::HttpRequest& req, net::HttpResponse& res,
                         const std::string& id) {
  auto wait = WaitParam(req, "wait");
  if (!wait.ok()) return SendError(res, wait.status());
  std::optional<WorkerRow> row;
  if (wait->count() > 0) {
    std::vector<std::string> until;
    std::stringstream ss(req.QueryParam("until").value_or("running,exited,failed"));
    std::string part;
    while (std::getline(ss, part, ',')) until.push_back(part);
    row = p_.workers.WaitFor(id, until, *wait);
  } else {
    row = p_.workers.Get(id);
  }
  auto view = row ? p_.workers.View(id) : std::nullopt;
  if (!view) return SendError(res, NotFoundError("no worker " + id.substr(0, 80)));
  SendJson(res, 200, WorkerJson(*view));
}

void AgentApi::Metrics(net::HttpResponse& res) const {
  const BudgetView b = p_.inventory.Budget();
  const DownloadStats d = p_.downloads.Stats();
  const auto snapshots = p_.inventory.Snapshots();
  const mirror::MirrorStats peer = p_.mirror.stats();
  std::ostringstream out;
  auto gauge = [&](const char* name, const char* help, const char* type) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  gauge("modelcache_agent_cache_bytes", "Bytes of the cache by kind.", "gauge");
  out << "modelcache_agent_cache_bytes{kind=\"blobs\"} " << b.used - b.partial << "\n"
      << "modelcache_agent_cache_bytes{kind=\"partial\"} " << b.partial << "\n"
      << "modelcache_agent_cache_bytes{kind=\"reserved\"} " << b.reserved << "\n";
  gauge("modelcache_agent_capacity_bytes", "The cache's byte budget.", "gauge");
  out << "modelcache_agent_capacity_bytes " << b.capacity << "\n";
  gauge("modelcache_agent_snapshots", "Cached snapshots (repo commits).", "gauge");
  out << "modelcache_agent_snapshots " << snapshots.size() << "\n";
  gauge("modelcache_agent_ensure_total", "Ensure calls by result.", "counter");
  out << "modelcache_agent_ensure_total{result=\"hit\"} " << d.hits << "\n"
      << "modelcache_agent_ensure_total{result=\"miss\"} " << d.misses << "\n";
  gauge("modelcache_agent_downloads_total", "Downloads by outcome.", "counter");
  out << "modelcache_agent_downloads_total{result=\"started\"} " << d.started << "\n"
      << "modelcache_agent_downloads_total{result=\"succeeded\"} " << d.succeeded << "\n"
      << "modelcache_agent_downloads_total{result=\"failed\"} " << d.failed << "\n";
  gauge("modelcache_agent_download_seconds_total", "Seconds spent in finished downloads.",
        "counter");
  out << "modelcache_agent_download_seconds_total " << d.seconds << "\n";
  gauge("modelcache_agent_download_bytes_total", "Bytes downloaded by source.", "counter");
  for (const auto& [source, bytes] : d.bytes_by_source) {
    json label = source;  // JSON string escaping is a superset of the exposition format's
    out << "modelcache_agent_download_bytes_total{source=" << label.dump() << "} " << bytes
        << "\n";
  }
  gauge("modelcache_agent_evictions_total", "Snapshots evicted.", "counter");
  out << "modelcache_agent_evictions_total " << b.evictions << "\n";
  gauge("modelcache_agent_evicted_bytes_total", "Bytes freed by evictions.", "counter");
  out << "modelcache_agent_evicted_bytes_total " << b.evicted_bytes << "\n";
  gauge("modelcache_agent_workers", "Workers by state.", "gauge");
  for (const auto& [state, count] : p_.workers.CountByState()) {
    out << "modelcache_agent_workers{state=\"" << state << "\"} " << count << "\n";
  }
  gauge("modelcache_agent_gpus", "GPU slots by state.", "gauge");
  const int free = p_.workers.FreeGpus();
  out << "modelcache_agent_gpus{state=\"free\"} " << free << "\n"
      << "modelcache_agent_gpus{state=\"used\"} " << p_.workers.gpu_count() - free << "\n";
  gauge("modelcache_agent_peer_bytes_served_total", "File bytes served to peers.", "counter");
  out << "modelcache_agent_peer_bytes_served_total " << peer.file_bytes_served << "\n";
  res.SetText(200, out.str(), "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace mc::agent
