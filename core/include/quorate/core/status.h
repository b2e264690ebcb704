// Status and Result<T>: errors as values, with a code callers branch on and a message naming the culprit.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace quorate {

// What kind of failure. "Verification failed" is deliberately distinct from "could not read":
// an auditor must tell a forged signature from a missing file.
enum class Code {
  kOk,
  kUsage,         // the caller asked for something meaningless (bad flag combination, bad option value)
  kBadInput,      // malformed or hostile data: broken tar, bad JSON, hostile path, digest mismatch
  kNotFound,      // a named file, blob, commit or key does not exist
  kIo,            // the operating system refused (permissions, disk full, ...)
  kVerification,  // a well-formed claim that does not hold: bad signature, unknown key, revoked key
  kUnsupported,   // valid input that this version does not handle
  kInternal,      // a bug or an unexpected library failure
};

// A Status is either ok or a code plus a message. Thread-compatible (a value type).
class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status ok_status() { return Status(); }
  static Status usage(std::string msg) { return {Code::kUsage, std::move(msg)}; }
  static Status bad_input(std::string msg) { return {Code::kBadInput, std::move(msg)}; }
  static Status not_found(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status io(std::string msg) { return {Code::kIo, std::move(msg)}; }
  static Status verification(std::string msg) { return {Code::kVerification, std::move(msg)}; }
  static Status unsupported(std::string msg) { return {Code::kUnsupported, std::move(msg)}; }
  static Status internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }
  // An io() status carrying strerror(errnum) after `what`.
  static Status from_errno(const std::string& what, int errnum);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool is_bad_input() const { return code_ == Code::kBadInput; }
  bool is_not_found() const { return code_ == Code::kNotFound; }
  bool is_verification() const { return code_ == Code::kVerification; }

  // The same status with "context: " in front of its message (ok stays ok).
  Status with_context(const std::string& context) const;
  // "bad input: <message>" and so on; "ok" when ok.
  std::string to_string() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

const char* code_name(Code code);

// Either a T or a non-ok Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}                                  // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

namespace detail {
inline Status status_of(const Status& s) { return s; }
template <class T>
Status status_of(const Result<T>& r) {
  return r.status();
}
}  // namespace detail

}  // namespace quorate

// Returns early with the error of a Status-returning expression.
#define QR_RETURN_IF_ERROR(expr)                                           \
  do {                                                                     \
    auto&& qr_status_ = (expr);                                            \
    if (!qr_status_.ok()) return ::quorate::detail::status_of(qr_status_); \
  } while (0)

// Evaluates to the value of a Result-returning expression, or returns its error (GNU statement expression,
// as ccache's TRY). Use it alone on the right of `=` or as the only argument: in a braced list or beside other
// arguments, the early return skips the destructors of temporaries already built (clang leaks them; the
// attest fuzzer found one), so compute the value into a variable first.
#define QR_TRY(expr)                                  \
  ({                                                  \
    auto&& qr_result_ = (expr);                       \
    if (!qr_result_.ok()) return qr_result_.status(); \
    std::move(qr_result_).value();                    \
  })
