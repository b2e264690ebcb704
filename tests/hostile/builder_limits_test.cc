// Issue 11, item 10: a build's run steps have a timeout and their output a size limit; exceeding either
// fails the build quickly with a message naming the limit, kills the step and leaves no output.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>

#include "hostile/builder_fixture.h"

namespace quorate::builder::hostile {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

class Limits : public HostileBuild, public ::testing::WithParamInterface<Sandbox> {};

TEST_P(Limits, ASparseTenGibOutputFailsFastUnderTheDefaultLimit) {
  auto commit = commit_recipe(run_recipe("truncate -s 10G \"$OUT/big\"; echo done"));
  auto o = options(commit, GetParam());
  auto start = Clock::now();
  auto r = build(o);
  ASSERT_FALSE(r.ok()) << "a 10 GiB output was built and would be attested";
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));
  EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr("output limit 4294967296 bytes"));
  EXPECT_FALSE(std::filesystem::exists(o.output));
}

TEST_P(Limits, ManySmallFilesOverTheLimitTogetherFail) {
  auto commit = commit_recipe(run_recipe("for i in 1 2 3; do head -c 600000 /dev/zero > \"$OUT/part$i\"; done"));
  auto o = options(commit, GetParam());
  o.max_output_bytes = 1 << 20;
  auto r = build(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("output is larger than 1048576 bytes"));
  EXPECT_THAT(r.status().message(), HasSubstr("build.max_output_bytes"));
  EXPECT_FALSE(std::filesystem::exists(o.output));
}

TEST_P(Limits, AStepPastTheTimeoutIsKilled) {
  auto commit = commit_recipe(run_recipe("sleep 30 & sleep 30; echo never > \"$OUT/late\""));
  auto o = options(commit, GetParam());
  o.timeout = std::chrono::seconds(1);
  auto start = Clock::now();
  auto r = build(o);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(20));
  EXPECT_THAT(r.status().message(), HasSubstr("timed out"));
  EXPECT_THAT(r.status().message(), HasSubstr("build timeout 1 s"));
  EXPECT_FALSE(std::filesystem::exists(o.output));
}

// The timeout covers the whole build: copy steps, which run no process, stop at it too (a recipe of many
// copies of a large tree kept a node busy for as long as they took).
TEST_P(Limits, CopyStepsStopAtTheTimeout) {
  std::vector<std::pair<std::string, std::string>> files;
  for (int i = 0; i < 300; ++i) files.emplace_back("src/" + std::to_string(i) + ".txt", std::to_string(i));
  std::string recipe = "[image]\nname = \"example.org/hostile\"\n";
  for (int i = 0; i < 1000; ++i) recipe += "\n[[steps]]\ncopy = \"src/**\"\nto = \"/c" + std::to_string(i) + "\"\n";
  auto o = options(commit_recipe(recipe, files), GetParam());
  o.timeout = std::chrono::seconds(1);
  auto r = build(o);
  ASSERT_FALSE(r.ok()) << "1,000 copies of 300 files were built within 1 s, or past it";
  EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr("timed out (build timeout 1 s"));
  EXPECT_THAT(r.status().message(), HasSubstr("copy src/**"));
  EXPECT_FALSE(std::filesystem::exists(o.output));
}

// Copy steps count against the output limit with the run steps: the image's files together stay within it (a
// recipe of many copies of a large tree wrote as many layers as it listed).
TEST_P(Limits, CopyStepsCountAgainstTheOutputLimit) {
  std::string part(600000, 'x');
  auto o = options(commit_recipe(run_recipe("head -c 300000 /dev/zero > \"$OUT/run.bin\"", "/r") +
                                     "\n[[steps]]\ncopy = \"*.txt\"\nto = \"/c\"\n",
                                 {{"a.txt", part}, {"b.txt", part}}),
                   GetParam());
  o.max_output_bytes = 1 << 20;
  auto r = build(o);
  ASSERT_FALSE(r.ok()) << "1.5 MB of files were built under a 1 MiB output limit";
  EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
  EXPECT_THAT(r.status().message(),
              HasSubstr("copy steps and run steps' outputs together are larger than 1048576 bytes (at b.txt"));
  EXPECT_FALSE(std::filesystem::exists(o.output));
  o.max_output_bytes = 1500000;
  o.output = o.output.string() + "-larger";
  EXPECT_TRUE(build(o).ok());
}

// Writing the layers is within the timeout too: a recipe may choose zstd at level 19, which packs 64 MB of random
// bytes for many seconds (150 MB built in 42 s under a 5 s timeout). A compressor's worker may finish the job
// it holds (tens of MiB) before the deadline is seen.
class LayerLimits : public HostileBuild {};

TEST_F(LayerLimits, WritingTheLayersStopsAtTheTimeout) {
  std::string recipe = run_recipe("head -c 64000000 /dev/urandom > \"$OUT/random\"");
  recipe.insert(recipe.find("\n\n"), "\ncompression = \"zstd\"\ncompression_level = 19");
  auto o = options(commit_recipe(recipe));
  o.timeout = std::chrono::seconds(5);
  auto start = Clock::now();
  auto r = build(o);
  ASSERT_FALSE(r.ok()) << "the layer was written past the timeout";
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));
  EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr("timed out (build timeout 5 s"));
  EXPECT_THAT(r.status().message(), Not(HasSubstr("killed")));  // not in the run step
  EXPECT_FALSE(std::filesystem::exists(o.output));
}

// A step that makes its checkout unwritable (as a user other than root) leaves nothing behind: the checkout is
// removed after the step and the work directory after the build.
TEST(LimitsAsAnotherUser, AnUnwritableCheckoutIsRemoved) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the build as another user";
  quorate::testing::ScratchDir scratch;
  std::filesystem::permissions(scratch.path(), std::filesystem::perms::all);
  testing::write_text(scratch / "src/quorate.toml",
                      run_recipe("chmod 0555 /src && mkdir /tmp/locked && chmod 0 /tmp/locked && echo x > \"$OUT/x\""));
  testing::write_text(scratch / "src/dir/file.txt", "kept?\n");
  std::string commit = testing::make_repo(scratch / "src", scratch / "repo");
  auto r = quorate::testing::run("chown -R 65534:65534 " + quorate::testing::sh(scratch.path().string()) +
                                 " && HOME=" + quorate::testing::sh(scratch.path().string()) +
                                 " setpriv --reuid=65534 --regid=65534 --clear-groups " +
                                 quorate::testing::sh(quorate::testing::quorate_bin()) + " build -q --repo " +
                                 quorate::testing::sh((scratch / "repo").string()) + " --commit " + commit + " -o " +
                                 quorate::testing::sh((scratch / "out").string()) + " --work-dir " +
                                 quorate::testing::sh((scratch / "work").string()));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(std::filesystem::exists(scratch / "out"));
  EXPECT_TRUE(std::filesystem::is_empty(scratch / "work")) << "the build's work directory was left behind";
}

TEST_P(Limits, AStepWithinTheLimitsBuilds) {
  auto commit = commit_recipe(run_recipe("head -c 1000 /dev/zero > \"$OUT/small\""));
  auto o = options(commit, GetParam());
  o.timeout = std::chrono::seconds(60);
  o.max_output_bytes = 4096;
  auto r = build(o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
}

INSTANTIATE_TEST_SUITE_P(Sandboxes, Limits, ::testing::Values(Sandbox::kBubblewrap, Sandbox::kNone),
                         [](const auto& p) { return std::string(sandbox_name(p.param)); });

}  // namespace
}  // namespace quorate::builder::hostile
