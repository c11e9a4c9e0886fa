#include "controller/api.h"

#include "controller/console.h"
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
