#include "mc/common/image_ref.h"

#include <cctype>

namespace mc {
namespace {

constexpr size_t kMaxNameLength = 255;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

Status Bad(std::string_view text, const std::string& why) {
  std::string shown(text.substr(0, 200));
  return InvalidArgumentError("image reference \"" + shown + "\": " + why);
}

// [a-z0-9]+ ([._] | __ | -+ [a-z0-9]+)*
bool ValidComponent(std::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    if (IsLowerAlnum(c[i])) continue;
    if (c[i] == '.' || c[i] == '_') {
      const bool double_underscore = c[i] == '_' && i + 1 < c.size() && c[i + 1] == '_';
      const size_t next = double_underscore ? i + 2 : i + 1;
      if (next >= c.size() || !IsLowerAlnum(c[next])) return false;
      i = next - 1;
      continue;
    }
    if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
      if (i >= c.size() || !IsLowerAlnum(c[i])) return false;
      continue;
    }
    return false;
  }
  return true;
}

// DNS labels ([A-Za-z0-9] with inner '-') joined by '.', or [IPv6], then an optional :port.
bool ValidDomain(std::string_view d) {
  std::string_view host = d;
  size_t colon = std::string_view::npos;
  if (d.starts_with('[')) {
    size_t close = d.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (char c : d.substr(1, close - 1)) {
      if (!IsHex(c) && c != ':') return false;
    }
    host = {};
    if (close + 1 < d.size()) {
      if (d[close + 1] != ':') return false;
      colon = close + 1;
    }
  } else {
    colon = d.find(':');
    host = d.substr(0, colon);
  }
  if (colon != std::string_view::npos) {
    std::string_view port = d.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    }
  }
  if (d.starts_with('[')) return true;
  if (host.empty()) return false;
  size_t start = 0;
  while (start <= host.size()) {
    size_t dot = host.find('.', start);
    std::string_view label = host.substr(start, dot == std::string_view::npos ? host.npos
                                                                               : dot - start);
    if (label.empty() || !IsAlnum(label.front()) || !IsAlnum(label.back())) return false;
    for (char c : label) {
      if (!IsAlnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool ValidTag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  if (!IsAlnum(t[0]) && t[0] != '_') return false;
  for (char c : t) {
    if (!IsAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

Status CheckDigest(std::string_view text, std::string_view digest) {
  size_t colon = digest.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Bad(text, "the digest must be algorithm:hex, e.g. sha256:<64 hex digits>");
  }
  std::string_view algorithm = digest.substr(0, colon);
  std::string_view hex = digest.substr(colon + 1);
  if (!std::isalpha(static_cast<unsigned char>(algorithm[0]))) {
    return Bad(text, "the digest algorithm must start with a letter");
  }
  for (char c : algorithm) {
    if (!IsAlnum(c) && c != '+' && c != '.' && c != '-' && c != '_') {
      return Bad(text, "bad character in the digest algorithm");
    }
  }
  for (char c : hex) {
    if (!IsHex(c)) return Bad(text, "the digest must be hexadecimal after the algorithm");
  }
  size_t want = algorithm == "sha256" ? 64 : algorithm == "sha512" ? 128 : 0;
  if (want != 0 && hex.size() != want) {
    return Bad(text, "a " + std::string(algorithm) + " digest has " + std::to_string(want) +
                         " hex digits, this one " + std::to_string(hex.size()));
  }
  if (want == 0 && hex.size() < 32) return Bad(text, "the digest is too short");
  return Status::Ok();
}

}  // namespace

StatusOr<ImageRef> ImageRef::Parse(std::string_view text) {
  if (text.empty()) return Bad(text, "empty");
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) {
      return Bad(text, "spaces and control or non-ASCII characters are not allowed");
    }
  }
  ImageRef ref;
  std::string_view rest = text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    ref.digest_ = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    MC_RETURN_IF_ERROR(CheckDigest(text, ref.digest_));
  }
  // A tag follows the last ':' after the last '/' (an earlier ':' is a registry port).
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag_ = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!ValidTag(ref.tag_)) {
      return Bad(text, "the tag must be 1-128 of A-Z a-z 0-9 _ . - and not start with . or -");
    }
  }
  if (rest.empty()) return Bad(text, "no repository name");
  size_t first = rest.find('/');
  std::string_view head = rest.substr(0, first);
  const bool has_domain = first != std::string_view::npos &&
                          (head.find_first_of(".:") != std::string_view::npos ||
                           head == "localhost" || head.starts_with('['));
  std::string_view path = rest;
  if (has_domain) {
    if (!ValidDomain(head)) {
      return Bad(text, "the registry \"" + std::string(head) +
                           "\" is not a host name or address with an optional :port");
    }
    ref.domain_ = std::string(head);
    path = rest.substr(first + 1);
  } else {
    ref.domain_ = "docker.io";
  }
  size_t start = 0;
  int components = 0;
  while (true) {
    size_t end = path.find('/', start);
    std::string_view component = path.substr(start, end == path.npos ? path.npos : end - start);
    if (!ValidComponent(component)) {
      return Bad(text, "the repository path \"" + std::string(path) +
                           "\" must be lowercase letters and digits, separated by one '.' or "
                           "'_', two '_' or '-'s, in '/'-separated parts");
    }
    ++components;
    if (end == path.npos) break;
    start = end + 1;
  }
  ref.path_ = std::string(path);
  if (!has_domain && components == 1) ref.path_ = "library/" + ref.path_;
  if (ref.name().size() > kMaxNameLength) {
    return Bad(text, "the name is longer than 255 characters");
  }
  if (ref.tag_.empty() && ref.digest_.empty()) ref.tag_ = "latest";
  return ref;
}

std::string ImageRef::str() const {
  std::string out = name();
  if (!tag_.empty()) out += ":" + tag_;
  if (!digest_.empty()) out += "@" + digest_;
  return out;
}

}  // namespace mc
