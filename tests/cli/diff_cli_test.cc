// `quorate diff` as a process, on images that `quorate normalize` made from docker-archives: canonical copies
// of the same image show nothing; one changed file is named with its layer and nothing else; mtime-only
// differences show as mtime, and as nothing with --ignore mtime; bad input exits 2 naming what was wrong.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/test_util.h"

namespace quorate {
namespace {
namespace fs = std::filesystem;
using quorate::testing::quorate_bin;
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;

class DiffCliTest : public ::testing::Test {
 protected:
  // A canonical OCI layout of the docker-archive tests/cli/make_image.py writes with `args`.
  fs::path canonical(const std::string& args, const std::string& epoch = "1500000000") {
    int n = n_++;
    fs::path archive = dir_ / ("image" + std::to_string(n) + ".tar");
    fs::path layout = dir_ / ("oci" + std::to_string(n));
    auto made = run("python3 " + sh((quorate::testing::source_dir() / "tests/cli/make_image.py").string()) + " " +
                    sh(archive.string()) + " " + args);
    EXPECT_EQ(made.exit_code, 0) << made.out;
    auto r = run(sh(quorate_bin()) + " normalize --source-date-epoch " + epoch + " " + sh(archive.string()) +
                 " -o " + sh(layout.string()));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return layout;
  }
  // stdout only (the verdict line on stderr would spoil the JSON), unless `with_stderr`.
  quorate::testing::CommandResult diff(const fs::path& a, const fs::path& b, const std::string& extra = "",
                                       bool with_stderr = false) {
    return run("(" + sh(quorate_bin()) + " diff " + extra + " " + sh(a.string()) + " " + sh(b.string()) +
               (with_stderr ? "" : " 2>/dev/null") + ")");
  }
  static nlohmann::json parse(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << text;
    return j;
  }

  ScratchDir dir_;
  int n_ = 0;
};

TEST_F(DiffCliTest, CanonicalCopiesOfTheSameImageShowNoDifference) {
  auto a = canonical("");
  auto b = canonical("--reverse --host-noise --mtime 1650000000 --layout blobs");
  auto r = diff(a, b);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "images are identical\n");
}

TEST_F(DiffCliTest, OneChangedFileIsNamedWithItsLayerAndNothingElse) {
  auto a = canonical("");
  auto b = canonical("--greeting bonjour");
  auto r = diff(a, b, "--json");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  auto j = parse(r.out);
  EXPECT_FALSE(j["identical"].get<bool>());
  EXPECT_TRUE(j["manifest"].empty()) << j.dump(2);
  EXPECT_TRUE(j["config"].empty()) << j.dump(2);
  ASSERT_EQ(j["layers"].size(), 1u) << j.dump(2);
  EXPECT_EQ(j["layers"][0]["index"], 0);
  ASSERT_EQ(j["layers"][0]["changes"].size(), 1u) << j.dump(2);
  const auto& change = j["layers"][0]["changes"][0];
  EXPECT_EQ(change["path"], "etc/hello.conf");
  EXPECT_EQ(change["kind"], "changed");
  std::vector<std::string> fields;
  for (const auto& f : change["fields"]) fields.push_back(f["field"]);
  EXPECT_EQ(fields, (std::vector<std::string>{"size", "content"}));

  auto text = diff(a, b);
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("layer 0 ("), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("changed etc/hello.conf"), std::string::npos) << text.out;
}

TEST_F(DiffCliTest, MtimeOnlyDifferencesShowAsMtimeUnlessIgnored) {
  // Both inputs' mtimes are below SOURCE_DATE_EPOCH, so clamping keeps them: only the mtimes differ.
  auto a = canonical("--mtime 1400000000");
  auto b = canonical("--mtime 1400000500");
  auto r = diff(a, b, "--json");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  auto j = parse(r.out);
  EXPECT_TRUE(j["manifest"].empty()) << j.dump(2);
  EXPECT_TRUE(j["config"].empty()) << j.dump(2);
  ASSERT_FALSE(j["layers"].empty());
  size_t changes = 0;
  for (const auto& layer : j["layers"]) {
    for (const auto& c : layer["changes"]) {
      ++changes;
      ASSERT_EQ(c["fields"].size(), 1u) << c.dump();
      EXPECT_EQ(c["fields"][0]["field"], "mtime");
    }
  }
  EXPECT_GT(changes, 0u);

  auto ignored = diff(a, b, "--ignore mtime");
  EXPECT_EQ(ignored.exit_code, 0) << ignored.out;
  EXPECT_EQ(ignored.out, "images are identical\n");
}

TEST_F(DiffCliTest, BadInputExitsTwoNamingIt) {
  auto a = canonical("");
  auto missing = diff(a, dir_ / "nope", "", true);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.out.find((dir_ / "nope").string()), std::string::npos) << missing.out;

  fs::create_directories(dir_ / "not-a-layout");
  auto not_layout = diff(a, dir_ / "not-a-layout", "", true);
  EXPECT_EQ(not_layout.exit_code, 2) << not_layout.out;
  EXPECT_NE(not_layout.out.find("not-a-layout"), std::string::npos) << not_layout.out;

  auto unknown = diff(a, a, "--ignore colour", true);
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.out.find("colour"), std::string::npos) << unknown.out;
}

}  // namespace
}  // namespace quorate
