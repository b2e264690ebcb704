// quorate diff at the layer level: the changed file and nothing else; ignore lists; renderings.
#include "quorate/audit/diff.h"

#include <gtest/gtest.h>

#include "tests/support/test_util.h"

namespace quorate::audit {
namespace {
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;

class DiffTest : public ::testing::Test {
 protected:
  std::string make(const std::string& args) {
    std::string out = (dir_ / ("l" + std::to_string(n_++) + ".tar")).string();
    auto r = run("python3 " + sh((quorate::testing::source_dir() / "tests/normalize/make_layer.py").string()) +
                 " tree " + sh(out) + " " + args);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  }
  ScratchDir dir_;
  int n_ = 0;
};

TEST_F(DiffTest, OneChangedBitNamesThatFileAndNothingElse) {
  auto d = diff_layers(make("--order sorted"), make("--order reversed --tweak --compress gzip"), {});
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  // usr/bin/tool2 is a hardlink to usr/bin/tool: the same file under two names.
  ASSERT_EQ(d->changes.size(), 2u);
  EXPECT_EQ(d->changes[0].path, "usr/bin/tool");
  EXPECT_EQ(d->changes[1].path, "usr/bin/tool2");
  for (const auto& c : d->changes) {
    ASSERT_EQ(c.fields.size(), 1u);
    EXPECT_EQ(c.fields[0].field, "content");
  }
}

TEST_F(DiffTest, SameFilesInAnotherEncodingShowNoDifference) {
  auto d = diff_layers(make("--order sorted"), make("--order shuffled --dot --noise --compress zstd"), {});
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_TRUE(d->changes.empty());
}

TEST_F(DiffTest, MtimeOnlyDifferencesShowUnlessIgnored) {
  auto a = make("--mtime 1000");
  auto b = make("--mtime 2000");
  auto shown = diff_layers(a, b, {});
  ASSERT_TRUE(shown.ok());
  ASSERT_FALSE(shown->changes.empty());
  for (const auto& c : shown->changes) {
    for (const auto& f : c.fields) EXPECT_EQ(f.field, "mtime") << c.path;
  }
  DiffOptions o;
  o.ignore = {"mtime"};
  auto hidden = diff_layers(a, b, o);
  ASSERT_TRUE(hidden.ok());
  EXPECT_TRUE(hidden->changes.empty());
}

TEST_F(DiffTest, OwnersAndAddedFilesAreReported) {
  auto d = diff_layers(make(""), make("--owner 7"), {});
  ASSERT_TRUE(d.ok());
  ASSERT_FALSE(d->changes.empty());
  EXPECT_EQ(d->changes[0].fields[0].field, "owner");
  EXPECT_EQ(d->changes[0].fields[0].b, "7:7 (builder:builder)");
}

TEST(DiffOptions, UnknownIgnoreFieldIsAUsageError) {
  EXPECT_EQ(check_ignore({"mtime", "colour"}).code(), Code::kUsage);
  EXPECT_TRUE(check_ignore({"mtime", "owner", "created"}).ok());
}

TEST(DiffRendering, JsonAndTextNameTheLayerAndPath) {
  ImageDiff d;
  d.layers.push_back({1, "sha256:a", "sha256:b", {{"bin/app", FileChange::Kind::kChanged, {{"content", "x", "y"}}}}});
  auto j = to_json(d);
  EXPECT_EQ(j["identical"], false);
  EXPECT_EQ(j["layers"][0]["index"], 1);
  EXPECT_EQ(j["layers"][0]["changes"][0]["path"], "bin/app");
  EXPECT_NE(to_text(d).find("changed bin/app"), std::string::npos);
  EXPECT_EQ(to_text(ImageDiff{}), "images are identical\n");
}

}  // namespace
}  // namespace quorate::audit
