#include "mc/agent/podman_test_env.h"

#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "agent/command_runner.h"
#include "agent/engine.h"
#include "mc/agent/runtime_options.h"

namespace mc::agent {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> BaseEnv() {
  return {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"};
}

StatusOr<CommandResult> Run(std::vector<std::string> argv, std::optional<std::string> stdin_data = {}) {
  CommandOptions c;
  c.argv = std::move(argv);
  c.env = BaseEnv();
  c.stdin_data = std::move(stdin_data);
  c.timeout = std::chrono::minutes(3);
  return RunCommand(c);
}

Status Check(const StatusOr<CommandResult>& r, const std::string& what) {
  if (!r.ok()) return r.status().WithContext(what);
  if (!r->ok()) return InternalError(what + " failed: " + TailForMessage(r->err + r->out));
  return Status::Ok();
}

}  // namespace

namespace {
std::once_flag once;
PodmanTestEnv* env = nullptr;
std::string reason;
}  // namespace

void PodmanTestEnv::Shutdown() {
  delete env;
  env = nullptr;
}

PodmanTestEnv* PodmanTestEnv::Get(std::string* why) {
  std::call_once(once, [] {
    auto* e = new PodmanTestEnv();
    Status s = e->Init();
    if (s.ok()) {
      env = e;
    } else {
      reason = s.ToString();
      delete e;
    }
  });
  if (env == nullptr && why != nullptr) *why = reason;
  return env;
}

Status PodmanTestEnv::Init() {
  dir_ = fs::temp_directory_path() / ("mc_podman_test_" + std::to_string(::getpid()));
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  builder_ = dir_ / "builder";
  RuntimeOptions probe;
  probe.kind = RuntimeKind::kPodman;
  probe.oci_runtime = "runc";
  probe.engine_root = builder_;
  MC_ASSIGN_OR_RETURN(std::string version, ProbeRuntime(probe), "podman");
  if (!fs::exists("/bin/busybox")) {
    return NotFoundError("/bin/busybox is missing (apt-get install busybox-static)");
  }
  MC_ASSIGN_OR_RETURN(registry_, StartRegistry("registry", false, &registry_pid_));
  MC_ASSIGN_OR_RETURN(auth_registry_, StartRegistry("auth-registry", true, &auth_registry_pid_));
  return BuildImages();
}

StatusOr<std::string> PodmanTestEnv::StartRegistry(const std::string& name, bool auth,
                                                   pid_t* pid) {
  const fs::path home = dir_ / name;
  fs::create_directories(home / "data");
  std::ostringstream config;
  config << "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: "
         << (home / "data").string() << "\n  delete:\n    enabled: true\n"
         << "http:\n  addr: 127.0.0.1:0\n";
  if (auth) {
    std::ofstream file(home / "htpasswd");
    for (auto [user, password] : {std::pair{kUser, kPassword}, std::pair{kUser2, kPassword2}}) {
      auto hash = Run({"htpasswd", "-Bbn", user, password});
      MC_RETURN_IF_ERROR(Check(hash, "htpasswd (apt-get install apache2-utils)"));
      file << hash->out.substr(0, hash->out.find('\n')) << "\n";
    }
    file.close();
    config << "auth:\n  htpasswd:\n    realm: mc-test\n    path: " << (home / "htpasswd").string()
           << "\n";
  }
  std::ofstream(home / "config.yml") << config.str();
  const fs::path log = home / "log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const std::string config_path = (home / "config.yml").string();
  std::vector<char*> argv{const_cast<char*>("docker-registry"), const_cast<char*>("serve"),
                          const_cast<char*>(config_path.c_str()), nullptr};
  std::vector<std::string> env = BaseEnv();
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int rc = posix_spawnp(pid, "docker-registry", &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return NotFoundError("docker-registry (apt-get install docker-registry)");
  // Its log names the port it bound.
  const std::string marker = "listening on 127.0.0.1:";
  for (int i = 0; i < 2000; ++i) {
    const std::string text = ReadFile(log);
    if (size_t at = text.find(marker); at != std::string::npos) {
      size_t end = text.find_first_not_of("0123456789", at + marker.size());
      return "127.0.0.1:" + text.substr(at + marker.size(), end - at - marker.size());
    }
    int status = 0;
    if (waitpid(*pid, &status, WNOHANG) == *pid) {
      *pid = 0;
      return InternalError("docker-registry exited: " + TailForMessage(ReadFile(log)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a server starting, not a test
  }
  return DeadlineExceededError("docker-registry did not say where it listens");
}

Status PodmanTestEnv::BuildImages() {
  for (int variant : {1, 2}) {
    const fs::path rootfs = dir_ / ("rootfs" + std::to_string(variant));
    fs::create_directories(rootfs / "bin");
    fs::create_directories(rootfs / "tmp");
    fs::create_directories(rootfs / "etc");
    fs::copy_file("/bin/busybox", rootfs / "bin/busybox", fs::copy_options::overwrite_existing);
    fs::create_symlink("busybox", rootfs / "bin/sh");
    std::ofstream(rootfs / "variant") << variant << "\n";
    const fs::path tar = dir_ / ("bb" + std::to_string(variant) + ".tar");
    MC_RETURN_IF_ERROR(Check(Run({"tar", "-C", rootfs.string(), "-cf", tar.string(), "."}), "tar"));
    const std::string local = "localhost/mctest-bb:" + std::to_string(variant);
    MC_RETURN_IF_ERROR(Check(Podman(builder_, {"import", "--change", "CMD [\"/bin/sh\"]",
                                               tar.string(), local}),
                             "podman import"));
    const std::string name = "bb" + std::string(variant == 1 ? "" : "2");
    MC_RETURN_IF_ERROR(Check(Podman(builder_, {"push", "--tls-verify=false", local,
                                               registry_ + "/mctest/" + name + ":1"}),
                             "podman push"));
    const std::string auth =
        Engine::AuthFile(ImageRef::Parse(auth_registry_ + "/x").value(),
                         RegistryAuth{kUser, hub::Secret(kPassword)});
    CommandOptions c;
    c.argv = {"podman", "--root", (builder_ / "storage").string(), "--runroot",
              (builder_ / "run").string(), "--tmpdir", (builder_ / "tmp").string(), "push",
              "--tls-verify=false", "--authfile", "/dev/stdin", local,
              auth_registry_ + "/mctest/" + name + ":1"};
    c.env = BaseEnv();
    c.stdin_data = auth;
    MC_RETURN_IF_ERROR(Check(RunCommand(c), "podman push to the auth registry"));
  }
  return Status::Ok();
}

StatusOr<CommandResult> PodmanTestEnv::Podman(const fs::path& root,
                                              const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"podman", "--root", (root / "storage").string(), "--runroot",
                                EngineRunRoot(root).string(), "--tmpdir", (root / "tmp").string(),
                                "--runtime", "runc"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

StatusOr<std::string> PodmanTestEnv::ExampleWorkerImage() {
  if (example_worker_) return *example_worker_;
  CommandOptions c;
  c.argv = {std::string(MC_SOURCE_DIR) + "/examples/worker-image/build.sh",
            "localhost/mctest-worker:1"};
  c.env = BaseEnv();
  c.env.push_back("ENGINE_ARGS=--root " + (builder_ / "storage").string() + " --runroot " +
                  (builder_ / "run").string() + " --tmpdir " + (builder_ / "tmp").string() +
                  " --runtime runc");
  c.timeout = std::chrono::minutes(10);
  const std::string ref = registry_ + "/mctest/worker:1";
  Status built = Check(RunCommand(c), "examples/worker-image/build.sh");
  if (built.ok()) {
    built = Check(Podman(builder_, {"push", "--tls-verify=false", "localhost/mctest-worker:1", ref}),
                  "push the example worker");
  }
  example_worker_ = built.ok() ? StatusOr<std::string>(ref) : StatusOr<std::string>(built);
  return *example_worker_;
}

int PodmanTestEnv::RegistryLogLines(const std::string& needle, bool auth_registry) const {
  std::istringstream lines(ReadFile(dir_ / (auth_registry ? "auth-registry" : "registry") / "log"));
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) n += line.find(needle) != std::string::npos;
  return n;
}

void PodmanTestEnv::RemoveStore(const fs::path& root) const {
  std::error_code ec;
  if (!fs::exists(root, ec)) return;
  (void)Podman(root, {"rm", "-af", "-t", "0"});
  (void)Podman(root, {"rmi", "-af"});
  // The overlay driver bind-mounts its own dir; nothing else of ours is mounted there.
  umount2((root / "storage" / "overlay").c_str(), MNT_DETACH);
  fs::remove_all(EngineRunRoot(root), ec);
  fs::remove_all(root, ec);
}

PodmanTestEnv::~PodmanTestEnv() {
  for (pid_t pid : {registry_pid_, auth_registry_pid_}) {
    if (pid <= 0) continue;
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
  }
  RemoveStore(builder_);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

}  // namespace mc::agent
