// Pages of a Hub tree listing (JSON arrays), one or two of them. Invariant: every file the
// collector returns has a valid repo path (it never hands the downloader an unsafe path).
#include <string>

#include "fuzz_util.h"
#include "hub/hub_tree.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mc;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto [page1, page2] = SplitAtNul(in);
  hub::internal::TreeCollector collector(1000);
  if (!collector.AddPage(page1).ok()) return 0;
  if (!page2.empty()) (void)collector.AddPage(page2);
  StatusOr<std::vector<hub::TreeFile>> files = std::move(collector).Finish();
  if (!files.ok()) return 0;
  for (const hub::TreeFile& f : *files) {
    MC_FUZZ_CHECK(RepoFilePath::Parse(f.path.str()).ok());
  }
  return 0;
}
