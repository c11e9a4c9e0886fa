// POST paths-info bodies (JSON or form), with and without a Content-Type.
#include <string>

#include "fuzz_util.h"
#include "mc/common/ids.h"
#include "mirror/api_params.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mc;
  if (size == 0) return 0;
  static const char* kTypes[] = {nullptr, "application/json", "application/x-www-form-urlencoded",
                                 "text/plain"};
  net::HttpRequest req;
  req.method = "POST";
  req.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (const char* type = kTypes[data[0] % 4]) req.headers.Set("Content-Type", type);
  StatusOr<mirror::PathsInfoRequest> r = mirror::ParsePathsInfoBody(req);
  if (r.ok()) {
    for (const std::string& p : r->paths) (void)RepoFilePath::Parse(p);
  }
  return 0;
}
