// Status and StatusOr: errors are values. No exception leaves modelcache code.
//
// Pick the code by what the caller should do next:
//   kInvalidArgument    bad input; tell the user, never retry.
//   kNotFound           the thing asked for does not exist (repo, revision, file).
//   kAlreadyExists      creation raced with an equal object.
//   kPermissionDenied   gated or private content without an accepted token.
//   kUnauthenticated    a token is required and none was given.
//   kResourceExhausted  disk full, quota reached: evict, then retry.
//   kFailedPrecondition the system is not in a state where this can run (e.g. cache corrupt).
//   kUnavailable        transient: network, 5xx, timeouts. Retry with backoff.
//   kDeadlineExceeded   a deadline passed.
//   kDataLoss           bytes do not match their hash: delete them, never retry silently.
//   kCancelled          the caller asked to stop.
//   kUnimplemented      not supported by this build or peer.
//   kInternal           a bug: an invariant of ours did not hold.
// ToHttpStatus() and (in the CLI) the exit-code map are the only translations of these codes.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace mc {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kUnauthenticated,
  kResourceExhausted,
  kFailedPrecondition,
  kUnavailable,
  kDeadlineExceeded,
  kDataLoss,
  kCancelled,
  kUnimplemented,
  kInternal,
};

// Stable lower_snake name of a code ("not_found"), used in JSON and logs.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "not_found: refs/main: no such ref". "ok" for OK.
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>". OK stays OK.
  Status WithContext(std::string_view context) const;

  // Marks an already-reported status as deliberately unused.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgumentError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status PermissionDeniedError(std::string message);
Status UnauthenticatedError(std::string message);
Status ResourceExhaustedError(std::string message);
Status FailedPreconditionError(std::string message);
Status UnavailableError(std::string message);
Status DeadlineExceededError(std::string message);
Status DataLossError(std::string message);
Status CancelledError(std::string message);
Status UnimplementedError(std::string message);
Status InternalError(std::string message);

// Status from an errno value: ENOSPC/EDQUOT -> ResourceExhausted, ENOENT -> NotFound,
// EACCES/EPERM -> PermissionDenied, EEXIST -> AlreadyExists, EINTR/EAGAIN -> Unavailable,
// otherwise Internal. Message is "<what>: <strerror>".
Status ErrnoError(int err, std::string_view what);

// HTTP status code a server should answer for this Status (200 for OK).
int ToHttpStatus(const Status& status);

template <typename T>
class [[nodiscard]] StatusOr {
  static_assert(!std::is_same_v<T, Status>, "StatusOr<Status> is not allowed");

 public:
  StatusOr(const Status& status) : v_(status) { CheckNotOk(); }        // NOLINT
  StatusOr(Status&& status) : v_(std::move(status)) { CheckNotOk(); }  // NOLINT
  StatusOr(const T& value) : v_(value) {}                              // NOLINT
  StatusOr(T&& value) : v_(std::move(value)) {}                        // NOLINT
  template <typename U, typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                                    !std::is_same_v<std::decay_t<U>, T> &&
                                                    !std::is_same_v<std::decay_t<U>, Status> &&
                                                    !std::is_same_v<std::decay_t<U>, StatusOr<T>>>>
  StatusOr(U&& value) : v_(T(std::forward<U>(value))) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  // Precondition: ok(). Aborts otherwise (a broken invariant, not a runtime error).
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const { return ok() ? std::get<T>(v_) : std::move(fallback); }

 private:
  void CheckNotOk();
  std::variant<Status, T> v_;
};

namespace internal {
[[noreturn]] void DieOkStatusInStatusOr();
inline Status AddContext(Status s) { return s; }
inline Status AddContext(Status s, std::string_view context) { return s.WithContext(context); }
inline const Status& GetStatus(const Status& s) { return s; }
template <typename T>
Status GetStatus(const StatusOr<T>& s) {
  return s.status();
}
}  // namespace internal

template <typename T>
void StatusOr<T>::CheckNotOk() {
  if (std::get<Status>(v_).ok()) internal::DieOkStatusInStatusOr();
}

}  // namespace mc

#define MC_CONCAT_INNER_(a, b) a##b
#define MC_CONCAT_(a, b) MC_CONCAT_INNER_(a, b)

// MC_RETURN_IF_ERROR(expr [, context]): returns the error of `expr` (a Status or StatusOr),
// with "<context>: " prepended when given.
#define MC_RETURN_IF_ERROR(expr, ...)                                                      \
  do {                                                                                     \
    ::mc::Status mc_status_ = ::mc::internal::GetStatus(expr);                             \
    if (!mc_status_.ok())                                                                  \
      return ::mc::internal::AddContext(std::move(mc_status_) __VA_OPT__(, ) __VA_ARGS__); \
  } while (false)

// MC_ASSIGN_OR_RETURN(lhs, expr [, context]): `lhs = std::move(expr).value()` or return the error.
#define MC_ASSIGN_OR_RETURN(lhs, expr, ...)                          \
  MC_ASSIGN_OR_RETURN_IMPL_(MC_CONCAT_(mc_statusor_, __LINE__), lhs, \
                            expr __VA_OPT__(, ) __VA_ARGS__)
#define MC_ASSIGN_OR_RETURN_IMPL_(var, lhs, expr, ...)                                       \
  auto var = (expr);                                                                         \
  if (!var.ok()) return ::mc::internal::AddContext(var.status() __VA_OPT__(, ) __VA_ARGS__); \
  lhs = std::move(var).value()
