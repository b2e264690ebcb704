// TomlFile: every message names file:line; unknown keys, wrong types, ranges and missing keys are refused.
#include "quorate/config/toml_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace quorate::config
