#include "agent/images.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/registry_access.h"
#include "mc/cache/blob_hasher.h"
#include "mc/common/byte_count.h"

namespace mc::agent {

struct Images::Pull {
  ImageRef ref;
  std::optional<RegistryAuth> auth;
  ImageState state;  // guarded by Images::mu_
  std::vector<Waiter> waiters;
  std::atomic<bool> cancel{false};
  std::atomic<bool> skip_manifest{false};  // no pull after all, or shutting down
  bool done = false;  // the thread has returned; guarded by Images::mu_
};

namespace {

// Who asks, as the registry would see it: "" for no credentials, else a hash of registry, user
// and password (never the password itself).
std::string Identity(const ImageRef& ref, const std::optional<RegistryAuth>& auth) {
  if (!auth) return "";
  return cache::Sha256Hex(ref.domain() + "\n" + auth->username + "\n" +
                   std::string(auth->password.Reveal()));
}

std::string AccessKey(const ImageRef& ref, const std::string& identity) {
  return ref.str() + "\n" + identity;
}

// Built on the host (podman build/import name them so): in no registry, nothing to ask.
bool NeedsAccessCheck(const ImageRef& ref) { return ref.domain() != "localhost"; }

}  // namespace

ImageGcPlan PlanImageGc(std::vector<ImageGcCandidate> images, uint64_t need, uint64_t capacity) {
  ImageGcPlan plan;
  uint64_t used = 0;
  for (const auto& i : images) used += i.size;
  std::sort(images.begin(), images.end(),
            [](const auto& a, const auto& b) { return a.last_use < b.last_use; });
  auto fits = [&] { return used - plan.freed + need <= capacity; };
  for (const auto& i : images) {
    if (fits()) break;
    if (i.in_use || !i.removable) continue;
    plan.remove.push_back(i.reference);
    plan.freed += i.size;
  }
  plan.fits = fits();
  return plan;
}

Images::Images(ImagesOptions options, const Engine& engine, StateDb& db, Clock& clock)
    : options_(std::move(options)), engine_(engine), db_(db), clock_(clock) {
  if (!options_.check_access) {
    options_.check_access = [&engine](const ImageRef& ref, const RegistryAuth* auth) {
      return CheckRegistryAccess(ref, auth, RegistryAccessOptions{.insecure = engine.IsInsecure(ref)});
    };
  }
}

Images::~Images() { Shutdown(); }

void Images::Recover() {
  auto rows = db_.ListImages();
  if (!rows.ok()) {
    spdlog::warn("agent: read images: {}", rows.status().ToString());
    return;
  }
  auto present = engine_.ListImages();
  std::set<std::string> ids;
  if (present.ok()) {
    for (const LocalImage& image : *present) ids.insert(image.id);
  } else {
    spdlog::warn("agent: list the engine's images: {}", present.status().ToString());
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const ImageRow& row : *rows) {
    if (present.ok() && ids.count(row.image_id) == 0) {
      Status s = db_.DeleteImage(row.reference);
      if (!s.ok()) spdlog::warn("agent: forget image {}: {}", row.reference, s.ToString());
      continue;
    }
    known_[row.reference] = Known{row.image_id, row.digest, row.size, row.pulled, row.last_use};
  }
}

ImageState Images::EnsureThen(const ImageRef& ref, std::optional<RegistryAuth> auth,
                              Callback done) {
  const std::string key = ref.str();
  ImageState now;
  std::unique_lock<std::mutex> lock(mu_);
  if (auto k = known_.find(key); k != known_.end()) {
    now = ImageState{.phase = ImageState::Phase::kReady, .reference = key, .hit = true,
                     .image_id = k->second.image_id, .digest = k->second.digest,
                     .size = k->second.size, .progress = {}, .started = clock_.Now(),
                     .ended = clock_.Now(), .error = Status::Ok()};
    const std::string identity = Identity(ref, auth);
    auto denied = denied_.find(AccessKey(ref, identity));
    if (!AdmittedLocked(ref, identity) && denied != denied_.end() &&
        clock_.Now() - *denied->second.ended < options_.failure_ttl) {
      now = denied->second;
    } else if (!AdmittedLocked(ref, identity) && shutting_down_) {
      now.phase = ImageState::Phase::kFailed;
      now.error = UnavailableError("the agent is stopping");
    } else if (!AdmittedLocked(ref, identity)) {
      // Ask the registry on a thread of its own: the caller may be an API thread.
      auto check = std::make_shared<Pull>();
      check->ref = ref;
      ImageState checking = now;
      checking.phase = ImageState::Phase::kPulling;
      checking.ended.reset();
      SpawnLocked(check, [this, ref, auth = std::move(auth), ready = now,
                          done = std::move(done)]() mutable {
        ImageState s = Admit(ref, auth, ready);
        if (done) done(s);
      });
      return checking;
    }
  } else if (auto f = failures_.find(key);
             f != failures_.end() && clock_.Now() - *f->second.state.ended < options_.failure_ttl &&
             f->second.auth == auth) {
    now = f->second.state;
  } else if (auto p = pulls_.find(key); p != pulls_.end()) {
    p->second->waiters.push_back(Waiter{std::move(done), std::move(auth)});
    return p->second->state;
  } else if (shutting_down_) {
    now.phase = ImageState::Phase::kFailed;
    now.reference = key;
    now.error = UnavailableError("the agent is stopping");
  } else {
    failures_.erase(key);
    auto pull = std::make_shared<Pull>();
    pull->ref = ref;
    pull->auth = auth;
    pull->state.reference = key;
    pull->state.started = clock_.Now();
    pull->waiters.push_back(Waiter{std::move(done), std::move(auth)});
    pulls_[key] = pull;
    SpawnLocked(pull, [this, pull] { Run(pull); });
    return pull->state;
  }
  lock.unlock();
  if (done) done(now);
  return now;
}

void Images::SpawnLocked(std::shared_ptr<Pull> pull, std::function<void()> body) {
  std::erase_if(threads_, [](auto& t) {
    if (!t.first->done) return false;
    t.second.join();
    return true;
  });
  threads_.emplace_back(pull, std::thread([this, pull, body = std::move(body)] {
    body();
    std::lock_guard<std::mutex> lock(mu_);
    pull->done = true;
  }));
}

void Images::Run(std::shared_ptr<Pull> pull) {
  StatusOr<Known> result = Fetch(*pull);
  Finish(pull, result);
  if (result.ok() && result->size == 0) Describe(pull->ref.str());
}

bool Images::AdmittedLocked(const ImageRef& ref, const std::string& identity) const {
  if (!NeedsAccessCheck(ref)) return true;
  const TimePoint now = clock_.Now();
  for (const std::string& who : {identity, std::string()}) {  // or public: a yes without credentials
    auto it = access_.find(AccessKey(ref, who));
    if (it != access_.end() && now - it->second < options_.access_ttl) return true;
  }
  return false;
}

ImageState Images::Admit(const ImageRef& ref, const std::optional<RegistryAuth>& auth,
                         ImageState ready) {
  if (ready.phase != ImageState::Phase::kReady) return ready;
  const std::string identity = Identity(ref, auth);
  const std::string key = AccessKey(ref, identity);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (AdmittedLocked(ref, identity)) return ready;
    auto denied = denied_.find(key);
    if (denied != denied_.end() && clock_.Now() - *denied->second.ended < options_.failure_ttl) {
      return denied->second;
    }
  }
  const Status answer = options_.check_access(ref, auth ? &*auth : nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  if (answer.ok()) {
    access_[key] = clock_.Now();
    denied_.erase(key);
    return ready;
  }
  if (answer.code() == StatusCode::kUnavailable &&
      (access_.count(key) > 0 || access_.count(AccessKey(ref, "")) > 0)) {
    spdlog::warn("agent: image {}: {}; these credentials (or none) could read it before, so the "
                 "worker starts",
                 ref.str(), answer.ToString());
    return ready;
  }
  ImageState failed = ready;
  failed.phase = ImageState::Phase::kFailed;
  failed.hit = false;
  failed.ended = clock_.Now();
  failed.error = answer;
  denied_[key] = failed;
  spdlog::warn("agent: image {} refused to a worker: {}", ref.str(), answer.ToString());
  return failed;
}

// The pull, the local store (a hit cancels the pull) and the manifest (totals, and an early "too
// large", which cancels it too) all at once: every engine call on the way costs a fraction of a
// second, and a miss's cold start is the longer of the image and the model.
StatusOr<Images::Known> Images::Fetch(Pull& pull) {
  const std::string key = pull.ref.str();
  const RegistryAuth* auth = pull.auth ? &*pull.auth : nullptr;
  std::mutex plan_mu;
  std::optional<RemoteImage> plan;
  std::atomic<bool> too_large{false};
  std::thread manifest([&] {
    auto remote = engine_.InspectRemote(pull.ref, auth, &pull.skip_manifest);
    if (!remote.ok()) {
      if (remote.status().code() != StatusCode::kUnimplemented) {
        spdlog::debug("agent: manifest of {}: {}", key, remote.status().ToString());
      }
      return;
    }
    if (options_.capacity > 0 && remote->bytes > options_.capacity) {
      too_large = true;
      pull.cancel = true;
    }
    std::lock_guard<std::mutex> lock(plan_mu);
    plan = *remote;
  });
  StatusOr<std::optional<LocalImage>> local = std::optional<LocalImage>();
  std::atomic<bool> found{false};
  std::thread store([&] {
    local = engine_.InspectImage(key);
    if (local.ok() && *local) {
      found = true;
      pull.cancel = true;
    }
  });
  StatusOr<std::string> pulled = engine_.Pull(
      pull.ref, auth,
      [&]() {
        std::lock_guard<std::mutex> lock(plan_mu);
        return plan;
      },
      [&](const PullProgress& p) {
        std::lock_guard<std::mutex> lock(mu_);
        pull.state.progress = p;
      },
      &pull.cancel);
  store.join();
  pull.skip_manifest = true;
  manifest.join();
  if (found) {
    std::lock_guard<std::mutex> lock(mu_);
    pull.state.hit = true;
    pull.state.progress = PullProgress();
    return Known{(*local)->id, (*local)->digest, (*local)->size, false, clock_.Now()};
  }
  if (too_large) {
    return ResourceExhaustedError(
        "image " + key + " is " + ByteCount(plan->bytes).ToHuman() +
        " compressed, more than the whole image budget (--image-capacity " +
        ByteCount(options_.capacity).ToHuman() + "): raise the budget or use a smaller image");
  }
  MC_RETURN_IF_ERROR(pulled.status());
  if (options_.capacity == 0 && !pulled->empty()) {
    return Known{*pulled, "", 0, true, clock_.Now()};  // size and digest: Describe() after
  }
  MC_ASSIGN_OR_RETURN(std::optional<LocalImage> image, engine_.InspectImage(key), "after the pull");
  if (!image) return UnavailableError("the engine pulled " + key + " but does not list it");
  if (options_.capacity > 0 && image->size > options_.capacity) {
    Status removed = engine_.RemoveImage(image->id);
    if (!removed.ok()) spdlog::warn("agent: remove image {}: {}", key, removed.ToString());
    return ResourceExhaustedError("image " + key + " is " + ByteCount(image->size).ToHuman() +
                                  " on disk, more than the whole image budget (--image-capacity " +
                                  ByteCount(options_.capacity).ToHuman() +
                                  "): raise the budget or use a smaller image");
  }
  return Known{image->id, image->digest, image->size, true, clock_.Now()};
}

// Fills in the size and digest of an image whose pull returned only its id (no budget to check
// before the worker starts).
void Images::Describe(const std::string& reference) {
  auto image = engine_.InspectImage(reference);
  if (!image.ok() || !*image) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = known_.find(reference);
  if (it == known_.end() || it->second.image_id != (*image)->id) return;
  it->second.digest = (*image)->digest;
  it->second.size = (*image)->size;
  RecordLocked(reference, it->second);
}

// Removes least recently used images we pulled and no worker uses until `need` more bytes fit.
// Caller holds mu_ (removals are engine calls of a fraction of a second; pulls are rare).
Status Images::MakeRoomLocked(const std::string& keep, uint64_t need) {
  if (options_.capacity == 0) return Status::Ok();
  std::vector<ImageGcCandidate> candidates;
  for (const auto& [ref, k] : known_) {
    if (ref == keep) continue;
    candidates.push_back({ref, k.size, k.last_use, !users_[ref].empty(), k.pulled});
  }
  ImageGcPlan plan = PlanImageGc(candidates, need, options_.capacity);
  for (const std::string& ref : plan.remove) {
    const Known& k = known_.at(ref);
    Status s = engine_.RemoveImage(k.image_id);
    if (!s.ok() && s.code() != StatusCode::kNotFound) {
      spdlog::warn("agent: image budget: cannot remove {}: {}", ref, s.ToString());
      continue;
    }
    spdlog::info("agent: image budget: removed {} ({}), least recently used", ref,
                 ByteCount(k.size).ToHuman());
    known_.erase(ref);
    Status d = db_.DeleteImage(ref);
    if (!d.ok()) spdlog::warn("agent: forget image {}: {}", ref, d.ToString());
  }
  if (!plan.fits) {
    spdlog::warn("agent: images use more than --image-capacity {}: the rest is in use or was not "
                 "pulled by the agent",
                 ByteCount(options_.capacity).ToHuman());
  }
  return Status::Ok();
}

void Images::RecordLocked(const std::string& reference, const Known& known) {
  known_[reference] = known;
  Status s = db_.PutImage(ImageRow{reference, known.image_id, known.digest, known.size,
                                   known.pulled, known.last_use});
  if (!s.ok()) spdlog::warn("agent: record image {}: {}", reference, s.ToString());
}

void Images::Finish(const std::shared_ptr<Pull>& pull, const StatusOr<Known>& result) {
  std::vector<Waiter> waiters;
  ImageState final_state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ImageState& s = pull->state;
    s.ended = clock_.Now();
    if (result.ok()) {
      s.phase = ImageState::Phase::kReady;
      s.image_id = result->image_id;
      s.digest = result->digest;
      s.size = result->size;
      MakeRoomLocked(s.reference, result->size).IgnoreError();
      RecordLocked(s.reference, *result);
      // The registry gave the puller the image: a yes for its credentials.
      if (!s.hit) access_[AccessKey(pull->ref, Identity(pull->ref, pull->auth))] = clock_.Now();
      spdlog::info("agent: image {} {} ({})", s.reference, s.hit ? "found in the store" : "pulled",
                   ByteCount(s.size).ToHuman());
    } else {
      s.phase = ImageState::Phase::kFailed;
      s.error = result.status();
      if (s.error.code() != StatusCode::kCancelled) failures_[s.reference] = {s, pull->auth};
      spdlog::warn("agent: image {}: {}", s.reference, s.error.ToString());
    }
    final_state = s;
    waiters = std::move(pull->waiters);
    pulls_.erase(s.reference);
  }
  // Each waiter is admitted with its own credentials (a hit or a joined pull proves nothing
  // about them); on this thread, one registry request each at most.
  for (const Waiter& w : waiters) {
    if (w.done) w.done(Admit(pull->ref, w.auth, final_state));
  }
  if (options_.on_change) options_.on_change();
}

std::optional<ImageState> Images::Progress(const std::string& reference) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pulls_.find(reference);
  if (it == pulls_.end()) return std::nullopt;
  return it->second->state;
}

std::vector<ImageState> Images::Active() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ImageState> out;
  for (const auto& [ref, pull] : pulls_) out.push_back(pull->state);
  return out;
}

void Images::Use(const std::string& reference, const std::string& worker) {
  std::lock_guard<std::mutex> lock(mu_);
  users_[reference].insert(worker);
  auto it = known_.find(reference);
  if (it == known_.end()) return;
  it->second.last_use = clock_.Now();
  RecordLocked(reference, it->second);
}

void Images::Unuse(const std::string& reference, const std::string& worker) {
  std::lock_guard<std::mutex> lock(mu_);
  auto users = users_.find(reference);
  if (users != users_.end()) {
    users->second.erase(worker);
    if (users->second.empty()) users_.erase(users);
  }
  auto it = known_.find(reference);
  if (it == known_.end()) return;
  it->second.last_use = clock_.Now();
  RecordLocked(reference, it->second);
}

void Images::Forget(const std::string& reference) {
  std::lock_guard<std::mutex> lock(mu_);
  if (known_.erase(reference) == 0) return;
  Status s = db_.DeleteImage(reference);
  if (!s.ok()) spdlog::warn("agent: forget image {}: {}", reference, s.ToString());
}

std::vector<ImageView> Images::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ImageView> out;
  for (const auto& [ref, k] : known_) {
    auto users = users_.find(ref);
    out.push_back(ImageView{ref, k.image_id, k.digest, k.size, k.pulled,
                            users == users_.end() ? 0 : static_cast<int>(users->second.size()),
                            k.last_use});
  }
  return out;
}

uint64_t Images::Used() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t used = 0;
  for (const auto& [ref, k] : known_) used += k.size;
  return used;
}

void Images::Shutdown() {
  std::vector<std::pair<std::shared_ptr<Pull>, std::thread>> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
    for (auto& [ref, pull] : pulls_) {
      pull->cancel = true;
      pull->skip_manifest = true;
    }
    threads = std::move(threads_);
  }
  for (auto& [pull, thread] : threads) {
    if (thread.joinable()) thread.join();
  }
}

}  // namespace mc::agent
