#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "mc/net/http_server.h"

namespace mc::net {

std::optional<std::string> HttpRequest::QueryParam(std::string_view name) const {
  auto it = query.find(std::string(name));
  if (it == query.end()) return std::nullopt;
  return it->second;
}

ScopedFd::~ScopedFd() {
  if (fd_ >= 0) ::close(fd_);
}

ScopedFd& ScopedFd::operator=(ScopedFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.Release();
  }
  return *this;
}

StatusOr<ScopedFd> ScopedFd::OpenForRead(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open " + path.string());
  return ScopedFd(fd);
}

void HttpResponse::SetText(int code, std::string text, std::string content_type) {
  status = code;
  headers.Set("Content-Type", std::move(content_type));
  body = std::move(text);
  file.reset();
  stream.reset();
}

void HttpResponse::SetFile(ScopedFd fd, uint64_t offset, uint64_t length) {
  file = FileBody{std::move(fd), offset, length};
  body.clear();
  stream.reset();
}

void HttpResponse::SetStream(uint64_t length, BodyProducer produce) {
  stream = StreamBody{length, std::move(produce)};
  file.reset();
  body.clear();
}

}  // namespace mc::net
