// The mirror's access config (JSON). Invariant: a config that loads answers every decision.
#include <string>

#include "fuzz_util.h"
#include "mirror/access_control.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mc;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  StatusOr<mirror::AccessConfig> config = mirror::AccessConfig::Parse(in);
  if (!config.ok()) return 0;
  const RepoId repo = *RepoId::Parse("org/model");
  for (auto kind : {mirror::RouteKind::kResolve, mirror::RouteKind::kRepoInfo}) {
    (void)config->Decide(repo, kind, std::nullopt);
    (void)config->Decide(repo, kind, std::string("hf_token"));
  }
  return 0;
}
