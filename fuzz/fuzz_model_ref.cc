// Model references (org/name@rev, Hub URLs) and OCI image references. Invariants: a parsed model
// reference formats to text that parses back to the same reference; a parsed image reference's
// normalised form parses back to itself.
#include <string>

#include "fuzz_util.h"
#include "mc/common/image_ref.h"
#include "mc/hub/model_ref.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mc;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (StatusOr<hub::ModelRef> ref = hub::ParseModelRef(in); ref.ok()) {
    const std::string text = hub::FormatModelRef(*ref);
    StatusOr<hub::ModelRef> again = hub::ParseModelRef(text);
    MC_FUZZ_CHECK(again.ok());
    MC_FUZZ_CHECK(*again == *ref);
  }
  if (StatusOr<ImageRef> image = ImageRef::Parse(in); image.ok()) {
    StatusOr<ImageRef> again = ImageRef::Parse(image->str());
    MC_FUZZ_CHECK(again.ok());
    MC_FUZZ_CHECK(again->str() == image->str());
  }
  return 0;
}
