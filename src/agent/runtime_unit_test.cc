// Unit tests of the container runtime's pure parts: engine argv and env file, CDI and nvidia-smi
// parsing, the image garbage-collection policy, pull error classification and worker specs.
// No engine runs here (container_test.cc runs real podman).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "agent/container_runtime.h"
#include "agent/engine.h"
#include "agent/gpus.h"
#include "agent/images.h"
#include "agent/worker_spec.h"

namespace mc::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

fs::path TempDir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() /
                 ("mc_runtime_unit_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

bool HasPair(const std::vector<std::string>& argv, const std::string& flag,
             const std::string& value) {
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag && argv[i + 1] == value) return true;
  }
  return false;
}

ContainerRuntimeOptions Options(bool limits = true, std::vector<fs::path> cdi_dirs = {},
                                std::string cdi_kind = "nvidia.com/gpu") {
  ContainerRuntimeOptions o;
  o.instance = "abcd1234";
  o.limits = limits;
  o.cdi_spec_dirs = std::move(cdi_dirs);
  o.cdi_kind = std::move(cdi_kind);
  return o;
}

WorkerSpec Spec() {
  WorkerSpec s;
  s.id = "w1";
  s.endpoint = "ep-1";
  s.image = "127.0.0.1:5000/org/worker:1";
  s.env = {{"RUNPOD_AI_API_KEY", "secret-key"}, {"MODEL_NAME", "org/m"}};
  s.mounts = {{"/cache/models--org--m", "/runpod-volume/huggingface-cache/hub/models--org--m"}};
  return s;
}

TEST(ContainerRuntimeTest, RunArgsLabelTheContainerAndMountOnlyTheGivenPathsReadOnly) {
  Engine engine(EngineOptions{});
  ContainerRuntime runtime(Options(), engine);
  auto argv = runtime.RunArgs(Spec());
  ASSERT_TRUE(argv.ok()) << argv.status().ToString();
  EXPECT_EQ((*argv)[0], "run");
  EXPECT_TRUE(HasPair(*argv, "--name", "mc-abcd1234-w1"));
  EXPECT_TRUE(HasPair(*argv, "--label", "modelcache.agent=abcd1234"));
  EXPECT_TRUE(HasPair(*argv, "--label", "modelcache.worker=w1"));
  EXPECT_TRUE(HasPair(*argv, "--label", "modelcache.endpoint=ep-1"));
  EXPECT_TRUE(HasPair(*argv, "--network", "host"));
  EXPECT_TRUE(HasPair(*argv, "--pull", "never"));
  EXPECT_TRUE(HasPair(*argv, "--log-driver", "passthrough"));
  EXPECT_TRUE(HasPair(*argv, "--env-file", "/dev/stdin"));
  EXPECT_TRUE(HasPair(*argv, "-v",
                      "/cache/models--org--m:/runpod-volume/huggingface-cache/hub/"
                      "models--org--m:ro"));
  int mounts = 0;
  for (const std::string& a : *argv) mounts += a == "-v" || a == "--mount" || a == "--volume";
  EXPECT_EQ(mounts, 1);
  EXPECT_EQ(argv->back(), "127.0.0.1:5000/org/worker:1");  // no command: the image's own
  for (const std::string& a : *argv) EXPECT_THAT(a, Not(HasSubstr("secret-key")));
}

TEST(ContainerRuntimeTest, EnvironmentGoesThroughTheEnvFileNotArgv) {
  auto file = ContainerRuntime::EnvFile(Spec());
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(*file, "RUNPOD_AI_API_KEY=secret-key\nMODEL_NAME=org/m\n");
  WorkerSpec bad = Spec();
  bad.env.push_back({"X", "two\nlines"});
  EXPECT_EQ(ContainerRuntime::EnvFile(bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(ContainerRuntimeTest, CommandReplacesTheEntrypointAndArgsTheCmd) {
  Engine engine(EngineOptions{});
  ContainerRuntime runtime(Options(), engine);
  WorkerSpec s = Spec();
  s.command = {"/bin/sh", "-c"};
  s.args = {"echo hi"};
  auto argv = runtime.RunArgs(s);
  ASSERT_TRUE(argv.ok());
  EXPECT_TRUE(HasPair(*argv, "--entrypoint", "/bin/sh"));
  const size_t n = argv->size();
  EXPECT_EQ((*argv)[n - 3], s.image);
  EXPECT_EQ((*argv)[n - 2], "-c");
  EXPECT_EQ((*argv)[n - 1], "echo hi");
}

TEST(ContainerRuntimeTest, LimitsBecomeEngineFlagsOnlyWhenEnforced) {
  Engine engine(EngineOptions{});
  WorkerSpec s = Spec();
  s.limits = {.memory_bytes = 64u << 20, .cpus = 1.5, .pids = 100};
  ContainerRuntime with(Options(true), engine);
  auto argv = with.RunArgs(s);
  ASSERT_TRUE(argv.ok());
  EXPECT_TRUE(HasPair(*argv, "--memory", std::to_string(64u << 20)));
  EXPECT_TRUE(HasPair(*argv, "--cpus", "1.500"));
  EXPECT_TRUE(HasPair(*argv, "--pids-limit", "100"));
  ContainerRuntime without(Options(false), engine);
  EXPECT_THAT(*without.RunArgs(s), Not(Contains("--memory")));
}

TEST(ContainerRuntimeTest, GpusAreCdiDevicesWhenASpecListsThemElseAClearError) {
  const fs::path dir = TempDir("cdi");
  std::ofstream(dir / "fake.json") << R"({"cdiVersion": "0.5.0", "kind": "test.example/gpu",
    "devices": [{"name": "0", "containerEdits": {}}, {"name": "1", "containerEdits": {}},
                {"name": "all", "containerEdits": {}}]})";
  Engine engine(EngineOptions{});
  ContainerRuntime runtime(Options(true, {dir}, "test.example/gpu"), engine);
  WorkerSpec s = Spec();
  s.gpus = {0, 1};
  auto argv = runtime.RunArgs(s);
  ASSERT_TRUE(argv.ok()) << argv.status().ToString();
  EXPECT_TRUE(HasPair(*argv, "--device", "test.example/gpu=0"));
  EXPECT_TRUE(HasPair(*argv, "--device", "test.example/gpu=1"));
  s.gpus = {7};  // neither in the spec nor /dev/nvidia7 on this host
  auto missing = runtime.RunArgs(s);
  EXPECT_EQ(missing.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(), HasSubstr("test.example/gpu=7"));
  fs::remove_all(dir);
}

TEST(GpusTest, ParsesTheYamlNvidiaCtkWrites) {
  auto spec = ParseCdiSpec(R"(---
cdiVersion: 0.5.0
containerEdits:
  deviceNodes:
  - path: /dev/nvidiactl
devices:
- containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
  name: "0"
- containerEdits:
    deviceNodes:
    - path: /dev/nvidia1
  name: "1"
- name: GPU-8b2f1c3a-0000-0000-0000-000000000000
  containerEdits: {}
- containerEdits: {}
  name: all
kind: nvidia.com/gpu
)");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->kind, "nvidia.com/gpu");
  EXPECT_THAT(spec->devices,
              ElementsAre("0", "1", "GPU-8b2f1c3a-0000-0000-0000-000000000000", "all"));
  EXPECT_FALSE(ParseCdiSpec("devices: []\n").ok());
}

TEST(GpusTest, CountsAndNamesTheGpusNvidiaSmiLists) {
  auto gpus = ParseNvidiaSmiList(
      "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1)\nGPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-2)\n");
  EXPECT_EQ(gpus.count, 2);
  EXPECT_EQ(gpus.model, "NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(ParseNvidiaSmiList("No devices were found\n").count, 0);
}

TEST(ImageGcTest, RemovesLeastRecentlyUsedFirstUntilTheNeedFits) {
  const TimePoint t0;
  std::vector<ImageGcCandidate> images{
      {"new", 40, t0 + std::chrono::seconds(3), false, true},
      {"old", 40, t0 + std::chrono::seconds(1), false, true},
      {"mid", 40, t0 + std::chrono::seconds(2), false, true}};
  ImageGcPlan plan = PlanImageGc(images, 30, 100);  // 120 + 30 must come down to 100
  EXPECT_THAT(plan.remove, ElementsAre("old", "mid"));
  EXPECT_EQ(plan.freed, 80u);
  EXPECT_TRUE(plan.fits);
}

TEST(ImageGcTest, NeverRemovesAnImageInUseOrNotPulledByTheAgent) {
  const TimePoint t0;
  std::vector<ImageGcCandidate> images{{"used", 60, t0, true, true},
                                       {"found", 60, t0, false, false}};
  ImageGcPlan plan = PlanImageGc(images, 10, 100);
  EXPECT_TRUE(plan.remove.empty());
  EXPECT_FALSE(plan.fits);
  EXPECT_TRUE(PlanImageGc(images, 0, 200).fits);
}

TEST(EngineTest, PullErrorsMapToWhatTheUserShouldDo) {
  auto ref = ImageRef::Parse("127.0.0.1:5000/org/w:1").value();
  EXPECT_EQ(ClassifyPullError(ref, "reading manifest 1 in 127.0.0.1:5000/org/w: manifest "
                                   "unknown: manifest unknown")
                .code(),
            StatusCode::kNotFound);
  Status auth = ClassifyPullError(ref, "unable to retrieve auth token: invalid username/password: "
                                       "unauthorized: authentication required");
  EXPECT_EQ(auth.code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(auth.message(), HasSubstr("registryAuth"));
  EXPECT_EQ(ClassifyPullError(ref, "dial tcp 127.0.0.1:5000: connect: connection refused").code(),
            StatusCode::kUnavailable);
}

// A registry on a port such as 40181 or 40312 (tests use random ones) is not a 401 or a 403.
TEST(EngineTest, AStatusCodeInsideAPortNumberIsNotARefusal) {
  auto ref = ImageRef::Parse("127.0.0.1:40181/org/w:1").value();
  EXPECT_EQ(ClassifyPullError(ref, "Trying to pull 127.0.0.1:40181/org/w:1... Error: initializing "
                                   "source docker://127.0.0.1:40181/org/w:1: reading manifest 1 "
                                   "in 127.0.0.1:40181/org/w: manifest unknown")
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(ClassifyPullError(ref, "pinging registry 127.0.0.1:40312: received 403 Forbidden")
                .code(),
            StatusCode::kPermissionDenied);
}

TEST(EngineTest, AuthFileCarriesBase64UserAndPasswordForTheRegistry) {
  auto ref = ImageRef::Parse("127.0.0.1:5000/org/w:1").value();
  const std::string file = Engine::AuthFile(ref, RegistryAuth{"user", hub::Secret("pa:ss")});
  EXPECT_EQ(file, R"({"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYTpzcw=="}}})");
}

TEST(EngineTest, PodmanGlobalFlagsKeepAPrivateStore) {
  EngineOptions o;
  o.program = "/usr/bin/podman";
  o.oci_runtime = "runc";
  o.root = "/r";
  Engine engine(o);
  EXPECT_THAT(engine.Argv({"ps"}),
              ElementsAre("/usr/bin/podman", "--root", "/r/storage", "--runroot", "/r/run",
                          "--tmpdir", "/r/tmp", "--runtime", "runc", "ps"));
}

class WorkerSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = TempDir("spec");
    snapshot_ = root_ / "cache/models--org--m/snapshots" / std::string(40, 'a');
    fs::create_directories(snapshot_ / "sub");
    fs::create_directories(root_ / "cache/models--org--m/blobs");
    std::ofstream(root_ / "cache/models--org--m/blobs/b1") << "weights";
    std::ofstream(root_ / "cache/models--org--m/blobs/b2") << "config";
    fs::create_symlink("../../blobs/b1", snapshot_ / "model.safetensors");
    fs::create_symlink("../../../blobs/b2", snapshot_ / "sub/config.json");
    request_.id = "w1";
    EnsureRequest model;
    model.repo = RepoId::Parse("org/m").value();
    request_.models.push_back(model);
    request_.image = ImageRef::Parse("r.example/a:1").value();
    request_.env = {{"HF_HUB_CACHE", "/mine"}, {"FOO", "bar"}};
  }
  void TearDown() override { fs::remove_all(root_); }
  StatusOr<WorkerSpec> Build(bool containers) {
    SpecContext c{root_ / "cache", root_ / "state", containers, nullptr};
    WorkerRow row;
    return BuildWorkerSpec(request_, {{RepoId::Parse("org/m").value(), std::string(40, 'a'), snapshot_}},
                           {2, 3}, row, c);
  }
  std::string Env(const WorkerSpec& s, const std::string& name) {
    for (const auto& [k, v] : s.env) {
      if (k == name) return v;
    }
    return "<unset>";
  }
  fs::path root_, snapshot_;
  WorkerRequest request_;
};

TEST_F(WorkerSpecTest, ContainersSeeTheModelUnderRunpodVolumeAndTheirGpusFromZero) {
  auto spec = Build(true);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  const std::string hub = "/runpod-volume/huggingface-cache/hub";
  EXPECT_EQ(Env(*spec, "HF_HUB_CACHE"), hub);  // ours win over the caller's
  EXPECT_EQ(Env(*spec, "HF_HOME"), "/runpod-volume/huggingface-cache");
  EXPECT_EQ(Env(*spec, "HF_HUB_OFFLINE"), "1");
  EXPECT_EQ(Env(*spec, "MODEL_PATH"), hub + "/models--org--m/snapshots/" + std::string(40, 'a'));
  EXPECT_EQ(Env(*spec, "CUDA_VISIBLE_DEVICES"), "0,1");
  EXPECT_EQ(Env(*spec, "FOO"), "bar");
  EXPECT_EQ(Env(*spec, "HOME"), "<unset>");  // the image's own
  ASSERT_EQ(spec->mounts.size(), 1u);
  EXPECT_EQ(spec->mounts[0].host, fs::absolute(root_ / "cache/models--org--m"));
  EXPECT_EQ(spec->mounts[0].container, hub + "/models--org--m");
  EXPECT_THAT(spec->gpus, ElementsAre(2, 3));
}

TEST_F(WorkerSpecTest, ContainerLinksAreFileMountsOfTheBlobs) {
  request_.links = {{std::nullopt, RepoFilePath::Parse("model.safetensors").value(), "/app/m.st"},
                    {std::nullopt, std::nullopt, "/app/all"}};
  auto spec = Build(true);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  const fs::path blobs = fs::canonical(root_ / "cache/models--org--m/blobs");
  EXPECT_THAT(spec->mounts, Contains(::testing::Field(&WorkerMount::container, "/app/m.st")));
  std::map<std::string, fs::path> by_dest;
  for (const auto& m : spec->mounts) by_dest[m.container] = m.host;
  EXPECT_EQ(by_dest["/app/m.st"], blobs / "b1");
  EXPECT_EQ(by_dest["/app/all/model.safetensors"], blobs / "b1");
  EXPECT_EQ(by_dest["/app/all/sub/config.json"], blobs / "b2");
}

TEST_F(WorkerSpecTest, ContainerLinkDestinationsMustBeCleanAbsolutePaths) {
  for (const char* dest : {"rel/x", "/a/../b", "/runpod-volume/x", "/proc/x", "/a:b"}) {
    request_.links = {{std::nullopt, std::nullopt, dest}};
    EXPECT_EQ(CheckLinks(request_, true).code(), StatusCode::kInvalidArgument) << dest;
  }
  request_.links = {{RepoId::Parse("other/x").value(), std::nullopt, "/app/x"}};
  EXPECT_EQ(CheckLinks(request_, true).code(), StatusCode::kInvalidArgument);
}

TEST_F(WorkerSpecTest, ProcessesSeeHostPathsAndHostGpuIndices) {
  request_.image.reset();
  auto spec = Build(false);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(Env(*spec, "HF_HUB_CACHE"), fs::absolute(root_ / "cache").string());
  EXPECT_EQ(Env(*spec, "MODEL_PATH"), snapshot_.string());
  EXPECT_EQ(Env(*spec, "CUDA_VISIBLE_DEVICES"), "2,3");
  EXPECT_TRUE(spec->mounts.empty());
}

}  // namespace
}  // namespace mc::agent
