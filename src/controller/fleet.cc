#include "controller/fleet.h"

#include "controller/fleet_decide.h"

#include "controller/endpoint_secrets.h"
#include "controller/hub_access.h"
#include "controller/keys.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <nlohmann/json.hpp>

#include "mc/common/constant_time.h"
#include "mc/common/text_tail.h"
#include "mc/common/image_ref.h"
#include "mc/hub/hub_client.h"
#include "mc/hub/model_ref.h"
#include "mc/net/url.h"
#include "mc/scheduler/placement.h"

namespace mc::controller {

using json = nlohmann::json;

namespace {

constexpr WorkerPhase kInitializing = WorkerPhase::kInitializing;
constexpr WorkerPhase kStarting = WorkerPhase::kStarting;
constexpr WorkerPhase kIdle = WorkerPhase::kIdle;
constexpr WorkerPhase kRunning = WorkerPhase::kRunning;
constexpr WorkerPhase kStopping = WorkerPhase::kStopping;
constexpr WorkerPhase kStopped = WorkerPhase::kStopped;
constexpr WorkerPhase kPhaseFailed = WorkerPhase::kFailed;



// What a worker of `e` is given that must never be shown from its log: its key, the endpoint's
// HF token, the registry password its agent is sent (in `body`, the agent's request), and env
// values whose names say they are secret.
std::vector<std::string> WorkerSecrets(const EndpointRecord& e, const json& env,
                                       const std::string& key, const json& body) {
  std::vector<std::string> out{key};
  if (e.hf_token) out.push_back(*e.hf_token);
  const auto auth = body.find("registryAuth");
  if (auth != body.end() && auth->is_object()) {
    const auto password = auth->find("password");
    if (password != auth->end() && password->is_string()) {
      out.push_back(password->get<std::string>());
    }
  }
  if (e.secret_env) {  // every value of the write-only env is a secret, whatever its name
    const json secret = json::parse(*e.secret_env, nullptr, false);
    if (secret.is_object()) {
      for (const auto& [name, value] : secret.items()) {
        if (value.is_string() && !value.get<std::string>().empty()) {
          out.push_back(value.get<std::string>());
        }
      }
    }
  }
  for (const auto& [name, value] : env.items()) {
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const bool secret = upper.find("KEY") != std::string::npos ||
                        upper.find("TOKEN") != std::string::npos ||
                        upper.find("SECRET") != std::string::npos ||
                        upper.find("PASSWORD") != std::string::npos;
    if (secret && value.is_string()) out.push_back(value.get<std::string>());
  }
  return out;
}

}  // namespace

namespace {

// The agent's POST /v1/workers body for a worker `id` of `e` (docs/agent.md): the image (with its
// registry credentials) or the argv, the models pinned to their commits, links, env and peers.
json WorkerBody(const EndpointRecord& e, const std::string& id, const json& env,
                const std::vector<std::string>& peers) {
  json body{{"id", id}, {"endpoint", e.id}, {"env", env}, {"gpus", e.gpu_count}, {"peers", peers}};
  const json command = json::parse(e.command_json, nullptr, false);
  if (command.is_array() && !command.empty()) body["command"] = command;
  if (!e.image.empty()) {
    body["image"] = e.image;
    const json args = json::parse(e.args_json, nullptr, false);
    if (args.is_array() && !args.empty()) body["args"] = args;
    if (e.registry_auth) {
      const json auth = json::parse(*e.registry_auth, nullptr, false);
      if (auth.is_object()) body["registryAuth"] = auth;
    }
  }
  const json models = json::parse(e.models_json, nullptr, false);
  if (models.is_array() && !models.empty()) {
    json list = json::array();
    for (const json& m : models) {
      json entry{{"model", m.value("repo", "")}, {"revision", m.value("commit", "")}};
      for (const char* k : {"include", "exclude"}) {
        if (m.contains(k) && m[k].is_array() && !m[k].empty()) entry[k] = m[k];
      }
      list.push_back(std::move(entry));
    }
    body["models"] = std::move(list);
  } else {
    body["model"] = e.repo;
    body["revision"] = e.commit;
  }
  if (e.hf_token) body["token"] = *e.hf_token;
  const json links = json::parse(e.links_json, nullptr, false);
  if (links.is_array() && !links.empty()) {
    json list = json::array();
    for (json l : links) {
      if (l.contains("model")) {  // the agent names models by repo
        auto ref = hub::ParseModelRef(l["model"].get<std::string>());
        if (ref.ok()) l["model"] = std::string(ref->repo.UrlPrefix()) + ref->repo.id();
      }
      list.push_back(std::move(l));
    }
    body["links"] = std::move(list);
  }
  return body;
}

// The endpoint with its sealed secrets opened, for the upstream client and the agent.
StatusOr<EndpointRecord> WithSecrets(const SecretBox& box, EndpointRecord e) {
  MC_RETURN_IF_ERROR(OpenEndpointSecrets(box, e));
  return e;
}

}  // namespace

struct Fleet::Live {
  WorkerRecord rec;
  bool unhealthy = false;  // its latest ping said so
  std::string host_url;
  // The phase, typed (rec.phase is its name, for the store and the API; "" before the first).
  WorkerPhase phase = WorkerPhase::kInitializing;
  std::optional<int64_t> ledger_row;  // the open phase row
  // What the worker was given that its log must not show (the key, the token, secret env).
  std::vector<std::string> secrets;
  int64_t endpoint_updated_ms = 0;  // the endpoint as it was when the worker was placed
  WorkerExit exit;                  // once ended, as its agent said
};

Fleet::Fleet(ControllerStore& store, JobBoard& jobs, Clock& clock, FleetOptions options)
    : store_(store),
      jobs_(jobs),
      clock_(clock),
      options_(std::move(options)),
      entitlements_(EntitlementPolicy{options_.entitlement_ttl, std::chrono::seconds(30),
                                      options_.entitlement_grace}),
      agents_(options_.agents ? options_.agents : NewHttpAgentClient(options_.ca_file)),
      executor_(std::make_unique<ActionExecutor>(options_.agent_calls_per_host)) {}

Fleet::~Fleet() { Shutdown(); }

int64_t Fleet::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
      .count();
}

void Fleet::Shutdown() {
  std::vector<Watcher> watchers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    watchers.swap(watchers_);
  }
  stopping_cv_.notify_all();
  for (Watcher& w : watchers) {
    if (w.thread.joinable()) w.thread.join();
  }
  executor_->Shutdown();
}

void Fleet::DrainActions() { executor_->Drain(); }

void Fleet::Wake() {
  if (options_.wake) options_.wake();
}

void Fleet::StartWatcherLocked(const std::string& worker_id) {
  if (stopping_) return;
  std::erase_if(watchers_, [](Watcher& w) {
    if (!w.done->load()) return false;
    w.thread.join();  // it has returned: joins at once
    return true;
  });
  auto done = std::make_shared<std::atomic<bool>>(false);
  watchers_.push_back({done, std::thread([this, worker_id, done] {
                         Watch(worker_id);
                         done->store(true);
                       })});
}

// ---- hosts ----

namespace {

// The inventory's "runtime" (what the host runs workers as) and "images" (null for processes).
// References are normalized as endpoints' are, so that they compare as strings.
void ParseRuntimeAndImages(const json& doc, HostView& h) {
  const json runtime = doc.value("runtime", json::object());
  if (runtime.is_object()) {
    h.runtime = runtime.value("kind", "process");
    h.containers = runtime.value("containers", false);
  }
  const json images = doc.value("images", json::object());
  if (!images.is_object()) return;
  auto add = [&](const json& i, bool pulling) {
    if (!i.is_object() || !i.contains("reference") || !i["reference"].is_string()) return;
    auto ref = ImageRef::Parse(i["reference"].get<std::string>());
    if (!ref.ok()) return;
    HostView::Image image{ref->str(), "", i.value("size_bytes", uint64_t{0}), pulling, 0, 0};
    if (i.contains("digest") && i["digest"].is_string()) image.digest = i["digest"];
    const json p = i.value("progress", json::object());
    if (pulling && p.is_object()) {
      image.done = p.value("bytes_done", uint64_t{0});
      if (p.contains("bytes_total") && p["bytes_total"].is_number_unsigned()) {
        image.total = p["bytes_total"].get<uint64_t>();
      }
    }
    h.images.push_back(std::move(image));
  };
  for (const json& i : images.value("items", json::array())) add(i, false);
  for (const json& i : images.value("pulls", json::array())) {
    if (i.is_object() && i.value("state", "") == "pulling") add(i, true);
  }
}

StatusOr<HostView> ParseHost(const json& doc, int64_t now) {
  if (!doc.is_object() || !doc.contains("host_id") || !doc["host_id"].is_string()) {
    return InvalidArgumentError("a host document needs a host_id string");
  }
  HostView h;
  h.id = doc["host_id"].get<std::string>();
  if (h.id.empty() || h.id.size() > 128) return InvalidArgumentError("bad host_id");
  h.url = doc.value("url", "");
  if (!h.url.starts_with("http://") && !h.url.starts_with("https://")) {
    return InvalidArgumentError("a host document needs its url (http:// or https://)");
  }
  h.gpu_type = doc.value("gpu_type", "");
  const json gpus = doc.value("gpus", json::object());
  h.gpus_total = gpus.value("total", 0);
  h.gpus_free = gpus.value("free", 0);
  const json disk = doc.value("disk", json::object());
  h.capacity = disk.value("capacity_bytes", uint64_t{0});
  h.used = disk.value("used_bytes", uint64_t{0});
  h.reserved = disk.value("reserved_bytes", uint64_t{0});
  // The agent sends its watermarks as fractions of the capacity.
  auto fraction = [&](const char* key) {
    const double f = std::clamp(disk.value(key, 0.0), 0.0, 1.0);
    return static_cast<uint64_t>(f * static_cast<double>(h.capacity));
  };
  h.high_watermark = fraction("high_watermark");
  h.low_watermark = fraction("low_watermark");
  for (const json& s : doc.value("snapshots", json::array())) {
    if (!s.is_object()) continue;
    HostView::Snapshot snap;
    snap.model = s.value("model", "");
    snap.commit = s.value("commit", "");
    snap.size = s.value("size_bytes", uint64_t{0});
    snap.complete = s.value("complete", false);
    for (const json& owner : s.value("pins", json::array())) {
      if (owner.is_string()) snap.pinned_by.push_back(owner.get<std::string>().substr(0, 128));
    }
    snap.files = s.value("files", 0);
    snap.last_use = s.value("last_use", "");
    // What eviction could free: it never takes a pinned or a partial snapshot (eviction.h).
    if (!snap.pinned() && snap.complete) h.freeable += snap.size;
    h.snapshots.push_back(std::move(snap));
  }
  for (const json& d : doc.value("downloads", json::array())) {
    if (!d.is_object()) continue;
    const json p = d.value("progress", json::object());
    const auto commit = d.find("commit");
    h.downloads.push_back({d.value("model", ""),
                           commit != d.end() && commit->is_string() ? commit->get<std::string>()
                                                                    : "",
                           p.value("bytes_done", uint64_t{0}), p.value("bytes_total", uint64_t{0}),
                           p.value("bytes_per_second", 0.0)});
  }
  ParseRuntimeAndImages(doc, h);
  const json rates = doc.value("rates", json::object());
  h.upstream_rate = std::max(0.0, rates.value("upstream_bytes_per_second", 0.0));
  h.peer_rate = std::max(0.0, rates.value("peer_bytes_per_second", 0.0));
  h.last_seen_ms = now;
  return h;
}

}  // namespace

Status Fleet::Heartbeat(const std::string& body) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) return InvalidArgumentError("the host document is not valid JSON");
  const int64_t now = NowMs();
  StatusOr<HostView> parsed = InvalidArgumentError("bad host document");
  try {
    parsed = ParseHost(doc, now);
  } catch (const json::exception& e) {  // a field of the wrong type
    return InvalidArgumentError(std::string("bad host document: ") + e.what());
  }
  MC_ASSIGN_OR_RETURN(HostView host, std::move(parsed));
  MC_RETURN_IF_ERROR(store_.PutHost({host.id, body, now}));
  std::lock_guard<std::mutex> lock(mu_);
  hosts_[host.id] = std::move(host);
  return Status::Ok();
}

void Fleet::SetHostCredential(const std::string& host_id, const hub::Secret& credential) {
  std::lock_guard<std::mutex> lock(mu_);
  host_keys_.insert_or_assign(host_id, credential);
}

void Fleet::SetSchedule(const std::string& host_id, const std::string& schedule) {
  std::lock_guard<std::mutex> lock(mu_);
  if (schedule.empty()) {
    schedules_.erase(host_id);
  } else {
    schedules_[host_id] = schedule;
  }
}

void Fleet::ForgetHost(const std::string& host_id) {
  std::lock_guard<std::mutex> lock(mu_);
  host_keys_.erase(host_id);
  schedules_.erase(host_id);
}

std::optional<hub::Secret> Fleet::AgentKey(const std::string& host_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return AgentKeyLocked(host_id);
}

std::optional<hub::Secret> Fleet::AgentKeyLocked(const std::string& host_id) const {
  auto it = host_keys_.find(host_id);
  if (it != host_keys_.end()) return it->second;
  return options_.agent_api_key;
}

AgentTarget Fleet::TargetLocked(const std::string& host_id, const std::string& url) const {
  return AgentTarget{host_id, url, AgentKeyLocked(host_id), options_.epoch ? options_.epoch() : 0};
}

std::vector<HostView> Fleet::Hosts() const {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowMs();
  std::vector<HostView> out;
  for (const auto& [id, h] : hosts_) {
    HostView v = h;
    v.lost = now - h.last_seen_ms > options_.host_timeout.count();
    v.enrolled = host_keys_.contains(id);
    auto schedule = schedules_.find(id);
    if (schedule != schedules_.end()) v.schedule = schedule->second;
    out.push_back(std::move(v));
  }
  return out;
}

std::optional<HostView> Fleet::HostLocked(const std::string& id) const {
  auto it = hosts_.find(id);
  if (it == hosts_.end()) return std::nullopt;
  return it->second;
}

void Fleet::NoteModelFiles(const std::string& model, const std::string& commit,
                           std::vector<Blob> blobs) {
  std::sort(blobs.begin(), blobs.end(), [](const Blob& a, const Blob& b) { return a.etag < b.etag; });
  blobs.erase(std::unique(blobs.begin(), blobs.end(),
                          [](const Blob& a, const Blob& b) { return a.etag == b.etag; }),
              blobs.end());
  CommitFiles files{model, std::move(blobs), 0};
  for (const Blob& b : files.blobs) files.bytes += b.size;
  std::lock_guard<std::mutex> lock(mu_);
  model_files_[commit] = std::move(files);
  tree_failed_at_.erase(commit);
}

// The tree listings placement lacks for `e` (fleet_decide.cc says which), fetched with the
// endpoint's token on the executor's "upstream" lane; the endpoint's starts wait meanwhile
// (tree_fetches_), and the loop is woken when they are in.
void Fleet::QueueTreeFetchLocked(const EndpointRecord& e, const std::vector<std::string>& commits) {
  if (!tree_fetches_.insert(e.id).second) return;
  const bool queued = executor_->Submit("upstream", [this, e, commits] {
    FetchTrees(e, commits);
    {
      std::lock_guard<std::mutex> lock(mu_);
      tree_fetches_.erase(e.id);
    }
    Wake();
  });
  if (!queued) tree_fetches_.erase(e.id);
}

void Fleet::FetchTrees(const EndpointRecord& e, const std::vector<std::string>& wanted) {
  auto ref = hub::ParseModelRef(e.repo);
  auto opened = WithSecrets(*options_.secrets, e);
  auto client = opened.ok()
                    ? UpstreamClient(options_.upstream, opened->hf_token, options_.ca_file)
                    : StatusOr<std::unique_ptr<hub::HubClient>>(opened.status());
  for (const std::string& commit : wanted) {
    Status s = !ref.ok() ? ref.status() : !client.ok() ? client.status() : Status::Ok();
    if (s.ok()) {
      auto tree = (*client)->ListTree(ref->repo, CommitSha::Parse(commit).value());
      if (tree.ok()) {
        std::vector<Blob> blobs;
        for (const hub::TreeFile& f : *tree) blobs.push_back({f.BlobEtag().str(), f.size});
        NoteModelFiles(e.repo, commit, std::move(blobs));
        continue;
      }
      s = tree.status();
    }
    spdlog::warn("controller: tree of {}@{} for placement: {}", e.repo, commit, s.ToString());
    std::lock_guard<std::mutex> lock(mu_);
    tree_failed_at_[commit] = NowMs();
  }
}

StatusOr<std::pair<int, std::string>> Fleet::AgentRequest(const std::string& host_id,
                                                          const std::string& method,
                                                          const std::string& path,
                                                          const std::string& body) {
  AgentTarget target;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto h = hosts_.find(host_id);
    if (h == hosts_.end()) return NotFoundError("no host " + host_id.substr(0, 128));
    target = TargetLocked(host_id, h->second.url);
  }
  auto res = agents_->Request(target, method, path, body);
  if (!res.ok()) {
    return UnavailableError("host " + host_id + " did not answer: " + res.status().message());
  }
  return std::pair<int, std::string>(res->status, res->body);
}

Status Fleet::CheckEntitlement(const EndpointRecord& e) {
  const int64_t now = NowMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto cached = entitlements_.Cached(e.id, now)) return *cached;
  }
  bool public_repo = false;
  Status answer = [&]() -> Status {
    if (options_.check_entitlement) return options_.check_entitlement(e);  // tests: no socket
    MC_ASSIGN_OR_RETURN(hub::ModelRef ref, hub::ParseModelRef(e.repo));  // any repo type
    MC_ASSIGN_OR_RETURN(CommitSha commit, CommitSha::Parse(e.commit));
    MC_ASSIGN_OR_RETURN(EndpointRecord opened, WithSecrets(*options_.secrets, e));
    MC_ASSIGN_OR_RETURN(auto client,
                        UpstreamClient(options_.upstream, opened.hf_token, options_.ca_file));
    MC_ASSIGN_OR_RETURN(hub::RepoInfo info,
                        client->GetRepoInfo(ref.repo, Revision::Parse(e.commit).value()));
    public_repo = !info.gated && !info.is_private;
    return CheckFileAccess(*client, ref.repo, commit, info);
  }();
  std::lock_guard<std::mutex> lock(mu_);
  return entitlements_.Record(e.id, e.hf_token.has_value(), answer, public_repo, now);
}

bool Fleet::UpstreamDown() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entitlements_.UpstreamDown();
}

void Fleet::QueueEntitlementCheckLocked(const EndpointRecord& e, int64_t now) {
  (void)now;  // the verdict is recorded with the time the check ends (entitlements.h)
  if (!entitlement_checks_.insert(e.id).second) return;  // one in flight already
  const bool queued = executor_->Submit("upstream", [this, e] {
    (void)CheckEntitlement(e);  // records its verdict in entitlements_
    {
      std::lock_guard<std::mutex> lock(mu_);
      entitlement_checks_.erase(e.id);
    }
    Wake();
  });
  if (!queued) entitlement_checks_.erase(e.id);
}

// ---- workers ----

void Fleet::SaveLocked(const WorkerRecord& w) {
  WorkerRecord row = w;
  row.epoch = options_.epoch ? options_.epoch() : 0;  // the store refuses an older one
  Status s = store_.PutWorker(row);
  if (!s.ok()) spdlog::error("controller: save worker {}: {}", w.id, s.ToString());
}

void Fleet::SetPhaseLocked(Live& w, WorkerPhase phase) {
  if (!w.rec.phase.empty() && w.phase == phase) return;
  const int64_t now = NowMs();
  if (w.ledger_row) {
    Status s = store_.CloseLedger(*w.ledger_row, now);
    if (!s.ok()) spdlog::error("controller: ledger: {}", s.ToString());
    w.ledger_row.reset();
  }
  w.phase = phase;
  w.rec.phase = std::string(PhaseName(phase));
  if (phase == kIdle) w.rec.idle_since_ms = now;
  if (IsLivePhase(phase)) {
    LedgerRow row{0,   w.rec.id,     w.rec.endpoint_id,      w.rec.tenant,
                  w.rec.phase, now, std::nullopt, phase != kInitializing};
    auto id = store_.AppendLedger(row);
    if (id.ok()) w.ledger_row = *id;
  } else {
    w.rec.stopped_ms = now;
  }
  SaveLocked(w.rec);
}

std::vector<std::string> Fleet::SwarmLocked(const std::string& commit,
                                            const std::string& except_host) const {
  // A download of the commit in flight (heartbeats), or a worker still initializing on it (its
  // ensure was sent; the next heartbeat may not show the download yet).
  std::set<std::string> ids;
  for (const auto& [hid, h] : hosts_) {
    for (const auto& d : h.downloads) {
      if (d.commit == commit) ids.insert(hid);
    }
  }
  for (const auto& [wid, w] : workers_) {
    if (w->rec.commit == commit && w->phase == kInitializing) ids.insert(w->rec.host_id);
  }
  std::vector<std::string> urls;
  for (const std::string& id : ids) {
    auto h = hosts_.find(id);
    if (id != except_host && h != hosts_.end() && !h->second.url.empty()) {
      urls.push_back(h->second.url);
    }
  }
  return urls;
}

// Long: one worker's start in the order the agent needs it (secrets opened, the record, the
// Runpod environment with the secret env, the swarm, then the agent call queued on the host's
// lane); split further, each part would pass the same dozen values.
Status Fleet::StartWorker(const EndpointRecord& sealed, const HostView& host,
                          const std::vector<std::string>& peers, int64_t queue_ms, bool hit) {
  MC_ASSIGN_OR_RETURN(const EndpointRecord e, WithSecrets(*options_.secrets, sealed),
                      "start worker");
  auto live = std::make_shared<Live>();
  const std::string id = "w-" + RandomAlnum(12);
  const std::string key = RandomAlnum(40);
  live->host_url = host.url;
  live->rec = WorkerRecord{.id = id,
                           .endpoint_id = e.id,
                           .tenant = e.tenant,
                           .host_id = host.id,
                           .commit = e.commit,
                           .phase = "",
                           .key_sha256 = Sha256Hex(key),
                           .message = "",
                           .created_ms = NowMs(),
                           .ready_ms = std::nullopt,
                           .started_ms = std::nullopt,
                           .first_take_ms = std::nullopt,
                           .last_ping_ms = std::nullopt,
                           .idle_since_ms = std::nullopt,
                           .stopped_ms = std::nullopt,
                           .cache_hit = hit,
                           .queue_ms = queue_ms,
                           .image_ms = std::nullopt,
                           .download_ms = std::nullopt};
  json env = json::parse(e.env_json, nullptr, false);
  if (!env.is_object()) env = json::object();
  if (e.secret_env) {  // write-only env: the worker gets it, the API never shows it
    json secret = json::parse(*e.secret_env, nullptr, false);
    if (secret.is_object()) {
      for (const auto& [k, v] : secret.items()) env[k] = v;
    }
  }
  const std::string base = options_.public_url + "/v2/" + e.id;
  const std::string gpu =
      "?gpu=" + net::PercentEncode(e.gpu_type.empty() ? std::string("any") : e.gpu_type);
  env["RUNPOD_WEBHOOK_GET_JOB"] = base + "/job-take/" + id + gpu;
  env["RUNPOD_WEBHOOK_POST_OUTPUT"] = base + "/job-done/" + id + "/$ID" + gpu;
  env["RUNPOD_WEBHOOK_POST_STREAM"] = base + "/job-stream/" + id + "/$ID" + gpu;
  env["RUNPOD_WEBHOOK_PING"] = base + "/ping/" + id;
  env["RUNPOD_PING_INTERVAL"] = std::to_string(options_.ping_interval.count());
  env["RUNPOD_AI_API_KEY"] = key;
  env["RUNPOD_POD_ID"] = id;
  env["RUNPOD_ENDPOINT_ID"] = e.id;
  env["RUNPOD_POD_HOSTNAME"] = host.id;
  env["RUNPOD_GPU_COUNT"] = std::to_string(e.gpu_count);
  // The SDK's fitness checks need the internet (a TCP connect to 8.8.8.8) and nvidia-smi.
  if (!env.contains("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS")) env["RUNPOD_SKIP_AUTO_SYSTEM_CHECKS"] = "true";
  live->endpoint_updated_ms = e.updated_ms;
  json body = WorkerBody(e, id, env, peers);  // parses the registry credentials once
  live->secrets = WorkerSecrets(e, env, key, body);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Issue 17 swarm: the hosts fetching this commit now share pieces with this one.
    if (!hit) {
      std::vector<std::string> swarm = SwarmLocked(e.commit, host.id);
      if (!swarm.empty()) body["swarm"] = swarm;
    }
    SetPhaseLocked(*live, kInitializing);
    workers_[id] = live;
    auto h = hosts_.find(host.id);
    if (h != hosts_.end()) h->second.gpus_free -= e.gpu_count;  // until its next heartbeat
  }
  AgentTarget target;
  {
    std::lock_guard<std::mutex> lock(mu_);
    target = TargetLocked(host.id, host.url);
  }
  // The agent's answer comes on the executor (the host's lane), never on the loop.
  const int64_t updated_ms = e.updated_ms;
  const bool queued =
      executor_->Submit(host.id, [this, live, target, doc = body.dump(), updated_ms, hit] {
        FinishStart(live, target.host_id, updated_ms, hit, agents_->StartWorker(target, doc));
      });
  if (!queued) {  // shutting down: the worker stays initializing; the next start asks its host
    return UnavailableError("start worker on " + host.id + ": the controller is stopping");
  }
  return Status::Ok();
}

void Fleet::FinishStart(const std::shared_ptr<Live>& live, const std::string& host_id,
                        int64_t endpoint_updated_ms, bool hit, const StatusOr<AgentReply>& res) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string& id = live->rec.id;
  if (!res.ok() || res->status != 202) {
    const std::string why = !res.ok() ? res.status().ToString()
                                      : "HTTP " + std::to_string(res->status) + " " +
                                            res->body.substr(0, 300);
    spdlog::warn("controller: start worker {} on {}: {}", id, host_id, why);
    if (!IsLivePhase(live->phase)) return;
    if (live->phase != kInitializing) {  // stopped while its start was in flight
      SetPhaseLocked(*live, kStopped);
      return;
    }
    live->rec.message = "the agent refused the worker: " + why;
    SetPhaseLocked(*live, kPhaseFailed);
    NoteFailureLocked(live->rec.endpoint_id, endpoint_updated_ms,
                      {.worker_id = id,
                       .reason = "host " + host_id + " refused the worker: " + why,
                       .exit_code = std::nullopt,
                       .log_tail = "",
                       .at_ms = NowMs()});
    return;
  }
  spdlog::info("controller: worker {} of {} placed on {} ({})", id, live->rec.endpoint_id,
               host_id, hit ? "cache hit" : "download first");
  // Stopped while its start was in flight: the stop may have reached the agent first.
  if (live->phase == kStopping) SubmitStopLocked(*live);
  StartWatcherLocked(id);
}

void Fleet::Watch(std::string worker_id) {
  int failures = 0;
  while (true) {
    AgentTarget target;
    WorkerPhase phase = kInitializing;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      auto it = workers_.find(worker_id);
      if (it == workers_.end() || !IsLivePhase(it->second->phase)) return;
      // The host's address as its latest heartbeat says (it may have moved since the start).
      auto host = hosts_.find(it->second->rec.host_id);
      if (host != hosts_.end()) it->second->host_url = host->second.url;
      target = TargetLocked(it->second->rec.host_id, it->second->host_url);
      phase = it->second->phase;
    }
    const std::string until = phase == kInitializing ? "running,exited,failed" : "exited,failed";
    auto res = agents_->WatchWorker(target, worker_id, until);
    json doc = res.ok() ? json::parse(res->body, nullptr, false) : json();
    if (res.ok() && res->status == 404) {  // the host does not know it (anymore): it is gone
      doc = json{{"state", "exited"}, {"message", "unknown to its host"}};
    } else if (!res.ok() || res->status != 200 || !doc.is_object()) {
      if (++failures >= 30) {  // about 30 s without an answer from the agent
        {
          std::lock_guard<std::mutex> lock(mu_);
          auto it = workers_.find(worker_id);
          if (it != workers_.end()) {
            it->second->rec.message = "lost contact with its host";
            SetPhaseLocked(*it->second, kPhaseFailed);
          }
        }
        jobs_.RequeueWorker(worker_id, "its host stopped answering");
        return;
      }
      std::unique_lock<std::mutex> lock(mu_);
      clock_.WaitFor(stopping_cv_, lock, std::chrono::seconds(1), [&] { return stopping_; });
      continue;
    }
    failures = 0;
    const std::string state = doc.value("state", "");
    if (state == "running") {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = workers_.find(worker_id);
      if (it != workers_.end() && it->second->phase == kInitializing) {
        WorkerRunningLocked(*it->second, doc);
      }
    } else if (state == "exited" || state == "failed") {
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = workers_.find(worker_id);
        if (it != workers_.end()) WorkerEndedLocked(*it->second, state, doc);
      }
      jobs_.RequeueWorker(worker_id, "worker " + worker_id + " ended");
      return;
    }
  }
}

void Fleet::WorkerRunningLocked(Live& w, const json& doc) {
  w.rec.ready_ms = w.rec.started_ms = NowMs();
  // The agent's breakdown of the cold start: image pull and model download, in parallel.
  const json cold = doc.value("cold_start", json::object());
  if (cold.is_object()) {
    for (auto [key, field] : {std::pair{"image_ms", &WorkerRecord::image_ms},
                              std::pair{"download_ms", &WorkerRecord::download_ms}}) {
      if (cold.contains(key) && cold[key].is_number_integer()) {
        w.rec.*field = cold[key].get<int64_t>();
      }
    }
  }
  SetPhaseLocked(w, kStarting);
}

void Fleet::WorkerEndedLocked(Live& w, const std::string& state, const json& doc) {
  const WorkerPhase before = w.phase;
  if (w.rec.message.empty()) {
    w.rec.message = doc.value("message", "");
    if (w.rec.message.empty() && doc["exit_code"].is_number()) {
      w.rec.message = "exited with code " + std::to_string(doc["exit_code"].get<int>());
    }
  }
  SetPhaseLocked(w, state == "failed" ? kPhaseFailed : kStopped);
  NoteWorkerEndLocked(w, before, doc);
}

void Fleet::StopWorker(const std::string& worker_id, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || !IsLivePhase(it->second->phase)) return;
  it->second->rec.message = reason;
  SetPhaseLocked(*it->second, kStopping);
  spdlog::info("controller: stopping worker {}: {}", worker_id, reason);
  SubmitStopLocked(*it->second);
}

// The agent's DELETE on the host's lane of the executor: the caller (the loop, an HTTP handler)
// does not wait for it. A worker the agent does not stop is found by its watcher (it never ends)
// and its host's heartbeats, as before.
void Fleet::SubmitStopLocked(const Live& w) {
  const AgentTarget target = TargetLocked(w.rec.host_id, w.host_url);
  executor_->Submit(w.rec.host_id, [this, target, id = w.rec.id] {
    auto res = agents_->StopWorker(target, id, options_.stop_grace);
    if (!res.ok() || res->status >= 300) {
      spdlog::warn("controller: stop worker {}: {}", id,
                   res.ok() ? "HTTP " + std::to_string(res->status) : res.status().ToString());
    }
  });
}

// Long: the pass's three parts (the snapshot under the lock, Decide, carrying the actions
// out), which share the snapshot's endpoints and the decision.
void Fleet::Tick(const std::vector<EndpointRecord>& endpoints) {
  const int64_t now = NowMs();
  jobs_.RequeueOrphans([this](const std::string& id) { return IsLive(id); });
  FleetSnapshot snap;
  snap.now_ms = now;
  snap.mono = clock_.Monotonic();
  snap.endpoints.reserve(endpoints.size());
  std::map<std::string, const EndpointRecord*> by_id;
  for (const EndpointRecord& e : endpoints) {
    by_id[e.id] = &e;
    EndpointFacts& f = snap.endpoints.emplace_back();
    f.record = e;
    f.load = jobs_.Load(e.id);
    // A commit update (rollout.h): drains and stops happen here; its one worker to start and its
    // one worker above workersMax go into the pass.
    f.rollout_starts = static_cast<int>(RolloutPass(e));
    if (auto r = Rollout(e.id)) {
      f.rollout_active = r->state != "done";
      // A new worker starting or an old one draining: one worker above workersMax.
      f.rollout_room = r->state == "starting" || r->state == "draining" ? 1 : 0;
    }
  }
  Decision d;
  {
    std::lock_guard<std::mutex> lock(mu_);
    snap.hosts = &hosts_;
    snap.schedules = &schedules_;
    snap.model_files = &model_files_;
    snap.tree_failed_at = &tree_failed_at_;
    snap.upstream_down = entitlements_.UpstreamDown();
    for (const auto& [id, w] : workers_) {
      if (!IsLivePhase(w->phase)) continue;
      std::optional<int64_t> jobless;  // running with no job left: since when
      if (w->phase == kRunning && jobs_.HeldBy(id) == 0) {
        jobless = jobless_since_.try_emplace(id, now).first->second;
      } else {
        jobless_since_.erase(id);
      }
      snap.workers.push_back({id, w->rec.endpoint_id, w->rec.host_id,
                              w->phase,
                              w->rec.last_ping_ms, w->rec.idle_since_ms, jobless});
    }
    std::erase_if(jobless_since_, [&](const auto& entry) { return !workers_.contains(entry.first); });
    for (EndpointFacts& f : snap.endpoints) {
      const std::string& id = f.record.id;
      if (auto b = backoff_.find(id); b != backoff_.end()) {
        if (b->second.endpoint_updated_ms != f.record.updated_ms) {
          backoff_.erase(b);  // changed since its workers failed (a fixed command): try at once
        } else {
          f.backoff = b->second.backoff;
        }
      }
      f.entitlement = entitlements_.Cached(id, now);
      f.entitlement_checking = entitlement_checks_.contains(id);
      f.trees_fetching = tree_fetches_.contains(id);
      if (auto t = throttled_.find(id); t != throttled_.end()) f.throttled_before = t->second;
    }
    d = Decide(snap, options_);
    for (const auto& [id, n] : d.throttled) throttled_[id] = n;
    // The slow parts go to the executor: the loop never waits on the upstream.
    for (const std::string& id : d.entitlement_checks) QueueEntitlementCheckLocked(*by_id[id], now);
    for (const FetchTreesAction& t : d.tree_fetches) QueueTreeFetchLocked(*by_id[t.endpoint_id], t.commits);
  }
  for (const std::string& w : d.warnings) spdlog::warn("controller: {}", w);
  for (const StopAction& a : d.stops) {
    if (a.requeue) jobs_.RequeueWorker(a.worker_id, "worker " + a.worker_id + " stopped pinging");
    StopWorker(a.worker_id, a.reason);
  }
  for (const PlaceAction& p : d.places) {
    std::vector<std::string> peers;
    std::optional<HostView> host;
    {
      std::lock_guard<std::mutex> lock(mu_);
      host = HostLocked(p.host_id);
      for (const std::string& peer : p.peers) {
        if (auto h = hosts_.find(peer); h != hosts_.end()) peers.push_back(h->second.url);
      }
    }
    if (!host) continue;
    Status s = StartWorker(*by_id[p.endpoint_id], *host, peers, p.queue_ms, p.cache_hit);
    if (!s.ok()) spdlog::warn("controller: {}", s.ToString());
  }
}

// ---- worker protocol hooks ----

StatusOr<WorkerRecord> Fleet::Authenticate(const std::string& endpoint_id,
                                           const std::string& worker_id,
                                           const std::string& authorization) const {
  std::string key = authorization;
  if (key.starts_with("Bearer ")) key = key.substr(7);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second->rec.endpoint_id != endpoint_id) {
    return NotFoundError("no worker " + worker_id.substr(0, 40) + " on this endpoint");
  }
  if (!ConstantTimeEquals(Sha256Hex(key), it->second->rec.key_sha256)) {
    return UnauthenticatedError("wrong worker key");
  }
  return it->second->rec;
}

void Fleet::OnTake(const std::string& worker_id, size_t jobs_taken) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || !IsLivePhase(it->second->phase)) return;
  Live& w = *it->second;
  if (w.phase == kStopping) return;
  if (!w.rec.first_take_ms) {
    backoff_.erase(w.rec.endpoint_id);  // a ready worker: its endpoint's start works
    w.rec.first_take_ms = NowMs();
    if (!w.rec.started_ms) w.rec.started_ms = w.rec.ready_ms = w.rec.first_take_ms;
  }
  if (jobs_taken > 0) {
    SetPhaseLocked(w, kRunning);
  } else if (w.phase != kRunning || jobs_.HeldBy(worker_id) == 0) {
    SetPhaseLocked(w, kIdle);
  }
  SaveLocked(w.rec);
}

void Fleet::OnJobDone(const std::string& worker_id, bool stop_pod) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = workers_.find(worker_id);
    if (it == workers_.end()) return;
    if (it->second->phase == kRunning && jobs_.HeldBy(worker_id) == 0) {
      SetPhaseLocked(*it->second, kIdle);
    }
  }
  if (stop_pod) StopWorker(worker_id, "the worker asked to be recycled (stopPod)");
}

void Fleet::OnPing(const std::string& worker_id, bool unhealthy) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  it->second->rec.last_ping_ms = NowMs();
  it->second->unhealthy = unhealthy;
}

int Fleet::Unhealthy(const std::string& endpoint_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& [id, w] : workers_) {
    if (w->rec.endpoint_id == endpoint_id && IsLivePhase(w->phase) && w->unhealthy) ++n;
  }
  return n;
}

int Fleet::Throttled(const std::string& endpoint_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = throttled_.find(endpoint_id);
  return it == throttled_.end() ? 0 : it->second;
}

bool Fleet::AcceptsJobs(const std::string& worker_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(worker_id);
  return it != workers_.end() && IsLivePhase(it->second->phase) &&
         it->second->phase != kStopping && !draining_.contains(worker_id);
}

bool Fleet::IsLive(const std::string& worker_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(worker_id);
  return it != workers_.end() && IsLivePhase(it->second->phase);
}

std::vector<WorkerRecord> Fleet::Workers(const std::string& endpoint_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WorkerRecord> out;
  for (const auto& [id, w] : workers_) {
    if (endpoint_id.empty() || w->rec.endpoint_id == endpoint_id) out.push_back(w->rec);
  }
  return out;
}

std::vector<ColdStart> Fleet::ColdStarts(const std::string& endpoint_id) const {
  std::vector<ColdStart> out;
  for (const WorkerRecord& w : Workers(endpoint_id)) {
    if (!w.first_take_ms || !w.started_ms) continue;
    ColdStart c{w.id, w.cache_hit, w.queue_ms, *w.started_ms - w.created_ms,
                *w.first_take_ms - *w.started_ms, 0, w.image_ms, w.download_ms};
    c.total_ms = c.queue_ms + c.download_ms + c.start_ms;
    out.push_back(c);
  }
  return out;
}

void Fleet::ForgetEndedBefore(int64_t cutoff_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(workers_, [&](const auto& entry) {
    const Live& w = *entry.second;
    return !IsLivePhase(w.phase) && w.rec.stopped_ms && *w.rec.stopped_ms < cutoff_ms;
  });
}

void Fleet::StopEndpoint(const std::string& endpoint_id) {
  std::vector<std::string> ids;
  for (const WorkerRecord& w : Workers(endpoint_id)) {
    if (IsLivePhase(ParsePhase(w.phase).value_or(kPhaseFailed))) ids.push_back(w.id);
  }
  for (const std::string& id : ids) StopWorker(id, "the endpoint was deleted");
  std::lock_guard<std::mutex> lock(mu_);
  backoff_.erase(endpoint_id);
}

Status Fleet::Load() {
  MC_ASSIGN_OR_RETURN(std::vector<HostRecord> hosts, store_.ListHosts());
  MC_ASSIGN_OR_RETURN(std::vector<WorkerRecord> workers, store_.ListWorkers("", true));
  // Each live worker's open phase, from the open rows alone (not every ledger row).
  MC_ASSIGN_OR_RETURN(LedgerSummary ledger, store_.SummarizeLedger());
  std::map<std::string, int64_t> open_rows;
  for (const LedgerRow& r : ledger.open) open_rows[r.worker_id] = r.id;
  MC_ASSIGN_OR_RETURN(std::vector<HostEnrollment> enrolled, store_.ListHostEnrollments());
  std::lock_guard<std::mutex> lock(mu_);
  for (const HostEnrollment& e : enrolled) {
    auto credential = options_.secrets->Open(e.credential, HostCredentialContext(e.host_id));
    if (credential.ok()) {
      host_keys_.insert_or_assign(e.host_id, hub::Secret(std::move(*credential)));
    } else {
      spdlog::error("controller: host {}: its credential does not open ({}); enroll it again",
                    e.host_id, credential.status().ToString());
    }
    if (!e.schedule.empty()) schedules_[e.host_id] = e.schedule;
  }
  for (const HostRecord& h : hosts) {
    json doc = json::parse(h.document_json, nullptr, false);
    auto view = ParseHost(doc, h.last_seen_ms);
    if (view.ok()) hosts_[view->id] = std::move(*view);
  }
  for (WorkerRecord& w : workers) {
    auto live = std::make_shared<Live>();
    if (auto open = open_rows.find(w.id); open != open_rows.end()) live->ledger_row = open->second;
    auto host = HostLocked(w.host_id);
    live->host_url = host ? host->url : "";
    live->phase = ParsePhase(w.phase).value_or(kPhaseFailed);  // the store's name, typed
    live->rec = std::move(w);
    // Pings are kept in memory only: a controller that just started (or was just elected) has
    // heard none yet, so a worker's silence counts from now, not from its last saved phase.
    if (live->rec.last_ping_ms) live->rec.last_ping_ms = NowMs();
    const std::string id = live->rec.id;
    workers_[id] = live;
    if (!live->host_url.empty()) StartWatcherLocked(id);
  }
  return Status::Ok();
}

// ---- placement back-off (placement_backoff.h) ----

void Fleet::NoteWorkerEndLocked(Live& w, WorkerPhase phase_before, const json& doc) {
  const auto number = [&](const char* key) {
    const auto it = doc.find(key);
    return it != doc.end() && it->is_number_integer() ? std::optional<int>(it->get<int>())
                                                      : std::nullopt;
  };
  w.exit = WorkerExit{number("exit_code"), number("signal")};
  // Only a worker that never became ready and that nobody stopped says its start is broken.
  if (phase_before != kInitializing && phase_before != kStarting) return;
  const auto tail = doc.find("log_tail");
  PlacementFailure f;
  f.worker_id = w.rec.id;
  f.exit_code = w.exit.exit_code;
  f.reason = "worker " + w.rec.id + " ended before it was ready" +
             (w.rec.message.empty() ? "" : ": " + w.rec.message);
  if (tail != doc.end() && tail->is_string()) {
    f.log_tail = RedactSecrets(
        LastLines(tail->get<std::string>(), kLogTailLines, kLogTailBytes), w.secrets);
  }
  f.at_ms = NowMs();
  NoteFailureLocked(w.rec.endpoint_id, w.endpoint_updated_ms, std::move(f));
}

void Fleet::NoteFailureLocked(const std::string& endpoint_id, int64_t endpoint_updated_ms,
                              PlacementFailure failure) {
  auto it = backoff_.try_emplace(endpoint_id, EndpointBackoff{
                                                  PlacementBackoff(options_.placement_backoff),
                                                  endpoint_updated_ms})
                .first;
  const std::string reason = failure.reason;
  it->second.backoff.Failed(clock_.Monotonic(), std::move(failure));
  spdlog::warn("controller: {}: {}; next worker in {} ms (failure {} in a row)", endpoint_id,
               reason, it->second.backoff.delay().count(), it->second.backoff.failures());
}

std::optional<BackoffView> Fleet::Backoff(const std::string& endpoint_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = backoff_.find(endpoint_id);
  if (it == backoff_.end() || !it->second.backoff.backing_off()) return std::nullopt;
  const PlacementBackoff& b = it->second.backoff;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      b.retry_at() - clock_.Monotonic());
  return BackoffView{b.failures(), b.delay().count(),
                     NowMs() + std::max<int64_t>(0, left.count()), b.last()};
}

std::map<std::string, WorkerExit> Fleet::Exits(const std::string& endpoint_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, WorkerExit> out;
  for (const auto& [id, w] : workers_) {
    if ((endpoint_id.empty() || w->rec.endpoint_id == endpoint_id) && !IsLivePhase(w->phase)) {
      out[id] = w->exit;
    }
  }
  return out;
}

}  // namespace mc::controller
