// RFC 3339 and durations.
#include "quorate/core/time.h"

#include <gtest/gtest.h>

#include <limits>

namespace quorate {
namespace {

TEST(Rfc3339, FormatsUtc) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(1700000000), "2023-11-14T22:13:20Z");
  EXPECT_EQ(format_rfc3339(951782400), "2000-02-29T00:00:00Z");
}

// Times before 1970 round down to the day before; the smallest one (a store column an attacker set) was negated
// with signed overflow and printed as the largest.
TEST(Rfc3339, FormatsTimesBefore1970AndTheExtremes) {
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(format_rfc3339(-86401), "1969-12-30T23:59:59Z");
  EXPECT_EQ(format_rfc3339(std::numeric_limits<int64_t>::max()), "292277026596-12-04T15:30:07Z");
  EXPECT_EQ(format_rfc3339(std::numeric_limits<int64_t>::min()), "-292277022657-01-27T08:29:52Z");
}

TEST(Rfc3339, ParsesOffsetsAndFractions) {
  EXPECT_EQ(parse_rfc3339("2023-11-14T22:13:20Z").value(), 1700000000);
  EXPECT_EQ(parse_rfc3339("2023-11-14T23:13:20.123+01:00").value(), 1700000000);
  EXPECT_EQ(parse_rfc3339("2023-11-14T21:13:20-01:00").value(), 1700000000);
}

TEST(Rfc3339, RejectsMalformed) {
  for (const char* s : {"", "2023-11-14", "2023-11-14T22:13:20", "2023-02-30T00:00:00Z", "2023-11-14T22:13:20Zx",
                        "2023-13-01T00:00:00Z"}) {
    EXPECT_TRUE(parse_rfc3339(s).status().is_bad_input()) << s;
  }
}

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(parse_duration("30d").value(), 30 * 86400);
  EXPECT_EQ(parse_duration("2w").value(), 14 * 86400);
  EXPECT_TRUE(parse_duration("30").status().is_bad_input());
  EXPECT_TRUE(parse_duration("-3d").status().is_bad_input());
  EXPECT_TRUE(parse_duration("3y").status().is_bad_input());
}

}  // namespace
}  // namespace quorate
