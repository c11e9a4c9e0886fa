// Images: the worker images on this host, as the agent accounts them, and their pulls.
//
// EnsureThen() answers at once: ready (the image is in the engine's store: a hit, with no engine
// call when we already know it), pulling (joins the one pull in flight for that reference: pulls
// are single-flight), or the error of a pull that failed less than `failure_ttl` ago (so a broken
// image or a refused credential costs the registry one pull per minute, not one per worker). A
// pull runs on its own thread: the engine's store is asked first (an image built or pulled by
// hand is a hit), then the manifest is read for the totals (skopeo, when installed), then the
// engine pulls with progress (bytes, layers).
//
// Budget: with a capacity, the images the agent knows (those it pulled, and those its workers
// used) count against it. After each pull, the least recently used images that no worker uses
// and that the agent itself pulled are removed until the total fits; images found in the store
// are never removed. An image larger than the whole budget fails (before its pull when the
// manifest says so, else after it, and it is removed again).
//
// Known images survive restarts in the StateDb (`images`); Recover() drops those the engine no
// longer has. Registry credentials are used for one pull and never stored, logged or echoed.
//
// Entitlement: the engine's store is shared by every endpoint on the host, so an image in it is
// not proof that a worker may run it. Before a worker starts from an image it did not pull itself
// (a hit, one found in the store, or another worker's pull it joined), the registry is asked
// whether the worker's credentials (or none) may read it (registry_access.h: one manifest HEAD).
// A yes is kept per (image, credential identity) for `access_ttl`; the identity is a SHA-256 of
// registry, user and password, held in memory only. A successful pull is a yes for the puller's
// identity; a yes without credentials is a yes for everyone (the image is public). A no
// (refused, not found) fails the worker with the registry's answer and is kept for
// `failure_ttl`. When the registry cannot be reached the worker starts only if its identity (or
// no credentials) got a yes for that image since the agent started; otherwise it fails
// Unavailable ("try later"). Images under `localhost/` (built on the host, in no registry) are
// never checked.
//
// Thread-safety: all methods may be called from any thread. Callbacks run without our lock.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/engine.h"
#include "agent/state_db.h"
#include "mc/common/clock.h"
#include "mc/common/image_ref.h"

namespace mc::agent {

struct ImageState {
  enum class Phase { kReady, kPulling, kFailed };
  Phase phase = Phase::kPulling;
  std::string reference;
  bool hit = false;  // ready without a pull
  std::string image_id;
  std::string digest;
  uint64_t size = 0;  // ready: bytes on disk
  PullProgress progress;
  TimePoint started;
  std::optional<TimePoint> ended;
  Status error;  // failed
};

struct ImageView {
  std::string reference;
  std::string image_id;
  std::string digest;
  uint64_t size = 0;
  bool pulled = false;  // by this agent (only those are garbage-collected)
  int in_use = 0;       // live workers on it
  TimePoint last_use;
};

struct ImagesOptions {
  uint64_t capacity = 0;  // bytes; 0 = no budget
  std::chrono::seconds failure_ttl{60};
  std::chrono::seconds access_ttl{300};  // a registry's yes, per image and credential identity
  // May `auth` (nullptr: no credentials) read the image? Empty: CheckRegistryAccess, plain HTTP
  // for the engine's insecure registries.
  std::function<Status(const ImageRef&, const RegistryAuth*)> check_access;
  std::function<void()> on_change;  // after a pull ends or an image is removed
};

// The garbage-collection policy, a pure function. Chooses images to remove, least recently used
// first, until used - freed + need <= capacity; never one in use or not removable.
struct ImageGcCandidate {
  std::string reference;
  uint64_t size = 0;
  TimePoint last_use;
  bool in_use = false;
  bool removable = false;
};
struct ImageGcPlan {
  std::vector<std::string> remove;
  uint64_t freed = 0;
  bool fits = false;  // after the removals
};
ImageGcPlan PlanImageGc(std::vector<ImageGcCandidate> images, uint64_t need, uint64_t capacity);

class Images {
 public:
  using Callback = std::function<void(const ImageState&)>;

  Images(ImagesOptions options, const Engine& engine, StateDb& db, Clock& clock);
  ~Images();  // Shutdown()

  // Loads the known images and drops those the engine no longer has.
  void Recover();
  // The state now, and `done` once with the final state (at once if final).
  ImageState EnsureThen(const ImageRef& ref, std::optional<RegistryAuth> auth, Callback done);
  // The pull of `reference` in flight, if any.
  std::optional<ImageState> Progress(const std::string& reference) const;
  std::vector<ImageState> Active() const;
  // A worker starts or stops using an image (in use: never collected; last use = now).
  void Use(const std::string& reference, const std::string& worker);
  void Unuse(const std::string& reference, const std::string& worker);
  // The engine said it does not have `reference` (any more): forget it.
  void Forget(const std::string& reference);
  std::vector<ImageView> List() const;
  uint64_t capacity() const { return options_.capacity; }
  uint64_t Used() const;
  // Cancels the pulls in flight and joins their threads. Idempotent.
  void Shutdown();

 private:
  struct Pull;
  struct Known {
    std::string image_id, digest;
    uint64_t size = 0;
    bool pulled = false;
    TimePoint last_use;
  };
  struct Waiter {
    Callback done;
    std::optional<RegistryAuth> auth;
  };
  void Run(std::shared_ptr<Pull> pull);
  // `ready` when `auth` may read the image (or it needs no check), else the failed state.
  ImageState Admit(const ImageRef& ref, const std::optional<RegistryAuth>& auth, ImageState ready);
  bool AdmittedLocked(const ImageRef& ref, const std::string& identity) const;
  void SpawnLocked(std::shared_ptr<Pull> pull, std::function<void()> body);
  StatusOr<Known> Fetch(Pull& pull);
  void Describe(const std::string& reference);
  Status MakeRoomLocked(const std::string& keep, uint64_t need);
  void RecordLocked(const std::string& reference, const Known& known);
  void Finish(const std::shared_ptr<Pull>& pull, const StatusOr<Known>& result);

  ImagesOptions options_;
  const Engine& engine_;
  StateDb& db_;
  Clock& clock_;

  mutable std::mutex mu_;
  bool shutting_down_ = false;
  std::map<std::string, Known> known_;
  std::map<std::string, std::set<std::string>> users_;
  std::map<std::string, std::shared_ptr<Pull>> pulls_;
  struct Failure {
    ImageState state;
    std::optional<RegistryAuth> auth;
  };
  std::map<std::string, Failure> failures_;
  // Keyed by reference + "\n" + credential identity ("" for none).
  std::map<std::string, TimePoint> access_;  // the registry's last yes
  std::map<std::string, ImageState> denied_;  // its last no
  std::vector<std::pair<std::shared_ptr<Pull>, std::thread>> threads_;
};

}  // namespace mc::agent
