#include "controller/replicas.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>

#include "controller/endpoint_secrets.h"

namespace mc::controller {

using json = nlohmann::json;

namespace {

using Key = std::pair<std::string, std::string>;  // host id, commit

bool Complete(const HostView& h, const std::string& commit) {
  return std::any_of(h.snapshots.begin(), h.snapshots.end(),
                     [&](const HostView::Snapshot& s) { return s.commit == commit && s.complete; });
}

bool Downloading(const HostView& h, const std::string& commit) {
  return std::any_of(h.downloads.begin(), h.downloads.end(),
                     [&](const HostView::Download& d) { return d.commit == commit; });
}

// A worker's or the operator's pin on the host's snapshot of `commit`.
bool PinnedByOthers(const HostView& h, const std::string& commit) {
  for (const HostView::Snapshot& s : h.snapshots) {
    if (s.commit != commit) continue;
    for (const std::string& owner : s.pinned_by) {
      if (owner != kFleetPinOwner) return true;
    }
  }
  return false;
}

uint64_t Room(const HostView& h) {
  const uint64_t taken = h.used + h.reserved;
  const uint64_t free = h.capacity > taken ? h.capacity - taken : 0;
  return free + h.freeable;
}

bool Eligible(const HostView& h, const ReplicaWant& w) {
  return !h.lost && h.schedule != "draining" && (w.gpu_type.empty() || h.gpu_type == w.gpu_type) &&
         h.containers == w.containers;
}

}  // namespace

std::vector<ReplicaWant> ReplicaWants(const std::vector<EndpointRecord>& endpoints) {
  std::vector<ReplicaWant> wants;
  for (const EndpointRecord& e : endpoints) {
    if (e.commit.empty() || e.repo.empty()) continue;
    wants.push_back({e.id,
                     e.repo,
                     e.commit,
                     e.gpu_type,
                     !e.image.empty(),
                     std::clamp(e.cached_replicas, 0, kMaxCachedReplicas),
                     {}});
  }
  return wants;
}

FleetPins HeartbeatPins(const std::vector<HostView>& hosts) {
  FleetPins pins;
  for (const HostView& h : hosts) {
    for (const HostView::Snapshot& s : h.snapshots) {
      if (std::find(s.pinned_by.begin(), s.pinned_by.end(), kFleetPinOwner) != s.pinned_by.end()) {
        pins[{h.id, s.commit}] = s.model;
      }
    }
  }
  return pins;
}

// Long: one pass over the wants with the three cases (last copy, kept copies, new copies) and
// the releases; each needs the same host lookups and the growing `keep` set.
std::vector<ReplicaAction> PlanReplicas(const std::vector<ReplicaWant>& wants,
                                        const std::vector<HostView>& hosts, const FleetPins& pins) {
  std::vector<const HostView*> by_id;
  for (const HostView& h : hosts) by_id.push_back(&h);
  std::sort(by_id.begin(), by_id.end(),
            [](const HostView* a, const HostView* b) { return a->id < b->id; });
  std::set<Key> keep;
  std::vector<ReplicaAction> out;
  std::set<std::tuple<int, std::string, std::string>> sent;  // no action twice
  auto emit = [&](ReplicaAction::Kind kind, const HostView& h, const ReplicaWant& w) {
    if (sent.emplace(static_cast<int>(kind), h.id, w.commit).second) {
      out.push_back({kind, h.id, w.repo, w.commit, w.endpoint_id});
    }
  };
  auto held = [&](const HostView& h, const std::string& commit) {
    return pins.contains({h.id, commit}) || keep.contains({h.id, commit});
  };
  for (const ReplicaWant& w : wants) {
    for (const HostView* h : by_id) {  // a rollout: the new commit where the old one runs
      if (h->lost || std::find(w.rollout_hosts.begin(), w.rollout_hosts.end(), h->id) ==
                         w.rollout_hosts.end()) {
        continue;
      }
      if (!held(*h, w.commit)) {
        emit(ReplicaAction::Kind::kAdd, *h, w);
      } else if (!Complete(*h, w.commit) && !Downloading(*h, w.commit)) {
        emit(ReplicaAction::Kind::kEnsure, *h, w);
      }
      keep.insert({h->id, w.commit});
    }
    if (w.replicas <= 0) {
      // The fleet's last copy: one live host that holds it complete stays pinned (a copy we pinned
      // before first). Nothing is downloaded for it, and no pin is added while a worker (or the
      // operator) pins a copy already.
      const HostView* chosen = nullptr;
      bool pinned_by_others = false;
      for (const HostView* h : by_id) {
        if (h->lost || !Complete(*h, w.commit)) continue;
        if (held(*h, w.commit)) {
          chosen = h;
          pinned_by_others = false;
          break;
        }
        pinned_by_others |= PinnedByOthers(*h, w.commit);
        if (!chosen) chosen = h;
      }
      if (!chosen || pinned_by_others) continue;
      if (!held(*chosen, w.commit)) emit(ReplicaAction::Kind::kAdd, *chosen, w);
      keep.insert({chosen->id, w.commit});
      continue;
    }
    std::vector<const HostView*> holders, others;
    for (const HostView* h : by_id) {
      if (!Eligible(*h, w)) continue;
      (held(*h, w.commit) ? holders : others).push_back(h);
    }
    // Complete copies first: they are the ones kept when there are too many.
    std::stable_sort(holders.begin(), holders.end(), [&](const HostView* a, const HostView* b) {
      return Complete(*a, w.commit) > Complete(*b, w.commit);
    });
    size_t kept = 0;
    for (const HostView* h : holders) {
      if (kept == static_cast<size_t>(w.replicas)) break;
      ++kept;
      keep.insert({h->id, w.commit});
      if (!Complete(*h, w.commit) && !Downloading(*h, w.commit)) {
        emit(ReplicaAction::Kind::kEnsure, *h, w);
      }
    }
    auto rank = [&](const HostView* h) {
      return std::make_tuple(Complete(*h, w.commit) ? 0 : 1, Downloading(*h, w.commit) ? 0 : 1);
    };
    std::stable_sort(others.begin(), others.end(), [&](const HostView* a, const HostView* b) {
      if (rank(a) != rank(b)) return rank(a) < rank(b);
      return Room(*a) > Room(*b);
    });
    for (const HostView* h : others) {
      if (kept == static_cast<size_t>(w.replicas)) break;
      ++kept;
      keep.insert({h->id, w.commit});
      emit(ReplicaAction::Kind::kAdd, *h, w);
    }
  }
  for (const auto& [key, repo] : pins) {
    if (keep.contains(key)) continue;
    auto h = std::find_if(by_id.begin(), by_id.end(),
                          [&](const HostView* v) { return v->id == key.first; });
    if (h == by_id.end() || (*h)->lost) continue;  // unreachable: released once it is back
    out.push_back({ReplicaAction::Kind::kRelease, key.first, repo, key.second, ""});
  }
  return out;
}

ReplicaKeeper::ReplicaKeeper(ControllerStore& store, Fleet& fleet, Clock& clock,
                             std::shared_ptr<const SecretBox> secrets, ReplicaOptions options)
    : store_(store),
      fleet_(fleet),
      clock_(clock),
      secrets_(std::move(secrets)),
      options_(options) {}

ReplicaKeeper::~ReplicaKeeper() { Stop(); }

void ReplicaKeeper::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopped_) {
      lock.unlock();
      Pass();
      lock.lock();
      clock_.WaitUntil(cv_, lock, clock_.Monotonic() + options_.interval, [&] { return stopped_; });
    }
  });
}

void ReplicaKeeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ReplicaKeeper::Pass() {
  auto endpoints = store_.ListEndpoints();
  if (!endpoints.ok()) {
    spdlog::warn("controller: replicas: list endpoints: {}", endpoints.status().ToString());
    return;
  }
  std::map<std::string, EndpointRecord> by_id;
  for (const EndpointRecord& e : *endpoints) by_id[e.id] = e;
  const std::vector<HostView> hosts = fleet_.Hosts();
  FleetPins pins = HeartbeatPins(hosts);
  for (const auto& [key, repo] : pinned_) pins.emplace(key, repo);
  std::vector<ReplicaWant> wants = ReplicaWants(*endpoints);
  for (ReplicaWant& w : wants) {
    for (const WorkerRecord& r : fleet_.Workers(w.endpoint_id)) {
      if (r.commit != w.commit && r.phase != "stopped" && r.phase != "failed") {
        w.rollout_hosts.push_back(r.host_id);
      }
    }
  }
  for (const ReplicaAction& a : PlanReplicas(wants, hosts, pins)) {
    Apply(a, by_id, hosts);
  }
}

// Long: the three actions against the agent's API (pin, ensure with the endpoint's token and
// the peers that hold the commit, unpin), each with its error handling and record keeping.
void ReplicaKeeper::Apply(const ReplicaAction& a,
                          const std::map<std::string, EndpointRecord>& endpoints,
                          const std::vector<HostView>& hosts) {
  const Key key{a.host_id, a.commit};
  const json target{{"model", a.repo}, {"revision", a.commit}, {"owner", kFleetPinOwner}};
  if (a.kind == ReplicaAction::Kind::kRelease) {
    auto res = fleet_.AgentRequest(a.host_id, "DELETE", "/v1/pins", target.dump());
    if (res.ok() && (res->first == 200 || res->first == 404)) {
      spdlog::info("controller: replicas: released {}@{} on {}", a.repo, a.commit, a.host_id);
      pinned_.erase(key);
      ensured_at_.erase(key);
    }
    return;
  }
  if (a.kind == ReplicaAction::Kind::kAdd) {
    auto res = fleet_.AgentRequest(a.host_id, "POST", "/v1/pins", target.dump());
    if (!res.ok() || res->first != 200) {
      spdlog::warn("controller: replicas: pin {}@{} on {}: {}", a.repo, a.commit, a.host_id,
                   res.ok()
                       ? "HTTP " + std::to_string(res->first) + " " + res->second.substr(0, 200)
                       : res.status().ToString());
      return;
    }
    pinned_[key] = a.repo;
    spdlog::info("controller: replicas: {}@{} kept on {} (endpoint {})", a.repo, a.commit,
                 a.host_id, a.endpoint_id);
  }
  const HostView* host = nullptr;
  std::vector<std::string> peers;
  for (const HostView& h : hosts) {
    if (h.id == a.host_id) {
      host = &h;
    } else if (!h.lost && Complete(h, a.commit)) {
      peers.push_back(h.url);
    }
  }
  if (!host || Complete(*host, a.commit)) return;  // a hit: nothing to fetch
  const int64_t now =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Monotonic().time_since_epoch())
          .count();
  auto last = ensured_at_.find(key);
  if (a.kind == ReplicaAction::Kind::kEnsure && last != ensured_at_.end() &&
      now - last->second < options_.ensure_retry.count()) {
    return;
  }
  auto e = endpoints.find(a.endpoint_id);
  if (e == endpoints.end()) return;
  Status entitled = fleet_.CheckEntitlement(e->second);  // cached; gated repos need the token
  if (!entitled.ok()) {
    spdlog::warn("controller: replicas: no prefetch of {} on {}: {}", a.repo, a.host_id,
                 entitled.ToString());
    return;
  }
  EndpointRecord opened = e->second;
  if (!OpenEndpointSecrets(*secrets_, opened).ok()) return;
  json body{{"model", a.repo}, {"revision", a.commit}};
  const json models = json::parse(opened.models_json, nullptr, false);
  if (models.is_array() && !models.empty() && models[0].is_object()) {
    for (const char* k : {"include", "exclude"}) {
      if (models[0].contains(k) && models[0][k].is_array() && !models[0][k].empty()) {
        body[k] = models[0][k];
      }
    }
  }
  if (!peers.empty()) body["peers"] = peers;
  if (opened.hf_token) body["token"] = *opened.hf_token;
  ensured_at_[key] = now;
  auto res = fleet_.AgentRequest(a.host_id, "POST", "/v1/ensure", body.dump());
  if (!res.ok() || (res->first != 200 && res->first != 202)) {
    spdlog::warn("controller: replicas: prefetch {}@{} on {}: {}", a.repo, a.commit, a.host_id,
                 res.ok() ? "HTTP " + std::to_string(res->first) + " " + res->second.substr(0, 200)
                          : res.status().ToString());
  }
}

}  // namespace mc::controller
