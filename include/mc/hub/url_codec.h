// Percent-encoding as the Hub clients use it (hf-hub-protocol.md §2.1). Pure functions,
// thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "mc/common/status.h"

namespace mc::hub {

// Replaces every %XX escape (hex digits in either case) by its byte. '+' is kept as is (paths are
// not form-encoded). Returns kInvalidArgument for a '%' not followed by two hex digits. The result
// is raw bytes: validate it (Revision::Parse, RepoFilePath::Parse) before use.
StatusOr<std::string> PercentDecode(std::string_view text);

// Encodes every byte outside the RFC 3986 unreserved set [A-Za-z0-9-._~] as %XX (uppercase hex),
// like Python's urllib.parse.quote. With keep_slash, '/' is left as is (file paths in resolve
// URLs); without it '/' becomes %2F (revisions: "refs/pr/1" -> "refs%2Fpr%2F1").
std::string PercentEncode(std::string_view text, bool keep_slash);

}  // namespace mc::hub
