// The end of a text: the last lines of a log, capped in lines and in bytes, for showing why a
// process ended (an agent's worker document, the controller's endpoint document).
//
// Pure except ReadFileTail, which reads at most `max_bytes` from the end of a file.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "mc/common/status.h"

namespace mc {

// The last `max_lines` lines of `text`, and of those at most the last `max_bytes` bytes. Only
// whole lines are kept, except that a single last line longer than `max_bytes` keeps its end. A
// trailing line break does not count as an empty last line. The result is valid UTF-8 (what is
// not, a cut character included, becomes '?'), so that it can go into a JSON document.
std::string LastLines(std::string_view text, size_t max_lines, size_t max_bytes);

// `text` with each byte that is not part of a well-formed UTF-8 sequence replaced by '?'.
std::string ValidUtf8(std::string_view text);

// LastLines of the file at `path`, reading only its last `max_bytes` bytes. An empty or missing
// file gives "" (a process that never wrote has no tail); other errors are returned.
StatusOr<std::string> ReadFileTail(const std::filesystem::path& path, size_t max_lines,
                                   size_t max_bytes);

}  // namespace mc
