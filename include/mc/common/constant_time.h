// Comparison of secrets (tokens, keys, their digests) in constant time: the one such comparison
// in modelcache (Secret::Matches, the mirror's token check, the controller's worker keys).
#pragma once

#include <string_view>

namespace mc {

// True if `a` and `b` are equal. The time taken depends only on their lengths, never on where
// they first differ, so that a server checking a guessed secret does not tell how much of it
// was right. Thread-safe.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace mc
