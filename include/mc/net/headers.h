// HeaderMap: HTTP header fields in arrival order, looked up case-insensitively (RFC 9110 §5.1).
// A multimap: Add() keeps repeated fields; Set() replaces all fields of that name.
// Not thread-safe for writes; const use is safe from several threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mc::net {

// True if the two header names are equal ignoring ASCII case.
bool HeaderNameEquals(std::string_view a, std::string_view b);

class HeaderMap {
 public:
  using Field = std::pair<std::string, std::string>;

  void Add(std::string name, std::string value);
  // Removes every field named `name`, then adds one.
  void Set(std::string name, std::string value);
  void Remove(std::string_view name);

  // The first field named `name`, or nullopt.
  std::optional<std::string> Get(std::string_view name) const;
  std::vector<std::string> GetAll(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }

  const std::vector<Field>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }
  size_t size() const { return fields_.size(); }

 private:
  std::vector<Field> fields_;
};

// True for header names whose values are secrets and must never be logged (Authorization,
// Proxy-Authorization, Cookie, Set-Cookie).
bool IsSecretHeader(std::string_view name);

// `s` without leading and trailing spaces, tabs, CR and LF (header whitespace).
std::string_view TrimHeaderWhitespace(std::string_view s);

// Feeds one raw header line as libcurl's HEADERFUNCTION delivers it: a status line ("HTTP/...")
// starts a new response, so `headers` is cleared (after a redirect or 100 Continue); a
// "Name: value" line is added with both parts trimmed; anything else is ignored.
void AddRawHeaderLine(std::string_view line, HeaderMap& headers);

}  // namespace mc::net
