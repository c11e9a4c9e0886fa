// What the parts of the controller's API share (api_*.cc, one file per resource, each adding its
// routes to a net::Router; ControllerApi in api.h wires them). Answers are JSON through
// net::SetJson / net::SetJsonError: errors are {"error": ..., "code": ...} with the status
// mc::ToHttpStatus gives.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "mc/common/clock.h"
#include "mc/common/status.h"
#include "mc/controller/controller.h"
#include "mc/net/http_server.h"
#include "mc/net/router.h"

namespace mc::controller {

class ControllerStore;
class JobBoard;
class Fleet;
class ApiKeys;

// The controller's parts the API works on; owned by ControllerApi, borrowed by every handler.
struct ApiContext {
  const ControllerOptions& options;
  ControllerStore& store;
  JobBoard& jobs;
  Fleet& fleet;
  ApiKeys& keys;
  // Called after a job is queued, so that the autoscaler runs at once (may be empty). Set before
  // the server takes requests.
  std::function<void()> kick;
};

using ApiHandler = void (*)(ApiContext& ctx, const net::HttpRequest& req,
                            const net::PathParams& params, net::HttpResponse& res);

// A route handler that calls `handler` with `ctx`.
net::RouteHandler Bind(ApiContext& ctx, ApiHandler handler);

// Each resource's routes (api_<resource>.cc). The public router takes requests without a client
// key (health; the worker protocol checks each worker's own key); every other route is on the
// keyed router, which ControllerApi reaches only with a valid client key.
void AddHealthAndMetricsRoutes(net::Router& public_routes, net::Router& keyed, ApiContext& ctx);
void AddWorkerProtocolRoutes(net::Router& public_routes, ApiContext& ctx);
void AddEndpointRoutes(net::Router& keyed, ApiContext& ctx);
void AddJobRoutes(net::Router& keyed, ApiContext& ctx);
void AddHostRoutes(net::Router& keyed, ApiContext& ctx);
void AddKeyRoutes(net::Router& keyed, ApiContext& ctx);

// Bounds of an endpoint's executionTimeoutMs and ttlMs and of a job's policy (milliseconds).
constexpr int64_t kMinExecutionMs = 5'000, kMinTtlMs = 10'000, kMaxPolicyMs = 7LL * 86'400'000;

int64_t NowMs(const Clock& clock);

// Endpoint, job and worker ids: 1-120 of [A-Za-z0-9_-].
bool ValidId(std::string_view id);
// Host ids come from agents (--host-id, default the hostname): 1-128 of [A-Za-z0-9._-].
bool ValidHostId(std::string_view id);

// NotFound "no route <path>", for a route whose parameters are not ids of the right form.
Status NoRoute(const net::HttpRequest& req);

// The request body as a JSON object; InvalidArgument if it is not one.
StatusOr<nlohmann::json> ParseObject(const std::string& body);
// InvalidArgument naming the first field of `body` not in `allowed`.
Status CheckFields(const nlohmann::json& body, std::initializer_list<const char*> allowed);

// Milliseconds in a ?wait= parameter, clamped to [lo, hi]; `fallback` when absent.
std::chrono::milliseconds WaitMs(const net::HttpRequest& req, int64_t fallback, int64_t lo,
                                 int64_t hi);

}  // namespace mc::controller
