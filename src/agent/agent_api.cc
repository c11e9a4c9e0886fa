#include "agent/agent_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "agent/api_json.h"
#include "mc/agent/pins.h"
#include "mc/hub/model_ref.h"
#include "mc/net/address_policy.h"
#include "mc/net/json_reply.h"
#include "mc/net/prometheus.h"
#include "mc/net/url.h"

namespace mc::agent {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::chrono::milliseconds kMaxWait{300'000};

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
  const DownloadStats stats = p_.downloads.Stats();
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
              {"rates",
               {{"upstream_bytes_per_second", stats.upstream_bytes_per_second},
                {"peer_bytes_per_second", stats.peer_bytes_per_second}}},
              {"runtime",
               {{"kind", p_.workers.runtime().name()},
                {"containers", p_.workers.runtime().runs_containers()},
                {"limits", p_.workers.runtime().enforces_limits()}}},
              {"images", p_.images ? ImagesJson(*p_.images) : json(nullptr)},
              {"workers", workers}}
      .dump();
}

AgentApi::AgentApi(Parts parts) : p_(parts) {
  using net::Member;
  router_.Add("GET", "/health", Member(this, &AgentApi::Health));
  router_.Add("GET", "/metrics", Member(this, &AgentApi::Metrics));
  router_.Add("GET", "/v1/inventory", Member(this, &AgentApi::Inventory));
  router_.Add("POST", "/v1/ensure", Member(this, &AgentApi::Ensure));
  router_.Add("GET", "/v1/downloads", Member(this, &AgentApi::Downloads));
  router_.Add("GET", "/v1/pins", Member(this, &AgentApi::ListPins));
  router_.Add("POST", "/v1/pins", Member(this, &AgentApi::AddPin));
  router_.Add("DELETE", "/v1/pins", Member(this, &AgentApi::RemovePin));
  router_.Add("POST", "/v1/evict", Member(this, &AgentApi::Evict));
  router_.Add("GET", "/v1/workers", Member(this, &AgentApi::ListWorkers));
  router_.Add("POST", "/v1/workers", Member(this, &AgentApi::StartWorker));
  router_.Add("GET", "/v1/workers/{id}", Member(this, &AgentApi::GetWorker));
  router_.Add("DELETE", "/v1/workers/{id}", Member(this, &AgentApi::StopWorker));
}

bool AgentApi::KeyMissing(const net::HttpRequest& req, net::HttpResponse& res) const {
  const std::string& path = req.raw_path;
  const bool api = path.starts_with("/v1/") || path == "/v1";
  if (path == "/health" || path == "/metrics") return false;
  std::string given = req.headers.Get("Authorization").value_or("");
  if (given.starts_with("Bearer ")) given = given.substr(7);
  const bool agent_key = p_.options.api_key && p_.options.api_key->Matches(given);
  if (!api) {
    // A mirror route: what peers and swarm members fetch, gated and private repos included. The
    // fleet's peer key (never accepted on /v1), or this agent's own key.
    if (agent_key || p_.peer_key.Accepts(given)) return false;
    net::SetJsonError(res, UnauthenticatedError(
                               "this agent's mirror routes need the fleet's peer key "
                               "(Authorization: Bearer ...): enroll the agents with a controller, "
                               "which hands it to them, or give each the same --peer-key-file"));
    return true;
  }
  if (!p_.options.api_key || agent_key) return false;
  // The controller authenticates with this host's own credential (its enrollment's).
  if (p_.options.controller_api_key && p_.options.controller_api_key->Matches(given)) return false;
  net::SetJsonError(res,
                    UnauthenticatedError("missing or wrong API key (Authorization: Bearer ...)"));
  return true;
}

bool AgentApi::BrowserForgery(const net::HttpRequest& req, net::HttpResponse& res) const {
  const std::string& path = req.raw_path;
  if (!(path.starts_with("/v1/") || path == "/v1")) return false;
  std::string public_url;
  {
    std::lock_guard<std::mutex> lock(mu_);
    public_url = public_url_;
  }
  // Hosts a request may name: an address, localhost, and the names this agent goes by.
  const auto own_host = [&](const std::string& host) {
    if (host.empty()) return false;
    if (host == "localhost" || host == p_.options.host_id) return true;
    if (host == net::UrlHost(public_url)) return true;
    if (host.find_first_not_of("0123456789.") == std::string::npos) return true;  // IPv4
    if (host.find(':') != std::string::npos) return true;                          // IPv6
    for (const std::string& allowed : p_.options.allowed_hosts) {
      if (host == allowed) return true;
    }
    return false;
  };
  if (auto host = req.headers.Get("Host")) {
    if (!own_host(net::UrlHost("http://" + *host))) {
      net::SetJsonError(res, 403, PermissionDeniedError(
                                      "Host " + net::JsonQuote(host->substr(0, 100)) +
                                      " is not this agent's (DNS rebinding?); name it with "
                                      "--public-url or --allowed-host"));
      return true;
    }
  }
  if (auto origin = req.headers.Get("Origin")) {
    if (!own_host(net::UrlHost(*origin))) {
      net::SetJsonError(res, 403, PermissionDeniedError("cross-site request refused (Origin " +
                                                        net::JsonQuote(origin->substr(0, 100)) +
                                                        ")"));
      return true;
    }
  }
  const bool changes = req.method != "GET" && req.method != "HEAD" && req.method != "OPTIONS";
  std::string type = req.headers.Get("Content-Type").value_or("");
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (changes && !(type == "application/json" || type.starts_with("application/json;"))) {
    net::SetJsonError(res, 415, InvalidArgumentError(
                                    "a " + req.method.substr(0, 10) +
                                    " to the agent's API needs Content-Type: application/json"));
    return true;
  }
  return false;
}

void AgentApi::CheckHead(const net::HttpRequest& head, net::HeadVerdict& verdict) const {
  net::HttpResponse refused;
  if (KeyMissing(head, refused) || BrowserForgery(head, refused)) {
    verdict.reject = std::move(refused);
  }
}

void AgentApi::Handle(const net::HttpRequest& req, net::HttpResponse& res) {
  const std::string& path = req.raw_path;
  const bool api = path.starts_with("/v1/") || path == "/v1";
  if (KeyMissing(req, res) || BrowserForgery(req, res)) return;
  if (api && Fenced(req, res)) return;
  if (api || path == "/health" || path == "/metrics") return router_.Handle(req, res);
  const bool paths_info = req.method == "POST" && path.find("/paths-info/") != std::string::npos;
  if (req.method != "GET" && req.method != "HEAD" && !paths_info) {
    net::SetJsonError(res, InvalidArgumentError("the agent's mirror routes are read-only"));
    return;
  }
  p_.mirror.Handle(req, res);
  // A swarm member asks for a file this agent is still downloading: what is written so far.
  if (req.method == "GET" && req.headers.Get("X-Modelcache-Partial")) ServePartial(req, res);
}

// GET /{repo}/resolve/{commit}/{path} of a file a download in flight fetches, from a swarm member
// (X-Modelcache-Partial: 1, with a Range), after the mirror answered: the asker (its
// X-Modelcache-Swarm-Member URL) joins this agent's downloads of the commit; then, if the mirror
// had no complete file (404/401), 206 with the bytes written from the range's first byte on
// (Content-Range says how many), or 416 with X-Modelcache-Pending: <bytes of the file written so
// far> when the first byte is not written yet. Anything else keeps the mirror's answer. Bytes are
// not verified here; the member verifies the whole blob before it is visible.
void AgentApi::ServePartial(const net::HttpRequest& req, net::HttpResponse& res) {
  const std::string& path = req.raw_path;
  const size_t at = path.find("/resolve/");
  if (at == std::string::npos || at < 2) return;
  auto repo = RepoId::Parse(path.substr(1, at - 1));
  const std::string rest = path.substr(at + 9);
  const size_t slash = rest.find('/');
  if (!repo.ok() || slash == std::string::npos) return;
  const std::string commit = rest.substr(0, slash);
  auto file = net::PercentDecode(rest.substr(slash + 1));
  if (!file.ok() || !CommitSha::IsValid(commit)) return;
  if (auto member = req.headers.Get("X-Modelcache-Swarm-Member")) {
    p_.downloads.JoinSwarm(*repo, commit, std::string(*member));
  }
  if (res.status != 404 && res.status != 401) return;
  const std::string range = req.headers.Get("Range").value_or("");
  uint64_t first = 0, last = UINT64_MAX;
  if (range.starts_with("bytes=")) {
    const std::string spec = range.substr(6);
    const size_t dash = spec.find('-');
    if (dash == std::string::npos || dash == 0) return;
    first = std::strtoull(spec.substr(0, dash).c_str(), nullptr, 10);
    if (dash + 1 < spec.size()) last = std::strtoull(spec.substr(dash + 1).c_str(), nullptr, 10);
  }
  auto partial = p_.downloads.Partial(*repo, commit, *file, first);
  if (!partial) return;
  const downloader::BlobExtent& e = partial->extent;
  net::HttpResponse out;
  if (partial->etag.empty() || e.available_end <= first || first >= e.size) {
    out.status = 416;
    out.headers.Set("Content-Range", "bytes */" + std::to_string(e.size));
    out.headers.Set("X-Modelcache-Pending", std::to_string(e.written));
    res = std::move(out);
    return;
  }
  const uint64_t end = std::min(e.available_end, last == UINT64_MAX ? e.size : last + 1);
  const std::filesystem::path temp =
      p_.store.ResumableBlobPath(*repo, Etag::Parse(partial->etag).value());
  auto fd = net::ScopedFd::OpenForRead(temp);
  if (!fd.ok()) return;  // published meanwhile: the member asks again and gets the snapshot file
  out.status = 206;
  out.headers.Set("Content-Range", "bytes " + std::to_string(first) + "-" +
                                       std::to_string(end - 1) + "/" + std::to_string(e.size));
  out.headers.Set("Accept-Ranges", "bytes");
  out.headers.Set("Content-Type", "application/octet-stream");
  out.SetFile(std::move(*fd), first, end - first);
  res = std::move(out);
}

void AgentApi::Health(const net::HttpRequest&, const Params&, net::HttpResponse& res) {
  net::SetJson(res, 200, json{{"status", "ok"}, {"host_id", p_.options.host_id}}.dump());
}

void AgentApi::Inventory(const net::HttpRequest&, const Params&, net::HttpResponse& res) {
  net::SetJson(res, 200, HostDocument());
}

void AgentApi::Downloads(const net::HttpRequest&, const Params&, net::HttpResponse& res) {
  json list = json::array();
  for (const EnsureState& d : p_.downloads.Active()) list.push_back(EnsureJson(d));
  net::SetJson(res, 200, json{{"downloads", list}}.dump());
}

void AgentApi::ListPins(const net::HttpRequest&, const Params&, net::HttpResponse& res) {
  auto pins = p_.db.ListPins();
  if (!pins.ok()) return net::SetJsonError(res, pins.status());
  json list = json::array();
  for (const PinRow& pin : *pins) {
    auto repo = RepoId::FromFolderName(pin.repo);
    list.push_back(json{{"model", repo.ok() ? ModelName(*repo) : pin.repo},
                        {"commit", pin.commit},
                        {"owner", pin.owner},
                        {"created_at", IsoTime(pin.created)}});
  }
  net::SetJson(res, 200, json{{"pins", list}}.dump());
}

void AgentApi::AddPin(const net::HttpRequest& req, const Params&, net::HttpResponse& res) {
  Pin(req, res, true);
}

void AgentApi::RemovePin(const net::HttpRequest& req, const Params&, net::HttpResponse& res) {
  Pin(req, res, false);
}

void AgentApi::ListWorkers(const net::HttpRequest&, const Params&, net::HttpResponse& res) {
  json list = json::array();
  for (const WorkerView& w : p_.workers.Views()) list.push_back(WorkerJson(w));
  net::SetJson(res, 200, json{{"workers", list}}.dump());
}

bool AgentApi::Fenced(const net::HttpRequest& req, net::HttpResponse& res) {
  const std::optional<std::string> header = req.headers.Get("X-Modelcache-Epoch");
  if (!header) return false;
  int64_t epoch = 0;
  const auto [end, ec] = std::from_chars(header->data(), header->data() + header->size(), epoch);
  if (ec != std::errc() || end != header->data() + header->size() || epoch < 0) {
    net::SetJsonError(res, InvalidArgumentError("X-Modelcache-Epoch must be a whole number"));
    return true;
  }
  int64_t seen = highest_epoch_.load();
  while (epoch > seen && !highest_epoch_.compare_exchange_weak(seen, epoch)) {
  }
  // Reads (a deposed leader's watcher) are harmless; what changes anything is refused.
  if (epoch >= seen || req.method == "GET" || req.method == "HEAD") return false;
  net::SetJsonError(
      res, FailedPreconditionError(
               "fenced: this request carries leadership epoch " + std::to_string(epoch) +
               " but a controller of epoch " + std::to_string(seen) +
               " has already spoken to this agent: the sender is no longer the leader"));
  return true;
}

void AgentApi::StopWorker(const net::HttpRequest& req, const Params& params,
                          net::HttpResponse& res) {
  const std::string& id = params.Get("id");
  auto grace = WaitParam(req, "grace");
  if (!grace.ok()) return net::SetJsonError(res, grace.status());
  const auto g = req.QueryParam("grace") ? *grace : p_.options.stop_grace;
  Status s = p_.workers.Stop(id, g);
  if (!s.ok()) return net::SetJsonError(res, s);
  auto view = p_.workers.View(id);
  net::SetJson(res, 202, (view ? WorkerJson(*view) : json::object()).dump());
}

void AgentApi::Ensure(const net::HttpRequest& req, const Params&, net::HttpResponse& res) {
  auto body = ParseBody(req, {"model", "revision", "include", "exclude", "peers", "swarm", "token"});
  if (!body.ok()) return net::SetJsonError(res, body.status());
  auto request = ParseEnsure(*body);
  if (!request.ok()) return net::SetJsonError(res, request.status());
  auto wait = WaitParam(req, "wait");
  if (!wait.ok()) return net::SetJsonError(res, wait.status());
  EnsureState s = p_.downloads.Ensure(*request, *wait);
  if (s.phase == EnsureState::Phase::kFailed) {
    return net::SetJson(res, ToHttpStatus(s.error), EnsureJson(s).dump());
  }
  net::SetJson(res, s.phase == EnsureState::Phase::kReady ? 200 : 202, EnsureJson(s).dump());
}

void AgentApi::Pin(const net::HttpRequest& req, net::HttpResponse& res, bool add) {
  auto body = ParseBody(req, {"model", "revision", "owner"});
  if (!body.ok()) return net::SetJsonError(res, body.status());
  // The operator's pins (the default) or the controller's (kFleetPinOwner: the fleet's cached
  // replicas, docs/controller.md); a worker's pins are the agent's own and cannot be named.
  const json owner_field = body->value("owner", json(kOperatorPinOwner));
  if (!owner_field.is_string() ||
      (owner_field != kOperatorPinOwner && owner_field != kFleetPinOwner)) {
    return net::SetJsonError(
        res, InvalidArgumentError(std::string("owner must be \"") + kOperatorPinOwner + "\" or \"" +
                                  kFleetPinOwner + "\""));
  }
  const std::string owner = owner_field.get<std::string>();
  auto target = LocalCommit(*body, p_.store);
  if (!target.ok()) return net::SetJsonError(res, target.status());
  const auto& [repo, commit] = *target;
  Status s = add ? p_.db.AddPin({repo.FolderName(), commit.str(), owner, p_.options.clock->Now()})
                 : p_.db.RemovePin(repo.FolderName(), commit.str(), owner);
  if (!s.ok()) return net::SetJsonError(res, s);
  net::SetJson(
      res, 200,
      json{{"model", ModelName(repo)}, {"commit", commit.str()}, {"owner", owner}, {"pinned", add}}
          .dump());
}

void AgentApi::Evict(const net::HttpRequest& req, const Params&, net::HttpResponse& res) {
  auto body = ParseBody(req, {"model", "revision"});
  if (!body.ok()) return net::SetJsonError(res, body.status());
  auto target = LocalCommit(*body, p_.store);
  if (!target.ok()) return net::SetJsonError(res, target.status());
  Status s = p_.inventory.Evict(target->first, target->second);
  if (!s.ok()) return net::SetJsonError(res, s);
  net::SetJson(res, 200,
               json{{"model", ModelName(target->first)}, {"commit", target->second.str()},
                    {"evicted", true}}.dump());
}

void AgentApi::StartWorker(const net::HttpRequest& req, const Params&,
                           net::HttpResponse& res) {
  auto body = ParseBody(req, WorkerFields());
  if (!body.ok()) return net::SetJsonError(res, body.status());
  auto w = ParseWorkerRequest(*body);
  if (!w.ok()) return net::SetJsonError(res, w.status());
  auto row = p_.workers.Start(std::move(*w));
  if (!row.ok()) return net::SetJsonError(res, row.status());
  auto view = p_.workers.View(row->id);
  net::SetJson(res, 202, (view ? WorkerJson(*view) : json::object()).dump());
}

void AgentApi::GetWorker(const net::HttpRequest& req, const Params& params,
                         net::HttpResponse& res) {
  const std::string& id = params.Get("id");
  auto wait = WaitParam(req, "wait");
  if (!wait.ok()) return net::SetJsonError(res, wait.status());
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
  if (!view) return net::SetJsonError(res, NotFoundError("no worker " + id.substr(0, 80)));
  net::SetJson(res, 200, WorkerJson(*view).dump());
}

void AgentApi::Metrics(const net::HttpRequest&, const Params&, net::HttpResponse& res) {
  const BudgetView b = p_.inventory.Budget();
  const DownloadStats d = p_.downloads.Stats();
  const auto snapshots = p_.inventory.Snapshots();
  const mirror::MirrorStats peer = p_.mirror.stats();
  net::PrometheusText out;
  out.Family("modelcache_agent_cache_bytes", "Bytes of the cache by kind.", "gauge");
  out.Sample("modelcache_agent_cache_bytes", {{"kind", "blobs"}}, b.used - b.partial);
  out.Sample("modelcache_agent_cache_bytes", {{"kind", "partial"}}, b.partial);
  out.Sample("modelcache_agent_cache_bytes", {{"kind", "reserved"}}, b.reserved);
  out.Family("modelcache_agent_capacity_bytes", "The cache's byte budget.", "gauge");
  out.Sample("modelcache_agent_capacity_bytes", b.capacity);
  out.Family("modelcache_agent_snapshots", "Cached snapshots (repo commits).", "gauge");
  out.Sample("modelcache_agent_snapshots", snapshots.size());
  out.Family("modelcache_agent_ensure_total", "Ensure calls by result.", "counter");
  out.Sample("modelcache_agent_ensure_total", {{"result", "hit"}}, d.hits);
  out.Sample("modelcache_agent_ensure_total", {{"result", "miss"}}, d.misses);
  out.Family("modelcache_agent_downloads_total", "Downloads by outcome.", "counter");
  out.Sample("modelcache_agent_downloads_total", {{"result", "started"}}, d.started);
  out.Sample("modelcache_agent_downloads_total", {{"result", "succeeded"}}, d.succeeded);
  out.Sample("modelcache_agent_downloads_total", {{"result", "failed"}}, d.failed);
  out.Family("modelcache_agent_download_seconds_total", "Seconds spent in finished downloads.",
             "counter");
  out.Sample("modelcache_agent_download_seconds_total", d.seconds);
  out.Family("modelcache_agent_download_bytes_total", "Bytes downloaded by source.", "counter");
  for (const auto& [source, bytes] : d.bytes_by_source) {
    out.Sample("modelcache_agent_download_bytes_total", {{"source", source}}, bytes);
  }
  out.Family("modelcache_agent_evictions_total", "Snapshots evicted.", "counter");
  out.Sample("modelcache_agent_evictions_total", b.evictions);
  out.Family("modelcache_agent_evicted_bytes_total", "Bytes freed by evictions.", "counter");
  out.Sample("modelcache_agent_evicted_bytes_total", b.evicted_bytes);
  out.Family("modelcache_agent_workers", "Workers by state.", "gauge");
  for (const auto& [state, count] : p_.workers.CountByState()) {
    out.Sample("modelcache_agent_workers", {{"state", state}}, count);
  }
  out.Family("modelcache_agent_gpus", "GPU slots by state.", "gauge");
  const int free = p_.workers.FreeGpus();
  out.Sample("modelcache_agent_gpus", {{"state", "free"}}, free);
  out.Sample("modelcache_agent_gpus", {{"state", "used"}}, p_.workers.gpu_count() - free);
  out.Family("modelcache_agent_peer_bytes_served_total", "File bytes served to peers.",
             "counter");
  out.Sample("modelcache_agent_peer_bytes_served_total", peer.file_bytes_served);
  out.Reply(res);
}

}  // namespace mc::agent
