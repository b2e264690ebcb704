// Status: names and formatting.
#include "quorate/core/status.h"

#include <cstring>

namespace quorate {

Status Status::from_errno(const std::string& what, int errnum) { return io(what + ": " + std::strerror(errnum)); }

Status Status::with_context(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return std::string(code_name(code_)) + ": " + message_;
}

const char* code_name(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kUsage:
      return "usage";
    case Code::kBadInput:
      return "bad input";
    case Code::kNotFound:
      return "not found";
    case Code::kIo:
      return "i/o error";
    case Code::kVerification:
      return "verification failed";
    case Code::kUnsupported:
      return "unsupported";
    case Code::kInternal:
      return "internal error";
  }
  return "unknown";
}

}  // namespace quorate
