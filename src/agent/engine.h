// Engine: the container engine's command line (podman, or docker, whose CLI has the same shape),
// driven one command at a time through RunCommand. We do not speak OCI ourselves: pulls, image
// lists and container lists are the engine's; this class only builds argv, passes secrets on
// stdin and reads the engine's JSON.
//
// Global flags: podman gets --root/--runroot/--tmpdir when `root` is set (a private store: tests,
// or an operator who keeps worker images apart from the host's) and --runtime when `oci_runtime`
// is set (this VM's crun cannot run containers; runc can). Docker has neither.
//
// Secrets: a registry auth file is written to the engine's stdin (podman --authfile /dev/stdin;
// docker gets --config with a config.json in a private 0700 temp dir, removed after the call).
// The engine's own environment is the agent's PATH, HOME, USER, XDG_*, CONTAINERS_*, DOCKER_HOST,
// DOCKER_CONFIG and REGISTRY_AUTH_FILE only.
//
// Thread-safety: const methods may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/command_runner.h"
#include "mc/agent/runtime_options.h"
#include "mc/common/image_ref.h"
#include "mc/common/status.h"
#include "mc/hub/secret.h"

namespace mc::agent {

enum class EngineKind { kPodman, kDocker };

struct EngineOptions {
  EngineKind kind = EngineKind::kPodman;
  std::string program;      // path or name; empty = "podman" / "docker" from PATH
  std::string oci_runtime;  // podman --runtime; empty = the engine's default
  std::filesystem::path root;  // podman: private store root (storage, run, tmp under it)
  // Registries ("host:port") pulled from over plain HTTP or without TLS verification (podman
  // --tls-verify=false; docker: the daemon's own insecure-registries setting decides).
  std::vector<std::string> insecure_registries;
  // Where pulls keep their temp files (TMPDIR of the pull: its growth is the progress).
  std::filesystem::path work_dir;
  // Reads a remote manifest for a pull's size and layers before it runs; empty = not available.
  std::string skopeo = "skopeo";
};

struct RegistryAuth {
  std::string username;
  hub::Secret password;
  bool operator==(const RegistryAuth& o) const {
    return username == o.username && password.Matches(o.password.Reveal());
  }
};

struct LocalImage {
  std::string id;      // the engine's image id (config digest hex)
  std::string digest;  // "sha256:..." of the manifest it was pulled by; may be empty
  uint64_t size = 0;   // bytes on disk, unpacked
  std::vector<std::string> names;
};

struct RemoteImage {
  std::vector<std::pair<std::string, uint64_t>> layers;  // digest, compressed size
  uint64_t bytes = 0;                                      // sum of the layers
};

struct PullProgress {
  uint64_t bytes_done = 0;
  std::optional<uint64_t> bytes_total;
  int layers_done = 0;
  std::optional<int> layers_total;
};

struct ContainerInfo {
  std::string name;
  std::string worker;    // label modelcache.worker
  std::string instance;  // label modelcache.agent
  bool running = false;
};

class Engine {
 public:
  explicit Engine(EngineOptions options);

  const EngineOptions& options() const { return options_; }
  std::string_view name() const { return options_.kind == EngineKind::kPodman ? "podman" : "docker"; }
  // The engine program and its global flags, followed by `args`.
  std::vector<std::string> Argv(const std::vector<std::string>& args) const;
  // The environment engine commands run with (see the header comment).
  std::vector<std::string> Env() const;
  StatusOr<CommandResult> Run(const std::vector<std::string>& args,
                              std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

  // "podman version 4.3.1" and a tiny container run (podman: the host's / as a read-only overlay
  // rootfs running /bin/true; docker: `docker info`). FailedPrecondition with the engine's words
  // when it cannot run containers.
  StatusOr<std::string> Probe() const;

  // nullopt when the image is not in the store.
  StatusOr<std::optional<LocalImage>> InspectImage(const std::string& reference) const;
  StatusOr<std::vector<LocalImage>> ListImages() const;
  // `podman rmi` (not forced: an image a container uses stays). NotFound if already gone.
  Status RemoveImage(const std::string& id) const;
  // The manifest's layers through skopeo (the platform's manifest of an index). Unimplemented
  // when skopeo is not configured or not installed.
  StatusOr<RemoteImage> InspectRemote(const ImageRef& ref, const RegistryAuth* auth,
                                      const std::atomic<bool>* cancel) const;
  // Pulls `ref`, reporting progress about every 250 ms; `plan` is asked on each report until it
  // gives the manifest's layers (read at the same time by InspectRemote), which set the totals.
  // Returns the image id (podman; "" for docker). NotFound (no such image or tag),
  // PermissionDenied (the registry refused the credentials, or wants some), Unavailable (the
  // registry cannot be reached, or anything else: try later), Cancelled.
  using PlanSource = std::function<std::optional<RemoteImage>()>;
  StatusOr<std::string> Pull(const ImageRef& ref, const RegistryAuth* auth, const PlanSource& plan,
                             const std::function<void(const PullProgress&)>& progress,
                             const std::atomic<bool>* cancel) const;
  // Containers with label `key=value`, running or not.
  StatusOr<std::vector<ContainerInfo>> ListContainers(const std::string& label) const;

  bool IsInsecure(const ImageRef& ref) const;
  // --ulimit nofile=S:H and nproc=S:H from the agent's own limits (nproc at most the kernel's
  // pid_max): podman's defaults exceed the hard limits of some hosts (containers then fail in
  // setrlimit), the agent's do not.
  static std::vector<std::string> UlimitFlags();
  // {"auths": {registry: {"auth": base64(user:password)}}}: the auth file format podman, skopeo
  // and docker read.
  static std::string AuthFile(const ImageRef& ref, const RegistryAuth& auth);

 private:
  EngineOptions options_;
};

// podman's --runroot for a private store at `root`: root/run, or when that is longer than podman
// allows (50 characters: conmon's socket paths) /run/mc-<hash of root> (/tmp when /run is not
// writable).
std::filesystem::path EngineRunRoot(const std::filesystem::path& root);

// The engine of `options` (podman or docker); pulls keep their temp files under `work_dir`.
Engine MakeEngine(const RuntimeOptions& options, const std::filesystem::path& work_dir);

// Standard base64 with padding (auth files, Basic credentials).
std::string Base64Encode(std::string_view in);

// Maps an engine's or skopeo's error output about `ref` to a Status a user can act on.
Status ClassifyPullError(const ImageRef& ref, const std::string& output);

}  // namespace mc::agent
