// Hex, base64 and UTF-8 helpers.
#include "quorate/core/encoding.h"

#include <gtest/gtest.h>

namespace quorate {
namespace {

TEST(Hex, RoundTrips) {
  EXPECT_EQ(hex_encode(std::string_view("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(hex_decode("00FF10").value(), std::string("\x00\xff\x10", 3));
}

TEST(Hex, RejectsOddLengthAndNonHex) {
  EXPECT_TRUE(hex_decode("abc").status().is_bad_input());
  EXPECT_TRUE(hex_decode("zz").status().is_bad_input());
}

TEST(Base64, MatchesRfc4648Vectors) {
  const char* vectors[][2] = {{"", ""},
                              {"f", "Zg=="},
                              {"fo", "Zm8="},
                              {"foo", "Zm9v"},
                              {"foob", "Zm9vYg=="},
                              {"fooba", "Zm9vYmE="},
                              {"foobar", "Zm9vYmFy"}};
  for (auto& v : vectors) {
    EXPECT_EQ(base64_encode(v[0]), v[1]);
    EXPECT_EQ(base64_decode(v[1]).value(), v[0]);
  }
}

TEST(Base64, RejectsMalformedInput) {
  EXPECT_TRUE(base64_decode("Zm9").status().is_bad_input());
  EXPECT_TRUE(base64_decode("Zm9v!A==").status().is_bad_input());
  EXPECT_TRUE(base64_decode("Zg=a").status().is_bad_input());
  EXPECT_TRUE(base64_decode("Zh==").status().is_bad_input());  // stray bits under padding
  EXPECT_TRUE(base64_decode("Zm9v\n").status().is_bad_input());
}

TEST(Utf8, AcceptsValidAndRejectsInvalid) {
  EXPECT_TRUE(is_utf8("plain"));
  EXPECT_TRUE(is_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_utf8("\xff"));
  EXPECT_FALSE(is_utf8("\xc3"));          // truncated
  EXPECT_FALSE(is_utf8("\xc0\xaf"));      // overlong
  EXPECT_FALSE(is_utf8("\xed\xa0\x80"));  // surrogate
}

}  // namespace
}  // namespace quorate
