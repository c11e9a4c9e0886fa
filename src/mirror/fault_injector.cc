#include "mirror/fault_injector.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "mirror/hub_error.h"

namespace mc::mirror {
namespace {

using Rule = FaultRule;

std::string ReasonPhrase(int code) {
  switch (code) {
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Injected error " + std::to_string(code);
  }
}

// The file bytes of one faulted answer and what to do to them. Shared by copies of its producer.
struct FaultedBody {
  net::ScopedFd fd;
  uint64_t file_offset = 0;  // file offset of body byte 0
  Rule::Action action;
  FaultInjector* injector = nullptr;
  bool delayed = false;  // DelayFirstByte done (the producer is called once at a time)

  ssize_t Produce(uint64_t pos, char* buf, size_t max);
};

ssize_t FaultedBody::Produce(uint64_t pos, char* buf, size_t max) {
  if (const auto* drop = std::get_if<Rule::DropAfterBytes>(&action)) {
    if (pos >= drop->bytes) return net::kAbortBody;
    max = static_cast<size_t>(std::min<uint64_t>(max, drop->bytes - pos));
  } else if (const auto* stall = std::get_if<Rule::StallAfterBytes>(&action)) {
    if (pos >= stall->bytes) {
      injector->Wait(stall->duration);
      return net::kAbortBody;
    }
    max = static_cast<size_t>(std::min<uint64_t>(max, stall->bytes - pos));
  } else if (const auto* delay = std::get_if<Rule::DelayFirstByte>(&action)) {
    if (!delayed) {
      delayed = true;
      if (!injector->Wait(delay->duration)) return net::kAbortBody;
    }
  }
  const uint64_t at = file_offset + pos;
  ssize_t n;
  do {
    n = ::pread(fd.get(), buf, max, static_cast<off_t>(at));
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return net::kAbortBody;  // read error or the file shrank: Content-Length is a lie now
  if (const auto* corrupt = std::get_if<Rule::CorruptByte>(&action)) {
    if (corrupt->offset >= at && corrupt->offset < at + static_cast<uint64_t>(n)) {
      buf[corrupt->offset - at] = static_cast<char>(buf[corrupt->offset - at] ^ 0xff);
    }
  }
  return n;
}

void SetErrorStatus(const Rule::ErrorStatus& error, net::HttpResponse& response) {
  response = net::HttpResponse();
  SetHubError(response, HubError{error.code, "", ReasonPhrase(error.code), std::nullopt});
  response.headers.Remove("X-Error-Code");
  if (error.retry_after_seconds) {
    response.headers.Set("Retry-After", std::to_string(*error.retry_after_seconds));
  }
}

Status CheckRule(const Rule& rule) {
  if (rule.count < -1) return InvalidArgumentError("count must be -1 (always) or >= 0");
  if (const auto* error = std::get_if<Rule::ErrorStatus>(&rule.action)) {
    if (error->code < 400 || error->code > 599) {
      return InvalidArgumentError("ErrorStatus code must be 4xx or 5xx");
    }
    if (error->retry_after_seconds && *error->retry_after_seconds < 0) {
      return InvalidArgumentError("retry_after_seconds must be >= 0");
    }
  }
  if (const auto* stall = std::get_if<Rule::StallAfterBytes>(&rule.action)) {
    if (stall->duration.count() < 0) return InvalidArgumentError("negative stall duration");
  }
  if (const auto* delay = std::get_if<Rule::DelayFirstByte>(&rule.action)) {
    if (delay->duration.count() < 0) return InvalidArgumentError("negative delay duration");
  }
  return Status::Ok();
}

}  // namespace

Status ValidateFaultOptions(const FaultOptions& options) {
  for (size_t i = 0; i < options.rules.size(); ++i) {
    MC_RETURN_IF_ERROR(CheckRule(options.rules[i]), "mirror: fault rule " + std::to_string(i));
  }
  return Status::Ok();
}

FaultInjector::FaultInjector(FaultOptions options)
    : options_(std::move(options)), fired_(options_.rules.size(), 0) {
  for (const Rule& rule : options_.rules) left_.push_back(rule.count);
}

const FaultRule* FaultInjector::Take(const net::HttpRequest& request) {
  const bool ranged = request.headers.Has("Range");
  MutexLock lock(mu_);
  for (size_t i = 0; i < options_.rules.size(); ++i) {
    const Rule& rule = options_.rules[i];
    if (left_[i] == 0 || (rule.only_ranged && !ranged)) continue;
    if (request.raw_path.find(rule.path_contains) == std::string::npos) continue;
    if (left_[i] > 0) --left_[i];
    ++fired_[i];
    return &rule;
  }
  return nullptr;
}

bool FaultInjector::Apply(const net::HttpRequest& request, net::HttpResponse& response) {
  if (options_.rules.empty() || !response.file || response.status >= 300) return false;
  const Rule* rule = Take(request);
  if (rule == nullptr) return false;
  if (const auto* error = std::get_if<Rule::ErrorStatus>(&rule->action)) {
    SetErrorStatus(*error, response);
    return true;
  }
  auto body = std::make_shared<FaultedBody>();
  body->fd = std::move(response.file->fd);
  body->file_offset = response.file->offset;
  body->action = rule->action;
  body->injector = this;
  const uint64_t length = response.file->length;
  response.SetStream(
      length, [body](uint64_t pos, char* buf, size_t max) { return body->Produce(pos, buf, max); });
  return true;
}

std::vector<uint64_t> FaultInjector::fired() const {
  MutexLock lock(mu_);
  return fired_;
}

void FaultInjector::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.NotifyAll();
}

void FaultInjector::Resume() {
  MutexLock lock(mu_);
  stopping_ = false;
}

bool FaultInjector::Wait(std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  MutexLock lock(mu_);
  while (!stopping_ && wake_.WaitUntil(mu_, deadline)) {
  }
  return !stopping_;
}

}  // namespace mc::mirror
