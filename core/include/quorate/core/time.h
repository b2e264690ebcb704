// RFC 3339 times in UTC, as attestations, rosters and image configs carry them. No clock access here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "quorate/core/status.h"

namespace quorate {

// "1970-01-01T00:00:00Z" for 0. Seconds precision, always UTC with "Z".
std::string format_rfc3339(int64_t unix_seconds);

// 9999-12-31T23:59:59Z: the last second an RFC 3339 date (four-digit year) can write. The upper bound of
// every SOURCE_DATE_EPOCH (normalize::check_source_date_epoch, wire::normalize_request, the CLI).
inline constexpr int64_t kLastRfc3339Second = 253402300799;
// Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)" ('t'/'z' and a space separator too); fractions are
// truncated. bad_input naming the text otherwise.
Result<int64_t> parse_rfc3339(std::string_view text);
// "30d", "12h", "15m", "45s", "2w" -> seconds; bad_input otherwise.
Result<int64_t> parse_duration(std::string_view text);

}  // namespace quorate
