// The mirror's route table: a method and a raw request path. Invariant: a route the handlers see
// has validated ids (a resolve route always has repo, revision and file path).
#include <string>

#include "fuzz_util.h"
#include "mirror/route.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mc;
  static const char* kMethods[] = {"GET", "HEAD", "POST", "PUT"};
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  static net::Router* router = [] {
    auto* r = new net::Router();
    mirror::AddMirrorRoutes(*r, [](const StatusOr<mirror::Route>& route, const net::HttpRequest&,
                                   net::HttpResponse&) {
      if (!route.ok()) return;
      MC_FUZZ_CHECK(route->repo.has_value());
      if (route->kind == mirror::RouteKind::kResolve) {
        MC_FUZZ_CHECK(route->revision.has_value() && route->path.has_value());
      }
    });
    return r;
  }();
  net::HttpRequest req;
  req.method = kMethods[data[0] % 4];
  req.raw_path = std::string(in);
  net::HttpResponse res;
  router->Handle(req, res);
  (void)router->MatchesPath(req.raw_path);
  return 0;
}
