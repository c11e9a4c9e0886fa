#include "controller/api.h"

#include "controller/console.h"

#include <string_view>
#include <vector>
#include "mc/net/json_reply.h"

namespace mc::controller {

ControllerApi::ControllerApi(const ControllerOptions& options, ControllerStore& store,
                             JobBoard& jobs, Fleet& fleet, const SecretBox& secrets)
    : keys_(store, *options.clock),
      ctx_{options, store, jobs, fleet, keys_, secrets, nullptr},
      // The controller has always read "/v1//endpoints/" as "/v1/endpoints".
      public_routes_({.skip_empty_segments = true}),
      keyed_routes_({.skip_empty_segments = true}) {
  AddHealthAndMetricsRoutes(public_routes_, keyed_routes_, ctx_);
  AddWorkerProtocolRoutes(public_routes_, ctx_);
  AddEndpointRoutes(keyed_routes_, ctx_);
  AddJobRoutes(keyed_routes_, ctx_);
  AddHostRoutes(public_routes_, keyed_routes_, ctx_);
  AddKeyRoutes(keyed_routes_, ctx_);
}

namespace {

// The '/'-separated segments of `path`, empty ones dropped (as the routers match them).
std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

}  // namespace

void ControllerApi::CheckHead(const net::HttpRequest& head, net::HeadVerdict& verdict) {
  verdict.max_body_bytes = ctx_.options.max_body_bytes;
  if (head.method == "GET" || head.method == "HEAD") {
    verdict.max_body_bytes = 0;  // no route reads a GET body: none is buffered
    return;                      // Handle() checks keys; nothing is read before it
  }
  if (public_routes_.MatchesPath(head.raw_path)) {
    // The worker protocol's posts (job-done, job-stream: /v2/{ep}/<verb>/{worker}/{job}) carry
    // a job's output: only the worker's own key may send one.
    const std::vector<std::string_view> s = Segments(head.raw_path);
    if (s.size() == 5 && ValidId(s[1]) && ValidId(s[3])) {
      auto worker = ctx_.fleet.Authenticate(std::string(s[1]), std::string(s[3]),
                                            head.headers.Get("Authorization").value_or(""));
      if (!worker.ok()) {
        verdict.reject.emplace();
        return net::SetJsonError(*verdict.reject, worker.status());
      }
    }
    verdict.max_body_bytes =
        public_routes_.BodyLimit(head.method, head.raw_path).value_or(verdict.max_body_bytes);
    return;
  }
  if (!keys_.Authorized(head.headers.Get("Authorization").value_or(""))) {
    verdict.reject.emplace();
    return net::SetJsonError(
        *verdict.reject,
        UnauthenticatedError("missing or unknown API key (Authorization: Bearer <key>); "
                             "create one with 'modelcache keys create'"));
  }
  verdict.max_body_bytes =
      keyed_routes_.BodyLimit(head.method, head.raw_path).value_or(verdict.max_body_bytes);
}

void ControllerApi::Handle(const net::HttpRequest& req, net::HttpResponse& res) {
  if (ServeConsole(req, res)) return;  // the static web console: public, its data needs a key
  if (public_routes_.MatchesPath(req.raw_path)) return public_routes_.Handle(req, res);
  if (!keys_.Authorized(req.headers.Get("Authorization").value_or(""))) {
    return net::SetJsonError(
        res, UnauthenticatedError("missing or unknown API key (Authorization: Bearer <key>); "
                                  "create one with 'modelcache keys create'"));
  }
  // Roles and tenants: decided from the validated key's principal (api_common.h).
  Status allowed = CheckRole(Caller(ctx_, req), req);
  if (!allowed.ok()) return net::SetJsonError(res, allowed);
  keyed_routes_.Handle(req, res);
}

}  // namespace mc::controller
