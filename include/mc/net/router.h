// Router: method + path pattern -> handler. The one way modelcache's servers (the mirror, the
// agent, the controller) turn a request into a call; 404 and 405 are built in.
//
// A pattern is a path of '/'-separated segments:
//   "/v1/endpoints"                     a literal segment matches itself exactly
//   "/v1/endpoints/{id}"                {name} matches one segment, possibly empty
//   "/{org}/{name}/resolve/{rest...}"   a last {name...} matches the rest of the path: zero or
//                                       more segments, slashes included ("" when nothing is left)
// Parameters are the request's text as sent, still percent-encoded (so "%2F" stays apart from
// "/"): the handler validates and decodes them into its own types (RepoId, Revision, an id
// check), at the edge, once. The router never decodes.
//
// Matching: patterns are tried in the order they were first added, and the first that matches
// the path picks the route (order, not specificity, decides between two that match: add the
// narrower first). Then the method: the route's handler for it is called; HEAD is served by the
// GET handler unless the route has a HEAD one. A route without a handler for the method answers
// 405 with an Allow header listing its methods (HEAD wherever GET is). A path no pattern matches
// answers 404. Both go through RouterOptions::on_error, by default the JSON error body of the
// modelcache APIs (mc/net/json_reply.h).
//
// Thread-safety: Add() during setup only; Handle() and MatchesPath() are const and may be called
// from every server thread at once.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mc/net/http_server.h"

namespace mc::net {

// The parameters a pattern captured, by name. Handlers only ask for names their pattern has.
class PathParams {
 public:
  // The raw (percent-encoded) text of parameter `name`. Aborts if the pattern has no such
  // parameter: that is a bug in the route table, not bad input.
  const std::string& Get(std::string_view name) const;

  void Add(std::string name, std::string value) {
    values_.emplace_back(std::move(name), std::move(value));
  }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

using RouteHandler = std::function<void(const HttpRequest&, const PathParams&, HttpResponse&)>;

// A RouteHandler that calls `(object->*method)(request, params, response)`: route tables of
// member functions read as one line each. `object` must outlive the router.
template <typename T, typename Method>
RouteHandler Member(T* object, Method method) {
  return [object, method](const HttpRequest& req, const PathParams& params, HttpResponse& res) {
    (object->*method)(req, params, res);
  };
}

// Writes the answer for `status` (404 or 405; on a 405 the Allow header is already set).
using RouteErrorWriter = std::function<void(int status, const HttpRequest&, HttpResponse&)>;

struct RouterOptions {
  // Drop empty segments of the request path before matching, so "/v1//endpoints/" is
  // "/v1/endpoints" (the controller's routes have always been this lenient). Off where an empty
  // segment means something (the mirror: "main//etc" must reach the file path check and fail).
  bool skip_empty_segments = false;
  // Unset: 404 {"error": "no route <path>", "code": "not_found"} and 405 {"error": "method <M>
  // not allowed on <path>", "code": "invalid_argument"} (paths cut to 200 characters).
  RouteErrorWriter on_error = nullptr;
};

class Router {
 public:
  explicit Router(RouterOptions options = {});

  // Adds `handler` for `method` ("GET", "POST", ...) on `pattern`. A pattern added again (the
  // same text) gains the method; its place in the order stays where it was first added. Aborts
  // on a malformed pattern (not starting with '/', a brace that is not a whole segment, a
  // repeated or empty name, {x...} not last) or a method already added on it: route tables are
  // code, so these are bugs.
  void Add(std::string_view method, std::string_view pattern, RouteHandler handler);
  // The same, with the largest request body this method on this pattern takes (a per-route cap
  // above or below the server's default; see BodyLimit).
  void Add(std::string_view method, std::string_view pattern, RouteHandler handler,
           size_t max_body_bytes);

  // The body cap Add gave the route `method` on `raw_path` reaches, or nullopt (no such route, or
  // none given): for a HeadHandler, which sets the cap before the body is read.
  std::optional<size_t> BodyLimit(std::string_view method, std::string_view raw_path) const;

  // Calls the handler the request routes to, or writes the 404 / 405.
  void Handle(const HttpRequest& request, HttpResponse& response) const;

  // True if some pattern matches `raw_path`, whatever the method (for servers that treat a
  // group of routes apart, e.g. ones with their own authentication).
  bool MatchesPath(std::string_view raw_path) const;

 private:
  struct Segment {
    enum class Kind { kLiteral, kParam, kRest } kind;
    std::string text;  // the literal, or the parameter's name
  };
  struct Route {
    std::string pattern;
    std::vector<Segment> segments;
    std::vector<std::pair<std::string, RouteHandler>> handlers;  // by method, in order added
    std::vector<std::pair<std::string, size_t>> body_limits;     // by method, where given
  };
  static std::vector<Segment> ParsePattern(std::string_view pattern);
  static std::string AllowHeader(const Route& route);
  const Route* Find(const std::vector<std::string_view>& path, PathParams* params) const;
  std::vector<std::string_view> SplitPath(std::string_view raw_path) const;

  RouterOptions options_;
  std::vector<Route> routes_;
};

}  // namespace mc::net
