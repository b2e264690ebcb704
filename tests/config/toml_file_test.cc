// TomlFile: every message names file:line; unknown keys, wrong types, ranges and missing keys are refused.
#include "quorate/config/toml_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "support/test_util.h"

namespace quorate::config {
namespace {
using quorate::testing::ScratchDir;
using ::testing::HasSubstr;

class TomlFileTest : public ::testing::Test {
 protected:
  Result<TomlFile> read(const std::string& text) {
    quorate::testing::spit(dir_ / "c.toml", text);
    return TomlFile::read(dir_ / "c.toml");
  }
  std::string file() const { return (dir_ / "c.toml").string(); }
  ScratchDir dir_;
};

TEST_F(TomlFileTest, ParseErrorsNameFileAndLine) {
  auto f = read("a = 1\nb = = 2\n");
  ASSERT_TRUE(f.status().is_bad_input());
  EXPECT_THAT(f.status().message(), HasSubstr(file() + ":2: "));
  auto text = parse_toml("x = [", "recipe.toml");
  ASSERT_TRUE(text.status().is_bad_input());
  EXPECT_THAT(text.status().message(), HasSubstr("recipe.toml:1: "));
}

TEST_F(TomlFileTest, UnknownKeysAreRefusedWithTheirSectionAndLine) {
  auto f = read("[net]\nport = 1\nprot = 2\n").value();
  const toml::table* net = f.table(f.root(), "net").value();
  Status s = f.check_keys(*net, "net.", {"port"});
  ASSERT_TRUE(s.is_bad_input());
  EXPECT_EQ(s.message(), file() + ":3: unknown key 'net.prot'");
}

TEST_F(TomlFileTest, TypedGettersCheckTypesRangesAndPresence) {
  auto f = read("name = 7\ncount = 500\nflag = \"yes\"\nlist = [\"a\", 1]\nsection = 1\n").value();
  const auto& r = f.root();
  EXPECT_EQ(f.string(r, "name", "", false).status().message(), file() + ":1: 'name' must be a string");
  EXPECT_EQ(f.integer(r, "count", "", 0, 1, 100).status().message(), file() + ":2: 'count' must be in [1, 100]");
  EXPECT_EQ(f.boolean(r, "flag", "", false).status().message(), file() + ":3: 'flag' must be true or false");
  EXPECT_EQ(f.strings(r, "list", "").status().message(), file() + ":4: 'list' must hold strings");
  EXPECT_EQ(f.table(r, "section").status().message(), file() + ":5: 'section' must be a table");
  EXPECT_EQ(f.string(r, "absent", "", true).status().message(), file() + ": missing required key 'absent'");
  EXPECT_EQ(f.string(r, "absent", "", false, "dflt").value(), "dflt");
  EXPECT_EQ(f.integer(r, "absent", "", 42, 1, 100).value(), 42);
  EXPECT_EQ(f.table(r, "absent").value(), nullptr);
}

TEST_F(TomlFileTest, RelativePathsResolveAgainstTheFilesDirectory) {
  auto f = read("").value();
  EXPECT_EQ(f.resolve("keys/a.pem"), std::filesystem::absolute(dir_.path()) / "keys/a.pem");
  EXPECT_EQ(f.base_dir(), std::filesystem::absolute(dir_.path()));
  EXPECT_EQ(f.resolve("/etc/x"), std::filesystem::path("/etc/x"));
  EXPECT_EQ(f.resolve(""), std::filesystem::path());
}

// "x.x.…x" with `parts` parts, each written as `part`, joined by `dot`.
std::string dotted(size_t parts, const std::string& part = "x", const std::string& dot = ".") {
  std::string out;
  for (size_t i = 0; i < parts; ++i) out += (i ? dot : "") + part;
  return out;
}

std::string too_deep(const std::string& where) {
  return where +
         ": keys nested deeper than 64 levels (dotted key parts, [table] parts, arrays and inline tables "
         "together)";
}

// 60,000 parts overflowed toml++'s stack (SIGSEGV) in every process reading a recipe, policy or roster.
TEST_F(TomlFileTest, DeepDottedKeysAreRefusedNotACrash) {
  const std::string deep = dotted(60000);
  EXPECT_EQ(parse_toml("a = 1\n" + deep + " = 1\n", "quorate.toml").status().message(), too_deep("quorate.toml:2"));
  EXPECT_EQ(parse_toml("[" + deep + "]\n", "p.toml").status().message(), too_deep("p.toml:1"));
  EXPECT_EQ(parse_toml("[[" + deep + "]]\n", "p.toml").status().message(), too_deep("p.toml:1"));
  EXPECT_EQ(parse_toml(dotted(60000, "\"x\"", " . ") + " = 1", "p.toml").status().message(), too_deep("p.toml:1"));
  EXPECT_EQ(parse_toml(dotted(60000, "'x'", ".\t") + " = 1", "p.toml").status().message(), too_deep("p.toml:1"));
  EXPECT_EQ(parse_toml("a = [1,\n  {" + deep + " = 1}]", "p.toml").status().message(), too_deep("p.toml:2"));
  auto f = read("[n]\n" + deep + " = 1\n");
  ASSERT_TRUE(f.status().is_bad_input());
  EXPECT_EQ(f.status().message(), too_deep(file() + ":2"));
  // Past text the scan does not read as TOML, a line with more dots than a key may have is refused too: should
  // toml++ read further than the scan, it would not meet a deep key.
  EXPECT_EQ(parse_toml("a = 1\n%% not toml\n" + deep + " = 1\n", "p.toml").status().message(), too_deep("p.toml:3"));
  EXPECT_TRUE(parse_toml("a = 1\n%% not toml\nurl = \"" + dotted(60) + "\"\n", "p.toml").status().is_bad_input());
}

// Tables, dotted keys, arrays and inline tables count together, up to 64.
TEST_F(TomlFileTest, NestingUpTo64LevelsIsRead) {
  EXPECT_TRUE(parse_toml(dotted(64) + " = 1", "t").ok());
  EXPECT_EQ(parse_toml(dotted(65) + " = 1", "t").status().message(), too_deep("t:1"));
  EXPECT_TRUE(parse_toml("[" + dotted(32) + "]\n" + dotted(32) + " = 1", "t").ok());
  EXPECT_EQ(parse_toml("[" + dotted(32) + "]\n" + dotted(33) + " = 1", "t").status().message(), too_deep("t:2"));
  EXPECT_EQ(parse_toml("[[" + dotted(32) + "]]\n" + dotted(32) + " = 1", "t").status().message(), too_deep("t:2"));
  EXPECT_TRUE(parse_toml("a = " + std::string(63, '[') + std::string(63, ']'), "t").ok());
  EXPECT_EQ(parse_toml("a = " + std::string(64, '[') + std::string(64, ']'), "t").status().message(), too_deep("t:1"));
  EXPECT_TRUE(parse_toml("a = {" + dotted(31) + " = {" + dotted(32) + " = 1}}", "t").ok());
  EXPECT_EQ(parse_toml("a = {" + dotted(31) + " = {" + dotted(33) + " = 1}}", "t").status().message(), too_deep("t:1"));
}

// The scan reads strings and comments as TOML does: what is inside them is no key, and they cannot hide the
// key after them.
TEST_F(TomlFileTest, StringsAndCommentsNeitherHideNorMakeUpDeepKeys) {
  const std::string deep = dotted(100) + " = 1\n";
  const std::string texts[] = {
      "s = \"\"\"\n" + deep + "# \\\"\"\" ' ''' [\n\"\"\"\n",  // multi-line basic: an escaped quote, '#', '['
      "s = '''\n" + deep + "\"\"\" \\''' \n",                  // multi-line literal: '\' escapes nothing
      "s = \"\"\"a\"\"\"\"\"\n",                               // two quotes before the closing three
      "s = '''a'''''\n",
      "s = \"a'#[{\\\"\" # \"\"\" '''\n",
      "s = 'a\"#\\'\n",
      "# " + deep,
      "d = 1979-05-27 07:32:00Z # " + deep,
      "a = [ # " + deep + "  1, # ]\n  \"]\", '[',\n]\n",
      "t = { a = \"}\", b = [ '{' ] }\n",
      "\xEF\xBB\xBF[t]\r\na = 1\r\n",
  };
  for (const std::string& text : texts) {
    auto alone = parse_toml(text, "t");
    EXPECT_TRUE(alone.ok()) << text << "\n" << alone.status().to_string();
    const auto lines = std::count(text.begin(), text.end(), '\n');
    auto after = parse_toml(text + dotted(65) + " = 1\n", "t");
    EXPECT_EQ(after.status().message(), too_deep("t:" + std::to_string(lines + 1))) << text;
  }
  auto inside = parse_toml("s = \"\"\"\n" + deep + "\"\"\"\n", "t");
  ASSERT_TRUE(inside.ok()) << inside.status().to_string();
  EXPECT_EQ(inside.value()["s"].value_or(std::string()), deep);
}

}  // namespace
}  // namespace quorate::config
