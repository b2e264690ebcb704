// SOURCE_DATE_EPOCH from a flag or the environment, and --build-arg flags, read and checked in one place for
// every command.
#include <cerrno>
#include <cstdlib>
#include <string>

#include "quorate/cli/cli.h"
#include "quorate/core/build_args.h"
#include "quorate/wire/request.h"

namespace quorate::cli {

Result<std::optional<int64_t>> source_date_epoch_of(const std::optional<int64_t>& flag, const char* env_value) {
  auto in_range = [](int64_t v) { return v >= 0 && v <= wire::kMaxSourceDateEpoch; };
  const std::string range = " (0 to " + std::to_string(wire::kMaxSourceDateEpoch) + ", the end of year 9999)";
  if (flag) {
    if (!in_range(*flag))
      return Status::usage("--source-date-epoch " + std::to_string(*flag) + " is out of range" + range);
    return flag;
  }
  if (env_value == nullptr || *env_value == '\0') return std::optional<int64_t>();
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(env_value, &end, 10);
  if (*end != '\0' || errno == ERANGE || !in_range(v)) {
    return Status::usage(std::string("SOURCE_DATE_EPOCH is not an integer in range") + range + ": " + env_value);
  }
  return std::optional<int64_t>(v);
}

Result<std::map<std::string, std::string>> parse_build_args(const std::vector<std::string>& args) {
  return parse_build_arg_flags(args);  // the one rule (core/build_args.h)
}

}  // namespace quorate::cli
