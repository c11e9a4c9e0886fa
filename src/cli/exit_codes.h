// The one place where a Status becomes a process exit code. Documented in README.md.
#pragma once

#include "mc/common/status.h"

namespace mc::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,     // a bug or an unexpected system error
  kExitUsage = 2,        // bad arguments or input (InvalidArgument)
  kExitNotFound = 3,     // repo, revision or file not found
  kExitDenied = 4,       // gated/private without an accepted token, or file permissions
  kExitNoSpace = 5,      // disk full or quota reached
  kExitDataLoss = 6,     // bytes do not match their hash
  kExitUnavailable = 7,  // network or server trouble: retry later
  kExitConflict = 8,     // the cache is not in a state where this can run
  kExitCancelled = 130,  // interrupted
};

int ExitCodeFor(const Status& status);

}  // namespace mc::cli
