// controller, keys and up: the serverless control plane, its API keys, and the all-in-one.
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <csignal>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "mc/agent/agent.h"
#include "mc/agent/runtime_options.h"
#include "mc/cache/cache_store.h"
#include "mc/cache/importer.h"
#include "mc/common/byte_count.h"
#include "mc/common/logging.h"
#include "mc/controller/controller.h"
#include "mc/hub/hub_config.h"
#include "mc/mirror/mirror_server.h"
#include "mc/net/http_client.h"
#include "mc/testing/model_fixture.h"

namespace mc::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A secret kept in a file (an API key, a database password): its content without the trailing
// newline. None if `file` is empty.
StatusOr<std::optional<hub::Secret>> ReadSecretFile(const std::string& file) {
  if (file.empty()) return std::optional<hub::Secret>();
  std::ifstream in(file);
  if (!in) return NotFoundError("cannot read " + file);
  std::string key((std::istreambuf_iterator<char>(in)), {});
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  if (key.empty()) return InvalidArgumentError(file + " is empty");
  return std::optional<hub::Secret>(hub::Secret(std::move(key)));
}

StatusOr<std::optional<hub::Secret>> ReadKeyFile(const std::string& file) {
  return ReadSecretFile(file);
}

// --db and --db-password-file, as the controller, keys and up take them.
constexpr const char* kDbHelp =
    "The store: sqlite:PATH (one file; the embedded default), or a PostgreSQL database as a\n"
    "libpq URI, postgresql://[USER@]HOST[:PORT]/DBNAME[?PARAM=VALUE&...] (a Unix socket:\n"
    "postgresql:///DBNAME?host=/run/postgresql). Never put a password in it (command lines\n"
    "are visible to every user): use --db-password-file, ~/.pgpass or $PGPASSFILE";
constexpr const char* kDbPasswordHelp =
    "File holding the PostgreSQL password (trailing newline ignored; keep it mode 0600)";

constexpr const char* kSecretKeyHelp =
    "The key that seals the secrets the store holds (HF tokens, secret env, host credentials),\n"
    "in a file of its own, mode 0600, created on first use; back it up apart from the database:\n"
    "without it no stored secret can be read. Default: controller-secret.key beside a SQLite\n"
    "file; required with PostgreSQL (every controller of the database needs the same file)";

void AddDbOptions(CLI::App& cmd, std::string& db, std::string& password_file) {
  cmd.add_option("--db", db, kDbHelp)->type_name("STORE");
  cmd.add_option("--db-password-file", password_file, kDbPasswordHelp)->type_name("FILE");
}

net::HttpClientRequest Request(std::string method, std::string url,
                               const net::HeaderMap& headers) {
  net::HttpClientRequest req;
  req.method = std::move(method);
  req.url = std::move(url);
  req.headers = headers;
  return req;
}

StatusOr<hub::Endpoint> UpstreamOrDefault(const std::string& flag) {
  std::string url = flag;
  if (url.empty()) {
    const char* env = std::getenv("HF_ENDPOINT");
    url = env && *env ? env : std::string(hub::kDefaultEndpoint);
  }
  return hub::Endpoint::Parse(url);
}

// ---- controller ----

struct ControllerArgs {
  std::string listen = "127.0.0.1:8080", db, db_password_file, upstream, public_url, agent_key_file;
  std::string advertise_url;
  std::string secret_key_file, peer_key_file;
  std::string placement = "ttr";
  double requeue_after = 30;
  double history_retention_days = 30;
  double entitlement_grace_hours = 24;
  bool webhook_allow_private = false;
  std::vector<std::string> webhook_allow_hosts;
  TlsArgs tls;
};

Status RunController(const ControllerArgs& args) {
  controller::ControllerOptions o;
  o.listen = args.listen;
  if (args.db.empty()) {
    return InvalidArgumentError("--db is required: sqlite:PATH or postgresql://HOST/DBNAME");
  }
  o.db = args.db;
  MC_ASSIGN_OR_RETURN(o.db_password, ReadSecretFile(args.db_password_file), "--db-password-file");
  o.secret_key_file = args.secret_key_file;
  MC_ASSIGN_OR_RETURN(o.upstream, UpstreamOrDefault(args.upstream), "--upstream");
  if (!args.public_url.empty()) o.public_url = args.public_url;
  if (!args.advertise_url.empty()) o.advertise_url = args.advertise_url;
  MC_ASSIGN_OR_RETURN(o.agent_api_key, ReadKeyFile(args.agent_key_file), "--agent-key-file");
  MC_ASSIGN_OR_RETURN(o.peer_key, ReadKeyFile(args.peer_key_file), "--peer-key-file");
  o.requeue_unlisted_after = std::chrono::milliseconds(std::llround(args.requeue_after * 1000));
  o.history_retention =
      std::chrono::milliseconds(std::llround(args.history_retention_days * 86'400'000.0));
  o.entitlement_grace =
      std::chrono::milliseconds(std::llround(args.entitlement_grace_hours * 3'600'000.0));
  o.webhook_allow_private = args.webhook_allow_private;
  o.webhook_allowed_hosts = args.webhook_allow_hosts;
  o.placement = args.placement;
  o.tls_cert_file = args.tls.cert;
  o.tls_key_file = args.tls.key;
  o.ca_file = args.tls.ca;
  const sigset_t stop = BlockStopSignals();
  MC_ASSIGN_OR_RETURN(auto c, controller::Controller::Create(std::move(o)));
  MC_RETURN_IF_ERROR(c->Start(), "listen on " + args.listen);
  std::cout << "controller listening on " << c->base_url() << std::endl;
  WaitForStopSignal(stop);
  c->Stop();
  return Status::Ok();
}

// ---- keys ----

struct KeysArgs {
  std::string db, db_password_file, name = "default", tenant = "default", role = "admin";
};

Status RunKeysCreate(const KeysArgs& args) {
  MC_ASSIGN_OR_RETURN(auto password, ReadSecretFile(args.db_password_file), "--db-password-file");
  MC_ASSIGN_OR_RETURN(std::string key, controller::AddApiKey(args.db, password, args.name,
                                                            args.tenant, args.role));
  std::cout << key << std::endl;
  std::cerr << "API key \"" << args.name << "\" (" << args.role << " of tenant " << args.tenant
            << ") created; it is shown only now. Send it as 'Authorization: Bearer <key>'."
            << std::endl;
  return Status::Ok();
}

// ---- hosts ----

Status WriteFile(const fs::path& path, const std::string& content, mode_t mode);

struct HostsArgs {
  std::string controller, key_file, host_id, credential_file;
};

// POST `path` with `body` to the controller at `url` with an admin key: the JSON answer, or an
// error that carries the controller's message.
StatusOr<json> ControllerPost(const std::string& url, const std::string& key,
                              const std::string& path, const json& body) {
  net::HeaderMap h;
  h.Set("Authorization", "Bearer " + key);
  h.Set("Content-Type", "application/json");
  net::HttpClientRequest req = Request("POST", url + path, h);
  req.body = body.dump();
  req.timeout = std::chrono::milliseconds(30'000);
  MC_ASSIGN_OR_RETURN(auto res, net::HttpClient::Create()->Send(req), "controller " + url);
  json answer = json::parse(res.body, nullptr, false);
  if (res.status != 200) {
    const std::string why = answer.is_object() ? answer.value("error", "") : res.body.substr(0, 200);
    return Status(res.status == 401 ? StatusCode::kUnauthenticated
                  : res.status == 403 ? StatusCode::kPermissionDenied
                  : res.status == 404 ? StatusCode::kNotFound
                                      : StatusCode::kFailedPrecondition,
                  "controller " + url + path + ": HTTP " + std::to_string(res.status) + ": " + why);
  }
  return answer;
}

// Enrolls `host_id` with the controller at `url` (an admin key) and returns its credential.
StatusOr<std::string> EnrollHost(const std::string& url, const std::string& key,
                                 const std::string& host_id) {
  MC_ASSIGN_OR_RETURN(json answer,
                      ControllerPost(url, key, "/v1/hosts/enroll", json{{"hostId", host_id}}));
  std::string credential = answer.value("credential", "");
  if (credential.empty()) return InternalError("the controller answered no credential");
  return credential;
}

// --controller (else $MODELCACHE_CONTROLLER, else the default listen address) and the admin key
// (--key-file, else $MODELCACHE_API_KEY).
StatusOr<std::pair<std::string, std::string>> ControllerAndKey(const HostsArgs& args) {
  std::string url = args.controller;
  if (url.empty()) {
    const char* env = std::getenv("MODELCACHE_CONTROLLER");
    url = env && *env ? env : "http://127.0.0.1:8080";
  }
  MC_ASSIGN_OR_RETURN(hub::Endpoint endpoint, hub::Endpoint::Parse(url), "--controller");
  MC_ASSIGN_OR_RETURN(auto key, ReadKeyFile(args.key_file), "--key-file");
  if (!key) {
    const char* env = std::getenv("MODELCACHE_API_KEY");
    if (env && *env) key = hub::Secret(env);
  }
  if (!key) {
    return InvalidArgumentError(
        "an admin API key is needed: --key-file FILE or $MODELCACHE_API_KEY (create one with "
        "'modelcache keys create --db ... --role admin')");
  }
  return std::pair<std::string, std::string>(endpoint.url(), std::string(key->Reveal()));
}

Status RunHostsEnroll(const HostsArgs& args) {
  MC_ASSIGN_OR_RETURN(auto target, ControllerAndKey(args));
  MC_ASSIGN_OR_RETURN(std::string credential,
                      EnrollHost(target.first, target.second, args.host_id));
  if (!args.credential_file.empty()) {
    MC_RETURN_IF_ERROR(WriteFile(args.credential_file, credential + "\n", 0600));
    std::cerr << "host " << args.host_id << " enrolled; its credential is in "
              << args.credential_file << " (mode 0600). Start its agent with --host-id "
              << args.host_id << " --host-credential-file " << args.credential_file << std::endl;
    return Status::Ok();
  }
  std::cout << credential << std::endl;
  std::cerr << "host " << args.host_id << " enrolled; the credential is shown only now. Put it "
            << "in a file (mode 0600) on that host and start its agent with --host-id "
            << args.host_id << " --host-credential-file FILE" << std::endl;
  return Status::Ok();
}

Status RunHostsSchedule(const HostsArgs& args, const std::string& verb) {
  MC_ASSIGN_OR_RETURN(auto target, ControllerAndKey(args));
  MC_ASSIGN_OR_RETURN(json answer, ControllerPost(target.first, target.second,
                                                  "/v1/hosts/" + args.host_id + "/" + verb,
                                                  json::object()));
  const std::string schedule = answer.value("schedule", "");
  std::cout << "host " << args.host_id << ": "
            << (schedule.empty() ? "schedulable (uncordoned)" : schedule) << std::endl;
  return Status::Ok();
}

// ---- up ----

struct UpArgs {
  std::string data_dir = "modelcache-up", listen = "127.0.0.1:8080", upstream, capacity = "20GB";
  std::string db, db_password_file;  // "" = sqlite:<data-dir>/controller.db
  std::string secret_key_file;       // "" = <data-dir>/controller-secret.key
  std::string worker_script = "examples/runpod_worker.py", demo_model_size = "16MiB";
  std::string demo_upstream_rate;  // "" = no cap
  std::string runtime = "auto";    // the agents' --runtime
  int agents = 2, gpus = 2;
  bool demo = false, check = false;
};

constexpr const char* kDemoModel = "demo/tiny-llama";
constexpr const char* kDemoGatedModel = "demo/gated-llama";

// Created with `mode` (never wider for a moment: keys and credentials go through here); an
// existing file is narrowed to it first.
Status WriteFile(const fs::path& path, const std::string& content, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError(errno, "write " + path.string());
  const bool ok = ::fchmod(fd, mode) == 0 &&
                  ::write(fd, content.data(), content.size()) ==
                      static_cast<ssize_t>(content.size());
  const int error = errno;
  ::close(fd);
  if (!ok) return ErrnoError(error, "write " + path.string());
  return Status::Ok();
}

// The demo upstream: two generated repos in a cache under the data dir, one public and one gated
// (its token in demo-hf-token), served by an in-process mirror, its file bytes capped at
// `bytes_per_second` (0 = no cap).
StatusOr<std::unique_ptr<mirror::MirrorServer>> StartDemoUpstream(const fs::path& data,
                                                                  uint64_t model_bytes,
                                                                  uint64_t bytes_per_second) {
  const fs::path cache = data / "upstream";
  MC_ASSIGN_OR_RETURN(auto store, cache::CacheStore::Open({cache, std::nullopt, true}));
  for (const char* id : {kDemoModel, kDemoGatedModel}) {
    MC_ASSIGN_OR_RETURN(RepoId repo, RepoId::Parse(id));
    if (store->RepoExists(repo)) continue;
    const fs::path src = data / "src" / repo.FolderName();
    testing::ModelFixtureOptions f;
    f.total_weight_bytes = model_bytes;
    f.shards = 2;
    f.seed = std::string(id) == kDemoModel ? 1 : 2;
    std::error_code ec;
    fs::remove_all(src, ec);
    MC_RETURN_IF_ERROR(testing::WriteModelFixture(src, f).status(), "demo model");
    MC_RETURN_IF_ERROR(cache::ImportFolder(*store, src, repo, *Revision::Parse("main")).status(),
                       "import the demo model");
  }
  const fs::path token_file = data / "demo-hf-token";
  if (!fs::exists(token_file)) {
    MC_RETURN_IF_ERROR(WriteFile(token_file, "hf_demo_" + std::to_string(::getpid()) + "\n", 0600));
  }
  MC_ASSIGN_OR_RETURN(auto token, ReadKeyFile(token_file.string()));
  const fs::path access = data / "upstream-access.json";
  MC_RETURN_IF_ERROR(WriteFile(access,
                               json{{"repos", {{kDemoGatedModel, {{"gated", "manual"},
                                                                  {"tokens", {token->Reveal()}}}}}}}
                                   .dump(2),
                               0600));
  mirror::MirrorOptions m;
  m.cache_dir = cache;
  m.listen = "127.0.0.1:0";
  m.access_config = access;
  m.max_bytes_per_second = bytes_per_second;
  MC_ASSIGN_OR_RETURN(auto server, mirror::MirrorServer::Create(std::move(m)));
  MC_RETURN_IF_ERROR(server->Start(), "demo upstream");
  return server;
}

// The API key of this data dir: created once, kept in <data>/api-key (0600); made again if the
// store does not know it (a data dir used with another --db before).
StatusOr<std::string> DataDirKey(const fs::path& data, const controller::ControllerOptions& co) {
  const fs::path file = data / "api-key";
  auto existing = ReadKeyFile(fs::exists(file) ? file.string() : "");
  if (existing.ok() && *existing) {
    MC_ASSIGN_OR_RETURN(bool known, controller::HasApiKey(co.db, co.db_password, **existing));
    if (known) return std::string((*existing)->Reveal());
  }
  MC_ASSIGN_OR_RETURN(std::string key, controller::AddApiKey(co.db, co.db_password, "up"));
  MC_RETURN_IF_ERROR(WriteFile(file, key + "\n", 0600));
  return key;
}

extern "C" char** environ;

// Builds the example worker as an image (examples/worker-image/build.sh, next to the worker
// script; no network: FROM scratch on this host's python3, cached after the first build) into
// the engine's store, where the agents find it (a hit, no pull). Its output goes to
// <data>/demo-image-build.log. The tag, or why it could not be built.
StatusOr<std::string> BuildDemoImage(const UpArgs& args, const fs::path& data,
                                     const agent::RuntimeOptions& r) {
  const fs::path script =
      fs::absolute(args.worker_script).parent_path() / "worker-image" / "build.sh";
  if (!fs::exists(script)) {
    return NotFoundError(script.string() + " is missing (run from the repository root)");
  }
  const std::string tag = "localhost/modelcache-demo-worker:latest";
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!std::string_view(*e).starts_with("ENGINE")) env.emplace_back(*e);
  }
  std::string engine_args;
  if (!r.engine_root.empty()) {
    engine_args = "--root " + (r.engine_root / "storage").string() + " --tmpdir " +
                  (r.engine_root / "tmp").string();
  }
  if (!r.oci_runtime.empty()) engine_args += " --runtime " + r.oci_runtime;
  env.push_back("ENGINE_ARGS=" + engine_args);
  if (!r.engine.empty()) env.push_back("ENGINE=" + r.engine);
  if (r.kind == agent::RuntimeKind::kDocker && r.engine.empty()) env.push_back("ENGINE=docker");
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string script_arg = script.string(), tag_arg = tag;
  char* argv[] = {script_arg.data(), tag_arg.data(), nullptr};
  const fs::path log = data / "demo-image-build.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::cerr << "up: building the demo worker image " << tag << " with " << script.string()
            << " (cached after the first build; log in " << log.string() << ")" << std::endl;
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, script.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return ErrnoError(rc, "run " + script.string());
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    if (text.size() > 400) text = "..." + text.substr(text.size() - 400);
    return InternalError(script.filename().string() + " failed: " + text);
  }
  return tag;
}

// The agents' runtime from --runtime (auto, podman, docker, process), said on stderr.
StatusOr<agent::RuntimeOptions> UpRuntime(const UpArgs& args) {
  agent::RuntimeOptions r;
  MC_ASSIGN_OR_RETURN(r.kind, ParseRuntimeKind(args.runtime));
  MC_RETURN_IF_ERROR(ResolveWorkerRuntime(args.runtime, r, "up"));
  return r;
}

// Creates the demo endpoint (if missing) and sends one job through it: the self-test of --demo.
// With `image` its workers run that image (no GPUs: this host has none to give a container),
// else the worker script as a process; an existing demo endpoint is switched to the same.
Status DemoSelfTest(const std::string& url, const std::string& key, const UpArgs& args,
                    const std::string& image) {
  auto client = net::HttpClient::Create();
  net::HeaderMap h;
  h.Set("Authorization", "Bearer " + key);
  h.Set("Content-Type", "application/json");
  net::HttpClientRequest list = Request("GET", url + "/v1/endpoints", h);
  MC_ASSIGN_OR_RETURN(auto listed, client->Send(list));
  json endpoints = json::parse(listed.body, nullptr, false);
  std::string id;
  bool had_image = false;
  for (const json& e : endpoints.value("endpoints", json::array())) {
    if (e.value("name", "") == "demo") {
      id = e.value("id", "");
      had_image = e.contains("image") && e["image"].is_string();
    }
  }
  const std::string script = fs::absolute(args.worker_script).string();
  if (image.empty() && !fs::exists(script)) {
    return NotFoundError("the demo worker " + script +
                         " is missing; run from the repository root or pass --worker-script");
  }
  json worker = image.empty()
                    ? json{{"image", nullptr}, {"command", {"python3", script}}, {"gpuCount", 1}}
                    : json{{"image", image}, {"command", nullptr}, {"gpuCount", 0}};
  std::cerr << "up: the demo endpoint's workers run "
            << (image.empty() ? "as processes (" + script + ")" : "the image " + image)
            << std::endl;
  if (!id.empty() && had_image != !image.empty()) {  // made in the other mode: switch it
    net::HttpClientRequest update = Request("PATCH", url + "/v1/endpoints/" + id, h);
    update.body = worker.dump();
    MC_ASSIGN_OR_RETURN(auto updated, client->Send(update));
    if (updated.status != 200) {
      return InternalError("switch the demo endpoint's workers: HTTP " +
                           std::to_string(updated.status) + " " + updated.body.substr(0, 300));
    }
  }
  if (id.empty()) {
    net::HttpClientRequest create = Request("POST", url + "/v1/endpoints", h);
    worker.erase(image.empty() ? "image" : "command");
    worker.update(json{{"name", "demo"},
                       {"model", std::string("https://huggingface.co/") + kDemoModel + ":main"},
                       {"workersMax", 2},
                       {"idleTimeout", 30}});
    create.body = worker.dump();
    MC_ASSIGN_OR_RETURN(auto created, client->Send(create));
    if (created.status != 200) {
      return InternalError("create the demo endpoint: HTTP " + std::to_string(created.status) +
                           " " + created.body.substr(0, 300));
    }
    id = json::parse(created.body, nullptr, false).value("id", "");
  }
  std::cerr << "up: demo endpoint " << id << ": sending a test job (the first one downloads the "
            << "model onto a host, unbilled)" << std::endl;
  net::HttpClientRequest run = Request("POST", url + "/v2/" + id + "/runsync?wait=120000", h);
  run.body = R"({"input": {"prompt": "hello"}})";
  run.timeout = std::chrono::milliseconds(130'000);
  MC_ASSIGN_OR_RETURN(auto ran, client->Send(run));
  json status = json::parse(ran.body, nullptr, false);
  if (status.value("status", "") != "COMPLETED") {
    return InternalError("the demo job did not complete: " + ran.body.substr(0, 500));
  }
  std::cout << "demo job COMPLETED in " << status.value("delayTime", 0) << " ms queue + "
            << status.value("executionTime", 0) << " ms run; the worker saw "
            << status["output"].value("tensors", json::object()).size()
            << " tensors of " << kDemoModel << " from its local cache" << std::endl;
  std::cout << "endpoint " << id << std::endl;
  return Status::Ok();
}

// `up` owns its workers: no worker outlives the command (a standalone agent leaves them running).
void StopAll(std::unique_ptr<controller::Controller>& ctl,
             std::vector<std::unique_ptr<agent::Agent>>& agents) {
  constexpr std::chrono::milliseconds kGrace{5'000};
  // While the controller runs, so that it records them stopped; then any it started in between.
  for (auto& a : agents) a->StopWorkers(kGrace);
  ctl->Stop();
  for (auto& a : agents) a->StopWorkers(kGrace);
  for (auto& a : agents) a->Stop();
}

// Long: `up` in the order it happens (data dir, upstream, controller, agents, the demo's
// self-test, wait for a signal, stop); the steps share what the earlier ones started, and a
// failing self-test stops it all as the signal does.
Status RunUp(const UpArgs& args) {
  uint64_t demo_rate = 0;
  if (!args.demo_upstream_rate.empty()) {
    if (!args.demo) return InvalidArgumentError("--demo-upstream-rate needs --demo");
    MC_ASSIGN_OR_RETURN(demo_rate, ParseRate(args.demo_upstream_rate), "--demo-upstream-rate");
  }
  const fs::path data = fs::absolute(args.data_dir);
  std::error_code ec;
  fs::create_directories(data, ec);
  if (ec) return ErrnoError(ec.value(), "create " + data.string());
  const sigset_t stop = BlockStopSignals();

  std::unique_ptr<mirror::MirrorServer> demo_upstream;
  hub::Endpoint upstream = hub::Endpoint::Parse(hub::kDefaultEndpoint).value();
  if (args.demo) {
    MC_ASSIGN_OR_RETURN(ByteCount size, ByteCount::Parse(args.demo_model_size),
                        "--demo-model-size");
    MC_ASSIGN_OR_RETURN(demo_upstream, StartDemoUpstream(data, size.bytes(), demo_rate),
                        "--demo");
    MC_ASSIGN_OR_RETURN(upstream, hub::Endpoint::Parse(demo_upstream->base_url()));
  } else {
    MC_ASSIGN_OR_RETURN(upstream, UpstreamOrDefault(args.upstream), "--upstream");
  }
  // Image workers when the engine runs containers here (and, with --demo, the demo image could
  // be built), else processes; said on stderr.
  MC_ASSIGN_OR_RETURN(agent::RuntimeOptions runtime, UpRuntime(args));
  std::string demo_image;
  if (args.demo && runtime.kind != agent::RuntimeKind::kProcess) {
    StatusOr<std::string> built = BuildDemoImage(args, data, runtime);
    if (built.ok()) {
      demo_image = *built;
    } else if (args.runtime == "auto") {
      std::cerr << "up: workers run as processes: the demo worker image could not be built: "
                << built.status().message() << std::endl;
      runtime.kind = agent::RuntimeKind::kProcess;
    } else {
      return built.status().WithContext("--runtime " + args.runtime + " --demo");
    }
  }

  controller::ControllerOptions co;
  co.listen = args.listen;
  co.db = args.db.empty() ? "sqlite:" + (data / "controller.db").string() : args.db;
  MC_ASSIGN_OR_RETURN(co.db_password, ReadSecretFile(args.db_password_file), "--db-password-file");
  co.secret_key_file = args.secret_key_file.empty() ? data / "controller-secret.key"
                                                    : fs::path(args.secret_key_file);
  co.upstream = upstream;
  co.ping_interval = std::chrono::milliseconds(2'000);
  // One key for everything here: clients, agents towards the controller, the controller towards
  // agents.
  MC_ASSIGN_OR_RETURN(std::string key, DataDirKey(data, co));
  co.agent_api_key = hub::Secret(key);
  MC_ASSIGN_OR_RETURN(auto ctl, controller::Controller::Create(co));
  MC_RETURN_IF_ERROR(ctl->Start(), "listen on " + args.listen);

  std::vector<std::unique_ptr<agent::Agent>> agents;
  for (int i = 1; i <= args.agents; ++i) {
    // Enrolled like any host: the agent registers with its own credential, and the controller
    // presents that credential back on the agent's /v1.
    MC_ASSIGN_OR_RETURN(std::string credential,
                        EnrollHost(ctl->base_url(), key, "host-" + std::to_string(i)),
                        "enroll agent " + std::to_string(i));
    agent::AgentOptions ao;
    const fs::path host = data / ("host-" + std::to_string(i));
    ao.cache_dir = host / "hub";
    ao.state_dir = host / "state";
    fs::create_directories(ao.cache_dir, ec);
    MC_ASSIGN_OR_RETURN(ao.capacity, agent::ResolveCapacity(args.capacity, ao.cache_dir),
                        "--capacity");
    ao.gpus = args.gpus;
    ao.gpu_type = "demo-gpu";
    ao.host_id = "host-" + std::to_string(i);
    ao.upstream = upstream;
    ao.controller_url = ctl->base_url();
    ao.api_key = hub::Secret(key);
    ao.controller_api_key = hub::Secret(credential);
    ao.heartbeat_interval = std::chrono::milliseconds(1'000);
    ao.runtime = runtime;
    MC_ASSIGN_OR_RETURN(auto a, agent::Agent::Create(std::move(ao)), "agent " + std::to_string(i));
    MC_RETURN_IF_ERROR(a->Start(), "agent " + std::to_string(i));
    agents.push_back(std::move(a));
  }
  std::cout << "controller listening on " << ctl->base_url() << std::endl;
  std::cerr << "up: " << args.agents << " hosts with " << args.gpus << " GPU slots each, data in "
            << data.string() << "\n"
            << "up: API key in " << (data / "api-key").string() << " (send it as "
            << "'Authorization: Bearer <key>')" << std::endl;
  if (args.demo) {
    std::cerr << "up: demo upstream " << upstream.url() << " serves " << kDemoModel << " and the "
              << "gated " << kDemoGatedModel << " (its token: " << (data / "demo-hf-token").string()
              << ")" << std::endl;
    if (demo_rate > 0) {
      std::cerr << "up: the demo upstream sends at most " << ByteCount(demo_rate).ToHuman()
                << "/s (--demo-upstream-rate), all downloads together" << std::endl;
    }
    Status tested = DemoSelfTest(ctl->base_url(), key, args, demo_image);
    if (!tested.ok() || args.check) {
      StopAll(ctl, agents);
      return tested;
    }
  }
  std::cerr << "Web console: " << ctl->base_url() << "/ (log in with the key in "
            << (data / "api-key").string() << ")\n"
            << "Try:\n  K=$(cat " << (data / "api-key").string() << ")\n"
            << "  curl -H \"Authorization: Bearer $K\" " << ctl->base_url() << "/v1/endpoints\n"
            << "  curl -H \"Authorization: Bearer $K\" -X POST " << ctl->base_url()
            << "/v2/<endpoint>/runsync -d '{\"input\": {}}'\n"
            << "Stop with Ctrl-C (workers are stopped with it)." << std::endl;
  WaitForStopSignal(stop);
  std::cerr << "up: stopping workers, agents and the controller" << std::endl;
  StopAll(ctl, agents);
  return Status::Ok();
}

}  // namespace

// Long: the controller's flags, each with its help text; a list reads best in one place.
void AddControllerCommands(CLI::App& app, CommandResult& result) {
  auto* cmd = app.add_subcommand(
      "controller",
      "Run the controller: Runpod-compatible serverless endpoints with cached models. Clients use\n"
      "the Runpod job API (/v2/<endpoint>/run, runsync, status, stream, cancel, ...), workers\n"
      "the Runpod worker protocol, operators the /v1 management API; agents register here.\n"
      "Prints 'controller listening on <url>' when ready; stops on SIGTERM.\n"
      "Examples:\n"
      "  modelcache controller --db sqlite:/var/lib/modelcache/controller.db\n"
      "  modelcache controller --db postgresql://modelcache@db.internal/modelcache \\\n"
      "      --db-password-file /etc/modelcache/db-password");
  cmd->require_subcommand(0, 1);
  auto cargs = std::make_shared<ControllerArgs>();
  cmd->add_option("--listen", cargs->listen, "Address and port (default 127.0.0.1:8080)");
  AddDbOptions(*cmd, cargs->db, cargs->db_password_file);
  cmd->add_option("--upstream", cargs->upstream,
                  "The Hub models are resolved against (default $HF_ENDPOINT, else huggingface.co)");
  cmd->add_option("--public-url", cargs->public_url,
                  "How workers reach the controller (default: the listening address). With "
                  "several controllers: the load balancer's URL");
  cmd->add_option("--advertise-url", cargs->advertise_url,
                  "Several controllers on one PostgreSQL database: how the other controllers "
                  "reach this one, to forward requests to it while it leads (default: the "
                  "listening address; set it when listening on 0.0.0.0)")
      ->type_name("URL");
  cmd->add_option("--secret-key-file", cargs->secret_key_file, kSecretKeyHelp)->type_name("FILE");
  cmd->add_option("--agent-key-file", cargs->agent_key_file,
                  "File with the API key agents expect on their /v1 (if they have one)");
  cmd->add_option("--peer-key-file", cargs->peer_key_file,
                  "File with the fleet's peer key, which enrolled agents get when they register\n"
                  "and require on the mirror routes their peers fetch from (default: one derived\n"
                  "from --secret-key-file; set a new one here to rotate it)")
      ->type_name("FILE");
  cmd->add_option("--requeue-after", cargs->requeue_after,
                  "Seconds after which a job a worker holds but no longer lists in its pings (its\n"
                  "result was lost) goes back to the queue (default 30)")
      ->check(CLI::Range(1.0, 3600.0));
  cmd->add_option("--history-retention", cargs->history_retention_days,
                  "Days after which workers that ended and closed ledger rows are deleted from\n"
                  "the store (checked hourly; default 30; 0 keeps them forever). The worker\n"
                  "seconds /metrics reports keep the deleted rows' time")
      ->type_name("DAYS")
      ->check(CLI::Range(0.0, 36500.0));
  cmd->add_option("--entitlement-grace", cargs->entitlement_grace_hours,
                  "Hours a gated or private model's last accepted token check stays valid while\n"
                  "the upstream (the Hub) cannot be reached, so its endpoints keep scaling on\n"
                  "hosts that hold the model (default 24; 0: none). Public models need no check")
      ->type_name("HOURS")
      ->check(CLI::Range(0.0, 8760.0));
  cmd->add_flag("--webhook-allow-private", cargs->webhook_allow_private,
                "Let job webhooks reach loopback, private and link-local addresses (refused by\n"
                "default: a client could otherwise make the controller call this machine's or\n"
                "this network's internal services)");
  cmd->add_option("--webhook-allow-host", cargs->webhook_allow_hosts,
                  "A webhook host name or address allowed even if it is private (repeatable),\n"
                  "e.g. --webhook-allow-host hooks.internal")
      ->type_name("HOST");
  cmd->add_option("--placement", cargs->placement,
                  "Which host gets a new worker: ttr (the one that can be ready soonest: holds the\n"
                  "model, or fetches it fastest), least-loaded (fewest workers) or random\n"
                  "(default ttr; the simulator study in docs/simulator.md compares them)")
      ->check(CLI::IsMember({"ttr", "least-loaded", "random"}));
  AddTlsOptions(*cmd, cargs->tls, /*client_side=*/true);
  cmd->footer("Create an API key first: modelcache keys create --db sqlite:PATH --name me");
  cmd->callback([cmd, cargs, &result] {
    if (cmd->get_subcommands().size() > 0) return;  // migrate-store ran instead
    SetUpLogging("info");
    result.status = RunController(*cargs);
  });
  AddMigrateStoreCommand(*cmd, result);

  auto* keys = app.add_subcommand("keys", "Manage the controller's API keys");
  keys->require_subcommand(1);
  auto kargs = std::make_shared<KeysArgs>();
  auto* create = keys->add_subcommand(
      "create", "Create an API key and print it (it is stored hashed and shown only once)");
  AddDbOptions(*create, kargs->db, kargs->db_password_file);
  create->get_option("--db")->required();
  create->add_option("--name", kargs->name, "A name to recognise the key by (default default)");
  create->add_option("--tenant", kargs->tenant,
                     "The tenant the key belongs to: it sees and changes only that tenant's\n"
                     "endpoints, jobs, workers and ledger (1-64 of a-z 0-9 - _; default default)")
      ->type_name("TENANT");
  create->add_option("--role", kargs->role,
                     "admin (everything: every tenant, keys, hosts), member (its tenant's\n"
                     "endpoints and jobs) or readonly (reads its tenant's); default admin")
      ->check(CLI::IsMember({"admin", "member", "readonly"}))
      ->type_name("ROLE");
  create->callback([kargs, &result] { result.status = RunKeysCreate(*kargs); });

  auto* hosts = app.add_subcommand(
      "hosts",
      "Enroll, cordon, drain and uncordon the controller's hosts, through its API with an admin\n"
      "key (--key-file, else $MODELCACHE_API_KEY) at --controller (else $MODELCACHE_CONTROLLER,\n"
      "else http://127.0.0.1:8080)");
  hosts->require_subcommand(1);
  auto hargs = std::make_shared<HostsArgs>();
  auto add_target = [hargs](CLI::App* sub) {
    sub->add_option("--controller", hargs->controller,
                    "The controller's URL (default $MODELCACHE_CONTROLLER, else "
                    "http://127.0.0.1:8080)")
        ->type_name("URL");
    sub->add_option("--key-file", hargs->key_file,
                    "File holding an admin API key (default $MODELCACHE_API_KEY)")
        ->type_name("FILE");
  };
  auto* enroll = hosts->add_subcommand(
      "enroll",
      "Enroll a host and print its credential (shown once): only an agent with it can register\n"
      "and heartbeat as that host id, and the controller presents it back to that agent.\n"
      "Enrolling a host again gives it a new credential (the old one stops working).\n"
      "Example: modelcache hosts enroll --host-id gpu-07 --credential-file gpu-07.credential");
  add_target(enroll);
  enroll->add_option("--host-id", hargs->host_id, "The agent's --host-id (1-128 of A-Za-z0-9._-)")
      ->required();
  enroll->add_option("--credential-file", hargs->credential_file,
                     "Write the credential to this file (mode 0600) instead of printing it")
      ->type_name("FILE");
  enroll->callback([hargs, &result] { result.status = RunHostsEnroll(*hargs); });
  for (const auto& [verb, help] : std::vector<std::pair<std::string, std::string>>{
           {"cordon", "Place no new workers on an enrolled host (running ones go on)"},
           {"drain", "Cordon a host and stop its idle workers (busy ones finish their jobs first)"},
           {"uncordon", "Let the controller place workers on the host again"}}) {
    auto* sub = hosts->add_subcommand(verb, help);
    add_target(sub);
    sub->add_option("host", hargs->host_id, "The host id")->required();
    sub->callback([hargs, verb, &result] { result.status = RunHostsSchedule(*hargs, verb); });
  }

  auto* up = app.add_subcommand(
      "up",
      "Run everything on this machine: a controller and --agents host agents, each with its own\n"
      "cache dir, disk budget and GPU slots, with all state under --data-dir. With --demo also a\n"
      "local upstream hub serving generated demo models (demo/tiny-llama, and the gated\n"
      "demo/gated-llama), a demo endpoint running examples/runpod_worker.py, and one test job:\n"
      "the whole product offline. Workers run as containers when podman works here (the demo\n"
      "worker is then built as an image by examples/worker-image/build.sh, no network needed),\n"
      "else as processes; `up` says which (--runtime).\n"
      "Example: modelcache up --demo");
  auto uargs = std::make_shared<UpArgs>();
  up->add_flag("--demo", uargs->demo, "Start the demo upstream, endpoint and test job");
  up->add_flag("--check", uargs->check, "With --demo: exit after the test job (0 if it completed)");
  up->add_option("--data-dir", uargs->data_dir, "Where everything is kept (default ./modelcache-up)");
  up->add_option("--listen", uargs->listen, "The controller's address (default 127.0.0.1:8080)");
  up->add_option("--agents", uargs->agents, "Host agents to run (default 2)")
      ->check(CLI::Range(1, 16));
  up->add_option("--gpus", uargs->gpus, "GPU slots per agent (default 2)")->check(CLI::Range(0, 64));
  up->add_option("--capacity", uargs->capacity, "Disk budget per agent (default 20GB; or 10%)");
  up->add_option("--upstream", uargs->upstream,
                 "The Hub without --demo (default $HF_ENDPOINT, else huggingface.co)");
  up->add_option("--demo-model-size", uargs->demo_model_size,
                 "Weights of each generated demo model when first made (default 16MiB)");
  up->add_option("--demo-upstream-rate", uargs->demo_upstream_rate,
                 "With --demo: cap the demo upstream at RATE bytes a second, all\n"
                 "downloads together (8MB, 500KiB; '/s' may follow), so that a model\n"
                 "download lasts long enough to watch (a worker 'downloading model',\n"
                 "the hosts page's progress and ETA). For demos and tests; default: no cap")
      ->type_name("RATE");
  up->add_option("--db", uargs->db,
                 "The controller's store (default sqlite:<data-dir>/controller.db); as for\n"
                 "`modelcache controller --db`, a postgresql:// URI works too")
      ->type_name("STORE");
  up->add_option("--db-password-file", uargs->db_password_file, kDbPasswordHelp)->type_name("FILE");
  up->add_option("--runtime", uargs->runtime,
                 "How the agents run workers: auto (default: containers when podman can run\n"
                 "one here, else processes), podman, docker or process. Image endpoints need\n"
                 "containers, command endpoints processes")
      ->type_name("KIND");
  up->add_option("--secret-key-file", uargs->secret_key_file,
                 "The key that seals stored secrets (default <data-dir>/controller-secret.key)")
      ->type_name("FILE");
  up->add_option("--worker-script", uargs->worker_script,
                 "The demo worker (default examples/runpod_worker.py, from the repository root)");
  up->callback([uargs, &result] {
    SetUpLogging("warn");
    result.status = RunUp(*uargs);
  });
}

}  // namespace mc::cli
