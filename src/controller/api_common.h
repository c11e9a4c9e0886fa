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

#include "controller/api_keys.h"
#include "controller/store.h"
#include "mc/common/clock.h"
#include "mc/common/secret_box.h"
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
  // Seals secrets before they reach the store and opens them where they are used.
  const SecretBox& secrets;
  // Called after a job is queued, so that the autoscaler runs at once (may be empty). Set before
  // the server takes requests.
  std::function<void()> kick;
};

using ApiHandler = void (*)(ApiContext& ctx, const net::HttpRequest& req,
                            const net::PathParams& params, net::HttpResponse& res);

// A route handler that calls `handler` with `ctx`.
net::RouteHandler Bind(ApiContext& ctx, ApiHandler handler);
// The same for a route only admin keys may use (keys, hosts, fleet metrics): 403 for others.
net::RouteHandler AdminOnly(ApiContext& ctx, ApiHandler handler);

// Who sent a keyed request (its key was validated before the route ran). A key deleted since
// gives a principal that sees nothing and may do nothing.
Principal Caller(ApiContext& ctx, const net::HttpRequest& req);
// What a validated key may do beyond its tenant's resources: readonly keys only GET and HEAD
// (403 otherwise). Called by ControllerApi after the key is validated, before the route runs.
Status CheckRole(const Principal& caller, const net::HttpRequest& req);
// The endpoint `id` if the caller sees it. NotFound, with the very answer an unknown id gets,
// for an id of the wrong form, an unknown endpoint or another tenant's (no existence leak).
StatusOr<EndpointRecord> VisibleEndpoint(ApiContext& ctx, const net::HttpRequest& req,
                                         const std::string& id);

// Each resource's routes (api_<resource>.cc). The public router takes requests without a client
// key (health; the worker protocol checks each worker's own key); every other route is on the
// keyed router, which ControllerApi reaches only with a valid client key.
void AddHealthAndMetricsRoutes(net::Router& public_routes, net::Router& keyed, ApiContext& ctx);
void AddWorkerProtocolRoutes(net::Router& public_routes, ApiContext& ctx);
void AddEndpointRoutes(net::Router& keyed, ApiContext& ctx);
void AddJobRoutes(net::Router& keyed, ApiContext& ctx);
void AddHostRoutes(net::Router& public_routes, net::Router& keyed, ApiContext& ctx);
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
