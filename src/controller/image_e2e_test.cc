// Image workers end to end through the controller (issue 14), with real parts on loopback: the
// controller and an agent in this process, the agent running workers as containers with real
// podman (runc, a private store), Debian's docker-registry (one open, one with htpasswd auth:
// mc/agent/podman_test_env.h), the example Runpod worker built as an image
// (examples/worker-image/build.sh) and an upstream mirror capped at 1 MB/s so that the model
// download takes seconds. Every test skips, saying why, only when podman cannot run a container
// on this machine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "mc/agent/podman_test_env.h"
#include "controller/test_cluster.h"
#include "mc/testing/eventually.h"

namespace mc::controller {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Eventually;

// Stops the registries and removes the image stores when the test binary ends.
class PodmanCleanup : public ::testing::Environment {
 public:
  void TearDown() override { agent::PodmanTestEnv::Shutdown(); }
};
::testing::Environment* const kCleanup = ::testing::AddGlobalTestEnvironment(new PodmanCleanup);

class ImageE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    env_ = agent::PodmanTestEnv::Get(&why);
    if (env_ == nullptr) {
      GTEST_SKIP() << "SKIPPED LOUDLY: podman cannot run containers on this machine, so this "
                      "image test did not run: "
                   << why;
    }
  }
  void TearDown() override {
    cluster_.reset();  // stops the workers, then the agent
    if (env_ != nullptr) env_->RemoveStore(engine_root_);
  }

  // The controller, an agent running containers, and demo/a (2 MB) upstream at 1 MB/s.
  void StartCluster(const std::string& name) {
    engine_root_ = env_->dir() / ("e2e_engine_" + name);
    TestClusterOptions o;
    o.name = "image_e2e_" + name;
    o.models = {{"demo/a", 2 << 20}, {"demo/b", 64 << 10}};
    o.upstream_options = [](mirror::MirrorOptions& m) { m.max_bytes_per_second = 1'000'000; };
    o.agent_options = [this](int, agent::AgentOptions& a) {
      a.runtime.kind = agent::RuntimeKind::kPodman;
      a.runtime.oci_runtime = "runc";
      a.runtime.engine_root = engine_root_;
      a.runtime.insecure_registries = {env_->registry(), env_->auth_registry()};
      a.runtime.cdi_spec_dirs = {engine_root_ / "no-cdi"};
      a.runtime.image_capacity = image_capacity_;
      a.stop_grace = 2s;
    };
    auto made = TestCluster::Create(std::move(o));
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    cluster_ = std::move(*made);
  }
  std::string CreateEndpoint(json fields) {
    fields["name"] = "image-e2e";
    if (!fields.contains("models")) fields["model"] = "demo/a";
    fields["gpuCount"] = 0;
    Reply r = cluster_->Call("POST", "/v1/endpoints", fields.dump());
    EXPECT_EQ(r.status, 200) << r.text;
    return r.body.value("id", "");
  }
  std::vector<json> Workers(const std::string& endpoint) {
    const Reply r = cluster_->Call("GET", "/v1/workers?endpoint=" + endpoint);
    std::vector<json> out;
    for (const json& w : r.body["workers"]) out.push_back(w);
    return out;
  }
  // POST /run, then its /status until the job is final (a cold start with an image pull on a
  // loaded machine may outlast one runsync wait).
  Reply RunToTheEnd(const std::string& endpoint, const std::string& input) {
    Reply run = cluster_->Call("POST", "/v2/" + endpoint + "/run", input);
    EXPECT_EQ(run.status, 200) << run.text;
    const std::string id = run.body.value("id", "");
    Reply status;
    Eventually([&] {
      status = cluster_->Call("GET", "/v2/" + endpoint + "/status/" + id);
      const std::string s = status.body.is_object() ? status.body.value("status", "") : "";
      return s != "IN_QUEUE" && s != "IN_PROGRESS";
    }, 300s);
    return status;
  }
  // The first worker of `endpoint` that ended failed, once there is one.
  json FailedWorker(const std::string& endpoint) {
    json failed;
    Eventually([&] {
      for (const json& w : Workers(endpoint)) {
        if (w["phase"] == "failed") failed = w;
      }
      return !failed.is_null();
    }, 120s);
    return failed;
  }

  agent::PodmanTestEnv* env_ = nullptr;
  fs::path engine_root_;
  uint64_t image_capacity_ = 0;  // the agent's --image-capacity; 0 = none
  std::unique_ptr<TestCluster> cluster_;
};

TEST_F(ImageE2eTest, FirstJobPullsTheImageWhileTheModelDownloadsUnbilledAndTheNextWorkerIsAHit) {
  auto image = env_->ExampleWorkerImage();
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  StartCluster("miss_hit");
  const std::string manifest = "/v2/mctest/worker/manifests/1";
  const int manifests_before = env_->RegistryLogLines(manifest);
  const std::string ep = CreateEndpoint({{"image", *image}, {"workersMax", 2}, {"idleTimeout", 600}});

  // The miss: no host has the image or the model.
  Reply first = RunToTheEnd(ep, R"({"input": {"x": 1}})");
  ASSERT_EQ(first.body["status"], "COMPLETED") << first.text;
  EXPECT_EQ(first.body["output"]["model"], "demo/a");
  std::vector<json> workers = Workers(ep);
  ASSERT_EQ(workers.size(), 1u);
  const json miss = workers[0];
  EXPECT_FALSE(miss["cacheHit"].get<bool>());
  EXPECT_GT(env_->RegistryLogLines(manifest), manifests_before);  // pulled from the registry
  const int64_t image_ms = miss["coldStart"]["imageMs"].get<int64_t>();
  const int64_t download_ms = miss["coldStart"]["downloadMs"].get<int64_t>();
  EXPECT_GT(image_ms, 0) << miss.dump();
  EXPECT_GE(download_ms, 1000) << miss.dump();  // 2 MB at 1 MB/s

  // The ledger: one unbilled initializing row holding both parts; they ran at once, so the
  // phase lasted less than the two one after the other.
  Reply ledger = cluster_->Call("GET", "/v1/ledger?endpoint=" + ep);
  const json* init = nullptr;
  for (const json& row : ledger.body["ledger"]) {
    if (row["workerId"] == miss["id"] && row["phase"] == "initializing") init = &row;
  }
  ASSERT_NE(init, nullptr) << ledger.text;
  EXPECT_FALSE((*init)["billed"].get<bool>());
  EXPECT_EQ((*init)["parts"]["imageMs"], image_ms);
  EXPECT_EQ((*init)["parts"]["downloadMs"], download_ms);
  const int64_t initializing = (*init)["end"].get<int64_t>() - (*init)["start"].get<int64_t>();
  EXPECT_GE(initializing, std::max(image_ms, download_ms)) << ledger.text;
  EXPECT_LT(initializing, image_ms + download_ms) << "the pull and the download were not parallel: "
                                                  << ledger.text;
  Reply cold = cluster_->Call("GET", "/v1/coldstarts?endpoint=" + ep);
  ASSERT_EQ(cold.body["coldStarts"].size(), 1u) << cold.text;
  EXPECT_EQ(cold.body["coldStarts"][0]["parts"]["imageMs"], image_ms);
  EXPECT_EQ(cold.body["coldStarts"][0]["parts"]["downloadMs"], download_ms);

  // A second worker on that host: the image and the model are there, nothing is pulled.
  const int manifests_after_miss = env_->RegistryLogLines(manifest);
  ASSERT_EQ(cluster_->Call("PATCH", "/v1/endpoints/" + ep, R"({"workersMin": 2})").status, 200);
  json hit;
  ASSERT_TRUE(Eventually([&] {
    for (const json& w : Workers(ep)) {
      if (w["id"] != miss["id"] && (w["phase"] == "idle" || w["phase"] == "running")) hit = w;
    }
    return !hit.is_null();
  }, 120s)) << cluster_->Call("GET", "/v1/workers?endpoint=" + ep).text;
  EXPECT_EQ(hit["hostId"], miss["hostId"]);
  EXPECT_TRUE(hit["cacheHit"].get<bool>()) << hit.dump();
  EXPECT_EQ(hit["coldStart"]["imageMs"], 0) << hit.dump();
  EXPECT_EQ(env_->RegistryLogLines(manifest), manifests_after_miss);
  Reply second = RunToTheEnd(ep, R"({"input": {"x": 2}})");
  EXPECT_EQ(second.body["status"], "COMPLETED") << second.text;
}

TEST_F(ImageE2eTest, ModelsWithPatternsLinksCommandAndArgsReachTheContainer) {
  StartCluster("models_links");
  const std::string hub = "/runpod-volume/huggingface-cache/hub";
  const std::string script = "ls " + hub + "; echo ---; ls $MODEL_PATH; echo ---; "
                             "head -c 1 /app/cfg.json; echo; echo PATHS=$MODEL_PATHS; echo A=$A; "
                             "echo done";
  const std::string ep = CreateEndpoint(
      {{"models", {{{"model", "demo/a"}, {"include", {"*.json"}}}, {{"model", "demo/b"}}}},
       {"links", {{{"dest", "/app/cfg.json"}, {"file", "config.json"}, {"model", "demo/b"}}}},
       {"image", env_->Image("bb")},
       {"command", {"/bin/sh", "-c"}},  // the ENTRYPOINT, and args its CMD
       {"args", {script}},
       {"env", {{"A", "from-the-endpoint"}}},
       {"workersMin", 1}});
  // The container prints and exits: the worker ends "stopped" with its output in the agent's log.
  json ended;
  ASSERT_TRUE(Eventually([&] {
    for (const json& w : Workers(ep)) {
      if (w["phase"] == "stopped" || w["phase"] == "failed") ended = w;
    }
    return !ended.is_null();
  }, 120s)) << cluster_->Call("GET", "/v1/workers?endpoint=" + ep).text;
  Reply doc = Send("GET", cluster_->agents()[0]->base_url() + "/v1/workers/" +
                              ended["id"].get<std::string>(),
                   Bearer(cluster_->key()));
  ASSERT_EQ(doc.status, 200) << doc.text;
  EXPECT_EQ(doc.body["exit_code"], 0) << doc.text;
  std::ifstream in(doc.body["logs"]["stdout"].get<std::string>());
  const std::string out((std::istreambuf_iterator<char>(in)), {});
  // Both repos and nothing else; demo/a only its *.json files; the link; the env.
  EXPECT_THAT(out, HasSubstr("models--demo--a\nmodels--demo--b\n---\n")) << out;
  EXPECT_THAT(out, HasSubstr("config.json")) << out;
  EXPECT_THAT(out, Not(HasSubstr(".safetensors"))) << out;
  EXPECT_THAT(out, HasSubstr("\n{\n")) << out;  // the linked config.json's first byte
  EXPECT_THAT(out, HasSubstr("PATHS=" + hub + "/models--demo--a/snapshots/")) << out;
  EXPECT_THAT(out, HasSubstr(":" + hub + "/models--demo--b/snapshots/")) << out;
  EXPECT_THAT(out, HasSubstr("A=from-the-endpoint\ndone")) << out;
}

TEST_F(ImageE2eTest, UnknownImageFailsTheWorkerWithTheRegistrysAnswerInTheApi) {
  StartCluster("unknown");
  const std::string ep = CreateEndpoint(
      {{"image", env_->registry() + "/mctest/no-such-image:1"}, {"workersMin", 1}});
  const json failed = FailedWorker(ep);
  ASSERT_FALSE(failed.is_null()) << cluster_->Call("GET", "/v1/workers?endpoint=" + ep).text;
  const std::string message = failed["message"];
  EXPECT_THAT(message, HasSubstr("no-such-image")) << message;
  EXPECT_THAT(message, HasSubstr("not found")) << message;
}

TEST_F(ImageE2eTest, RegistryRefusingTheCredentialsFailsTheWorkerWithoutQuotingThem) {
  StartCluster("auth");
  const std::string wrong = "wrong-password-e2e-51c9";
  const std::string ep = CreateEndpoint(
      {{"image", env_->auth_registry() + "/mctest/bb:1"},
       {"command", {"/bin/sh", "-c", "sleep 60"}},
       {"registryAuth", {{"username", agent::PodmanTestEnv::kUser}, {"password", wrong}}},
       {"workersMin", 1}});
  const json failed = FailedWorker(ep);
  ASSERT_FALSE(failed.is_null()) << cluster_->Call("GET", "/v1/workers?endpoint=" + ep).text;
  const std::string message = failed["message"];
  EXPECT_THAT(message, HasSubstr("registryAuth")) << message;
  Reply everything = cluster_->Call("GET", "/v1/workers?endpoint=" + ep);
  EXPECT_THAT(everything.text, Not(HasSubstr(wrong)));
  EXPECT_THAT(cluster_->Call("GET", "/v1/endpoints/" + ep).text, Not(HasSubstr(wrong)));
}

// Endpoint A pulls a private image onto the host with its registryAuth; endpoint B names the same
// image: without credentials its worker is refused (the image is on the host, but the registry
// would not give it to B), with its own valid ones it runs there.
TEST_F(ImageE2eTest, PrivateImageOnTheHostRunsOnlyForEndpointsTheRegistryLetsReadIt) {
  StartCluster("entitled");
  const std::string image = env_->auth_registry() + "/mctest/bb:1";
  auto live = [&](const std::string& ep) {
    json found;
    Eventually([&] {
      for (const json& w : Workers(ep)) {
        if (w["phase"] == "starting" || w["phase"] == "idle") found = w;
      }
      return !found.is_null();
    }, 120s);
    return found;
  };
  const std::string a = CreateEndpoint(
      {{"image", image},
       {"command", {"/bin/sh", "-c", "sleep 600"}},
       {"registryAuth", {{"username", agent::PodmanTestEnv::kUser},
                         {"password", agent::PodmanTestEnv::kPassword}}},
       {"workersMin", 1}});
  const json on_host = live(a);
  ASSERT_FALSE(on_host.is_null()) << cluster_->Call("GET", "/v1/workers?endpoint=" + a).text;

  const std::string b = CreateEndpoint(
      {{"image", image}, {"command", {"/bin/sh", "-c", "sleep 600"}}, {"workersMin", 1}});
  const json refused = FailedWorker(b);
  ASSERT_FALSE(refused.is_null()) << cluster_->Call("GET", "/v1/workers?endpoint=" + b).text;
  EXPECT_EQ(refused["hostId"], on_host["hostId"]);
  const std::string message = refused["message"];
  EXPECT_THAT(message, HasSubstr("refused to serve it without credentials")) << message;
  EXPECT_THAT(message, HasSubstr("registryAuth")) << message;
  // Through the placement back-off: the endpoint says why and waits before the next try.
  json backoff;
  ASSERT_TRUE(Eventually([&] {
    backoff = cluster_->Call("GET", "/v1/endpoints/" + b).body["placementBackoff"];
    return backoff.is_object();
  })) << cluster_->Call("GET", "/v1/endpoints/" + b).text;
  EXPECT_THAT(backoff.dump(), HasSubstr("registryAuth")) << backoff.dump();

  ASSERT_EQ(cluster_->Call("PATCH", "/v1/endpoints/" + b,
                           json{{"registryAuth", {{"username", agent::PodmanTestEnv::kUser2},
                                                  {"password", agent::PodmanTestEnv::kPassword2}}}}
                               .dump())
                .status,
            200);
  const json runs = live(b);
  ASSERT_FALSE(runs.is_null()) << cluster_->Call("GET", "/v1/workers?endpoint=" + b).text;
  EXPECT_EQ(runs["hostId"], on_host["hostId"]);
  EXPECT_EQ(runs["coldStart"]["imageMs"], 0) << runs.dump();  // from the store, not pulled
}

TEST_F(ImageE2eTest, ImageLargerThanTheHostsImageBudgetFailsTheWorkerSayingSo) {
  image_capacity_ = 4096;  // a busybox image is about 1 MB
  StartCluster("budget");
  const std::string ep = CreateEndpoint({{"image", env_->Image("bb2")},
                                         {"command", {"/bin/sh", "-c", "sleep 60"}},
                                         {"workersMin", 1}});
  const json failed = FailedWorker(ep);
  ASSERT_FALSE(failed.is_null()) << cluster_->Call("GET", "/v1/workers?endpoint=" + ep).text;
  EXPECT_THAT(failed["message"].get<std::string>(), HasSubstr("image-capacity")) << failed.dump();
}

TEST_F(ImageE2eTest, MalformedImageReferenceIs400AtCreateAndNothingIsPlaced) {
  StartCluster("malformed");
  Reply r = cluster_->Call("POST", "/v1/endpoints",
                           json{{"name", "bad"}, {"model", "demo/a"}, {"gpuCount", 0},
                                {"image", env_->registry() + "/MCTEST/Worker:1"},
                                {"workersMin", 1}}
                               .dump());
  EXPECT_EQ(r.status, 400) << r.text;
  EXPECT_THAT(r.body.value("error", ""), HasSubstr("image reference")) << r.text;
  EXPECT_EQ(cluster_->Call("GET", "/v1/endpoints").body["endpoints"].size(), 0u);
  EXPECT_EQ(cluster_->Call("GET", "/v1/workers").body["workers"].size(), 0u);
}

// Placement through the controller, without podman: two hosts (their inventories posted as an
// agent would, their agents unreachable) both hold the model complete and run containers; only
// host-z has the image. The worker goes to host-z, though the tie-break by id alone would pick
// host-a.
TEST(ImagePlacementTest, HostWithTheImageAndTheModelIsChosenOverOneWithOnlyTheModel) {
  TestClusterOptions o;
  o.name = "image_placement";
  o.models = {{"demo/a", 64 << 10}};
  o.agents = 0;
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  const std::string image = "registry.example:5000/org/worker:1";
  Reply created = c.Call("POST", "/v1/endpoints",
                         json{{"name", "placement"}, {"model", "demo/a"}, {"gpuCount", 0},
                              {"image", image}}
                             .dump());
  ASSERT_EQ(created.status, 200) << created.text;
  const std::string ep = created.body["id"];
  auto host = [&](const std::string& id, bool with_image) {
    json doc{{"host_id", id},
             {"url", "http://127.0.0.1:9"},  // nobody answers: the start fails, the choice stays
             {"gpu_type", "test-gpu"},
             {"gpus", {{"total", 2}, {"free", 2}}},
             {"disk", {{"capacity_bytes", 1ull << 30}, {"used_bytes", 64 << 10}}},
             {"snapshots", {{{"model", "demo/a"}, {"commit", created.body["commit"]},
                             {"size_bytes", 64 << 10}, {"complete", true}}}},
             {"runtime", {{"kind", "podman"}, {"containers", true}}},
             {"images", {{"items", json::array()}, {"pulls", json::array()}}}};
    if (with_image) {
      doc["images"]["items"].push_back(json{{"reference", image}, {"size_bytes", 100'000'000}});
    }
    return doc.dump();
  };
  // Only a host's own credential registers it (docs/security.md, enrolled hosts).
  auto register_host = [&](const std::string& id, bool with_image) {
    const Reply enrolled = c.Call("POST", "/v1/hosts/enroll", json{{"hostId", id}}.dump());
    if (enrolled.status != 200) return enrolled.status;
    net::HeaderMap headers;
    headers.Set("Authorization", "Bearer " + enrolled.body["credential"].get<std::string>());
    headers.Set("Content-Type", "application/json");
    return Send("POST", c.controller().base_url() + "/v1/hosts/register", headers,
                host(id, with_image))
        .status;
  };
  ASSERT_EQ(register_host("host-a", false), 200);
  ASSERT_EQ(register_host("host-z", true), 200);
  ASSERT_EQ(c.Call("PATCH", "/v1/endpoints/" + ep, R"({"workersMin": 1})").status, 200);
  json first;
  ASSERT_TRUE(Eventually([&] {
    const Reply r = c.Call("GET", "/v1/workers?endpoint=" + ep);
    if (r.body["workers"].empty()) return false;
    first = r.body["workers"][0];
    return true;
  }));
  EXPECT_EQ(first["hostId"], "host-z") << first.dump();
}

}  // namespace
}  // namespace mc::controller
