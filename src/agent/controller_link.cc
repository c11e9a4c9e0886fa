#include "agent/controller_link.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "mc/net/http_client.h"

namespace mc::agent {

ControllerLink::ControllerLink(ControllerLinkOptions options, std::function<std::string()> document)
    : options_(std::move(options)), document_(std::move(document)) {}

ControllerLink::~ControllerLink() { Stop(); }

void ControllerLink::Start() { thread_ = std::thread([this] { Loop(); }); }

void ControllerLink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ControllerLink::Poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

uint64_t ControllerLink::beats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return beats_;
}

bool ControllerLink::WaitForBeats(uint64_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return beats_ >= count; });
}

bool ControllerLink::Send(const std::string& path, int* status) {
  static thread_local std::unique_ptr<net::HttpClient> client = net::HttpClient::Create();
  net::HttpClientRequest req;
  req.method = "POST";
  req.url = options_.controller_url + path;
  req.body = document_();
  req.headers.Set("Content-Type", "application/json");
  if (options_.api_key) {
    req.headers.Set("Authorization", "Bearer " + std::string(options_.api_key->Reveal()));
  }
  req.timeout = std::chrono::milliseconds(10'000);
  req.max_body_bytes = 1 << 20;
  req.ca_file = options_.ca_file;
  auto res = client->Send(req);
  std::string error;
  if (!res.ok()) {
    error = res.status().ToString();
    *status = 0;
  } else {
    *status = res->status;
    if (res->status >= 300) error = "HTTP " + std::to_string(res->status);
    if (res->status == 200 && options_.on_peer_key) {
      const nlohmann::json answer = nlohmann::json::parse(res->body, nullptr, false);
      const auto key = answer.is_object() ? answer.find("peerKey") : answer.end();
      if (key != answer.end() && key->is_string()) options_.on_peer_key(key->get<std::string>());
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (error != last_error_) {
    if (error.empty()) {
      spdlog::info("agent: controller {} reachable again", options_.controller_url);
    } else {
      spdlog::warn("agent: controller {}{}: {}", options_.controller_url, path, error);
    }
    last_error_ = error;
  }
  return error.empty();
}

void ControllerLink::Loop() {
  bool registered = false;
  while (true) {
    int status = 0;
    const std::string path =
        registered ? "/v1/hosts/" + options_.host_id + "/heartbeat" : "/v1/hosts/register";
    if (Send(path, &status)) {
      registered = true;
      std::lock_guard<std::mutex> lock(mu_);
      ++beats_;
    } else if (registered && status == 404) {
      registered = false;  // the controller lost us (it restarted): register again at once
      continue;
    }
    cv_.notify_all();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, options_.interval, [&] { return stopping_ || poked_; });
    if (stopping_) return;
    poked_ = false;
  }
}

}  // namespace mc::agent
