// PodmanTestEnv: real parts for the container tests. Podman (runc, the agent's ulimits) with
// private stores under a temp dir, two real registries (Debian's docker-registry) on loopback
// port 0 — one open, one with htpasswd auth — and two tiny images built FROM scratch from the
// static busybox (bb:1, and bb:2 which differs by one file), pushed to both.
//
// Nothing here touches podman's default store or another test's containers: every store is a
// private --root, every name and label is unique to this process. The destructor stops the
// registries (by their pids) and removes the stores.
//
// Tests only (library mc_agent_podman_test_support): the agent's container tests and the
// controller's image tests share it.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mc/common/status.h"

namespace mc::agent {

struct CommandResult;  // agent/command_runner.h

class PodmanTestEnv {
 public:
  static constexpr const char* kUser = "mc-test";
  static constexpr const char* kPassword = "right-password-4ac1";
  // A second user of the auth registry (another endpoint's own credentials).
  static constexpr const char* kUser2 = "mc-test-2";
  static constexpr const char* kPassword2 = "second-password-77b0";

  // The environment of this test binary, built on first use; nullptr with `why` when podman
  // cannot run containers here (or the registry or busybox-static is missing).
  static PodmanTestEnv* Get(std::string* why);
  // Deletes the environment of this binary, if one was built (at the end of the tests).
  static void Shutdown();
  ~PodmanTestEnv();

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& registry() const { return registry_; }            // "127.0.0.1:PORT"
  const std::string& auth_registry() const { return auth_registry_; }  // needs kUser/kPassword
  // "127.0.0.1:PORT/mctest/<name>:1" on the open registry.
  std::string Image(const std::string& name) const { return registry_ + "/mctest/" + name + ":1"; }
  // examples/worker-image/build.sh run into the builder store and pushed to the open registry
  // (once per binary): the reference, or the build's error.
  StatusOr<std::string> ExampleWorkerImage();
  // Lines of the open registry's log (or the auth registry's) that contain `needle` (its
  // requests: "GET /v2/...").
  int RegistryLogLines(const std::string& needle, bool auth_registry = false) const;

  // podman with a private store under `root` and runc.
  StatusOr<CommandResult> Podman(const std::filesystem::path& root,
                                 const std::vector<std::string>& args) const;
  // Removes every container and image of the store under `root`, then the store.
  void RemoveStore(const std::filesystem::path& root) const;

 private:
  PodmanTestEnv() = default;
  Status Init();
  Status BuildImages();
  StatusOr<std::string> StartRegistry(const std::string& name, bool auth, pid_t* pid);

  std::filesystem::path dir_;
  std::filesystem::path builder_;  // the store the images are built in
  std::string registry_, auth_registry_;
  pid_t registry_pid_ = 0, auth_registry_pid_ = 0;
  std::optional<StatusOr<std::string>> example_worker_;
};

}  // namespace mc::agent
