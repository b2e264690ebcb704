// Canonical JSON: the one definition every hashed, signed or stored document is written with.
#include "quorate/core/json.h"

#include <gtest/gtest.h>

namespace quorate {
namespace {

TEST(CanonicalJson, SortsKeysBytewiseWithoutWhitespace) {
  auto j = nlohmann::json::parse(R"({ "b": 1, "a": {"z": [1, 2], "B": "x"}, "\u00e9": true })");
  EXPECT_EQ(canonical_json(j, "doc").value(), "{\"a\":{\"B\":\"x\",\"z\":[1,2]},\"b\":1,\"\xc3\xa9\":true}");
}

TEST(CanonicalJson, InvalidUtf8IsBadInputNamingTheDocumentNeverRepaired) {
  nlohmann::json j = {{"name", std::string("bad\xff")}};
  auto r = canonical_json(j, "config");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_bad_input());
  EXPECT_NE(r.status().message().find("config"), std::string::npos) << r.status().to_string();
}

TEST(CanonicalJson, DisplayShowsInvalidUtf8AsReplacement) {
  nlohmann::json j = {{"reason", std::string("bad\xff")}};
  EXPECT_EQ(display_json(j, -1), "{\"reason\":\"bad\xef\xbf\xbd\"}");
}

TEST(CanonicalJson, DisplayEscapesDelAndC1Controls) {
  nlohmann::json j = {{"reason", std::string("csi \xc2\x9b"
                                             "2J del \x7f esc \x1b nbsp \xc2\xa0")}};
  const std::string shown = display_json(j, -1);
  EXPECT_EQ(shown, "{\"reason\":\"csi \\u009b2J del \\u007f esc \\u001b nbsp \xc2\xa0\"}");
  EXPECT_EQ(nlohmann::json::parse(shown), j);  // the same value
}

// A name holding U+202E reads reversed from there to the end of its line wherever the bidi algorithm is applied
// (`evil\u202etxt.exe` shows as "evilexe.txt"); text reports mask it, and JSON escapes it as the same value.
TEST(CanonicalJson, DisplayEscapesTheBidiControls) {
  nlohmann::json j = {{"path", std::string("evil\xe2\x80\xaetxt.exe \xd8\x9c \xe2\x80\x8e\xe2\x80\x8f "
                                           "\xe2\x80\xaa \xe2\x81\xa6\xe2\x81\xa9 ok \xe2\x80\x94 \xe2\x81\xaa")}};
  const std::string shown = display_json(j, -1);
  EXPECT_EQ(shown,
            "{\"path\":\"evil\\u202etxt.exe \\u061c \\u200e\\u200f \\u202a \\u2066\\u2069 ok \xe2\x80\x94 "
            "\xe2\x81\xaa\"}");
  EXPECT_EQ(nlohmann::json::parse(shown), j);  // the same value
}

TEST(CanonicalJson, ValidUtf8ReplacesOnlyTheBadBytes) {
  EXPECT_EQ(valid_utf8("gcc \xff 12 \xc3\xa9"), "gcc \xef\xbf\xbd 12 \xc3\xa9");
  EXPECT_EQ(valid_utf8("plain"), "plain");
}

// Copying, comparing and printing a parsed value recurse: nesting is bounded before parsing, brackets inside
// strings (escaped quotes too) not counted.
TEST(JsonDepth, SixtyFourLevelsPassSixtyFiveAreRefusedAndStringsDoNotCount) {
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(check_json_depth(nested(64), "doc").ok());
  Status deep = check_json_depth(nested(65), "the manifest");
  EXPECT_TRUE(deep.is_bad_input());
  EXPECT_EQ(deep.message(), "the manifest: JSON nested deeper than 64 levels");
  EXPECT_TRUE(check_json_depth("[\"" + std::string(100, '[') + "\\\"{{\"]", "doc").ok());
  EXPECT_TRUE(check_json_depth("{\"a\":" + nested(63) + ",\"b\":" + nested(63) + "}", "doc").ok());
  EXPECT_FALSE(check_json_depth("{\"a\\\\\":" + nested(64) + "}", "doc").ok());  // the key ends at \\"
  EXPECT_TRUE(parse_untrusted_json(nested(1000000)).is_discarded());
  EXPECT_EQ(parse_untrusted_json(nested(3)), nlohmann::json::parse("[[[]]]"));
}

}  // namespace
}  // namespace quorate
