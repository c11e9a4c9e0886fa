#include "controller/test_cluster.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <mutex>
#include <system_error>

#include "mc/cache/cache_store.h"
#include "mc/cache/importer.h"
#include "mc/net/http_client.h"
#include "mc/testing/eventually.h"
#include "mc/testing/model_fixture.h"

namespace mc::controller {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {
std::mutex send_ca_mu;
std::filesystem::path send_ca_file;
}  // namespace

void SetSendCaFile(const std::filesystem::path& ca_file) {
  std::lock_guard<std::mutex> lock(send_ca_mu);
  send_ca_file = ca_file;
}

Reply Send(const std::string& method, const std::string& url, const net::HeaderMap& headers,
           std::optional<std::string> body, std::chrono::milliseconds timeout) {
  static thread_local auto client = net::HttpClient::Create();
  net::HttpClientRequest req;
  req.method = method;
  req.url = url;
  req.headers = headers;
  req.body = std::move(body);
  req.timeout = timeout;
  {
    std::lock_guard<std::mutex> lock(send_ca_mu);
    req.ca_file = send_ca_file;
  }
  auto res = client->Send(req);
  if (!res.ok()) return Reply{0, json{{"transport", res.status().ToString()}}, "", "", ""};
  Reply r;
  r.status = res->status;
  r.text = res->body;
  r.allow = res->headers.Get("Allow").value_or("");
  r.body = json::parse(res->body, nullptr, false);
  r.content_type = res->headers.Get("Content-Type").value_or("");
  return r;
}

net::HeaderMap Bearer(const std::string& key) {
  net::HeaderMap h;
  h.Set("Authorization", "Bearer " + key);
  h.Set("Content-Type", "application/json");
  return h;
}

StatusOr<std::unique_ptr<TestCluster>> TestCluster::Create(TestClusterOptions options) {
  std::unique_ptr<TestCluster> cluster(new TestCluster(std::move(options)));
  MC_RETURN_IF_ERROR(cluster->Build(), "test cluster " + cluster->options_.name);
  return cluster;
}

TestCluster::TestCluster(TestClusterOptions options)
    : options_(std::move(options)),
      root_(fs::temp_directory_path() /
            ("mc_" + options_.name + "_" + std::to_string(::getpid()))) {}

TestCluster::~TestCluster() {
  if (controller_) controller_->Stop();
  StopWorkers();
  for (auto& a : agents_) a->Stop();
  if (upstream_) upstream_->Stop();
  std::error_code ec;
  fs::remove_all(root_, ec);
}

Status TestCluster::Build() {
  std::error_code ec;
  fs::remove_all(root_, ec);
  fs::create_directories(root_, ec);
  if (ec) return ErrnoError(ec.value(), "create " + root_.string());
  MC_RETURN_IF_ERROR(ImportModels(), "upstream models");
  mirror::MirrorOptions m;
  m.cache_dir = root_ / "upstream";
  if (!options_.access_json.empty()) {
    std::ofstream(root_ / "access.json") << options_.access_json;
    m.access_config = root_ / "access.json";
  }
  if (options_.upstream_options) options_.upstream_options(m);
  MC_ASSIGN_OR_RETURN(upstream_, mirror::MirrorServer::Create(std::move(m)), "upstream");
  MC_RETURN_IF_ERROR(upstream_->Start(), "start the upstream");
  if (options_.db.empty()) {
    MC_ASSIGN_OR_RETURN(key_, AddApiKey(db_path(), "test"), "API key");
  } else {
    MC_ASSIGN_OR_RETURN(key_, AddApiKey(options_.db, std::nullopt, "test"), "API key");
  }
  if (!options_.start_controller) return Status::Ok();

  ControllerOptions co = DefaultControllerOptions();
  if (options_.controller_options) options_.controller_options(co);
  MC_ASSIGN_OR_RETURN(controller_, Controller::Create(std::move(co)), "controller");
  MC_RETURN_IF_ERROR(controller_->Start(), "start the controller");
  for (int i = 0; i < options_.agents; ++i) {
    MC_RETURN_IF_ERROR(AddAgent(controller_->base_url()));
  }
  const size_t n = agents_.size();
  if (!testing::Eventually([&] { return Call("GET", "/v1/hosts").body["hosts"].size() >= n; })) {
    return UnavailableError("not every agent registered with the controller within 30 s");
  }
  return Status::Ok();
}

ControllerOptions TestCluster::DefaultControllerOptions() const {
  ControllerOptions co;
  co.listen = "127.0.0.1:0";
  if (options_.db.empty()) {
    co.db_path = db_path();
  } else {
    co.db = options_.db;
    co.secret_key_file = root_ / "controller-secret.key";
  }
  co.upstream = *hub::Endpoint::Parse(upstream_->base_url());
  co.tick = 50ms;
  co.take_hold = 2s;
  co.ping_interval = 1000ms;
  co.stop_grace = 2s;
  co.agent_api_key = hub::Secret(key_);
  return co;
}

// ---- TcpBalancer ----

StatusOr<std::unique_ptr<TcpBalancer>> TcpBalancer::Start(std::vector<std::string> backends) {
  std::unique_ptr<TcpBalancer> b(new TcpBalancer());
  b->SetBackends(std::move(backends));
  b->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (b->listen_fd_ < 0 || ::bind(b->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(b->listen_fd_, 512) != 0 ||
      ::getsockname(b->listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return ErrnoError(errno, "balancer: listen");
  }
  b->port_ = ntohs(a.sin_port);
  b->acceptor_ = std::thread([raw = b.get()] { raw->Accept(); });
  return b;
}

TcpBalancer::~TcpBalancer() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> pipes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pipes.swap(pipes_);
  }
  for (auto& t : pipes) t.join();  // each ends within its poll timeout once stopping_
}

std::string TcpBalancer::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

void TcpBalancer::SetBackends(std::vector<std::string> backends) {
  std::vector<uint16_t> ports;
  for (const std::string& b : backends) {
    ports.push_back(static_cast<uint16_t>(std::stoi(b.substr(b.rfind(':') + 1))));
  }
  std::lock_guard<std::mutex> lock(mu_);
  ports_ = std::move(ports);
}

void TcpBalancer::Accept() {
  while (!stopping_) {
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (stopping_) return;
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    pipes_.emplace_back([this, client] { Pipe(client); });
  }
}

int TcpBalancer::NextBackend() {
  std::vector<uint16_t> ports;
  size_t start = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ports = ports_;
    start = next_++;
  }
  for (size_t i = 0; i < ports.size(); ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(ports[(start + i) % ports.size()]);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
    ::close(fd);
  }
  return -1;
}

void TcpBalancer::Pipe(int client) {
  int backend = NextBackend();
  if (backend < 0) {
    ::close(client);
    return;
  }
  pollfd fds[2] = {{client, POLLIN, 0}, {backend, POLLIN, 0}};
  char buf[65536];
  while (!stopping_) {
    int n = ::poll(fds, 2, 200);
    if (n < 0) break;
    if (n == 0) continue;
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        done = true;
        break;
      }
      for (ssize_t off = 0; off < got;) {
        ssize_t put = ::send(fds[1 - i].fd, buf + off, static_cast<size_t>(got - off), MSG_NOSIGNAL);
        if (put <= 0) {
          done = true;
          break;
        }
        off += put;
      }
    }
    if (done) break;
  }
  ::close(client);
  ::close(backend);
}

// Each model from a generated folder root/src/<repo> (seeded by position, so models differ).
Status TestCluster::ImportModels() {
  MC_ASSIGN_OR_RETURN(auto store,
                      cache::CacheStore::Open({root_ / "upstream", std::nullopt, true}));
  uint64_t seed = 0;
  for (const UpstreamModel& model : options_.models) {
    testing::ModelFixtureOptions f;
    f.total_weight_bytes = model.weight_bytes;
    f.seed = ++seed;
    const fs::path src = root_ / "src" / model.repo;
    MC_RETURN_IF_ERROR(testing::WriteModelFixture(src, f).status(), "fixture " + model.repo);
    MC_ASSIGN_OR_RETURN(RepoId repo, RepoId::Parse(model.repo));
    MC_RETURN_IF_ERROR(cache::ImportFolder(*store, src, repo, *Revision::Parse("main")).status(),
                       "import " + model.repo);
  }
  return Status::Ok();
}

Status TestCluster::AddAgent(const std::string& controller_url) {
  const int index = static_cast<int>(agents_.size());
  const std::string host = "host-" + std::to_string(index + 1);
  agent::AgentOptions ao;
  ao.cache_dir = root_ / host / "hub";
  ao.state_dir = root_ / host / "state";
  ao.capacity = 1ull << 30;
  ao.gpus = 2;
  ao.gpu_type = "test-gpu";
  ao.host_id = host;
  ao.upstream = *hub::Endpoint::Parse(upstream_->base_url());
  ao.controller_url = controller_url;
  ao.api_key = hub::Secret(key_);  // guards its /v1 (the tests call agents with it)
  ao.heartbeat_interval = 100ms;
  if (options_.agent_options) options_.agent_options(index, ao);
  // Enrolled as operators do (unless the test gave a credential): the host's own credential,
  // sent to the controller to register and heartbeat, presented back by the controller on the
  // agent's /v1.
  if (!ao.controller_api_key) {
    Reply enrolled = Send("POST", controller_url + "/v1/hosts/enroll", Bearer(key_),
                          json{{"hostId", ao.host_id}}.dump());
    if (enrolled.status != 200) {
      return UnavailableError("enroll " + ao.host_id + ": HTTP " +
                              std::to_string(enrolled.status) + " " + enrolled.text.substr(0, 300));
    }
    ao.controller_api_key = hub::Secret(enrolled.body.value("credential", ""));
  }
  MC_ASSIGN_OR_RETURN(auto made, agent::Agent::Create(std::move(ao)), "agent " + host);
  MC_RETURN_IF_ERROR(made->Start(), "start agent " + host);
  agents_.push_back(std::move(made));
  return Status::Ok();
}

void TestCluster::StopWorkers(std::chrono::milliseconds grace) {
  for (auto& a : agents_) a->StopWorkers(grace);
}

Reply TestCluster::Call(const std::string& method, const std::string& path,
                        const std::string& body) {
  net::HeaderMap headers;
  headers.Set("Authorization", "Bearer " + key_);
  if (!body.empty()) headers.Set("Content-Type", "application/json");
  return Send(method, controller_->base_url() + path, headers,
              body.empty() ? std::nullopt : std::optional<std::string>(body));
}

}  // namespace mc::controller
