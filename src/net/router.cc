#include "mc/net/router.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "mc/net/json_reply.h"

namespace mc::net {
namespace {

[[noreturn]] void BadRouteTable(std::string_view pattern, const char* problem) {
  std::fprintf(stderr, "net::Router: pattern \"%.*s\": %s\n", static_cast<int>(pattern.size()),
               pattern.data(), problem);
  std::abort();
}

std::vector<std::string_view> SplitSegments(std::string_view path, bool skip_empty) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    std::string_view segment = path.substr(start, end - start);
    if (!(skip_empty && segment.empty())) out.push_back(segment);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

void DefaultError(int status, const HttpRequest& req, HttpResponse& res) {
  const std::string path = req.raw_path.substr(0, 200);
  if (status == 405) {
    SetJsonError(res, 405,
                 InvalidArgumentError("method " + req.method.substr(0, 20) + " not allowed on " +
                                      path));
  } else {
    SetJsonError(res, NotFoundError("no route " + path));
  }
}

}  // namespace

const std::string& PathParams::Get(std::string_view name) const {
  for (const auto& [key, value] : values_) {
    if (key == name) return value;
  }
  std::fprintf(stderr, "net::PathParams: no parameter \"%.*s\" in the route's pattern\n",
               static_cast<int>(name.size()), name.data());
  std::abort();
}

Router::Router(RouterOptions options) : options_(std::move(options)) {
  if (!options_.on_error) options_.on_error = DefaultError;
}

std::vector<Router::Segment> Router::ParsePattern(std::string_view pattern) {
  if (!pattern.starts_with('/')) BadRouteTable(pattern, "does not start with '/'");
  std::vector<Segment> segments;
  const std::vector<std::string_view> parts = SplitSegments(pattern.substr(1), false);
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view part = parts[i];
    if (part.find_first_of("{}") == std::string_view::npos) {
      segments.push_back({Segment::Kind::kLiteral, std::string(part)});
      continue;
    }
    if (!part.starts_with('{') || !part.ends_with('}') || part.size() < 3) {
      BadRouteTable(pattern, "a brace that is not a whole {name} segment");
    }
    std::string_view name = part.substr(1, part.size() - 2);
    Segment::Kind kind = Segment::Kind::kParam;
    if (name.ends_with("...")) {
      if (i + 1 != parts.size()) BadRouteTable(pattern, "{name...} is not the last segment");
      name.remove_suffix(3);
      kind = Segment::Kind::kRest;
    }
    const bool repeated = std::any_of(segments.begin(), segments.end(), [&](const Segment& s) {
      return s.kind != Segment::Kind::kLiteral && s.text == name;
    });
    if (name.empty() || name.find_first_of("{}/.") != std::string_view::npos || repeated) {
      BadRouteTable(pattern, "an empty, malformed or repeated parameter name");
    }
    segments.push_back({kind, std::string(name)});
  }
  return segments;
}

void Router::Add(std::string_view method, std::string_view pattern, RouteHandler handler) {
  auto it = std::find_if(routes_.begin(), routes_.end(),
                         [&](const Route& r) { return r.pattern == pattern; });
  if (it == routes_.end()) {
    routes_.push_back(Route{std::string(pattern), ParsePattern(pattern), {}, {}});
    it = routes_.end() - 1;
  }
  for (const auto& [m, h] : it->handlers) {
    if (m == method) BadRouteTable(pattern, "the method is already routed");
  }
  it->handlers.emplace_back(std::string(method), std::move(handler));
}

void Router::Add(std::string_view method, std::string_view pattern, RouteHandler handler,
                 size_t max_body_bytes) {
  Add(method, pattern, std::move(handler));
  auto it = std::find_if(routes_.begin(), routes_.end(),
                         [&](const Route& r) { return r.pattern == pattern; });
  it->body_limits.emplace_back(std::string(method), max_body_bytes);
}

std::optional<size_t> Router::BodyLimit(std::string_view method,
                                        std::string_view raw_path) const {
  if (!raw_path.starts_with('/')) return std::nullopt;
  const Route* route = Find(SplitPath(raw_path), nullptr);
  if (route == nullptr) return std::nullopt;
  for (const auto& [m, limit] : route->body_limits) {
    if (m == method) return limit;
  }
  return std::nullopt;
}

std::vector<std::string_view> Router::SplitPath(std::string_view raw_path) const {
  if (!raw_path.starts_with('/')) return {};
  return SplitSegments(raw_path.substr(1), options_.skip_empty_segments);
}

const Router::Route* Router::Find(const std::vector<std::string_view>& path,
                                  PathParams* params) const {
  for (const Route& route : routes_) {
    const std::vector<Segment>& segs = route.segments;
    const bool has_rest = !segs.empty() && segs.back().kind == Segment::Kind::kRest;
    const size_t fixed = has_rest ? segs.size() - 1 : segs.size();
    if (path.size() < fixed || (!has_rest && path.size() != fixed)) continue;
    bool match = true;
    for (size_t i = 0; i < fixed && match; ++i) {
      match = segs[i].kind == Segment::Kind::kParam || segs[i].text == path[i];
    }
    if (!match) continue;
    if (params != nullptr) {
      for (size_t i = 0; i < fixed; ++i) {
        if (segs[i].kind == Segment::Kind::kParam) params->Add(segs[i].text, std::string(path[i]));
      }
      if (has_rest) {
        std::string rest;
        for (size_t i = fixed; i < path.size(); ++i) {
          if (i > fixed) rest += '/';
          rest += path[i];
        }
        params->Add(segs.back().text, std::move(rest));
      }
    }
    return &route;
  }
  return nullptr;
}

std::string Router::AllowHeader(const Route& route) {
  const bool explicit_head = std::any_of(route.handlers.begin(), route.handlers.end(),
                                         [](const auto& h) { return h.first == "HEAD"; });
  std::string allow;
  for (const auto& [method, handler] : route.handlers) {
    allow += (allow.empty() ? "" : ", ") + method;
    if (method == "GET" && !explicit_head) allow += ", HEAD";
  }
  return allow;
}

bool Router::MatchesPath(std::string_view raw_path) const {
  const std::vector<std::string_view> path = SplitPath(raw_path);
  return raw_path.starts_with('/') && Find(path, nullptr) != nullptr;
}

void Router::Handle(const HttpRequest& request, HttpResponse& response) const {
  PathParams params;
  const Route* route =
      request.raw_path.starts_with('/') ? Find(SplitPath(request.raw_path), &params) : nullptr;
  if (route == nullptr) return options_.on_error(404, request, response);
  const RouteHandler* get = nullptr;
  for (const auto& [method, handler] : route->handlers) {
    if (method == request.method) return handler(request, params, response);
    if (method == "GET") get = &handler;
  }
  if (request.method == "HEAD" && get != nullptr) return (*get)(request, params, response);
  response.headers.Set("Allow", AllowHeader(*route));
  options_.on_error(405, request, response);
}

}  // namespace mc::net
