#include "mirror/api_params.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "mc/common/ids.h"

namespace mc::mirror {
namespace {

StatusOr<bool> ParseBoolText(std::string_view name, std::string_view v) {
  if (v == "true" || v == "True" || v == "1") return true;
  if (v == "false" || v == "False" || v == "0") return false;
  return InvalidArgumentError("parameter " + std::string(name) + " must be true or false, not " +
                              QuoteForMessage(v));
}

StatusOr<PathsInfoRequest> ParseJsonBody(std::string_view body) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgumentError("paths-info body is not a JSON object");
  }
  PathsInfoRequest out;
  auto paths = doc.find("paths");
  if (paths == doc.end()) return InvalidArgumentError("paths-info body needs \"paths\"");
  if (paths->is_string()) {
    out.paths.push_back(paths->get<std::string>());
  } else if (paths->is_array()) {
    for (const auto& p : *paths) {
      if (!p.is_string()) return InvalidArgumentError("\"paths\" must hold strings");
      out.paths.push_back(p.get<std::string>());
    }
  } else {
    return InvalidArgumentError("\"paths\" must be an array of strings");
  }
  auto expand = doc.find("expand");
  if (expand != doc.end()) {
    if (expand->is_boolean()) {
      out.expand = expand->get<bool>();
    } else if (expand->is_string()) {
      MC_ASSIGN_OR_RETURN(out.expand, ParseBoolText("expand", expand->get<std::string>()));
    } else {
      return InvalidArgumentError("\"expand\" must be true or false");
    }
  }
  return out;
}

StatusOr<PathsInfoRequest> ParseFormBody(std::string_view body) {
  MC_ASSIGN_OR_RETURN(net::QueryParams form, net::ParseQueryString(body), "paths-info body");
  PathsInfoRequest out;
  for (const auto& [key, value] : form) {
    if (key == "paths" || key == "paths[]") {
      out.paths.push_back(value);
    } else if (key == "expand") {
      MC_ASSIGN_OR_RETURN(out.expand, ParseBoolText("expand", value));
    }
  }
  return out;
}

}  // namespace

StatusOr<bool> BoolParam(const net::HttpRequest& request, std::string_view name, bool fallback) {
  std::optional<std::string> v = request.QueryParam(name);
  if (!v) return fallback;
  return ParseBoolText(name, *v);
}

StatusOr<TreePage> TreePageParams(const net::HttpRequest& request, size_t default_limit,
                                  size_t max_limit) {
  TreePage page;
  page.limit = default_limit;
  if (std::optional<std::string> limit = request.QueryParam("limit")) {
    size_t n = 0;
    auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
    if (ec != std::errc() || end != limit->data() + limit->size() || n == 0) {
      return InvalidArgumentError("limit must be a positive integer");
    }
    page.limit = std::min(n, max_limit);
  }
  if (std::optional<std::string> cursor = request.QueryParam("cursor")) {
    if (cursor->size() % 2 != 0) return InvalidArgumentError("invalid cursor");
    std::string path;
    for (size_t i = 0; i < cursor->size(); i += 2) {
      unsigned byte = 0;
      auto [end, ec] = std::from_chars(cursor->data() + i, cursor->data() + i + 2, byte, 16);
      if (ec != std::errc() || end != cursor->data() + i + 2) {
        return InvalidArgumentError("invalid cursor");
      }
      path.push_back(static_cast<char>(byte));
    }
    page.after = std::move(path);
  }
  return page;
}

std::string EncodeCursor(std::string_view last_path) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : last_path) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 0xF]);
  }
  return out;
}

std::set<std::string> ExpandParams(const net::HttpRequest& request) {
  std::set<std::string> out;
  for (const auto& [key, value] : request.query) {
    if (key != "expand" && key != "expand[]") continue;
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      std::string item = value.substr(start, comma == std::string::npos ? comma : comma - start);
      if (!item.empty()) out.insert(std::move(item));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

StatusOr<PathsInfoRequest> ParsePathsInfoBody(const net::HttpRequest& request) {
  std::string type = request.headers.Get("Content-Type").value_or("");
  bool json = type.find("application/json") != std::string::npos ||
              (type.empty() && request.body.starts_with('{'));
  return json ? ParseJsonBody(request.body) : ParseFormBody(request.body);
}

}  // namespace mc::mirror
