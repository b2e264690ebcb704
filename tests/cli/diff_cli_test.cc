// `quorate diff` as a process, on docker-archives, OCI layout tars and the layouts `quorate normalize` makes:
// canonical copies of the same image show nothing; one changed file is named with its layer and nothing
// else; mtime-only differences show as mtime, and as nothing with --ignore mtime; an archive against its
// canonical form shows only what normalizing changes; bad input exits 2 naming what was wrong; --deep runs
// diffoscope or is a usage error without it.
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
  // The docker-archive tests/cli/make_image.py writes with `args`.
  fs::path archive(const std::string& args) {
    fs::path out = dir_ / ("image" + std::to_string(n_++) + ".tar");
    auto made = run("python3 " + sh((quorate::testing::source_dir() / "tests/cli/make_image.py").string()) + " " +
                    sh(out.string()) + " " + args);
    EXPECT_EQ(made.exit_code, 0) << made.out;
    return out;
  }
  // The canonical OCI layout of `input`.
  fs::path normalized(const fs::path& input, const std::string& epoch = "1500000000") {
    fs::path layout = dir_ / ("oci" + std::to_string(n_++));
    auto r = run(sh(quorate_bin()) + " normalize --source-date-epoch " + epoch + " " + sh(input.string()) + " -o " +
                 sh(layout.string()));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return layout;
  }
  // A canonical OCI layout of the docker-archive tests/cli/make_image.py writes with `args`.
  fs::path canonical(const std::string& args, const std::string& epoch = "1500000000") {
    return normalized(archive(args), epoch);
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

TEST_F(DiffCliTest, ArchiveAgainstItsCanonicalLayoutShowsOnlyWhatNormalizingChanges) {
  auto tar = archive("--host-noise");
  auto layout = normalized(tar);
  auto r = diff(tar, layout, "--json");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  auto j = parse(r.out);
  // The manifests are of two formats (docker's manifest.json entry, an OCI manifest): shown, not checked.
  for (const auto& f : j["config"]) {
    std::string field = f["field"];
    bool host_or_time = field == "/created" || field.starts_with("/history/") || field.starts_with("/container") ||
                        field == "/docker_version" || field == "/config/Hostname" || field == "/config/Image";
    EXPECT_TRUE(host_or_time) << f.dump();
  }
  ASSERT_EQ(j["layers"].size(), 2u) << j.dump(2);
  for (const auto& layer : j["layers"]) {
    for (const auto& c : layer["changes"]) {
      EXPECT_EQ(c["kind"], "changed") << c.dump();
      for (const auto& f : c["fields"]) EXPECT_TRUE(f["field"] == "mtime" || f["field"] == "owner") << c.dump();
    }
  }
  auto quiet = diff(tar, layout, "--json --ignore mtime,owner");
  ASSERT_EQ(quiet.exit_code, 1) << quiet.out;
  EXPECT_TRUE(parse(quiet.out)["layers"].empty()) << quiet.out;
}

TEST_F(DiffCliTest, TwoArchivesDifferingInOneFileNameItAndNothingElse) {
  auto a = archive("");
  auto b = archive("--greeting bonjour --layout blobs");
  auto r = diff(a, b, "--json");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  auto j = parse(r.out);
  EXPECT_TRUE(j["manifest"].empty()) << j.dump(2);
  EXPECT_TRUE(j["config"].empty()) << j.dump(2);
  ASSERT_EQ(j["layers"].size(), 1u) << j.dump(2);
  EXPECT_EQ(j["layers"][0]["index"], 0);
  ASSERT_EQ(j["layers"][0]["changes"].size(), 1u) << j.dump(2);
  EXPECT_EQ(j["layers"][0]["changes"][0]["path"], "etc/hello.conf");

  // docker save's two ways of storing layers, and a symlinked layer.tar, hold the same image.
  auto same = diff(a, archive("--layout blobs --reverse"));
  EXPECT_EQ(same.exit_code, 0) << same.out;
  auto linked = diff(a, archive("--symlink-layers"));
  EXPECT_EQ(linked.exit_code, 0) << linked.out;
}

TEST_F(DiffCliTest, OciLayoutTarIsTheLayoutItHolds) {
  auto layout = canonical("");
  fs::path tar = dir_ / "layout.tar", tgz = dir_ / "layout.bin";  // no telling extension: detected by content
  ASSERT_EQ(run("tar -C " + sh(layout.string()) + " -cf " + sh(tar.string()) + " .").exit_code, 0);
  ASSERT_EQ(run("tar -C " + sh(layout.string()) + " -czf " + sh(tgz.string()) + " .").exit_code, 0);
  auto r = diff(tar, layout);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "images are identical\n");
  auto gz = diff(layout, tgz);
  EXPECT_EQ(gz.exit_code, 0) << gz.out;
}

TEST_F(DiffCliTest, HostileArchivesExitTwoNamingTheProblem) {
  auto good = archive("");
  const std::pair<const char*, const char*> cases[] = {{"hostile-path", "\"..\" component"},
                                                       {"absolute-path", "is absolute"},
                                                       {"symlink-escape", "points outside the archive"}};
  for (const auto& [damage, why] : cases) {
    auto bad = archive(std::string("--damage ") + damage);
    auto r = diff(good, bad, "", true);
    EXPECT_EQ(r.exit_code, 2) << damage << ": " << r.out;
    EXPECT_NE(r.out.find(bad.string()), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(why), std::string::npos) << r.out;
  }
  auto not_image = dir_ / "layer.tar";
  ASSERT_EQ(run("tar -C " + sh(dir_.path().string()) + " -cf " + sh(not_image.string()) + " image0.tar").exit_code, 0);
  auto r = diff(good, not_image, "", true);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("is not an OCI image layout, an OCI layout tar or a docker-archive"), std::string::npos)
      << r.out;
}

TEST_F(DiffCliTest, DeepWithoutDiffoscopeIsAUsageError) {
  auto a = archive("");
  fs::create_directories(dir_ / "empty-path");
  auto r = run("PATH=" + sh((dir_ / "empty-path").string()) + " " + sh(quorate_bin()) + " diff --deep " +
               sh(a.string()) + " " + sh(a.string()));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--deep: diffoscope is not installed"), std::string::npos) << r.out;
}

// The CLI hands the diffoscope it finds in PATH the two versions of the file: a stand-in shows what it got.
TEST_F(DiffCliTest, DeepShowsTheReportOfTheDiffoscopeInPath) {
  fs::create_directories(dir_ / "bin");
  quorate::testing::spit(dir_ / "bin/diffoscope",
                         "#!/bin/sh\necho \"args: $*\"\nshift 2\ndiff \"$1\" \"$2\"\nexit 1\n");
  fs::permissions(dir_ / "bin/diffoscope", fs::perms::owner_all);
  auto a = archive("");
  auto b = archive("--greeting bonjour");
  auto r = run("(PATH=" + sh((dir_ / "bin").string()) + ":/usr/bin:/bin " + sh(quorate_bin()) + " diff --deep " +
               sh(a.string()) + " " + sh(b.string()) + " 2>/dev/null)");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("  changed etc/hello.conf\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("      diffoscope:\n        args: --text - a/hello.conf b/hello.conf\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("        < greeting=hello\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("        > greeting=bonjour\n"), std::string::npos) << r.out;
}

// Progress (each layer read, each diffoscope run) goes to a terminal only: stderr in a pipe carries none of it,
// no carriage returns either; on script(1)'s terminal it names the file diffoscope runs on; -q silences it.
TEST_F(DiffCliTest, DeepShowsProgressOnATerminalOnly) {
  fs::create_directories(dir_ / "bin");
  quorate::testing::spit(dir_ / "bin/diffoscope", "#!/bin/sh\necho stand-in\nexit 1\n");
  fs::permissions(dir_ / "bin/diffoscope", fs::perms::owner_all);
  auto a = archive("");
  auto b = archive("--greeting bonjour");
  std::string command = "PATH=" + sh((dir_ / "bin").string()) + ":/usr/bin:/bin " + sh(quorate_bin()) + " diff --deep ";
  std::string images = " " + sh(a.string()) + " " + sh(b.string());
  auto piped = run("(" + command + images + ")");  // stdout and stderr, neither a terminal
  EXPECT_EQ(piped.exit_code, 1) << piped.out;
  EXPECT_EQ(piped.out.find("quorate diff:"), std::string::npos) << piped.out;
  EXPECT_EQ(piped.out.find('\r'), std::string::npos) << piped.out;
  if (run("command -v script").exit_code != 0) GTEST_SKIP() << "script(1) (bsdutils) is not installed";
  auto tty = run("script -qec " + sh(command + images + " </dev/null") + " /dev/null");
  EXPECT_EQ(tty.exit_code, 1) << tty.out;
  EXPECT_NE(tty.out.find("quorate diff: layer 1/2: reading"), std::string::npos) << tty.out;
  EXPECT_NE(tty.out.find("quorate diff: diffoscope 1/1: etc/hello.conf"), std::string::npos) << tty.out;
  auto quiet = run("script -qec " + sh(command + "-q" + images + " </dev/null") + " /dev/null");
  EXPECT_EQ(quiet.exit_code, 1) << quiet.out;
  EXPECT_EQ(quiet.out.find("quorate diff:"), std::string::npos) << quiet.out;
  EXPECT_NE(quiet.out.find("stand-in"), std::string::npos) << quiet.out;
}

TEST_F(DiffCliTest, DeepWithTheRealDiffoscopeExplainsTheChangedFile) {
  if (run("command -v diffoscope").exit_code != 0) GTEST_SKIP() << "diffoscope is not installed";
  auto a = archive("");
  auto b = archive("--greeting bonjour");
  auto r = diff(a, b, "--deep --json");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  auto j = parse(r.out);
  ASSERT_EQ(j["layers"].size(), 1u) << j.dump(2);
  const auto& change = j["layers"][0]["changes"][0];
  EXPECT_EQ(change["path"], "etc/hello.conf");
  ASSERT_TRUE(change.contains("deep")) << change.dump(2);
  std::string report = change["deep"];
  EXPECT_NE(report.find("greeting=hello"), std::string::npos) << report;
  EXPECT_NE(report.find("greeting=bonjour"), std::string::npos) << report;
}

TEST_F(DiffCliTest, AHostileFileNameIsMaskedInTextAndExactInJson) {
  const std::string name =
      "\x1b[2Jevil\xc2\x9b"
      "1m";  // ESC, then CSI as a C1 control in UTF-8
  auto a = archive("");
  auto b = archive("--extra-file " + sh(name));
  auto text = diff(a, b);
  ASSERT_EQ(text.exit_code, 1) << text.out;
  EXPECT_EQ(text.out.find('\x1b'), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("\xc2\x9b"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("  added ?[2Jevil?1m\n"), std::string::npos) << text.out;
  auto json = diff(a, b, "--json");
  ASSERT_EQ(json.exit_code, 1) << json.out;
  EXPECT_EQ(json.out.find('\x1b'), std::string::npos) << json.out;  // escaped as \u001b
  auto j = parse(json.out);
  ASSERT_EQ(j["layers"].size(), 1u) << j.dump(2);
  ASSERT_EQ(j["layers"][0]["changes"].size(), 1u) << j.dump(2);
  EXPECT_EQ(j["layers"][0]["changes"][0]["path"], name);
  EXPECT_EQ(json.out.find("\xc2\x9b"), std::string::npos) << "C1 reaches the terminal raw: " << json.out;

  // A name that is not UTF-8 cannot be JSON as it is: it is shown with U+FFFD, not an exception.
  auto c = archive("--extra-file " + sh("bad\xff\xfename"));
  auto not_utf8 = diff(a, c, "--json");
  ASSERT_EQ(not_utf8.exit_code, 1) << not_utf8.out;
  auto k = parse(not_utf8.out);
  ASSERT_EQ(k["layers"].size(), 1u) << not_utf8.out;
  EXPECT_EQ(k["layers"][0]["changes"][0]["path"], "bad\ufffd\ufffdname") << not_utf8.out;
}

}  // namespace
}  // namespace quorate
