#include "mc/net/headers.h"

#include <algorithm>

namespace mc::net {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool HeaderNameEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

void HeaderMap::Add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

void HeaderMap::Set(std::string name, std::string value) {
  Remove(name);
  Add(std::move(name), std::move(value));
}

void HeaderMap::Remove(std::string_view name) {
  std::erase_if(fields_, [&](const Field& f) { return HeaderNameEquals(f.first, name); });
}

std::optional<std::string> HeaderMap::Get(std::string_view name) const {
  for (const Field& f : fields_) {
    if (HeaderNameEquals(f.first, name)) return f.second;
  }
  return std::nullopt;
}

std::vector<std::string> HeaderMap::GetAll(std::string_view name) const {
  std::vector<std::string> values;
  for (const Field& f : fields_) {
    if (HeaderNameEquals(f.first, name)) values.push_back(f.second);
  }
  return values;
}

std::string_view TrimHeaderWhitespace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

void AddRawHeaderLine(std::string_view line, HeaderMap& headers) {
  if (line.starts_with("HTTP/")) {
    headers = HeaderMap();
    return;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    headers.Add(std::string(TrimHeaderWhitespace(line.substr(0, colon))),
                std::string(TrimHeaderWhitespace(line.substr(colon + 1))));
  }
}

bool IsSecretHeader(std::string_view name) {
  return HeaderNameEquals(name, "authorization") || HeaderNameEquals(name, "proxy-authorization") ||
         HeaderNameEquals(name, "cookie") || HeaderNameEquals(name, "set-cookie");
}

}  // namespace mc::net
