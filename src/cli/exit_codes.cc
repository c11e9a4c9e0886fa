#include "exit_codes.h"

namespace mc::cli {

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
      return kExitUsage;
    case StatusCode::kNotFound:
      return kExitNotFound;
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnauthenticated:
      return kExitDenied;
    case StatusCode::kResourceExhausted:
      return kExitNoSpace;
    case StatusCode::kDataLoss:
      return kExitDataLoss;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return kExitConflict;
    case StatusCode::kCancelled:
      return kExitCancelled;
    case StatusCode::kUnimplemented:
    case StatusCode::kInternal:
      return kExitInternal;
  }
  return kExitInternal;
}

}  // namespace mc::cli
